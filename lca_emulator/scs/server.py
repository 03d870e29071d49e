"""The SCS side: HA pairs.  Turns registry changes into pair inputs and carries out
the decisions of :mod:`lca_emulator.scs.ha` (mode changes, switchovers, refusals).

The SCS is its registry's decider: it decides on each change, and carries the
decision out once every subscriber has heard of the change (see
:class:`~lca_emulator.registry.ChangeFeed`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeAlias

from lca_common.protocol.messages import (
    ApplicationStatus,
    EventSwitchover,
    EventSwitchoverRefused,
    ExecutionMode,
)
from lca_emulator.journal import LOG_SPLIT_BRAIN, LOG_SPLIT_BRAIN_RECOVERED, JournalEvent
from lca_emulator.lca.agent import LocalControlAgent
from lca_emulator.registry import ApplicationRegistry, RecordChange
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


@dataclass(frozen=True)
class HaPair:
    """A primary/backup pair that SCS manages as one service; ``name`` defaults to ``A/B``."""

    primary: str
    backup: str
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", f"{self.primary}/{self.backup}")


@dataclass(frozen=True)
class ScsOptions:
    """The SCS's own options (the ``scs:`` section of a scenario or serve config)."""

    promote_unavailable_backup: bool = False
    """Our choice, default off: promote a backup that is up whatever its status, to
    rehearse an SCS that does not refuse (no vendor document says the real one does)."""


SwitchoverNotice: TypeAlias = EventSwitchover | EventSwitchoverRefused
_LOSS_EVENTS = {
    JournalEvent.DISCONNECTED: "disconnected",
    JournalEvent.EXITED: "exited",
    JournalEvent.HUNG: "hung",
}


class SwitchoverRefusedError(Exception):
    """A manual switchover could not be done; the message gives the reason."""


class SolutionControlServer:
    """Decides which member of each HA pair is primary, and announces switchovers."""

    def __init__(
        self,
        registry: ApplicationRegistry,
        lca: LocalControlAgent,
        pairs: Iterable[HaPair] = (),
        options: ScsOptions | None = None,
    ) -> None:
        self.registry = registry
        self.lca = lca
        self.options = options if options is not None else ScsOptions()
        self._pairs: dict[str, tuple[HaPair, HaPairMachine]] = {}
        self._listeners: list[Callable[[SwitchoverNotice], None]] = []
        self._suspended = False
        self._split: set[str] = set()
        self._vip: set[str] = set()
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
        split = self._split_brain_change(entry[0])
        decision = Decision()
        pair_input = _pair_input(change)
        if pair_input is not None and not self._suspended:
            decision = self._decide(entry, pair_input)
        if not decision.actions and split is None:
            return None

        def act() -> None:
            if split is not None:
                split()
            self._carry_out(entry[0], decision)

        return act

    def _split_brain_change(self, pair: HaPair) -> Callable[[], None] | None:
        """Both members up and PRIMARY is a split brain (vendor log 10329; "recovered",
        10330, once it ends): journaled once when it starts, once when it ends."""
        records = [self.registry.get(pair.primary), self.registry.get(pair.backup)]
        split = all(r is not None and r.up and r.mode is ExecutionMode.PRIMARY for r in records)
        if split == (pair.name in self._split):
            return None
        if split:
            self._split.add(pair.name)
            detail = f"{pair.name}: {pair.primary} and {pair.backup} are both PRIMARY"
            log_id = LOG_SPLIT_BRAIN
        else:
            self._split.discard(pair.name)
            detail = f"{pair.name}: recovered from split brain"
            log_id = LOG_SPLIT_BRAIN_RECOVERED

        def journal() -> None:
            self.registry.note(pair.backup, JournalEvent.SPLIT_BRAIN, detail, log_id=log_id)

        return journal

    # -- internals ---------------------------------------------------------------

    def _members(self, pair: HaPair) -> dict[str, MemberView]:
        views = {}
        for name in (pair.primary, pair.backup):
            record = self.registry.get(name)
            if record is None:
                continue
            views[name] = MemberView(
                name=name,
                up=record.up,
                starting=record.status is ApplicationStatus.START_PENDING and not record.registered,
                hung=record.hung,
                status=record.status,
            )
        return views

    def _decide(self, entry: tuple[HaPair, HaPairMachine], event: PairInput) -> Decision:
        pair, machine = entry
        return machine.handle(event, self._members(pair))

    def _carry_out(self, pair: HaPair, decision: Decision) -> None:
        for action in decision.actions:
            self._act(pair, action, decision.rule)
        for action in decision.actions:
            if isinstance(action, Switchover) and self._vip & {pair.primary, pair.backup}:
                self._move_vip(action)

    def uses_ip_takeover(self, application: str) -> None:
        """``application`` runs with IP Address Takeover (``[TServer] control-vip-scripts``
        true): its pair's switchovers move the virtual IP."""
        self._vip.add(application)

    def _move_vip(self, switch: Switchover) -> None:
        """After the modes, the VIP scripts: disable on the old primary's host, then enable
        on the new one's (vendor: SIP Server HA Deployment Guide, IP Address Takeover
        workflow).  Only journaled: no script runs (hosts are not emulated yet)."""
        for name, event in (
            (switch.from_, JournalEvent.VIP_DISABLED),
            (switch.to, JournalEvent.VIP_ENABLED),
        ):
            record = self.registry.get(name)
            host = record.host if record is not None and record.host else "-"
            self.registry.note(name, event, f"host={host}")

    def _act(self, pair: HaPair, action: Action, rule: str) -> None:
        now = self.registry.now()
        if isinstance(action, AssignMode):
            self.registry.note(
                action.application, JournalEvent.MODE_REQUESTED, f"{action.mode.value} ({rule})"
            )
            self.lca.change_mode(action.application, action.mode)
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


def _pair_input(change: RecordChange) -> PairInput | None:
    """What ``change`` means to the member's pair machine, if anything."""
    before, after, event = change.before, change.after, change.event
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
