"""A whole emulated site: the Management Layer plus its stubs, ready to drive.

Three ways to run the same applications:

``virtual`` (default)
    Everything in this process on a ``task.Clock``, over real loopback sockets.
    Time jumps from one scheduled event to the next once all traffic has settled,
    so a 3600 s timeout takes milliseconds and every run is the same.
``real-time``
    The same, on the wall clock (scaled by ``time_scale``).
``processes``
    Each stub is a ``sipserver-stub`` child process, forked by a stub fork server
    (:func:`open_stub_fork_server`); wall clock, scaled.
"""

from __future__ import annotations

import enum
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorCore, IReactorTime
from twisted.internet.task import Clock, deferLater
from twisted.logger import Logger

from lca_common.clock import ScaledClock
from lca_common.protocol.messages import ApplicationStatus, ErrorCode, ExecutionMode
from lca_common.yamlsource import format_number
from lca_emulator.harness.faults import LinkFaults
from lca_emulator.harness.launchers import (
    InProcessLauncher,
    StubProcessLauncher,
    application_spec,
    outside_spec,
    stub_fork_server,
)
from lca_emulator.harness.model import MAX_VIRTUAL_STEPS, HostConfig, LinkCut, OutsideApplication
from lca_emulator.harness.network import (
    LoopbackNetwork,
    MemoryNetwork,
    SiteNetwork,
    Transport,
)
from lca_emulator.harness.traffic import TrafficMonitor
from lca_emulator.harness.verdict import Timeline
from lca_emulator.layer import ManagementLayer
from lca_emulator.lca.control import ApplicationLauncher, ControlError
from lca_emulator.lca.processes import ProcessLauncher, ProcessScripts
from lca_emulator.registry import ApplicationRecord
from lca_emulator.scs.server import HaPair, ScsOptions
from sipserver_stub.fixture import StubFixture

if TYPE_CHECKING:  # the relays and the fork server: imported by wall-clock runs only
    from lca_common.forkserver import EarlyServer
    from lca_emulator.harness.relay import Relays
    from lca_emulator.lca.forkserver import ForkServer

log = Logger()

SETTLE_LIMIT = 30.0
"""Wall-clock seconds the loopback traffic may take to settle before a run gives up."""


class RunMode(enum.StrEnum):
    """How a site runs its stubs and its clock."""

    VIRTUAL = "virtual"
    REAL_TIME = "real-time"
    PROCESSES = "processes"


class SettleTimeoutError(Exception):
    """Loopback traffic did not settle: a bug, reported rather than hanging."""


class TooManyStepsError(Exception):
    """A run in virtual time went past :data:`MAX_VIRTUAL_STEPS` moments."""


YIELD_EVERY = 1000
"""Steps of virtual time between turns of the reactor, so that a long run still hears
Ctrl-C and SIGTERM (an in-memory run otherwise never gives the reactor a turn)."""


async def open_stub_fork_server(reactor: Any, early: EarlyServer | None = None) -> ForkServer:
    """A stub fork server (``early``, if one was forked already), once it serves; if it
    could not start (logged), one that is gone, so that stubs are spawned as new
    processes."""
    from lca_emulator.lca.forkserver import ForkServerError

    forks = stub_fork_server(reactor, early)
    try:
        await forks.start().addTimeout(SETTLE_LIMIT, reactor)
    except (ForkServerError, defer.TimeoutError) as e:
        log.error("no stub fork server ({error}): stubs start as new processes", error=e)
        await forks.stop()
    return forks


class Site:
    """The Management Layer and its applications, listening on loopback port 0.

    ``transport`` says what carries a virtual-time run's connections (in memory by
    default, or loopback TCP); wall-clock runs use loopback TCP.  ``link_faults``
    False saves a virtual-time run that plays no ``cut-link`` or ``delay-link`` the
    wrapper on each connection.  ``launcher`` replaces the one the mode implies
    (tests use fakes).  ``outside`` applications (a command, or external) need a
    wall-clock mode.  With stub processes, ``forks``
    is the stub fork server to start them with (see :func:`open_stub_fork_server`,
    which takes a moment); without one, the site starts its own when it opens (and
    stops it when it closes), before its clock starts.
    """

    def __init__(
        self,
        reactor: Any,
        *,
        applications: Iterable[StubFixture] = (),
        outside: Iterable[OutsideApplication] = (),
        pairs: Iterable[HaPair] = (),
        mode: RunMode = RunMode.VIRTUAL,
        time_scale: float = 1.0,
        heartbeat: float | None = None,
        grace: float = 5.0,
        launcher: ApplicationLauncher | None = None,
        transport: Transport = Transport.MEMORY,
        scs_options: ScsOptions | None = None,
        hosts: Iterable[HostConfig | str] = (),
        link_faults: bool = True,
        forks: ForkServer | None = None,
    ) -> None:
        self.reactor = reactor
        self.mode = mode
        self.time_scale = time_scale
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self.forks = forks
        self._own_forks = False
        self._stub_launcher: StubProcessLauncher | None = None
        self.clock: IReactorTime
        self.network: SiteNetwork
        if mode is not RunMode.VIRTUAL:
            self.clock = ScaledClock(reactor, time_scale, held=True)  # runs from open()
            self.network = LoopbackNetwork(reactor)
        elif transport is Transport.MEMORY:
            self.clock = Clock()
            self.network = MemoryNetwork(reactor)
        else:
            self.clock = Clock()
            self.network = LoopbackNetwork(reactor, TrafficMonitor(reactor))
        self.faults = LinkFaults(self.clock)
        """Each application's link to its LCA, where ``cut-link`` and ``delay-link`` act."""
        self.relays: Relays | None = None
        if launcher is None:
            launcher = self._launcher_for(mode, link_faults)
        host_configs = [h if isinstance(h, HostConfig) else HostConfig(h) for h in hosts]
        scripts = None  # a script is a process: wall clock only
        if mode is not RunMode.VIRTUAL:
            scripts = ProcessScripts(ProcessLauncher(reactor, self.clock))
        self.layer = ManagementLayer(
            self.clock,
            applications=[
                *(application_spec(fixture) for fixture in applications),
                *(outside_spec(application) for application in outside),
            ],
            pairs=pairs,
            hosts=[host.name for host in host_configs],
            vip_scripts={host.name: host.vip_scripts for host in host_configs},
            scripts=scripts,
            launcher=launcher,
            heartbeat=heartbeat,
            grace=grace,
            scs_options=scs_options,
        )
        self.lca_port = 0
        """Where the default LCA listens (applications without a host)."""
        self.scs_port = 0
        self.host_ports: dict[str, int] = {}
        """Where each host's LCA listens."""

    def _launcher_for(self, mode: RunMode, link_faults: bool) -> ApplicationLauncher:
        if mode is RunMode.VIRTUAL:
            faults = self.faults if link_faults else None
            return InProcessLauncher(self.network, self.clock, faults=faults)
        from lca_emulator.harness.relay import RelayingLauncher, Relays

        # processes reach their LCA through a relay, where link faults are real
        self.relays = Relays(self.faults, self.reactor)
        if mode is RunMode.PROCESSES:
            self._workdir = tempfile.TemporaryDirectory(prefix="lca-emulator-")
            self._stub_launcher = StubProcessLauncher(
                ProcessLauncher(self.reactor, self.clock),
                Path(self._workdir.name),
                wall=self.reactor,
                time_scale=self.time_scale,
                forks=self.forks,
            )
            return RelayingLauncher(self._stub_launcher, self.relays)
        return InProcessLauncher(  # commands run as processes, on the wall clock
            self.network,
            self.clock,
            ProcessLauncher(self.reactor, self.clock),
            faults=self.faults,
            relays=self.relays,
        )

    def now(self) -> float:
        """Scenario time: seconds since the site opened."""
        return self.clock.seconds()

    async def open(self) -> None:
        """Listen on loopback port 0 for applications and management clients (with stub
        processes and no fork server given, once its own fork server serves).

        On the wall clock, scenario time starts here: not while a fork server started.
        """
        if self._stub_launcher is not None and self.forks is None:
            self.forks = await open_stub_fork_server(self.reactor)
            self._own_forks = True
            self._stub_launcher.forks = self.forks
        if isinstance(self.clock, ScaledClock):
            self.clock.restart()
        network = self.network
        hosts = {h.name: network.server_endpoint() for h in self.layer.hosts if h.name is not None}
        ports = await self.layer.listen(network.server_endpoint(), network.server_endpoint(), hosts)
        self.lca_port = ports.lca.getHost().port  # type: ignore[attr-defined]
        self.scs_port = ports.scs.getHost().port  # type: ignore[attr-defined]
        self.host_ports = {
            name: port.getHost().port  # type: ignore[attr-defined]
            for name, port in ports.hosts.items()
        }

    async def settle(self) -> None:
        """Wait until no traffic is in flight (virtual time; at once on the wall clock).

        In memory this is a pump that returns when nothing moves; over loopback TCP it
        waits for the traffic monitor, at most ``SETTLE_LIMIT`` wall-clock seconds.
        """
        d = self.network.settle()
        if d.called:
            return
        d.addTimeout(SETTLE_LIMIT, self.reactor)
        try:
            await d
        except Exception:
            raise SettleTimeoutError(
                f"loopback traffic did not settle in {SETTLE_LIMIT:g} s: {self.network.describe()}"
            ) from None

    async def run_until(self, when: float, until: Callable[[], bool] = lambda: False) -> bool:
        """Let scenario time reach ``when``, handling everything due on the way.

        Stops early, at the first settled moment where ``until()`` holds, and then
        returns True.

        :raises TooManyStepsError: in virtual time, more than :data:`MAX_VIRTUAL_STEPS`
            moments were due before ``when``.
        """
        clock = self.clock
        if isinstance(clock, Clock):
            steps = 0
            turns_a_reactor = IReactorCore.providedBy(self.reactor)  # not a bare Clock
            while True:
                await self.settle()
                if until():
                    return True
                steps += 1
                if steps > MAX_VIRTUAL_STEPS:
                    raise TooManyStepsError(
                        f"stopped at t={format_number(clock.seconds())}: more than "
                        f"{MAX_VIRTUAL_STEPS:,} steps of virtual time (moments when something "
                        "is due), the most a run takes"
                    )
                if turns_a_reactor and steps % YIELD_EVERY == 0:
                    await deferLater(self.reactor, 0, lambda: None)
                due = [c.getTime() for c in clock.getDelayedCalls()]
                step_to = min([*due, when])
                clock.advance(max(0.0, step_to - clock.seconds()))
                if step_to >= when and all(c.getTime() > when for c in clock.getDelayedCalls()):
                    await self.settle()
                    return until()
        while clock.seconds() < when:
            if until():
                return True
            await deferLater(self.reactor, min(0.05, (when - clock.seconds()) * self.time_scale))
        return until()

    # -- driving the site (the same actions as a scenario's events) ----------------

    def start(self, application: str) -> None:
        """Start a configured application (it is START_PENDING until it registers).

        :raises ControlError: not configured, already running, or it cannot start.
        """
        self.layer.control.start(application)

    def stop(self, application: str, *, graceful: bool = False) -> Deferred[object]:
        """Stop it (``EXITING``; ``graceful``: ``EventSuspendApplication``); fires when
        it has exited (drive the clock with :meth:`run_until` meanwhile)."""
        d: Deferred[object] = self.layer.control.stop(application, graceful=graceful)  # type: ignore[assignment]
        return d

    def kill(self, application: str) -> Deferred[object]:
        """End it at once, as ``kill -9`` would."""
        d: Deferred[object] = self.layer.control.kill(application)  # type: ignore[assignment]
        return d

    def hang(self, application: str) -> None:
        """Make it hang: connected, silent (its heartbeat period tells the LCA)."""
        self.layer.control.hang(application)

    def restart(self, application: str) -> Deferred[None]:
        """Stop it, then start it again; fires once it has been started again."""
        return self.layer.control.restart(application)

    def switchover(self, application: str) -> None:
        """A manual switchover of its HA pair.

        :raises KeyError: it is in no pair.
        :raises SwitchoverRefusedError: the backup cannot take the service (the reason).
        """
        self.layer.scs.request_switchover(application)

    def host_down(self, host: str) -> None:
        """Host ``host`` goes down: its LCA and every application on it vanish at once.

        :raises ControlError: no such host, or it is down already.
        """
        self.layer.host_down(host)

    def host_up(self, host: str) -> None:
        """Host ``host`` is back: a new LCA; its ``[sml] autostart`` applications start.

        :raises ControlError: no such host, or it is not down.
        """
        self.layer.host_up(host)

    def cut_lca_link(self, host: str, seconds: float | None = None) -> None:
        """The SCS loses its link to ``host``'s LCA, for ``seconds`` (None: for good)."""
        self.layer.cut_lca_link(host, seconds)

    def cut_link(
        self, application: str, how: LinkCut | str = LinkCut.CLOSE, seconds: float | None = None
    ) -> None:
        """``application``'s own connection to its LCA fails (``close``, ``reset`` or
        ``stall``); for ``seconds`` new connections fail (or stall) too.

        :raises ControlError: not an application the LCA starts.
        """
        self._faultable(application)
        self.faults.link(application).cut(LinkCut(how), seconds)

    def delay_link(self, application: str, ms: float, seconds: float | None = None) -> None:
        """``ms`` milliseconds of latency each way on ``application``'s connection to its
        LCA (for ``seconds``; None: until changed).

        :raises ControlError: not an application the LCA starts.
        """
        self._faultable(application)
        self.faults.link(application).slow(ms, seconds)

    def _faultable(self, application: str) -> None:
        spec = self.layer.control.applications.get(application)
        if spec is None or spec.external:
            why = "not configured" if spec is None else "external"
            raise ControlError(
                ErrorCode.NOT_MANAGED,
                f"{application} is {why}: its connection does not pass through the emulator",
            )

    def set_option(self, application: str, section: str, option: str, value: str) -> None:
        """Change an option in its configuration (read at its next start; ``[sml]`` at once)."""
        self.layer.control.set_option(application, section, option, value)

    def record(self, application: str) -> ApplicationRecord | None:
        """What the Management Layer knows of ``application`` now."""
        return self.layer.registry.get(application)

    def timeline(self) -> Timeline:
        """Every status and mode each application entered so far."""
        return Timeline(self.layer.journal)

    async def wait_for(
        self,
        application: str,
        status: ApplicationStatus | None = None,
        mode: ExecutionMode | None = None,
        *,
        within: float,
    ) -> float:
        """Run until ``application`` shows ``status`` (and/or ``mode``); returns the time.

        :raises AssertionError: not seen within ``within`` seconds from now, with
            the application's observed timeline in the message.
        """

        def reached() -> bool:
            record = self.record(application)
            return (
                record is not None
                and (status is None or record.status is status)
                and (mode is None or record.mode is mode)
            )

        if await self.run_until(self.now() + within, reached):
            return self.now()
        wanted = " ".join(x.value for x in (status, mode) if x is not None)
        lines = "\n  ".join(self.timeline().lines(application)) or "(nothing observed)"
        raise AssertionError(
            f"{application} did not show {wanted} within {within:g} s; observed:\n  {lines}"
        )

    async def close(self, *, abort: bool = False) -> None:
        """Stop every application and stop listening; with ``abort``, kill them instead
        of stopping them gracefully (what they do then is journaled, but nobody reads
        it: ``run_scenario`` takes the journal first)."""
        d: Deferred[object] = self.layer.abort() if abort else self.layer.shutdown()
        if isinstance(self.clock, Clock):
            # graceful stops wait on the virtual clock: keep it moving until done
            while not d.called:
                await self.settle()
                due = [c.getTime() for c in self.clock.getDelayedCalls()]
                if d.called or not due:
                    break
                self.clock.advance(max(0.0, min(due) - self.clock.seconds()))
            if not d.called:  # nearly always done by now: a timeout would be a timer for nothing
                d.addTimeout(SETTLE_LIMIT, self.reactor)
        await d
        if self.relays is not None:
            self.relays.close()
        if self.forks is not None and self._own_forks:
            await self.forks.stop().addTimeout(SETTLE_LIMIT, self.reactor)
        if self._workdir is not None:
            self._workdir.cleanup()
