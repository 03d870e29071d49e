"""Knowing when in-process traffic has settled, so virtual time may move on.

In a virtual-time run every party (emulator and stubs) lives in this process and
talks over real loopback sockets.  The clock must only advance once every byte
sent has been handled by its receiver and every connection being opened or closed
has finished on both ends; otherwise a message would be handled at the wrong
virtual time.

The protocols know nothing of this: the harness wraps the factories of both
endpoints (:class:`ObservedServerEndpoint`, :class:`ObservedEndpoint`) so that
each connection end reports to a :class:`TrafficMonitor`, and the two ends of a
connection are matched by their addresses.  A protocol handles what it receives
synchronously, so bytes handed to it count as handled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IListeningPort,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
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
    """Hears from every observed connection end, and tells when all is quiet.

    Waiters are released from a fresh reactor turn (``reactor.callLater(0)``), never
    from inside a protocol callback, and only if it is still quiet by then.
    """

    def __init__(self, reactor: IReactorTime) -> None:
        self.reactor = reactor
        self._links: dict[frozenset[_End], _Link] = {}
        self._connecting = 0
        self._waiters: list[Deferred[None]] = []
        self._release: IDelayedCall | None = None
        self._closing_waiters: dict[frozenset[_End], list[Deferred[None]]] = {}

    # -- what the connection ends report -------------------------------------------

    def _link(self, ends: tuple[IAddress, IAddress]) -> tuple[_Link, _End]:
        me = _end(ends[0])
        key = frozenset((me, _end(ends[1])))
        return self._links.setdefault(key, _Link()), me

    def connection_opened(self, ends: tuple[IAddress, IAddress]) -> None:
        link, me = self._link(ends)
        link.opened.add(me)
        self._changed()

    def connection_closing(self, ends: tuple[IAddress, IAddress]) -> None:
        link, me = self._link(ends)
        link.closing.add(me)

    def connection_closed(self, ends: tuple[IAddress, IAddress]) -> None:
        link, me = self._link(ends)
        link.closed.add(me)
        link.opened.add(me)
        if link.closed >= link.opened and len(link.opened) == 2:
            key = frozenset(link.opened)
            del self._links[key]
            for waiter in self._closing_waiters.pop(key, []):
                waiter.callback(None)
        self._changed()

    def bytes_sent(self, ends: tuple[IAddress, IAddress], count: int) -> None:
        link, me = self._link(ends)
        link.sent[me] = link.sent.get(me, 0) + count

    def bytes_handled(self, ends: tuple[IAddress, IAddress], count: int) -> None:
        link, me = self._link(ends)
        link.handled[me] = link.handled.get(me, 0) + count
        self._changed()

    def when_closed(self, ends: tuple[IAddress, IAddress]) -> Deferred[None]:
        """A Deferred that fires once the connection between ``ends`` is closed on both."""
        key = frozenset(map(_end, ends))
        if key not in self._links:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._closing_waiters.setdefault(key, []).append(d)
        return d

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


class _ObservedProtocol(ProtocolWrapper):
    """One connection end, reporting what it sends, handles, opens and closes."""

    factory: _ObservedFactory

    def __init__(self, factory: _ObservedFactory, wrapped: IProtocol) -> None:
        super().__init__(factory, wrapped)
        self._ends: tuple[IAddress, IAddress] | None = None
        self._closing = False

    @property
    def _monitor(self) -> TrafficMonitor:
        return self.factory.monitor

    def makeConnection(self, transport: Any) -> None:
        # both addresses read once: a closed socket no longer knows them
        self._ends = (transport.getHost(), transport.getPeer())
        self._monitor.connection_opened(self._ends)
        self.factory.last_ends = self._ends
        super().makeConnection(transport)

    def write(self, data: bytes) -> None:
        if self._ends is not None and not self._closing:
            self._monitor.bytes_sent(self._ends, len(data))
        super().write(data)

    def writeSequence(self, data: Any) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        self._close_asked()
        super().loseConnection()

    def abortConnection(self) -> None:
        self._close_asked()
        self.transport.abortConnection()  # type: ignore[union-attr]

    def _close_asked(self) -> None:
        if self._ends is not None and not self._closing:
            self._monitor.connection_closing(self._ends)
        self._closing = True

    def dataReceived(self, data: bytes) -> None:
        try:
            super().dataReceived(data)
        finally:
            if self._ends is not None:
                self._monitor.bytes_handled(self._ends, len(data))

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        super().connectionLost(reason)
        if self._ends is not None:
            self._monitor.connection_closed(self._ends)


class _ObservedFactory(WrappingFactory[_ObservedProtocol]):
    protocol = _ObservedProtocol
    noisy = False

    def __init__(self, wrapped: IProtocolFactory, monitor: TrafficMonitor) -> None:
        super().__init__(wrapped)
        self.monitor = monitor
        self.last_ends: tuple[IAddress, IAddress] | None = None


@implementer(IStreamServerEndpoint)
class ObservedServerEndpoint:
    """A listening endpoint whose every connection reports to ``monitor``."""

    def __init__(self, wrapped: IStreamServerEndpoint, monitor: TrafficMonitor) -> None:
        self.wrapped = wrapped
        self.monitor = monitor

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        return self.wrapped.listen(_ObservedFactory(protocolFactory, self.monitor))


@implementer(IStreamClientEndpoint)
class ObservedEndpoint:
    """A client endpoint whose connections, and attempts, count as traffic for ``monitor``."""

    def __init__(self, wrapped: IStreamClientEndpoint, monitor: TrafficMonitor) -> None:
        self.wrapped = wrapped
        self.monitor = monitor
        self._last: _ObservedFactory | None = None

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[Any]:
        self._last = _ObservedFactory(protocolFactory, self.monitor)
        attempt = self.wrapped.connect(self._last)
        connected: Deferred[Any] = attempt.addCallback(_unwrapped)
        return self.monitor.track(connected)

    def when_closed(self) -> Deferred[None]:
        """Fires once the latest connection made through here is closed on both ends."""
        if self._last is None or self._last.last_ends is None:
            return succeed(None)
        return self.monitor.when_closed(self._last.last_ends)


def _unwrapped(wrapper: Any) -> Any:
    return wrapper.wrappedProtocol
