"""``lca-emulator run``: run scenario files and print a verdict per scenario."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from lca_common.entrypoints import positive_float, stop_reactor_on_interrupt
from lca_common.yamlsource import ConfigError, format_number
from lca_emulator.harness.discovery import discover_scenarios
from lca_emulator.harness.loader import load_scenario
from lca_emulator.harness.model import Scenario
from lca_emulator.harness.runner import ScenarioResult, run_scenario
from lca_emulator.harness.site import RunMode, Site

EXIT_PASSED, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def add_run_arguments(sub: Any) -> None:
    """Add the ``run`` subcommand to ``sub`` (an argparse subparsers object)."""
    run = sub.add_parser(
        "run",
        help="run scenario files and report expected vs observed",
        description="Run every scenario file (or every scenario *.yaml under a folder).",
    )
    run.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    run.add_argument("--json", metavar="FILE", help="also write machine-readable results here")
    run.add_argument(
        "--timeline", metavar="DIR", help="write each scenario's journal here as JSON Lines"
    )
    run.add_argument(
        "--real-time",
        action="store_true",
        help="run on the wall clock instead of the virtual clock",
    )
    run.add_argument(
        "--processes",
        action="store_true",
        help="run each stub as a separate sipserver-stub process (implies --real-time)",
    )
    run.add_argument(
        "--time-scale",
        type=positive_float,
        default=1.0,
        metavar="F",
        help="with --real-time/--processes: real seconds per scenario second (default 1)",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="print only failures and summary")


def run_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``lca-emulator run``; returns the exit code."""
    out = out if out is not None else sys.stdout
    scenarios, problems = load_all(args.paths)
    if problems:
        for problem in problems:
            print(f"lca-emulator: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not scenarios:
        print("lca-emulator: no scenario files found in " + " ".join(args.paths), file=sys.stderr)
        return EXIT_BAD_INPUT
    mode = RunMode.VIRTUAL
    if args.processes:
        mode = RunMode.PROCESSES
    elif args.real_time:
        mode = RunMode.REAL_TIME
    results = _run_all(scenarios, mode, args.time_scale, out, quiet=args.quiet)
    if len(results) < len(scenarios):
        print(
            f"lca-emulator: interrupted: {len(results)} of {len(scenarios)} scenarios ran",
            file=sys.stderr,
        )
        return EXIT_FAILED
    try:
        if args.json:
            path = Path(args.json)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(results_document(results), indent=2) + "\n")
        if args.timeline:
            write_timelines(results, Path(args.timeline))
    except OSError as e:
        print(f"lca-emulator: cannot write results: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_PASSED if all(r.passed for r in results) else EXIT_FAILED


def load_all(paths: Sequence[str]) -> tuple[list[Scenario], list[ConfigError]]:
    """Load every scenario under ``paths``; every invalid file is reported, not just one."""
    scenarios, problems = [], []
    try:
        files = discover_scenarios(paths)
    except ConfigError as e:
        return [], [e]
    for path in files:
        try:
            scenarios.append(load_scenario(path))
        except ConfigError as e:
            problems.append(e)
    return scenarios, problems


def _run_all(
    scenarios: list[Scenario], mode: RunMode, time_scale: float, out: TextIO, *, quiet: bool
) -> list[ScenarioResult]:
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred, ensureDeferred
    from twisted.internet.task import react

    results: list[ScenarioResult] = []
    clock_note = "virtual time" if mode is RunMode.VIRTUAL else f"wall clock x{time_scale:g}"
    how = {RunMode.PROCESSES: "stubs as processes"}.get(mode, "stubs in-process")
    print(f"running {len(scenarios)} scenario(s): {clock_note}, {how}", file=out, flush=True)
    started = time.monotonic()

    current: list[Site] = []

    def interrupted() -> Deferred[None] | None:
        """Ctrl-C: stop the applications of the scenario under way (child processes too)."""
        if len(results) == len(scenarios) or not current:
            return None
        return ensureDeferred(current[-1].close())

    reactor.addSystemEventTrigger("before", "shutdown", interrupted)

    stop_reactor_on_interrupt(reactor)

    async def main(_: object) -> None:
        for scenario in scenarios:
            if mode is not RunMode.VIRTUAL:
                real = scenario.duration * time_scale
                print(f"  ... {scenario.name} ({format_number(real)} s)", file=out, flush=True)
            result = await run_scenario(
                scenario, reactor, mode=mode, time_scale=time_scale, opened=current.append
            )
            results.append(result)
            print_result(result, out, quiet=quiet)

    try:
        react(lambda r: ensureDeferred(main(r)))
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    passed = sum(r.passed for r in results)
    failed = len(results) - passed
    elapsed = time.monotonic() - started
    print(
        f"{len(results)} scenarios: {passed} passed, {failed} failed ({elapsed:.2f} s)",
        file=out,
        flush=True,
    )
    return results


def print_result(result: ScenarioResult, out: TextIO, *, quiet: bool = False) -> None:
    """One row per scenario, its expectations (expected vs observed), and on a
    failure the observed timeline of each application that missed."""
    held = sum(v.passed for v in result.verdicts)
    verdict = "PASS" if result.passed else "FAIL"
    if quiet and result.passed:
        return
    print(
        f"{verdict}  {result.scenario.name}  "
        f"[{held}/{len(result.verdicts)} expectations, {result.scenario.path}]",
        file=out,
    )
    for error in result.errors:
        print(f"      error: {error}", file=out)
    for note in result.notes:
        print(f"      note: {note}", file=out)
    for v in result.verdicts:
        mark = "ok  " if v.passed else "MISS"
        print(f"  {mark} expected {v.expectation.text:<48} observed {v.observed}", file=out)
    for app in dict.fromkeys(v.expectation.application for v in result.failures):
        print(f"      observed timeline of {app}:", file=out)
        for line in result.timeline.lines(app):
            print(f"        {line}", file=out)
    out.flush()


def results_document(results: Sequence[ScenarioResult]) -> dict[str, Any]:
    """The ``--json`` document."""
    return {
        "passed": all(r.passed for r in results),
        "summary": {
            "scenarios": len(results),
            "passed": sum(r.passed for r in results),
            "failed": sum(not r.passed for r in results),
        },
        "scenarios": [
            {
                "name": r.scenario.name,
                "path": r.scenario.path,
                "mode": r.mode.value,
                "passed": r.passed,
                "wall_seconds": round(r.wall_seconds, 4),
                "errors": list(r.errors),
                "notes": list(r.notes),
                "expectations": [
                    {
                        "expected": v.expectation.text,
                        "line": v.expectation.line,
                        "passed": v.passed,
                        "observed": v.observed,
                    }
                    for v in r.verdicts
                ],
                "timeline": {
                    app.application: r.timeline.describe(app.application)
                    for app in r.scenario.applications
                },
            }
            for r in results
        ],
    }


def write_timelines(results: Sequence[ScenarioResult], folder: Path) -> None:
    """Write each scenario's journal to ``folder/<name>.jsonl``."""
    folder.mkdir(parents=True, exist_ok=True)
    for r in results:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", r.scenario.name).strip("-") or "scenario"
        with (folder / f"{slug}.jsonl").open("w", encoding="utf-8") as f:
            for entry in r.journal:
                f.write(json.dumps(entry.to_json(), separators=(",", ":")) + "\n")
