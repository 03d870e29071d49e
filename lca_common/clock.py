"""A clock that runs faster (or slower) than the wall clock, for ``--time-scale``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import implementer


@implementer(IReactorTime)
class ScaledClock:
    """Scenario time on top of a real clock: ``scale`` real seconds per scenario second.

    ``seconds()`` counts from 0 at ``origin``, a time of the real clock (default: now,
    at creation), so journals read as scenario time.  A process started by the LCA
    is given the real time its start was asked for as its origin, so that its delays
    count from the start request however long it took to come up.  ``callLater`` keeps its meaning
    (``delay`` scenario seconds from now).
    """

    def __init__(
        self,
        reactor: IReactorTime,
        scale: float,
        origin: float | None = None,
        *,
        held: bool = False,
    ) -> None:
        """``held``: scenario time stays 0 until :meth:`restart` (what happens before,
        such as a site's configuration, happens at 0, and time never goes back)."""
        if scale <= 0:
            raise ValueError(f"time scale must be positive, got {scale}")
        self.reactor = reactor
        self.scale = scale
        self._origin = reactor.seconds() if origin is None else origin
        self._held = held

    @property
    def origin(self) -> float:
        """The real-clock time at which scenario time is 0."""
        return self._origin

    def restart(self) -> None:
        """Scenario time is 0 now, and runs (calls already scheduled keep their real
        times)."""
        self._origin = self.reactor.seconds()
        self._held = False

    def seconds(self) -> float:
        if self._held:
            return 0.0
        return (self.reactor.seconds() - self._origin) / self.scale

    def callLater(
        self, delay: float, callable: Callable[..., Any], *args: object, **kw: object
    ) -> IDelayedCall:
        return self.reactor.callLater(delay * self.scale, callable, *args, **kw)

    def getDelayedCalls(self) -> list[IDelayedCall]:
        return list(self.reactor.getDelayedCalls())
