"""Applications as real child processes: start, watch, stop gracefully, kill.

The LCA owns a :class:`ProcessLauncher`; each started application is a
:class:`ChildProcess` whose stdout and stderr are logged line by line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal as _signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorProcess,
    IReactorTime,
)
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from lca_emulator.applications import CommandProgram

__all__ = [
    "ChildProcess",
    "ExitWatch",
    "OutputLines",
    "ProcessExit",
    "ProcessHandle",
    "ProcessLauncher",
    "ProcessSpec",
    "ProcessStartError",
]

_log = Logger(namespace="lca_emulator.lca.processes")

# A child that writes this much without a newline is logged in pieces, so one
# runaway line cannot grow our buffer without bound.
_MAX_LINE_BYTES = 64 * 1024
_STREAMS = {1: "stdout", 2: "stderr"}


@dataclass(frozen=True)
class ProcessSpec:
    """How to run an application: argv, environment (None inherits ours) and directory."""

    argv: tuple[str, ...]
    env: Mapping[str, str] | None = None
    cwd: str | None = None


@dataclass(frozen=True)
class ProcessExit:
    """How a child ended: an exit code, or the signal that killed it."""

    code: int | None
    signal: int | None

    def describe(self) -> str:
        """Say how the process ended, e.g. ``killed by signal 9 (SIGKILL)``."""
        if self.signal is not None:
            try:
                name = _signal.Signals(self.signal).name
            except ValueError:
                return f"killed by signal {self.signal}"
            return f"killed by signal {self.signal} ({name})"
        if self.code is not None:
            return f"exited with code {self.code}"
        return "ended with an unknown status"


class ExitWatch:
    """How an application ended, once it has, and everyone waiting for that."""

    def __init__(self) -> None:
        self.outcome: ProcessExit | None = None
        self._waiters: list[Deferred[ProcessExit]] = []

    @property
    def running(self) -> bool:
        """True until the application has ended."""
        return self.outcome is None

    def wait(self) -> Deferred[ProcessExit]:
        """A new Deferred that fires with the outcome (at once if it has ended)."""
        if self.outcome is not None:
            return succeed(self.outcome)
        waiter: Deferred[ProcessExit] = Deferred()
        self._waiters.append(waiter)
        return waiter

    def ended(self, outcome: ProcessExit) -> bool:
        """Record the end and tell every waiter; False if it had ended already."""
        if self.outcome is not None:
            return False
        self.outcome = outcome
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(outcome)
        return True


class ProcessStartError(Exception):
    """An application's process could not be started."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"cannot start {name}: {reason}")
        self.name = name
        self.reason = reason


class ProcessHandle(Protocol):
    """What signals a running process: a Twisted process transport, or a pid."""

    @property
    def pid(self) -> int | None:
        """Its process id (None once Twisted has reaped it)."""

    def signalProcess(self, signalID: str | int) -> None:
        """Send ``SIG<signalID>``; ProcessExitedAlready if it has gone."""


class ChildProcess:
    """One running application process; made by :meth:`ProcessLauncher.start` (or by a
    fork server, ``lca_emulator.lca.forkserver``).

    Signals sent before the process has started (a fork server has not answered yet)
    are sent once it has.
    """

    def __init__(self, name: str, clock: IReactorTime) -> None:
        self.name = name
        self.pid: int | None = None
        """Its process id; None until it has started (a fork server has not answered)."""
        self._clock = clock
        self._handle: ProcessHandle | None = None
        self._queued: list[str] = []
        self._exit = ExitWatch()
        self._timer: IDelayedCall | None = None
        self._stop_requested = False
        self.exited: Deferred[ProcessExit] = self._exit.wait()

    @property
    def running(self) -> bool:
        """True until the process has ended."""
        return self._exit.running

    def signal(self, name: str) -> None:
        """Send ``SIG<name>`` ("TERM", "KILL", "INT"); a no-op once the process has ended."""
        if not self._exit.running:
            return
        if self._handle is None:
            self._queued.append(name)
            return
        _log.info(
            "{application} | sending SIG{signal} to pid {pid}",
            application=self.name,
            signal=name,
            pid=self.pid,
        )
        with contextlib.suppress(ProcessExitedAlready):
            self._handle.signalProcess(name)

    def stop(self, grace: float, ask: Callable[[], bool]) -> Deferred[ProcessExit]:
        """Ask the application to exit, then SIGTERM after ``grace`` seconds, then SIGKILL.

        ``ask`` returns False when it could not ask (e.g. not connected): TERM at once.
        """
        if not self._stop_requested and self._exit.running:
            self._stop_requested = True
            if not self._ask(ask):
                self._terminate(grace)
            elif self._exit.running:
                self._timer = self._clock.callLater(grace, self._terminate, grace)
        return self._exit.wait()

    def hang(self) -> None:
        """Send SIGSTOP: the process stays, answers nothing, and can still be killed."""
        self.signal("STOP")

    def kill(self) -> Deferred[ProcessExit]:
        """Send SIGKILL now."""
        self.signal("KILL")
        return self._exit.wait()

    def _ask(self, ask: Callable[[], bool]) -> bool:
        try:
            return ask()
        except Exception:
            _log.failure("{application} | could not ask it to exit", application=self.name)
            return False

    def _terminate(self, grace: float) -> None:
        self.signal("TERM")
        if self._exit.running:
            self._timer = self._clock.callLater(grace, self.signal, "KILL")

    def attach(self, handle: ProcessHandle) -> None:
        """It runs, as ``handle``: send the signals that waited for it.  Called by
        whoever started the process (``ProcessLauncher``, a fork server)."""
        self._handle = handle
        self.pid = handle.pid
        queued, self._queued = self._queued, []
        for name in queued:
            self.signal(name)

    def ended(self, outcome: ProcessExit) -> None:
        """It has ended so (its output included); called by whoever started it."""
        if not self._exit.running:
            return
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        _log.info(
            "{application} | process {pid} {outcome}",
            application=self.name,
            pid=self.pid,
            outcome=outcome.describe(),
        )
        self._exit.ended(outcome)


class OutputLines:
    """Splits a child's output into lines and logs each with the application's name."""

    def __init__(self, application: str) -> None:
        self.application = application
        self._partial: dict[int, bytes] = {}

    def received(self, child_fd: int, data: bytes) -> None:
        """``data`` arrived on the child's ``child_fd`` (1: stdout, 2: stderr)."""
        buffered = self._partial.get(child_fd, b"") + data
        *lines, rest = buffered.split(b"\n")
        while len(rest) > _MAX_LINE_BYTES:
            lines.append(rest[:_MAX_LINE_BYTES])
            rest = rest[_MAX_LINE_BYTES:]
        self._partial[child_fd] = rest
        for line in lines:
            self._emit(child_fd, line)

    def flush(self, child_fd: int | None = None) -> None:
        """Log the last partial line of ``child_fd`` (of every stream by default)."""
        for fd in [child_fd] if child_fd is not None else list(self._partial):
            rest = self._partial.pop(fd, b"")
            if rest:
                self._emit(fd, rest)

    def _emit(self, child_fd: int, line: bytes) -> None:
        _log.info(
            "{application} | {line}",
            application=self.application,
            line=line.rstrip(b"\r").decode("utf-8", errors="replace"),
            stream=_STREAMS.get(child_fd, str(child_fd)),
        )


class _ChildProtocol(ProcessProtocol):
    """Logs the child's output line by line and reports its end to the ChildProcess."""

    def __init__(self, child: ChildProcess) -> None:
        self._child = child
        self._lines = OutputLines(child.name)

    def childDataReceived(self, child_fd: int, data: bytes) -> None:
        self._lines.received(child_fd, data)

    def childConnectionLost(self, child_fd: int) -> None:
        self._lines.flush(child_fd)

    def processEnded(self, reason: Failure) -> None:
        self._lines.flush()
        value = reason.value
        self._child.ended(
            ProcessExit(
                code=getattr(value, "exitCode", None),
                signal=getattr(value, "signal", None),
            )
        )


class ProcessLauncher:
    """Starts applications as child processes."""

    def __init__(self, reactor: IReactorProcess, clock: IReactorTime) -> None:
        self._reactor = reactor
        self.clock = clock
        """The clock of its processes' grace periods."""

    def start(
        self,
        name: str,
        spec: ProcessSpec,
        *,
        child: ChildProcess | None = None,
        inherit: Mapping[int, int] | None = None,
    ) -> ChildProcess:
        """Spawn ``spec`` for application ``name``; raise ProcessStartError if it cannot run.

        ``child``: the ChildProcess to run it as (one made before it could start, such
        as a fork server's request that never got an answer); a new one by default.
        ``inherit``: more descriptors for the child, as {its fd: our fd}.
        """
        if not spec.argv:
            raise ProcessStartError(name, "empty command line")
        executable = _find_executable(name, spec)
        child = child if child is not None else ChildProcess(name, self.clock)
        fds: dict[int, int | str] = {0: "w", 1: "r", 2: "r", **(inherit or {})}
        try:
            transport = self._reactor.spawnProcess(
                _ChildProtocol(child),
                executable,
                args=spec.argv,
                env=dict(spec.env) if spec.env is not None else None,
                path=spec.cwd,
                childFDs=fds,
            )
        except OSError as error:
            raise ProcessStartError(name, f"{executable}: {error.strerror or error}") from error
        child.attach(transport)
        transport.closeStdin()
        _log.info(
            "{application} | started pid {pid}: {argv}",
            application=name,
            pid=child.pid,
            argv=" ".join(spec.argv),
        )
        return child


def _find_executable(name: str, spec: ProcessSpec) -> str:
    """Resolve argv[0] the way exec would, so a missing program fails here and clearly.

    Twisted forks when a cwd is given, and a failed exec then only shows as exit code 1.
    """
    program = spec.argv[0]
    if os.sep in program:
        candidate = os.path.join(spec.cwd or "", program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
        raise ProcessStartError(name, f"{candidate}: no such executable file")
    env = spec.env if spec.env is not None else os.environ
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise ProcessStartError(name, f"{program}: not found on PATH")
    return os.path.abspath(found)


class ProcessScripts:
    """Runs a host's scripts as child processes of ``processes`` (``LCA_HOST`` in their
    environment): the :class:`~lca_emulator.hosts.ScriptRunner` of wall-clock sites."""

    def __init__(self, processes: ProcessLauncher) -> None:
        self.processes = processes

    def run(self, host: str | None, program: CommandProgram) -> Deferred[ProcessExit]:
        env = dict(os.environ, LCA_HOST=host or "")
        spec = ProcessSpec(argv=program.argv, env=env, cwd=program.cwd)
        try:
            child = self.processes.start(f"script of host {host or '-'}", spec)
        except ProcessStartError as e:
            return fail(e)
        return child.exited
