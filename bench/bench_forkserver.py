"""How long a stub process takes to start: from ``launch()`` to its registration at the LCA.

    .venv/bin/python bench/bench_forkserver.py [--repeat N] [--load N]

For each way of starting a stub (forked by the stub fork server, or spawned as a new
``python -m sipserver_stub`` process) it starts one stub ``--repeat`` times, one
after another, each time waiting until the LCA has its registration, then stopping
it; it prints the median, the fastest and the slowest.  ``--load N`` keeps N busy
processes spinning meanwhile (a loaded CI machine).  A measurement, not a test.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import react
from twisted.logger import LogEvent, globalLogPublisher

from lca_common.protocol.messages import ExecutionMode
from lca_emulator.harness.launchers import StubProcessLauncher, application_spec, stub_fork_server
from lca_emulator.journal import JournalEvent
from lca_emulator.layer import ManagementLayer
from lca_emulator.lca.forkserver import ForkServer
from lca_emulator.lca.processes import ProcessLauncher
from lca_emulator.registry import RecordChange
from sipserver_stub.fixture import StubFixture

NAME = "SIPS_BENCH"


def _spin() -> None:
    while True:
        pass


@contextmanager
def load(processes: int) -> Iterator[None]:
    """``processes`` CPU-bound processes for the duration."""
    spinners = [
        multiprocessing.get_context("spawn").Process(target=_spin) for _ in range(processes)
    ]
    for p in spinners:
        p.start()
    try:
        yield
    finally:
        for p in spinners:
            p.kill()
            p.join()


async def measure(reactor: Any, forked: bool, repeat: int) -> list[float]:
    """Seconds from launch() to registration, ``repeat`` times."""
    fixture = StubFixture(NAME, mode=ExecutionMode.PRIMARY, sip_port=0)
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        processes = ProcessLauncher(reactor, reactor)
        forks: ForkServer | None = None
        if forked:
            forks = stub_fork_server(reactor, reactor, processes)
            await forks.start()
        launcher = StubProcessLauncher(processes, Path(workdir), wall=reactor, forks=forks)
        layer = ManagementLayer(
            reactor, applications=[application_spec(fixture)], launcher=launcher
        )
        endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        await layer.listen(endpoint, TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"))
        times: list[float] = []
        answered: list[float] = []

        def observe(event: LogEvent) -> None:
            if "forked by" in event.get("log_format", ""):
                answered.append(time.perf_counter())

        globalLogPublisher.addObserver(observe)
        for _ in range(repeat):
            registered: Deferred[float] = Deferred()

            def changed(change: RecordChange, d: Deferred[float] = registered) -> None:
                if change.event is JournalEvent.REGISTERED and not d.called:
                    d.callback(time.perf_counter())

            stop = layer.registry.changes.subscribe(changed)
            started = time.perf_counter()
            layer.control.start(NAME)
            times.append(await registered.addTimeout(30, reactor) - started)
            if forked:
                answered[-1] -= started
            stop()
            await layer.control.stop(NAME)
        globalLogPublisher.removeObserver(observe)
        await layer.shutdown()
        if forks is not None:
            await forks.stop()
            report("  of which until the fork server's answer (pid)", answered)
    return times


def report(label: str, times: list[float]) -> None:
    print(
        f"{label}: median {statistics.median(times) * 1000:.1f} ms, "
        f"min {min(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms (n={len(times)})",
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--load", type=int, default=0, metavar="N", help="N busy processes meanwhile")
    args = p.parse_args()

    async def run(reactor: Any) -> None:
        report("fork server", await measure(reactor, True, args.repeat))
        report("plain spawn", await measure(reactor, False, args.repeat))

    with load(args.load):
        react(lambda r: ensureDeferred(run(r)))


if __name__ == "__main__":
    main()
