"""Application records, and the one feed that announces every change to them.

The registry is the single owner of every application's record.  Every change
goes through :meth:`ApplicationRegistry.note`, is written to the journal with the
injected clock's time, and is handed to the registry's :class:`ChangeFeed`.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from twisted.internet.interfaces import IReactorTime

from lca_common.protocol.messages import ApplicationStatus, EventApplicationInfo, ExecutionMode
from lca_emulator.journal import JournalEntry, JournalEvent, StatusJournal


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class RecordChange:
    """One recorded change: the record before and after, and the journal event."""

    before: ApplicationRecord
    after: ApplicationRecord
    event: JournalEvent

    @property
    def shown_state_changed(self) -> bool:
        """Whether the status or mode that clients see changed."""
        return (self.before.status, self.before.mode) != (self.after.status, self.after.mode)


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
        self._subscribers: list[ChangeSubscriber] = []
        self._decider: ChangeDecider | None = None
        self._queue: deque[RecordChange] = deque()
        self._announcing = False

    def subscribe(self, subscriber: ChangeSubscriber) -> Callable[[], None]:
        """Call ``subscriber`` for every change; returns a function that stops it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def decide_with(self, decider: ChangeDecider) -> None:
        """Make ``decider`` the one party that acts on changes."""
        if self._decider is not None:
            raise ValueError("a change feed has one decider")
        self._decider = decider

    def publish(self, change: RecordChange) -> None:
        """Announce ``change`` (after any change still being announced)."""
        self._queue.append(change)
        if self._announcing:
            return
        self._announcing = True
        try:
            while self._queue:
                current = self._queue.popleft()
                act = self._decider.consider(current) if self._decider is not None else None
                for subscriber in list(self._subscribers):
                    subscriber(current)
                if act is not None:
                    act()
        finally:
            self._announcing = False


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP: Final = _Keep.KEEP
"""Leave this field of a record as it is."""


class ApplicationRegistry:
    """Owns the application records; journals every change and announces it."""

    def __init__(self, clock: IReactorTime, journal: StatusJournal | None = None) -> None:
        self.clock = clock
        self.journal = journal if journal is not None else StatusJournal()
        self.changes = ChangeFeed()
        self._records: dict[str, ApplicationRecord] = {}

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

    def note(
        self,
        name: str,
        event: JournalEvent,
        detail: str = "",
        *,
        status: ApplicationStatus | _Keep = KEEP,
        mode: ExecutionMode | _Keep = KEEP,
        host: str | _Keep | None = KEEP,
        pid: int | _Keep | None = KEEP,
        managed: bool | _Keep = KEEP,
        connected: bool | _Keep = KEEP,
        registered: bool | _Keep = KEEP,
        hung: bool | _Keep = KEEP,
        reported_status: ApplicationStatus | _Keep = KEEP,
    ) -> ApplicationRecord:
        """Change ``name``'s record (creating it), journal ``event`` and announce it.

        Fields left at :data:`KEEP` stay as they are; ``since`` moves only when the
        status or mode changes.
        """
        fields: dict[str, Any] = {
            "status": status,
            "mode": mode,
            "host": host,
            "pid": pid,
            "managed": managed,
            "connected": connected,
            "registered": registered,
            "hung": hung,
            "reported_status": reported_status,
        }
        before = self._records.get(name) or ApplicationRecord(name=name, since=self.now())
        after = dataclasses.replace(
            before, **{key: value for key, value in fields.items() if value is not KEEP}
        )
        if (after.status, after.mode) != (before.status, before.mode):
            after = dataclasses.replace(after, since=self.now())
        self._records[name] = after
        self.journal.append(JournalEntry(self.now(), name, event, after.status, after.mode, detail))
        self.changes.publish(RecordChange(before, after, event))
        return after
