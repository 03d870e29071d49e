"""Knowing when in-process traffic has settled, so virtual time may move on.

In a virtual-time run every party (emulator and stubs) lives in this process and
talks over real loopback sockets.  The clock must only advance once every line
sent has been handled and every connection being opened or closed has finished
on both ends; otherwise a message would be handled at the wrong virtual time.
Each connection is seen from both of its ends, matched by their addresses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
)
from zope.interface import implementer

T = TypeVar("T")
_End = tuple[str, Any]


def _end(address: IAddress) -> _End:
    return (getattr(address, "host", repr(address)), getattr(address, "port", None))


@dataclass
class _Link:
    opened: set[_End] = field(default_factory=set)
    closing: set[_End] = field(default_factory=set)
    closed: set[_End] = field(default_factory=set)
    sent: dict[_End, int] = field(default_factory=dict)
    handled: dict[_End, int] = field(default_factory=dict)

    def settled(self) -> bool:
        if self.closing - self.closed:
            return False  # a close asked for and not yet seen through
        if self.closed:
            return self.closed >= self.opened and len(self.opened) == 2
        if len(self.opened) < 2:
            return False  # the other end has not seen the connection yet
        a, b = self.opened
        return self.sent.get(a, 0) == self.handled.get(b, 0) and self.sent.get(
            b, 0
        ) == self.handled.get(a, 0)


class TrafficMonitor:
    """A :class:`~lca_emulator.protocol.framing.TrafficObserver` that tells when all is quiet.

    Waiters are released from a fresh reactor turn (``reactor.callLater(0)``), never
    from inside a protocol callback, and only if it is still quiet by then.
    """

    def __init__(self, reactor: IReactorTime) -> None:
        self.reactor = reactor
        self._links: dict[frozenset[_End], _Link] = {}
        self._connecting = 0
        self._waiters: list[Deferred[None]] = []
        self._release: IDelayedCall | None = None

    # -- TrafficObserver -----------------------------------------------------------

    def _link(self, local: IAddress, peer: IAddress) -> tuple[_Link, _End]:
        me = _end(local)
        key = frozenset((me, _end(peer)))
        return self._links.setdefault(key, _Link()), me

    def connection_opened(self, local: IAddress, peer: IAddress) -> None:
        link, me = self._link(local, peer)
        link.opened.add(me)
        self._changed()

    def connection_closing(self, local: IAddress, peer: IAddress) -> None:
        link, me = self._link(local, peer)
        link.closing.add(me)

    def connection_closed(self, local: IAddress, peer: IAddress) -> None:
        link, me = self._link(local, peer)
        link.closed.add(me)
        link.opened.add(me)
        if link.closed >= link.opened and len(link.opened) == 2:
            del self._links[frozenset(link.opened)]
        self._changed()

    def line_sent(self, local: IAddress, peer: IAddress) -> None:
        link, me = self._link(local, peer)
        link.sent[me] = link.sent.get(me, 0) + 1

    def line_handled(self, local: IAddress, peer: IAddress) -> None:
        link, me = self._link(local, peer)
        link.handled[me] = link.handled.get(me, 0) + 1
        self._changed()

    # -- connection attempts -------------------------------------------------------

    def track(self, attempt: Deferred[T]) -> Deferred[T]:
        """Count ``attempt`` (a connection being made) as traffic until it ends."""
        self._connecting += 1

        def done(result: T) -> T:
            self._connecting -= 1
            self._changed()
            return result

        return attempt.addBoth(done)

    # -- waiting -------------------------------------------------------------------

    def quiet(self) -> bool:
        """Whether nothing is in flight right now."""
        return self._connecting == 0 and all(link.settled() for link in self._links.values())

    def when_quiet(self) -> Deferred[None]:
        """A Deferred that fires once nothing is in flight (soon, if already so)."""
        d: Deferred[None] = Deferred()
        self._waiters.append(d)
        self._changed()
        return d

    def _changed(self) -> None:
        if self._waiters and self._release is None and self.quiet():
            self._release = self.reactor.callLater(0, self._release_waiters)

    def _release_waiters(self) -> None:
        self._release = None
        if not self.quiet():
            return
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)

    def describe(self) -> str:
        """What is still in flight, for a diagnostic."""
        busy = [
            repr(sorted(map(str, key))) for key, link in self._links.items() if not link.settled()
        ]
        return f"{self._connecting} connecting; unsettled links: {', '.join(busy) or 'none'}"


@implementer(IStreamClientEndpoint)
class ObservedEndpoint:
    """A client endpoint whose connection attempts count as traffic for a monitor."""

    def __init__(self, wrapped: IStreamClientEndpoint, monitor: TrafficMonitor) -> None:
        self.wrapped = wrapped
        self.monitor = monitor

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[Any]:
        return self.monitor.track(self.wrapped.connect(protocolFactory))
