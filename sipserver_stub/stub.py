"""The SIP Server stub: one application that starts as its fixture says and reports
to the LCA what the real SIP Server would (decision table: ``docs/sipserver-stub.md``)."""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint

from lca_common.logs import DroppingLogger
from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from sipserver_stub.fixture import Component, StubFixture
from sipserver_stub.lca_link import LcaLink
from sipserver_stub.options import TServerOptions
from sipserver_stub.sip_port import SipPortProbe
from sipserver_stub.startup import BackupInitCheck, CheckCore, CheckInputs, ComponentStartup

log = DroppingLogger()  # its decisions: dropped where a run shows none


class SipServerStub:
    """A SIP Server stand-in driven by a :class:`~sipserver_stub.fixture.StubFixture`.

    :param probe: what opens the SIP port for the backup port check.
    :param pid: the process id to register with (``None`` for in-process stubs).
    :param lca_name: the LCA as log lines name it (the ``--lca`` string).
    """

    def __init__(
        self,
        fixture: StubFixture,
        *,
        clock: IReactorTime,
        lca: IStreamClientEndpoint,
        probe: SipPortProbe,
        pid: int | None = None,
        lca_name: str | None = None,
    ) -> None:
        self.fixture = fixture
        self.clock = clock
        self.probe = probe
        self.options = TServerOptions()
        self.status = ApplicationStatus.STOPPED
        self.mode = fixture.mode
        self.running = False
        self.stopped: Deferred[None] = Deferred()
        self.closed: Deferred[None] = succeed(None)
        self._check: CheckInputs | None = None
        self._components: ComponentStartup | None = None
        self.link = LcaLink(
            clock,
            lca,
            fixture.application,
            host=fixture.host,
            pid=pid,
            on_mode=self._mode_changed,
            on_suspend=self._suspend,
            lca_name=lca_name,
        )

    # -- lifecycle -----------------------------------------------------------------

    def start(self, *, since: float | None = None) -> None:
        """Start: read the options, connect to the LCA, initialize, check if backup.

        ``since``: when the start was asked for, on the stub's clock (default: now).
        Component delays and ``backup-init-check-timeout`` count from then, so a
        process that took a while to come up still reports when it should.
        """
        self.options, problems = self.fixture.tserver_options()
        for problem in problems:
            log.warn("{app}: {problem}", app=self.fixture.application, problem=problem)
        self.running = True
        if self.stopped.called:
            self.stopped = Deferred()
        self.mode = self.fixture.mode
        self._report(ApplicationStatus.INITIALIZING, "starting")
        self.link.start()
        elapsed = 0.0 if since is None else self.clock.seconds() - since
        if elapsed < 0:
            log.warn(
                "{app}: the start was asked for {ahead:g} s from now (clocks apart?); "
                "counting the startup delays from now",
                app=self.fixture.application,
                ahead=-elapsed,
            )
            elapsed = 0.0
        self._begin_startup(elapsed)

    def stop(self, *, abort: bool = False) -> Deferred[None]:
        """Stop working now (``stopped`` fires); ``closed`` fires once the LCA link is down.

        ``abort`` drops the LCA connection at once, as a crash would.
        """
        if not self.running:
            return self.stopped
        self.running = False
        self._end_startup()
        self.closed = self.link.stop(abort=abort)
        self.stopped.callback(None)
        return self.stopped

    def freeze(self) -> None:
        """Hang, as a stopped process would: no reports, no heartbeats, no answers."""
        self._end_startup()
        self.link.freeze()
        log.info("{app}: frozen (hung)", app=self.fixture.application)

    # -- startup -------------------------------------------------------------------

    def _begin_startup(self, elapsed: float) -> None:
        opts = self.options
        if self.mode is ExecutionMode.BACKUP and opts.backup_init_check:
            self._check = BackupInitCheck(
                CheckCore(
                    self.clock, opts.backup_init_check_timeout, self._checked, elapsed=elapsed
                )
            )
            self._check.begin()
            reason = self._port_check()
            if reason is not None:
                self._check.port_unavailable(reason)
        else:
            self._check = None
            why = (
                "primary: no backup check"
                if self.mode is ExecutionMode.PRIMARY
                else ("backup-init-check is false: ready without checking")
            )
            self._report(ApplicationStatus.RUNNING, why)
        self._components = ComponentStartup(
            self.clock, self.fixture.components, self._component_completed, self._component_failed
        )
        check = self._check
        timeout = (opts.backup_init_check_timeout, check.timed_out) if check is not None else None
        self._components.start(elapsed, deadline=timeout)

    def _checked(self, status: ApplicationStatus, reason: str) -> None:
        """The check's verdict, final until the next start: from now on the check would
        ignore every input, so none is sent to it."""
        self._check = None
        self._report(status, reason)

    def _component_completed(self, component: Component) -> None:
        log.info("{app}: {c} initialized", app=self.fixture.application, c=component.label)
        if self._check is not None:
            self._check.component_completed(component)

    def _component_failed(self, component: Component) -> None:
        log.warn("{app}: {c} failed to initialize", app=self.fixture.application, c=component.label)
        if self._check is not None:
            self._check.component_failed(component)

    def _port_check(self) -> str | None:
        """The SIP port half of the check; ``None`` when it passed or does not apply."""
        opts, fixture = self.options, self.fixture
        app = fixture.application
        if not opts.backup_sip_port_check:
            log.info("{app}: SIP port check off (backup-sip-port-check = false)", app=app)
            return None
        if opts.control_vip_scripts:
            log.info(
                "{app}: SIP port check skipped: IP Address Takeover (control-vip-scripts = true)",
                app=app,
            )
            return None
        if fixture.host is not None and fixture.host == fixture.peer_host:
            log.info(
                "{app}: SIP port check skipped: same-host pair on {host}",
                app=app,
                host=fixture.host,
            )
            return None
        reason = self.probe.probe(fixture.sip_port)
        if reason is None:
            log.info(
                "{app}: SIP port {port} opened and closed again", app=app, port=fixture.sip_port
            )
        return reason

    def _end_startup(self) -> None:
        if self._components is not None:
            self._components.stop()
        if self._check is not None:
            self._check.abandon()

    # -- mode changes ----------------------------------------------------------------

    def _suspend(self) -> None:
        """A graceful stop: report SUSPENDING, then exit (or, as the fixture may script a
        server that cannot, ignore it)."""
        if not self.fixture.suspends:
            log.info("{app}: asked to suspend; ignoring it", app=self.fixture.application)
            return
        self._report(ApplicationStatus.SUSPENDING, "asked to stop gracefully")
        self.stop()

    def _mode_changed(self, mode: ExecutionMode) -> None:
        if mode is ExecutionMode.EXITING:
            self.mode = mode
            self._report(ApplicationStatus.STOP_PENDING, "asked to exit")
            self.stop()
            return
        if mode is self.mode:
            log.info("{app}: mode {mode} confirmed", app=self.fixture.application, mode=mode.value)
            return
        self.mode = mode
        if mode is ExecutionMode.PRIMARY and self._check is not None:
            self._check.abandon()
            if self.status is ApplicationStatus.INITIALIZING:
                self._report(ApplicationStatus.RUNNING, "promoted to primary: check abandoned")
                return
        self._report(self.status, f"now {mode.value}")

    def _report(self, status: ApplicationStatus, reason: str) -> None:
        self.status = status
        log.info(
            "{app}: {status} ({mode}): {reason}",
            app=self.fixture.application,
            status=status.value,
            mode=self.mode.value,
            reason=reason,
        )
        self.link.report(status, self.mode)
