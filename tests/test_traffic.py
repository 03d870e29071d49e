"""TrafficMonitor: when in-process loopback traffic counts as settled."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from lca_emulator.harness.traffic import TrafficMonitor

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
    monitor.connection_opened(A, B)
    assert not released(monitor, clock)
    monitor.connection_opened(B, A)
    clock.advance(0)
    assert monitor.quiet()


def test_line_in_flight_until_handled() -> None:
    """A line sent and not yet handled by the other end keeps the monitor busy."""
    clock = Clock()
    monitor = TrafficMonitor(clock)
    monitor.connection_opened(A, B)
    monitor.connection_opened(B, A)
    monitor.line_sent(A, B)
    assert not monitor.quiet()
    monitor.line_handled(B, A)
    assert monitor.quiet()


def test_closing_until_both_ends_closed() -> None:
    """A close asked for is traffic until both ends have seen the connection go."""
    clock = Clock()
    monitor = TrafficMonitor(clock)
    monitor.connection_opened(A, B)
    monitor.connection_opened(B, A)
    monitor.connection_closing(A, B)
    assert not monitor.quiet()
    monitor.connection_closed(A, B)
    assert not monitor.quiet()
    monitor.connection_closed(B, A)
    assert monitor.quiet()


def test_unread_lines_do_not_matter_once_closed() -> None:
    """Lines lost with a closed connection do not keep the monitor busy."""
    clock = Clock()
    monitor = TrafficMonitor(clock)
    monitor.connection_opened(A, B)
    monitor.connection_opened(B, A)
    monitor.line_sent(A, B)
    monitor.connection_closed(A, B)
    monitor.connection_closed(B, A)
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
    monitor.connection_opened(A, B)
    clock.advance(0)
    assert not d.called
    monitor.connection_opened(B, A)
    clock.advance(0)
    assert d.called
