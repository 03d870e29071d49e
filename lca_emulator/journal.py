"""The status journal: every transition the Management Layer saw, with its time.

A journal keeps every entry (scenario runs judge the whole of it), or only the latest
``limit`` entries (``serve``, which may run for months); either way it can stream each
entry to a file as it happens.
"""

from __future__ import annotations

import enum
import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Final

from twisted.logger import Logger

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_emulator.frozen import direct_init

SERVE_JOURNAL_LIMIT: Final = 100_000
"""Entries ``lca-emulator serve`` keeps in memory (the oldest go first)."""

log = Logger()


class JournalEvent(enum.StrEnum):
    """What a journal entry records."""

    CONFIGURED = "configured"
    START_REQUESTED = "start-requested"
    STARTED = "started"
    START_FAILED = "start-failed"
    STOP_REQUESTED = "stop-requested"
    KILLED = "killed"
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
    RESTARTED = "restarted"
    """Its LCA restarted it by itself: ``hangup`` (hung) or ``auto-restart`` (it exited)."""
    SUSPENDED = "suspended"
    """A graceful stop reached SUSPENDING in time."""
    SPLIT_BRAIN = "split-brain"
    """Both members of a pair are up and PRIMARY."""
    VIP_DISABLED = "vip-disabled"
    """IP Address Takeover: the virtual IP is taken down on the old primary's host."""
    VIP_ENABLED = "vip-enabled"
    """IP Address Takeover: the virtual IP is brought up on the new primary's host."""
    HOST_DOWN = "host-down"
    """Its host went down (a fault): the SCS lost the link to the host's LCA."""
    HOST_UP = "host-up"
    """Its host is back: the SCS has a link to the host's new LCA."""
    LCA_LINK_LOST = "lca-link-lost"
    """The SCS lost its link to the LCA of the application's host."""
    LCA_LINK_RESTORED = "lca-link-restored"
    """The SCS's link to that LCA is back: what the LCA knows now is what the SCS sees."""
    NO_BRAIN = "no-brain"
    """Neither member of a pair is up (or, detail "recovered", one is again)."""
    FLAPPING = "flapping"
    """The primary role of a pair moved twice within ``haflip-detect-timeout`` (or,
    detail "stable", it stayed put that long since)."""
    FORGOTTEN = "forgotten"
    """A self-registered application was forgotten after its connection closed."""


LOG_NOW_PRIMARY: Final = 5150
LOG_NOW_BACKUP: Final = 5151
LOG_FLAPPING: Final = 10327
LOG_FLAPPING_STABLE: Final = 10328
LOG_SPLIT_BRAIN: Final = 10329
LOG_SPLIT_BRAIN_RECOVERED: Final = 10330
LOG_NO_BRAIN: Final = 20621
LOG_NO_BRAIN_RECOVERED: Final = 20623
"""Vendor log event numbers (SIP Server HA Deployment Guide, IP Address Takeover
workflow: 00-5150 and 00-5151; Solution Control Server 8.5 release notes: 10327 to
10330, and the alarms 20621 "no brain" and 20623 "normal again" of 8.5.100.31)."""


@direct_init  # one is built at every report
@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One line of the journal: what happened to which application, and when."""

    time: float
    application: str
    event: JournalEvent
    status: ApplicationStatus
    mode: ExecutionMode
    detail: str = ""
    log_id: int | None = None
    """The vendor's log event number for the same occurrence, where it has one."""

    def to_json(self) -> dict[str, Any]:
        """This entry as a JSON-ready mapping (``log-id`` only where there is one)."""
        obj: dict[str, Any] = {
            "time": self.time,
            "application": self.application,
            "event": self.event.value,
            "status": self.status.value,
            "mode": self.mode.value,
            "detail": self.detail,
        }
        if self.log_id is not None:
            obj["log-id"] = self.log_id
        return obj


class StatusJournal:
    """Transitions in order, with their times; exportable as JSON Lines.

    :param limit: keep only the latest ``limit`` entries (``None``: keep every one).
    :param sink: a text stream that gets each entry as one JSON line when it is
        appended, flushed at once.  If writing fails, the error is logged once and the
        journal goes on in memory.
    """

    def __init__(self, *, limit: int | None = None, sink: IO[str] | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"a journal keeps at least one entry, not {limit}")
        self.limit = limit
        self.sink = sink
        self.dropped = 0
        """Entries no longer kept in memory because of ``limit``."""
        self._entries: deque[JournalEntry] = deque(maxlen=limit)

    def append(self, entry: JournalEntry) -> None:
        """Record one entry (and stream it to the sink)."""
        if self.limit is not None and len(self._entries) == self.limit:
            self.dropped += 1
        self._entries.append(entry)
        if self.sink is not None:
            self._stream(entry)

    def _stream(self, entry: JournalEntry) -> None:
        assert self.sink is not None
        try:
            self.sink.write(_line(entry))
            self.sink.flush()
        except (OSError, ValueError) as e:  # ValueError: the file was closed
            log.error(
                "journal: cannot write to {sink}: {error}; no longer streaming it",
                sink=getattr(self.sink, "name", self.sink),
                error=e,
            )
            self.sink = None

    def __iter__(self) -> Iterator[JournalEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self, application: str | None = None) -> list[JournalEntry]:
        """All entries kept, or those of one application."""
        return [e for e in self._entries if application is None or e.application == application]

    def write_jsonl(self, stream: IO[str]) -> None:
        """Write every entry kept as one JSON object per line."""
        for entry in self._entries:
            stream.write(_line(entry))


def _line(entry: JournalEntry) -> str:
    return json.dumps(entry.to_json(), separators=(",", ":")) + "\n"
