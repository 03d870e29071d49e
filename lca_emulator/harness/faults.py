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
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.interfaces import IDelayedCall, IProtocolFactory, IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure

from lca_emulator.harness.model import LinkCut
from lca_emulator.harness.network import ClosingEndpoint

log = Logger()


class _Direction:
    """One direction of one connection: what is on its way, in order, and a clean close
    that follows it."""

    def __init__(self, clock: IReactorTime, deliver: Callable[[bytes], None]) -> None:
        self.clock = clock
        self.deliver = deliver
        self.queue: deque[tuple[float, bytes]] = deque()
        self.timer: IDelayedCall | None = None
        self.closing: Callable[[], None] | None = None
        """What to do once everything queued has gone: a close keeps its place."""
        self.closed = False
        """Nothing more goes this way (closed, or dropped with the connection)."""

    def send(self, data: bytes, delay: float, held: bool) -> None:
        if self.closed or self.closing is not None:
            return  # written after the close: a closed connection sends nothing more
        if not self.queue and not held and delay <= 0:
            self.deliver(data)
            return
        due = self.clock.seconds() + delay
        if self.queue:
            due = max(due, self.queue[-1][0])  # never overtakes what went before
        self.queue.append((due, data))
        if not held:
            self.schedule()

    def close_after(self, close: Callable[[], None], held: bool) -> None:
        """``close`` once what is on its way has gone, keeping its place behind latency;
        at once if nothing is on its way, or if the link is stalled (see :meth:`stall`)."""
        if self.closing is not None:
            return  # a close is on its way already
        self.closing = close
        if held:
            self.stall()
        elif self.closed or not self.queue:
            self._closed()  # nothing (more) to wait for

    def schedule(self) -> None:
        """Deliver what is due, and wake for the next (or close, once all is gone)."""
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        now = self.clock.seconds()
        while self.queue and self.queue[0][0] <= now and not self.closed:
            self.deliver(self.queue.popleft()[1])
        if self.queue and not self.closed:
            self.timer = self.clock.callLater(self.queue[0][0] - now, self.schedule)
        elif self.closing is not None and not self.closed:
            self._closed()

    def _closed(self) -> None:
        close, self.closing = self.closing, None
        self.closed = True
        if close is not None:
            close()

    def hold(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def stall(self) -> None:
        """Hold what is on its way.  A stall holds data, not a close: a connection closed
        during a stall (or before one, with data still on its way) closes at once, and
        what the stall held is lost with it.  (Its end may be a process exiting, which
        no stall, however long, should wait for.)"""
        self.hold()
        if self.closing is not None:
            self.queue.clear()
            self._closed()

    def drop(self) -> None:
        """Lose what is on its way, and the close that was to follow it."""
        self.hold()
        self.queue.clear()
        self.closing = None
        self.closed = True


class FaultyProtocol(ProtocolWrapper):
    """One connection on an application's path: what passes either way obeys its link.

    A clean close keeps its place behind what latency still has on its way, in either
    direction (a FIN follows the data sent before it); a reset overtakes everything, and
    what was on its way is lost; so does a close during a stall (see
    :meth:`_Direction.stall`).
    """

    factory: _FaultyFactory

    def __init__(self, factory: _FaultyFactory, wrappedProtocol: Any) -> None:
        super().__init__(factory, wrappedProtocol)  # type: ignore[arg-type]
        link = factory.link
        self.link = link
        self._in = _Direction(link.clock, lambda data: ProtocolWrapper.dataReceived(self, data))
        self._out = _Direction(link.clock, lambda data: ProtocolWrapper.write(self, data))
        self.gone = False
        """The connection beneath is closed; what it delivered last may still be on its way."""
        self._done = False

    @property
    def in_flight(self) -> tuple[int, int]:
        """How many writes are on their way (delayed or held): toward the wrapped protocol,
        and toward the other end."""
        return len(self._in.queue), len(self._out.queue)

    def makeConnection(self, transport: Any) -> None:
        self.link.attach(self)
        super().makeConnection(transport)

    def dataReceived(self, data: bytes) -> None:
        self._in.send(data, self.link.delay, self.link.stalled)

    def write(self, data: bytes) -> None:
        self._out.send(data, self.link.delay, self.link.stalled)

    def writeSequence(self, data: Any) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """The wrapped protocol closes: after what it wrote before."""
        self.disconnecting = 1
        self._out.close_after(self._close_transport, self.link.stalled)

    def _close_transport(self) -> None:
        if not self.gone:
            self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """The connection is gone.  Closed cleanly by the other end, what it sent before
        still reaches the wrapped protocol first; else it hears of it at once."""
        self.gone = True
        self._out.drop()
        if reason.check(ConnectionDone) is None:
            self._in.drop()
            self._end(reason)
        else:
            self._in.close_after(lambda: self._end(reason), self.link.stalled)

    def _end(self, reason: Failure) -> None:
        if self._done:
            return
        self._done = True
        self.link.detach(self)
        ProtocolWrapper.connectionLost(self, reason)

    def resume(self) -> None:
        """The stall is over: what waited goes on its way (after any latency)."""
        for direction in (self._in, self._out):
            direction.schedule()

    def stall(self) -> None:
        for direction in (self._in, self._out):
            direction.stall()

    def cut(self, how: LinkCut) -> None:
        """The link fails under this connection: what was on its way is lost, and both
        ends see a close (a FIN) or a reset (an RST) at once."""
        self._in.drop()
        self._out.drop()
        if self.gone:  # closed already; it only waited for its last data
            self._end(Failure(ConnectionDone()))
            return
        transport: Any = self.transport
        if how is LinkCut.RESET:
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
    """The path of one application to its LCA, and the faults on it now.

    A cut (close, reset or stall) replaces the cut before it, and its ``for`` with it;
    latency is apart: a ``delay-link`` neither ends nor prolongs a cut, nor a cut a
    latency.
    """

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
        log.info("{app}: link cut ({how})", app=self.name, how=how.value)
        if how is LinkCut.STALL:
            self.refusing = False
            self.stalled = True
            for connection in list(self.connections):
                connection.stall()
        else:
            self.stalled = False  # what it held is lost with the connections
            self.refusing = seconds is not None
            for connection in list(self.connections):
                connection.cut(how)
        if seconds is not None:
            self.clock.callLater(seconds, self._heal, self._cuts)

    def slow(self, ms: float, seconds: float | None) -> None:
        """``ms`` milliseconds of latency each way (for ``seconds``)."""
        self._delays += 1
        self.delay = ms / 1000.0
        if seconds is not None:
            self.clock.callLater(seconds, self._unslow, self._delays)

    def _heal(self, cut: int) -> None:
        if cut != self._cuts:
            return  # a later cut took over
        self.refusing = False
        if self.stalled:
            self.stalled = False
            for connection in list(self.connections):
                connection.resume()

    def _unslow(self, delay: int) -> None:
        if delay == self._delays:  # else a later latency took over
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
