"""Every benchmark of the project, printed as one table. Not tests: nothing asserts a time.

    .venv/bin/python bench/bench_all.py [--repeat N] [--starts N] [--pytest] [--only GROUP]

Each row: the figure, its value, the reference measured in the same run, the
reference's value, their ratio, the target from the issue ("Speed"), and whether it
is met.  A figure and its reference are timed alternately (their order rotates each
round) with ``time.perf_counter``; each is the median of its rounds.  See
bench/README.md for what each row measures.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import bench_suite as suite  # beside this file: python puts bench/ first on sys.path
from bench_suite import Row
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react

from lca_emulator.harness.batch import log_critical_only

GROUPS = ("codec", "virtual", "timeout", "wire", "latency", "stub", "processes", "suites", "pytest")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5, help="rounds of in-process figures")
    p.add_argument("--starts", type=int, default=10, help="rounds of process starts")
    p.add_argument("--runs", type=int, default=5, help="rounds of whole commands")
    p.add_argument(
        "--min-scenarios",
        type=int,
        default=200,
        help="scenarios for --jobs 2 against 1 (copies of fixtures/ when it has fewer)",
    )
    p.add_argument("--apps", type=int, default=20, help="applications for the throughput")
    p.add_argument("--reports", type=int, default=500, help="reports per application")
    p.add_argument("--lines", type=int, default=50_000, help="lines per codec round")
    p.add_argument("--latency-reports", type=int, default=1000, help="reports timed one by one")
    p.add_argument(
        "--pytest",
        action="store_true",
        help="also time the project's tests with pytest -n 2 against -n 0 (minutes)",
    )
    p.add_argument(
        "--only",
        action="append",
        choices=GROUPS,
        metavar="GROUP",
        help=f"run only these groups ({', '.join(GROUPS)}); repeatable",
    )
    return p


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    header = ["figure", "value", "reference", "ref. value", "ratio", "target", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        figure = f"{row.figure} ({row.note})" if row.note else row.figure
        cells = [
            figure,
            suite.show(row.value, row.unit),
            row.reference,
            suite.show(row.reference_value, row.unit),
            f"{row.ratio:.2f}x",
            str(row.target) if row.target is not None else "-",
            row.met,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    groups = set(args.only or [g for g in GROUPS if g != "pytest" or args.pytest])
    command = "python bench/bench_all.py" + "".join(
        f" {shlex.quote(a)}" for a in (argv if argv is not None else sys.argv[1:])
    )
    rows: list[Row] = []
    load_before = load_average()
    started = time.perf_counter()

    async def run(reactor: Any) -> None:
        steps: list[tuple[str, Callable[[], Awaitable[list[Row]]]]] = [
            ("codec", lambda: _now(suite.codec, args.repeat, args.lines)),
            ("virtual", lambda: suite.virtual_suite(reactor, args.repeat)),
            ("timeout", lambda: suite.hour_timeout(reactor, max(args.repeat, 10))),
            ("wire", lambda: suite.throughput(reactor, args.repeat, args.apps, args.reports)),
            ("latency", lambda: suite.latency(reactor, args.latency_reports)),
            ("stub", lambda: suite.stub_start(reactor, args.starts)),
            ("stub", lambda: suite.fork_server_start(reactor, args.starts)),
            ("processes", lambda: _now(suite.processes_run, args.runs)),
            ("suites", lambda: _now(suite.suites, args.min_scenarios, args.runs)),
            ("pytest", lambda: _now(suite.pytest_workers)),
        ]
        for name, step in steps:
            if name not in groups:
                continue
            t0 = time.perf_counter()
            print(f"[{name}] ...", file=sys.stderr, flush=True)
            new = await step()
            rows.extend(new)
            print(f"[{name}] {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        report(command, rows, load_before, time.perf_counter() - started)

    # as `lca-emulator run` logs while it runs scenarios (the in-process figures are its)
    log_critical_only(sys.stderr)
    react(lambda reactor: ensureDeferred(run(reactor)))


def bytecode() -> str:
    """Whether the project's modules start from cached bytecode: with
    PYTHONDONTWRITEBYTECODE set and an editable install, none is ever written, and every
    start compiles them (about 14,000 lines for ``run``, 4,000 for the stub)."""
    import importlib.util

    import lca_emulator.cli.run  # the modules the benchmark runs: an installed copy's

    source = Path(lca_emulator.cli.run.__file__)
    cached = Path(importlib.util.cache_from_source(str(source))).exists()
    if cached:
        return "the project's modules have cached .pyc files"
    written = (
        "never written: PYTHONDONTWRITEBYTECODE is set"
        if sys.dont_write_bytecode
        else ("written at the first start")
    )
    return f"the project's modules have no cached .pyc ({written})"


def report(command: str, rows: Sequence[Row], load_before: str, seconds: float) -> None:
    print(f"$ {command}")
    print(
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; "
        f"load average {load_before} before, {load_average()} after; {seconds:.0f} s in all; "
        f"{bytecode()}"
    )
    print()
    print(table(rows))


async def _now(f: Callable[..., list[Row]], *args: Any) -> list[Row]:
    return f(*args)


if __name__ == "__main__":
    main()
