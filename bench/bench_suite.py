"""The measurements behind ``bench/bench_all.py``. Not tests: they measure and return rows.

Every figure is measured beside its reference in the same run: the two (or three)
are timed alternately, round after round, with ``time.perf_counter``, and each
figure is the median of its rounds, so drift of a busy machine hits both sides.
Each measurement returns :class:`Row` objects; ``bench_all.py`` prints them as one
table.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import bench_codec
import bench_forkserver
import bench_stub_start
from twisted.internet.defer import Deferred, ensureDeferred, gatherResults, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineOnlyReceiver

from lca_common.protocol.codec import decode, encode
from lca_common.protocol.messages import (
    APPLICATION_TO_LCA,
    ApplicationStatus,
    EventApplicationInfo,
    ExecutionMode,
    Message,
    RequestSubscribe,
    RequestUpdateStatus,
)
from lca_emulator.cli.run import load_all
from lca_emulator.harness.model import Scenario
from lca_emulator.harness.network import Transport
from lca_emulator.harness.runner import run_scenario
from lca_emulator.journal import JournalEvent
from lca_emulator.layer import ManagementLayer
from lca_emulator.registry import RecordChange
from lca_emulator.testing import ManagementClient, ScriptedApplication

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
PRIMARY_STUB = FIXTURES / "stubs" / "primary.yaml"
TIMEOUT_3600 = FIXTURES / "decision-table" / "scenario_timeout_3600_hang.yaml"
BARE_START = "import twisted.internet.reactor"
"""What a bare start runs: ``python -c`` this, then exit."""

WAIT_LIMIT = 60.0
"""Wall-clock seconds any one awaited step may take before the benchmark gives up."""


class BenchError(Exception):
    """A measurement could not be taken (a scenario failed, a command exited non-zero)."""


# -- rows and targets --------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A goal from the issue, on the figure's value or on its ratio to the reference."""

    on: Literal["value", "ratio"]
    op: Literal["<=", "<", ">="]
    bound: float
    unit: str = ""

    def met(self, value: float, ratio: float) -> bool:
        x = value if self.on == "value" else ratio
        if self.op == "<=":
            return x <= self.bound
        if self.op == "<":
            return x < self.bound
        return x >= self.bound

    def __str__(self) -> str:
        if self.on == "ratio":
            return f"{self.op} {self.bound:g}x"
        return f"{self.op} {self.bound:g} {self.unit}".rstrip()


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure, its reference, their ratio, the target.

    ``ratio`` is value / reference, or reference / value when ``speedup`` (a wall time
    compared with a slower reference: how many times faster).
    """

    figure: str
    value: float
    unit: str
    reference: str
    reference_value: float
    target: Target | None = None
    speedup: bool = False
    note: str = ""

    @property
    def ratio(self) -> float:
        if self.speedup:
            return self.reference_value / self.value if self.value else float("inf")
        return self.value / self.reference_value if self.reference_value else float("inf")

    @property
    def met(self) -> str:
        if self.target is None:
            return "-"
        return "met" if self.target.met(self.value, self.ratio) else "not met"


def show(value: float, unit: str) -> str:
    """A value with its unit, three significant digits for times."""
    if unit == "us":
        return f"{value:.2f} us"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "ms":
        size = abs(value)
        if size >= 100:
            return f"{value:.0f} ms"
        if size >= 10:
            return f"{value:.1f} ms"
        return f"{value:.2f} ms" if size >= 1 else f"{value:.3f} ms"
    return f"{value:g} {unit}".rstrip()


# -- alternation -------------------------------------------------------------------------


Measure = Callable[[], Awaitable[float]]
"""One timed run; returns what it measured (seconds, or a rate)."""


async def alternate(measures: dict[str, Measure], rounds: int) -> dict[str, list[float]]:
    """Run each measure once per round, rotating their order each round, so machine
    drift hits every side alike; returns every side's samples."""
    names = list(measures)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(await measures[name]())
    return samples


def median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000


def p99_ms(samples: Sequence[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98] * 1000


def _tool(name: str) -> str:
    """A console script of this environment (beside the running interpreter)."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise BenchError(f"{name} is not installed in this environment")
    return found


def command_seconds(argv: Sequence[str], *, cwd: Path = ROOT, check: bool = True) -> float:
    """Wall seconds from starting ``argv`` until it exits (output discarded)."""
    started = time.perf_counter()
    done = subprocess.run(
        argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed = time.perf_counter() - started
    if check and done.returncode != 0:
        raise BenchError(
            f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')}"
        )
    return elapsed


def bare_start() -> float:
    """The reference process: ``python -c 'import twisted.internet.reactor'``, to exit."""
    return command_seconds([sys.executable, "-c", BARE_START])


def blocking(f: Callable[[], float]) -> Measure:
    """A blocking measure as a :data:`Measure` (it holds the reactor, which has nothing
    else to do meanwhile)."""

    async def measure() -> float:
        return f()

    return measure


def write_scenario(folder: Path, name: str, duration: float) -> Path:
    """A one-application scenario file (the healthy primary stub) in ``folder``."""
    path = folder / f"scenario_{name}.yaml"
    path.write_text(
        f"name: {name}\n"
        f"duration: {duration:g}\n"
        "applications:\n"
        f"  - fixture: {json.dumps(str(PRIMARY_STUB))}\n"
        "expect:\n"
        f"  - {{application: SIPS_A, status: RUNNING, within: {duration:g}}}\n"
    )
    return path


def load(paths: Sequence[Path]) -> list[Scenario]:
    scenarios, problems = load_all([str(p) for p in paths])
    if problems:
        raise BenchError("\n".join(map(str, problems)))
    return scenarios


# -- 1, 2: virtual time in this process --------------------------------------------------


async def timed_scenario(scenario: Scenario, reactor: Any, transport: Transport) -> float:
    """Wall seconds of one ``run_scenario``; a failed scenario invalidates the figure."""
    started = time.perf_counter()
    result = await run_scenario(scenario, reactor, transport=transport)
    elapsed = time.perf_counter() - started
    if not result.passed:
        raise BenchError(f"{scenario.path} failed in the benchmark ({transport.value})")
    return elapsed


async def virtual_suite(reactor: Any, repeat: int) -> list[Row]:
    """Every reference scenario, in memory and over loopback TCP, alternately."""
    scenarios = load([FIXTURES])
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        trivial = load([write_scenario(Path(tmp), "trivial", 1)])[0]
    memory: dict[str, list[float]] = {s.path: [] for s in scenarios}
    tcp: dict[str, list[float]] = {s.path: [] for s in scenarios}
    trivial_runs: dict[Transport, list[float]] = {Transport.MEMORY: [], Transport.TCP: []}
    sides = {Transport.MEMORY: memory, Transport.TCP: tcp}
    for r in range(repeat + 1):  # round 0 warms up (imports, caches) and is not counted
        order = [Transport.MEMORY, Transport.TCP] if r % 2 else [Transport.TCP, Transport.MEMORY]
        for scenario in [trivial, *scenarios]:
            for transport in order:
                elapsed = await timed_scenario(scenario, reactor, transport)
                if r == 0:
                    continue
                if scenario is trivial:
                    trivial_runs[transport].append(elapsed)
                else:
                    sides[transport][scenario.path].append(elapsed)
    memory_ms = statistics.median(median_ms(v) for v in memory.values())
    tcp_ms = statistics.median(median_ms(v) for v in tcp.values())
    trivial_memory = median_ms(trivial_runs[Transport.MEMORY])
    trivial_tcp = median_ms(trivial_runs[Transport.TCP])
    n = len(scenarios)
    return [
        Row(
            f"virtual time, in memory: median per scenario ({n} under fixtures/)",
            memory_ms,
            "ms",
            "trivial 1-app scenario, in memory",
            trivial_memory,
            Target("value", "<=", 1, "ms"),
        ),
        Row(
            f"virtual time, loopback TCP: median per scenario ({n} under fixtures/)",
            tcp_ms,
            "ms",
            "the same, in memory",
            memory_ms,
            Target("value", "<=", 3, "ms"),
        ),
        Row(
            "virtual time, loopback TCP: trivial 1-app scenario",
            trivial_tcp,
            "ms",
            "the same, in memory",
            trivial_memory,
        ),
    ]


async def hour_timeout(reactor: Any, repeat: int) -> list[Row]:
    """The 3600 s ``backup-init-check-timeout`` scenario, in memory and over TCP."""
    scenario = load([TIMEOUT_3600])[0]
    await timed_scenario(scenario, reactor, Transport.MEMORY)  # warm-up
    samples = await alternate(
        {
            "memory": lambda: timed_scenario(scenario, reactor, Transport.MEMORY),
            "tcp": lambda: timed_scenario(scenario, reactor, Transport.TCP),
        },
        repeat,
    )
    return [
        Row(
            f"3600 s timeout scenario ({scenario.duration:g} s virtual), in memory",
            median_ms(samples["memory"]),
            "ms",
            "the same over loopback TCP",
            median_ms(samples["tcp"]),
            Target("value", "<", 5, "ms"),
        )
    ]


# -- 3: a stub process registering at a listening LCA ------------------------------------


async def stub_start(reactor: Any, starts: int) -> list[Row]:
    """``sipserver-stub`` until the LCA in this process has it registered, and
    ``python -m sipserver_stub --help`` until it exits, each against a bare start."""
    layer = ManagementLayer(reactor)
    ports = await layer.listen(
        TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"),
        TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"),
    )
    lca_port = ports.lca.getHost().port  # type: ignore[attr-defined]
    waiting: list[Deferred[None]] = []

    def registered(change: RecordChange) -> None:
        if change.event is JournalEvent.REGISTERED and waiting:
            waiting.pop().callback(None)

    stop = layer.registry.changes.subscribe(registered)
    stub = [_tool("sipserver-stub"), str(PRIMARY_STUB), "--lca", f"tcp:127.0.0.1:{lca_port}"]

    async def until_registered() -> float:
        d: Deferred[None] = Deferred()
        waiting.append(d)
        d.addTimeout(WAIT_LIMIT, reactor)
        started = time.perf_counter()
        process = subprocess.Popen(stub, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await d
        finally:
            process.kill()
            process.wait()
        return time.perf_counter() - started

    def help_exit() -> float:
        return command_seconds([sys.executable, "-m", "sipserver_stub", "--help"])

    def first_line() -> float:
        return bench_stub_start.time_stub(stub[0], str(PRIMARY_STUB), timeout=WAIT_LIMIT)

    try:
        samples = await alternate(
            {
                "stub": until_registered,
                "bare": blocking(bare_start),
                "first-line": blocking(first_line),
                "help": blocking(help_exit),
            },
            starts,
        )
    finally:
        stop()
        await layer.shutdown()
    bare = median_ms(samples["bare"])
    return [
        Row(
            "`sipserver-stub FIXTURE --lca ...` until registered at the LCA",
            median_ms(samples["stub"]),
            "ms",
            "bare `python -c 'import twisted.internet.reactor'`, to exit",
            bare,
            Target("ratio", "<=", 1.1),
        ),
        Row(
            "`sipserver-stub` until its first line reaches a plain socket "
            "(bench_stub_start.py's figure)",
            median_ms(samples["first-line"]),
            "ms",
            "bare start, to exit",
            bare,
            Target("ratio", "<=", 1.1),
        ),
        Row(
            "`python -m sipserver_stub --help`, to exit",
            median_ms(samples["help"]),
            "ms",
            "bare start, to exit",
            bare,
            Target("ratio", "<=", 1.1),
        ),
    ]


async def fork_server_start(reactor: Any, starts: int) -> list[Row]:
    """A stub forked by the stub fork server, and the same spawned as a new process,
    each from ``launch()`` until registered at an LCA in this process, against a bare
    start (``bench_forkserver.py``, which also runs alone)."""
    return fork_server_rows(await bench_forkserver.measure(reactor, starts, bare_start))


def fork_server_rows(samples: dict[str, list[float]]) -> list[Row]:
    """The rows of :func:`fork_server_start` from ``bench_forkserver.measure``'s samples."""
    forked, spawned = median_ms(samples["forked"]), median_ms(samples["spawned"])
    return [
        Row(
            "stub forked by the stub fork server: `launch()` until registered at the LCA",
            forked,
            "ms",
            "bare start, to exit",
            median_ms(samples["bare"]),
            Target("ratio", "<=", 1.1),
        ),
        Row(
            "the same, forked (ratio: speed-up)",
            forked,
            "ms",
            "spawned as `python -m sipserver_stub` (no fork server), same way",
            spawned,
            speedup=True,
        ),
        Row(
            "of which until the fork server's answer (the pid)",
            median_ms(samples["answer"]),
            "ms",
            "the forked start, whole",
            forked,
        ),
    ]


# -- 4: a --processes scenario against a bare start --------------------------------------

PROCESS_DURATION = 100.0
PROCESS_SCALE = 0.01


def processes_run(starts: int) -> list[Row]:
    """``lca-emulator run --processes`` of a one-stub scenario lasting
    ``PROCESS_DURATION * PROCESS_SCALE`` wall seconds, against the same file in virtual
    time and a bare start.  The overhead of processes mode is its wall time minus the
    virtual run's minus the scenario's own scaled duration; the stub's own start (start
    request to registration, read from the run's timeline) happens inside that
    duration and is shown on its own row."""
    emulator = _tool("lca-emulator")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        path = str(write_scenario(Path(tmp), "short", PROCESS_DURATION))
        timelines = Path(tmp) / "timelines"
        processes = [
            emulator,
            "run",
            "-q",
            "--processes",
            "--real-time",
            "--time-scale",
            f"{PROCESS_SCALE:g}",
            "--timeline",
            str(timelines),
            path,
        ]
        virtual = [emulator, "run", "-q", path]
        registrations: list[float] = []

        def processes_once() -> float:
            elapsed = command_seconds(processes)
            registrations.append(_start_to_registered(timelines) * PROCESS_SCALE)
            return elapsed

        processes_once()  # warm-up (and a check that the scenario passes)
        registrations.clear()
        samples = _alternate_blocking(
            {
                "processes": processes_once,
                "virtual": lambda: command_seconds(virtual),
                "bare": bare_start,
            },
            starts,
        )
    scaled = PROCESS_DURATION * PROCESS_SCALE * 1000
    proc_ms, virtual_ms = median_ms(samples["processes"]), median_ms(samples["virtual"])
    bare_ms = median_ms(samples["bare"])
    overhead = proc_ms - virtual_ms - scaled
    return [
        Row(
            f"`run --processes` overhead: its wall - virtual run's - {scaled:g} ms scenario time",
            overhead,
            "ms",
            "bare start, to exit",
            bare_ms,
            Target("ratio", "<=", 1.2),
        ),
        Row(
            "stub process inside that run: start request -> registered (timeline)",
            median_ms(registrations),
            "ms",
            "bare start, to exit",
            bare_ms,
            Target("ratio", "<=", 1.2),
        ),
        Row(
            f"`run --processes --time-scale {PROCESS_SCALE:g}`, 1 stub, "
            f"{PROCESS_DURATION:g} s scenario: whole command",
            proc_ms,
            "ms",
            "`run` of the same file in virtual time",
            virtual_ms,
        ),
        Row(
            "`run` of that 1-stub file in virtual time: whole command",
            virtual_ms,
            "ms",
            "bare start, to exit",
            bare_ms,
        ),
    ]


def _start_to_registered(timelines: Path) -> float:
    """Scenario seconds from the stub's start request to its registration, read from
    the one journal ``--timeline`` wrote."""
    (journal,) = timelines.glob("*.jsonl")
    times: dict[str, float] = {}
    for line in journal.read_text().splitlines():
        entry = json.loads(line)
        times.setdefault(entry["event"], entry["time"])
    try:
        return times[JournalEvent.REGISTERED.value] - times[JournalEvent.START_REQUESTED.value]
    except KeyError:
        raise BenchError(f"{journal}: no start request or registration") from None


def _alternate_blocking(
    measures: dict[str, Callable[[], float]], rounds: int
) -> dict[str, list[float]]:
    """:func:`alternate` for blocking measures, without a reactor."""
    names = list(measures)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(measures[name]())
    return samples


# -- the codec, against the json module ----------------------------------------------


def codec(rounds: int, lines: int) -> list[Row]:
    """Microseconds per line (bench_codec.py's lines): decoding a ``RequestUpdateStatus``
    against ``json.loads`` of it, encoding an ``EventApplicationInfo`` against
    ``json.dumps`` of the same fields."""
    names = {
        "decode": decode,
        "encode": encode,
        "loads": json.loads,
        "dumps": _dumps,
        "LINE": bench_codec.STATUS_LINE,
        "INFO": bench_codec.INFO,
        "INFO_OBJECT": json.loads(encode(bench_codec.INFO)),
        "ACCEPTED": APPLICATION_TO_LCA,
    }
    statements = {
        "decode": "decode(LINE, ACCEPTED)",
        "loads": "loads(LINE)",
        "encode": "encode(INFO)",
        "dumps": "dumps(INFO_OBJECT)",
    }

    def per_line(statement: str) -> Callable[[], float]:
        return lambda: timeit.timeit(statement, globals=names, number=lines) / lines * 1e6

    samples = _alternate_blocking({k: per_line(v) for k, v in statements.items()}, rounds)
    return [
        Row(
            "decode a `RequestUpdateStatus` line (codec)",
            statistics.median(samples["decode"]),
            "us",
            "`json.loads` of that line",
            statistics.median(samples["loads"]),
        ),
        Row(
            "encode an `EventApplicationInfo` (codec)",
            statistics.median(samples["encode"]),
            "us",
            "`json.dumps` of the same fields",
            statistics.median(samples["dumps"]),
        ),
    ]


# -- 5, 6: the wire, against a JSON echo -------------------------------------------------


def _status(i: int) -> RequestUpdateStatus:
    status = ApplicationStatus.RUNNING if i % 2 == 0 else ApplicationStatus.SERVICE_UNAVAILABLE
    return RequestUpdateStatus(status=status, mode=ExecutionMode.PRIMARY)


STATUS_OBJECTS = [json.loads(encode(_status(i))) for i in range(2)]
"""The two status reports as JSON objects: what the echo's clients send."""


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class JsonEcho(LineOnlyReceiver):
    """The reference server: decodes each JSON line and sends it back re-encoded."""

    delimiter = b"\n"
    MAX_LENGTH = 65536

    def lineReceived(self, line: bytes) -> None:
        self.sendLine(_dumps(json.loads(line)))


class EchoClient(LineOnlyReceiver):
    """Encodes what it sends with ``json.dumps``, decodes what comes back with ``json.loads``."""

    delimiter = b"\n"
    MAX_LENGTH = 65536

    def __init__(self) -> None:
        self.received = 0
        self.on_line: Callable[[object], None] = lambda obj: None

    def send(self, obj: object) -> None:
        self.sendLine(_dumps(obj))

    def lineReceived(self, line: bytes) -> None:
        self.received += 1
        self.on_line(json.loads(line))


class Wire:
    """An LCA with ``apps`` registered scripted applications and one subscriber."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.layer = ManagementLayer(reactor)
        self.apps: list[ScriptedApplication] = []
        self.watcher: ManagementClient | None = None
        self.on_info: Callable[[EventApplicationInfo], None] = lambda info: None

    async def open(self, apps: int) -> None:
        reactor = self.reactor
        ports = await self.layer.listen(
            TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"),
            TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"),
        )
        lca_port = ports.lca.getHost().port  # type: ignore[attr-defined]
        scs_port = ports.scs.getHost().port  # type: ignore[attr-defined]
        watcher = self.watcher = ManagementClient(reactor, scs_port)
        await watcher.connect()
        await watcher.request(RequestSubscribe(ref=watcher.next_ref()))
        original = watcher.message_received

        def heard(message: Message) -> None:
            original(message)
            if isinstance(message, EventApplicationInfo):
                self.on_info(message)

        watcher.message_received = heard  # type: ignore[method-assign]
        self.apps = [ScriptedApplication(reactor, lca_port, f"APP{i}") for i in range(apps)]
        for app in self.apps:
            await app.connect()
            await app.register()
        await _turn(reactor)  # the registrations' notifications
        watcher.received.clear()

    async def close(self) -> None:
        peers: list[ScriptedApplication | ManagementClient] = [*self.apps]
        if self.watcher is not None:
            peers.append(self.watcher)
        for peer in peers:
            peer.disconnect()
        await gatherResults([ensureDeferred(_closed(peer)) for peer in peers])
        await self.layer.shutdown()


class Echo:
    """The JSON echo server on loopback and ``clients`` connections to it."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.clients: list[EchoClient] = []
        self.port: Any = None

    async def open(self, clients: int) -> None:
        reactor = self.reactor
        factory = Factory.forProtocol(JsonEcho)
        self.port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        port = self.port.getHost().port
        for _ in range(clients):
            client = EchoClient()
            await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
            self.clients.append(client)

    async def close(self) -> None:
        for client in self.clients:
            client.transport.loseConnection()  # type: ignore[union-attr]
        await self.port.stopListening()


async def _closed(peer: ScriptedApplication | ManagementClient) -> None:
    await peer.closed


def _turn(reactor: Any) -> Deferred[None]:
    """One reactor turn: lets written data go out."""
    d: Deferred[None] = Deferred()
    reactor.callLater(0, d.callback, None)
    return d


WINDOW = 1000
"""Messages in flight at most (sent, not yet seen at the receiving end) in the
throughput figures: about 150 KB of notifications, well under the 1 MiB a subscriber
may leave unread before the SCS endpoint closes it as too slow (protocol.md, section
7). Unpaced, 10,000 reports pushed in bursts got the subscriber closed."""


class Stream:
    """Counts what arrives and lets the sender wait until at most ``WINDOW`` messages
    are in flight."""

    def __init__(self, reactor: Any, expected: int) -> None:
        self.reactor = reactor
        self.expected = expected
        self.seen = 0
        self.sent = 0
        self._caught_up: tuple[int, Deferred[None]] | None = None

    def arrived(self, _: object = None) -> None:
        self.seen += 1
        if self._caught_up is not None and self.seen >= self._caught_up[0]:
            _, d = self._caught_up
            self._caught_up = None
            d.callback(None)

    def until_seen(self, count: int) -> Deferred[None]:
        if self.seen >= count:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._caught_up = (count, d)
        return d.addTimeout(WAIT_LIMIT, self.reactor)

    def fail(self, why: str) -> None:
        """The receiving end is gone: the wait fails at once, with ``why``."""
        if self._caught_up is not None:
            _, d = self._caught_up
            self._caught_up = None
            d.errback(BenchError(why))

    async def run(self, rounds: int, send_round: Callable[[int], int]) -> float:
        """Send ``rounds`` rounds (``send_round(i)`` sends one and says how many
        messages); returns seconds until every message has arrived."""
        started = time.perf_counter()
        for i in range(rounds):
            self.sent += send_round(i)
            if self.sent - self.seen >= WINDOW:
                await self.until_seen(self.sent - WINDOW // 2)
        await self.until_seen(self.expected)
        return time.perf_counter() - started


async def lca_throughput(reactor: Any, apps: int, reports: int) -> float:
    """Status reports per second, counted when the subscriber has every notification."""
    wire = Wire(reactor)
    await wire.open(apps)
    stream = Stream(reactor, apps * reports)
    wire.on_info = stream.arrived
    assert wire.watcher is not None
    watcher = wire.watcher

    def subscriber_closed(_: object) -> None:
        errors = [m for m in watcher.received if not isinstance(m, EventApplicationInfo)]
        stream.fail(f"the subscriber's connection closed after {stream.seen}: {errors}")

    watcher.closed.addCallback(subscriber_closed)

    def send_round(i: int) -> int:
        message = _status(i)
        for app in wire.apps:
            app.send(message)
        return len(wire.apps)

    elapsed = await stream.run(reports, send_round)
    await wire.close()
    return stream.expected / elapsed


async def echo_throughput(reactor: Any, apps: int, reports: int) -> float:
    """Lines per second through the JSON echo, sent and paced the same way."""
    echo = Echo(reactor)
    await echo.open(apps)
    stream = Stream(reactor, apps * reports)
    for client in echo.clients:
        client.on_line = stream.arrived

    def send_round(i: int) -> int:
        obj = STATUS_OBJECTS[i % 2]
        for client in echo.clients:
            client.send(obj)
        return len(echo.clients)

    elapsed = await stream.run(reports, send_round)
    await echo.close()
    return stream.expected / elapsed


async def throughput(reactor: Any, repeat: int, apps: int, reports: int) -> list[Row]:
    samples = await alternate(
        {
            "lca": lambda: lca_throughput(reactor, apps, reports),
            "echo": lambda: echo_throughput(reactor, apps, reports),
        },
        repeat,
    )
    return [
        Row(
            f"status reports seen by a subscriber ({apps} apps x {reports} reports)",
            statistics.median(samples["lca"]),
            "/s",
            "JSON echo (json.loads + json.dumps per line), same load",
            statistics.median(samples["echo"]),
            Target("ratio", ">=", 0.5),
        )
    ]


async def latency(reactor: Any, reports: int) -> list[Row]:
    """One report at a time: from the application's ``RequestUpdateStatus`` write to
    the subscriber's ``EventApplicationInfo``, against one echo round trip."""
    wire, echo = Wire(reactor), Echo(reactor)
    await wire.open(1)
    await echo.open(1)
    app, client = wire.apps[0], echo.clients[0]
    arrived: list[Deferred[None]] = []

    def heard(_: object) -> None:
        if arrived:
            arrived.pop().callback(None)

    wire.on_info = heard
    client.on_line = heard
    counter = iter(range(2 * reports + 2))

    async def notify() -> float:
        d: Deferred[None] = Deferred()
        arrived.append(d)
        d.addTimeout(WAIT_LIMIT, reactor)
        started = time.perf_counter()
        app.send(_status(next(counter)))
        await d
        return time.perf_counter() - started

    async def round_trip() -> float:
        d: Deferred[None] = Deferred()
        arrived.append(d)
        d.addTimeout(WAIT_LIMIT, reactor)
        started = time.perf_counter()
        client.send(STATUS_OBJECTS[next(counter) % 2])
        await d
        return time.perf_counter() - started

    samples = await alternate({"lca": notify, "echo": round_trip}, reports)
    await wire.close()
    await echo.close()
    return [
        Row(
            f"notify latency: report written -> subscriber has it, median of {reports:,}",
            median_ms(samples["lca"]),
            "ms",
            "JSON echo round trip, median",
            median_ms(samples["echo"]),
        ),
        Row(
            f"notify latency, p99 of {reports:,}",
            p99_ms(samples["lca"]),
            "ms",
            "JSON echo round trip, p99",
            p99_ms(samples["echo"]),
        ),
    ]


# -- 7: whole suites through the command line --------------------------------------------


def suites(min_scenarios: int, runs: int) -> list[Row]:
    """``lca-emulator run -q fixtures/`` against a bare start, and ``--jobs 2`` against
    ``--jobs 1`` on at least ``min_scenarios`` scenarios: fixtures/ itself when it
    holds that many, else copies of its tree in a temporary folder (each copy keeps its
    stubs/, so the ``fixture:`` paths hold)."""
    emulator = _tool("lca-emulator")
    fixtures_n = len(load([FIXTURES]))
    copies = max(1, math.ceil(min_scenarios / fixtures_n))
    reference = [emulator, "run", "-q", "fixtures/"]
    with (
        tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp,
        tempfile.TemporaryDirectory(prefix="bench-one-") as one_folder,
    ):
        folder = "fixtures/"
        if copies > 1:
            for i in range(copies):
                shutil.copytree(FIXTURES, Path(tmp) / f"copy{i}")
            folder = tmp
        count = fixtures_n * copies
        jobs1 = [emulator, "run", "-q", "--jobs", "1", folder]
        jobs2 = [emulator, "run", "-q", "--jobs", "2", folder]
        one = [emulator, "run", "-q", str(write_scenario(Path(one_folder), "one", 10))]
        measures = {
            "fixtures": lambda: command_seconds(reference),
            "bare": bare_start,
            "jobs2": lambda: command_seconds(jobs2),
            "one": lambda: command_seconds(one),
        }
        if copies > 1:
            measures["jobs1"] = lambda: command_seconds(jobs1)
        command_seconds(reference)  # warm-up
        samples = _alternate_blocking(measures, runs)
    fixtures_s, bare_s = statistics.median(samples["fixtures"]), statistics.median(samples["bare"])
    jobs1_s = statistics.median(samples["jobs1"]) if copies > 1 else fixtures_s
    where = "fixtures/" if copies == 1 else f"{copies} copies of fixtures/"
    rows = [
        Row(
            f"`lca-emulator run -q fixtures/` ({fixtures_n} scenarios): whole command",
            fixtures_s,
            "s",
            "bare start, to exit",
            bare_s,
        )
    ]
    if copies > 1:
        rows.append(
            Row(
                f"`lca-emulator run -q --jobs 1` on {count} scenarios: whole command",
                jobs1_s,
                "s",
                "bare start, to exit",
                bare_s,
            )
        )
    rows.append(
        Row(
            f"`run -q --jobs 2` on {count} scenarios ({where}; ratio: speed-up)",
            statistics.median(samples["jobs2"]),
            "s",
            "`--jobs 1`, same files",
            jobs1_s,
            Target("ratio", ">=", 1.7),
            speedup=True,
        )
    )
    # What no number of workers shares: the interpreter, the imports, one scenario, the
    # exit.  With it, two workers can at best halve the rest (Amdahl's law).
    fixed_s = statistics.median(samples["one"])
    rows.append(
        Row(
            "`run -q` of a one-scenario file, whole command (paid by every run, whatever "
            "its workers)",
            fixed_s,
            "s",
            "`--jobs 1` on the suite",
            jobs1_s,
        )
    )
    rows.append(
        Row(
            "the best `--jobs 2` could do (ratio: speed-up): that one-scenario command + "
            "half of the rest of `--jobs 1`",
            fixed_s + (jobs1_s - fixed_s) / 2,
            "s",
            "`--jobs 1`, same files",
            jobs1_s,
            speedup=True,
        )
    )
    return rows


# -- 8: the project's own tests under pytest-xdist ---------------------------------------


def pytest_workers(rounds: int = 2) -> list[Row]:
    """``pytest -q -n 2`` against ``pytest -q -n 0``, ``rounds`` times each, in the order
    0, 2, 2, 0, ... (so a drift of the machine's speed weighs on both alike); the
    medians (minutes)."""
    pytest = _tool("pytest")
    failed = []
    samples: dict[str, list[float]] = {"0": [], "2": []}
    order = [("0", "2") if n % 2 == 0 else ("2", "0") for n in range(rounds)]
    for workers in (w for pair in order for w in pair):
        started = time.perf_counter()
        done = subprocess.run([pytest, "-q", "-n", workers], cwd=ROOT, capture_output=True)
        samples[workers].append(time.perf_counter() - started)
        if done.returncode != 0:
            summary = done.stdout.decode(errors="replace").strip().splitlines()[-1:]
            failed.append(f"-n {workers}: {' '.join(summary).strip('= ')}")
            print(done.stdout.decode(errors="replace"), file=sys.stderr)
    walls = {workers: statistics.median(values) for workers, values in samples.items()}
    serial, parallel = walls["0"], walls["2"]
    return [
        Row(
            f"`pytest -q -n 2`, the project's tests, median of {rounds} (ratio: speed-up)",
            parallel,
            "s",
            f"`pytest -q -n 0`, median of {rounds}",
            serial,
            Target("ratio", ">=", 1.8),
            speedup=True,
            note="; ".join(failed),
        )
    ]
