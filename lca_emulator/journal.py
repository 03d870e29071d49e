"""The status journal: every transition the Management Layer saw, with its time."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode


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
