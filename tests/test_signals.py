"""Ctrl-C handling of the command-line entry points."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lca_common.entrypoints import (
    MANAGED_ENV,
    ignore_interrupt_if_managed,
    stop_reactor_on_interrupt,
)


@pytest.fixture(autouse=True)
def restore_sigint() -> Iterator[None]:
    """Put back whatever SIGINT handler the test found."""
    before = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, before)


class FakeReactor:
    """Records stop() and runs callFromThread at once."""

    def __init__(self) -> None:
        self.running = True
        self.stops = 0

    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        f(*args)

    def stop(self) -> None:
        self.stops += 1


def test_repeated_interrupts_stop_once() -> None:
    """A second Ctrl-C while stopping is not a second stop (no ReactorNotRunning)."""
    reactor = FakeReactor()
    stop_reactor_on_interrupt(reactor)
    handler = signal.getsignal(signal.SIGINT)
    assert callable(handler)
    handler(signal.SIGINT, None)
    handler(signal.SIGINT, None)
    assert reactor.stops == 1


def test_managed_application_ignores_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stub started by the LCA leaves the terminal's Ctrl-C to the LCA."""
    monkeypatch.setenv(MANAGED_ENV, "1")
    assert ignore_interrupt_if_managed()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_standalone_application_keeps_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stub started by hand stops on Ctrl-C as usual."""
    monkeypatch.delenv(MANAGED_ENV, raising=False)
    before = signal.getsignal(signal.SIGINT)
    assert not ignore_interrupt_if_managed()
    assert signal.getsignal(signal.SIGINT) is before
