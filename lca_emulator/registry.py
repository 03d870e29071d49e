"""Application records, and the one feed that announces every change to them.

The registry is the single owner of every application's record.  Every change
goes through :meth:`ApplicationRegistry.note`, is written to the journal with the
injected clock's time, and is handed to the registry's :class:`ChangeFeed`.

Records of applications that registered by themselves (neither configured nor kept
as HA pair members) are forgotten some time after their connection closed, so that
a long-running emulator does not collect every name it ever saw.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, TypedDict

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from lca_common.protocol.messages import ApplicationStatus, EventApplicationInfo, ExecutionMode
from lca_emulator.frozen import direct_init
from lca_emulator.journal import JournalEntry, JournalEvent, StatusJournal

if TYPE_CHECKING:
    from typing_extensions import Unpack

FORGET_DEPARTED_AFTER: Final = 300.0
"""Seconds after its connection closed that a self-registered application is forgotten."""

MAX_DEPARTED: Final = 1000
"""Departed self-registered applications remembered at most; the oldest go first."""


class RecordFields(TypedDict, total=False):
    """The fields of an :class:`ApplicationRecord` a change may set (the rest stay)."""

    status: ApplicationStatus
    mode: ExecutionMode
    host: str | None
    pid: int | None
    managed: bool
    connected: bool
    registered: bool
    hung: bool
    reported_status: ApplicationStatus


@direct_init  # one is built at every report
@dataclass(frozen=True, slots=True)
class ApplicationRecord:
    """One application as the LCA sees it.

    ``reported_status`` is the last status the application itself reported;
    ``status`` is what the Management Layer shows (``UNKNOWN`` when it lost
    contact, ``STOPPED`` when its process ended, ``START_PENDING`` while it starts).
    """

    name: str
    status: ApplicationStatus = ApplicationStatus.UNKNOWN
    mode: ExecutionMode = ExecutionMode.UNKNOWN
    host: str | None = None
    pid: int | None = None
    since: float = 0.0
    managed: bool = False
    connected: bool = False
    registered: bool = False
    hung: bool = False
    reported_status: ApplicationStatus = ApplicationStatus.UNKNOWN

    @property
    def up(self) -> bool:
        """Registered on a live connection and answering."""
        return self.registered and self.connected and not self.hung

    def updated(self, now: float, fields: RecordFields) -> ApplicationRecord:
        """This record with ``fields`` changed; ``since`` becomes ``now`` when the status
        or mode changed."""
        if not fields:
            return self
        # Built field by field: ``dataclasses.replace`` costs twice as much, and a record
        # changes at every report (tests/test_registry.py checks every field is here).
        status, mode = fields.get("status", self.status), fields.get("mode", self.mode)
        changed = status != self.status or mode != self.mode
        return ApplicationRecord(  # positional: cheaper than keywords, in the fields' order
            self.name,
            status,
            mode,
            fields.get("host", self.host),
            fields.get("pid", self.pid),
            now if changed else self.since,
            fields.get("managed", self.managed),
            fields.get("connected", self.connected),
            fields.get("registered", self.registered),
            fields.get("hung", self.hung),
            fields.get("reported_status", self.reported_status),
        )

    def info(self, ref: int | None = None) -> EventApplicationInfo:
        """This record as the SCS endpoint's ``EventApplicationInfo``."""
        return EventApplicationInfo(
            application=self.name,
            status=self.status,
            mode=self.mode,
            time=self.since,
            host=self.host,
            pid=self.pid,
            ref=ref,
        )


@direct_init  # one is built at every report
@dataclass(frozen=True, slots=True)
class RecordChange:
    """One recorded change: the record before and after, and the journal event."""

    before: ApplicationRecord
    after: ApplicationRecord
    event: JournalEvent
    detail: str = ""

    @property
    def shown_state_changed(self) -> bool:
        """Whether the status or mode that clients see changed."""
        before, after = self.before, self.after
        return before.status != after.status or before.mode != after.mode


ChangeSubscriber = Callable[[RecordChange], None]
"""Hears of every change; it may send or log, but never writes to the registry."""


class ChangeDecider(Protocol):
    """The one party that acts on changes (the SCS): it decides, then acts."""

    def consider(self, change: RecordChange) -> Callable[[], None] | None:
        """Decide on ``change``; return what to carry out once subscribers heard of it."""


class ChangeFeed:
    """Announces each change, in order: the decider decides, every subscriber hears of
    the change, then the decision is carried out.  Changes that the decision records
    wait their turn, so subscribers always hear of a cause before its effects."""

    def __init__(self) -> None:
        self._subscribers: tuple[ChangeSubscriber, ...] = ()
        """Replaced, never changed in place: an announcement goes on with those it began
        with, whoever leaves or joins meanwhile (and copies nothing per change)."""
        self._decider: ChangeDecider | None = None
        self._queue: deque[RecordChange] = deque()
        self._announcing = False

    def subscribe(self, subscriber: ChangeSubscriber) -> Callable[[], None]:
        """Call ``subscriber`` for every change; returns a function that stops it."""
        self._subscribers = (*self._subscribers, subscriber)
        return lambda: self._unsubscribe(subscriber)

    def _unsubscribe(self, subscriber: ChangeSubscriber) -> None:
        remaining = list(self._subscribers)
        remaining.remove(subscriber)
        self._subscribers = tuple(remaining)

    @property
    def subscribers(self) -> int:
        """How many subscribers hear of changes now."""
        return len(self._subscribers)

    def decide_with(self, decider: ChangeDecider) -> None:
        """Make ``decider`` the one party that acts on changes."""
        if self._decider is not None:
            raise ValueError("a change feed has one decider")
        self._decider = decider

    def publish(self, *changes: RecordChange) -> None:
        """Announce ``changes`` (after any change still being announced)."""
        queue = self._queue
        queue.extend(changes)
        if self._announcing:
            return
        self._announcing = True
        decider = self._decider
        try:
            while queue:
                current = queue.popleft()
                act = decider.consider(current) if decider is not None else None
                for subscriber in self._subscribers:
                    subscriber(current)
                if act is not None:
                    act()
        finally:
            self._announcing = False


class Records(Protocol):
    """Where an LCA and the process control read and write application records: the
    registry, or the SCS's link to their host's LCA (:class:`~lca_emulator.scs.links.LcaLink`),
    which keeps them while the link is lost."""

    @property
    def clock(self) -> IReactorTime:
        """The clock records are timed by."""

    def get(self, name: str) -> ApplicationRecord | None:
        """The record of ``name``, if known."""

    def note(
        self,
        name: str,
        event: JournalEvent,
        detail: str = "",
        *,
        log_id: int | None = None,
        **fields: Unpack[RecordFields],
    ) -> ApplicationRecord:
        """Change ``name``'s record, as :meth:`ApplicationRegistry.note`."""


class ApplicationRegistry:
    """Owns the application records; journals every change and announces it.

    :param forget_departed_after: seconds after which the record of an application
        that is not configured (``managed``), not :meth:`kept <keep>` and no longer
        connected is forgotten (``None``: never).  At most ``max_departed`` such records
        wait to be forgotten; past that the oldest departure is forgotten at once.
    """

    def __init__(
        self,
        clock: IReactorTime,
        journal: StatusJournal | None = None,
        *,
        forget_departed_after: float | None = None,
        max_departed: int = MAX_DEPARTED,
    ) -> None:
        self.clock = clock
        self.journal = journal if journal is not None else StatusJournal()
        self.changes = ChangeFeed()
        self.forget_departed_after = forget_departed_after
        self.max_departed = max_departed
        self._records: dict[str, ApplicationRecord] = {}
        self._kept: set[str] = set()
        self._departed: dict[str, IDelayedCall] = {}  # in the order they departed

    def get(self, name: str) -> ApplicationRecord | None:
        """The record of ``name``, if known."""
        return self._records.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._records

    def records(self) -> list[ApplicationRecord]:
        """Every record, in the order the applications became known."""
        return list(self._records.values())

    def now(self) -> float:
        """The current time on the injected clock."""
        return self.clock.seconds()

    def keep(self, name: str) -> None:
        """Never forget ``name``, even if it registered by itself (an HA pair member)."""
        self._kept.add(name)
        self._remember(name)

    def departed(self) -> list[str]:
        """The departed applications waiting to be forgotten, oldest departure first."""
        return list(self._departed)

    def forget(self, name: str, why: str) -> None:
        """Drop ``name``'s record (journaled; no change is announced)."""
        self._remember(name)
        record = self._records.pop(name, None)
        if record is None:
            return
        self.journal.append(
            JournalEntry(self.now(), name, JournalEvent.FORGOTTEN, record.status, record.mode, why)
        )

    def _track_departure(self, before: ApplicationRecord, after: ApplicationRecord) -> None:
        name = after.name
        if after.connected or after.managed or name in self._kept:
            if self._departed:
                self._remember(name)
            return
        after_seconds = self.forget_departed_after
        if after_seconds is None or not before.connected or name in self._departed:
            return
        self._departed[name] = self.clock.callLater(
            after_seconds, self._forget_departed, name, f"gone for {after_seconds:g} s"
        )
        while len(self._departed) > self.max_departed:
            oldest = next(iter(self._departed))
            self.forget(oldest, f"more than {self.max_departed} departed applications")

    def _forget_departed(self, name: str, why: str) -> None:
        self._departed.pop(name, None)
        self.forget(name, why)

    def _remember(self, name: str) -> None:
        call = self._departed.pop(name, None)
        if call is not None and call.active():
            call.cancel()

    def note(
        self,
        name: str,
        event: JournalEvent,
        detail: str = "",
        *,
        log_id: int | None = None,
        **fields: Unpack[RecordFields],
    ) -> ApplicationRecord:
        """Change ``name``'s record (creating it), journal ``event`` and announce it.

        Fields not given stay as they are; ``since`` moves only when the status or
        mode changes.
        """
        now = self.clock.seconds()
        before = self._records.get(name) or ApplicationRecord(name=name, since=now)
        self._records[name] = after = before.updated(now, fields)
        self.journal.append(
            JournalEntry(now, name, event, after.status, after.mode, detail, log_id)
        )
        self._track_departure(before, after)
        self.changes.publish(RecordChange(before, after, event, detail))
        return after

    def note_together(
        self,
        event: JournalEvent,
        detail: str,
        changes: Mapping[str, RecordFields],
        *,
        log_id: int | None = None,
    ) -> list[ApplicationRecord]:
        """Change several records at one moment (every application of a host that is
        lost): all are written and journaled, then announced in order, so whoever decides
        on the first already sees them all, and their effects come after them all."""
        now = self.now()
        done = []
        for name, fields in changes.items():
            before = self._records.get(name) or ApplicationRecord(name=name, since=now)
            self._records[name] = after = before.updated(now, fields)
            done.append((before, after))
        for before, after in done:
            entry = JournalEntry(now, after.name, event, after.status, after.mode, detail, log_id)
            self.journal.append(entry)
            self._track_departure(before, after)
        self.changes.publish(*(RecordChange(b, a, event, detail) for b, a in done))
        return [after for _, after in done]
