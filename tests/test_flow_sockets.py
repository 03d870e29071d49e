"""Flow control over real loopback sockets, in this process: a subscriber that never reads
is cut off with ``too-slow`` while 100,000 changes go by, a client that pipelines
requests without reading is held back (and loses no reply), and a normal client is
served throughout.  The emulator's unsent output is measured on its transports.

Every wait has a deadline; nothing sleeps (the reactor turns with ``deferLater(0)``).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from reactortest import reactor_test
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater

from lca_common.protocol.codec import encode
from lca_common.protocol.framing import (
    MAX_UNREAD,
    READ_SIZE,
    JsonLinesProtocol,
    JsonLinesServerFactory,
)
from lca_common.protocol.messages import (
    ApplicationStatus,
    ErrorCode,
    EventApplicationInfo,
    EventError,
    ExecutionMode,
    Message,
    RequestGetApplicationInfo,
    RequestSubscribe,
)
from lca_emulator.journal import JournalEvent
from lca_emulator.layer import ManagementLayer
from lca_emulator.testing import ManagementClient

TIMEOUT = 20.0
"""Wall-clock seconds any single wait may take."""

BUFFER = READ_SIZE
"""What a transport holds unsent before it pauses its producer (the emulator's choice)."""


@dataclass
class Served:
    """A Management Layer listening on loopback, and the SCS protocols it built."""

    reactor: Any
    layer: ManagementLayer
    clock: Clock
    port: int
    built: list[JsonLinesProtocol] = field(default_factory=list)

    async def turn(self) -> None:
        """Let the reactor run once (reads, writes, closes)."""
        await deferLater(self.reactor, 0, lambda: None)

    async def until(self, condition: Any, what: str) -> None:
        """Turn the reactor until ``condition()``; fail after ``TIMEOUT``."""
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting until {what}"
            await self.turn()

    def raw_client(self, receive_buffer: int | None = None) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.connect(("127.0.0.1", self.port))
        sock.setblocking(False)
        return sock


def unsent(protocol: JsonLinesProtocol) -> int:
    """Bytes the emulator holds for a connection, not yet taken by the kernel (read from
    Twisted's ``FileDescriptor`` buffers: what the emulator's memory holds for it)."""
    t: Any = protocol.transport
    return len(t.dataBuffer) - t.offset + t._tempDataLen  # type: ignore[no-any-return]


@pytest.fixture
def reactor() -> Any:
    """The reactor pytest-twisted runs."""
    from twisted.internet import reactor as global_reactor

    return global_reactor


@asynccontextmanager
async def served(reactor: Any) -> AsyncIterator[Served]:
    clock = Clock()  # the layer's timers (the too-slow grace) move only when told
    layer = ManagementLayer(clock)
    factory = layer.management.factory()
    site = Served(reactor, layer, clock, 0)
    build = factory.buildProtocol

    def keep(addr: Any) -> Any:
        protocol = build(addr)
        if isinstance(protocol, JsonLinesProtocol):
            site.built.append(protocol)
        return protocol

    factory.buildProtocol = keep  # type: ignore[method-assign]
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    site.port = port.getHost().port
    try:
        yield site
    finally:
        for protocol in site.built:
            if protocol.transport is not None:
                protocol.transport.abortConnection()  # type: ignore[attr-defined]
        await port.stopListening()


async def ask(client: ManagementClient, reactor: Any, message: Message) -> Message:
    d: Deferred[Message] = client.request(message)
    d.addTimeout(TIMEOUT, reactor)
    return await d


@reactor_test
async def test_never_reading_subscriber_is_cut_off_over_100000_changes(reactor: Any) -> None:
    """100,000 changes with a subscriber that never reads: it gets too-slow and is closed,
    the emulator never holds more than 4 KiB + 1 MiB for it, and a normal client is
    answered throughout."""
    async with served(reactor) as site:
        slow = site.raw_client(receive_buffer=4096)
        slow.send(encode(RequestSubscribe(ref=1)) + b"\n")
        registry = site.layer.registry
        await site.until(lambda: registry.changes.subscribers == 1, "it has subscribed")
        normal = ManagementClient(reactor, site.port)
        await normal.connect()
        registry.note("APP", JournalEvent.REGISTERED, connected=True, registered=True)
        statuses = [ApplicationStatus.RUNNING, ApplicationStatus.SERVICE_UNAVAILABLE]
        peak = 0
        slowest = 0.0
        for batch in range(100):
            for n in range(1000):
                registry.note(
                    "APP", JournalEvent.STATUS, status=statuses[n % 2], mode=ExecutionMode.PRIMARY
                )
            await site.turn()
            if site.built[0].transport is not None and site.built[0].backpressure is not None:
                peak = max(peak, unsent(site.built[0]))
            if batch % 10 == 0:
                started = time.monotonic()
                reply = await ask(
                    normal, reactor, RequestGetApplicationInfo(ref=1, application="APP")
                )
                slowest = max(slowest, time.monotonic() - started)
                assert isinstance(reply, EventApplicationInfo)
        assert len(registry.journal) == 100_001
        slow_protocol = site.built[0]
        assert slow_protocol.transport is not None
        assert slow_protocol.transport.disconnecting  # type: ignore[attr-defined]
        assert BUFFER < peak <= BUFFER + MAX_UNREAD + 1000
        site.clock.advance(10.0)  # the grace to read what is left: then it is dropped
        await site.until(lambda: registry.changes.subscribers == 0, "it is gone")
        reply = await ask(normal, reactor, RequestGetApplicationInfo(ref=2, application="APP"))
        assert isinstance(reply, EventApplicationInfo)
        assert slowest < 5.0
        slow.setblocking(True)
        slow.settimeout(TIMEOUT)
        with contextlib.suppress(ConnectionResetError):  # aborted: reset, or closed
            while slow.recv(1 << 20):
                pass
        slow.close()
        normal.disconnect()


@reactor_test
async def test_pipelining_client_that_never_reads_is_held_back(reactor: Any) -> None:
    """A client sending requests without reading: the emulator stops reading it once
    replies pile up, holds a bounded amount, and answers every request once it reads."""
    async with served(reactor) as site:
        site.layer.registry.note("APP", JournalEvent.REGISTERED, connected=True)
        client = site.raw_client(receive_buffer=4096)
        request = encode(RequestGetApplicationInfo(ref=1, application="APP")) + b"\n"
        burst = request * 1000
        sent = 0
        blocked_rounds = 0
        peak = 0
        deadline = time.monotonic() + TIMEOUT
        while blocked_rounds < 50:
            assert time.monotonic() < deadline, "the client's sends never blocked"
            try:
                sent += client.send(burst[sent % len(burst) :] if sent % len(burst) else burst)
                blocked_rounds = 0
            except BlockingIOError:
                blocked_rounds += 1
            await site.turn()
            if site.built:
                peak = max(peak, unsent(site.built[0]))
        server = site.built[0]
        assert server.backpressure is not None
        assert server.backpressure.paused
        assert server.transport.bufferSize == READ_SIZE  # type: ignore[union-attr]
        assert peak < BUFFER + 65_536  # the replies to one read (4 KiB of requests), and less
        assert not server.transport.disconnecting  # type: ignore[union-attr]
        # the client now reads (and completes the request it was cut off in): every
        # request it sent is answered
        tail = sent % len(request)
        pending = request[tail:] if tail else b""
        requests = sent // len(request) + (1 if tail else 0)
        answered = 0
        deadline = time.monotonic() + TIMEOUT
        while answered < requests:
            assert time.monotonic() < deadline, f"{answered} of {requests} answered"
            if pending:
                with contextlib.suppress(BlockingIOError):
                    pending = pending[client.send(pending) :]
            try:
                answered += client.recv(1 << 20).count(b"\n")
            except BlockingIOError:
                await site.turn()
        assert answered == requests
        client.close()


@reactor_test
async def test_a_full_endpoint_makes_room_over_real_sockets(reactor: Any) -> None:
    """At the cap, a new connection closes the oldest idle one, whose file is closed
    before the new one is even set up (so a burst cannot run the process out of files);
    the idle peer reads too-many-connections, then EOF; the newcomer is answered."""
    layer = ManagementLayer(Clock(), max_connections=2)
    factory = layer.management.factory()
    assert isinstance(factory, JsonLinesServerFactory)
    built: list[JsonLinesProtocol] = []
    open_when_built: list[list[bool]] = []
    build = factory.buildProtocol

    def keep(addr: Any) -> Any:
        protocol = build(addr)
        open_when_built.append([not p.transport.disconnected for p in built])  # type: ignore[union-attr]
        if isinstance(protocol, JsonLinesProtocol):
            built.append(protocol)
        return protocol

    factory.buildProtocol = keep  # type: ignore[method-assign]
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    site = Served(reactor, layer, Clock(), port.getHost().port)
    try:
        idle = [site.raw_client() for _ in range(2)]
        await site.until(lambda: factory.connections == 2, "both idle ones are accepted")
        newcomer = ManagementClient(reactor, site.port)
        await newcomer.connect()
        reply = await ask(newcomer, reactor, RequestGetApplicationInfo(ref=1, application="X"))
        assert isinstance(reply, EventError)
        assert reply.code is ErrorCode.UNKNOWN_APPLICATION
        assert open_when_built == [[], [True], [False, True]]
        idle[0].setblocking(True)
        idle[0].settimeout(TIMEOUT)
        told = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := idle[0].recv(4096):
                told += chunk
        assert b'"code":"too-many-connections"' in told
        assert (factory.connections, factory.evicted) == (2, 1)
        for sock in idle:
            sock.close()
        newcomer.disconnect()
    finally:
        for protocol in built:
            if protocol.transport is not None and not protocol.transport.disconnected:  # type: ignore[attr-defined]
                protocol.transport.abortConnection()  # type: ignore[attr-defined]
        await port.stopListening()
