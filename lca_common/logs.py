"""A Twisted ``Logger`` that can drop events before it builds them.

Twisted's ``Logger`` builds an event (a dict, the time, the namespace) for every call
and hands it to the observers, which may then filter it out: some 3 us an event.  A
stub in a scenario logs each decision (17 events a scenario in the decision matrix,
5 % of a scenario's time), which a ``lca-emulator run`` never shows.  A process that
will show no event below some level says so once (:func:`drop_below`), and loggers
of this class then return at once for those levels.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger, LogLevel

__all__ = ["DroppingLogger", "drop_below"]

_LEVELS = (LogLevel.debug, LogLevel.info, LogLevel.warn, LogLevel.error, LogLevel.critical)
_dropped: frozenset[LogLevel] = frozenset()


def drop_below(level: LogLevel | None) -> None:
    """From now on, in this process, :class:`DroppingLogger` events below ``level`` are
    not built (``None``: every event is built again).  For a process in which no
    observer shows them; an observer added later does not see them either."""
    global _dropped
    _dropped = frozenset() if level is None else frozenset(_LEVELS[: _LEVELS.index(level)])


class DroppingLogger(Logger):
    """A ``twisted.logger.Logger`` that returns at once for levels :func:`drop_below`
    dropped."""

    def emit(self, level: LogLevel, format: str | None = None, **kwargs: Any) -> None:
        if level in _dropped:
            return
        super().emit(level, format, **kwargs)
