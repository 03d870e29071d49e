"""Application records and the status journal: what the Management Layer knows.

The registry is the single owner of every application's record.  Every change
goes through it, is written to the journal with the injected clock's time, and is
announced to listeners (the SCS and management subscribers).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from twisted.internet.interfaces import IReactorTime

from .protocol.messages import ApplicationStatus, EventApplicationInfo, ExecutionMode


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


class JournalEvent(enum.StrEnum):
    """What a journal entry records."""

    CONFIGURED = "configured"
    START_REQUESTED = "start-requested"
    STARTED = "started"
    START_FAILED = "start-failed"
    STOP_REQUESTED = "stop-requested"
    KILLED = "killed"
    CONNECTED = "connected"
    REGISTERED = "registered"
    STATUS = "status"
    MODE = "mode"
    MODE_REQUESTED = "mode-requested"
    DISCONNECTED = "disconnected"
    EXITED = "exited"
    HUNG = "hung"
    RECOVERED = "recovered"
    SWITCHOVER = "switchover"
    SWITCHOVER_REFUSED = "switchover-refused"
    PROTOCOL_ERROR = "protocol-error"


@dataclass(frozen=True)
class JournalEntry:
    """One line of the journal: what happened to which application, and when."""

    time: float
    application: str
    event: JournalEvent
    status: ApplicationStatus
    mode: ExecutionMode
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """This entry as a JSON-ready mapping."""
        return {
            "time": self.time,
            "application": self.application,
            "event": self.event.value,
            "status": self.status.value,
            "mode": self.mode.value,
            "detail": self.detail,
        }


class StatusJournal:
    """Every transition, in order, with its time; exportable as JSON Lines."""

    def __init__(self) -> None:
        self._entries: list[JournalEntry] = []

    def append(self, entry: JournalEntry) -> None:
        """Record one entry."""
        self._entries.append(entry)

    def __iter__(self) -> Iterator[JournalEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self, application: str | None = None) -> list[JournalEntry]:
        """All entries, or those of one application."""
        return [e for e in self._entries if application is None or e.application == application]

    def write_jsonl(self, stream: IO[str]) -> None:
        """Write every entry as one JSON object per line."""
        for entry in self._entries:
            stream.write(json.dumps(entry.to_json(), separators=(",", ":")) + "\n")


RecordListener = Callable[[ApplicationRecord, ApplicationRecord, JournalEvent], None]
"""Called with (before, after, event) after every change of a record."""


class ApplicationRegistry:
    """Owns the application records; journals and announces every change."""

    def __init__(self, clock: IReactorTime, journal: StatusJournal | None = None) -> None:
        self.clock = clock
        self.journal = journal if journal is not None else StatusJournal()
        self._records: dict[str, ApplicationRecord] = {}
        self._listeners: list[RecordListener] = []
        self._last_listeners: list[RecordListener] = []
        self._pending: list[tuple[ApplicationRecord, ApplicationRecord, JournalEvent]] = []
        self._dispatching = False

    def listen(self, listener: RecordListener, *, last: bool = False) -> Callable[[], None]:
        """Call ``listener`` after every change; returns a function that stops it.

        ``last`` listeners hear of a change after all others (the SCS, whose decisions
        about a change must reach subscribers after the change itself).
        """
        group = self._last_listeners if last else self._listeners
        group.append(listener)
        return lambda: group.remove(listener)

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
        self, name: str, event: JournalEvent, detail: str = "", **changes: Any
    ) -> ApplicationRecord:
        """Apply ``changes`` to ``name``'s record (creating it), journal ``event``.

        ``since`` moves only when the status or mode changes.  Listeners hear of
        every call, in order: a change made by a listener is announced only after
        every listener has heard of the change that caused it.
        """
        before = self._records.get(name) or ApplicationRecord(name=name, since=self.now())
        after = dataclasses.replace(before, **changes)
        if (after.status, after.mode) != (before.status, before.mode):
            after = dataclasses.replace(after, since=self.now())
        self._records[name] = after
        self.journal.append(JournalEntry(self.now(), name, event, after.status, after.mode, detail))
        self._pending.append((before, after, event))
        if not self._dispatching:
            self._dispatching = True
            try:
                while self._pending:
                    change = self._pending.pop(0)
                    for listener in [*self._listeners, *self._last_listeners]:
                        listener(*change)
            finally:
                self._dispatching = False
        return after
