"""The in-memory network of virtual-time runs: ordered, asynchronous, pumped."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from lca_emulator.harness.network import MemoryNetwork, client_endpoint_for


class Recorder(Protocol):
    """Records what it receives and how its connection ended."""

    def __init__(self, log: list[str], name: str) -> None:
        self.log = log
        self.name = name

    def dataReceived(self, data: bytes) -> None:
        self.log.append(f"{self.name} got {data.decode()}")

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:  # noqa: B008
        self.log.append(f"{self.name} lost {type(reason.value).__name__}")


def fresh() -> tuple[MemoryNetwork, list[str]]:
    """A network on a fake reactor, and an empty log."""
    return MemoryNetwork(Clock()), []


def connected(attempt: Deferred[Any]) -> Any:
    """The protocol a pumped connection attempt gave."""
    assert attempt.called
    return attempt.result


def listening(network: MemoryNetwork, log: list[str]) -> int:
    """A server that records as 'server'; returns its port."""
    factory = Factory.forProtocol(lambda: Recorder(log, "server"))
    port = network.server_endpoint().listen(factory)
    result: list[Any] = []
    port.addCallback(result.append)
    return int(result[0].getHost().port)


def connect(network: MemoryNetwork, port: int, log: list[str], name: str) -> Deferred[Any]:
    return network.client_endpoint(port).connect(Factory.forProtocol(lambda: Recorder(log, name)))


def test_nothing_moves_until_pumped() -> None:
    """A connection and a write happen on a pump, not when asked (as on a real network)."""
    network, log = fresh()
    port = listening(network, log)
    attempt = connect(network, port, log, "client")
    assert not attempt.called
    network.pump()
    client = connected(attempt)
    client.transport.write(b"hello")
    assert log == []
    network.pump()
    assert log == ["server got hello"]


def test_events_keep_the_order_they_happened_in_across_connections() -> None:
    """A write on one connection before an abort on another is delivered first."""
    network, log = fresh()
    port = listening(network, log)
    first, second = connect(network, port, log, "a"), connect(network, port, log, "b")
    network.pump()
    connected(second).transport.write(b"RUNNING")
    connected(first).transport.abortConnection()
    network.pump()
    assert log == ["server got RUNNING", "server lost ConnectionLost", "a lost ConnectionLost"]


def test_a_clean_close_follows_the_data_written_before_it() -> None:
    """loseConnection delivers what was written first, then closes both ends."""
    network, log = fresh()
    port = listening(network, log)
    attempt = connect(network, port, log, "client")
    network.pump()
    connected(attempt).transport.write(b"bye")
    connected(attempt).transport.loseConnection()
    connected(attempt).transport.write(b"too late")
    network.pump()
    assert log == ["server got bye", "server lost ConnectionDone", "client lost ConnectionDone"]


def test_nothing_listening_refuses() -> None:
    """Connecting to a port nobody listens on fails with ConnectionRefusedError."""
    network = MemoryNetwork(Clock())
    attempt = connect(network, 40999, [], "client")
    network.pump()
    failure = connected(attempt)
    assert isinstance(failure, Failure)
    assert failure.check(ConnectionRefusedError)
    attempt.addErrback(lambda _: None)


def test_paused_reading_holds_data_until_resumed() -> None:
    """A paused receiver gets nothing; what arrived meanwhile comes on resume, in order."""
    network, log = fresh()
    port = listening(network, log)
    attempt = connect(network, port, log, "client")
    network.pump()
    client = connected(attempt)
    client.transport.pauseProducing()
    server_end = client.transport.peer_end
    server_end.write(b"1")
    server_end.write(b"2")
    network.pump()
    assert log == []
    client.transport.resumeProducing()
    network.pump()
    assert log == ["client got 1", "client got 2"]


def test_when_closed_fires_once_both_ends_are_gone() -> None:
    """The endpoint tells when its latest connection is closed at both ends."""
    network, log = fresh()
    port = listening(network, log)
    endpoint = client_endpoint_for(network, f"tcp:127.0.0.1:{port}")
    attempt = endpoint.connect(Factory.forProtocol(lambda: Recorder(log, "client")))
    network.pump()
    closed = endpoint.when_closed()
    connected(attempt).transport.loseConnection()
    assert not closed.called
    network.pump()
    assert closed.called


def test_a_pump_is_asked_of_the_reactor_when_work_arrives() -> None:
    """Without anyone pumping, the network pumps itself on the reactor's next turn."""
    reactor = Clock()
    network, log = MemoryNetwork(reactor), list[str]()
    port = listening(network, log)
    attempt = connect(network, port, log, "client")
    reactor.advance(0)
    assert attempt.called
    connected(attempt).transport.write(b"x")
    reactor.advance(0)
    assert log == ["server got x"]


def test_only_loopback_tcp_endpoint_strings() -> None:
    """An endpoint string that is not tcp:127.0.0.1:PORT is refused clearly."""
    with pytest.raises(ValueError, match="not a loopback TCP endpoint"):
        client_endpoint_for(MemoryNetwork(Clock()), "unix:path=/tmp/x")
