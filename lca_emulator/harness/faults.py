"""Faults on the wire between an application and its LCA: cut (close, reset, stall)
and latency, each for a time (what Toxiproxy does to a TCP connection).

Each application has one :class:`AppLink`: the state of its path to the LCA, and the
connections that take that path now.  A connection takes it through a
:class:`FaultyProtocol`, a protocol wrapper that sits on one end of the connection
and holds, delays or drops what passes in either direction:

- in this process (virtual time, in memory or over TCP, and ``--real-time``) the
  wrapper sits on the stub's own end (:meth:`LinkFaults.endpoint`);
- with ``--processes`` and in ``serve`` the application is another process: it
  reaches its LCA through a :class:`~lca_emulator.harness.relay.Relay`, and the
  wrapper sits on the relay's end facing the application.

Times are scenario seconds on the site's clock (virtual, or scaled wall clock), and
``ms`` is in scenario milliseconds, so a fault plays the same in every mode.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IDelayedCall, IProtocolFactory, IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure

from lca_emulator.harness.model import LinkCut
from lca_emulator.harness.network import ClosingEndpoint

log = Logger()


class _Direction:
    """One direction of one connection: what is on its way, in order."""

    def __init__(self, clock: IReactorTime, deliver: Callable[[bytes], None]) -> None:
        self.clock = clock
        self.deliver = deliver
        self.queue: deque[tuple[float, bytes]] = deque()
        self.timer: IDelayedCall | None = None

    def send(self, data: bytes, delay: float, held: bool) -> None:
        if not self.queue and not held and delay <= 0:
            self.deliver(data)
            return
        due = self.clock.seconds() + delay
        if self.queue:
            due = max(due, self.queue[-1][0])  # never overtakes what went before
        self.queue.append((due, data))
        if not held:
            self.schedule()

    def schedule(self) -> None:
        """Deliver what is due, and wake for the next."""
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        now = self.clock.seconds()
        while self.queue and self.queue[0][0] <= now:
            self.deliver(self.queue.popleft()[1])
        if self.queue:
            self.timer = self.clock.callLater(self.queue[0][0] - now, self.schedule)

    def hold(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def drop(self) -> None:
        self.hold()
        self.queue.clear()


class FaultyProtocol(ProtocolWrapper):
    """One connection on an application's path: what passes either way obeys its link."""

    factory: _FaultyFactory

    def __init__(self, factory: _FaultyFactory, wrappedProtocol: Any) -> None:
        super().__init__(factory, wrappedProtocol)  # type: ignore[arg-type]
        link = factory.link
        self.link = link
        self._in = _Direction(link.clock, lambda data: ProtocolWrapper.dataReceived(self, data))
        self._out = _Direction(link.clock, lambda data: ProtocolWrapper.write(self, data))

    def makeConnection(self, transport: Any) -> None:
        self.link.attach(self)
        super().makeConnection(transport)

    def dataReceived(self, data: bytes) -> None:
        self._in.send(data, self.link.delay, self.link.stalled)

    def write(self, data: bytes) -> None:
        self._out.send(data, self.link.delay, self.link.stalled)

    def writeSequence(self, data: Any) -> None:
        self.write(b"".join(data))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.link.detach(self)
        self._in.drop()
        self._out.drop()
        super().connectionLost(reason)

    def resume(self) -> None:
        """The stall is over: what waited goes on its way (after any latency)."""
        for direction in (self._in, self._out):
            direction.schedule()

    def stall(self) -> None:
        for direction in (self._in, self._out):
            direction.hold()

    def cut(self, how: LinkCut) -> None:
        transport: Any = self.transport
        if how is LinkCut.RESET:
            self._in.drop()
            self._out.drop()
            transport.abortConnection()
        else:
            transport.loseConnection()


class _FaultyFactory(WrappingFactory):
    protocol = FaultyProtocol

    def __init__(self, link: AppLink, wrapped: IProtocolFactory) -> None:
        super().__init__(wrapped)
        self.link = link

    def buildProtocol(self, addr: Any) -> Any:
        if self.link.refusing:
            return None  # cut for a time: the connection is closed at once
        wrapped = self.wrappedFactory.buildProtocol(addr)
        return None if wrapped is None else self.protocol(self, wrapped)


class AppLink:
    """The path of one application to its LCA, and the faults on it now."""

    def __init__(self, name: str, clock: IReactorTime) -> None:
        self.name = name
        self.clock = clock
        self.delay = 0.0
        """Seconds of latency each way."""
        self.stalled = False
        self.refusing = False
        """Cut for a time: new connections fail until it ends."""
        self.connections: list[FaultyProtocol] = []
        self._cuts = 0
        self._delays = 0
        """How many cuts and latencies were set: a timer ends only the latest of its kind."""

    def wrap(self, factory: IProtocolFactory) -> IProtocolFactory:
        """``factory``'s protocols, each behind this link's faults."""
        return _FaultyFactory(self, factory)

    def attach(self, connection: FaultyProtocol) -> None:
        self.connections.append(connection)

    def detach(self, connection: FaultyProtocol) -> None:
        if connection in self.connections:
            self.connections.remove(connection)

    def cut(self, how: LinkCut, seconds: float | None) -> None:
        """Fail the connection (``how``); with ``seconds``, new ones fail (close, reset)
        or pass nothing (stall) until that time has passed."""
        self._cuts += 1
        generation = self._cuts
        log.info("{app}: link cut ({how})", app=self.name, how=how.value)
        if how is LinkCut.STALL:
            self.stalled = True
            for connection in list(self.connections):
                connection.stall()
        else:
            self.refusing = seconds is not None
            for connection in list(self.connections):
                connection.cut(how)
        if seconds is not None:
            self.clock.callLater(seconds, self._heal, generation)

    def slow(self, ms: float, seconds: float | None) -> None:
        """``ms`` milliseconds of latency each way (for ``seconds``)."""
        self._delays += 1
        generation = self._delays
        self.delay = ms / 1000.0
        if seconds is not None:
            self.clock.callLater(seconds, self._unslow, generation)

    def _heal(self, generation: int) -> None:
        if generation != self._cuts:
            return  # a later cut took over
        self.refusing = False
        if self.stalled:
            self.stalled = False
            for connection in list(self.connections):
                connection.resume()

    def _unslow(self, generation: int) -> None:
        if generation == self._delays:
            self.delay = 0.0


class _FaultyEndpoint:
    """A client endpoint whose connections go through an application's link."""

    def __init__(self, wrapped: ClosingEndpoint, link: AppLink) -> None:
        self.wrapped = wrapped
        self.link = link

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[Any]:
        if self.link.refusing:
            return fail(ConnectionRefusedError(f"the link of {self.link.name} is cut"))
        d = self.wrapped.connect(self.link.wrap(protocolFactory))
        return d.addCallback(lambda wrapper: wrapper.wrappedProtocol)

    def when_closed(self) -> Deferred[None]:
        return self.wrapped.when_closed()


class LinkFaults:
    """Every application's link, by name, on one clock."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._links: dict[str, AppLink] = {}

    def link(self, application: str) -> AppLink:
        """``application``'s link (made on first use)."""
        link = self._links.get(application)
        if link is None:
            link = self._links[application] = AppLink(application, self.clock)
        return link

    def endpoint(self, application: str, endpoint: ClosingEndpoint) -> ClosingEndpoint:
        """``endpoint``, with ``application``'s connections going through its link."""
        return _FaultyEndpoint(endpoint, self.link(application))
