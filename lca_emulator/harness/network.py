"""The network a site's parties talk over: in memory, or loopback TCP.

A virtual-time run may only move its clock once all traffic has settled.  Two
networks can tell when that is:

:class:`MemoryNetwork` (the default for virtual time)
    Connections are pairs of in-memory transports, pumped by the harness until
    nothing moves (as ``twisted.test.iosim`` does): no sockets, no reactor turns,
    no wall-clock limit.  Each connection is still asynchronous (a write reaches
    the peer when the network is pumped, a connection is made and lost on a later
    pump), so the protocols run as they do over TCP.
:class:`LoopbackNetwork`
    Real loopback TCP.  With a :class:`~lca_emulator.harness.traffic.TrafficMonitor`
    (virtual time over ``--transport tcp``) every connection end reports to it;
    without one (wall-clock runs) it is plain TCP.

Addresses look like TCP on 127.0.0.1 in both, so endpoint strings such as
``tcp:127.0.0.1:PORT`` mean the same thing on either network.
"""

from __future__ import annotations

import enum
import itertools
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.error import ConnectionDone, ConnectionLost, ConnectionRefusedError
from twisted.internet.interfaces import (
    IConsumer,
    IDelayedCall,
    IListeningPort,
    IProducer,
    IProtocol,
    IProtocolFactory,
    IPushProducer,
    IReactorTime,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
    ITCPTransport,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from lca_emulator.harness.traffic import ObservedEndpoint, ObservedServerEndpoint, TrafficMonitor

LOOPBACK = "127.0.0.1"
T = TypeVar("T")


class Transport(enum.StrEnum):
    """What carries a virtual-time run's connections."""

    MEMORY = "memory"
    TCP = "tcp"


class ClosingEndpoint(Protocol):
    """A client endpoint that can tell when its latest connection is closed on both ends."""

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[Any]:
        """Connect, as ``IStreamClientEndpoint.connect``."""

    def when_closed(self) -> Deferred[None]:
        """Fires once the latest connection made through it is gone at both ends."""


class SiteNetwork(Protocol):
    """Where a site listens and how its parties connect."""

    def server_endpoint(self) -> IStreamServerEndpoint:
        """A listening endpoint on any free port of 127.0.0.1."""

    def client_endpoint(self, port: int) -> ClosingEndpoint:
        """A client endpoint reaching 127.0.0.1:``port``."""

    def settle(self) -> Deferred[None]:
        """Fires once nothing is in flight (at once on a wall-clock network)."""

    def track(self, work: Deferred[T]) -> Deferred[T]:
        """Count ``work`` as traffic in flight until it fires."""

    def describe(self) -> str:
        """What is still in flight, for a diagnostic."""


def _parse_port(address: str) -> int:
    """The port of a ``tcp:127.0.0.1:PORT`` client endpoint string."""
    kind, _, rest = address.partition(":")
    host, _, port = rest.rpartition(":")
    if kind != "tcp" or host != LOOPBACK or not port.isdigit():
        raise ValueError(f"not a loopback TCP endpoint: {address!r}")
    return int(port)


def client_endpoint_for(network: SiteNetwork, address: str) -> ClosingEndpoint:
    """The client endpoint of ``network`` for a ``tcp:127.0.0.1:PORT`` string."""
    return network.client_endpoint(_parse_port(address))


# -- loopback TCP ------------------------------------------------------------------------


@implementer(IStreamClientEndpoint)
class _PlainEndpoint:
    """A TCP client endpoint with a ``when_closed`` that waits for nothing (wall clock)."""

    def __init__(self, wrapped: IStreamClientEndpoint) -> None:
        self.wrapped = wrapped

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[Any]:
        return self.wrapped.connect(protocolFactory)

    def when_closed(self) -> Deferred[None]:
        return succeed(None)


class LoopbackNetwork:
    """Real loopback TCP; observed by ``monitor`` when one is given (virtual time)."""

    def __init__(self, reactor: Any, monitor: TrafficMonitor | None = None) -> None:
        self.reactor = reactor
        self.monitor = monitor

    def server_endpoint(self) -> IStreamServerEndpoint:
        endpoint: IStreamServerEndpoint = TCP4ServerEndpoint(self.reactor, 0, interface=LOOPBACK)
        if self.monitor is not None:
            endpoint = ObservedServerEndpoint(endpoint, self.monitor)
        return endpoint

    def client_endpoint(self, port: int) -> ClosingEndpoint:
        endpoint = TCP4ClientEndpoint(self.reactor, LOOPBACK, port)
        if self.monitor is not None:
            return ObservedEndpoint(endpoint, self.monitor)
        return _PlainEndpoint(endpoint)

    def settle(self) -> Deferred[None]:
        return self.monitor.when_quiet() if self.monitor is not None else succeed(None)

    def track(self, work: Deferred[T]) -> Deferred[T]:
        return self.monitor.track(work) if self.monitor is not None else work

    def describe(self) -> str:
        return self.monitor.describe() if self.monitor is not None else "wall-clock network"


# -- in memory ---------------------------------------------------------------------------


@implementer(ITCPTransport, IConsumer, IPushProducer)
class MemoryTransport:
    """One end of an in-memory connection.

    What it writes, and its close, join the network's one queue, so the other end
    sees them in the order they happened, after every earlier event on any connection.
    """

    disconnecting = False

    def __init__(
        self, network: MemoryNetwork, connection: _MemoryConnection, host: IPv4Address
    ) -> None:
        self.network = network
        self.connection = connection
        self.host = host
        self.protocol: IProtocol | None = None
        self.reading = True
        self.held: list[bytes] = []
        """What arrived while reading was paused (``pauseProducing``)."""
        self.producer: IProducer | None = None

    @property
    def peer_end(self) -> MemoryTransport:
        """The other end of the connection."""
        c = self.connection
        return c.server if self is c.client else c.client

    # -- ITransport ---------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if data and not self.disconnecting and not self.connection.lost:
            self.network._queue_event(_Data(self.peer_end, data))

    def writeSequence(self, data: Any) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        if not self.disconnecting:
            self.disconnecting = True
            self.network._queue_event(_Close(self.connection, ConnectionDone()))

    def abortConnection(self) -> None:
        self.disconnecting = True
        self.network._queue_event(_Close(self.connection, ConnectionLost()))

    def getPeer(self) -> IPv4Address:
        return self.peer_end.host

    def getHost(self) -> IPv4Address:
        return self.host

    # -- ITCPTransport (options with no meaning in memory) ------------------------

    def getTcpNoDelay(self) -> bool:
        return True

    def setTcpNoDelay(self, enabled: bool) -> None:
        pass

    def getTcpKeepAlive(self) -> bool:
        return False

    def setTcpKeepAlive(self, enabled: bool) -> None:
        pass

    def loseWriteConnection(self) -> None:
        self.loseConnection()

    # -- IConsumer / IPushProducer ------------------------------------------------

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def pauseProducing(self) -> None:
        self.reading = False

    def resumeProducing(self) -> None:
        self.reading = True
        held, self.held = self.held, []
        for data in held:
            self.network._queue_event(_Data(self, data))

    def stopProducing(self) -> None:
        self.loseConnection()


class _MemoryConnection:
    """Two :class:`MemoryTransport` ends and their protocols."""

    def __init__(self, network: MemoryNetwork, client: IPv4Address, server: IPv4Address):
        self.lost = False
        self.client = MemoryTransport(network, self, client)
        self.server = MemoryTransport(network, self, server)

    def lose(self, reason: Exception) -> None:
        """Both ends lose the connection (the server's end hears first)."""
        if self.lost:
            return
        self.lost = True
        for end in (self.server, self.client):
            end.held.clear()
            if end.protocol is not None:
                end.protocol.connectionLost(Failure(reason))


@dataclass(frozen=True)
class _Data:
    to: MemoryTransport
    data: bytes

    def deliver(self) -> None:
        receiver = self.to
        if receiver.connection.lost:
            return
        if not receiver.reading:
            receiver.held.append(self.data)
            return
        assert receiver.protocol is not None
        receiver.protocol.dataReceived(self.data)


@dataclass(frozen=True)
class _Close:
    connection: _MemoryConnection
    reason: Exception

    def deliver(self) -> None:
        self.connection.lose(self.reason)


@dataclass(frozen=True)
class _Connect:
    network: MemoryNetwork
    endpoint: _MemoryClientEndpoint
    factory: IProtocolFactory
    attempt: Deferred[Any]

    def deliver(self) -> None:
        if not self.attempt.called:  # a cancelled attempt (ClientService stopping) is dropped
            self.network._connect(self.endpoint, self.factory, self.attempt)


@implementer(IListeningPort)
class _MemoryPort:
    def __init__(self, network: MemoryNetwork, port: int, factory: IProtocolFactory) -> None:
        self.network = network
        self.port = port
        self.factory = factory

    def startListening(self) -> None:
        pass

    def stopListening(self) -> Deferred[None]:
        self.network._listeners.pop(self.port, None)
        self.factory.doStop()
        return succeed(None)

    def getHost(self) -> IPv4Address:
        return IPv4Address("TCP", LOOPBACK, self.port)


@implementer(IStreamServerEndpoint)
class _MemoryServerEndpoint:
    def __init__(self, network: MemoryNetwork) -> None:
        self.network = network

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        return succeed(self.network._listen(protocolFactory))


@implementer(IStreamClientEndpoint)
class _MemoryClientEndpoint:
    def __init__(self, network: MemoryNetwork, port: int) -> None:
        self.network = network
        self.port = port
        self.latest: _MemoryConnection | None = None

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()  # cancelling it fails it at once; no connection follows
        self.network._queue_event(_Connect(self.network, self, protocolFactory, d))
        return d

    def when_closed(self) -> Deferred[None]:
        connection = self.latest
        if connection is None or connection.lost:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self.network._closing_waiters.append((connection, d))
        return d


class MemoryNetwork:
    """Connections in memory, moved by :meth:`pump` (see the module docstring).

    Every connection attempt, write and close is one event in a single queue, handled
    in the order it happened.  A scenario run pumps the queue itself between clock
    steps.  So that a test can also ``await`` a connection or a reply, as over TCP,
    a new event asks ``reactor`` for one pump on its next turn.
    """

    def __init__(self, reactor: IReactorTime) -> None:
        self.reactor = reactor
        self._listeners: dict[int, IProtocolFactory] = {}
        self._ports = itertools.count(40000)
        self._queue: deque[_Data | _Close | _Connect] = deque()
        self._closing_waiters: list[tuple[_MemoryConnection, Deferred[None]]] = []
        self._settle_waiters: list[Deferred[None]] = []
        self._wake_call: IDelayedCall | None = None
        self._pumping = False

    def server_endpoint(self) -> IStreamServerEndpoint:
        return _MemoryServerEndpoint(self)

    def client_endpoint(self, port: int) -> ClosingEndpoint:
        return _MemoryClientEndpoint(self, port)

    def settle(self) -> Deferred[None]:
        """Pump until nothing moves.  Asked from inside a pump (a test resumed by a reply),
        it fires once that pump is over, from a fresh reactor turn."""
        if not self._pumping:
            self.pump()
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._settle_waiters.append(d)
        self._wake()
        return d

    def track(self, work: Deferred[T]) -> Deferred[T]:
        return work  # whatever it waits for moves within a pump

    def describe(self) -> str:
        return f"{len(self._queue)} events queued"

    def pump(self) -> None:
        """Handle every queued event, and those they cause, until none is left."""
        if self._pumping:
            return  # the pump under way handles it
        self._pumping = True
        try:
            while self._queue:
                self._queue.popleft().deliver()
                if self._closing_waiters:
                    self._release_closed()
        finally:
            self._pumping = False

    def _queue_event(self, event: _Data | _Close | _Connect) -> None:
        self._queue.append(event)
        self._wake()

    def _release_closed(self) -> None:
        still: list[tuple[_MemoryConnection, Deferred[None]]] = []
        for connection, d in self._closing_waiters:
            if connection.lost:
                d.callback(None)
            else:
                still.append((connection, d))
        self._closing_waiters = still

    def _wake(self) -> None:
        if self._wake_call is None:
            self._wake_call = self.reactor.callLater(0, self._woken)

    def _woken(self) -> None:
        self._wake_call = None
        self.pump()
        waiters, self._settle_waiters = self._settle_waiters, []
        for d in waiters:
            d.callback(None)

    def _listen(self, factory: IProtocolFactory) -> _MemoryPort:
        port = next(self._ports)
        self._listeners[port] = factory
        factory.doStart()
        return _MemoryPort(self, port, factory)

    def _connect(
        self, endpoint: _MemoryClientEndpoint, factory: IProtocolFactory, d: Deferred[Any]
    ) -> None:
        server_factory = self._listeners.get(endpoint.port)
        if server_factory is None:
            d.errback(ConnectionRefusedError(f"nothing listens on {LOOPBACK}:{endpoint.port}"))
            return
        client_address = IPv4Address("TCP", LOOPBACK, next(self._ports))
        server_address = IPv4Address("TCP", LOOPBACK, endpoint.port)
        server_protocol = server_factory.buildProtocol(client_address)
        client_protocol = factory.buildProtocol(server_address)
        if server_protocol is None or client_protocol is None:
            d.errback(ConnectionRefusedError("the factory refused the connection"))
            return
        connection = _MemoryConnection(self, client_address, server_address)
        connection.server.protocol = server_protocol
        connection.client.protocol = client_protocol
        endpoint.latest = connection
        server_protocol.makeConnection(connection.server)
        client_protocol.makeConnection(connection.client)
        d.callback(client_protocol)
