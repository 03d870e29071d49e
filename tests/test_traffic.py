"""TrafficMonitor: when in-process loopback traffic counts as settled."""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from lca_common.protocol.framing import JsonLinesProtocol, MessageSender, server_factory
from lca_common.protocol.messages import CLIENT_TO_SCS, EventOk, Message
from lca_emulator.harness.traffic import TrafficMonitor, _ObservedFactory, _ObservedProtocol

A = IPv4Address("TCP", "127.0.0.1", 40000)
B = IPv4Address("TCP", "127.0.0.1", 4999)


def released(monitor: TrafficMonitor, clock: Clock) -> bool:
    """Ask for quiet and let the release turn run."""
    d = monitor.when_quiet()
    clock.advance(0)
    return d.called


def test_idle_monitor_is_quiet() -> None:
    """With nothing going on, a waiter is released on the next turn (not inside the call)."""
    clock = Clock()
    monitor = TrafficMonitor(clock)
    d = monitor.when_quiet()
    assert not d.called
    clock.advance(0)
    assert d.called


def test_half_open_connection_is_not_quiet() -> None:
    """A connection seen from one end only is still being opened."""
    clock = Clock()
    monitor = TrafficMonitor(clock)
    monitor.connection_opened((A, B))
    assert not released(monitor, clock)
    monitor.connection_opened((B, A))
    clock.advance(0)
    assert monitor.quiet()


def test_line_in_flight_until_handled() -> None:
    """A line sent and not yet handled by the other end keeps the monitor busy."""
    clock = Clock()
    monitor = TrafficMonitor(clock)
    monitor.connection_opened((A, B))
    monitor.connection_opened((B, A))
    monitor.bytes_sent((A, B), 10)
    assert not monitor.quiet()
    monitor.bytes_handled((B, A), 10)
    assert monitor.quiet()


def test_closing_until_both_ends_closed() -> None:
    """A close asked for is traffic until both ends have seen the connection go."""
    clock = Clock()
    monitor = TrafficMonitor(clock)
    monitor.connection_opened((A, B))
    monitor.connection_opened((B, A))
    monitor.connection_closing((A, B))
    assert not monitor.quiet()
    monitor.connection_closed((A, B))
    assert not monitor.quiet()
    monitor.connection_closed((B, A))
    assert monitor.quiet()


def test_unread_lines_do_not_matter_once_closed() -> None:
    """Lines lost with a closed connection do not keep the monitor busy."""
    clock = Clock()
    monitor = TrafficMonitor(clock)
    monitor.connection_opened((A, B))
    monitor.connection_opened((B, A))
    monitor.bytes_sent((A, B), 10)
    monitor.connection_closed((A, B))
    monitor.connection_closed((B, A))
    assert monitor.quiet()


def test_connection_attempt_is_traffic() -> None:
    """A tracked connection attempt is in flight until it succeeds or fails."""
    clock = Clock()
    monitor = TrafficMonitor(clock)
    attempt: Deferred[None] = Deferred()
    monitor.track(attempt)
    assert not released(monitor, clock)
    attempt.callback(None)
    clock.advance(0)
    assert monitor.quiet()


def test_release_rechecks_quiet() -> None:
    """If traffic starts between the release being scheduled and running, waiters wait."""
    clock = Clock()
    monitor = TrafficMonitor(clock)
    d = monitor.when_quiet()
    monitor.connection_opened((A, B))
    clock.advance(0)
    assert not d.called
    monitor.connection_opened((B, A))
    clock.advance(0)
    assert d.called


# -- the wrapper that reports each connection end ---------------------------------------


class RecordingMonitor(TrafficMonitor):
    """A TrafficMonitor that also lists what each end reported, by name."""

    def __init__(self) -> None:
        super().__init__(Clock())
        self.calls: list[str] = []

    def connection_opened(self, ends: tuple[IAddress, IAddress]) -> None:
        self.calls.append("opened")
        super().connection_opened(ends)

    def connection_closing(self, ends: tuple[IAddress, IAddress]) -> None:
        self.calls.append("closing")
        super().connection_closing(ends)

    def connection_closed(self, ends: tuple[IAddress, IAddress]) -> None:
        self.calls.append("closed")
        super().connection_closed(ends)

    def bytes_sent(self, ends: tuple[IAddress, IAddress], count: int) -> None:
        self.calls.append(f"sent {count}")
        super().bytes_sent(ends, count)

    def bytes_handled(self, ends: tuple[IAddress, IAddress], count: int) -> None:
        self.calls.append(f"handled {count}")
        super().bytes_handled(ends, count)


class Silent:
    """A controller that ignores everything."""

    def connection_made(self, sender: MessageSender) -> None:
        pass

    def message_received(self, message: Message) -> None:
        pass

    def connection_lost(self, reason: Failure) -> None:
        pass


@dataclass
class ObservedServer:
    """A server-side JsonLinesProtocol behind the observing wrapper, on a StringTransport."""

    wrapper: _ObservedProtocol
    protocol: JsonLinesProtocol
    transport: StringTransport

    def feed(self, data: bytes) -> None:
        """Bytes arrive from the peer (through the wrapper, as the reactor delivers them)."""
        self.wrapper.dataReceived(data)


def observed_server(monitor: TrafficMonitor) -> ObservedServer:
    factory = server_factory(Silent, CLIENT_TO_SCS)
    wrapper = _ObservedFactory(factory, monitor).buildProtocol(B)
    transport = StringTransport(hostAddress=B, peerAddress=A)
    wrapper.makeConnection(transport)
    protocol = wrapper.wrappedProtocol
    assert isinstance(protocol, JsonLinesProtocol)
    return ObservedServer(wrapper, protocol, transport)


def test_observer_sees_a_connection_life() -> None:
    """The wrapper reports open, bytes handled (good lines or bad), sends, closing, closed."""
    monitor = RecordingMonitor()
    server = observed_server(monitor)
    server.feed(b'{"message":"RequestSubscribe","ref":1}\n')
    server.protocol.send(EventOk(ref=1))
    server.feed(b'{"message":"RequestNothing"}\n')
    server.protocol.disconnect()
    server.wrapper.connectionLost(Failure(ConnectionResetError()))
    sent = [call for call in monitor.calls if call.startswith("sent")]
    assert monitor.calls[0] == "opened"
    assert monitor.calls[1] == "handled 39"
    assert len(sent) == 2  # EventOk, and the EventError answering the bad line
    assert monitor.calls[-2:] == ["closing", "closed"]
    assert sum(int(call.split()[1]) for call in sent) == len(server.transport.value())


def test_observer_sees_a_framing_error() -> None:
    """An invalid line is reported as handled, after its reply was sent and the close asked."""
    monitor = RecordingMonitor()
    observed_server(monitor).feed(b"not json\n")
    assert [call.split()[0] for call in monitor.calls] == ["opened", "sent", "closing", "handled"]


def test_connection_end_matching_two_wrapped_ends() -> None:
    """Two wrapped ends of one connection settle once each has handled what the other sent."""
    monitor = TrafficMonitor(Clock())
    server = observed_server(monitor)
    monitor.connection_opened((A, B))
    assert monitor.quiet()
    server.protocol.send(EventOk(ref=1))
    assert not monitor.quiet()
    monitor.bytes_handled((A, B), len(b'{"message":"EventOk","ref":1}\n'))
    assert monitor.quiet()
