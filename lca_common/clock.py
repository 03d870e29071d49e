"""A clock that runs faster (or slower) than the wall clock, for ``--time-scale``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import implementer


@implementer(IReactorTime)
class ScaledClock:
    """Scenario time on top of a real clock: ``scale`` real seconds per scenario second.

    ``seconds()`` counts from 0 at creation, so journals read as scenario time.
    """

    def __init__(self, reactor: IReactorTime, scale: float) -> None:
        if scale <= 0:
            raise ValueError(f"time scale must be positive, got {scale}")
        self.reactor = reactor
        self.scale = scale
        self._origin = reactor.seconds()

    def seconds(self) -> float:
        return (self.reactor.seconds() - self._origin) / self.scale

    def callLater(
        self, delay: float, callable: Callable[..., Any], *args: object, **kw: object
    ) -> IDelayedCall:
        return self.reactor.callLater(delay * self.scale, callable, *args, **kw)

    def getDelayedCalls(self) -> list[IDelayedCall]:
        return list(self.reactor.getDelayedCalls())
