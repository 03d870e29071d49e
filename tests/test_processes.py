"""Child processes: a fake reactor and a Clock for the stop sequence, then real processes."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, AnyStr, cast

import pytest
from logwatch import LogWatcher
from reactortest import reactor_test
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessExitedAlready, ProcessTerminated
from twisted.internet.interfaces import (
    IAddress,
    IProcessProtocol,
    IProcessTransport,
    IReactorProcess,
    IReactorTime,
)
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from zope.interface import implementer

from lca_emulator.lca.processes import (
    ChildProcess,
    ProcessExit,
    ProcessLauncher,
    ProcessSpec,
    ProcessStartError,
)

PYTHON = sys.executable


# --- fakes and helpers ------------------------------------------------------------------


@implementer(IProcessTransport)
class FakeProcessTransport:
    """Records signals; raises ProcessExitedAlready once the test has ended the process."""

    def __init__(self, pid: int) -> None:
        self.pid: int | None = pid
        self.signals: list[str] = []
        self.stdin_closed = False

    def signalProcess(self, signal_id: str | int) -> None:
        if self.pid is None:
            raise ProcessExitedAlready()
        self.signals.append(str(signal_id))

    def closeStdin(self) -> None:
        self.stdin_closed = True

    # The rest of IProcessTransport, unused by the launcher.
    def closeStdout(self) -> None:
        raise NotImplementedError

    def closeStderr(self) -> None:
        raise NotImplementedError

    def closeChildFD(self, descriptor: int) -> None:
        raise NotImplementedError

    def writeToChild(self, childFD: int, data: bytes) -> None:
        raise NotImplementedError

    def loseConnection(self) -> None:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def writeSequence(self, data: Iterable[bytes]) -> None:
        raise NotImplementedError

    def getPeer(self) -> IAddress:
        raise NotImplementedError

    def getHost(self) -> IAddress:
        raise NotImplementedError


@dataclass
class SpawnedProcess:
    """One spawnProcess call, with the protocol so the test can play the child."""

    protocol: IProcessProtocol
    executable: bytes | str
    args: Sequence[bytes | str]
    env: Mapping[Any, Any] | None
    path: bytes | str | None
    child_fds: Mapping[int, int | str] | None
    transport: FakeProcessTransport

    def output(self, data: bytes, fd: int = 1) -> None:
        """The child writes ``data`` on ``fd``."""
        self.protocol.childDataReceived(fd, data)

    def end(self, code: int | None = 0, signal: int | None = None) -> None:
        """The child ends, as Twisted reports it: ProcessDone for 0, else ProcessTerminated."""
        self.transport.pid = None
        reason: Exception
        if code == 0 and signal is None:
            reason = ProcessDone(0)
        else:
            reason = ProcessTerminated(exitCode=code, signal=signal)
        self.protocol.processEnded(Failure(reason))


@implementer(IReactorProcess)
@dataclass
class FakeProcessReactor:
    """An IReactorProcess that spawns nothing and records what it was asked to spawn."""

    spawned: list[SpawnedProcess] = field(default_factory=list)
    error: OSError | None = None

    def spawnProcess(
        self,
        protocol: IProcessProtocol,
        executable: bytes | str,
        args: Sequence[bytes | str],
        env: Mapping[AnyStr, AnyStr] | None = None,
        path: bytes | str | None = None,
        uid: int | None = None,
        gid: int | None = None,
        use_pty: bool = False,
        childFDs: Mapping[int, int | str] | None = None,
    ) -> IProcessTransport:
        if self.error is not None:
            raise self.error
        transport = FakeProcessTransport(pid=4000 + len(self.spawned))
        spawned = SpawnedProcess(protocol, executable, args, env, path, childFDs, transport)
        self.spawned.append(spawned)
        protocol.makeConnection(transport)
        return transport


@pytest.fixture
def reactor() -> FakeProcessReactor:
    return FakeProcessReactor()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def launcher(reactor: FakeProcessReactor, clock: Clock) -> ProcessLauncher:
    return ProcessLauncher(reactor, clock)


def start(launcher: ProcessLauncher, name: str = "SIPServer_P") -> ChildProcess:
    return launcher.start(name, ProcessSpec(argv=(PYTHON, "-c", "pass")))


def outcome_of(deferred: Deferred[ProcessExit]) -> ProcessExit | None:
    """The result of an already-fired Deferred, or None if it has not fired."""
    results: list[ProcessExit] = []
    deferred.addCallback(results.append)
    return results[0] if results else None


# --- unit tests: fake reactor, virtual clock ---------------------------------------------


def test_start_spawns_the_spec(reactor: FakeProcessReactor, launcher: ProcessLauncher) -> None:
    """start() spawns argv with the spec's env and cwd, reads stdout/stderr, closes stdin."""
    spec = ProcessSpec(argv=(PYTHON, "-c", "pass"), env={"A": "1"}, cwd="/tmp")
    child = launcher.start("SIPServer_P", spec)
    (spawned,) = reactor.spawned
    assert spawned.executable == PYTHON
    assert spawned.args == spec.argv
    assert spawned.env == {"A": "1"}
    assert spawned.path == "/tmp"
    assert spawned.child_fds == {0: "w", 1: "r", 2: "r"}
    assert spawned.transport.stdin_closed
    assert child.pid == 4000
    assert child.running


def test_env_none_inherits(reactor: FakeProcessReactor, launcher: ProcessLauncher) -> None:
    """env=None is passed through, which Twisted reads as 'inherit os.environ'."""
    start(launcher)
    assert reactor.spawned[0].env is None


def test_missing_executable(reactor: FakeProcessReactor, launcher: ProcessLauncher) -> None:
    """A program that is not on PATH fails with ProcessStartError naming the application."""
    spec = ProcessSpec(argv=("no-such-program-for-lca-tests",), env={"PATH": "/nonexistent"})
    with pytest.raises(ProcessStartError, match="cannot start SIPServer_P: no-such-program"):
        launcher.start("SIPServer_P", spec)
    assert reactor.spawned == []


def test_spawn_error(reactor: FakeProcessReactor, launcher: ProcessLauncher) -> None:
    """An OSError from spawnProcess becomes ProcessStartError."""
    reactor.error = PermissionError(13, "Permission denied")
    with pytest.raises(ProcessStartError) as raised:
        start(launcher)
    assert raised.value.name == "SIPServer_P"
    assert "Permission denied" in raised.value.reason


def test_exit_is_reported_once(reactor: FakeProcessReactor, launcher: ProcessLauncher) -> None:
    """exited fires with the exit code; the child is then no longer running."""
    child = start(launcher)
    reactor.spawned[0].end(code=3)
    assert outcome_of(child.exited) == ProcessExit(code=3, signal=None)
    assert not child.running


def test_graceful_stop(
    reactor: FakeProcessReactor, clock: Clock, launcher: ProcessLauncher
) -> None:
    """When the application exits after being asked, no signal is sent."""
    child = start(launcher)
    asked: list[str] = []

    def ask() -> bool:
        asked.append("EXITING")
        return True

    stopped = child.stop(5.0, ask)
    assert asked == ["EXITING"]
    clock.advance(4.9)
    reactor.spawned[0].end(code=0)
    assert outcome_of(stopped) == ProcessExit(code=0, signal=None)
    assert reactor.spawned[0].transport.signals == []
    assert clock.getDelayedCalls() == []


def test_cannot_ask(reactor: FakeProcessReactor, clock: Clock, launcher: ProcessLauncher) -> None:
    """If the application cannot be asked, SIGTERM goes at once and SIGKILL after grace."""
    child = start(launcher)
    child.stop(5.0, lambda: False)
    signals = reactor.spawned[0].transport.signals
    assert signals == ["TERM"]
    clock.advance(5.0)
    assert signals == ["TERM", "KILL"]


def test_ask_raising_counts_as_cannot_ask(
    reactor: FakeProcessReactor, launcher: ProcessLauncher, logs: LogWatcher
) -> None:
    """An exception from ask() is logged and the stop goes on with SIGTERM."""

    def ask() -> bool:
        raise ConnectionError("gone")

    start(launcher).stop(5.0, ask)
    assert reactor.spawned[0].transport.signals == ["TERM"]
    assert any("log_failure" in event for event in logs.events)


def test_escalation(reactor: FakeProcessReactor, clock: Clock, launcher: ProcessLauncher) -> None:
    """An application that ignores the request gets SIGTERM at grace, SIGKILL at 2 * grace."""
    child = start(launcher)
    stopped = child.stop(2.0, lambda: True)
    signals = reactor.spawned[0].transport.signals
    clock.advance(1.9)
    assert signals == []
    clock.advance(0.1)
    assert signals == ["TERM"]
    clock.advance(1.9)
    assert signals == ["TERM"]
    clock.advance(0.1)
    assert signals == ["TERM", "KILL"]
    reactor.spawned[0].end(code=None, signal=9)
    assert outcome_of(stopped) == ProcessExit(code=None, signal=9)


def test_timers_cancelled_at_exit(
    reactor: FakeProcessReactor, clock: Clock, launcher: ProcessLauncher
) -> None:
    """Exiting after SIGTERM cancels the pending SIGKILL."""
    child = start(launcher)
    child.stop(2.0, lambda: False)
    assert len(clock.getDelayedCalls()) == 1
    reactor.spawned[0].end(code=None, signal=15)
    assert clock.getDelayedCalls() == []
    clock.advance(10.0)
    assert reactor.spawned[0].transport.signals == ["TERM"]


def test_stop_twice(reactor: FakeProcessReactor, clock: Clock, launcher: ProcessLauncher) -> None:
    """A second stop() neither asks again nor restarts the timers; both get the outcome."""
    child = start(launcher)
    asks: list[str] = []

    def ask() -> bool:
        asks.append("EXITING")
        return True

    first = child.stop(2.0, ask)
    clock.advance(1.0)
    second = child.stop(2.0, ask)
    clock.advance(1.0)
    assert asks == ["EXITING"]
    assert reactor.spawned[0].transport.signals == ["TERM"]
    reactor.spawned[0].end(code=0)
    assert outcome_of(first) == outcome_of(second) == ProcessExit(code=0, signal=None)


def test_stop_after_exit(
    reactor: FakeProcessReactor, clock: Clock, launcher: ProcessLauncher
) -> None:
    """Stopping an ended process does not ask, signal or schedule anything."""
    child = start(launcher)
    reactor.spawned[0].end(code=1)
    stopped = child.stop(2.0, lambda: pytest.fail("must not ask"))
    assert outcome_of(stopped) == ProcessExit(code=1, signal=None)
    assert clock.getDelayedCalls() == []


def test_kill(reactor: FakeProcessReactor, launcher: ProcessLauncher) -> None:
    """kill() sends SIGKILL at once."""
    child = start(launcher)
    killed = child.kill()
    assert reactor.spawned[0].transport.signals == ["KILL"]
    reactor.spawned[0].end(code=None, signal=9)
    assert outcome_of(killed) == ProcessExit(code=None, signal=9)


def test_hang_stops_the_process(reactor: FakeProcessReactor, launcher: ProcessLauncher) -> None:
    """hang() sends SIGSTOP: the process stays, silent, until it is killed."""
    child = start(launcher)
    child.hang()
    assert reactor.spawned[0].transport.signals == ["STOP"]
    assert child.running


def test_signal_after_exit_is_ignored(
    reactor: FakeProcessReactor, launcher: ProcessLauncher
) -> None:
    """Signalling a process that has gone, or is just going, raises nothing."""
    child = start(launcher)
    transport = reactor.spawned[0].transport
    transport.pid = None  # reaped, processEnded not delivered yet
    child.signal("TERM")
    reactor.spawned[0].end(code=0)
    child.signal("KILL")
    assert transport.signals == []


def test_output_lines_logged(
    reactor: FakeProcessReactor, launcher: ProcessLauncher, logs: LogWatcher
) -> None:
    """Output is logged line by line with the application name; a partial line at exit too."""
    start(launcher, "SIPServer_P")
    spawned = reactor.spawned[0]
    spawned.output(b"first\r\nsec")
    spawned.output(b"ond\n", fd=1)
    spawned.output(b"oops\n", fd=2)
    spawned.output(b"no newline")
    assert logs.lines("SIPServer_P") == ["first", "second", "oops"]
    spawned.end(code=0)
    assert logs.lines("SIPServer_P") == ["first", "second", "oops", "no newline"]
    event = next(e for e in logs.events if e.get("line") == "oops")
    assert event["log_namespace"] == "lca_emulator.lca.processes"
    assert event["log_format"] == "{application} | {line}"
    assert event["stream"] == "stderr"


def test_undecodable_output(
    reactor: FakeProcessReactor, launcher: ProcessLauncher, logs: LogWatcher
) -> None:
    """Bytes that are not UTF-8 are replaced rather than breaking the log."""
    start(launcher, "X")
    reactor.spawned[0].output(b"caf\xe9\n")
    assert logs.lines("X") == ["caf\ufffd"]


@pytest.mark.parametrize(
    ("outcome", "text"),
    [
        (ProcessExit(code=0, signal=None), "exited with code 0"),
        (ProcessExit(code=3, signal=None), "exited with code 3"),
        (ProcessExit(code=None, signal=9), "killed by signal 9 (SIGKILL)"),
        (ProcessExit(code=None, signal=15), "killed by signal 15 (SIGTERM)"),
        (ProcessExit(code=None, signal=None), "ended with an unknown status"),
    ],
)
def test_describe(outcome: ProcessExit, text: str) -> None:
    """describe() says how the process ended, naming the signal."""
    assert outcome.describe() == text


# --- real processes on the real reactor (pytest-twisted) ---------------------------------

# Upper bound for any wait on a real child, so a broken test fails instead of hanging.
TIMEOUT = 20.0


@dataclass
class RealReactor:
    launcher: ProcessLauncher
    clock: IReactorTime
    children: list[ChildProcess]

    def start(self, name: str, spec: ProcessSpec) -> ChildProcess:
        child = self.launcher.start(name, spec)
        self.children.append(child)
        return child


@pytest.fixture
def real() -> Iterator[RealReactor]:
    from twisted.internet import reactor as global_reactor

    clock = cast(IReactorTime, global_reactor)
    launcher = ProcessLauncher(cast(IReactorProcess, global_reactor), clock)
    children: list[ChildProcess] = []
    yield RealReactor(launcher, clock, children)
    for child in children:
        child.kill()


def python(code: str) -> ProcessSpec:
    return ProcessSpec(argv=(PYTHON, "-c", code))


@reactor_test
async def test_real_exit_code(real: RealReactor) -> None:
    """A real child's exit code is reported."""
    child = real.start("exit3", python("raise SystemExit(3)"))
    assert child.pid is not None
    assert child.pid > 0
    outcome = await child.exited.addTimeout(TIMEOUT, real.clock)
    assert outcome == ProcessExit(code=3, signal=None)


@reactor_test
async def test_real_output(real: RealReactor, logs: LogWatcher) -> None:
    """A real child's stdout and stderr lines, and its last partial line, are logged."""
    code = "import sys; print('hello'); print('oops', file=sys.stderr); print('tail', end='')"
    child = real.start("talker", python(code))
    outcome = await child.exited.addTimeout(TIMEOUT, real.clock)
    assert outcome == ProcessExit(code=0, signal=None)
    assert sorted(logs.lines("talker")) == ["hello", "oops", "tail"]


@reactor_test
async def test_real_kill_after_ignored_term(real: RealReactor, logs: LogWatcher) -> None:
    """A child that ignores SIGTERM is killed with SIGKILL once the grace has run out."""
    code = (
        "import signal\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "signal.pause()\n"
    )
    child = real.start("stubborn", python(code))
    await logs.wait_for_line("stubborn", "ready").addTimeout(TIMEOUT, real.clock)
    outcome = await child.stop(0.2, lambda: False).addTimeout(TIMEOUT, real.clock)
    assert outcome == ProcessExit(code=None, signal=9)
    assert outcome.describe() == "killed by signal 9 (SIGKILL)"


def test_real_missing_executable(real: RealReactor) -> None:
    """A missing executable raises ProcessStartError before anything is spawned."""
    spec = ProcessSpec(argv=("/nonexistent/sipserver",), cwd="/")
    with pytest.raises(ProcessStartError, match="no such executable"):
        real.start("SIPServer_P", spec)
