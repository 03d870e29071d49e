"""The SCS side: HA pairs.  Turns registry changes into pair inputs and carries out
the decisions of :mod:`lca_emulator.scs.ha` (mode changes, switchovers, refusals).

The SCS is its registry's decider: it decides on each change, and carries the
decision out once every subscriber has heard of the change (see
:class:`~lca_emulator.registry.ChangeFeed`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeAlias

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure

from lca_common.protocol.messages import (
    ApplicationStatus,
    EventSwitchover,
    EventSwitchoverRefused,
    ExecutionMode,
)
from lca_emulator.journal import (
    LOG_FLAPPING,
    LOG_FLAPPING_STABLE,
    LOG_NO_BRAIN,
    LOG_NO_BRAIN_RECOVERED,
    LOG_SPLIT_BRAIN,
    LOG_SPLIT_BRAIN_RECOVERED,
    JournalEvent,
)
from lca_emulator.lca.processes import ProcessExit
from lca_emulator.registry import ApplicationRecord, ApplicationRegistry, RecordChange
from lca_emulator.scs.ha import (
    Action,
    AssignMode,
    Decision,
    HaPairMachine,
    InputKind,
    MemberView,
    PairInput,
    Refusal,
    Switchover,
)

if TYPE_CHECKING:
    from lca_emulator.hosts import Hosts


@dataclass(frozen=True)
class HaPair:
    """A primary/backup pair that SCS manages as one service; ``name`` defaults to ``A/B``."""

    primary: str
    backup: str
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", f"{self.primary}/{self.backup}")


DEMOTION_WAIT: Final = 10.0
"""Seconds a promotion waits for the old primary to acknowledge BACKUP (our choice)."""

HAFLIP_OFF: Final = -1
"""``haflip-detect-timeout: -1`` turns flapping detection off."""
MIN_HAFLIP_DETECT_TIMEOUT: Final = 10
MAX_HAFLIP_DETECT_TIMEOUT: Final = 2_147_483_647
"""The vendor's valid values of ``haflip-detect-timeout``: -1, or 10 to 2147483647."""


@dataclass(frozen=True)
class ScsOptions:
    """The SCS's own options (the ``scs:`` section of a scenario or serve config)."""

    promote_unavailable_backup: bool = False
    """Our choice, default off: promote a backup that is up whatever its status, to
    rehearse an SCS that does not refuse (no vendor document says the real one does)."""
    disconnect_switchover_timeout: float = 0.0
    """Vendor ``[general]`` option: seconds to wait, after losing the link to a host's
    LCA, before counting its applications as lost (0: at once)."""
    haflip_detect_timeout: int = 10
    """Vendor ``[general]`` option: a pair whose primary role moves twice within this
    many seconds is flapping (log 10327), stable again after as long without a move
    (10328); -1: off."""

    def __post_init__(self) -> None:
        if not self.disconnect_switchover_timeout >= 0:
            raise ValueError("disconnect-switchover-timeout is 0 or more seconds")
        haflip = self.haflip_detect_timeout
        if haflip != HAFLIP_OFF and not (
            MIN_HAFLIP_DETECT_TIMEOUT <= haflip <= MAX_HAFLIP_DETECT_TIMEOUT
        ):
            raise ValueError(
                f"haflip-detect-timeout is -1 or {MIN_HAFLIP_DETECT_TIMEOUT} to "
                f"{MAX_HAFLIP_DETECT_TIMEOUT}, not {haflip}"
            )


SwitchoverNotice: TypeAlias = EventSwitchover | EventSwitchoverRefused
_LOSS_EVENTS = {
    JournalEvent.DISCONNECTED: "disconnected",
    JournalEvent.EXITED: "exited",
    JournalEvent.HUNG: "hung",
}
_LINK_LOSS_EVENTS = {
    JournalEvent.LCA_LINK_LOST: "unreachable (SCS lost the link to its LCA)",
    JournalEvent.HOST_DOWN: "lost with its host",
}
_LINK_BACK_EVENTS = frozenset({JournalEvent.LCA_LINK_RESTORED, JournalEvent.HOST_UP})


class SwitchoverRefusedError(Exception):
    """A manual switchover could not be done; the message gives the reason."""


class SolutionControlServer:
    """Decides which member of each HA pair is primary, and announces switchovers."""

    def __init__(
        self,
        registry: ApplicationRegistry,
        hosts: Hosts,
        pairs: Iterable[HaPair] = (),
        options: ScsOptions | None = None,
    ) -> None:
        self.registry = registry
        self.hosts = hosts
        self.options = options if options is not None else ScsOptions()
        self._pairs: dict[str, tuple[HaPair, HaPairMachine]] = {}
        self._listeners: list[Callable[[SwitchoverNotice], None]] = []
        self._suspended = False
        self._split: set[str] = set()
        self._no_brain: set[str] = set()
        self._had_brain: set[str] = set()
        self._flapping: set[str] = set()
        self._last_switchover: dict[str, float] = {}
        self._stable_timers: dict[str, IDelayedCall] = {}
        self._vip: set[str] = set()
        self._demoting: set[str] = set()
        """Primaries told BACKUP that have not acknowledged it yet."""
        self._held: dict[str, tuple[HaPair, AssignMode, str, IDelayedCall]] = {}
        """Promotions waiting for the old primary (the key) to be BACKUP."""
        for pair in pairs:
            machine = HaPairMachine(
                pair.primary,
                pair.backup,
                promote_unavailable_backup=self.options.promote_unavailable_backup,
            )
            for member in (pair.primary, pair.backup):
                if member in self._pairs:
                    raise ValueError(f"{member} is in more than one HA pair")
                self._pairs[member] = (pair, machine)
        registry.changes.decide_with(self)

    def listen(self, listener: Callable[[SwitchoverNotice], None]) -> Callable[[], None]:
        """Hear of every switchover and refusal; returns a function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def suspend(self) -> None:
        """Stop deciding: a whole site being shut down does not fail over member by member."""
        self._suspended = True

    def pair_of(self, application: str) -> HaPair | None:
        """The pair ``application`` belongs to, if any."""
        entry = self._pairs.get(application)
        return entry[0] if entry else None

    def state_of(self, application: str) -> HaPairMachine | None:
        """The decision machine of ``application``'s pair, if any."""
        entry = self._pairs.get(application)
        return entry[1] if entry else None

    def request_switchover(self, application: str) -> Decision:
        """A manual switchover of ``application``'s pair.

        :raises KeyError: the application is in no pair.
        :raises SwitchoverRefusedError: the backup cannot take the service.
        """
        entry = self._pairs.get(application)
        if entry is None:
            raise KeyError(application)
        decision = self._decide(entry, PairInput(InputKind.SWITCHOVER_REQUESTED, application))
        self._carry_out(entry[0], decision)
        for action in decision.actions:
            if isinstance(action, Refusal):
                raise SwitchoverRefusedError(action.reason)
        return decision

    def consider(self, change: RecordChange) -> Callable[[], None] | None:
        """Feed ``change`` to its pair's machine; return how to carry out the decision
        (and to journal a split brain that the change made or ended)."""
        entry = self._pairs.get(change.after.name)
        if entry is None:
            return None
        name = change.after.name
        released = None
        if name in self._demoting and (
            change.after.mode is not ExecutionMode.PRIMARY or not change.after.up
        ):
            released = self._release_promotion(name)
        split = self._split_brain_change(entry[0])
        no_brain = self._no_brain_change(entry[0])
        decision = None
        pair_input = _pair_input(change)
        if pair_input is not None and not self._suspended:
            decision = self._decide(entry, pair_input)
            if not decision.actions:
                decision = None
        if decision is None and split is None and no_brain is None and released is None:
            return None

        def act() -> None:
            for journal in (split, no_brain):
                if journal is not None:
                    journal()
            if decision is not None:
                self._carry_out(entry[0], decision)
            if released is not None:
                released()

        return act

    def _split_brain_change(self, pair: HaPair) -> Callable[[], None] | None:
        """Both members up and PRIMARY is a split brain (vendor log 10329; "recovered",
        10330, once it ends): journaled once when it starts, once when it ends."""
        split = _up_as_primary(self.registry.get(pair.primary)) and _up_as_primary(
            self.registry.get(pair.backup)
        )
        if split == (pair.name in self._split):  # what nearly every change finds
            return None
        return self._condition_change(
            pair,
            self._split,
            split,
            JournalEvent.SPLIT_BRAIN,
            (f"{pair.name}: {pair.primary} and {pair.backup} are both PRIMARY", LOG_SPLIT_BRAIN),
            (f"{pair.name}: recovered from split brain", LOG_SPLIT_BRAIN_RECOVERED),
        )

    def _no_brain_change(self, pair: HaPair) -> Callable[[], None] | None:
        """Neither member up, once the pair has had one up, is "no brain" (vendor alarm
        20621 of SCS 8.5.100.31; our reading: no member the SCS could make primary);
        journaled once when it starts and once ("recovered", 20623) when a member is up
        again.  Not while the SCS is suspended (a whole site shutting down)."""
        any_up = _is_up(self.registry.get(pair.primary)) or _is_up(self.registry.get(pair.backup))
        if any_up:
            self._had_brain.add(pair.name)
        if self._suspended or pair.name not in self._had_brain:
            return None
        if any_up != (pair.name in self._no_brain):  # what nearly every change finds
            return None
        return self._condition_change(
            pair,
            self._no_brain,
            not any_up,
            JournalEvent.NO_BRAIN,
            (f"{pair.name}: neither {pair.primary} nor {pair.backup} is up", LOG_NO_BRAIN),
            (f"{pair.name}: recovered, a member is up again", LOG_NO_BRAIN_RECOVERED),
        )

    def _condition_change(
        self,
        pair: HaPair,
        holding: set[str],
        now: bool,
        event: JournalEvent,
        started: tuple[str, int],
        ended: tuple[str, int],
    ) -> Callable[[], None] | None:
        """A pair condition (the pairs it holds for are in ``holding``) that starts or ends
        with this change: how to journal it, under the pair's configured backup."""
        if now == (pair.name in holding):
            return None
        if now:
            holding.add(pair.name)
        else:
            holding.discard(pair.name)
        detail, log_id = started if now else ended

        def journal() -> None:
            self.registry.note(pair.backup, event, detail, log_id=log_id)

        return journal

    def _switched(self, pair: HaPair) -> None:
        """A switchover of ``pair`` was carried out: two within ``haflip-detect-timeout``
        seconds are flapping (vendor log 10327); as long again without one, stable (10328)."""
        window = self.options.haflip_detect_timeout
        if window == HAFLIP_OFF:
            return
        now = self.registry.now()
        last = self._last_switchover.get(pair.name)
        self._last_switchover[pair.name] = now
        if last is not None and now - last <= window and pair.name not in self._flapping:
            self._flapping.add(pair.name)
            self.registry.note(
                pair.backup,
                JournalEvent.FLAPPING,
                f"{pair.name}: the primary role moved twice within {window} s "
                "(haflip-detect-timeout)",
                log_id=LOG_FLAPPING,
            )
        timer = self._stable_timers.pop(pair.name, None)
        if timer is not None and timer.active():
            timer.cancel()
        if pair.name in self._flapping:
            self._stable_timers[pair.name] = self.registry.clock.callLater(
                window, self._stable, pair
            )

    def _stable(self, pair: HaPair) -> None:
        self._stable_timers.pop(pair.name, None)
        if pair.name in self._flapping:
            self._flapping.discard(pair.name)
            self.registry.note(
                pair.backup,
                JournalEvent.FLAPPING,
                f"{pair.name}: stable, no switchover for {self.options.haflip_detect_timeout} s",
                log_id=LOG_FLAPPING_STABLE,
            )

    # -- internals ---------------------------------------------------------------

    def _members(self, pair: HaPair) -> dict[str, MemberView]:
        views = {}
        for name in (pair.primary, pair.backup):
            record = self.registry.get(name)
            if record is None:
                continue
            reachable = self.hosts.of(name).link.up
            views[name] = MemberView(
                name=name,
                up=record.up and reachable,
                starting=record.status is ApplicationStatus.START_PENDING and not record.registered,
                hung=record.hung,
                status=record.status,
                reachable=reachable,
            )
        return views

    def _decide(self, entry: tuple[HaPair, HaPairMachine], event: PairInput) -> Decision:
        pair, machine = entry
        return machine.handle(event, self._members(pair))

    def _carry_out(self, pair: HaPair, decision: Decision) -> None:
        demoted: str | None = None
        for action in decision.actions:
            if isinstance(action, Switchover):
                demoted = action.from_
            if (
                isinstance(action, AssignMode)
                and action.mode is ExecutionMode.PRIMARY
                and demoted is not None
                and demoted in self._demoting
            ):
                self._hold_promotion(pair, demoted, action, decision.rule)
                continue
            self._act(pair, action, decision.rule)
        for action in decision.actions:
            if isinstance(action, Switchover):
                if self._vip & {pair.primary, pair.backup}:
                    self._move_vip(action)
                self._switched(pair)

    def _hold_promotion(self, pair: HaPair, old: str, promote: AssignMode, rule: str) -> None:
        """The vendor's order: the old primary is BACKUP before the new one is PRIMARY
        (SIP Server HA Deployment Guide, IP Address Takeover workflow).  The promotion
        waits for the old primary to acknowledge BACKUP, to be lost, or for
        :data:`DEMOTION_WAIT` seconds (our choice: a primary that neither answers nor
        drops must not hold the service hostage)."""
        timer = self.registry.clock.callLater(DEMOTION_WAIT, self._demotion_overdue, old)
        self._held[old] = (pair, promote, rule, timer)

    def _release_promotion(self, old: str) -> Callable[[], None] | None:
        """What to do once ``old`` is BACKUP or gone: promote the new primary."""
        held = self._held.pop(old, None)
        self._demoting.discard(old)
        if held is None:
            return None
        pair, promote, rule, timer = held
        if timer.active():
            timer.cancel()
        machine = self._pairs[promote.application][1]

        def promote_now() -> None:
            if machine.current.primary == promote.application:  # still its turn
                self._act(pair, promote, rule)

        return promote_now

    def _demotion_overdue(self, old: str) -> None:
        held = self._held.pop(old, None)
        self._demoting.discard(old)
        if held is None:
            return
        pair, promote, rule, _ = held
        if self._pairs[promote.application][1].current.primary == promote.application:
            late = f"{rule}; {old} did not acknowledge BACKUP within {DEMOTION_WAIT:g} s"
            self._act(pair, promote, late)

    def uses_ip_takeover(self, application: str) -> None:
        """``application`` runs with IP Address Takeover (``[TServer] control-vip-scripts``
        true): its pair's switchovers move the virtual IP."""
        self._vip.add(application)

    def _move_vip(self, switch: Switchover) -> None:
        """After the modes, the VIP scripts: disable on the old primary's host, then enable
        on the new one's (vendor: SIP Server HA Deployment Guide, IP Address Takeover
        workflow).  Where the host has a script its LCA runs it, and the entry is
        journaled once it has ended, with how; ``enable`` waits for ``disable`` (our
        choice: the virtual IP is never up on two hosts).  A script on a host the SCS
        cannot reach does not run."""
        done = self._vip_step(switch.from_, "disable", JournalEvent.VIP_DISABLED)
        if done is None:
            self._vip_step(switch.to, "enable", JournalEvent.VIP_ENABLED)
        else:
            done.addCallback(
                lambda _: self._vip_step(switch.to, "enable", JournalEvent.VIP_ENABLED)
            )

    def _vip_step(self, name: str, which: str, event: JournalEvent) -> Deferred[None] | None:
        host = self.hosts.of(name)
        record = self.registry.get(name)
        label = record.host if record is not None and record.host else host.label
        detail = f"host={label}"
        program = host.vip.enable if which == "enable" else host.vip.disable
        runner = self.hosts.scripts
        if program is None or runner is None:
            self.registry.note(name, event, detail)
            return None
        command = " ".join(program.argv)
        if not host.link.up:
            self.registry.note(name, event, f"{detail}: {command}: not run, host unreachable")
            return None
        d = runner.run(host.name, program)

        def ended(outcome: ProcessExit) -> None:
            self.registry.note(name, event, f"{detail}: {command} {outcome.describe()}")

        def failed(failure: Failure) -> None:
            self.registry.note(
                name, event, f"{detail}: {command} could not run: {failure.getErrorMessage()}"
            )

        return d.addCallbacks(ended, failed)

    def _act(self, pair: HaPair, action: Action, rule: str) -> None:
        now = self.registry.now()
        if isinstance(action, AssignMode):
            self.registry.note(
                action.application, JournalEvent.MODE_REQUESTED, f"{action.mode.value} ({rule})"
            )
            sent = self.hosts.change_mode(action.application, action.mode)
            record = self.registry.get(action.application)
            if (
                sent
                and action.mode is ExecutionMode.BACKUP
                and record is not None
                and record.mode is ExecutionMode.PRIMARY
                and record.status is not ApplicationStatus.STOPPED  # its process is gone
            ):
                self._demoting.add(action.application)
        elif isinstance(action, Switchover):
            self.registry.note(
                action.to,
                JournalEvent.SWITCHOVER,
                f"{pair.name}: {action.from_} -> {action.to}: {action.reason} ({rule})",
            )
            self._announce(EventSwitchover(pair.name, action.from_, action.to, action.reason, now))
        else:
            self.registry.note(
                action.to,
                JournalEvent.SWITCHOVER_REFUSED,
                f"{pair.name}: {action.from_} -> {action.to}: {action.reason} ({rule})",
            )
            self._announce(
                EventSwitchoverRefused(pair.name, action.from_, action.to, action.reason, now)
            )

    def _announce(self, notice: SwitchoverNotice) -> None:
        for listener in list(self._listeners):
            listener(notice)


def _is_up(record: ApplicationRecord | None) -> bool:
    return record is not None and record.up


def _up_as_primary(record: ApplicationRecord | None) -> bool:
    return record is not None and record.up and record.mode is ExecutionMode.PRIMARY


def _pair_input(change: RecordChange) -> PairInput | None:
    """What ``change`` means to the member's pair machine, if anything."""
    before, after, event = change.before, change.after, change.event
    if event in _LINK_LOSS_EVENTS:
        lost = not after.up and (before.up or before.status is not after.status)
        return PairInput(InputKind.LOST, after.name, _LINK_LOSS_EVENTS[event]) if lost else None
    if event in _LINK_BACK_EVENTS:
        return _link_back_input(before, after)
    if event is JournalEvent.REGISTERED:
        return PairInput(InputKind.REGISTERED, after.name)
    if event in _LOSS_EVENTS and (before.up or before.status is not after.status):
        return PairInput(InputKind.LOST, after.name, _LOSS_EVENTS[event])
    if event is JournalEvent.RECOVERED:
        return PairInput(InputKind.RECOVERED, after.name)
    if after.status is not before.status and event is JournalEvent.STATUS:
        return PairInput(InputKind.STATUS, after.name, "failed to start")
    if after.status is not before.status and event is JournalEvent.START_FAILED:
        return PairInput(InputKind.LOST, after.name, "failed to start")
    return None


def _link_back_input(before: ApplicationRecord, after: ApplicationRecord) -> PairInput | None:
    """The SCS learns what became of a member behind a lost link: back up (a newcomer,
    told its role), gone meanwhile, up with another status, or up as it was (told its
    role again: a mode request may have been lost with the link)."""
    if before.up and not after.up:
        return PairInput(InputKind.LOST, after.name, "gone while its LCA was unreachable")
    if after.up and before.up and after.status is not before.status:
        return PairInput(InputKind.STATUS, after.name)
    if after.up:
        return PairInput(InputKind.REGISTERED, after.name)
    return None
