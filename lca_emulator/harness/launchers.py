"""How the harness starts a SIP Server stub for the emulated LCA.

The emulator starts *applications* (:class:`~lca_emulator.applications.ApplicationSpec`);
for the harness each one's ``program`` is a stub fixture, and its ``options`` (the
configuration, changed by ``set-option`` events) replace the fixture's at each
start.  A stub runs either in this process (:class:`InProcessLauncher`, virtual
time and ``--real-time``) or as a ``sipserver-stub`` child process
(:class:`StubProcessLauncher`, ``--processes`` and ``serve``).

An outside application's ``program`` is a :class:`CommandProgram`: both launchers
start it as a child process (:func:`launch_command`), on the wall clock only.  An
``external`` one has no program: the LCA never launches it.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime, IStreamClientEndpoint

from lca_common.entrypoints import MANAGED_ENV
from lca_emulator.applications import ApplicationSpec, CommandProgram
from lca_emulator.harness.faults import LinkFaults
from lca_emulator.harness.model import OutsideApplication
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

if TYPE_CHECKING:
    from lca_common.forkserver import EarlyServer
    from lca_emulator.harness.relay import Relays
    from lca_emulator.lca.forkserver import ForkServer

# The fork server's modules are imported by the starts that use one (stub processes):
# a run in virtual time never does.

_SIGKILL = 9
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's when there is one: faster


def application_spec(fixture: StubFixture) -> ApplicationSpec:
    """The emulator's view of a stub: its name, host and options; the fixture to start it."""
    return ApplicationSpec(
        fixture.application,
        host=fixture.host,
        options=fixture.options,
        program=fixture,
        auto_restart=fixture.auto_restart,
    )


def outside_spec(application: OutsideApplication) -> ApplicationSpec:
    """The emulator's view of an outside program: a command to run, or external."""
    return ApplicationSpec(
        application.application,
        host=application.host,
        program=application.command,
        external=application.external,
    )


ENDPOINT_ENV = "LCA_ENDPOINT"
"""The LCA's client endpoint string (``tcp:127.0.0.1:PORT``), for a command."""
APPLICATION_ENV = "LCA_APPLICATION"
"""The application's configured name, for a command."""
HOST_ENV = "LCA_HOST"
"""The application's configured host (empty when it has none), for a command."""


def launch_command(
    processes: ProcessLauncher | None, spec: ApplicationSpec, lca: str
) -> ChildProcess | None:
    """Start ``spec`` as its own command if it is one (None if it is not).

    The program learns where the LCA is from its environment: ``LCA_ENDPOINT``,
    ``LCA_APPLICATION`` and ``LCA_HOST``.
    """
    program = spec.program
    if not isinstance(program, CommandProgram):
        return None
    if processes is None:
        raise ValueError("a command runs on the wall clock only (--real-time)")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.update({ENDPOINT_ENV: lca, APPLICATION_ENV: spec.name, HOST_ENV: spec.host or ""})
    return processes.start(spec.name, ProcessSpec(argv=program.argv, env=env, cwd=program.cwd))


def stub_fixture(spec: ApplicationSpec) -> StubFixture:
    """The fixture to start ``spec`` with: its program, with the options of now."""
    fixture = spec.program
    if not isinstance(fixture, StubFixture):
        raise TypeError(f"{spec.name}: the harness starts SIP Server stubs only")
    if fixture.options == spec.options:  # no option changed since it was configured
        return fixture
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

    def stop(self, grace: float, ask: Callable[[], bool]) -> Deferred[ProcessExit]:
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
    their LCA over ``network`` (through their link in ``faults``, if given); commands as
    child processes of ``processes`` (none: a virtual-time site, which cannot run them),
    through their relay in ``relays``, if given."""

    def __init__(
        self,
        network: SiteNetwork,
        clock: IReactorTime,
        processes: ProcessLauncher | None = None,
        *,
        faults: LinkFaults | None = None,
        relays: Relays | None = None,
    ) -> None:
        self.network = network
        self.clock = clock
        self.processes = processes
        self.faults = faults
        self.relays = relays

    def launch(self, spec: ApplicationSpec, lca: str) -> InProcessStub | ChildProcess:
        """Start one stub (really occupying its SIP port first when the fixture says so),
        or one command."""
        if self.relays is not None and isinstance(spec.program, CommandProgram):
            lca = self.relays.endpoint_for(spec.name, lca)
        child = launch_command(self.processes, spec, lca)
        if child is not None:
            return child
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
        if self.faults is not None:
            endpoint = self.faults.endpoint(spec.name, endpoint)
        lca_endpoint = cast(IStreamClientEndpoint, endpoint)  # every ClosingEndpoint is one
        stub = SipServerStub(fixture, clock=self.clock, lca=lca_endpoint, probe=SipPortProbe())
        stub.start()
        return InProcessStub(stub, self.clock, occupied, self.network, endpoint)


def _stub_environment() -> dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1", **{MANAGED_ENV: "1"})


def stub_fork_server(reactor: Any, early: EarlyServer | None = None) -> ForkServer:
    """A fork server for stubs (``python -m sipserver_stub.forkserver``, or ``early``, one
    forked from this process by :func:`fork_stub_fork_server`), not started yet."""
    from lca_emulator.lca.forkserver import ForkServer

    command = ProcessSpec(
        argv=(sys.executable, "-m", "sipserver_stub.forkserver"), env=_stub_environment()
    )
    return ForkServer(reactor, command, name="stub fork server", early=early)


def fork_stub_fork_server() -> EarlyServer | None:
    """Fork the stub fork server from this process now, before a reactor is installed: it
    has Twisted imported already and imports the stub while this process reads its files
    and imports the rest (a new interpreter took 0.25 to 0.4 s before it served, all
    before a run's first scenario).  None if it could not be forked: a new interpreter
    is then started when it is needed."""
    from lca_common.forkserver import fork_early_server
    from sipserver_stub.forkserver import serve_stubs

    try:
        return fork_early_server(serve_stubs, name="stub-forkserver")
    except (OSError, RuntimeError):
        return None


class StubProcessLauncher:
    """Starts each application as a stub process: ``sipserver-stub FIXTURE --lca ...``,
    forked by ``forks`` while it runs, else spawned as ``python -m sipserver_stub``.

    The fixture (with any option changed since) is written to ``workdir`` first.  The
    stub's ``--epoch`` is the time of the start request on ``wall``: its scenario time
    and its startup delays count from then, however long it took to come up.
    """

    def __init__(
        self,
        processes: ProcessLauncher,
        workdir: Path,
        *,
        wall: IReactorTime,
        time_scale: float = 1.0,
        forks: ForkServer | None = None,
    ):
        self.processes = processes
        self.workdir = workdir
        self.wall = wall
        self.time_scale = time_scale
        self.forks = forks
        self._count = 0

    def launch(self, spec: ApplicationSpec, lca: str) -> ChildProcess:
        """Write the fixture and start its stub process (or run a command as it is)."""
        epoch = self.wall.seconds()
        child = launch_command(self.processes, spec, lca)
        if child is not None:
            return child
        fixture = stub_fixture(spec)
        self._count += 1  # the name is any text; the file name must not be taken from it
        path = self.workdir / f"application-{self._count}.yaml"
        text = yaml.dump(fixture.to_document(), Dumper=_DUMPER, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        args: tuple[str, ...] = (str(path), "--lca", lca, "--time-scale", repr(self.time_scale))
        args += ("--epoch", repr(epoch))
        env = _stub_environment()
        plain = ProcessSpec(argv=(sys.executable, "-m", "sipserver_stub", *args), env=env)
        if self.forks is None:
            return self.processes.start(spec.name, plain)
        from lca_emulator.lca.forkserver import ForkSpec
        from sipserver_stub.forkserver import TARGET as STUB_TARGET

        fork = ForkSpec(STUB_TARGET, args, plain, env)
        return self.forks.spawn(spec.name, fork, self.processes)
