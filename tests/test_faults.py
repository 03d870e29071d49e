"""Faults on the wire between an application and its LCA (harness/faults.py) and the
relay that makes them real for processes (harness/relay.py).

Each case runs twice, as the fakeredis habit has it: over the in-memory network of
virtual-time runs, and over real loopback TCP (port 0).  Either way the link's latency
and its ``for`` run on a ``task.Clock``, so times are exact; over TCP a test waits for
what it expects on the reactor (every wait has a deadline; nothing sleeps).  The relay
tests use real sockets only, as ``--processes`` and ``serve`` do.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from reactortest import reactor_test
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.interfaces import IDelayedCall, IListeningPort
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.task import Clock, LoopingCall
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.python.failure import Failure

from lca_emulator.harness.faults import AppLink, LinkFaults
from lca_emulator.harness.model import LinkCut
from lca_emulator.harness.network import LoopbackNetwork, MemoryNetwork, SiteNetwork
from lca_emulator.harness.relay import Relay, RelayedApplication, Relays
from lca_emulator.lca.processes import ProcessExit

TIMEOUT = 10.0
"""Wall-clock seconds any wait on the reactor may take before the test fails."""

POLL = 0.005
"""Wall-clock seconds between two looks at a condition that no event announces."""

APP = "SIPS_A"


@pytest.fixture
def reactor() -> Any:
    from twisted.internet import reactor as global_reactor

    return global_reactor


class Wire(enum.StrEnum):
    """What carries the connection under test."""

    MEMORY = "memory"
    TCP = "tcp"


class WatchedClock(Clock):
    """A virtual clock that tells ``changed`` whenever something is scheduled on it."""

    def __init__(self, changed: Callable[[], None]) -> None:
        super().__init__()
        self.changed = changed

    def callLater(self, delay: float, callable: Any, *args: Any, **kw: Any) -> IDelayedCall:
        call = super().callLater(delay, callable, *args, **kw)
        self.changed()
        return call


class Recorder(Protocol):
    """One end of a connection: logs ``(time, what)`` for what it receives and how its
    connection ended, and tells its bench."""

    def __init__(self, bench: Bench, name: str) -> None:
        self.bench = bench
        self.name = name
        self.received = b""
        self.lost: Failure | None = None

    def connectionMade(self) -> None:
        self.bench.note(f"{self.name} connected")

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        self.bench.note(f"{self.name} got {data.decode()}")

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost = reason
        self.bench.note(f"{self.name} lost {type(reason.value).__name__}")


class Bench:
    """An LCA-side server and an application that reaches it through its link."""

    def __init__(self, reactor: Any, wire: Wire) -> None:
        self.reactor = reactor
        self.wire = wire
        self.log: list[tuple[float, str]] = []
        self.clock = WatchedClock(self._check)
        self.faults = LinkFaults(self.clock)
        self.link = self.faults.link(APP)
        self.network: SiteNetwork = (
            MemoryNetwork(Clock()) if wire is Wire.MEMORY else LoopbackNetwork(reactor)
        )
        self.servers: list[Recorder] = []
        self.apps: list[Recorder] = []
        self.port: IListeningPort | None = None
        self._waits: list[tuple[Callable[[], bool], Deferred[None]]] = []

    def note(self, what: str) -> None:
        self.log.append((self.clock.seconds(), what))
        self._check()

    def _check(self) -> None:
        waits, self._waits = self._waits, []
        for ready, d in waits:
            if ready():
                d.callback(None)
            else:
                self._waits.append((ready, d))

    async def until(self, ready: Callable[[], bool], what: str) -> None:
        """Wait until ``ready()``: in memory, once the network is pumped; over TCP, as the
        reactor delivers (at most ``TIMEOUT`` seconds)."""
        if isinstance(self.network, MemoryNetwork):
            self.network.pump()
            assert ready(), f"{what}; log: {self.log}"
            return
        if ready():
            return
        d: Deferred[None] = Deferred()
        self._waits.append((ready, d))
        # what a held direction receives tells nobody: look again every few ms as well
        poll = LoopingCall(self._check)
        poll.clock = self.reactor
        poll.start(POLL, now=False)

        def timed_out(result: object, timeout: float) -> None:
            raise AssertionError(f"{what} not within {timeout:g} s; log: {self.log}")

        try:
            await d.addTimeout(TIMEOUT, self.reactor, onTimeoutCancel=timed_out)
        finally:
            poll.stop()

    async def saw(self, *lines: str) -> None:
        """Wait until the log has ``lines`` (in any order among others)."""
        await self.until(lambda: all(line in self.said() for line in lines), f"{lines}")

    def said(self) -> list[str]:
        return [what for _, what in self.log]

    async def settle(self) -> None:
        """In memory, pump; over TCP, nothing to do (the test waits for what it expects)."""
        if isinstance(self.network, MemoryNetwork):
            self.network.pump()

    async def listen(self) -> None:
        factory = Factory.forProtocol(self._server)
        self.port = await self.network.server_endpoint().listen(factory)

    def _server(self) -> Recorder:
        server = Recorder(self, f"lca{len(self.servers)}")
        self.servers.append(server)
        return server

    def connect(self) -> Deferred[Any]:
        """Connect a new application end through the link (as an in-process stub does)."""
        assert self.port is not None
        endpoint = self.faults.endpoint(
            APP,
            self.network.client_endpoint(self.port.getHost().port),  # type: ignore[attr-defined]
        )
        app = Recorder(self, f"app{len(self.apps)}")
        self.apps.append(app)
        return endpoint.connect(Factory.forProtocol(lambda: app))

    async def pair(self) -> tuple[Recorder, Recorder]:
        """A new connection, once both ends have it: (application end, LCA end)."""
        index, servers = len(self.apps), len(self.servers)
        attempt = self.connect()
        await self.settle()
        await attempt
        await self.until(
            lambda: f"app{index} connected" in self.said() and len(self.servers) > servers,
            "both ends connected",
        )
        return self.apps[index], self.servers[servers]

    async def advance(self, seconds: float) -> None:
        """Move the link's clock on, and let what it released be delivered."""
        self.clock.advance(seconds)
        await self.settle()

    async def close(self) -> None:
        ends = [end for end in (*self.apps, *self.servers) if end.transport is not None]
        for end in ends:
            if end.lost is None:
                end.transport.abortConnection()  # type: ignore[union-attr]
        await self.settle()
        await self.until(lambda: all(end.lost is not None for end in ends), "all closed")
        if self.port is not None:
            await maybeDeferred(self.port.stopListening)


@asynccontextmanager
async def bench(reactor: Any, wire: Wire) -> AsyncIterator[Bench]:
    """A listening bench on ``wire``; every connection is closed afterwards."""
    b = Bench(reactor, wire)
    await b.listen()
    try:
        yield b
    finally:
        await b.close()


WIRES = pytest.mark.parametrize("wire", list(Wire))


def write(end: Recorder, data: bytes) -> None:
    assert end.transport is not None
    end.transport.write(data)


# == latency ================================================================================


@WIRES
@reactor_test
async def test_delay_each_way_lands_exactly_ms_later(reactor: Any, wire: Wire) -> None:
    """250 ms of latency: what the application sends reaches the LCA at +0.25 s, and
    the reply reaches the application 0.25 s after the LCA sent it, not a moment before."""
    async with bench(reactor, wire) as b:
        app, lca = await b.pair()
        b.link.slow(250, None)
        write(app, b"1")
        await b.advance(0.249)
        assert lca.received == b""
        await b.advance(0.001)
        await b.saw("lca0 got 1")
        write(lca, b"x")
        await b.until(lambda: bool(b.clock.getDelayedCalls()), "the reply on its way")
        await b.advance(0.249)
        assert app.received == b""
        await b.advance(0.001)
        assert (0.5, "app0 got x") in b.log


@WIRES
@reactor_test
async def test_no_delay_passes_at_once(reactor: Any, wire: Wire) -> None:
    """The sibling: without latency what is sent arrives with no clock step at all."""
    async with bench(reactor, wire) as b:
        app, _ = await b.pair()
        write(app, b"1")
        await b.settle()
        await b.saw("lca0 got 1")
        assert b.clock.seconds() == 0
        assert b.clock.getDelayedCalls() == []


@WIRES
@reactor_test
async def test_delay_keeps_the_order(reactor: Any, wire: Wire) -> None:
    """Latency lowered meanwhile never lets later data overtake earlier data."""
    async with bench(reactor, wire) as b:
        app, lca = await b.pair()
        b.link.slow(1000, None)
        write(app, b"1")
        await b.advance(0.5)
        b.link.slow(100, None)
        write(app, b"2")  # due at 0.6, but 1 is due at 1.0
        await b.advance(0.4)
        assert lca.received == b""
        await b.advance(0.1)
        await b.until(lambda: lca.received == b"12", "1 then 2")
        assert next(t for t, what in b.log if what.startswith("lca0 got")) == 1.0


@WIRES
@reactor_test
async def test_delay_for_a_time_ends(reactor: Any, wire: Wire) -> None:
    """delay-link with ``for``: latency until then, none after."""
    async with bench(reactor, wire) as b:
        app, _ = await b.pair()
        b.link.slow(500, 2)
        assert b.link.delay == 0.5
        await b.advance(2)
        assert b.link.delay == 0
        write(app, b"1")
        await b.saw("lca0 got 1")


@WIRES
@reactor_test
async def test_a_clean_close_follows_the_delayed_data(reactor: Any, wire: Wire) -> None:
    """A close keeps its place behind the data sent before it, each way: the LCA gets the
    application's last words, then the close (it used to get the close first, and never
    the data)."""
    async with bench(reactor, wire) as b:
        app, lca = await b.pair()
        b.link.slow(1000, None)
        write(app, b"bye")
        assert app.transport is not None
        app.transport.loseConnection()
        await b.advance(0.999)
        assert lca.received == b""
        assert lca.lost is None
        await b.advance(0.001)
        await b.saw("lca0 got bye", "lca0 lost ConnectionDone", "app0 lost ConnectionDone")
        assert b.said().index("lca0 got bye") < b.said().index("lca0 lost ConnectionDone")
        app, lca = await b.pair()
        connection = b.link.connections[0]
        write(lca, b"farewell")
        assert lca.transport is not None
        lca.transport.loseConnection()
        await b.until(lambda: connection.gone, "the close under the application's end")
        assert connection.in_flight == (1, 0)
        assert app.received == b""
        assert app.lost is None  # the close waits behind the data
        await b.advance(1)
        assert b.said()[-2:] == ["app1 got farewell", "app1 lost ConnectionDone"]
        assert b.link.connections == []


@WIRES
@reactor_test
async def test_a_reset_overtakes_the_delayed_data(reactor: Any, wire: Wire) -> None:
    """The sibling: a reset is not delayed, and what was on its way is lost."""
    async with bench(reactor, wire) as b:
        app, lca = await b.pair()
        b.link.slow(1000, None)
        write(app, b"lost")
        assert app.transport is not None
        app.transport.abortConnection()  # type: ignore[attr-defined]
        await b.settle()
        await b.until(lambda: lca.lost is not None, "the reset")
        await b.advance(5)
        assert lca.received == b""
        assert b.clock.seconds() == 5


# == stall ==================================================================================


@WIRES
@reactor_test
async def test_stall_holds_data_then_delivers_it_in_order(reactor: Any, wire: Wire) -> None:
    """A stall for 5 s: nothing moves either way; at its end what was held arrives, in
    the order it was sent."""
    async with bench(reactor, wire) as b:
        app, lca = await b.pair()
        b.link.cut(LinkCut.STALL, 5)
        write(app, b"1")
        write(app, b"2")
        write(lca, b"x")
        connection = b.link.connections[0]
        await b.until(lambda: connection.in_flight == (1, 2), "x held, 1 and 2 held")
        await b.advance(4.999)
        assert (lca.received, app.received) == (b"", b"")
        await b.advance(0.001)
        await b.until(lambda: lca.received == b"12", "1 then 2")
        assert app.received == b"x"
        assert (5.0, "app0 got x") in b.log
        assert app.lost is None
        assert lca.lost is None


@WIRES
@reactor_test
async def test_a_stall_without_for_holds_until_a_later_cut(reactor: Any, wire: Wire) -> None:
    """A stall without ``for`` lasts; a later cut replaces it (here a close: what it held
    is lost with the connection, and the next connection passes data again)."""
    async with bench(reactor, wire) as b:
        app, lca = await b.pair()
        b.link.cut(LinkCut.STALL, None)
        write(app, b"held")
        await b.advance(3600)
        assert lca.received == b""
        b.link.cut(LinkCut.CLOSE, None)
        await b.settle()
        await b.saw("app0 lost ConnectionDone", "lca0 lost ConnectionDone")
        assert lca.received == b""
        app, lca = await b.pair()
        write(app, b"again")
        await b.saw("lca1 got again")


@WIRES
@reactor_test
async def test_a_stall_holds_data_but_not_a_close(reactor: Any, wire: Wire) -> None:
    """An end that closes during a stall (or just before one, with data still delayed)
    closes at once, and what the stall held is lost: a process that exits must not wait
    for a stall to end, however long (a stub stopped during a stall hung the site)."""
    async with bench(reactor, wire) as b:
        app, lca = await b.pair()
        b.link.cut(LinkCut.STALL, None)
        write(app, b"held")
        assert app.transport is not None
        app.transport.loseConnection()
        await b.settle()
        await b.saw("app0 lost ConnectionDone", "lca0 lost ConnectionDone")
        assert lca.received == b""
        b.link.cut(LinkCut.STALL, 1)
        await b.advance(1)
        app, lca = await b.pair()
        b.link.slow(1000, None)
        write(app, b"late")
        assert app.transport is not None
        app.transport.loseConnection()  # waits behind "late" ...
        await b.advance(0.5)
        b.link.cut(LinkCut.STALL, None)  # ... until the stall: then it goes at once
        await b.settle()
        await b.saw("app1 lost ConnectionDone", "lca1 lost ConnectionDone")
        assert lca.received == b""


# == close and reset ===========================================================================


@WIRES
@reactor_test
async def test_cut_close_closes_both_ends_and_reconnection_works(reactor: Any, wire: Wire) -> None:
    """cut-link close without ``for``: both ends see a clean close; the application may
    connect again at once."""
    async with bench(reactor, wire) as b:
        await b.pair()
        b.link.cut(LinkCut.CLOSE, None)
        await b.settle()
        await b.saw("app0 lost ConnectionDone", "lca0 lost ConnectionDone")
        assert not b.link.refusing
        await b.pair()


@WIRES
@reactor_test
async def test_cut_reset_resets_both_ends(reactor: Any, wire: Wire) -> None:
    """cut-link reset: neither end sees a clean close, and data on its way is lost."""
    async with bench(reactor, wire) as b:
        app, lca = await b.pair()
        b.link.slow(1000, None)
        write(app, b"in flight")
        b.link.cut(LinkCut.RESET, None)
        await b.settle()
        await b.until(lambda: app.lost is not None and lca.lost is not None, "both ends reset")
        assert app.lost is not None
        assert lca.lost is not None
        assert app.lost.check(ConnectionDone) is None
        assert lca.lost.check(ConnectionDone) is None
        await b.advance(2)
        assert lca.received == b""


@pytest.mark.parametrize("how", [LinkCut.CLOSE, LinkCut.RESET])
@WIRES
@reactor_test
async def test_new_connections_are_refused_for_the_cut(
    reactor: Any, wire: Wire, how: LinkCut
) -> None:
    """With ``for: 5``, connecting fails until the cut ends, then works."""
    async with bench(reactor, wire) as b:
        await b.pair()
        b.link.cut(how, 5)
        await b.advance(4.999)
        assert b.link.refusing
        with pytest.raises(ConnectionRefusedError):
            await b.connect()
        await b.advance(0.001)
        assert not b.link.refusing
        await b.pair()


# == a later fault, and faults of another kind ================================================


@WIRES
@reactor_test
async def test_a_later_cut_replaces_the_earlier_ones_end(reactor: Any, wire: Wire) -> None:
    """A second stall for 10 s at t=1 outlives the first one's end (t=5): the link is
    stalled until t=11."""
    async with bench(reactor, wire) as b:
        app, lca = await b.pair()
        b.link.cut(LinkCut.STALL, 5)
        await b.advance(1)
        b.link.cut(LinkCut.STALL, 10)
        write(app, b"1")
        await b.advance(9.999)
        assert lca.received == b""
        await b.advance(0.001)
        await b.saw("lca0 got 1")
        assert (11.0, "lca0 got 1") in b.log


@WIRES
@reactor_test
async def test_a_later_delay_replaces_the_earlier_ones_end(reactor: Any, wire: Wire) -> None:
    """500 ms for 2 s, then 100 ms for 10 s from t=1: the first one's end (t=2) does not
    end the second; it ends at t=11."""
    async with bench(reactor, wire) as b:
        b.link.slow(500, 2)
        await b.advance(1)
        b.link.slow(100, 10)
        await b.advance(1)
        assert b.link.delay == 0.1
        await b.advance(8.999)
        assert b.link.delay == 0.1
        await b.advance(0.001)
        assert b.link.delay == 0


@WIRES
@reactor_test
async def test_latency_neither_ends_nor_prolongs_a_stall(reactor: Any, wire: Wire) -> None:
    """A delay-link during a stall does not cancel the stall's end, nor the stall the
    latency's end (they shared one timer generation: the stall then lasted for ever)."""
    async with bench(reactor, wire) as b:
        app, _ = await b.pair()
        b.link.cut(LinkCut.STALL, 5)
        await b.advance(1)
        b.link.slow(100, 10)
        write(app, b"1")
        await b.advance(4)
        assert not b.link.stalled
        assert b.link.delay == 0.1
        await b.advance(0.1)
        await b.saw("lca0 got 1")
        await b.advance(6)
        assert b.link.delay == 0
        b.link.cut(LinkCut.STALL, 2)
        b.link.slow(300, None)
        await b.advance(2)
        assert not b.link.stalled
        assert b.link.delay == 0.3


# == the relay, over real sockets ===============================================================


class RelayBench(Bench):
    """An LCA on TCP port 0, a relay in front of it, and applications that connect to the
    relay with plain TCP (as a stub process does)."""

    def __init__(self, reactor: Any) -> None:
        super().__init__(reactor, Wire.TCP)
        self.relay: Relay | None = None

    async def listen(self) -> None:
        endpoint = TCP4ServerEndpoint(self.reactor, 0, interface="127.0.0.1")
        self.port = await endpoint.listen(Factory.forProtocol(self._server))
        lca = f"tcp:127.0.0.1:{self.port.getHost().port}"  # type: ignore[union-attr]
        self.relay = Relay(self.reactor, APP, lca, self.link)

    def connect(self) -> Deferred[Any]:
        assert self.relay is not None
        port = self.relay.port.getHost().port  # type: ignore[attr-defined]
        app = Recorder(self, f"app{len(self.apps)}")
        self.apps.append(app)
        endpoint = TCP4ClientEndpoint(self.reactor, "127.0.0.1", port)
        return endpoint.connect(Factory.forProtocol(lambda: app))

    async def close(self) -> None:
        await super().close()
        if self.relay is not None:
            self.relay.close()


@asynccontextmanager
async def relay_bench(reactor: Any) -> AsyncIterator[RelayBench]:
    b = RelayBench(reactor)
    await b.listen()
    try:
        yield b
    finally:
        await b.close()


@reactor_test
async def test_relay_passes_bytes_both_ways(reactor: Any) -> None:
    """An application connected to the relay talks to the LCA and back, byte for byte."""
    async with relay_bench(reactor) as b:
        app, lca = await b.pair()
        write(app, b"RequestRegisterApplication\n")
        await b.until(lambda: lca.received == b"RequestRegisterApplication\n", "to the LCA")
        write(lca, b"EventApplicationRegistered\n")
        await b.until(lambda: app.received == b"EventApplicationRegistered\n", "to the app")
        assert b.relay is not None
        assert b.relay.endpoint == f"tcp:127.0.0.1:{b.relay.port.getHost().port}"  # type: ignore[attr-defined]


@reactor_test
async def test_relay_delays_both_ways(reactor: Any) -> None:
    """delay-link through the relay: 300 ms on the link's clock each way, on real sockets."""
    async with relay_bench(reactor) as b:
        app, lca = await b.pair()
        b.link.slow(300, None)
        write(app, b"1")
        await b.until(lambda: bool(b.clock.getDelayedCalls()), "1 held by the relay")
        await b.advance(0.299)
        assert lca.received == b""
        await b.advance(0.001)
        await b.until(lambda: lca.received == b"1", "1 at the LCA")
        write(lca, b"x")
        await b.until(lambda: bool(b.clock.getDelayedCalls()), "x held by the relay")
        await b.advance(0.299)
        assert app.received == b""
        await b.advance(0.001)
        await b.until(lambda: app.received == b"x", "x at the application")


@reactor_test
async def test_relay_cut_close_closes_both_sockets(reactor: Any) -> None:
    """cut-link close through the relay: the application's socket and the LCA's both see
    a clean close."""
    async with relay_bench(reactor) as b:
        await b.pair()
        b.link.cut(LinkCut.CLOSE, None)
        await b.saw("app0 lost ConnectionDone", "lca0 lost ConnectionDone")


@reactor_test
async def test_relay_cut_reset_resets_both_sockets(reactor: Any) -> None:
    """cut-link reset through the relay: both the application and the LCA see a reset, not
    a clean close (the LCA used to see a clean close)."""
    async with relay_bench(reactor) as b:
        await b.pair()
        b.link.cut(LinkCut.RESET, None)
        await b.saw("app0 lost ConnectionLost", "lca0 lost ConnectionLost")


@reactor_test
async def test_relay_passes_a_close_by_either_end_behind_its_data(reactor: Any) -> None:
    """The LCA closing after a last line: the application gets the line, then a clean
    close; the application resetting: the LCA sees a reset."""
    async with relay_bench(reactor) as b:
        app, lca = await b.pair()
        write(lca, b"registration-timeout\n")
        assert lca.transport is not None
        lca.transport.loseConnection()
        await b.saw("app0 got registration-timeout\n", "app0 lost ConnectionDone")
        app, lca = await b.pair()
        assert app.transport is not None
        app.transport.abortConnection()  # type: ignore[attr-defined]
        await b.saw("lca1 lost ConnectionLost")


@reactor_test
async def test_relay_refuses_while_cut_then_relays_again(reactor: Any) -> None:
    """While a cut with ``for`` lasts, a connection to the relay is closed at once and never
    reaches the LCA; after it, connections are relayed again."""
    async with relay_bench(reactor) as b:
        await b.pair()
        b.link.cut(LinkCut.CLOSE, 5)
        await b.saw("app0 lost ConnectionDone", "lca0 lost ConnectionDone")
        await b.connect()
        await b.until(lambda: b.apps[1].lost is not None, "the refused connection closed")
        assert len(b.servers) == 1  # it never reached the LCA
        await b.advance(5)
        await b.pair()
        assert len(b.servers) == 2


@reactor_test
async def test_relay_is_quiet_once_the_lca_has_read_the_close(reactor: Any) -> None:
    """An application writes its last line and closes: the relay passes on the line and
    half a close, and is quiet only once the LCA has read both and closed its end."""
    async with relay_bench(reactor) as b:
        assert b.relay is not None
        assert b.relay.quiet().called  # nothing open yet
        app, lca = await b.pair()
        quiet = b.relay.quiet()
        heard: list[tuple[bytes, bool]] = []
        quiet.addCallback(lambda _: heard.append((lca.received, lca.lost is not None)))
        write(app, b"STOP_PENDING\n")
        assert app.transport is not None
        app.transport.loseConnection()
        await b.until(lambda: quiet.called, "the relay quiet")
        assert heard == [(b"STOP_PENDING\n", True)]
        assert b.relay.open == set()


def test_relay_passes_on_lines_written_before_the_lca_answered() -> None:
    """An application that writes its last line and closes before the relay's own
    connection to the LCA is made: the line still reaches the LCA, then the close.
    (A MemoryReactor decides when that connection is made.)"""
    reactor = MemoryReactor()
    relay = Relay(reactor, APP, "tcp:127.0.0.1:4999", LinkFaults(Clock()).link(APP))
    [(_, app_factory, _, _)] = reactor.tcpServers
    app = app_factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    assert app is not None
    app.makeConnection(StringTransport())
    app.dataReceived(b"last words\n")
    app.connectionLost(Failure(ConnectionDone()))
    [(_, _, lca_factory, _, _)] = reactor.tcpClients  # asked for, not yet made
    lca = lca_factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 4999))
    assert lca is not None
    to_lca = StringTransport()
    lca.makeConnection(to_lca)
    assert to_lca.value() == b"last words\n"
    assert to_lca.disconnecting
    lca.connectionLost(Failure(ConnectionDone()))
    assert relay.open == set()


class Ending:
    """A RunningApplication whose end the test decides."""

    pid = 4242

    def __init__(self) -> None:
        self.exited: Deferred[ProcessExit] = Deferred()
        self.hung = False

    def stop(self, grace: float, ask: Callable[[], bool]) -> Deferred[ProcessExit]:
        return self.exited

    def kill(self) -> Deferred[ProcessExit]:
        return self.exited

    def hang(self) -> None:
        self.hung = True


@reactor_test
async def test_an_application_behind_its_relay_ends_once_the_relay_is_quiet(
    reactor: Any,
) -> None:
    """Its process ended while its last line was still in the relay: the end is told
    (exited) after the LCA has read that line and the close, not before."""
    async with relay_bench(reactor) as b:
        assert b.relay is not None
        process = Ending()
        relayed = RelayedApplication(process, b.relay)
        assert relayed.pid == 4242
        app, lca = await b.pair()
        told: list[tuple[ProcessExit, bytes, bool]] = []
        relayed.exited.addCallback(
            lambda end: told.append((end, lca.received, lca.lost is not None))
        )
        b.link.slow(200, None)  # the last line and the close wait on the link: 200 ms
        write(app, b"bye\n")
        assert app.transport is not None
        app.transport.loseConnection()
        await b.until(lambda: bool(b.clock.getDelayedCalls()), "bye held by the relay")
        process.exited.callback(ProcessExit(code=0, signal=None))
        assert told == []
        await b.advance(0.2)
        await b.until(lambda: bool(told), "the end told")
        assert told == [(ProcessExit(code=0, signal=None), b"bye\n", True)]
        relayed.hang()
        assert process.hung


@reactor_test
async def test_relays_are_one_per_application_and_lca(reactor: Any) -> None:
    """Relays makes one relay per (application, LCA), on that application's link."""
    relays = Relays(LinkFaults(Clock()), reactor)
    try:
        first = relays.endpoint_for(APP, "tcp:127.0.0.1:1")
        assert relays.endpoint_for(APP, "tcp:127.0.0.1:1") == first
        assert relays.endpoint_for(APP, "tcp:127.0.0.1:2") != first
        assert relays.endpoint_for("SIPS_B", "tcp:127.0.0.1:1") != first
        assert relays.faults.link(APP) is relays.faults.link(APP)
    finally:
        relays.close()


def test_each_application_has_one_link() -> None:
    """LinkFaults makes each application's link once, on its clock."""
    clock = Clock()
    faults = LinkFaults(clock)
    link = faults.link(APP)
    assert isinstance(link, AppLink)
    assert faults.link(APP) is link
    assert faults.link("SIPS_B") is not link
    assert link.clock is clock
