"""Stubs started by the emulated LCA inside this process (virtual-time runs).

Each stub still talks to the LCA over a real loopback TCP connection; only the
process boundary is left out, so the stub and the emulator share one clock.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from sipserver_stub.fixture import SipPortState
from sipserver_stub.sip_port import LOOPBACK, OccupiedPort, SipPortProbe
from sipserver_stub.stub import SipServerStub

from ..processes import ProcessExit
from ..registry import ApplicationRecord, ApplicationRegistry, JournalEvent
from .traffic import ObservedEndpoint, TrafficMonitor

if TYPE_CHECKING:
    from collections.abc import Callable

    from sipserver_stub.fixture import StubFixture

_SIGKILL = 9


class InProcessStub:
    """A running in-process stub, controlled like a child process."""

    pid: int | None = None

    def __init__(
        self,
        stub: SipServerStub,
        clock: IReactorTime,
        occupied: OccupiedPort | None,
        monitor: TrafficMonitor | None,
        registry: ApplicationRegistry | None,
    ):
        self.stub = stub
        self.registry = registry
        self.clock = clock
        self.occupied = occupied
        self._outcome: ProcessExit | None = None
        self._waiters: list[Deferred[ProcessExit]] = []
        self._timer: IDelayedCall | None = None
        self.exited = self._when_exited()
        self.monitor = monitor
        stub.stopped.addCallback(self._stub_stopped)

    def _stub_stopped(self, _: object) -> None:
        """A stub that stopped by itself exits once the LCA has seen its connection close.

        So the LCA reads its last words first, as it would from a real process, and
        the order of the journal never depends on the machine's speed.
        """
        d = self.stub.closed
        if self.registry is not None:
            d = self._lca_saw_disconnect(self.registry, self.stub.fixture.application)
        if self.monitor is not None:
            self.monitor.track(d)
        d.addCallback(lambda _: self._ended(ProcessExit(code=0, signal=None)))

    @staticmethod
    def _lca_saw_disconnect(registry: ApplicationRegistry, name: str) -> Deferred[None]:
        record = registry.get(name)
        if record is None or not record.connected:
            return succeed(None)
        d: Deferred[None] = Deferred()

        def heard(before: object, after: ApplicationRecord, event: JournalEvent) -> None:
            if after.name == name and event is JournalEvent.DISCONNECTED:
                stop()
                d.callback(None)

        stop = registry.listen(heard)
        return d

    def _when_exited(self) -> Deferred[ProcessExit]:
        d: Deferred[ProcessExit] = Deferred()
        if self._outcome is not None:
            d.callback(self._outcome)
        else:
            self._waiters.append(d)
        return d

    def _ended(self, outcome: ProcessExit) -> None:
        if self._outcome is not None:
            return
        self._outcome = outcome
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if self.occupied is not None:
            self.occupied.release()
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(outcome)

    def stop(self, grace: float, ask: Callable[[], bool]) -> Deferred[ProcessExit]:
        """Ask it to exit over the wire; stop it directly if it cannot be asked."""
        if self._outcome is None and not ask():
            self.stub.stop()
        elif self._outcome is None and self._timer is None:
            self._timer = self.clock.callLater(grace, self.kill)
        return self._when_exited()

    def hang(self) -> None:
        """Freeze it: connected, but it sends and answers nothing from now on."""
        self.stub.freeze()

    def kill(self) -> Deferred[ProcessExit]:
        """End it now: the process is gone before the LCA sees its connection drop."""
        if self._outcome is None:
            self._ended(ProcessExit(code=None, signal=_SIGKILL))
            self.stub.stop(abort=True)
        return self._when_exited()


class InProcessLauncher:
    """Launches :class:`SipServerStub` objects on ``clock``, connecting to ``lca_port``."""

    def __init__(
        self,
        reactor: Any,
        clock: IReactorTime,
        *,
        monitor: TrafficMonitor | None = None,
        lca_port: int = 0,
    ) -> None:
        self.reactor = reactor
        self.clock = clock
        self.monitor = monitor
        self.lca_port = lca_port
        self.registry: ApplicationRegistry | None = None
        """Set to the LCA's registry so a stub's exit follows the LCA seeing it leave."""

    def launch(self, fixture: StubFixture) -> InProcessStub:
        """Start one stub (really occupying its SIP port first when the fixture says so)."""
        occupied = None
        if fixture.sip_port_state is SipPortState.IN_USE:
            try:
                occupied = OccupiedPort(fixture.sip_port)
            except OSError:
                pass  # taken already, by someone else: in use, as the fixture asks
            else:
                fixture = dataclasses.replace(fixture, sip_port=occupied.port)
        endpoint: Any = TCP4ClientEndpoint(self.reactor, LOOPBACK, self.lca_port)
        if self.monitor is not None:
            endpoint = ObservedEndpoint(endpoint, self.monitor)
        stub = SipServerStub(
            fixture,
            clock=self.clock,
            lca=endpoint,
            probe=SipPortProbe(),
            observer=self.monitor,
        )
        stub.start()
        running = InProcessStub(stub, self.clock, occupied, self.monitor, self.registry)
        return running
