"""Watching what Twisted logs: the output lines of child processes, and the rest.

The ``logs`` fixture (``conftest.py``) gives a :class:`LogWatcher` observing the global
log publisher for the length of one test.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.logger import LogEvent, formatEvent


class LogWatcher:
    """Collects twisted.logger events; can wait for one output line of an application."""

    def __init__(self) -> None:
        self.events: list[LogEvent] = []
        self._waiting: list[tuple[str, str, Deferred[None]]] = []

    def __call__(self, event: LogEvent) -> None:
        self.events.append(event)
        for waiting in list(self._waiting):
            application, line, seen = waiting
            if event.get("application") == application and event.get("line") == line:
                self._waiting.remove(waiting)
                seen.callback(None)

    def output(self, application: str) -> list[tuple[str, str]]:
        """(stream, line) of every output line logged for ``application``, in order."""
        return [
            (str(event["stream"]), str(event["line"]))
            for event in self.events
            if event.get("application") == application and "line" in event
        ]

    def lines(self, application: str) -> list[str]:
        """The output lines logged for ``application``, in order, whatever the stream."""
        return [line for _, line in self.output(application)]

    def texts(self) -> list[str]:
        """Every event, formatted."""
        return [formatEvent(event) for event in self.events]

    def wait_for_line(self, application: str, line: str) -> Deferred[None]:
        """Fire when ``application`` has printed ``line``."""
        seen: Deferred[None] = Deferred()
        if line in self.lines(application):
            seen.callback(None)
        else:
            self._waiting.append((application, line, seen))
        return seen
