"""A fork server: a process that imports a program once, then forks a child per start.

A Python program such as the SIP Server stub spends most of its start importing
(Twisted above all).  A fork server pays that once: it imports the program, then
serves requests to start it, each answered by a ``fork()``; the child runs the
program's ``main`` with the arguments, environment and directory of the request.
``python -m sipserver_stub.forkserver`` is one; the LCA's side is
``lca_emulator.lca.forkserver``.

No reactor ever runs here, so nothing is forked with a reactor's threads, timers or
descriptors: the server loop is ``select()`` over its control socket and a
self-pipe for ``SIGCHLD``, and each child installs a reactor of its own.

The control socket is a connected UNIX stream socket; one JSON object per line.

- ``{"spawn": ID, "target": NAME, "args": [...], "env": {...}, "cwd": DIR}`` with two
  file descriptors attached (``SCM_RIGHTS``): the child's stdout and stderr.
- ``{"ready": PID}``: sent once, when the server serves.
- ``{"started": ID, "pid": PID}`` or ``{"failed": ID, "error": TEXT}`` per request.
- ``{"exited": ID, "code": N, "signal": N}`` once a child has ended (one of the two
  is null), always after its ``started``.

The server exits at the end of its control socket, killing (SIGKILL) and reaping the
children still running; if it is killed itself, they end with it
(``PR_SET_PDEATHSIG``: ``SIGKILL``), as they would end with the LCA.

A server is a new interpreter (``python -m sipserver_stub.forkserver --control-fd N``)
or, started sooner, a child forked from the command that will use it
(:func:`fork_early_server`): it then has every module the command has imported so far, and
imports the rest while the command goes on with its own start.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import select
import signal
import socket
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NoReturn

from lca_common.entrypoints import terminate_with_parent

__all__ = [
    "FDS_PER_SPAWN",
    "EarlyServer",
    "Exited",
    "Failed",
    "Ready",
    "Reply",
    "SpawnRequest",
    "Started",
    "Target",
    "decode_reply",
    "encode_reply",
    "fork_early_server",
    "serve",
]
"""The wire format of the control socket (both sides), ``serve`` (the server side) and
``fork_early_server`` (a server started early, by the side that uses it)."""

FDS_PER_SPAWN = 2
"""Descriptors sent with each ``spawn``: the child's stdout and stderr."""

_MAX_FDS_PER_READ = 64
_READ_SIZE = 65536

Target = Callable[[list[str]], object]
"""A program's ``main``: called with its arguments; returns, or raises SystemExit."""


@dataclass(frozen=True)
class SpawnRequest:
    """Start ``target`` in a new child (its stdout and stderr travel with the request)."""

    id: int
    target: str
    args: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    cwd: str | None = None

    def encode(self) -> bytes:
        """One line of the control socket."""
        document = {
            "spawn": self.id,
            "target": self.target,
            "args": list(self.args),
            "env": dict(self.env),
            "cwd": self.cwd,
        }
        return json.dumps(document, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> SpawnRequest:
        """The request on ``line``; ValueError if it is not one."""
        document = _object(line)
        args, env, cwd = document.get("args"), document.get("env"), document.get("cwd")
        if not (
            isinstance(args, list)
            and all(isinstance(a, str) for a in args)
            and isinstance(env, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
            and (cwd is None or isinstance(cwd, str))
        ):
            raise ValueError(f"malformed spawn request: {line[:200]!r}")
        return cls(
            _int(document, "spawn"),
            _str(document, "target"),
            tuple(args),
            MappingProxyType(dict(env)),
            cwd,
        )


@dataclass(frozen=True)
class Ready:
    """The server has imported its program and serves."""

    pid: int


@dataclass(frozen=True)
class Started:
    """Request ``id`` runs as process ``pid``."""

    id: int
    pid: int


@dataclass(frozen=True)
class Failed:
    """Request ``id`` could not be started."""

    id: int
    error: str


@dataclass(frozen=True)
class Exited:
    """The child of request ``id`` ended: with ``code``, or killed by ``signal``."""

    id: int
    code: int | None
    signal: int | None


Reply = Ready | Started | Failed | Exited


def encode_reply(reply: Reply) -> bytes:
    """One line of the control socket."""
    document: dict[str, Any]
    if isinstance(reply, Ready):
        document = {"ready": reply.pid}
    elif isinstance(reply, Started):
        document = {"started": reply.id, "pid": reply.pid}
    elif isinstance(reply, Failed):
        document = {"failed": reply.id, "error": reply.error}
    else:
        document = {"exited": reply.id, "code": reply.code, "signal": reply.signal}
    return json.dumps(document, separators=(",", ":")).encode() + b"\n"


def decode_reply(line: bytes) -> Reply:
    """The reply on ``line``; ValueError if it is not one."""
    document = _object(line)
    if "ready" in document:
        return Ready(_int(document, "ready"))
    if "started" in document:
        return Started(_int(document, "started"), _int(document, "pid"))
    if "failed" in document:
        return Failed(_int(document, "failed"), _str(document, "error"))
    if "exited" in document:
        code, sig = document.get("code"), document.get("signal")
        if not (code is None or isinstance(code, int)) or not (sig is None or isinstance(sig, int)):
            raise ValueError(f"malformed exit report: {line[:200]!r}")
        return Exited(_int(document, "exited"), code, sig)
    raise ValueError(f"not a fork server reply: {line[:200]!r}")


def _object(line: bytes) -> dict[str, Any]:
    try:
        document = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"not JSON: {line[:200]!r}: {e}") from None
    if not isinstance(document, dict):
        raise ValueError(f"not a JSON object: {line[:200]!r}")
    return document


def _int(document: dict[str, Any], key: str) -> int:
    value = document.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key!r} must be an integer, got {value!r}")
    return value


def _str(document: dict[str, Any], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string, got {value!r}")
    return value


# -- the server -------------------------------------------------------------------------

_RESET_SIGNALS = (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE)


@dataclass(frozen=True)
class _Signals:
    """The signal dispositions and mask this process started with, for its children."""

    handlers: Mapping[int, Any]
    mask: frozenset[int]

    @classmethod
    def capture(cls) -> _Signals:
        handlers = {int(s): signal.getsignal(s) for s in _RESET_SIGNALS}
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        return cls(MappingProxyType(handlers), frozenset(int(s) for s in mask))

    def restore(self) -> None:
        for signum, handler in self.handlers.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)


def serve(
    control: socket.socket,
    targets: Mapping[str, Target],
    *,
    warm: Callable[[], object] | None = None,
    spares: int = 2,
) -> int:
    """Serve spawn requests on ``control`` until it ends; returns the exit code.

    ``spares`` children are forked ahead and wait for a request, having run ``warm``
    (which may import and install what every start needs, a reactor included: a spare
    never forks); a request is handed to one of them, or forked if none is ready.
    Refuses (exit code 2) to run in a process that has installed a Twisted reactor.
    """
    if "twisted.internet.reactor" in sys.modules:
        print("fork server: a reactor is installed here; refusing to fork", file=sys.stderr)
        return 2
    # Keep the imported objects out of every child's garbage collections: a collection
    # would touch (and so copy) all of their pages.
    gc.collect()
    gc.freeze()
    server = _Server(control, targets, warm, spares)
    try:
        server.run()
    finally:
        server.close()
    return 0


_SPARE_READY = b"+"
"""What a spare sends on its socket once it has warmed up."""

_REPLENISH_AFTER = 0.5
"""Seconds without requests before spares are forked again: not while the children just
started are still coming up (they would compete for the CPU)."""

_WARM_LIMIT = 10.0
"""Seconds the first spares have to warm up before the server says it is ready."""


@dataclass
class _Spare:
    """A child forked ahead, waiting on ``sock`` for its request."""

    pid: int
    sock: socket.socket


class _Server:
    def __init__(
        self,
        control: socket.socket,
        targets: Mapping[str, Target],
        warm: Callable[[], object] | None,
        spares: int,
    ) -> None:
        self.control = control
        self.targets = targets
        self.warm = warm
        self.spare_count = spares
        self.initial = _Signals.capture()
        self.children: dict[int, int] = {}  # pid -> request id
        self.spares: deque[_Spare] = deque()
        self.replenish_at: float | None = None
        self.fds: deque[int] = deque()
        self.buffer = b""
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the LCA, which stops us
        signal.signal(signal.SIGCHLD, _wake)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        control.setblocking(True)

    def run(self) -> None:
        self.replenish()
        self.await_warm()
        self.send(Ready(os.getpid()))
        while True:
            timeout = None
            if self.replenish_at is not None:
                timeout = max(0.0, self.replenish_at - time.monotonic())
            readable, _, _ = select.select([self.control.fileno(), self.wake_r], [], [], timeout)
            if self.wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self.wake_r, 512):
                        pass
                self.reap()
            if self.control.fileno() in readable:
                data, fds, flags, _ = socket.recv_fds(self.control, _READ_SIZE, _MAX_FDS_PER_READ)
                self.fds.extend(fds)
                if flags & socket.MSG_CTRUNC:  # descriptors were lost: requests and their
                    print("fork server: descriptors lost (MSG_CTRUNC)", file=sys.stderr)
                    return  # descriptors no longer pair up; the LCA spawns from now on
                if not data:
                    return
                self.buffer += data
                while b"\n" in self.buffer:
                    line, self.buffer = self.buffer.split(b"\n", 1)
                    self.handle(line)
            elif self.replenish_at is not None and time.monotonic() >= self.replenish_at:
                self.replenish()

    def handle(self, line: bytes) -> None:
        try:
            request = SpawnRequest.decode(line)
        except ValueError as e:
            print(f"fork server: {e}", file=sys.stderr)
            # Its descriptors came with it: drop them, or the next request gets them.
            for _ in range(min(FDS_PER_SPAWN, len(self.fds))):
                os.close(self.fds.popleft())
            return
        if len(self.fds) < FDS_PER_SPAWN:
            self.send(Failed(request.id, "no stdout and stderr came with the request"))
            return
        out, err = (self.fds.popleft() for _ in range(FDS_PER_SPAWN))
        try:
            target = self.targets.get(request.target)
            if target is None:
                known = ", ".join(sorted(self.targets))
                self.send(Failed(request.id, f"unknown target {request.target!r} ({known})"))
                return
            pid = self.hand_to_spare(line, out, err)
            if pid is None:
                pid = self.fork()
                if pid == 0:
                    self.become(request, target, out, err)
                if pid < 0:
                    self.send(Failed(request.id, "fork failed"))
                    return
            self.children[pid] = request.id
            self.send(Started(request.id, pid))
            self.replenish_at = time.monotonic() + _REPLENISH_AFTER
        finally:
            os.close(out)
            os.close(err)

    def hand_to_spare(self, line: bytes, out: int, err: int) -> int | None:
        """Give the request to a spare; its pid, or None if no spare could take it."""
        while self.spares:
            spare = self.spares.popleft()
            try:
                socket.send_fds(spare.sock, [line + b"\n"], [out, err])
            except OSError:
                continue  # it died: the next one
            finally:
                spare.sock.close()
            return spare.pid
        return None

    def fork(self) -> int:
        """fork(): 0 in the child, -1 (reported on stderr) if it failed."""
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        try:
            return os.fork()
        except OSError as e:
            print(f"fork server: fork: {e}", file=sys.stderr)
            return -1

    def replenish(self) -> None:
        """Fork spares up to their number."""
        self.replenish_at = None
        while len(self.spares) < self.spare_count:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            pid = self.fork()
            if pid == 0:
                ours.close()
                self.spare(theirs)
            theirs.close()
            if pid < 0:
                ours.close()
                return
            self.spares.append(_Spare(pid, ours))

    def await_warm(self) -> None:
        """Wait (boundedly) until the first spares have warmed up; drop those that did not."""
        deadline = time.monotonic() + _WARM_LIMIT
        for spare in list(self.spares):
            ready, _, _ = select.select([spare.sock], [], [], max(0.0, deadline - time.monotonic()))
            if not ready or spare.sock.recv(1) != _SPARE_READY:
                spare.sock.close()
                self.spares.remove(spare)

    def detach(self, keep: socket.socket | None = None) -> None:
        """In a child: end with the server, default signals, none of the server's sockets."""
        parent = os.getppid()
        terminate_with_parent()
        if os.getppid() != parent:  # the server died before the line above
            os._exit(1)
        signal.set_wakeup_fd(-1)
        self.initial.restore()
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.control.close()
        for spare in self.spares:
            spare.sock.close()
        for fd in self.fds:
            os.close(fd)
        self.spares.clear()
        self.fds.clear()

    def spare(self, sock: socket.socket) -> NoReturn:
        """In a spare: warm up, say so, wait for a request, then become its program (or
        exit with 0 if the server ends first)."""
        code = 1
        try:
            self.detach()
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # like the server, until it runs
            if self.warm is not None:
                try:
                    self.warm()
                except Exception:  # a cold start is still a start
                    traceback.print_exc()
            with contextlib.suppress(OSError):  # the server may have handed us a request
                sock.sendall(_SPARE_READY)  # and closed its end already
            try:
                data, fds, _, _ = socket.recv_fds(sock, _READ_SIZE, FDS_PER_SPAWN)
            except ConnectionResetError:  # the server closed us with "ready" unread: it stops
                data, fds = b"", []
            while data and not data.endswith(b"\n"):
                more = sock.recv(_READ_SIZE)
                if not more:
                    break
                data += more
            sock.close()
            if data:
                request = SpawnRequest.decode(data.rstrip(b"\n"))
                out, err = fds
                self.run_as(request, self.targets[request.target], out, err)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            _exit(code)

    def become(self, request: SpawnRequest, target: Target, out: int, err: int) -> NoReturn:
        """In a child forked for ``request``: become its program."""
        try:
            self.detach()
            self.run_as(request, target, out, err)
        except BaseException:
            traceback.print_exc()
        finally:
            _exit(1)

    def run_as(self, request: SpawnRequest, target: Target, out: int, err: int) -> NoReturn:
        """Take the request's output, directory, environment and argv; run; exit."""
        self.initial.restore()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        if request.cwd is not None:
            os.chdir(request.cwd)
        os.environ.clear()
        os.environ.update(request.env)
        _name_process(request.target)
        sys.argv = [request.target, *request.args]
        _exit(_run_target(target, list(request.args)))

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for spare in [s for s in self.spares if s.pid == pid]:
                spare.sock.close()
                self.spares.remove(spare)
                self.replenish_at = time.monotonic() + _REPLENISH_AFTER
            request = self.children.pop(pid, None)
            if request is None:
                continue
            if os.WIFSIGNALED(status):
                self.send(Exited(request, None, os.WTERMSIG(status)))
            else:
                self.send(Exited(request, os.waitstatus_to_exitcode(status), None))

    def send(self, reply: Reply) -> None:
        with contextlib.suppress(OSError):  # the LCA is gone: the next read says so
            self.control.sendall(encode_reply(reply))

    def close(self) -> None:
        signal.set_wakeup_fd(-1)
        os.close(self.wake_r)
        os.close(self.wake_w)
        for pid in self.children:  # end them here rather than leave orphans to PID 1,
            with contextlib.suppress(OSError):  # which may not reap them (a container)
                os.kill(pid, signal.SIGKILL)
        for pid in self.children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.children.clear()
        for spare in self.spares:
            spare.sock.close()  # it sees the end and exits: reap it rather than leave it
        for spare in self.spares:  # (the LCA signals us if this takes too long)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(spare.pid, 0)
        while self.fds:
            os.close(self.fds.popleft())


# -- a server forked from the command that uses it -------------------------------------


class EarlyServer:
    """A fork server forked from this process by :func:`fork_early_server`: its pid, our end
    of its control socket, and our ends of its stdout and stderr (sockets to read).

    Whoever will use it calls :meth:`take`; until then, :meth:`discard` ends it."""

    def __init__(
        self, pid: int, control: socket.socket, stdout: socket.socket, stderr: socket.socket
    ) -> None:
        self.pid = pid
        self._ends: tuple[socket.socket, socket.socket, socket.socket] | None = (
            control,
            stdout,
            stderr,
        )

    def take(self) -> tuple[socket.socket, socket.socket, socket.socket]:
        """Our ends of its control socket, stdout and stderr: the taker now reads them,
        closes them, and reaps the process; :meth:`discard` does nothing from now on.

        :raises RuntimeError: it was taken or discarded already.
        """
        if self._ends is None:
            raise RuntimeError(f"the fork server (pid {self.pid}) was taken or discarded already")
        ends, self._ends = self._ends, None
        return ends

    def discard(self) -> None:
        """Unless it was taken: close our ends, kill it (its children die with it), and
        reap it."""
        if self._ends is None:
            return
        ends, self._ends = self._ends, None
        for end in ends:
            end.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def fork_early_server(main: Callable[[socket.socket], int], *, name: str) -> EarlyServer:
    """Fork a child of this process that runs ``main`` (a server: :func:`serve` on the
    control socket it is given; it returns the exit code) and return at once.

    The child starts with every module imported here, so it is serving long before a
    new interpreter would have imported Twisted; call this as early as the command
    knows it will start programs, before any reactor is installed and while no thread
    runs.  The child's stdin is ``/dev/null``; its stdout and stderr are sockets whose
    other ends are returned, written unbuffered (as ``python -u`` would); its garbage
    collector is on, whatever this process did; it never returns into the caller's code.

    :raises OSError: a socket or the fork could not be made.
    :raises RuntimeError: a reactor is installed here.
    """
    if "twisted.internet.reactor" in sys.modules:
        raise RuntimeError("a fork server cannot be forked once a reactor is installed")
    control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    out, out_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    err, err_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()  # or the child would write what is buffered here a second time
    try:
        pid = os.fork()
    except OSError:
        for end in (control, theirs, out, out_theirs, err, err_theirs):
            end.close()
        raise
    if pid == 0:
        code = 1
        try:
            for end in (control, out, err):
                end.close()
            _take_output(out_theirs.detach(), err_theirs.detach())
            _name_process(name)
            gc.enable()
            code = main(theirs)
        except BaseException:
            traceback.print_exc()
        finally:
            _exit(code)
    for end in (theirs, out_theirs, err_theirs):
        end.close()
    return EarlyServer(pid, control, out, err)


def _take_output(stdout: int, stderr: int) -> None:
    """In a forked server: stdin from /dev/null, stdout and stderr to the given
    descriptors, and ``sys.stdout``/``sys.stderr`` unbuffered on them, as ``python -u``
    makes them (the command's own may buffer whole blocks)."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    for fd, target in ((stdout, 1), (stderr, 2)):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdout, sys.stderr = (
        io.TextIOWrapper(
            io.FileIO(fd, "w", closefd=False),
            encoding="utf-8",
            errors="backslashreplace",
            write_through=True,
        )
        for fd in (1, 2)
    )


def _exit(code: int) -> NoReturn:
    """End a child now, its output flushed, running none of the server's exit handlers."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _wake(signum: int, frame: object) -> None:
    """SIGCHLD: the wakeup descriptor has woken the loop already."""


def _name_process(name: str) -> None:
    """Linux: name the child after its program (``ps -o comm``, ``top``), not ``python``."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_name = 15
        ctypes.CDLL(None).prctl(pr_set_name, name.encode()[:15], 0, 0, 0)


def _run_target(target: Target, args: Sequence[str]) -> int:
    """Run a program's ``main`` as the interpreter would; returns its exit code."""
    try:
        target(list(args))
    except SystemExit as e:
        if e.code is None:
            return 0
        if isinstance(e.code, int):
            return e.code
        print(e.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0
