"""Process control like a real LCA: start, stop gracefully, kill, restart, see exits.

What runs an application is an :class:`ApplicationLauncher`, given by whoever
builds the Management Layer: the harness starts SIP Server stubs, as child
processes or in this process (``lca_emulator.harness.launchers``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from lca_common.protocol.messages import ApplicationStatus, ErrorCode, ExecutionMode
from lca_emulator.applications import ApplicationSpec

if TYPE_CHECKING:
    from lca_emulator.hosts import Host, Hosts
from lca_emulator.journal import JournalEvent
from lca_emulator.lca.processes import ProcessExit
from lca_emulator.registry import ApplicationRegistry, Records
from lca_emulator.scs.links import LinkState
from lca_emulator.sml import SML_SECTION

log = Logger()

DEFAULT_GRACE = 5.0
"""Seconds an application has to exit after ``EXITING`` before it is signalled."""


class RunningApplication(Protocol):
    """One started application, whatever runs it."""

    @property
    def pid(self) -> int | None:
        """Its process id, if it has a process of its own."""

    @property
    def exited(self) -> Deferred[ProcessExit]:
        """Fires once when it has ended."""

    def stop(self, grace: float, ask: Callable[[], bool]) -> Deferred[ProcessExit]:
        """Ask it to exit (``ask``), then force it after ``grace`` seconds."""

    def kill(self) -> Deferred[ProcessExit]:
        """End it at once."""

    def hang(self) -> None:
        """Make it stop answering, as a hung process does (it can still be killed)."""


class ApplicationLauncher(Protocol):
    """Starts applications from their configuration."""

    def launch(self, spec: ApplicationSpec, lca: str) -> RunningApplication:
        """Start one application that reaches its LCA at ``lca`` (a client endpoint
        string); raises an exception with a clear message on failure."""


class ControlError(Exception):
    """A start/stop request that cannot be honoured; ``code`` is the wire error code."""

    def __init__(self, code: ErrorCode, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


class ApplicationControl:
    """Starts, stops and restarts the configured applications and notes their exits.

    Each application is controlled by the LCA of its host: what it notes goes through
    the SCS's link to that LCA.  A request (start, stop, restart) needs that link; what
    the LCA does by itself (a hang-up restart, an auto-restart) does not.
    """

    def __init__(
        self,
        registry: ApplicationRegistry,
        hosts: Hosts,
        launcher: ApplicationLauncher | None,
        applications: Iterable[ApplicationSpec] = (),
        *,
        grace: float = DEFAULT_GRACE,
    ) -> None:
        self.registry = registry
        self.hosts = hosts
        self.launcher = launcher
        self.grace = grace
        self.applications: dict[str, ApplicationSpec] = {a.name: a for a in applications}
        self._running: dict[str, RunningApplication] = {}
        self._restarting: dict[str, Deferred[None]] = {}
        self._stopping: set[str] = set()
        for host in hosts:
            host.lca.supervise_with(self)
        for name, spec in self.applications.items():
            hosts.place(name, spec.host)
            hosts.of(name).lca.configure(name, spec.sml()[0])
            registry.note(
                name,
                JournalEvent.CONFIGURED,
                status=ApplicationStatus.STOPPED,
                mode=ExecutionMode.UNKNOWN,
                managed=True,
            )

    def managed(self, name: str) -> bool:
        """Whether ``name`` is in the configuration (so it can be started and stopped)."""
        return name in self.applications

    def running(self, name: str) -> bool:
        """Whether ``name`` was started and has not exited yet."""
        return name in self._running

    def _host(self, name: str) -> Host:
        return self.hosts.of(name)

    def _records(self, name: str) -> Records:
        """Where ``name``'s changes are written: the SCS's link to its host's LCA."""
        return self.hosts.of(name).link

    def _reachable(self, name: str, action: str) -> None:
        """A request to ``action`` ``name`` reaches its LCA only over the SCS's link."""
        host = self._host(name)
        if host.link.state is LinkState.HOST_DOWN:
            raise ControlError(
                ErrorCode.HOST_UNREACHABLE, f"cannot {action} {name}: host {host.label} is down"
            )
        if not host.link.up:
            raise ControlError(
                ErrorCode.HOST_UNREACHABLE,
                f"cannot {action} {name}: SCS has no link to the LCA of host {host.label}",
            )

    def _check(self, name: str) -> ApplicationSpec:
        spec = self.applications.get(name)
        if spec is None:
            if name in self.registry:
                raise ControlError(
                    ErrorCode.NOT_MANAGED, f"{name} is not in the configuration; it is only tracked"
                )
            raise ControlError(ErrorCode.UNKNOWN_APPLICATION, f"no application named {name!r}")
        return spec

    def start(self, name: str) -> None:
        """Start ``name``; it is ``START_PENDING`` until it registers and reports.

        A start while a restart of ``name`` is under way is that restart's start.
        """
        spec = self._check(name)
        self._reachable(name, "start")
        if spec.external:
            self._await_external(name)
            return
        if name in self._restarting:
            return
        self._launch(name, spec)

    def _launch(self, name: str, spec: ApplicationSpec) -> None:
        """Start ``name`` on its LCA's own authority (a start asked for, or a restart)."""
        lca = self._host(name).lca
        records = self._records(name)
        if name in self._running:
            raise ControlError(ErrorCode.ALREADY_RUNNING, f"{name} is already running")
        if self.launcher is None:
            raise ControlError(ErrorCode.NOT_MANAGED, "this emulator starts no applications")
        if lca.endpoint is None or lca.down:
            raise ControlError(ErrorCode.START_FAILED, f"{name}: its LCA is not listening")
        records.note(name, JournalEvent.START_REQUESTED, status=ApplicationStatus.START_PENDING)
        try:
            app = self.launcher.launch(spec, lca.endpoint)
        except Exception as e:
            records.note(name, JournalEvent.START_FAILED, str(e), status=ApplicationStatus.STOPPED)
            raise ControlError(ErrorCode.START_FAILED, f"{name} could not be started: {e}") from e
        self._running[name] = app
        records.note(name, JournalEvent.STARTED, f"pid={app.pid or '-'}", pid=app.pid)
        app.exited.addCallback(self._exited, name, app)

    def _await_external(self, name: str) -> None:
        """An external application is started by someone else: wait for it to register.

        One that is connected already keeps its status.
        """
        records = self._records(name)
        record = records.get(name)
        if record is not None and record.connected:
            return
        records.note(
            name,
            JournalEvent.START_REQUESTED,
            "external: waiting for it to register",
            status=ApplicationStatus.START_PENDING,
        )

    def _controlled(self, name: str, action: str) -> ApplicationSpec:
        """The spec of ``name``, which the LCA must be able to ``action`` (not external)."""
        spec = self._check(name)
        if spec.external:
            raise ControlError(
                ErrorCode.NOT_MANAGED,
                f"{name} is external: the LCA does not {action} it (it was not started by it)",
            )
        return spec

    def _exited(self, exit: ProcessExit, name: str, app: RunningApplication) -> ProcessExit:
        if self._running.get(name) is not app:
            return exit  # it vanished with its host: no LCA is left to see it end
        del self._running[name]
        host = self._host(name)
        # A forked process's pid is known only after its start was journaled.
        pid = f" (pid {app.pid})" if app.pid is not None else ""
        host.lca.process_exited(name, exit.describe() + pid)
        asked = name in self._stopping or name in self._restarting
        self._stopping.discard(name)
        spec = self.applications.get(name)
        if not asked and spec is not None and spec.auto_restart and not host.lca.down:
            host.link.note(name, JournalEvent.RESTARTED, "reason=auto-restart")
            self._start_quietly(name)
        return exit

    def stop(self, name: str, *, graceful: bool = False) -> Deferred[ProcessExit | None]:
        """Stop ``name``: ``EXITING``, then signals after the grace period; or, with
        ``graceful``, ``EventSuspendApplication``: it must report SUSPENDING within its
        ``[sml] suspending-wait-timeout`` or it is killed (vendor: *Management Layer
        User's Guide*, graceful stop; ``[sml] suspending-wait-timeout``).

        A stop while a restart is under way cancels the restart's start.
        """
        spec = self._controlled(name, "stop")
        self._reachable(name, "stop")
        self._restarting.pop(name, None)
        if not graceful:
            return self._stop(name)
        app = self._running.get(name)
        if app is None:
            return succeed(None)
        self._stopping.add(name)
        self._records(name).note(name, JournalEvent.STOP_REQUESTED, "graceful (suspend)")
        wait = spec.sml()[0].suspending_wait_timeout
        timer = self.registry.clock.callLater(wait, self._suspend_overdue, name, app, wait)
        lca = self._host(name).lca
        asked = app.stop(wait, lambda: lca.suspend(name))
        d: Deferred[ProcessExit | None] = asked  # type: ignore[assignment]

        def done(result: object) -> object:
            if timer.active():
                timer.cancel()
            return result

        return d.addBoth(done)

    def _suspend_overdue(self, name: str, app: RunningApplication, wait: float) -> None:
        """A graceful stop that did not reach SUSPENDING in time ends in a kill."""
        records = self._records(name)
        record = records.get(name)
        suspending = (ApplicationStatus.SUSPENDING, ApplicationStatus.SUSPENDED)
        if self._running.get(name) is not app or (record and record.status in suspending):
            return
        records.note(
            name, JournalEvent.KILLED, f"no SUSPENDING within suspending-wait-timeout {wait:g} s"
        )
        app.kill()

    def _stop(self, name: str) -> Deferred[ProcessExit | None]:
        app = self._running.get(name)
        if app is None:
            return succeed(None)
        self._stopping.add(name)
        self._records(name).note(name, JournalEvent.STOP_REQUESTED)
        lca = self._host(name).lca
        d: Deferred[ProcessExit | None] = app.stop(
            self.grace, lambda: lca.change_mode(name, ExecutionMode.EXITING)
        )  # type: ignore[assignment]
        return d

    def kill(self, name: str) -> Deferred[ProcessExit | None]:
        """End ``name`` at once, as ``kill -9`` would."""
        self._controlled(name, "kill")
        return self._kill(name)

    def hang(self, name: str) -> None:
        """Make ``name`` hang: it stays connected but answers nothing, heartbeats included."""
        self._controlled(name, "hang")
        app = self._running.get(name)
        if app is None:
            raise ControlError(ErrorCode.NOT_MANAGED, f"{name} is not running")
        log.info("{app}: made to hang", app=name)
        app.hang()

    def restart(self, name: str) -> Deferred[None]:
        """Stop ``name`` if it runs, then start it again (with any option changed since).

        Fires once it has been started again (or with the :class:`ControlError` of the
        start).  Restarts asked for while one is under way are the same restart.
        """
        self._controlled(name, "restart")
        self._reachable(name, "restart")
        return self._restart(name, self._stop)

    def _restart(
        self, name: str, end: Callable[[str], Deferred[ProcessExit | None]]
    ) -> Deferred[None]:
        under_way = self._restarting.get(name)
        if under_way is not None:
            return _follow(under_way)
        done: Deferred[None] = Deferred()
        self._restarting[name] = done

        def start_again(_: object) -> None:
            if self._restarting.get(name) is not done:
                return  # a stop came in meanwhile: it wins
            del self._restarting[name]
            self._start_by_lca(name)

        end(name).addCallback(start_again).chainDeferred(done)
        return _follow(done)

    def application_hung(self, name: str) -> None:
        """The LCA found ``name`` hung: restart it, unless its ``[sml] hangup-restart`` is
        false (vendor: *LCA Hang-up Detection Support*); a hung process cannot be asked
        to exit, so it is killed first."""
        spec = self.applications.get(name)
        if spec is None or name not in self._running or not spec.sml()[0].hangup_restart:
            return
        self._records(name).note(name, JournalEvent.RESTARTED, "reason=hangup")
        self._restart(name, self._kill).addErrback(self._start_failed, name)

    def _kill(self, name: str) -> Deferred[ProcessExit | None]:
        app = self._running.get(name)
        if app is None:
            return succeed(None)
        self._records(name).note(name, JournalEvent.KILLED)
        d: Deferred[ProcessExit | None] = app.kill()  # type: ignore[assignment]
        return d

    def _start_by_lca(self, name: str) -> None:
        """Start ``name`` on its LCA's own authority (no link to the SCS needed)."""
        spec = self._check(name)
        if name not in self._running:
            self._launch(name, spec)

    def _start_quietly(self, name: str) -> None:
        """Start ``name`` again on the LCA's own initiative; a failure is journaled."""
        try:
            self._start_by_lca(name)
        except ControlError as e:
            log.warn("{app}: not restarted: {why}", app=name, why=e.text)

    def _start_failed(self, failure: Failure, name: str) -> None:
        log.warn("{app}: not restarted: {why}", app=name, why=failure.getErrorMessage())

    def set_option(self, name: str, section: str, option: str, value: str) -> None:
        """Change an option in ``name``'s configuration; it applies at the next start."""
        self.applications[name] = spec = self._check(name).with_option(section, option, value)
        if section == SML_SECTION:  # the LCA reads its [sml] options at once
            self._host(name).lca.configure(name, spec.sml()[0])
        log.info(
            "{app}: [{section}] {option} = {value!r} recorded; takes effect after restart",
            app=name,
            section=section,
            option=option,
            value=value,
        )

    def host_down(self, host: Host) -> None:
        """``host`` went down: each application running there is gone at once, though a
        real process takes a moment to die of its kill: its end, heard later (perhaps
        once the host is up again), is not an exit the new LCA sees, nor a reason to
        restart it.  What the LCA notes goes nowhere (the SCS's link to it is lost first)."""
        for name in list(self._running):
            if self._host(name) is host:
                self._restarting.pop(name, None)
                self._kill(name)
                self._running.pop(name, None)

    def autostart(self, host: Host) -> None:
        """The SCS (re)connected to ``host``'s LCA: start every application there whose
        ``[sml] autostart`` is true and that is not running (vendor: SCS starts it whenever
        it connects to an LCA that does not report it started)."""
        for name, spec in self.applications.items():
            wanted = not spec.external and spec.sml()[0].autostart and name not in self._running
            if wanted and self._host(name) is host:
                self._start_quietly(name)

    def kill_all(self) -> Deferred[list[ProcessExit | None]]:
        """End every running application at once, as ``kill -9`` would, none of them
        restarted (the end of a run whose journal has been taken)."""
        self._restarting.clear()
        self._stopping.update(self._running)  # asked to end: no auto-restart
        return gatherResults([self._kill(name) for name in list(self._running)])

    def stop_all(self) -> Deferred[list[ProcessExit | None]]:
        """Stop every running application (used at shutdown).  Each LCA stops its own:
        no request crosses the SCS's links, so one that is lost stops nothing short, and
        no restart under way starts anything again."""
        self._restarting.clear()
        return gatherResults([self._stop(name) for name in list(self._running)])


def _follow(d: Deferred[None]) -> Deferred[None]:
    """A new Deferred with ``d``'s outcome, so each caller gets its own."""
    follower: Deferred[None] = Deferred()

    def passed(result: object) -> object:
        follower.callback(None)
        return result

    def failed(failure: Failure) -> None:
        follower.errback(failure)

    d.addCallbacks(passed, failed)
    return follower
