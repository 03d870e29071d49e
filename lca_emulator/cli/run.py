"""``lca-emulator run``: run scenario files and print a verdict per scenario."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import io
import json
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast, overload

from lca_common.entrypoints import (
    collect_garbage_from_now,
    positive_float,
    positive_int,
    raise_priority,
)
from lca_common.yamlsource import ConfigError, format_number
from lca_emulator.harness import golden as golden_journals
from lca_emulator.harness.batch import (
    LoadingWorkers,
    ScenarioSummary,
    run_in_workers,
    run_serially,
)
from lca_emulator.harness.discovery import discover_scenarios, scenario_candidates
from lca_emulator.harness.loader import load_scenario
from lca_emulator.harness.model import Expectation, Scenario
from lca_emulator.harness.network import Transport
from lca_emulator.harness.runner import RunSettings, ScenarioResult
from lca_emulator.harness.site import RunMode

if TYPE_CHECKING:
    from lca_common.forkserver import EarlyServer

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
        "--html", metavar="FILE", help="also write a report page with a timeline per scenario"
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
    run.add_argument(
        "--transport",
        choices=[t.value for t in Transport],
        default=Transport.MEMORY.value,
        help="virtual time: connections in memory (default) or over loopback TCP",
    )
    run.add_argument(
        "--jobs",
        "-j",
        type=positive_int,
        default=1,
        metavar="N",
        help="run the scenarios in N worker processes (results in the same order)",
    )
    run.add_argument(
        "--golden",
        metavar="DIR",
        help="compare each scenario's whole journal with the one recorded in DIR "
        "(virtual time); a difference fails the scenario and is shown",
    )
    run.add_argument(
        "--update-golden",
        action="store_true",
        help="with --golden: record this run's journals in DIR instead of comparing",
    )
    run.add_argument(
        "--strict",
        action="store_true",
        help="an option the server would ignore (unknown name, invalid value) is a file "
        "error (exit 2) instead of a note",
    )
    run.add_argument(
        "-q", "--quiet", action="store_true", help="print only failures, notes and the summary"
    )


def run_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``lca-emulator run``; returns the exit code."""
    out = out if out is not None else sys.stdout
    if unwritable := check_outputs(args):
        print(f"lca-emulator: {unwritable}", file=sys.stderr)
        return EXIT_BAD_INPUT
    mode = RunMode.VIRTUAL
    if args.processes:
        mode = RunMode.PROCESSES
    elif args.real_time:
        mode = RunMode.REAL_TIME
    settings = RunSettings(mode, args.time_scale, Transport(args.transport))
    golden = Golden(Path(args.golden), update=args.update_golden) if args.golden else None
    workers: LoadingWorkers | None = None
    early: EarlyServer | None = None
    if mode is RunMode.PROCESSES and args.jobs == 1:
        from lca_emulator.harness.launchers import fork_stub_fork_server

        early = fork_stub_fork_server()  # it imports the stub while we read the files
    try:
        if args.jobs > 1 and mode is RunMode.VIRTUAL:
            # the workers start at once, each reading its own share of the files
            try:
                candidates = scenario_candidates(args.paths)
            except ConfigError as e:
                print(f"lca-emulator: {e}", file=sys.stderr)
                return EXIT_BAD_INPUT
            keep = bool(args.json or args.timeline or args.html)
            finish = functools.partial(render_result, golden=golden, quiet=args.quiet, keep=keep)
            load = functools.partial(load_scenario, strict=args.strict)
            workers = LoadingWorkers(candidates, settings, args.jobs, load, finish)
            summaries, problem_texts = workers.load()
            return _run_loaded(args, settings, summaries, problem_texts, out, workers=workers)
        scenarios, problems = load_all(args.paths, strict=args.strict)
        return _run_loaded(args, settings, scenarios, problems, out, golden=golden, early=early)
    finally:
        if workers is not None:
            workers.close()
        if early is not None:
            early.discard()  # unless the run took it


def _run_loaded(
    args: argparse.Namespace,
    settings: RunSettings,
    scenarios: Sequence[Scenario] | Sequence[ScenarioSummary],
    problems: Sequence[object],
    out: TextIO,
    *,
    golden: Golden | None = None,
    workers: LoadingWorkers | None = None,
    early: EarlyServer | None = None,
) -> int:
    """The run once the files are read (here, or by ``workers``): refuse what cannot
    run, run, write the outputs; returns the exit code.  ``early`` is the stub fork
    server forked already, for a run of stub processes."""
    if problems:
        for problem in problems:
            print(f"lca-emulator: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not scenarios:
        print("lca-emulator: no scenario files found in " + " ".join(args.paths), file=sys.stderr)
        return EXIT_BAD_INPUT
    mode = settings.mode
    wall_clock_only = [e for s in scenarios if (e := s.wall_clock_error()) is not None]
    if mode is RunMode.VIRTUAL and wall_clock_only:
        for problem in wall_clock_only:
            print(f"lca-emulator: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.update_golden and not args.golden:
        print("lca-emulator: --update-golden needs --golden DIR", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.golden and mode is not RunMode.VIRTUAL:
        print(
            "lca-emulator: --golden compares virtual-time journals; "
            "wall-clock times differ from run to run",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    if mode is not RunMode.VIRTUAL and (refused := raise_priority()) is not None:
        print(
            f"lca-emulator: note: {refused}; on a busy machine, times may be later than "
            "the tolerance allows",
            file=sys.stderr,
        )
    collect_garbage_from_now()  # everything is imported and read
    reports: Sequence[ScenarioResult] | Sequence[RenderedResult]
    if workers is not None:
        rendered = _run_all(
            cast(Sequence[ScenarioSummary], scenarios),
            settings,
            out,
            jobs=args.jobs,
            quiet=args.quiet,
            workers=workers,
        )
        passed = all(report.passed for report in rendered)
        results = [report.result for report in rendered if report.result is not None]
        reports = rendered
    else:
        results = _run_all(
            cast(Sequence[Scenario], scenarios),
            settings,
            out,
            jobs=args.jobs,
            quiet=args.quiet,
            golden=golden,
            early=early,
        )
        passed = all(r.passed for r in results)
        reports = results
    if len(reports) < len(scenarios):
        print(
            f"lca-emulator: interrupted: {len(reports)} of {len(scenarios)} scenarios ran",
            file=sys.stderr,
        )
        return EXIT_FAILED
    try:
        if args.json:
            path = Path(args.json)
            path.parent.mkdir(parents=True, exist_ok=True)
            document = results_document(
                results, settings, golden=bool(args.golden) and not args.update_golden
            )
            path.write_text(json.dumps(document, indent=2) + "\n")
        if args.timeline:
            write_timelines(results, Path(args.timeline))
        if args.html:
            from lca_emulator.web.report import write_report

            write_report(results, Path(args.html))
    except OSError as e:
        print(f"lca-emulator: cannot write results: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_PASSED if passed else EXIT_FAILED


def check_outputs(args: argparse.Namespace) -> str | None:
    """Why an output of the run cannot be written, checked before anything runs (a run
    on the wall clock may take hours): ``None`` when every one can."""
    files = [(flag, name) for flag, name in (("--json", args.json), ("--html", args.html)) if name]
    if files:
        from lca_emulator.web.report import check_writable  # the report's module: when asked

    for flag, name in files:
        if why := check_writable(Path(name)):
            return f"cannot write {flag} {name}: {why}"
    folders = [("--timeline", args.timeline)]
    if args.update_golden:
        folders.append(("--golden", args.golden))
    for flag, name in folders:
        if name and (why := check_folder_writable(Path(name))):
            return f"cannot write {flag} {name}: {why}"
    return None


def check_folder_writable(folder: Path) -> str | None:
    """Why files cannot be written in ``folder``, or ``None`` if they can (it is made if
    needed); tried for real, as :func:`check_writable` does for a file."""
    try:  # Path.exists and is_dir raise for some errors (a name too long)
        existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            return f"{existing} is not a folder"
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        return e.strerror or str(e)
    return None


def load_all(
    paths: Sequence[str], *, strict: bool = False
) -> tuple[list[Scenario], list[ConfigError]]:
    """Load every scenario under ``paths``; every invalid file is reported, not just one."""
    scenarios, problems = [], []
    try:
        files = discover_scenarios(paths)
    except ConfigError as e:
        return [], [e]
    for path in files:
        try:
            scenarios.append(load_scenario(path, strict=strict))
        except ConfigError as e:
            problems.append(e)
    return scenarios, problems


@dataclass(frozen=True)
class Golden:
    """``--golden DIR`` (compare) or ``--golden DIR --update-golden`` (record)."""

    folder: Path
    update: bool

    def check(self, result: ScenarioResult) -> ScenarioResult:
        """The result, failed with the difference when its journal is not the golden one."""
        path = result.scenario.path
        if self.update:
            golden_journals.record(path, result.journal, self.folder)
            return result
        difference = golden_journals.compare(path, result.journal, self.folder)
        return dataclasses.replace(result, golden=difference)


@dataclass(frozen=True)
class RenderedResult:
    """A scenario's result as a ``--jobs`` worker sends it: its rows as printed, and the
    result itself only when an output file needs it (a whole result is slow to send)."""

    passed: bool
    text: str
    result: ScenarioResult | None = None


def render_result(
    result: ScenarioResult, *, golden: Golden | None, quiet: bool, keep: bool
) -> RenderedResult:
    """``result`` checked against its golden journal and printed, as the run prints it."""
    if golden is not None:
        result = golden.check(result)
    rows = io.StringIO()
    print_result(result, rows, quiet=quiet)
    return RenderedResult(result.passed, rows.getvalue(), result if keep else None)


@overload
def _run_all(
    scenarios: Sequence[Scenario],
    settings: RunSettings,
    out: TextIO,
    *,
    jobs: int,
    quiet: bool,
    golden: Golden | None = None,
    early: EarlyServer | None = None,
) -> list[ScenarioResult]: ...


@overload
def _run_all(
    scenarios: Sequence[ScenarioSummary],
    settings: RunSettings,
    out: TextIO,
    *,
    jobs: int,
    quiet: bool,
    workers: LoadingWorkers,
) -> list[RenderedResult]: ...


def _run_all(
    scenarios: Sequence[Scenario] | Sequence[ScenarioSummary],
    settings: RunSettings,
    out: TextIO,
    *,
    jobs: int,
    quiet: bool,
    golden: Golden | None = None,
    workers: LoadingWorkers | None = None,
    early: EarlyServer | None = None,
) -> list[ScenarioResult] | list[RenderedResult]:
    jobs = min(jobs, len(scenarios))
    worker_count = f", {jobs} workers" if jobs > 1 else ""
    header = f"running {len(scenarios)} scenario(s): {settings.describe()}{worker_count}"
    if settings.mode is not RunMode.VIRTUAL:
        wall = wall_estimate(scenarios, settings.time_scale, jobs)
        header += f"; about {format_wall(wall)} of wall-clock time"
    print(header, file=out, flush=True)
    if settings.mode is not RunMode.VIRTUAL and (warning := long_run_warning(wall, settings)):
        print(warning, file=out, flush=True)
    started = time.monotonic()

    if workers is not None:

        def show(index: int, rendered: RenderedResult) -> None:
            out.write(rendered.text)
            out.flush()

        reports = workers.run(show)
        _summary(sum(r.passed for r in reports), len(reports), started, out)
        return reports

    full = cast(Sequence[Scenario], scenarios)
    checked: dict[int, ScenarioResult] = {}

    def announce(index: int, result: ScenarioResult) -> None:
        if golden is not None:
            result = checked[index] = golden.check(result)
        print_result(result, out, quiet=quiet)
        if settings.mode is not RunMode.VIRTUAL and jobs == 1 and index + 1 < len(full):
            _announce_next(full, index + 1, settings, out)

    if jobs > 1:
        results = run_in_workers(full, settings, jobs, announce)
    else:
        if settings.mode is not RunMode.VIRTUAL:
            _announce_next(full, 0, settings, out)
        results = run_serially(full, settings, announce, early=early)
    results = [checked.get(index, result) for index, result in enumerate(results)]
    _summary(sum(r.passed for r in results), len(results), started, out)
    return results


def _summary(passed: int, ran: int, started: float, out: TextIO) -> None:
    elapsed = time.monotonic() - started
    print(
        f"{ran} scenarios: {passed} passed, {ran - passed} failed ({elapsed:.2f} s)",
        file=out,
        flush=True,
    )


LONG_RUN = 600.0
"""Wall-clock seconds beyond which a run is announced with a warning (10 minutes)."""


def wall_estimate(
    scenarios: Sequence[Scenario] | Sequence[ScenarioSummary], time_scale: float, jobs: int = 1
) -> float:
    """About how many wall-clock seconds the scenarios take: their durations times the
    scale, shared by ``jobs`` workers (never less than the longest one)."""
    durations = [s.duration * time_scale for s in scenarios]
    if not durations:
        return 0.0
    return max(sum(durations) / max(jobs, 1), max(durations))


def format_wall(seconds: float) -> str:
    """A wall-clock duration for people: ``45 s``, ``12 min``, ``2 h 30 min``."""
    if seconds < 59.5:
        return f"{format_number(round(seconds, 1))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def long_run_warning(wall: float, settings: RunSettings) -> str | None:
    """The line that warns of a run longer than :data:`LONG_RUN`, with a faster
    ``--time-scale`` (a power of 10 that brings it near or under it), or ``None``."""
    if wall <= LONG_RUN:
        return None
    factor = 10 ** max(1, math.ceil(math.log10(wall / LONG_RUN)))
    faster = f"{settings.time_scale / factor:g}"
    return (
        f"warning: this run will take about {format_wall(wall)} of wall-clock time; "
        f"--time-scale {faster} runs it {factor}x faster"
    )


def _announce_next(
    scenarios: Sequence[Scenario], index: int, settings: RunSettings, out: TextIO
) -> None:
    """On the wall clock, say which scenario starts, how long it will take and about how
    long the run has left (this scenario included)."""
    scenario = scenarios[index]
    real = scenario.duration * settings.time_scale
    left = wall_estimate(scenarios[index:], settings.time_scale)
    print(
        f"  ... [{index + 1}/{len(scenarios)}] {scenario.name} "
        f"({format_number(round(real, 3))} s; about {format_wall(left)} left)",
        file=out,
        flush=True,
    )


def print_result(result: ScenarioResult, out: TextIO, *, quiet: bool = False) -> None:
    """One row per scenario, its expectations (expected vs observed), and on a
    failure the observed timeline of each application that missed."""
    held = sum(v.passed for v in result.verdicts)
    verdict = "PASS" if result.passed else "FAIL"
    if quiet and result.passed:
        for note in result.notes:  # a passing scenario may pass for the wrong reason
            print(f"note: {result.scenario.name}: {note}", file=out)
        return
    print(
        f"{verdict}  {result.scenario.name}  "
        f"[{held}/{len(result.verdicts)} expectations, {result.scenario.path}]",
        file=out,
    )
    for error in result.errors:
        print(f"      error: {error}", file=out)
    for line in result.golden:
        print(f"      golden: {line}", file=out)
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


@cache
def results_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of the ``--json`` document, as shipped in this package."""
    text = resources.files(__package__).joinpath("results.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def results_document(
    results: Sequence[ScenarioResult],
    settings: RunSettings | None = None,
    *,
    golden: bool = False,
) -> dict[str, Any]:
    """The ``--json`` document (``results.schema.json``); ``golden`` when the journals
    were compared with golden ones (each scenario then lists its difference lines)."""
    settings = settings if settings is not None else RunSettings()
    return {
        "passed": all(r.passed for r in results),
        **settings.tolerance.to_json(),
        "summary": {
            "scenarios": len(results),
            "passed": sum(r.passed for r in results),
            "failed": sum(not r.passed for r in results),
        },
        "scenarios": [_scenario_document(r, settings, golden=golden) for r in results],
    }


def _scenario_document(
    result: ScenarioResult, settings: RunSettings, *, golden: bool
) -> dict[str, Any]:
    virtual = result.mode is RunMode.VIRTUAL
    document: dict[str, Any] = {
        "name": result.scenario.name,
        "path": result.scenario.path,
        "mode": result.mode.value,
        "passed": result.passed,
        "wall_seconds": round(result.wall_seconds, 4),
        "settings": {
            "mode": result.mode.value,
            # wall-clock runs always connect over loopback TCP (Site)
            "transport": settings.transport.value if virtual else Transport.TCP.value,
            "time_scale": None if virtual else settings.time_scale,
        },
        **result.tolerance.to_json(),
        "errors": list(result.errors),
        "notes": list(result.notes),
        "expectations": [
            {**_expectation_document(v.expectation), "passed": v.passed, "observed": v.observed}
            for v in result.verdicts
        ],
        "timeline": {
            name: result.timeline.describe(name)
            for name in [
                *(app.application for app in result.scenario.applications),
                *(app.application for app in result.scenario.outside),
            ]
        },
    }
    if golden:
        document["golden"] = list(result.golden)
    return document


def _expectation_document(expectation: Expectation) -> dict[str, Any]:
    """What an expectation says, as fields (``expected`` is the same in words)."""
    if expectation.status is not None:
        subject, value = "status", expectation.status.value
    elif expectation.mode is not None:
        subject, value = "mode", expectation.mode.value
    else:
        assert expectation.event is not None
        subject, value = "event", expectation.event.value
    document: dict[str, Any] = {
        "expected": expectation.text,
        "line": expectation.line,
        "kind": expectation.kind.value,
        "application": expectation.application,
        "subject": subject,
        "value": value,
    }
    if expectation.time is not None:
        document["time"] = expectation.time
    if expectation.until is not None:
        document["until"] = expectation.until
    document["miss"] = expectation.miss
    return document


def write_timelines(results: Sequence[ScenarioResult], folder: Path) -> None:
    """Write each scenario's journal to ``folder``, one file per scenario file
    (named after its path: two scenarios never share one)."""
    folder.mkdir(parents=True, exist_ok=True)
    for r in results:
        name = golden_journals.result_file_name(r.scenario.path)
        (folder / name).write_text(golden_journals.journal_text(r.journal), encoding="utf-8")
