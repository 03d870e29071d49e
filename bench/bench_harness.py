"""Benchmarks of the harness and the emulator. Not tests: they measure and print.

    .venv/bin/python bench/bench_harness.py [--repeat N] [--apps N] [--reports N]

1. Virtual-time scenario throughput: the reference suite under fixtures/, N times.
2. The 3600 s timeout scenario: wall time for one hour of virtual time.
3. Wire throughput: N scripted applications each send M status reports over real
   loopback TCP to the LCA while one management client is subscribed; measures
   reports per second handled end to end (every notification received).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, gatherResults
from twisted.internet.task import react

from lca_common.protocol.messages import (
    ApplicationStatus,
    EventApplicationInfo,
    ExecutionMode,
    RequestSubscribe,
)
from lca_emulator.cli.run import load_all
from lca_emulator.harness.model import Scenario
from lca_emulator.harness.runner import run_scenario
from lca_emulator.layer import ManagementLayer
from lca_emulator.testing import ManagementClient, ScriptedApplication

ROOT = Path(__file__).resolve().parent.parent


async def suite_throughput(reactor: Any, scenarios: list[Scenario], repeat: int) -> None:
    walls: list[float] = []
    started = time.perf_counter()
    virtual = 0.0
    for _ in range(repeat):
        for scenario in scenarios:
            result = await run_scenario(scenario, reactor)
            assert result.passed, f"{scenario.name} failed in the benchmark"
            walls.append(result.wall_seconds)
            virtual += scenario.duration
    total = time.perf_counter() - started
    print(
        f"virtual-time suite: {len(walls)} scenario runs in {total:.2f} s "
        f"({len(walls) / total:.0f} scenarios/s; per scenario median "
        f"{statistics.median(walls) * 1000:.1f} ms, max {max(walls) * 1000:.1f} ms; "
        f"{virtual / total:,.0f} virtual s per wall s)"
    )


async def hour_timeout(reactor: Any, scenarios: list[Scenario]) -> None:
    long = [s for s in scenarios if s.duration >= 3600]
    for scenario in long[:3]:
        result = await run_scenario(scenario, reactor)
        print(
            f"long scenario {scenario.name!r} ({scenario.duration:g} s virtual): "
            f"{result.wall_seconds * 1000:.1f} ms wall, passed={result.passed}"
        )


async def wire_throughput(reactor: Any, apps: int, reports: int) -> None:
    from twisted.internet.endpoints import TCP4ServerEndpoint

    layer = ManagementLayer(reactor)
    ports = await layer.listen(
        TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"),
        TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"),
    )
    lca_port = ports.lca.getHost().port  # type: ignore[attr-defined]
    scs_port = ports.scs.getHost().port  # type: ignore[attr-defined]
    watcher = ManagementClient(reactor, scs_port)
    await watcher.connect()
    await watcher.request(RequestSubscribe(ref=watcher.next_ref()))
    clients = [ScriptedApplication(reactor, lca_port, f"APP{i}") for i in range(apps)]
    for c in clients:
        await c.connect()
        await c.register()
    expected = apps * reports
    done: Deferred[None] = Deferred()
    seen = 0
    original = watcher.message_received

    def count(message: Any) -> None:
        nonlocal seen
        original(message)
        if isinstance(message, EventApplicationInfo):
            seen += 1
            if seen == expected and not done.called:
                done.callback(None)

    watcher.message_received = count  # type: ignore[method-assign]
    statuses = [ApplicationStatus.RUNNING, ApplicationStatus.SERVICE_UNAVAILABLE]
    started = time.perf_counter()
    for i in range(reports):
        for c in clients:
            c.report(statuses[i % 2], ExecutionMode.PRIMARY)
        if i % 50 == 49:
            await _yield(reactor)
    await done
    elapsed = time.perf_counter() - started
    print(
        f"wire: {expected} status reports from {apps} applications, each seen by a "
        f"subscriber, in {elapsed:.2f} s ({expected / elapsed:,.0f} reports/s end to end)"
    )
    for c in clients:
        c.disconnect()
    watcher.disconnect()
    await gatherResults([ensureDeferred(_closed(c)) for c in [*clients, watcher]])
    await layer.shutdown()


async def _closed(peer: Any) -> None:
    await peer.closed


def _yield(reactor: Any) -> Deferred[None]:
    d: Deferred[None] = Deferred()
    reactor.callLater(0, d.callback, None)
    return d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--reports", type=int, default=500)
    args = parser.parse_args()
    scenarios, problems = load_all([str(ROOT / "fixtures")])
    if problems:
        raise SystemExit("\n".join(map(str, problems)))

    async def run(reactor: Any) -> None:
        await suite_throughput(reactor, scenarios, args.repeat)
        await hour_timeout(reactor, scenarios)
        await wire_throughput(reactor, args.apps, args.reports)

    react(lambda r: ensureDeferred(run(r)))


if __name__ == "__main__":
    main()
