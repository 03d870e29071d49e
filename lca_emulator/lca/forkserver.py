"""Starting applications through a fork server (``lca_common.forkserver``).

A :class:`ForkServer` runs one fork server process (a new interpreter, or one forked
from this process early and handed over: ``lca_common.forkserver.fork_early_server``)
and asks it to fork a child per start.  Each child is a
:class:`~lca_emulator.lca.processes.ChildProcess` like any other: stopped by asking it
over the wire, then SIGTERM and SIGKILL by pid; killed with SIGKILL; hung with
SIGSTOP.  Its stdout and stderr are sockets whose other ends we read and log line by
line; it has ended once the fork server has reported its exit status and its output
has ended.

If the fork server dies, every start from then on is a plain spawn, logged, and so
are the starts asked of it before it served.  Its children die with it (PDEATHSIG).
"""

from __future__ import annotations

import enum
import itertools
import os
import signal
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.interfaces import IUNIXTransport
from twisted.internet.process import registerReapProcessHandler, unregisterReapProcessHandler
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure

from lca_common.forkserver import (
    EarlyServer,
    Exited,
    Failed,
    Ready,
    Reply,
    SpawnRequest,
    Started,
    decode_reply,
)
from lca_emulator.lca.processes import (
    ChildProcess,
    OutputLines,
    ProcessExit,
    ProcessLauncher,
    ProcessSpec,
    ProcessStartError,
)

__all__ = ["ForkServer", "ForkServerError", "ForkSpec"]

_log = Logger(namespace="lca_emulator.lca.forkserver")

CONTROL_FD = 3
"""The fork server's descriptor for its control socket (``--control-fd``)."""

STOP_GRACE = 5.0
"""Wall-clock seconds the fork server has to exit once its control socket closes."""

_UNKNOWN = ProcessExit(code=None, signal=None)


class ForkServerError(Exception):
    """The fork server did not start, or is gone."""


@dataclass(frozen=True)
class ForkSpec:
    """An application to start through the fork server: the ``target`` the server knows,
    its arguments, environment and directory; and how to start it without the server."""

    target: str
    args: tuple[str, ...]
    fallback: ProcessSpec
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    cwd: str | None = None


class _State(enum.Enum):
    NEW = "new"
    STARTING = "starting"
    SERVING = "serving"
    STOPPING = "stopping"
    GONE = "gone"


class _Pid:
    """Signals a forked child by its pid (it is the fork server's child, not ours)."""

    def __init__(self, pid: int) -> None:
        self.pid: int | None = pid

    def signalProcess(self, signalID: str | int) -> None:
        signum = signalID if isinstance(signalID, int) else getattr(signal, f"SIG{signalID}")
        if self.pid is None:
            raise ProcessExitedAlready()
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            raise ProcessExitedAlready() from None


class _Child:
    """A process the reactor did not spawn (forked by the fork server, or the fork server
    forked from this process): its ChildProcess, its output, and its exit status.  It
    has ended once the status is known and its output has ended, as Twisted reports the
    end of the processes it spawns."""

    def __init__(self, name: str, child: ChildProcess) -> None:
        self.name = name
        self.child = child
        self.lines = OutputLines(name)
        self.streams: list[_OutputStream] = []
        self.open_streams = 0
        self.outcome: ProcessExit | None = None
        self.handle: _Pid | None = None

    def read(self, reactor: Any, child_fd: int, ours: socket.socket) -> None:
        """Read its output ``child_fd`` (1 or 2) from our end of a socket (which the
        reactor takes over: ``ours`` is closed)."""
        stream = _OutputStream(self, child_fd)
        ours.setblocking(False)
        reactor.adoptStreamConnection(ours.fileno(), socket.AF_UNIX, _Once(stream))
        ours.close()
        self.streams.append(stream)
        self.open_streams += 1

    def stream_closed(self, child_fd: int) -> None:
        self.lines.flush(child_fd)
        self.open_streams -= 1
        self.maybe_ended()

    def exited(self, outcome: ProcessExit) -> None:
        if self.handle is not None:
            self.handle.pid = None  # reaped: its pid may be another process's by now
        self.outcome = outcome
        self.maybe_ended()

    def maybe_ended(self) -> None:
        if self.outcome is not None and self.open_streams <= 0:
            self.lines.flush()
            self.child.ended(self.outcome)


class _Forked(_Child):
    """One start asked of the fork server."""

    def __init__(
        self, name: str, child: ChildProcess, spec: ForkSpec, processes: ProcessLauncher
    ) -> None:
        super().__init__(name, child)
        self.spec = spec
        self.processes = processes
        self.theirs: list[socket.socket] = []

    def handed_over(self) -> None:
        """The fork server holds the child's ends of the output sockets: close ours."""
        for end in self.theirs:
            end.close()
        self.theirs.clear()

    def abandon(self) -> None:
        """Stop reading its output (it will not run as this request)."""
        self.handed_over()
        for stream in self.streams:
            if stream.transport is not None:
                stream.transport.abortConnection()  # type: ignore[attr-defined]


class _Reaped(_Pid):
    """The fork server forked from this process: signalled by pid, and reaped by
    Twisted's reaper of child processes (on SIGCHLD), as the processes it spawns are."""

    def __init__(self, pid: int, ended: Callable[[ProcessExit], None]) -> None:
        super().__init__(pid)
        self._ended = ended
        registerReapProcessHandler(pid, self)  # it may have ended already

    def reapProcess(self) -> None:
        """SIGCHLD: reap it if it has ended."""
        pid = self.pid
        if pid is None:
            return
        try:
            reaped, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: its status is lost
            reaped, status = pid, None
        if reaped:
            unregisterReapProcessHandler(pid, self)
            self.processEnded(status)

    def processEnded(self, status: int | None) -> None:
        self.pid = None
        if status is None:
            self._ended(_UNKNOWN)
        elif os.WIFSIGNALED(status):
            self._ended(ProcessExit(code=None, signal=os.WTERMSIG(status)))
        else:
            self._ended(ProcessExit(code=os.waitstatus_to_exitcode(status), signal=None))


class _OutputStream(Protocol):
    """One of a forked child's output streams."""

    def __init__(self, owner: _Child, child_fd: int) -> None:
        self.owner = owner
        self.child_fd = child_fd

    def dataReceived(self, data: bytes) -> None:
        self.owner.lines.received(self.child_fd, data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.owner.stream_closed(self.child_fd)


class _Once(Factory):
    """A factory for one connection whose protocol is already made."""

    noisy = False

    def __init__(self, protocol: Protocol) -> None:
        self.protocol_made = protocol

    def buildProtocol(self, addr: object) -> Protocol:
        self.protocol_made.factory = self
        return self.protocol_made


class _Control(LineOnlyReceiver):
    """The LCA's end of the control socket: replies in, requests out."""

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def __init__(self, server: ForkServer) -> None:
        self.server = server

    def lineReceived(self, line: bytes) -> None:
        try:
            reply = decode_reply(line)
        except ValueError as e:
            _log.error("{name} | bad reply: {error}", name=self.server.name, error=str(e))
            return
        self.server._reply(reply)

    def lineLengthExceeded(self, line: bytes) -> None:
        _log.error("{name} | reply longer than {n} bytes", name=self.server.name, n=self.MAX_LENGTH)
        self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.server._gone(f"its control socket closed ({reason.getErrorMessage()})")


class ForkServer:
    """One fork server process and the applications it started.

    It may serve several sites one after another: each start brings the
    :class:`ProcessLauncher` of its site (its clock, and how to start it without the
    fork server).

    :param reactor: provides IReactorProcess, IReactorSocket and IReactorTime.
    :param command: how to run the fork server (``--control-fd 3`` is added).
    :param early: a fork server forked from this process already
        (``lca_common.forkserver.fork_early_server``): :meth:`start` takes it over instead of
        running ``command``.
    """

    def __init__(
        self,
        reactor: Any,
        command: ProcessSpec,
        *,
        name: str = "fork server",
        early: EarlyServer | None = None,
    ) -> None:
        self.reactor = reactor
        self.command = command
        self.name = name
        self._early = early
        self.process: ChildProcess | None = None
        self._state = _State.NEW
        self._control: _Control | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, _Forked] = {}
        self._running: dict[int, _Forked] = {}
        self._ready: list[Deferred[None]] = []

    @property
    def serving(self) -> bool:
        """Whether starts go through the fork server (also while it is starting up)."""
        return self._state in (_State.STARTING, _State.SERVING)

    def start(self) -> Deferred[None]:
        """Start the fork server process (or take over the early one); fires once it
        serves, or fails with :class:`ForkServerError` if it is gone first."""
        if self._state is not _State.NEW:
            return self.ready()
        if self._early is not None:
            self.process, ours = self._take(self._early)
        else:
            try:
                self.process, ours = self._spawn()
            except ProcessStartError as e:
                self._state = _State.GONE
                _log.error(
                    "{name} | {error}; stubs start as new processes", name=self.name, error=e
                )
                return self.ready()
        self._state = _State.STARTING
        control = _Control(self)
        self._control = control
        ours.setblocking(False)
        self.reactor.adoptStreamConnection(ours.fileno(), socket.AF_UNIX, _Once(control))
        ours.close()
        self.process.exited.addCallback(self._process_exited)
        return self.ready()

    def _spawn(self) -> tuple[ChildProcess, socket.socket]:
        """Run ``command``: the process, and our end of its control socket."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            argv = (*self.command.argv, "--control-fd", str(CONTROL_FD))
            spec = ProcessSpec(argv=argv, env=self.command.env, cwd=self.command.cwd)
            launcher = ProcessLauncher(self.reactor, self.reactor)  # wall clock for its grace
            child = launcher.start(self.name, spec, inherit={CONTROL_FD: theirs.fileno()})
        except ProcessStartError:
            ours.close()
            raise
        finally:
            theirs.close()
        return child, ours

    def _take(self, early: EarlyServer) -> tuple[ChildProcess, socket.socket]:
        """Take over the fork server forked from this process: the process (its output
        read and logged, its end reaped), and our end of its control socket."""
        control, stdout, stderr = early.take()
        child = ChildProcess(self.name, self.reactor)
        server = _Child(self.name, child)
        server.read(self.reactor, 1, stdout)
        server.read(self.reactor, 2, stderr)
        server.handle = _Reaped(early.pid, server.exited)
        child.attach(server.handle)
        _log.info("{name} | forked from this process: pid {pid}", name=self.name, pid=early.pid)
        return child, control

    def ready(self) -> Deferred[None]:
        """A new Deferred that fires once the fork server serves."""
        if self._state is _State.SERVING:
            return succeed(None)
        d: Deferred[None] = Deferred()
        if self._state in (_State.NEW, _State.STARTING):
            self._ready.append(d)
        else:
            d.errback(ForkServerError(f"the {self.name} is not running"))
        return d

    def spawn(self, name: str, spec: ForkSpec, processes: ProcessLauncher) -> ChildProcess:
        """Start application ``name``: forked by the fork server, or (if it is gone)
        spawned by ``processes`` as a new process.  The pid is known once the server has
        answered; the grace periods are on the clock of ``processes``."""
        if not self.serving or self._control is None or self._control.transport is None:
            _log.warn(
                "{application} | the {name} is not running: starting it as a new process",
                application=name,
                name=self.name,
            )
            return processes.start(name, spec.fallback)
        child = ChildProcess(name, processes.clock)
        forked = _Forked(name, child, spec, processes)
        for child_fd in (1, 2):
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            forked.read(self.reactor, child_fd, ours)
            forked.theirs.append(theirs)
        request = SpawnRequest(next(self._ids), spec.target, spec.args, spec.env, spec.cwd)
        self._pending[request.id] = forked
        transport = cast(IUNIXTransport, self._control.transport)
        for end in forked.theirs:
            transport.sendFileDescriptor(end.fileno())
        transport.write(request.encode())
        _log.info(
            "{application} | asked the {name} to start: {target} {args}",
            application=name,
            name=self.name,
            target=spec.target,
            args=" ".join(spec.args),
        )
        return child

    def stop(self) -> Deferred[None]:
        """Close the control socket (the server exits; children still running die with
        it); fires once the server process has ended (SIGTERM, SIGKILL if it lingers)."""
        process = self.process
        if self._state is _State.NEW or process is None:
            self._state = _State.GONE
            if self._early is not None:
                self._early.discard()
            waiting, self._ready = self._ready, []
            for ready in waiting:
                ready.errback(ForkServerError(f"the {self.name} was stopped before it started"))
            return succeed(None)
        if self._state is not _State.GONE:
            self._state = _State.STOPPING

        def close_control() -> bool:
            if self._control is not None and self._control.transport is not None:
                self._control.transport.loseConnection()
                return True
            return False

        d = process.stop(STOP_GRACE, close_control)
        return d.addCallback(lambda _: None)

    # -- replies and losses ----------------------------------------------------------------

    def _reply(self, reply: Reply) -> None:
        if isinstance(reply, Ready):
            self._serving(reply.pid)
        elif isinstance(reply, Started):
            self._started(reply)
        elif isinstance(reply, Failed):
            self._failed(reply)
        else:
            self._exited(reply)

    def _serving(self, pid: int) -> None:
        if self._state is not _State.STARTING:
            return
        self._state = _State.SERVING
        _log.info("{name} | serving (pid {pid})", name=self.name, pid=pid)
        waiting, self._ready = self._ready, []
        for d in waiting:
            d.callback(None)

    def _started(self, reply: Started) -> None:
        forked = self._pending.pop(reply.id, None)
        if forked is None:
            return
        forked.handed_over()
        self._running[reply.id] = forked
        _log.info(
            "{application} | started pid {pid} (forked by the {name})",
            application=forked.name,
            pid=reply.pid,
            name=self.name,
        )
        forked.handle = _Pid(reply.pid)
        forked.child.attach(forked.handle)

    def _failed(self, reply: Failed) -> None:
        forked = self._pending.pop(reply.id, None)
        if forked is None:
            return
        _log.error(
            "{application} | the {name} could not start it: {error}",
            application=forked.name,
            name=self.name,
            error=reply.error,
        )
        self._fall_back(forked)

    def _exited(self, reply: Exited) -> None:
        forked = self._running.pop(reply.id, None)
        if forked is not None:
            forked.exited(ProcessExit(code=reply.code, signal=reply.signal))

    def _process_exited(self, outcome: ProcessExit) -> ProcessExit:
        self._gone(f"it {outcome.describe()}")
        return outcome

    def _gone(self, why: str) -> None:
        if self._state is _State.GONE:
            return
        stopping = self._state is _State.STOPPING
        served = self._state is not _State.STARTING
        self._state = _State.GONE
        if stopping:
            _log.info("{name} | stopped", name=self.name)
        else:
            _log.error(
                "{name} | gone: {why}; stubs start as new processes from now on",
                name=self.name,
                why=why,
            )
        if self._control is not None and self._control.transport is not None:
            self._control.transport.loseConnection()
        waiting, self._ready = self._ready, []
        for d in waiting:
            d.errback(ForkServerError(f"the {self.name} is gone: {why}"))
        # Its children die with it (PDEATHSIG) and nobody reports their status: each
        # has ended once its output has.  A start it had not answered may have been
        # forked all the same, unless it never served: only then is it started anew.
        pending, self._pending = self._pending, {}
        for forked in pending.values():
            if served or stopping:
                forked.handed_over()
                forked.exited(_UNKNOWN)
            else:
                self._fall_back(forked)
        running, self._running = self._running, {}
        for forked in running.values():
            forked.exited(_UNKNOWN)

    def _fall_back(self, forked: _Forked) -> None:
        """Start it as a new process after all, as the same ChildProcess."""
        forked.abandon()
        _log.warn("{application} | starting it as a new process", application=forked.name)
        try:
            forked.processes.start(forked.name, forked.spec.fallback, child=forked.child)
        except ProcessStartError as e:
            _log.error("{application} | {error}", application=forked.name, error=str(e))
            forked.child.ended(_UNKNOWN)
