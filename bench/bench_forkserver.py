"""How long a stub process takes to start: from ``launch()`` to its registration at the LCA.

    .venv/bin/python bench/bench_forkserver.py [--repeat N] [--load N]

Two ways of starting the same stub (one healthy primary) are timed alternately, their
order rotating from round to round, beside a bare start of the interpreter: forked by
the stub fork server (``python -m sipserver_stub.forkserver``, which the harness uses
for ``--processes``), and spawned as a new ``python -m sipserver_stub`` process (what it
falls back to). Each start is timed until the LCA, listening in this process, has the
registration; then the stub is stopped. For the fork server it also times how much of
that went by before the server's answer (the pid). ``--load N`` keeps N busy processes
spinning meanwhile at nice 0 (a loaded CI machine). The fork server runs its stubs at
nice -10 where the system allows it (``raise_priority``); the spawned stubs and the
LCA run at the benchmark's own priority (``nice -n -10`` gives them what
``lca-emulator run`` asks for on the wall clock). It prints the medians beside their
references and their ratios, as ``bench_all.py`` does (its ``stub`` group has the same
rows). A measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from cpuload import busy_processes  # beside this file: python puts bench/ first on sys.path
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import react
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher

from lca_common.protocol.messages import ExecutionMode
from lca_emulator.harness.launchers import StubProcessLauncher, application_spec, stub_fork_server
from lca_emulator.journal import JournalEvent
from lca_emulator.layer import ManagementLayer
from lca_emulator.lca.forkserver import ForkServer
from lca_emulator.lca.processes import ProcessLauncher
from lca_emulator.registry import RecordChange
from sipserver_stub.fixture import StubFixture

NAME = "SIPS_BENCH"
WAIT_LIMIT = 30.0
"""Wall-clock seconds a start may take before the benchmark gives up."""


class StubStarts:
    """One LCA listening in this process and a way of starting its one stub; each
    :meth:`start` times one start until registration, then stops the stub."""

    def __init__(self, reactor: Any, workdir: Path, forks: ForkServer | None) -> None:
        fixture = StubFixture(NAME, mode=ExecutionMode.PRIMARY, sip_port=0)
        processes = ProcessLauncher(reactor, reactor)
        launcher = StubProcessLauncher(processes, workdir, wall=reactor, forks=forks)
        self.reactor = reactor
        self.layer = ManagementLayer(
            reactor, applications=[application_spec(fixture)], launcher=launcher
        )
        self.answered: list[float] = []
        """Seconds from launch() to the fork server's answer (the pid), per start."""

    async def open(self) -> None:
        lca, scs = (TCP4ServerEndpoint(self.reactor, 0, interface="127.0.0.1") for _ in "ab")
        await self.layer.listen(lca, scs)

    async def start(self) -> float:
        """Seconds from launch() to the registration."""
        registered: Deferred[float] = Deferred()
        answered: list[float] = []

        def changed(change: RecordChange) -> None:
            if change.event is JournalEvent.REGISTERED and not registered.called:
                registered.callback(time.perf_counter())

        def observe(event: LogEvent) -> None:
            if event.get("application") == NAME and "forked by" in event.get("log_format", ""):
                answered.append(time.perf_counter())

        observer = cast(ILogObserver, observe)
        stop = self.layer.registry.changes.subscribe(changed)
        globalLogPublisher.addObserver(observer)
        try:
            started = time.perf_counter()
            self.layer.control.start(NAME)
            took = await registered.addTimeout(WAIT_LIMIT, self.reactor) - started
        finally:
            globalLogPublisher.removeObserver(observer)
            stop()
        self.answered.extend(t - started for t in answered[:1])
        await self.layer.control.stop(NAME).addTimeout(WAIT_LIMIT, self.reactor)
        return took

    async def close(self) -> None:
        await self.layer.shutdown()


async def measure(reactor: Any, rounds: int, bare: Callable[[], float]) -> dict[str, list[float]]:
    """Per round, in rotating order: a forked start, a spawned start and ``bare()``;
    returns every side's seconds, and the forked starts' time to the server's answer
    under ``"answer"``."""
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        forks = stub_fork_server(reactor)
        await forks.start().addTimeout(WAIT_LIMIT, reactor)
        forked = StubStarts(reactor, Path(workdir), forks)
        spawned = StubStarts(reactor, Path(workdir), None)
        await forked.open()
        await spawned.open()

        async def bare_start() -> float:
            return bare()

        measures = {"forked": forked.start, "spawned": spawned.start, "bare": bare_start}
        names = list(measures)
        samples: dict[str, list[float]] = {name: [] for name in names}
        try:
            await forked.start()  # a warm-up of each, not counted
            await spawned.start()
            forked.answered.clear()
            for r in range(rounds):
                shift = r % len(names)
                for name in names[shift:] + names[:shift]:
                    samples[name].append(await measures[name]())
        finally:
            await forked.close()
            await spawned.close()
            await forks.stop()
        samples["answer"] = forked.answered
        return samples


def main() -> None:
    import bench_all  # beside this file (python puts bench/ first on sys.path)
    import bench_suite

    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--repeat", type=int, default=10, help="rounds (default 10)")
    p.add_argument("--load", type=int, default=0, metavar="N", help="N busy processes meanwhile")
    args = p.parse_args()
    before = bench_all.load_average()

    async def run(reactor: Any) -> None:
        samples = await measure(reactor, args.repeat, bench_suite.bare_start)
        nice = os.getpriority(os.PRIO_PROCESS, 0)
        print(
            f"{args.repeat} rounds, {args.load} busy processes; the LCA and the stubs it "
            f"spawns at nice {nice}, the forked ones at their fork server's; "
            f"load average {before} before, {bench_all.load_average()} after"
        )
        print()
        print(bench_all.table(bench_suite.fork_server_rows(samples)))

    with busy_processes(args.load):
        react(lambda reactor: ensureDeferred(run(reactor)))  # exits when done


if __name__ == "__main__":
    main()
