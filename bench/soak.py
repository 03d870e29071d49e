"""Soak test of ``lca-emulator serve`` as a process, under a 1,024 open-file limit.

    .venv/bin/python bench/soak.py [--fuzz-connections N] [--fuzz-frames N] [--fuzz-batch N]
                                   [--changes N] [--idle N] [--idle-scs N] [--seed N]
                                   [--no-journal]

Plain Python and the project (no pytest). It starts ``lca-emulator serve`` on loopback
port 0 (listen backlog 1,024) with ``RLIMIT_NOFILE`` lowered to 1,024, ``--register-timeout
10`` and ``--journal FILE``, then:

1. fuzz: many connections to both endpoints send random frames, valid and invalid
   (bad JSON, wrong types, unknown messages, huge names, over-long lines, random bytes);
2. a subscriber that never reads while one application makes 100,000 status changes;
3. idle connections: more than the emulator accepts, on both endpoints, that never send
   a byte; then a new application tries to register, during the flood and after it.

All along, a normal management client (a process of its own) asks
``RequestGetApplicationInfo`` every 20 ms and its latency is recorded, per phase, and
serve's resident memory is sampled.  Latency includes this machine's scheduling: the
load average is printed beside it.  It prints frames sent, errors, crashes (serve still
answering, no traceback in its log), peak RSS, and the normal client's latency.
Targets: RSS growth under 30 MB, every request of the normal client answered within
100 ms.  Exit code 0 when both hold and nothing crashed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import multiprocessing
import os
import random
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lca_common.protocol.limits import MAX_NAME_BYTES

LCA_EMULATOR = str(Path(sys.executable).parent / "lca-emulator")
NOFILE = 1024
REGISTER_TIMEOUT = 10.0
BACKLOG = 1024
"""Listen queue: a burst of connections waits for serve, which accepts or refuses each
(with Twisted's default of 50, the kernel drops the rest of a burst and they retry)."""
TIMEOUT = 20.0
RSS_TARGET_MB = 30.0
LATENCY_TARGET_S = 0.100

Json = dict[str, Any]

MESSAGES = [
    "RequestRegisterApplication",
    "RequestUpdateStatus",
    "ResponseExecutionModeChanged",
    "RequestHeartbeat",
    "RequestGetApplicationInfo",
    "RequestSubscribe",
    "RequestStartApplication",
    "RequestStopApplication",
    "RequestRestartApplication",
    "RequestSwitchover",
    "EventOk",
    "RequestKillApplication",
]
STATUSES = ["UNKNOWN", "STOPPED", "INITIALIZING", "RUNNING", "SERVICE_UNAVAILABLE", "READY"]
MODES = ["PRIMARY", "BACKUP", "EXITING", "UNKNOWN", "primary"]


def line(message: Json) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


# -- serve ------------------------------------------------------------------------------


def _limit_files() -> None:
    """In the child: the open-file limit of a default Linux login, and its own session."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = NOFILE if hard == resource.RLIM_INFINITY else min(NOFILE, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (cap, cap))
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Serve:
    proc: subprocess.Popen[bytes]
    log: Path
    lca: tuple[str, int]
    scs: tuple[str, int]

    @classmethod
    def start(cls, workdir: Path, journal: bool = True) -> Serve:
        log = workdir / "serve.log"
        journaling = ["--journal", str(workdir / "journal.jsonl")] if journal else []
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [
                    LCA_EMULATOR,
                    "serve",
                    "--lca",
                    f"tcp:0:interface=127.0.0.1:backlog={BACKLOG}",
                    "--scs",
                    f"tcp:0:interface=127.0.0.1:backlog={BACKLOG}",
                    "--register-timeout",
                    str(REGISTER_TIMEOUT),
                    *journaling,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                preexec_fn=_limit_files,
                start_new_session=True,
            )
        assert proc.stdout is not None
        addresses = []
        for _ in range(2):
            text = proc.stdout.readline().decode()
            if not text:
                raise SystemExit(f"serve did not start:\n{log.read_text()}")
            host, port = text.rsplit(" ", 1)[1].strip().rsplit(":", 1)
            addresses.append((host, int(port)))
        return cls(proc, log, addresses[0], addresses[1])

    def rss_mb(self) -> tuple[float, float]:
        """Resident memory now and at its peak (VmRSS, VmHWM), in MB."""
        fields = {}
        with contextlib.suppress(OSError):
            for text in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                key, _, value = text.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    fields[key] = int(value.split()[0]) / 1024
        return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)

    def open_files(self) -> int:
        """How many files serve has open now."""
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        except OSError:
            return -1

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def connect(address: tuple[str, int], timeout: float = TIMEOUT) -> socket.socket:
    return socket.create_connection(address, timeout=timeout)


class Lines:
    """Blocking JSON Lines over one socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.stream = sock.makefile("rb")

    def send(self, message: Json) -> None:
        self.sock.sendall(line(message))

    def read(self) -> Json | None:
        try:
            text = self.stream.readline()
        except OSError:
            return None
        return json.loads(text) if text else None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.close()
            self.sock.close()


# -- the normal client (a process of its own) and the memory sampler ------------------------


def probe(address: tuple[str, int], stop: Any, results: Any) -> None:
    """In a child process (so that this one's work cannot delay it): a normal management
    client asking every 20 ms; sends back (when, latency or None, failure) per request."""
    client = Lines(connect(address))
    ref = 0
    samples: list[tuple[float, float | None, str]] = []
    while not stop.wait(0.02):
        ref += 1
        started = time.monotonic()
        try:
            client.send(
                {"message": "RequestGetApplicationInfo", "ref": ref, "application": "SOAK_NORMAL"}
            )
            reply = client.read()
        except OSError as e:
            reply, error = None, str(e)
        else:
            error = "connection closed"
        if reply is None or reply.get("ref") != ref:
            samples.append((started, None, f"request {ref}: {reply or error}"))
            client.close()
            client = Lines(connect(address))
            continue
        samples.append((started, time.monotonic() - started, ""))
    client.close()
    results.put(samples)


@dataclass
class Watch:
    """The normal client's requests, and serve's memory, all along the run."""

    serve: Serve
    phases: list[tuple[float, str]] = field(default_factory=list)
    samples: list[tuple[float, float | None, str]] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def sample_memory(self) -> None:
        while not self.stop.wait(0.05):
            self.rss.append(self.serve.rss_mb()[0])

    @property
    def latencies(self) -> list[float]:
        return [latency for _, latency, _ in self.samples if latency is not None]

    @property
    def failures(self) -> list[str]:
        return [failure for _, latency, failure in self.samples if latency is None]

    def by_phase(self) -> dict[str, list[float]]:
        phases: dict[str, list[float]] = collections.defaultdict(list)
        for when, latency, _ in self.samples:
            if latency is None:
                continue
            names = [name for start, name in self.phases if start <= when] or ["start"]
            phases[names[-1]].append(latency)
        return phases


# -- phase 1: fuzz ---------------------------------------------------------------------------


def fuzz_name(rng: random.Random) -> Any:
    pick = rng.random()
    if pick < 0.5:
        return rng.choice(["SIPS_A", "SIPS_B", "MONITOR", "X", ""])
    if pick < 0.7:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(1, 40)))
    if pick < 0.85:
        return rng.choice('a"\\\x01é😀') * rng.choice([MAX_NAME_BYTES, MAX_NAME_BYTES + 1, 9000])
    return rng.choice([None, 7, -1, True, [], {"a": 1}, 1.5])


def fuzz_value(rng: random.Random, good: list[Any]) -> Any:
    if rng.random() < 0.7:
        return rng.choice(good)
    return rng.choice([None, 0, -5, 2**70, "x" * rng.randrange(1, 3000), [], {}, 1e308, False])


def fuzz_frame(rng: random.Random, objects_only: bool) -> bytes:
    """One random line: mostly plausible JSON objects, some broken on purpose (with
    ``objects_only``, always a JSON object: the connection stays open)."""
    pick = 0.0 if objects_only else rng.random()
    if pick < 0.7:
        message: Json = {"message": fuzz_value(rng, MESSAGES)}
        for key, good in (
            ("ref", list(range(1, 10))),
            ("application", None),
            ("host", ["host-a", "h" * 300]),
            ("pid", [1, 4711, 2**31, 2**40]),
            ("status", STATUSES),
            ("mode", MODES),
        ):
            if rng.random() < 0.6:
                message[key] = fuzz_name(rng) if good is None else fuzz_value(rng, good)
        text = json.dumps(message, ensure_ascii=rng.random() < 0.5).encode()
        if not objects_only and rng.random() < 0.1:
            text = text[: rng.randrange(len(text))]  # cut short: invalid JSON
        return text
    if pick < 0.85:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(60))).replace(b"\n", b"")
    return rng.choice([b"x" * 70_000, b"[" * 10_000, b"", b"\r", b"null", b"\xff\xfe{}"])


@dataclass
class FuzzStats:
    connections: int = 0
    frames: int = 0
    bytes_sent: int = 0
    lines_received: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    closed_by_serve: int = 0


def fuzz(serve: Serve, rng: random.Random, connections: int, frames: int, batch: int) -> FuzzStats:
    stats = FuzzStats()
    for start in range(0, connections, batch):
        socks: dict[socket.socket, tuple[bytearray, bytearray]] = {}
        for _ in range(min(batch, connections - start)):
            sock = connect(rng.choice([serve.lca, serve.scs]))
            sock.setblocking(False)
            objects_only = rng.random() < 0.7
            payload = b"\n".join(fuzz_frame(rng, objects_only) for _ in range(frames)) + b"\n"
            socks[sock] = (bytearray(payload), bytearray())
            stats.connections += 1
            stats.frames += frames
            stats.bytes_sent += len(payload)
        quiet_since = {sock: time.monotonic() for sock in socks}
        while socks:
            readable, writable = wait_for(socks, [s for s, (out, _) in socks.items() if out])
            now = time.monotonic()
            for sock in writable:
                out = socks[sock][0]
                with contextlib.suppress(BlockingIOError, ConnectionError):
                    del out[: sock.send(out[:65536])]
            for sock in readable:
                try:
                    chunk = sock.recv(1 << 16)
                except BlockingIOError:
                    continue
                except ConnectionError:
                    chunk = b""
                if not chunk:
                    stats.closed_by_serve += 1
                    finish(sock, socks, stats)
                    continue
                socks[sock][1].extend(chunk)
                quiet_since[sock] = now
            for sock in [s for s in socks if not socks[s][0] and now - quiet_since[s] > 0.5]:
                finish(sock, socks, stats)
    return stats


def wait_for(
    readers: Iterable[socket.socket], writers: Iterable[socket.socket], timeout: float = 0.05
) -> tuple[list[socket.socket], list[socket.socket]]:
    """Which sockets can be read and written (poll: no limit on descriptor numbers)."""
    poller = select.poll()
    by_fd: dict[int, socket.socket] = {}
    events: dict[int, int] = collections.defaultdict(int)
    for sock in readers:
        by_fd[sock.fileno()] = sock
        events[sock.fileno()] |= select.POLLIN
    for sock in writers:
        by_fd[sock.fileno()] = sock
        events[sock.fileno()] |= select.POLLOUT
    for fd, mask in events.items():
        poller.register(fd, mask)
    readable, writable = [], []
    for fd, happened in poller.poll(timeout * 1000):
        if happened & (select.POLLIN | select.POLLHUP | select.POLLERR):
            readable.append(by_fd[fd])
        if happened & select.POLLOUT:
            writable.append(by_fd[fd])
    return readable, writable


def finish(
    sock: socket.socket, socks: dict[socket.socket, tuple[bytearray, bytearray]], stats: FuzzStats
) -> None:
    received = bytes(socks.pop(sock)[1])
    for text in received.splitlines():
        stats.lines_received += 1
        message = json.loads(text)  # serve must only ever send valid JSON lines
        assert len(text) <= 65536, len(text)
        if message.get("message") == "EventError":
            stats.errors[message["code"]] += 1
    sock.close()


# -- phase 2: a subscriber that never reads --------------------------------------------------


def flood(serve: Serve, changes: int) -> dict[str, Any]:
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(serve.scs)
    slow.sendall(line({"message": "RequestSubscribe", "ref": 1}))
    app = Lines(connect(serve.lca))
    app.send({"message": "RequestRegisterApplication", "ref": 1, "application": "SOAK_FLAP"})
    assert app.read() == {"message": "EventApplicationRegistered", "ref": 1}
    statuses = [b"RUNNING", b"SERVICE_UNAVAILABLE"]
    reports = [
        b'{"message":"RequestUpdateStatus","status":"%s","mode":"PRIMARY"}\n' % statuses[n % 2]
        for n in range(2)
    ]
    started = time.monotonic()
    for start in range(0, changes, 1000):
        app.sock.sendall(b"".join(reports[n % 2] for n in range(start, min(changes, start + 1000))))
    app.send({"message": "RequestUpdateStatus", "status": "SUSPENDED", "mode": "PRIMARY"})
    checker = Lines(connect(serve.scs))
    ref = 0
    while True:  # until serve has handled every report
        ref += 1
        checker.send(
            {"message": "RequestGetApplicationInfo", "ref": ref, "application": "SOAK_FLAP"}
        )
        reply = checker.read()
        if reply is not None and reply.get("status") == "SUSPENDED":
            break
        assert time.monotonic() - started < 300, "serve did not get through the changes"
    handled = time.monotonic() - started
    slow.settimeout(TIMEOUT)
    received = b""
    with contextlib.suppress(OSError):
        while chunk := slow.recv(1 << 20):
            received += chunk
    slow.close()
    checker.close()
    app.close()
    last = received.splitlines()[-1] if received else b""
    return {
        "seconds": handled,
        "received": received.count(b"\n"),
        "too_slow": b'"too-slow"' in last,
    }


# -- phase 3: idle connections ---------------------------------------------------------------


def open_idle(address: tuple[str, int], count: int) -> list[socket.socket]:
    """``count`` connections, opened all at once (non-blocking), that never send a byte."""
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(address)
        socks.append(sock)
    pending = list(socks)
    deadline = time.monotonic() + TIMEOUT
    while pending and time.monotonic() < deadline:
        _, writable = wait_for([], pending)
        for sock in writable:
            pending.remove(sock)
    return socks


def first_lines(socks: list[socket.socket], wait: float) -> collections.Counter[str]:
    """The code of the first line each socket gets within ``wait`` s ('open': none yet)."""
    seen: dict[socket.socket, str] = {}
    deadline = time.monotonic() + wait
    pending = list(socks)
    buffers: dict[socket.socket, bytes] = collections.defaultdict(bytes)
    while pending and time.monotonic() < deadline:
        readable, _ = wait_for(pending, [])
        for sock in readable:
            try:
                chunk = sock.recv(4096)
            except (BlockingIOError, ConnectionError):
                chunk = b""
            buffers[sock] += chunk
            if b"\n" in buffers[sock] or not chunk:
                text = buffers[sock].split(b"\n", 1)[0]
                seen[sock] = json.loads(text).get("code", "?") if text else "closed"
                pending.remove(sock)
    return collections.Counter(seen.get(sock, "open") for sock in socks)


def try_register(serve: Serve, name: str) -> str:
    client = Lines(connect(serve.lca, timeout=5))
    try:
        client.send({"message": "RequestRegisterApplication", "ref": 1, "application": name})
        reply = client.read()
    except OSError as e:
        return f"failed: {e}"
    finally:
        client.close()
    if reply is None:
        return "closed"
    return str(reply.get("code", reply["message"]))


def idle(serve: Serve, lca_count: int, scs_count: int) -> dict[str, Any]:
    lca = open_idle(serve.lca, lca_count)
    scs = open_idle(serve.scs, scs_count)
    during = try_register(serve, "SOAK_LATE")
    lca_fate = first_lines(lca, REGISTER_TIMEOUT + 10)
    scs_fate = first_lines(scs, 1.0)
    after = try_register(serve, "SOAK_LATE")
    for sock in lca + scs:
        sock.close()
    return {"lca": lca_fate, "scs": scs_fate, "during": during, "after": after}


# -- the run -----------------------------------------------------------------------------------


def mb(value: float) -> str:
    return f"{value:.1f} MB"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@contextlib.contextmanager
def watching(serve: Serve) -> Iterator[Watch]:
    watch = Watch(serve)
    stop = multiprocessing.Event()
    results: Any = multiprocessing.Queue()
    child = multiprocessing.Process(target=probe, args=(serve.scs, stop, results), daemon=True)
    child.start()
    memory = threading.Thread(target=watch.sample_memory, daemon=True)
    memory.start()
    try:
        yield watch
    finally:
        stop.set()
        watch.stop.set()
        watch.samples = results.get(timeout=TIMEOUT)
        child.join(TIMEOUT)
        memory.join(TIMEOUT)


def timed(watch: Watch, what: str, action: Callable[[], Any]) -> Any:
    watch.phases.append((time.monotonic(), what))
    started = time.monotonic()
    print(f"... {what}", flush=True)
    result = action()
    print(
        f"    done in {time.monotonic() - started:.1f} s; serve has "
        f"{watch.serve.open_files()} files open",
        flush=True,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fuzz-connections", type=int, default=400)
    parser.add_argument("--fuzz-frames", type=int, default=50)
    parser.add_argument(
        "--fuzz-batch", type=int, default=50, help="fuzzing connections open at once"
    )
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--idle", type=int, default=1100, help="idle LCA connections")
    parser.add_argument("--idle-scs", type=int, default=500, help="idle SCS connections")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--no-journal", action="store_true", help="run serve without --journal FILE"
    )
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # this side needs thousands
    rng = random.Random(args.seed)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="lca-soak-") as tmp:
        serve = Serve.start(Path(tmp), journal=not args.no_journal)
        try:
            normal = Lines(connect(serve.lca))
            normal.send(
                {"message": "RequestRegisterApplication", "ref": 1, "application": "SOAK_NORMAL"}
            )
            assert normal.read() == {"message": "EventApplicationRegistered", "ref": 1}
            normal.send({"message": "RequestUpdateStatus", "status": "RUNNING", "mode": "PRIMARY"})
            start_rss = serve.rss_mb()[0]
            with watching(serve) as watch:
                stats = timed(
                    watch,
                    "fuzz",
                    lambda: fuzz(
                        serve, rng, args.fuzz_connections, args.fuzz_frames, args.fuzz_batch
                    ),
                )
                flooded = timed(
                    watch,
                    f"{args.changes:,} changes, a subscriber that never reads",
                    lambda: flood(serve, args.changes),
                )
                idled = timed(
                    watch, "idle connections", lambda: idle(serve, args.idle, args.idle_scs)
                )
            answering = try_register(serve, "SOAK_FINAL") == "EventApplicationRegistered"
            now_rss, peak_rss = serve.rss_mb()
            normal.close()
            code = serve.stop()
        finally:
            if serve.proc.poll() is None:
                serve.proc.kill()
        log = serve.log.read_text(errors="replace")
        journal_path = Path(tmp) / "journal.jsonl"
        journal_lines = sum(1 for _ in journal_path.open()) if journal_path.exists() else 0
    tracebacks = log.count("Traceback")
    unhandled = log.count("Unhandled")
    emfile = log.count("EMFILE") + log.count("Too many open files")
    refusal_lines = sum("refused" in text and "connection(s)" in text for text in log.splitlines())
    lat = watch.latencies
    slow_requests = sum(latency > LATENCY_TARGET_S for latency in lat)
    growth = peak_rss - start_rss
    print()
    print(
        f"serve: RLIMIT_NOFILE {NOFILE}, --register-timeout {REGISTER_TIMEOUT:g}, listen "
        f"backlog {BACKLOG}; machine: {os.cpu_count()} CPUs, load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    print(
        f"fuzz: {stats.connections} connections, {stats.frames:,} frames "
        f"({stats.bytes_sent / 1e6:.1f} MB) sent; {stats.lines_received:,} lines back, "
        f"{sum(stats.errors.values()):,} EventError "
        f"({', '.join(f'{k} {v}' for k, v in stats.errors.most_common())}); "
        f"{stats.closed_by_serve} connections closed by serve"
    )
    print(
        f"never-reading subscriber: {args.changes:,} changes handled in "
        f"{flooded['seconds']:.1f} s; it was sent {flooded['received']:,} lines, then "
        f"{'too-slow and closed' if flooded['too_slow'] else 'closed without too-slow'}"
    )
    print(
        f"idle: {args.idle} LCA connections: {dict(idled['lca'])}; "
        f"{args.idle_scs} SCS connections: {dict(idled['scs'])}"
    )
    print(
        f"      an application registering during the flood: {idled['during']}; "
        f"after the deadline: {idled['after']}; EMFILE log lines: {emfile}; "
        f"refusal log lines: {refusal_lines}"
    )
    print(
        f"normal client: {len(lat):,} requests, latency median "
        f"{statistics.median(lat) * 1000:.1f} ms, p99 {percentile(lat, 0.99) * 1000:.1f} ms, "
        f"max {max(lat) * 1000:.1f} ms; over {LATENCY_TARGET_S * 1000:.0f} ms: {slow_requests}; "
        f"failed: {len(watch.failures)}"
    )
    print(
        f"serve memory: RSS {mb(start_rss)} at start, {mb(now_rss)} at the end, peak "
        f"{mb(peak_rss)} (growth {mb(growth)}; target under {RSS_TARGET_MB:g} MB)"
    )
    print(
        f"crashes: still answering: {'yes' if answering else 'NO'}; tracebacks in its log: "
        f"{tracebacks}; unhandled errors: {unhandled}; exit code after Ctrl-C: {code}; "
        f"journal file: {journal_lines:,} lines"
    )
    for phase, values in watch.by_phase().items():
        print(
            f"  {phase}: {len(values)} requests, max {max(values) * 1000:.1f} ms, over "
            f"{LATENCY_TARGET_S * 1000:.0f} ms: {sum(v > LATENCY_TARGET_S for v in values)}"
        )
    for failure in watch.failures[:5]:
        print(f"  normal client failure: {failure}")
    ok = (
        answering
        and tracebacks == unhandled == 0
        and code == 0
        and growth < RSS_TARGET_MB
        and slow_requests == 0
        and not watch.failures
    )
    print("PASS" if ok else "FAIL")
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
