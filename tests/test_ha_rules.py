"""Pure tests of the HA pair decision machine (``lca_emulator.scs.ha``): no Twisted, no I/O.

One test (or more) per rule and per (state, input) pair of the transition table,
then properties over arbitrary input sequences.  The rules are explained in
``docs/ha-rules.md``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_emulator.scs import ha
from lca_emulator.scs.ha import (
    FAILING_STATUSES,
    AssignMode,
    Decision,
    HaPairMachine,
    InputKind,
    MemberView,
    PairInput,
    PairMachineState,
    PairState,
    Refusal,
    Switchover,
)

A = "SIPS_A"
"""The configured primary."""
B = "SIPS_B"
"""The configured backup."""

PRIMARY = ExecutionMode.PRIMARY
BACKUP = ExecutionMode.BACKUP
RUNNING = ApplicationStatus.RUNNING
SU = ApplicationStatus.SERVICE_UNAVAILABLE


def up(name: str, status: ApplicationStatus = RUNNING) -> MemberView:
    """A member registered on a live connection, reporting ``status``."""
    return MemberView(name, up=True, status=status)


def down(name: str, status: ApplicationStatus = ApplicationStatus.UNKNOWN) -> MemberView:
    """A member that is not connected."""
    return MemberView(name, up=False, status=status)


def starting(name: str) -> MemberView:
    """A member the LCA started that has not registered yet."""
    return MemberView(name, starting=True, status=ApplicationStatus.START_PENDING)


def views(*members: MemberView) -> dict[str, MemberView]:
    """The members mapping the SCS passes to the machine."""
    return {m.name: m for m in members}


def machine(
    state: PairState = PairState.WAITING, primary: str | None = None, *, holding: bool = False
) -> HaPairMachine:
    """A machine for the pair A/B, put straight into ``state``."""
    return HaPairMachine(A, B, PairMachineState(state, primary, holding))


def registered(name: str) -> PairInput:
    return PairInput(InputKind.REGISTERED, name)


def status(name: str) -> PairInput:
    return PairInput(InputKind.STATUS, name)


def lost(name: str, cause: str = "disconnected") -> PairInput:
    return PairInput(InputKind.LOST, name, cause)


def recovered(name: str) -> PairInput:
    return PairInput(InputKind.RECOVERED, name)


def switchover_requested(name: str = A) -> PairInput:
    return PairInput(InputKind.SWITCHOVER_REQUESTED, name)


# -- the table itself -----------------------------------------------------------------


def test_the_table_covers_every_state_and_input() -> None:
    """_RULES names a behaviour for all 15 (state, input) pairs: nothing is left to chance."""
    assert set(ha._RULES) == set(itertools.product(PairState, InputKind))


def test_an_unlisted_pair_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """An input with no rule in the table changes nothing and does nothing."""
    monkeypatch.delitem(ha._RULES, (PairState.ACTIVE, InputKind.LOST))
    m = machine(PairState.ACTIVE, A)
    decision = m.handle(lost(A), views(down(A), up(B)))
    assert decision == Decision()
    assert m.current == PairMachineState(PairState.ACTIVE, A)


def test_a_new_machine_waits() -> None:
    """A pair starts WAITING, with nobody holding the primary role."""
    m = HaPairMachine(A, B)
    assert m.current == PairMachineState(PairState.WAITING, None, holding=False)


def test_peer() -> None:
    """peer() names the other member, whichever is asked."""
    m = HaPairMachine(A, B)
    assert (m.peer(A), m.peer(B)) == (B, A)


# -- WAITING --------------------------------------------------------------------------


def test_r1_configured_primary_registers_first() -> None:
    """R1: the configured primary registering takes the primary role at once."""
    m = machine()
    decision = m.handle(registered(A), views(up(A, ApplicationStatus.UNKNOWN)))
    assert decision == Decision((AssignMode(A, PRIMARY),), "R1")
    assert m.current == PairMachineState(PairState.ACTIVE, A)


@pytest.mark.parametrize("peer", [starting(A), up(A, ApplicationStatus.INITIALIZING)])
def test_r1_backup_registers_while_primary_expected(peer: MemberView) -> None:
    """R1: the backup registering while the primary is starting (or up) is told BACKUP."""
    m = machine()
    decision = m.handle(registered(B), views(peer, up(B, ApplicationStatus.UNKNOWN)))
    assert decision == Decision((AssignMode(B, BACKUP),), "R1")
    assert m.current == PairMachineState(PairState.WAITING)


@pytest.mark.parametrize("peer", [None, down(A), down(A, ApplicationStatus.STOPPED)])
def test_r2_lone_member_registers(peer: MemberView | None) -> None:
    """R2: the backup registering while its peer is neither up nor starting is primary."""
    members = views(up(B, ApplicationStatus.UNKNOWN))
    if peer is not None:
        members[A] = peer
    m = machine()
    decision = m.handle(registered(B), members)
    assert decision == Decision((AssignMode(B, PRIMARY),), "R2")
    assert m.current == PairMachineState(PairState.ACTIVE, B)


def test_r2_lone_member_becomes_running() -> None:
    """R2: a waiting member that turns RUNNING while its peer is gone takes the role."""
    m = machine()
    decision = m.handle(status(B), views(down(A, ApplicationStatus.STOPPED), up(B)))
    assert decision == Decision((AssignMode(B, PRIMARY),), "R2")
    assert m.current == PairMachineState(PairState.ACTIVE, B)


def test_r2_lone_member_recovers() -> None:
    """R2 on recovery: a lone waiting member back from a hang, RUNNING, takes the role."""
    m = machine()
    decision = m.handle(recovered(B), views(down(A), up(B)))
    assert decision == Decision((AssignMode(B, PRIMARY),), "R2")
    assert m.current == PairMachineState(PairState.ACTIVE, B)


def test_waiting_recovery_without_r2_is_ignored() -> None:
    """A recovery while waiting, with the primary on its way, changes nothing."""
    m = machine()
    assert m.handle(recovered(B), views(starting(A), up(B))) == Decision()
    assert m.current == PairMachineState(PairState.WAITING)


@pytest.mark.parametrize(
    "members",
    [
        views(starting(A), up(B)),  # the primary is on its way
        views(up(A, ApplicationStatus.INITIALIZING), up(B)),  # the primary is up
        views(down(A), up(B, SU)),  # not RUNNING
        views(down(A), down(B, RUNNING)),  # not up
    ],
)
def test_waiting_status_without_r2_is_ignored(members: dict[str, MemberView]) -> None:
    """A status while waiting does nothing unless its member is alone, up and RUNNING."""
    m = machine()
    assert m.handle(status(B), members) == Decision()
    assert m.current == PairMachineState(PairState.WAITING)


def test_r3_primary_never_came_up_backup_running() -> None:
    """R3: the expected primary is lost before registering; a RUNNING backup takes over."""
    m = machine()
    decision = m.handle(
        lost(A, "exited"), views(down(A, ApplicationStatus.STOPPED), up(B, RUNNING))
    )
    assert decision == Decision(
        (Switchover(A, B, "primary SIPS_A exited"), AssignMode(B, PRIMARY)), "R3"
    )
    assert m.current == PairMachineState(PairState.ACTIVE, B)


def test_r3_r5_primary_never_came_up_backup_unavailable() -> None:
    """R3 then R5: a SERVICE_UNAVAILABLE backup is not promoted; the pair is FAILED."""
    m = machine()
    decision = m.handle(lost(A, "failed to start"), views(down(A), up(B, SU)))
    reason = "primary SIPS_A failed to start; backup SIPS_B is SERVICE_UNAVAILABLE, not RUNNING"
    assert decision == Decision((Refusal(A, B, reason),), "R5")
    assert m.current == PairMachineState(PairState.FAILED, A, holding=False)


@pytest.mark.parametrize(
    ("event", "members"),
    [
        (lost(A), views(down(A))),  # nobody to take over: nothing to decide yet
        (lost(A), views(down(A), starting(B))),
        (lost(B), views(starting(A), down(B))),  # the backup leaving changes nothing
    ],
)
def test_waiting_lost_without_r3_is_ignored(
    event: PairInput, members: dict[str, MemberView]
) -> None:
    """A loss while waiting decides nothing unless it is the primary and the backup is up."""
    m = machine()
    assert m.handle(event, members) == Decision()
    assert m.current == PairMachineState(PairState.WAITING)


def test_r6_switchover_while_waiting_is_refused() -> None:
    """R6: with no primary yet there is nothing to switch over from."""
    m = machine()
    decision = m.handle(switchover_requested(B), views(starting(A), up(B)))
    assert decision == Decision(
        (Refusal(A, B, "manual switchover; no healthy primary (waiting)"),), "R6"
    )
    assert m.current == PairMachineState(PairState.WAITING)


# -- ACTIVE ---------------------------------------------------------------------------


def test_r1_newcomer_while_active_is_backup() -> None:
    """R1: with a primary in place, the other member registering is the backup."""
    m = machine(PairState.ACTIVE, B)
    decision = m.handle(registered(A), views(up(A, ApplicationStatus.UNKNOWN), up(B)))
    assert decision == Decision((AssignMode(A, BACKUP),), "R1")
    assert m.current == PairMachineState(PairState.ACTIVE, B)


def test_r1_primary_reregisters_while_active() -> None:
    """R1: the primary registering again (a reconnect) is told PRIMARY again."""
    m = machine(PairState.ACTIVE, A)
    decision = m.handle(registered(A), views(up(A, ApplicationStatus.UNKNOWN), up(B)))
    assert decision == Decision((AssignMode(A, PRIMARY),), "R1")
    assert m.current == PairMachineState(PairState.ACTIVE, A)


@pytest.mark.parametrize("failing", sorted(FAILING_STATUSES))
def test_r4_primary_reports_failing_status(failing: ApplicationStatus) -> None:
    """R4: a primary reporting a failing status hands over to a RUNNING backup, demoted."""
    m = machine(PairState.ACTIVE, A)
    decision = m.handle(status(A), views(up(A, failing), up(B)))
    switch = Switchover(A, B, f"primary SIPS_A reported {failing.value}")
    assert decision == Decision((switch, AssignMode(A, BACKUP), AssignMode(B, PRIMARY)), "R4")
    assert m.current == PairMachineState(PairState.ACTIVE, B)


@pytest.mark.parametrize("cause", ["disconnected", "exited", "hung"])
def test_r4_primary_lost(cause: str) -> None:
    """R4: a primary that died, disconnected or hung hands over; it is not told (gone)."""
    m = machine(PairState.ACTIVE, A)
    decision = m.handle(lost(A, cause), views(down(A), up(B)))
    assert decision == Decision(
        (Switchover(A, B, f"primary SIPS_A {cause}"), AssignMode(B, PRIMARY)), "R4"
    )
    assert m.current == PairMachineState(PairState.ACTIVE, B)


@pytest.mark.parametrize(
    ("backup", "why"),
    [
        (up(B, SU), "backup SIPS_B is SERVICE_UNAVAILABLE, not RUNNING"),
        (up(B, ApplicationStatus.INITIALIZING), "backup SIPS_B is INITIALIZING, not RUNNING"),
        (up(B, ApplicationStatus.UNKNOWN), "backup SIPS_B is UNKNOWN, not RUNNING"),
        (down(B, RUNNING), "backup SIPS_B is not connected"),
        (starting(B), "backup SIPS_B is still starting"),
    ],
)
def test_r5_primary_lost_backup_not_ready(backup: MemberView, why: str) -> None:
    """R5: a backup that is not up and RUNNING is never promoted; the refusal says why."""
    m = machine(PairState.ACTIVE, A)
    decision = m.handle(lost(A, "exited"), views(down(A, ApplicationStatus.STOPPED), backup))
    assert decision == Decision((Refusal(A, B, f"primary SIPS_A exited; {why}"),), "R5")
    assert m.current == PairMachineState(PairState.FAILED, A, holding=False)


def test_r5_primary_unavailable_but_connected_keeps_holding() -> None:
    """R5: a primary that reports SERVICE_UNAVAILABLE but stays connected still holds the role."""
    m = machine(PairState.ACTIVE, A)
    decision = m.handle(status(A), views(up(A, SU), up(B, SU)))
    reason = (
        "primary SIPS_A reported SERVICE_UNAVAILABLE; "
        "backup SIPS_B is SERVICE_UNAVAILABLE, not RUNNING"
    )
    assert decision == Decision((Refusal(A, B, reason),), "R5")
    assert m.current == PairMachineState(PairState.FAILED, A, holding=True)


@pytest.mark.parametrize(
    ("event", "members"),
    [
        (status(A), views(up(A, RUNNING), up(B))),  # a healthy primary
        (status(A), views(up(A, ApplicationStatus.INITIALIZING), up(B))),
        (status(A), views(up(A, ApplicationStatus.STOP_PENDING), up(B))),
        (status(B), views(up(A), up(B, SU))),  # the backup's status is only journaled
        (lost(B), views(up(A), down(B))),  # losing the backup decides nothing
    ],
)
def test_active_inputs_without_failover_are_ignored(
    event: PairInput, members: dict[str, MemberView]
) -> None:
    """While ACTIVE only the primary failing moves the role."""
    m = machine(PairState.ACTIVE, A)
    assert m.handle(event, members) == Decision()
    assert m.current == PairMachineState(PairState.ACTIVE, A)


def test_r1_recovered_former_primary_is_told_backup() -> None:
    """R1 on recovery: a member back from a hang is told its role again (here BACKUP:
    the role moved while it was silent, and it still believes it is PRIMARY)."""
    m = machine(PairState.ACTIVE, B)
    decision = m.handle(recovered(A), views(up(A), up(B)))
    assert decision == Decision((AssignMode(A, BACKUP),), "R1")
    assert m.current == PairMachineState(PairState.ACTIVE, B)


def test_r1_recovered_primary_is_told_primary() -> None:
    """R1 on recovery: the current primary recovering is told PRIMARY (nothing moves)."""
    m = machine(PairState.ACTIVE, A)
    decision = m.handle(recovered(A), views(up(A), up(B)))
    assert decision == Decision((AssignMode(A, PRIMARY),), "R1")
    assert m.current == PairMachineState(PairState.ACTIVE, A)


@pytest.mark.parametrize("asked", [A, B])
def test_r6_manual_switchover_accepted(asked: str) -> None:
    """R6: a manual switchover (naming either member) moves the role to a RUNNING backup."""
    m = machine(PairState.ACTIVE, A)
    decision = m.handle(switchover_requested(asked), views(up(A), up(B)))
    assert decision == Decision(
        (
            Switchover(A, B, "manual switchover"),
            AssignMode(A, BACKUP),
            AssignMode(B, PRIMARY),
        ),
        "R6",
    )
    assert m.current == PairMachineState(PairState.ACTIVE, B)


def test_r6_manual_switchover_back() -> None:
    """R6: after a switchover, the next one moves the role back to the configured primary."""
    m = machine(PairState.ACTIVE, B)
    decision = m.handle(switchover_requested(A), views(up(A), up(B)))
    assert decision.actions[0] == Switchover(B, A, "manual switchover")
    assert m.current == PairMachineState(PairState.ACTIVE, A)


@pytest.mark.parametrize(
    ("backup", "why"),
    [
        (up(B, SU), "backup SIPS_B is SERVICE_UNAVAILABLE, not RUNNING"),
        (down(B), "backup SIPS_B is not connected"),
        (starting(B), "backup SIPS_B is still starting"),
    ],
)
def test_r6_manual_switchover_refused(backup: MemberView, why: str) -> None:
    """R6: a manual switchover follows the automatic rule: no RUNNING backup, no switchover."""
    m = machine(PairState.ACTIVE, A)
    decision = m.handle(switchover_requested(A), views(up(A), backup))
    assert decision == Decision((Refusal(A, B, f"manual switchover; {why}"),), "R6")
    assert m.current == PairMachineState(PairState.ACTIVE, A)


# -- FAILED ---------------------------------------------------------------------------


def test_r7_newcomer_while_failed_primary_holds_is_backup() -> None:
    """R7: while the failed primary is still connected, a newcomer is only the backup."""
    m = machine(PairState.FAILED, A, holding=True)
    decision = m.handle(registered(B), views(up(A, SU), up(B, ApplicationStatus.UNKNOWN)))
    assert decision == Decision((AssignMode(B, BACKUP),), "R7")
    assert m.current == PairMachineState(PairState.FAILED, A, holding=True)


def test_r7_newcomer_while_nobody_holds_is_primary() -> None:
    """R7: with the failed primary gone, whoever registers next takes the role."""
    m = machine(PairState.FAILED, A, holding=False)
    decision = m.handle(registered(B), views(down(A), up(B, ApplicationStatus.UNKNOWN)))
    assert decision == Decision((AssignMode(B, PRIMARY),), "R7")
    assert m.current == PairMachineState(PairState.ACTIVE, B)


def test_r7_restarted_primary_takes_the_service_back() -> None:
    """R7: the failed primary, restarted and registering again, is primary again."""
    m = machine(PairState.FAILED, A, holding=False)
    decision = m.handle(registered(A), views(up(A, ApplicationStatus.UNKNOWN), up(B, SU)))
    assert decision == Decision((AssignMode(A, PRIMARY),), "R7")
    assert m.current == PairMachineState(PairState.ACTIVE, A)


def test_r7_holder_reregisters() -> None:
    """R7: the member still holding the role registering again keeps it."""
    m = machine(PairState.FAILED, A, holding=True)
    decision = m.handle(registered(A), views(up(A, ApplicationStatus.UNKNOWN), up(B, SU)))
    assert decision == Decision((AssignMode(A, PRIMARY),), "R7")
    assert m.current == PairMachineState(PairState.ACTIVE, A)


def test_r8_former_primary_running_again() -> None:
    """R8: the failed primary reporting RUNNING again is healthy: ACTIVE, nothing to send."""
    m = machine(PairState.FAILED, A, holding=True)
    decision = m.handle(status(A), views(up(A), up(B, SU)))
    assert decision == Decision(rule="R8")
    assert m.current == PairMachineState(PairState.ACTIVE, A)


def test_r8_backup_running_after_failure_takes_over_and_demotes() -> None:
    """R8: a backup that becomes RUNNING after a failure takes over; a holder is demoted."""
    m = machine(PairState.FAILED, A, holding=True)
    decision = m.handle(status(B), views(up(A, SU), up(B)))
    assert decision == Decision(
        (
            Switchover(A, B, "primary SIPS_A failed earlier"),
            AssignMode(A, BACKUP),
            AssignMode(B, PRIMARY),
        ),
        "R8",
    )
    assert m.current == PairMachineState(PairState.ACTIVE, B)


def test_r8_backup_running_after_primary_gone() -> None:
    """R8: with the failed primary gone, there is nobody to demote."""
    m = machine(PairState.FAILED, A, holding=False)
    decision = m.handle(status(B), views(down(A, ApplicationStatus.STOPPED), up(B)))
    assert decision == Decision(
        (Switchover(A, B, "primary SIPS_A failed earlier"), AssignMode(B, PRIMARY)), "R8"
    )
    assert m.current == PairMachineState(PairState.ACTIVE, B)


def test_r8_without_a_former_primary() -> None:
    """R8: a FAILED state without a former primary promotes without announcing a switchover."""
    m = machine(PairState.FAILED, None)
    decision = m.handle(status(B), views(up(B)))
    assert decision == Decision((AssignMode(B, PRIMARY),), "R8")
    assert m.current == PairMachineState(PairState.ACTIVE, B)


@pytest.mark.parametrize(
    "members",
    [
        views(up(A, SU), up(B, SU)),
        views(up(A, SU), up(B, ApplicationStatus.INITIALIZING)),
        views(up(A, SU), down(B, RUNNING)),
    ],
)
def test_failed_status_not_running_is_ignored(members: dict[str, MemberView]) -> None:
    """While FAILED, a status that is not 'up and RUNNING' changes nothing."""
    m = machine(PairState.FAILED, A, holding=True)
    assert m.handle(status(B), members) == Decision()
    assert m.current == PairMachineState(PairState.FAILED, A, holding=True)


def test_r8_former_primary_recovers_running() -> None:
    """R8 on recovery: the hung primary speaking again, RUNNING, is healthy again."""
    m = machine(PairState.FAILED, A, holding=False)
    decision = m.handle(recovered(A), views(up(A), up(B, SU)))
    assert decision == Decision(rule="R8")
    assert m.current == PairMachineState(PairState.ACTIVE, A)


def test_r8_backup_recovers_running_and_takes_over() -> None:
    """R8 on recovery: a backup back from a hang, RUNNING, takes the unheld role."""
    m = machine(PairState.FAILED, A, holding=False)
    decision = m.handle(recovered(B), views(down(A), up(B)))
    assert decision == Decision(
        (Switchover(A, B, "primary SIPS_A failed earlier"), AssignMode(B, PRIMARY)), "R8"
    )
    assert m.current == PairMachineState(PairState.ACTIVE, B)


@pytest.mark.parametrize("holding", [True, False])
def test_r7_recovered_member_not_running_is_backup(holding: bool) -> None:
    """R7 on recovery: a SERVICE_UNAVAILABLE member back from a hang is not promoted; it is
    told BACKUP, in case it still believes it is the primary it once was."""
    m = machine(PairState.FAILED, A, holding=holding)
    decision = m.handle(recovered(B), views(up(A, SU) if holding else down(A), up(B, SU)))
    assert decision == Decision((AssignMode(B, BACKUP),), "R7")
    assert m.current == PairMachineState(PairState.FAILED, A, holding=holding)


def test_failed_primary_recovers_not_running_holds_the_role_again() -> None:
    """A failed primary back from a hang, not RUNNING, holds the role again: it still
    believes it is the primary, so a newcomer must not become primary as well."""
    m = machine(PairState.FAILED, A, holding=False)
    decision = m.handle(recovered(A), views(up(A, ApplicationStatus.INITIALIZING), down(B)))
    assert decision == Decision()
    assert m.current == PairMachineState(PairState.FAILED, A, holding=True)
    decision = m.handle(registered(B), views(up(A, ApplicationStatus.INITIALIZING), up(B)))
    assert decision == Decision((AssignMode(B, BACKUP),), "R7")


def test_failed_primary_lost_releases_the_role() -> None:
    """While FAILED, losing the former primary means nobody holds the role any more."""
    m = machine(PairState.FAILED, A, holding=True)
    assert m.handle(lost(A), views(down(A), up(B, SU))) == Decision()
    assert m.current == PairMachineState(PairState.FAILED, A, holding=False)


def test_failed_backup_lost_is_ignored() -> None:
    """While FAILED, losing the other member changes nothing."""
    m = machine(PairState.FAILED, A, holding=True)
    assert m.handle(lost(B), views(up(A, SU), down(B))) == Decision()
    assert m.current == PairMachineState(PairState.FAILED, A, holding=True)


@pytest.mark.parametrize(
    ("backup", "reason"),
    [
        (up(B, SU), "manual switchover; backup SIPS_B is SERVICE_UNAVAILABLE, not RUNNING"),
        (up(B, RUNNING), "manual switchover; no healthy primary (failed)"),
    ],
)
def test_r6_switchover_while_failed_is_refused(backup: MemberView, reason: str) -> None:
    """R6: with no healthy primary a manual switchover is refused, with the reason."""
    m = machine(PairState.FAILED, A, holding=True)
    decision = m.handle(switchover_requested(A), views(up(A, SU), backup))
    assert decision == Decision((Refusal(A, B, reason),), "R6")
    assert m.current == PairMachineState(PairState.FAILED, A, holding=True)


# -- properties over arbitrary input sequences ------------------------------------------

_STATUSES = st.sampled_from(list(ApplicationStatus))


@dataclass
class World:
    """The members as the SCS would see them, and what each running member believes.

    ``belief`` is the mode a connected member runs in: the last mode the machine
    assigned it while it was connected.  A member that disconnects or exits
    forgets it; a hung one keeps it (its connection is still open).
    """

    views: dict[str, MemberView] = field(default_factory=dict)
    connected: dict[str, bool] = field(default_factory=lambda: {A: False, B: False})
    belief: dict[str, ExecutionMode | None] = field(default_factory=lambda: {A: None, B: None})

    def view(self, name: str) -> MemberView:
        return self.views.get(name) or MemberView(name)

    def set(
        self,
        name: str,
        *,
        up: bool | None = None,
        starting: bool | None = None,
        status: ApplicationStatus | None = None,
    ) -> None:
        """Change some of ``name``'s view (None: keep)."""
        old = self.view(name)
        self.views[name] = MemberView(
            name,
            old.up if up is None else up,
            old.starting if starting is None else starting,
            old.status if status is None else status,
        )


Step = tuple[str, str, ApplicationStatus]
"""(what happens, to which member, with which status when it reports one)."""

_STEPS = st.tuples(
    st.sampled_from(
        [
            "register",
            "report",
            "disconnect",
            "exit",
            "hang",
            "recover",
            "start",
            "start-failed",
            "switchover",
        ]
    ),
    st.sampled_from([A, B]),
    _STATUSES,
)


def _apply(world: World, step: Step) -> PairInput | None:
    """Change the world as the LCA would, and return what the SCS feeds the machine."""
    what, name, new_status = step
    view = world.view(name)
    if what == "register":
        if view.up:
            return None
        world.set(name, up=True, starting=False, status=ApplicationStatus.UNKNOWN)
        world.connected[name] = True
        world.belief[name] = None
        return registered(name)
    if what == "report":
        if not view.up or view.status is new_status:
            return None
        world.set(name, status=new_status)
        return status(name)
    if what in ("disconnect", "exit"):
        if not world.connected[name]:
            return None
        gone = ApplicationStatus.STOPPED if what == "exit" else ApplicationStatus.UNKNOWN
        world.set(name, up=False, status=gone)
        world.connected[name] = False
        world.belief[name] = None
        return lost(name, "exited" if what == "exit" else "disconnected")
    if what == "hang":
        if not view.up:
            return None
        world.set(name, up=False, status=ApplicationStatus.UNKNOWN)
        return lost(name, "hung")
    if what == "recover":
        if view.up or not world.connected[name]:
            return None
        world.set(name, up=True, status=new_status)
        return recovered(name)
    if what == "start":
        if world.connected[name] or view.starting:
            return None
        world.set(name, starting=True, status=ApplicationStatus.START_PENDING)
        return None
    if what == "start-failed":
        if not view.starting:
            return None
        world.set(name, starting=False, status=ApplicationStatus.STOPPED)
        return lost(name, "failed to start")
    return switchover_requested(name)


def _run(steps: list[Step]) -> None:
    """Feed ``steps`` as the SCS would, checking the safety rules after every decision."""
    m = HaPairMachine(A, B)
    world = World()
    for step in steps:
        event = _apply(world, step)
        if event is None:
            continue
        decision = m.handle(event, dict(world.views))
        for action in decision.actions:
            if isinstance(action, AssignMode) and world.connected[action.application]:
                world.belief[action.application] = action.mode
        _check_step(world, decision)


def _check_step(world: World, decision: Decision) -> None:
    actions = list(decision.actions)
    for switch in (a for a in actions if isinstance(a, Switchover)):
        if world.view(switch.from_).up:
            demote = actions.index(AssignMode(switch.from_, BACKUP))
            promote = actions.index(AssignMode(switch.to, PRIMARY))
            assert demote < promote, f"{switch.to} made PRIMARY before {switch.from_} BACKUP"
    for action in decision.actions:
        if isinstance(action, Switchover):
            target = world.view(action.to)
            assert target.up, f"switchover to {action.to}, which is not up"
            assert target.status is RUNNING, f"switchover to {action.to} in {target.status}"
        if isinstance(action, AssignMode) and action.mode is PRIMARY:
            status = world.view(action.application).status
            assert status is not SU, f"{action.application} made PRIMARY while {status}"
    primaries = [
        name
        for name in (A, B)
        if world.view(name).up and world.belief[name] is ExecutionMode.PRIMARY
    ]
    assert len(primaries) <= 1, f"two members up and running as PRIMARY: {world}"


@settings(max_examples=400, deadline=None)
@given(st.lists(_STEPS, max_size=40))
def test_property_switchover_only_to_a_running_member(steps: list[Step]) -> None:
    """Whatever happens, a Switchover never targets a member that is not up and RUNNING,
    no member reporting SERVICE_UNAVAILABLE is made PRIMARY, and no two members that are
    up are left running as PRIMARY (one told PRIMARY without the other being demoted)."""
    _run(steps)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(InputKind)),
            st.sampled_from([A, B]),
            st.fixed_dictionaries(
                {},
                optional={
                    A: st.builds(MemberView, st.just(A), st.booleans(), st.booleans(), _STATUSES),
                    B: st.builds(MemberView, st.just(B), st.booleans(), st.booleans(), _STATUSES),
                },
            ),
        ),
        max_size=30,
    )
)
def test_property_arbitrary_views(
    steps: list[tuple[InputKind, str, dict[str, MemberView]]],
) -> None:
    """Even fed inconsistent snapshots, the machine never switches over to a member that
    is not up and RUNNING, names its rule when it acts, and keeps a primary when ACTIVE."""
    m = HaPairMachine(A, B)
    for kind, name, members in steps:
        decision = m.handle(PairInput(kind, name, "test"), members)
        if decision.actions:
            assert decision.rule
        for action in decision.actions:
            if isinstance(action, Switchover):
                target = members.get(action.to) or MemberView(action.to)
                assert target.up
                assert target.status is RUNNING
            if isinstance(action, Switchover | Refusal):
                assert {action.from_, action.to} == {A, B}
        promoted = [
            a.application
            for a in decision.actions
            if isinstance(a, AssignMode) and a.mode is PRIMARY
        ]
        assert len(promoted) <= 1
        if m.current.state is PairState.ACTIVE:
            assert m.current.primary in (A, B)


def test_promote_unavailable_backup_takes_a_service_unavailable_backup() -> None:
    """With our SCS option promote-unavailable-backup, R5 is off: a backup that is up is
    promoted whatever its status; the vendor's order (demote first) still holds."""
    m = HaPairMachine(A, B, promote_unavailable_backup=True)
    m.current = PairMachineState(PairState.ACTIVE, A)
    members = {
        A: MemberView(A, up=True, status=RUNNING),
        B: MemberView(B, up=True, status=SU),
    }
    decision = m.handle(PairInput(InputKind.SWITCHOVER_REQUESTED, A), members)
    assert decision.actions == (
        Switchover(A, B, "manual switchover"),
        AssignMode(A, BACKUP),
        AssignMode(B, PRIMARY),
    )
    gone = {A: MemberView(A, up=True, status=RUNNING), B: MemberView(B, up=False, status=SU)}
    m.current = PairMachineState(PairState.ACTIVE, A)
    refused = m.handle(PairInput(InputKind.SWITCHOVER_REQUESTED, A), gone)
    assert isinstance(refused.actions[0], Refusal), "a backup that is not up is never promoted"
