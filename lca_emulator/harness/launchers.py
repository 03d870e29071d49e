"""How the harness starts a SIP Server stub for the emulated LCA.

The emulator starts *applications* (:class:`~lca_emulator.applications.ApplicationSpec`);
for the harness each one's ``program`` is a stub fixture, and its ``options`` (the
configuration, changed by ``set-option`` events) replace the fixture's at each
start.  A stub runs either in this process (:class:`InProcessLauncher`, virtual
time and ``--real-time``) or as a ``sipserver-stub`` child process
(:class:`StubProcessLauncher`, ``--processes`` and ``serve``).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any, cast

import yaml
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime, IStreamClientEndpoint

from lca_common.entrypoints import MANAGED_ENV
from lca_emulator.applications import ApplicationSpec
from lca_emulator.harness.network import ClosingEndpoint, SiteNetwork, client_endpoint_for
from lca_emulator.lca.processes import (
    ChildProcess,
    ExitWatch,
    ProcessExit,
    ProcessLauncher,
    ProcessSpec,
)
from sipserver_stub.fixture import SipPortState, StubFixture
from sipserver_stub.sip_port import OccupiedPort, SipPortProbe
from sipserver_stub.stub import SipServerStub

_SIGKILL = 9


def application_spec(fixture: StubFixture) -> ApplicationSpec:
    """The emulator's view of a stub: its name, host and options; the fixture to start it."""
    return ApplicationSpec(
        fixture.application,
        host=fixture.host,
        options=fixture.options,
        program=fixture,
        auto_restart=fixture.auto_restart,
    )


def stub_fixture(spec: ApplicationSpec) -> StubFixture:
    """The fixture to start ``spec`` with: its program, with the options of now."""
    fixture = spec.program
    if not isinstance(fixture, StubFixture):
        raise TypeError(f"{spec.name}: the harness starts SIP Server stubs only")
    return dataclasses.replace(fixture, options=spec.options)


class InProcessStub:
    """A running in-process stub, controlled like a child process."""

    pid: int | None = None

    def __init__(
        self,
        stub: SipServerStub,
        clock: IReactorTime,
        occupied: OccupiedPort | None,
        network: SiteNetwork,
        endpoint: ClosingEndpoint,
    ):
        self.stub = stub
        self.clock = clock
        self.occupied = occupied
        self.network = network
        self.endpoint = endpoint
        self._exit = ExitWatch()
        self._timer: IDelayedCall | None = None
        self.exited = self._exit.wait()
        stub.stopped.addCallback(self._stub_stopped)

    def _stub_stopped(self, _: object) -> None:
        """A stub that stopped by itself exits once its connection is closed on both ends.

        So the LCA reads its last words first, as it would from a real process, and
        (in virtual time) the order of the journal never depends on the machine's speed.
        """
        d = self.stub.closed
        d.addCallback(lambda _: self.endpoint.when_closed())
        self.network.track(d)
        d.addCallback(lambda _: self._ended(ProcessExit(code=0, signal=None)))

    def _ended(self, outcome: ProcessExit) -> None:
        if not self._exit.running:
            return
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if self.occupied is not None:
            self.occupied.release()
        self._exit.ended(outcome)

    def stop(self, grace: float, ask: Any) -> Deferred[ProcessExit]:
        """Ask it to exit over the wire; stop it directly if it cannot be asked."""
        if self._exit.running and not ask():
            self.stub.stop()
        elif self._exit.running and self._timer is None:
            self._timer = self.clock.callLater(grace, self.kill)
        return self._exit.wait()

    def hang(self) -> None:
        """Freeze it: connected, but it sends and answers nothing from now on."""
        self.stub.freeze()

    def kill(self) -> Deferred[ProcessExit]:
        """End it now: the process is gone before the LCA sees its connection drop."""
        if self._exit.running:
            self._ended(ProcessExit(code=None, signal=_SIGKILL))
            self.stub.stop(abort=True)
        return self._exit.wait()


class InProcessLauncher:
    """Starts :class:`SipServerStub` objects in this process, on ``clock``, connected to
    their LCA over ``network``."""

    def __init__(self, network: SiteNetwork, clock: IReactorTime) -> None:
        self.network = network
        self.clock = clock

    def launch(self, spec: ApplicationSpec, lca: str) -> InProcessStub:
        """Start one stub (really occupying its SIP port first when the fixture says so)."""
        fixture = stub_fixture(spec)
        occupied = None
        if fixture.sip_port_state is SipPortState.IN_USE:
            try:
                occupied = OccupiedPort(fixture.sip_port)
            except OSError:
                pass  # taken already, by someone else: in use, as the fixture asks
            else:
                fixture = dataclasses.replace(fixture, sip_port=occupied.port)
        endpoint = client_endpoint_for(self.network, lca)
        lca_endpoint = cast(IStreamClientEndpoint, endpoint)  # every ClosingEndpoint is one
        stub = SipServerStub(fixture, clock=self.clock, lca=lca_endpoint, probe=SipPortProbe())
        stub.start()
        return InProcessStub(stub, self.clock, occupied, self.network, endpoint)


class StubProcessLauncher:
    """Starts each application as ``python -m sipserver_stub FIXTURE --lca ...``.

    The fixture (with any option changed since) is written to ``workdir`` first.
    """

    def __init__(self, processes: ProcessLauncher, workdir: Path, *, time_scale: float = 1.0):
        self.processes = processes
        self.workdir = workdir
        self.time_scale = time_scale
        self._count = 0

    def launch(self, spec: ApplicationSpec, lca: str) -> ChildProcess:
        """Write the fixture and start its stub process."""
        fixture = stub_fixture(spec)
        self._count += 1  # the name is any text; the file name must not be taken from it
        path = self.workdir / f"application-{self._count}.yaml"
        path.write_text(yaml.safe_dump(fixture.to_document(), sort_keys=False), encoding="utf-8")
        argv: tuple[str, ...] = (sys.executable, "-m", "sipserver_stub", str(path))
        argv += ("--lca", lca, "--time-scale", repr(self.time_scale))
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{MANAGED_ENV: "1"})
        return self.processes.start(spec.name, ProcessSpec(argv=argv, env=env))
