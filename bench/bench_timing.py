"""How far a wall-clock run's times are from the exact ones: what the tolerance must absorb.

    .venv/bin/python bench/bench_timing.py [--processes] [--time-scale F] [--jobs N]
        [--load N] [--rounds N] FILE...

Runs the scenario files in virtual time (exact) and on the wall clock, and matches
each wall-clock journal entry (per application: the k-th entry of the same event,
status and mode) with its virtual-time twin, at the priority ``lca-emulator run`` asks
for on the wall clock (nice -10, where allowed).  Prints, in wall-clock milliseconds,
the median, 99th percentile and largest difference, the worst entries, and whether
every scenario passed.  ``--jobs N`` runs N scenarios at once and ``--load N`` keeps
N busy processes spinning meanwhile, to see a loaded machine.  A measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections import defaultdict

from cpuload import busy_processes  # beside this file: python puts bench/ first on sys.path

from lca_common.entrypoints import raise_priority
from lca_emulator.cli.run import load_all
from lca_emulator.harness.batch import run_in_workers
from lca_emulator.harness.runner import RunSettings, ScenarioResult
from lca_emulator.harness.site import RunMode
from lca_emulator.journal import JournalEntry, JournalEvent


def _keyed(journal: tuple[JournalEntry, ...]) -> dict[tuple[str, ...], list[float]]:
    times: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for e in journal:
        if e.event is not JournalEvent.CONFIGURED:
            times[(e.application, e.event.value, e.status.value, e.mode.value)].append(e.time)
    return times


def differences(exact: ScenarioResult, wall: ScenarioResult) -> list[tuple[float, str]]:
    """(wall - exact, what) for every journal entry both runs have, in scenario seconds."""
    ours, theirs = _keyed(exact.journal), _keyed(wall.journal)
    found = []
    for key, times in ours.items():
        for k, (t_exact, t_wall) in enumerate(zip(times, theirs.get(key, []), strict=False)):
            what = f"{wall.scenario.name[:40]}: {' '.join(key)} #{k} at {t_exact:g}"
            found.append((t_wall - t_exact, what))
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("paths", nargs="+")
    p.add_argument("--processes", action="store_true")
    p.add_argument("--time-scale", type=float, default=0.1)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--load", type=int, default=0, metavar="N")
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args()
    scenarios, problems = load_all(args.paths)
    if problems:
        sys.exit(f"bad input: {problems}")
    exact = run_in_workers(scenarios, RunSettings(), 1, lambda i, r: None)
    mode = RunMode.PROCESSES if args.processes else RunMode.REAL_TIME
    settings = RunSettings(mode, args.time_scale)
    refused = raise_priority()  # as `lca-emulator run` does on the wall clock
    priority = refused or f"nice {os.getpriority(os.PRIO_PROCESS, 0)}"
    found: list[tuple[float, str]] = []
    failed: list[str] = []
    with busy_processes(args.load):
        for _ in range(args.rounds):
            wall = run_in_workers(scenarios, settings, args.jobs, lambda i, r: None)
            for e, w in zip(exact, wall, strict=True):
                found.extend(differences(e, w))
                if not w.passed:
                    failed.append(
                        f"{w.scenario.name}: "
                        + "; ".join(f"{v.expectation.text}: {v.observed}" for v in w.failures)
                        + "".join(f"; error: {x}" for x in w.errors)
                    )
    print(
        f"{settings.describe()}; {len(scenarios)} scenario(s) x {args.rounds}, jobs {args.jobs}, "
        f"{args.load} busy processes, {priority}; wall - exact, in wall ms:"
    )
    for label, chosen in (
        ("entries at t=0 (start-up)", [d for d, what in found if what.endswith(" at 0")]),
        ("entries after t=0", [d for d, what in found if not what.endswith(" at 0")]),
    ):
        wall_ms = sorted(d * args.time_scale * 1000 for d in chosen)
        if wall_ms:
            p99 = wall_ms[min(len(wall_ms) - 1, int(len(wall_ms) * 0.99))]
            print(
                f"  {label}: {len(wall_ms)}, min {wall_ms[0]:+.1f}, median "
                f"{statistics.median(wall_ms):+.1f}, p99 {p99:+.1f}, max {wall_ms[-1]:+.1f}"
            )
    print("  largest:")
    for d, what in sorted(found, key=lambda x: -abs(x[0]))[:6]:
        print(f"  {d * args.time_scale * 1000:+7.1f} ms ({d:+.3f} s)  {what}")
    print("  largest after t=0:")
    later = [(d, what) for d, what in found if not what.endswith(" at 0")]
    for d, what in sorted(later, key=lambda x: -abs(x[0]))[:6]:
        print(f"  {d * args.time_scale * 1000:+7.1f} ms ({d:+.3f} s)  {what}")
    print(f"failed: {len(failed)}")
    for line in failed:
        print(f"  {line}")


if __name__ == "__main__":
    main()
