"""Fakes for the bounds tests: a transport that holds what is written until drained, and
a Management Layer whose connections are such transports (no sockets, a task.Clock)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from wireschema import assert_valid_wire

from lca_common.protocol.codec import MAX_LINE_LENGTH, decode, encode
from lca_common.protocol.messages import LCA_TO_APPLICATION, SCS_TO_CLIENT, Message
from lca_emulator.applications import ApplicationSpec
from lca_emulator.layer import ManagementLayer
from lca_emulator.lca.processes import ProcessExit

_ports = itertools.count(40000)


class BufferedTransport(StringTransport):
    """A StringTransport whose written bytes count as unsent until :meth:`drain`.

    Like Twisted's own transports (``FileDescriptor``), it pauses its streaming
    producer whenever more than ``bufferSize`` bytes are unsent, and resumes it once
    everything has been sent.
    """

    bufferSize = 2**16  # noqa: N815 - Twisted's name

    def __init__(self) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", "127.0.0.1", next(_ports)))
        self.unsent = 0
        self.peak_unsent = 0
        self.producer_paused = False
        self.protocol: Any = None
        """The protocol on it, when a test keeps it here."""

    def write(self, data: bytes) -> None:
        super().write(data)
        self.unsent += len(data)
        self.peak_unsent = max(self.peak_unsent, self.unsent)
        if self.producer is not None and self.streaming and self.unsent > self.bufferSize:
            self.producer_paused = True
            self.producer.pauseProducing()

    def writeSequence(self, data: Any) -> None:
        self.write(b"".join(data))

    def drain(self) -> None:
        """The peer read everything: nothing is unsent any more."""
        self.unsent = 0
        if self.producer is not None and self.producer_paused:
            self.producer_paused = False
            self.producer.resumeProducing()

    @property
    def reading(self) -> bool:
        """Whether the protocol lets this transport read (it is not paused)."""
        return self.producerState == "producing"


class Wire:
    """One server-side connection of a factory, over a :class:`BufferedTransport`."""

    def __init__(self, factory: Factory, accepted: tuple[type[Message], ...]) -> None:
        self.transport = BufferedTransport()
        self.accepted = accepted
        protocol = factory.buildProtocol(self.transport.getPeer())
        assert protocol is not None
        self.protocol: Any = protocol
        protocol.makeConnection(self.transport)
        self._seen = 0

    def feed(self, data: bytes) -> None:
        """Bytes from the peer."""
        self.protocol.dataReceived(data)

    def send(self, message: Message) -> None:
        """One message from the peer."""
        self.feed(encode(message) + b"\n")

    def lines(self) -> list[bytes]:
        """Every line written so far, each checked: within the limit, valid on the wire."""
        data: bytes = self.transport.value()
        assert data == b"" or data.endswith(b"\n")
        lines = data.splitlines()
        for line in lines:
            assert len(line) <= MAX_LINE_LENGTH, len(line)
            assert_valid_wire(json.loads(line))
        return lines

    def received(self) -> list[Message]:
        """What arrived since the last call, decoded."""
        lines = self.lines()
        new, self._seen = lines[self._seen :], len(lines)
        return [decode(line, self.accepted) for line in new]

    @property
    def closing(self) -> bool:
        """Whether the server asked to close the connection."""
        return bool(self.transport.disconnecting)


@dataclass
class FakeProcess:
    """A started application that ends when asked to stop."""

    pid: int
    exited: Deferred[ProcessExit] = field(default_factory=Deferred)

    def stop(self, grace: float, ask: Callable[[], bool]) -> Deferred[ProcessExit]:
        ask()
        return self.kill()

    def kill(self) -> Deferred[ProcessExit]:
        if not self.exited.called:
            self.exited.callback(ProcessExit(0, None))
        return succeed(ProcessExit(0, None))

    def hang(self) -> None:
        pass


@dataclass
class FakeLauncher:
    """Starts :class:`FakeProcess` objects."""

    pids: itertools.count[int] = field(default_factory=lambda: itertools.count(4711))

    def launch(self, spec: ApplicationSpec, lca: str) -> FakeProcess:
        return FakeProcess(next(self.pids))


class Layer:
    """A :class:`ManagementLayer` on a task.Clock whose connections are :class:`Wire`\\ s."""

    def __init__(self, **options: Any) -> None:
        self.clock = Clock()
        self.layer = ManagementLayer(self.clock, **options)
        self.layer.lca.endpoint = "tcp:127.0.0.1:1"  # as if listening: starts are possible
        self.lca_factory = self.layer.lca.factory()
        self.scs_factory = self.layer.management.factory()

    def lca(self) -> Wire:
        """A new application connection."""
        return Wire(self.lca_factory, LCA_TO_APPLICATION)

    def scs(self) -> Wire:
        """A new management connection."""
        return Wire(self.scs_factory, SCS_TO_CLIENT)
