"""The SCS decision rules for one HA pair, as an explicit state machine.

Pure: no Twisted, no I/O.  The SCS feeds it one :class:`PairInput` at a time with
a snapshot of both members, and carries out the :class:`Decision` it returns.  Each
rule is named (``R1`` ...) after ``docs/ha-rules.md``, which gives its reason.

States:

``WAITING``
    Nobody holds the primary role yet; the configured primary is expected.
``ACTIVE``
    ``primary`` holds the primary role and is healthy.
``FAILED``
    The primary failed and no backup could take over; ``primary`` names the
    member that held the role (``holding``: whether it still holds it, connected or back
    from a hang).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode


class PairState(enum.StrEnum):
    """Where an HA pair stands."""

    WAITING = "waiting"
    ACTIVE = "active"
    FAILED = "failed"


FAILING_STATUSES = frozenset(
    {ApplicationStatus.SERVICE_UNAVAILABLE, ApplicationStatus.STOPPED, ApplicationStatus.UNKNOWN}
)
"""A primary that reports one of these has failed."""


@dataclass(frozen=True)
class MemberView:
    """What the SCS knows of one member when it decides."""

    name: str
    up: bool = False
    """Registered on a live connection and answering heartbeats."""
    starting: bool = False
    """Started by the LCA and not yet registered (``START_PENDING``)."""
    status: ApplicationStatus = ApplicationStatus.UNKNOWN
    hung: bool = False
    """Registered and connected, but silent for longer than its heartbeat period."""
    reachable: bool = True
    """The SCS has its link to the member's LCA (``up`` is False when it has not)."""


class InputKind(enum.StrEnum):
    """The inputs the pair machine accepts."""

    REGISTERED = "registered"
    STATUS = "status"
    LOST = "lost"
    RECOVERED = "recovered"
    """A member that was hung (silent past its heartbeat) spoke again."""
    SWITCHOVER_REQUESTED = "switchover-requested"


@dataclass(frozen=True)
class PairInput:
    """One input: what happened to which member (``cause`` says why it was lost)."""

    kind: InputKind
    member: str
    cause: str = ""


@dataclass(frozen=True)
class AssignMode:
    """Tell ``application`` to run in ``mode``."""

    application: str
    mode: ExecutionMode


@dataclass(frozen=True)
class Switchover:
    """The primary role moves from ``from_`` to ``to``."""

    from_: str
    to: str
    reason: str


@dataclass(frozen=True)
class Refusal:
    """A switchover was wanted but ``to`` cannot take the service."""

    from_: str
    to: str
    reason: str


Action = AssignMode | Switchover | Refusal


@dataclass(frozen=True)
class Decision:
    """The outcome of one input: the actions to carry out and the rule that applied."""

    actions: tuple[Action, ...] = ()
    rule: str = ""


@dataclass(frozen=True)
class PairMachineState:
    """The machine's state and its data."""

    state: PairState = PairState.WAITING
    primary: str | None = None
    holding: bool = False


Members = Mapping[str, MemberView]


@dataclass
class HaPairMachine:
    """The decision rules of one pair ``configured_primary`` / ``configured_backup``."""

    configured_primary: str
    configured_backup: str
    current: PairMachineState = field(default_factory=PairMachineState)
    promote_unavailable_backup: bool = False
    """Our SCS option: promote a backup that is up whatever its status (R5 off)."""

    def peer(self, name: str) -> str:
        """The other member of the pair."""
        return (
            self.configured_backup if name == self.configured_primary else (self.configured_primary)
        )

    def handle(self, event: PairInput, members: Members) -> Decision:
        """Feed one input; returns what to do.  Inputs with no rule change nothing."""
        rule = _RULES.get((self.current.state, event.kind))
        if rule is None:
            return Decision()
        new_state, decision = rule(self, event, members)
        self.current = new_state
        return decision

    # -- helpers used by the rules ---------------------------------------------

    def _view(self, members: Members, name: str) -> MemberView:
        return members.get(name) or MemberView(name)

    def _ready(self, members: Members, name: str) -> bool:
        """Whether ``name`` may take the primary role: connected, answering and RUNNING
        (R5), or only connected and answering with ``promote_unavailable_backup``."""
        view = self._view(members, name)
        if self.promote_unavailable_backup:
            return view.up
        return view.up and view.status is ApplicationStatus.RUNNING

    def _why_not_ready(self, members: Members, name: str) -> str:
        view = self._view(members, name)
        if not view.reachable:
            return f"backup {name} is unreachable (SCS lost the link to its LCA)"
        if view.hung:
            return f"backup {name} is not answering (hung)"
        if not view.up:
            return (
                f"backup {name} is not connected"
                if not view.starting
                else (f"backup {name} is still starting")
            )
        return f"backup {name} is {view.status.value}, not RUNNING"

    def _switch(self, members: Members, old: str, new: str, reason: str) -> tuple[Action, ...]:
        """A switchover in the vendor's order: the old primary, if it is still connected,
        is made BACKUP first, then the new one PRIMARY (never two primaries)."""
        actions: list[Action] = [Switchover(old, new, reason)]
        if self._view(members, old).up:
            actions.append(AssignMode(old, ExecutionMode.BACKUP))
        actions.append(AssignMode(new, ExecutionMode.PRIMARY))
        return tuple(actions)

    def _fail_over(self, members: Members, cause: str) -> tuple[PairMachineState, Decision]:
        """R4: the primary failed; the backup takes over only if it is ready (R5)."""
        primary = self.current.primary
        assert primary is not None
        backup = self.peer(primary)
        primary_up = self._view(members, primary).up
        if self._ready(members, backup):
            actions = self._switch(members, primary, backup, cause)
            return PairMachineState(PairState.ACTIVE, backup), Decision(actions, "R4")
        refusal = Refusal(primary, backup, f"{cause}; {self._why_not_ready(members, backup)}")
        return (
            PairMachineState(PairState.FAILED, primary, holding=primary_up),
            Decision((refusal,), "R5"),
        )


Rule = Callable[[HaPairMachine, PairInput, Members], tuple[PairMachineState, Decision]]


def _waiting_registered(
    m: HaPairMachine, event: PairInput, members: Members
) -> tuple[PairMachineState, Decision]:
    """R1/R2: the configured primary, or a lone member, takes the primary role."""
    name = event.member
    peer = m._view(members, m.peer(name))
    if name == m.configured_primary:
        return PairMachineState(PairState.ACTIVE, name), Decision(
            (AssignMode(name, ExecutionMode.PRIMARY),), "R1"
        )
    if peer.starting or peer.up:
        return m.current, Decision((AssignMode(name, ExecutionMode.BACKUP),), "R1")
    return PairMachineState(PairState.ACTIVE, name), Decision(
        (AssignMode(name, ExecutionMode.PRIMARY),), "R2"
    )


def _waiting_lost(
    m: HaPairMachine, event: PairInput, members: Members
) -> tuple[PairMachineState, Decision]:
    """R3: the expected primary never came up; a RUNNING backup takes over."""
    if event.member != m.configured_primary:
        return m.current, Decision()
    backup = m.configured_backup
    if not m._view(members, backup).up:
        return m.current, Decision()
    if m._ready(members, backup):
        return PairMachineState(PairState.ACTIVE, backup), Decision(
            (
                Switchover(event.member, backup, f"primary {event.member} {event.cause}"),
                AssignMode(backup, ExecutionMode.PRIMARY),
            ),
            "R3",
        )
    reason = f"primary {event.member} {event.cause}; {m._why_not_ready(members, backup)}"
    return PairMachineState(PairState.FAILED, event.member, holding=False), Decision(
        (Refusal(event.member, backup, reason),), "R5"
    )


def _waiting_status(
    m: HaPairMachine, event: PairInput, members: Members
) -> tuple[PairMachineState, Decision]:
    """R2: a member that is RUNNING while its peer is neither up nor starting is alone."""
    peer = m._view(members, m.peer(event.member))
    if m._ready(members, event.member) and not (peer.up or peer.starting):
        return PairMachineState(PairState.ACTIVE, event.member), Decision(
            (AssignMode(event.member, ExecutionMode.PRIMARY),), "R2"
        )
    return m.current, Decision()


def _active_registered(
    m: HaPairMachine, event: PairInput, members: Members
) -> tuple[PairMachineState, Decision]:
    """R1: with a healthy primary in place, a newcomer is the backup."""
    mode = ExecutionMode.PRIMARY if event.member == m.current.primary else ExecutionMode.BACKUP
    return m.current, Decision((AssignMode(event.member, mode),), "R1")


def _active_recovered(
    m: HaPairMachine, event: PairInput, members: Members
) -> tuple[PairMachineState, Decision]:
    """R1: a member back from a hang is told its role again; it may still believe it is
    the primary it was before the switchover, and nobody told it otherwise."""
    return _active_registered(m, event, members)


def _active_status(
    m: HaPairMachine, event: PairInput, members: Members
) -> tuple[PairMachineState, Decision]:
    """R4: a primary reporting a failing status is failed over."""
    view = m._view(members, event.member)
    if event.member == m.current.primary and view.status in FAILING_STATUSES:
        return m._fail_over(members, f"primary {event.member} reported {view.status.value}")
    return m.current, Decision()


def _active_lost(
    m: HaPairMachine, event: PairInput, members: Members
) -> tuple[PairMachineState, Decision]:
    """R4: a primary that died, disconnected or hung is failed over."""
    if event.member == m.current.primary:
        return m._fail_over(members, f"primary {event.member} {event.cause}")
    return m.current, Decision()


def _active_switchover(
    m: HaPairMachine, event: PairInput, members: Members
) -> tuple[PairMachineState, Decision]:
    """R6: a manual switchover follows the same rule as an automatic one."""
    primary = m.current.primary
    assert primary is not None
    backup = m.peer(primary)
    if m._ready(members, backup):
        actions = m._switch(members, primary, backup, "manual switchover")
        return PairMachineState(PairState.ACTIVE, backup), Decision(actions, "R6")
    reason = f"manual switchover; {m._why_not_ready(members, backup)}"
    return m.current, Decision((Refusal(primary, backup, reason),), "R6")


def _failed_registered(
    m: HaPairMachine, event: PairInput, members: Members
) -> tuple[PairMachineState, Decision]:
    """R7: after a failure, a newcomer is primary only if nobody holds the role."""
    holder = m.current.primary if m.current.holding else None
    if holder is not None and holder != event.member:
        return m.current, Decision((AssignMode(event.member, ExecutionMode.BACKUP),), "R7")
    return PairMachineState(PairState.ACTIVE, event.member), Decision(
        (AssignMode(event.member, ExecutionMode.PRIMARY),), "R7"
    )


def _failed_status(
    m: HaPairMachine, event: PairInput, members: Members
) -> tuple[PairMachineState, Decision]:
    """R8: a member that becomes RUNNING after a failure takes (or keeps) the service."""
    if not m._ready(members, event.member):
        return m.current, Decision()
    former = m.current.primary
    if event.member == former:
        return PairMachineState(PairState.ACTIVE, former), Decision(rule="R8")
    actions: list[Action] = []
    if former is not None:
        actions.append(Switchover(former, event.member, f"primary {former} failed earlier"))
        if m.current.holding:
            actions.append(AssignMode(former, ExecutionMode.BACKUP))
    actions.append(AssignMode(event.member, ExecutionMode.PRIMARY))
    return PairMachineState(PairState.ACTIVE, event.member), Decision(tuple(actions), "R8")


def _failed_recovered(
    m: HaPairMachine, event: PairInput, members: Members
) -> tuple[PairMachineState, Decision]:
    """R8 when the member back from a hang is RUNNING.  Otherwise (R7) the failed primary
    holds the role again, and the other member is told BACKUP: either may still believe
    it is the primary, and only one may."""
    if m._ready(members, event.member):
        return _failed_status(m, event, members)
    if event.member == m.current.primary:
        return replace(m.current, holding=True), Decision()
    return m.current, Decision((AssignMode(event.member, ExecutionMode.BACKUP),), "R7")


def _failed_lost(
    m: HaPairMachine, event: PairInput, members: Members
) -> tuple[PairMachineState, Decision]:
    """The failed primary is gone for good: nobody holds the role now."""
    if event.member == m.current.primary:
        return replace(m.current, holding=False), Decision()
    return m.current, Decision()


def _refuse_without_primary(
    m: HaPairMachine, event: PairInput, members: Members
) -> tuple[PairMachineState, Decision]:
    """R6: with no healthy primary there is nothing to switch over from."""
    former = m.current.primary or m.configured_primary
    backup = m.peer(former)
    reason = f"manual switchover; no healthy primary ({m.current.state.value})"
    if m.current.state is PairState.FAILED and not m._ready(members, backup):
        reason = f"manual switchover; {m._why_not_ready(members, backup)}"
    return m.current, Decision((Refusal(former, backup, reason),), "R6")


_RULES: dict[tuple[PairState, InputKind], Rule] = {
    (PairState.WAITING, InputKind.REGISTERED): _waiting_registered,
    (PairState.WAITING, InputKind.LOST): _waiting_lost,
    (PairState.WAITING, InputKind.STATUS): _waiting_status,
    (PairState.WAITING, InputKind.RECOVERED): _waiting_status,
    (PairState.WAITING, InputKind.SWITCHOVER_REQUESTED): _refuse_without_primary,
    (PairState.ACTIVE, InputKind.REGISTERED): _active_registered,
    (PairState.ACTIVE, InputKind.STATUS): _active_status,
    (PairState.ACTIVE, InputKind.LOST): _active_lost,
    (PairState.ACTIVE, InputKind.RECOVERED): _active_recovered,
    (PairState.ACTIVE, InputKind.SWITCHOVER_REQUESTED): _active_switchover,
    (PairState.FAILED, InputKind.REGISTERED): _failed_registered,
    (PairState.FAILED, InputKind.STATUS): _failed_status,
    (PairState.FAILED, InputKind.LOST): _failed_lost,
    (PairState.FAILED, InputKind.RECOVERED): _failed_recovered,
    (PairState.FAILED, InputKind.SWITCHOVER_REQUESTED): _refuse_without_primary,
}
"""The whole machine: every (state, input) pair that does something.  Any other
pair is ignored on purpose (for example a backup's status while the primary is
healthy only goes to the journal)."""
