"""The fork server: its wire format, then real fork servers on the real reactor (started,
exit codes, output, signals, graceful stop of a real stub, and what happens when the
fork server dies).

Test programs are in tests/forktargets.py.  Every wait is bounded; nothing sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from logwatch import LogWatcher
from reactortest import reactor_test
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import formatEvent

from lca_common.clock import ScaledClock
from lca_common.forkserver import (
    EarlyServer,
    Exited,
    Failed,
    Ready,
    Reply,
    SpawnRequest,
    Started,
    decode_reply,
    encode_reply,
    fork_early_server,
    serve,
)
from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_emulator.harness.launchers import (
    StubProcessLauncher,
    application_spec,
    stub_fork_server,
)
from lca_emulator.harness.site import RunMode, Site
from lca_emulator.layer import ManagementLayer
from lca_emulator.lca.forkserver import ForkServer, ForkServerError, ForkSpec
from lca_emulator.lca.processes import ChildProcess, ProcessExit, ProcessLauncher, ProcessSpec
from lca_emulator.registry import RecordChange
from sipserver_stub.fixture import StubFixture

WAIT_LIMIT = 20.0
"""Wall-clock bound on any wait, so a broken test fails instead of hanging."""

TESTS = Path(__file__).resolve().parent
SERVER = ProcessSpec(
    argv=(
        sys.executable,
        "-c",
        f"import sys; sys.path.insert(0, {str(TESTS)!r}); import forktargets; forktargets.main()",
    ),
    env=dict(os.environ, PYTHONUNBUFFERED="1"),
)
"""A fork server serving tests/forktargets.py."""

EXIT_5 = ProcessSpec(argv=(sys.executable, "-c", "raise SystemExit(5)"))
"""The plain start every test spec falls back to: a new process exiting with 5."""


# -- the wire format -------------------------------------------------------------------


def test_spawn_request_round_trip() -> None:
    """A spawn request is one JSON line, and reads back the same."""
    request = SpawnRequest(7, "sipserver-stub", ("a", "--b"), {"X": "1"}, "/tmp")
    line = request.encode()
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert json.loads(line) == {
        "spawn": 7,
        "target": "sipserver-stub",
        "args": ["a", "--b"],
        "env": {"X": "1"},
        "cwd": "/tmp",
    }
    assert SpawnRequest.decode(line.rstrip(b"\n")) == request


@pytest.mark.parametrize(
    "reply", [Ready(10), Started(1, 4711), Failed(2, "fork: no memory"), Exited(3, 0, None)]
)
def test_reply_round_trip(reply: Reply) -> None:
    """Every reply is one JSON line and reads back the same."""
    line = encode_reply(reply)
    assert line.count(b"\n") == 1
    assert decode_reply(line) == reply


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b"[1]",
        b'{"started": "1", "pid": 2}',
        b'{"exited": 1, "code": "0", "signal": null}',
        b'{"hello": 1}',
        b'{"spawn": true, "target": "x", "args": [], "env": {}}',
    ],
)
def test_bad_lines_are_errors(line: bytes) -> None:
    """A line that is not a reply (or not a request) is a ValueError."""
    with pytest.raises(ValueError):  # noqa: PT011  (the message varies with the line)
        decode_reply(line)
    with pytest.raises(ValueError):  # noqa: PT011
        SpawnRequest.decode(line)


def test_never_forks_where_a_reactor_is_installed(capsys: pytest.CaptureFixture[str]) -> None:
    """serve() refuses (exit code 2) in a process with a reactor, such as this one."""
    from twisted.internet import reactor  # noqa: F401  (pytest-twisted's, installed)

    ours, theirs = socket.socketpair()
    with ours, theirs:
        assert serve(theirs, {}) == 2
        ours.setblocking(False)
        with pytest.raises(BlockingIOError):
            ours.recv(100)  # it said nothing, not even ready
    assert "refusing to fork" in capsys.readouterr().err


def test_a_malformed_request_takes_its_descriptors_with_it(tmp_path: Path) -> None:
    """A request the server cannot read is dropped with the two descriptors that came
    with it: the next request's child writes to its own stdout, not the dropped one's."""
    import subprocess

    ours, theirs = socket.socketpair()
    server = subprocess.Popen(
        [*SERVER.argv, "--control-fd", str(theirs.fileno())],
        pass_fds=[theirs.fileno()],
        env=SERVER.env,
        stderr=subprocess.PIPE,
    )
    theirs.close()
    replies = ours.makefile("rb")
    try:
        ours.settimeout(WAIT_LIMIT)
        assert isinstance(decode_reply(replies.readline().rstrip(b"\n")), Ready)
        outputs = [tmp_path / name for name in ("bad.out", "bad.err", "good.out", "good.err")]
        files = [path.open("wb") for path in outputs]
        bad = b'{"spawn": 1, "target": "say", "args": "not a list"}\n'
        socket.send_fds(ours, [bad], [files[0].fileno(), files[1].fileno()])
        good = SpawnRequest(2, "say", ("hello",), env=dict(os.environ))
        socket.send_fds(ours, [good.encode()], [files[2].fileno(), files[3].fileno()])
        for f in files:
            f.close()
        started = decode_reply(replies.readline().rstrip(b"\n"))
        assert isinstance(started, Started)
        assert started.id == 2
        exited = decode_reply(replies.readline().rstrip(b"\n"))
        assert exited == Exited(2, 0, None)
        assert outputs[2].read_text() == "hello\n"
        assert outputs[0].read_text() == ""
    finally:
        replies.close()
        ours.close()  # the end of the control socket: the server exits
        _, err = server.communicate(timeout=WAIT_LIMIT)
    assert b"malformed spawn request" in err


def test_fork_early_server_forks_a_server_from_the_calling_process() -> None:
    """``fork_early_server`` forks a server that serves at once; output written before the fork
    is not written twice, the server's own output is unbuffered on its sockets, its
    children run with the garbage collector on; it can be taken once; closing its
    control socket ends it with 0; a discarded one is killed and reaped."""
    code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import forktargets; "
    result = subprocess.run(
        [sys.executable, "-c", code + "forktargets.early_check()"],
        capture_output=True,
        text=True,
        timeout=WAIT_LIMIT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:-1] == ["before"]
    report = json.loads(lines[-1])
    assert report.pop("pid") > 0
    assert report == {
        "taken twice": "refused",
        "ready": True,
        "say": ["hello\n", 0],
        "gc": ["gc=True\n", 0],
        "server exit": 0,
        "server output": "server stdout\n",
        "discarded": "reaped",
    }


def test_fork_early_server_refuses_where_a_reactor_is_installed() -> None:
    """A process with a reactor (this one) must not be forked into a fork server."""
    import twisted.internet.reactor  # noqa: F401  (installed by the test run already)

    with pytest.raises(RuntimeError, match="reactor is installed"):
        fork_early_server(lambda control: 0, name="never")


# -- real fork servers ---------------------------------------------------------------------


@dataclass
class Forks:
    """A fork server under test and what it started."""

    reactor: Any
    server: ForkServer
    processes: ProcessLauncher
    children: list[ChildProcess] = field(default_factory=list)

    @property
    def clock(self) -> IReactorTime:
        return cast(IReactorTime, self.reactor)

    def spawn(self, name: str, target: str, *args: str, **env: str) -> ChildProcess:
        spec = ForkSpec(target, args, EXIT_5, env=dict(os.environ, **env))
        child = self.server.spawn(name, spec, self.processes)
        self.children.append(child)
        return child

    async def ended(self, child: ChildProcess) -> ProcessExit:
        return await child.exited.addTimeout(WAIT_LIMIT, self.clock)

    async def until(self, holds: Any) -> None:
        """Poll ``holds()`` every 10 ms (a bounded wait on another process's state)."""
        for _ in range(int(WAIT_LIMIT / 0.01)):
            if holds():
                return
            await deferLater(self.reactor, 0.01)
        raise AssertionError("not reached in time")


def handed_over(command: ProcessSpec) -> EarlyServer:
    """A fork server running ``command`` handed over as ``fork_early_server`` hands one over:
    a child of this process, with its control socket, stdout and stderr as sockets.
    (It is started by posix_spawn: this process has a reactor, so
    ``fork_early_server`` refuses to fork it; tests/forktargets.py checks that itself.)"""
    control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    out, out_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    err, err_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    argv = (*command.argv, "--control-fd", "3")
    dup2 = os.POSIX_SPAWN_DUP2
    pid = os.posix_spawn(
        argv[0],
        argv,
        dict(command.env if command.env is not None else os.environ),
        file_actions=[
            (dup2, theirs.fileno(), 3),
            (dup2, out_theirs.fileno(), 1),
            (dup2, err_theirs.fileno(), 2),
        ],
    )
    for end in (theirs, out_theirs, err_theirs):
        end.close()
    return EarlyServer(pid, control, out, err)


STARTS = pytest.mark.parametrize("early", [False, True], ids=["spawned", "handed-over"])
"""Run a test with a fork server the LCA spawns, and with one handed over to it."""


@asynccontextmanager
async def fork_server(
    command: ProcessSpec = SERVER, *, ready: bool = True, early: bool = False
) -> AsyncIterator[Forks]:
    """A started fork server (spawned, or handed over if ``early``); whatever it started
    is killed at the end, then it stops."""
    from twisted.internet import reactor

    server = ForkServer(reactor, command, early=handed_over(command) if early else None)
    forks = Forks(reactor, server, ProcessLauncher(reactor, reactor))
    started = server.start()
    started.addErrback(lambda _: None) if not ready else None
    if ready:
        await started.addTimeout(WAIT_LIMIT, reactor)
    try:
        yield forks
    finally:
        for child in forks.children:
            await child.kill().addTimeout(WAIT_LIMIT, reactor)
        await server.stop().addTimeout(WAIT_LIMIT, reactor)


def state_of(pid: int) -> str:
    """The process state letter in /proc (``S`` sleeping, ``T`` stopped, ...); "" once
    the process is gone (it may end while a test polls)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


@reactor_test
@STARTS
async def test_forked_child_reports_its_exit_code(logs: LogWatcher, early: bool) -> None:
    """A forked child runs the target and its exit code comes back; its pid is its own."""
    async with fork_server(early=early) as forks:
        child = forks.spawn("exiter", "exit", "3")
        assert await forks.ended(child) == ProcessExit(code=3, signal=None)
        assert forks.server.process is not None
        assert child.pid not in (None, os.getpid(), forks.server.process.pid)
        assert any("forked by the fork server" in text for text in logs.texts())


@reactor_test
async def test_exit_codes_as_the_interpreter_gives_them(logs: LogWatcher) -> None:
    """A return is 0; SystemExit("message") is 1 with the message; an exception is 1 with
    its traceback on stderr."""
    async with fork_server() as forks:
        ok, complain, fail = (forks.spawn(n, n) for n in ("show", "complain", "fail"))
        assert await forks.ended(ok) == ProcessExit(code=0, signal=None)
        assert await forks.ended(complain) == ProcessExit(code=1, signal=None)
        assert await forks.ended(fail) == ProcessExit(code=1, signal=None)
    assert ("stderr", "bad input") in logs.output("complain")
    assert ("stderr", "RuntimeError: boom") in logs.output("fail")


@reactor_test
@STARTS
async def test_output_is_logged_line_by_line(logs: LogWatcher, early: bool) -> None:
    """stdout and stderr lines are logged under the application's name (each stream in
    order; two streams have no order between them), all before its end."""
    async with fork_server(early=early) as forks:
        child = forks.spawn("talker", "say", "hello", "err:oops", "bye")
        await forks.ended(child)
        lines = logs.output("talker")
        assert [line for stream, line in lines if stream == "stdout"] == ["hello", "bye"]
        assert [line for stream, line in lines if stream == "stderr"] == ["err:oops"]


@reactor_test
async def test_arguments_environment_and_directory_reach_the_child(
    logs: LogWatcher, tmp_path: Path
) -> None:
    """The child runs with the request's environment (only), directory and argv."""
    async with fork_server() as forks:
        spec = ForkSpec("show", ("x", "y"), EXIT_5, env={"PROBE": "42"}, cwd=str(tmp_path))
        child = forks.server.spawn("shower", spec, forks.processes)
        assert await forks.ended(child) == ProcessExit(code=0, signal=None)
    assert logs.lines("shower") == [
        "PROBE=42",
        f"cwd={tmp_path}",
        "argv=['show', 'x', 'y']",
    ]


@reactor_test
async def test_kill(logs: LogWatcher) -> None:
    """kill() ends a forked child with SIGKILL."""
    async with fork_server() as forks:
        child = forks.spawn("waiter", "wait")
        await logs.wait_for_line("waiter", "ready").addTimeout(WAIT_LIMIT, forks.clock)
        assert await child.kill().addTimeout(WAIT_LIMIT, forks.clock) == ProcessExit(None, 9)


@reactor_test
async def test_hang_then_kill(logs: LogWatcher) -> None:
    """hang() stops a forked child (SIGSTOP: it stays, stopped); kill() still ends it."""
    async with fork_server() as forks:
        child = forks.spawn("hanger", "wait")
        await logs.wait_for_line("hanger", "ready").addTimeout(WAIT_LIMIT, forks.clock)
        await forks.until(lambda: child.pid is not None)  # its output may come before
        assert child.pid is not None
        pid = child.pid
        child.hang()
        await forks.until(lambda: state_of(pid) == "T")
        assert child.running
        assert await child.kill().addTimeout(WAIT_LIMIT, forks.clock) == ProcessExit(None, 9)


@pytest.mark.parametrize(
    ("args", "outcome"),
    [
        ((), ProcessExit(None, signal.SIGTERM)),
        (("ignore-term",), ProcessExit(None, signal.SIGKILL)),
    ],
    ids=["term", "term-ignored-then-kill"],
)
@reactor_test
async def test_stop_signals_by_pid(
    logs: LogWatcher, args: tuple[str, ...], outcome: ProcessExit
) -> None:
    """stop() that cannot ask sends SIGTERM, and SIGKILL after the grace if that is ignored."""
    async with fork_server() as forks:
        child = forks.spawn("stubborn", "wait", *args)
        await logs.wait_for_line("stubborn", "ready").addTimeout(WAIT_LIMIT, forks.clock)
        stopped = child.stop(0.2, lambda: False)
        assert await stopped.addTimeout(WAIT_LIMIT, forks.clock) == outcome


@reactor_test
async def test_signals_before_the_answer_are_sent_once_it_runs() -> None:
    """A kill asked before the fork server has answered is carried out once it has."""
    async with fork_server() as forks:
        child = forks.spawn("early", "wait")
        assert child.pid is None
        killed = child.kill()
        assert await killed.addTimeout(WAIT_LIMIT, forks.clock) == ProcessExit(None, 9)
        assert child.pid is not None


def children_of(parent: int) -> list[int]:
    """The live child processes of ``parent`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent and fields[0] != "Z":
                found.append(int(entry.name))
    return found


@reactor_test
async def test_spares_wait_ahead_and_are_replaced() -> None:
    """The server keeps two spares forked ahead; a start takes one (its pid is the spare's),
    and it is replaced once the starts stop; after its spares died, a start still runs."""
    async with fork_server() as forks:
        assert forks.server.process is not None
        server = forks.server.process.pid
        assert server is not None
        await forks.until(lambda: len(children_of(server)) == 2)
        spares = set(children_of(server))
        child = forks.spawn("first", "wait")
        await forks.until(lambda: child.pid is not None)
        assert child.pid in spares
        await forks.until(lambda: len(set(children_of(server)) - {child.pid}) == 2)
        await child.kill().addTimeout(WAIT_LIMIT, forks.clock)
        killed = children_of(server)
        for spare in killed:
            os.kill(spare, signal.SIGKILL)
        await forks.until(lambda: not [pid for pid in killed if Path(f"/proc/{pid}").exists()])
        forked = forks.spawn("forked", "exit", "3")
        assert await forks.ended(forked) == ProcessExit(code=3, signal=None)


@reactor_test
@STARTS
async def test_stop_ends_the_fork_server(early: bool) -> None:
    """stop() closes the control socket: the fork server kills and reaps the children
    still running (no orphan is left to PID 1) and exits with code 0."""
    async with fork_server(early=early) as forks:
        process = forks.server.process
        assert process is not None
        child = forks.spawn("left", "wait")
        await forks.until(lambda: child.pid is not None)
        pid = child.pid
        await forks.server.stop().addTimeout(WAIT_LIMIT, forks.clock)
        assert await process.exited == ProcessExit(code=0, signal=None)
        assert not forks.server.serving
        assert await forks.ended(child) == ProcessExit(code=None, signal=None)
        assert not Path(f"/proc/{pid}").exists()  # reaped, not even a zombie


@reactor_test
async def test_stop_before_start_fails_the_waiters() -> None:
    """Waiting for a fork server that is stopped before it started ends in an error,
    not in a wait for ever."""
    from twisted.internet import reactor

    server = ForkServer(reactor, SERVER)
    waiting = server.ready()
    await server.stop()
    with pytest.raises(ForkServerError, match="stopped before it started"):
        await waiting


@reactor_test
async def test_stop_before_start_discards_a_server_handed_over() -> None:
    """A fork server handed over but never started is killed and reaped by stop()."""
    from twisted.internet import reactor

    early = handed_over(SERVER)
    server = ForkServer(reactor, SERVER, early=early)
    await server.stop()
    with pytest.raises(ChildProcessError):
        os.waitpid(early.pid, os.WNOHANG)
    with pytest.raises(RuntimeError, match="taken or discarded already"):
        early.take()


@reactor_test
async def test_spares_forked_since_end_quietly_with_the_server(logs: LogWatcher) -> None:
    """Spares forked after a start (whose "ready" the server never reads) exit without a
    traceback when the server stops."""
    async with fork_server() as forks:
        assert forks.server.process is not None
        server = forks.server.process.pid
        assert server is not None
        child = forks.spawn("first", "exit", "0")
        assert await forks.ended(child) == ProcessExit(code=0, signal=None)
        # replaced; each has said "ready" and sleeps waiting for a request
        await forks.until(lambda: [state_of(pid) for pid in children_of(server)] == ["S", "S"])
        process = forks.server.process
        await forks.server.stop().addTimeout(WAIT_LIMIT, forks.clock)
        assert await process.exited == ProcessExit(code=0, signal=None)
    assert not [text for text in logs.texts() if "Traceback" in text or "Error" in text]


@reactor_test
async def test_dead_fork_server_falls_back_to_new_processes(logs: LogWatcher) -> None:
    """Once the fork server is gone (SIGKILL), starts are spawned as new processes, logged."""
    async with fork_server() as forks:
        process = forks.server.process
        assert process is not None
        process.kill()
        await process.exited.addTimeout(WAIT_LIMIT, forks.clock)
        assert not forks.server.serving
        child = forks.spawn("late", "exit", "3")
        assert await forks.ended(child) == ProcessExit(code=5, signal=None)  # the fallback's
    texts = logs.texts()
    assert any("gone" in text for text in texts)
    assert any(
        "late | the fork server is not running: starting it as a new process" in t for t in texts
    )


@reactor_test
async def test_starts_asked_of_a_server_that_dies_first_are_spawned(logs: LogWatcher) -> None:
    """A fork server that exits before serving: its start fails, and the starts asked of it
    meanwhile run as new processes."""
    broken = ProcessSpec(argv=(sys.executable, "-c", "raise SystemExit(1)"))
    async with fork_server(broken, ready=False) as forks:
        child = forks.spawn("pending", "exit", "3")
        assert await forks.ended(child) == ProcessExit(code=5, signal=None)
        with pytest.raises(ForkServerError):
            await forks.server.ready()
    assert any("pending | starting it as a new process" in text for text in logs.texts())


@reactor_test
@pytest.mark.parametrize("hung", [False, True], ids=["running", "hung"])
@STARTS
async def test_children_end_with_their_fork_server(
    logs: LogWatcher, hung: bool, early: bool
) -> None:
    """Killing the fork server ends its children (PDEATHSIG: SIGKILL, which ends a
    stopped, hung child too), and their ends are reported."""
    async with fork_server(early=early) as forks:
        child = forks.spawn("orphan", "wait")
        await logs.wait_for_line("orphan", "ready").addTimeout(WAIT_LIMIT, forks.clock)
        await forks.until(lambda: child.pid is not None)  # its output may come before
        if hung:
            child.hang()
            await forks.until(lambda: child.pid is not None and state_of(child.pid) == "T")
        assert forks.server.process is not None
        forks.server.process.kill()
        assert await forks.ended(child) == ProcessExit(code=None, signal=None)
        assert child.pid is not None
        pid = child.pid
        await forks.until(lambda: not Path(f"/proc/{pid}").exists() or state_of(pid) == "Z")


@reactor_test
async def test_a_start_unanswered_when_the_server_dies_ends_with_it(logs: LogWatcher) -> None:
    """A start asked of a server that served, which dies before answering, may have been
    forked: it ends with the server (status unknown) and is not started a second time."""
    async with fork_server() as forks:
        assert forks.server.process is not None
        child = forks.spawn("unanswered", "wait")
        forks.server.process.kill()
        assert await forks.ended(child) == ProcessExit(code=None, signal=None)
    assert not any("unanswered | starting it as a new process" in t for t in logs.texts())


@reactor_test
async def test_forked_stub_registers_and_stops_gracefully(tmp_path: Path) -> None:
    """A stub forked by the stub fork server registers with its own pid, reports RUNNING,
    and exits with code 0 when the LCA asks it to (EXITING), without signals."""
    from twisted.internet import reactor

    fixture = StubFixture("SIPS_F", mode=ExecutionMode.PRIMARY, sip_port=0)
    processes = ProcessLauncher(reactor, reactor)
    forks = stub_fork_server(reactor)
    await forks.start().addTimeout(WAIT_LIMIT, reactor)
    launcher = StubProcessLauncher(processes, tmp_path, wall=reactor, forks=forks, time_scale=0.1)
    layer = ManagementLayer(reactor, applications=[application_spec(fixture)], launcher=launcher)
    server = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
    await layer.listen(server, TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"))
    running: Deferred[None] = Deferred()

    def changed(change: RecordChange) -> None:
        if change.after.status is ApplicationStatus.RUNNING and not running.called:
            running.callback(None)

    layer.registry.changes.subscribe(changed)
    try:
        layer.control.start("SIPS_F")
        await running.addTimeout(WAIT_LIMIT, reactor)
        record = layer.registry.get("SIPS_F")
        assert record is not None
        assert record.pid is not None
        assert record.pid != os.getpid()
        outcome = await layer.control.stop("SIPS_F").addTimeout(WAIT_LIMIT, reactor)
        assert outcome == ProcessExit(code=0, signal=None)
        # Its pid came after the start was journaled; the end names it.
        details = {e.event.value: e.detail for e in layer.journal.entries("SIPS_F")}
        assert details["started"] == "pid=-"
        assert details["exited"] == f"exited with code 0 (pid {record.pid})"
    finally:
        await layer.shutdown().addTimeout(WAIT_LIMIT, reactor)
        await forks.stop().addTimeout(WAIT_LIMIT, reactor)


@reactor_test
async def test_a_site_starts_its_clock_once_its_own_fork_server_serves(logs: LogWatcher) -> None:
    """A stub-process site given no fork server starts one as it opens; its scenario time
    starts after that server serves, so the start-up of the server is no scenario time."""
    from twisted.internet import reactor

    site = Site(reactor, mode=RunMode.PROCESSES, time_scale=0.1)
    await site.open()
    try:
        [serving] = [e for e in logs.events if "serving (pid" in formatEvent(e)]
        assert isinstance(site.clock, ScaledClock)
        assert site.clock.origin >= serving["log_time"]
    finally:
        await site.close()
