"""Running many scenarios: one after another on this process's reactor, or spread
over worker processes (``lca-emulator run --jobs N``) with results in file order.

Either way a Ctrl-C stops the scenario under way (its stub processes too) and the
results so far come back; the caller says the run was interrupted.
"""

from __future__ import annotations

import contextlib
import copyreg
import gc
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TextIO, cast

from lca_emulator.harness.model import Scenario
from lca_emulator.harness.runner import RunSettings, ScenarioResult, run_scenario
from lca_emulator.harness.site import RunMode, Site, open_stub_fork_server

if TYPE_CHECKING:
    from twisted.logger import LogEvent

    from lca_common.forkserver import EarlyServer
    from lca_emulator.lca.forkserver import ForkServer  # imported by wall-clock runs only


def _mapping_proxy(items: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(items)


def _pickle_mapping_proxy(proxy: MappingProxyType[Any, Any]) -> tuple[Any, ...]:
    return _mapping_proxy, (dict(proxy),)


# Scenarios and results are frozen dataclasses holding read-only mappings; workers
# receive and send them whole.
copyreg.pickle(MappingProxyType, _pickle_mapping_proxy)

ResultHandler = Callable[[int, ScenarioResult], None]
"""Called with each scenario's index (in the given order) and its result."""


def log_critical_only(stream: TextIO) -> None:
    """Begin logging as a run shows it: critical events (an unhandled error) to
    ``stream``, as Twisted writes them before logging begins, and nothing else.

    A run shows no other log event, so none is kept: until logging begins, Twisted
    keeps every event in a buffer for the observers to come (some 7 % of a scenario's
    time in virtual time, for the stubs' lines); and the stubs' events below critical
    are not even built (``lca_common.logs.drop_below``, 5 % more).  Python's warnings
    stay printed by Python, as before.
    """
    import warnings

    from twisted.logger import (
        FileLogObserver,
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        eventAsText,
        globalLogBeginner,
    )

    from lca_common.logs import drop_below

    def text(event: LogEvent) -> str:
        return eventAsText(event, includeTimestamp=False, includeSystem=False) + "\n"

    critical = FilteringLogObserver(
        FileLogObserver(stream, text), [LogLevelFilterPredicate(defaultLogLevel=LogLevel.critical)]
    )
    showwarning = warnings.showwarning
    # discardBuffer: its critical events were written already, and the rest never shows
    globalLogBeginner.beginLoggingTo([critical], discardBuffer=True, redirectStandardIO=False)
    warnings.showwarning = showwarning
    drop_below(LogLevel.critical)  # not even built (the stubs' decisions)


def run_serially(
    scenarios: Sequence[Scenario],
    settings: RunSettings,
    on_result: ResultHandler,
    *,
    early: EarlyServer | None = None,
) -> list[ScenarioResult]:
    """Run ``scenarios`` one after another on the global reactor (which this runs and
    stops); returns the results, fewer than asked when interrupted.  Logs critical
    events only (:func:`log_critical_only`), to standard error.

    With stub processes, ``early`` is the stub fork server forked already
    (:func:`~lca_emulator.harness.launchers.fork_stub_fork_server`): the run takes it
    over.  Whoever forked it discards it afterwards (nothing happens if it was taken).
    """
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred, ensureDeferred

    from lca_common.entrypoints import stop_reactor_on_interrupt

    log_critical_only(sys.stderr)

    results: list[ScenarioResult] = []
    current: list[Site] = []
    shared: list[ForkServer] = []  # one stub fork server for every scenario of the batch

    async def stop_all() -> None:
        if len(results) < len(scenarios) and current:
            await current[-1].close()
        for forks in shared:
            await forks.stop()

    def interrupted() -> Deferred[None] | None:
        """Ctrl-C: stop the applications of the scenario under way (child processes too)."""
        return ensureDeferred(stop_all())

    async def main() -> None:
        if settings.mode is RunMode.PROCESSES:
            shared.append(await open_stub_fork_server(reactor, early))
        for index, scenario in enumerate(scenarios):
            result = await run_scenario(
                scenario,
                reactor,
                mode=settings.mode,
                time_scale=settings.time_scale,
                transport=settings.transport,
                opened=current.append,
                forks=shared[0] if shared else None,
            )
            results.append(result)
            on_result(index, result)
        await stop_all()

    failures: list[Any] = []

    def finished(outcome: object) -> None:
        if outcome is not None:
            failures.append(outcome)
        if reactor.running:
            reactor.stop()

    reactor.addSystemEventTrigger("before", "shutdown", interrupted)
    stop_reactor_on_interrupt(reactor)
    reactor.callWhenRunning(lambda: ensureDeferred(main()).addBoth(finished))
    reactor.run()
    for failure in failures:
        failure.raiseException()
    return results


def _worker(chunk: list[tuple[int, Scenario]], settings: RunSettings, out: Connection) -> None:
    """A worker process: run its scenarios, sending back ``(index, result)`` as each
    ends, then None."""
    run_serially([s for _, s in chunk], settings, lambda i, r: out.send((chunk[i][0], r)))
    out.send(None)
    out.close()


def run_in_workers(
    scenarios: Sequence[Scenario], settings: RunSettings, jobs: int, on_result: ResultHandler
) -> list[ScenarioResult]:
    """Spread ``scenarios`` over ``jobs`` worker processes (scenario ``i`` goes to worker
    ``i % jobs``); ``on_result`` hears of each result in the given order.

    Returns the results in order; on Ctrl-C, the workers stop their scenario under way
    and the results before the first missing one come back.
    """
    jobs = max(1, min(jobs, len(scenarios)))
    context = multiprocessing.get_context(_start_method())
    workers: list[tuple[BaseProcess, Connection]] = []
    for worker in range(jobs):
        chunk = [(i, scenarios[i]) for i in range(worker, len(scenarios), jobs)]
        receive, send = context.Pipe(duplex=False)
        process: BaseProcess = context.Process(  # type: ignore[attr-defined]
            target=_worker, args=(chunk, settings, send), daemon=True
        )
        process.start()
        send.close()
        workers.append((process, receive))
    pending = {receive: process for process, receive in workers}
    try:
        return _collect_in_order(pending, lambda index: index, on_result)
    finally:
        for process, _ in workers:
            if process.is_alive():
                process.kill()


def _collect_in_order(
    pending: dict[Connection, BaseProcess],
    index_of: Callable[[int], int],
    on_result: Callable[[int, Any], None],
) -> list[Any]:
    """Receive ``(number, result)`` from each worker's channel until its None (or its
    end, if it died: its scenarios left are missing); ``on_result`` hears of result
    ``index_of(number)`` in order.  Returns them, up to the first missing one.  Ctrl-C
    is passed on to the workers, which stop their scenario under way."""
    found: dict[int, Any] = {}
    reported = 0
    while pending:
        try:
            ready = wait(list(pending))
        except KeyboardInterrupt:
            _interrupt(pending.values())
            continue
        for ready_end in ready:
            channel = cast(Connection, ready_end)
            try:
                message = channel.recv()
            except EOFError:
                message = None
            if message is None:
                pending.pop(channel).join()
                continue
            number, finished = message
            found[index_of(number)] = finished
        while reported in found:
            on_result(reported, found[reported])
            reported += 1
    return [found[i] for i in range(reported)]


def _start_method() -> str:
    """``fork`` while this process has no reactor (a worker then starts with every module
    and scenario already loaded, in a few milliseconds), else ``spawn``: a forked
    reactor would share its epoll instance and waker with the parent."""
    if "twisted.internet.reactor" in sys.modules or "fork" not in (
        multiprocessing.get_all_start_methods()
    ):
        return "spawn"
    return "fork"


def _interrupt(processes: Any) -> None:
    """Pass a Ctrl-C on to every worker still running (the terminal may have sent it
    to them already; a second one is harmless)."""
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGINT)


# -- --jobs N in virtual time: each worker reads its own share of the files ------------


@dataclass(frozen=True)
class ScenarioSummary:
    """What the parent of loading workers needs of a scenario one of them has loaded."""

    name: str
    duration: float
    wall_clock_problem: str | None

    @classmethod
    def of(cls, scenario: Scenario) -> ScenarioSummary:
        problem = scenario.wall_clock_error()
        return cls(scenario.name, scenario.duration, None if problem is None else str(problem))

    def wall_clock_error(self) -> str | None:
        """Why the scenario cannot run in virtual time, as :meth:`Scenario.wall_clock_error`
        says it."""
        return self.wall_clock_problem


Loader = Callable[[Path], Scenario]
"""Reads one scenario file (raises :class:`ConfigError` on a bad one)."""

Finisher = Callable[[ScenarioResult], Any]
"""Turns a worker's result into what it sends back (picklable; a rendered row, say)."""

_FileOutcome = tuple[int, bool | None, tuple[str, Any] | None]
"""A worker's word on one file: its number, whether its content makes it a scenario
(``None``: not asked), and ``("scenario", summary)``, ``("problem", text)`` or ``None``
(not a scenario: not loaded)."""


def _loading_worker(
    files: list[tuple[int, Path, bool, bool]],
    settings: RunSettings,
    load: Loader,
    finish: Finisher,
    channel: Connection,
) -> None:
    """A worker of :class:`LoadingWorkers`: load its files ``(number, path, classify,
    named)``, say how that went, and on the word go run the scenarios, sending each
    result as ``finish`` makes it, then ``None``."""
    from lca_common.entrypoints import collect_garbage_from_now
    from lca_common.yamlsource import ConfigError
    from lca_emulator.harness.discovery import is_scenario

    # a forked worker's collections would otherwise walk (and so copy) every object it
    # inherited: the modules its parent imported
    gc.freeze()

    try:
        outcomes: list[_FileOutcome] = []
        loaded: list[tuple[int, Scenario]] = []
        for number, path, classify, named in files:
            content = is_scenario(path) if classify else None
            if not (named or content):
                outcomes.append((number, content, None))
                continue
            try:
                scenario = load(path)
            except ConfigError as e:
                outcomes.append((number, content, ("problem", str(e))))
                continue
            loaded.append((number, scenario))
            outcomes.append((number, content, ("scenario", ScenarioSummary.of(scenario))))
        channel.send(outcomes)
        if not channel.recv():
            return
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        return  # interrupted, or the parent has gone: nothing to run
    collect_garbage_from_now()  # off while the console script started and read the files

    def send(index: int, result: ScenarioResult) -> None:
        channel.send((loaded[index][0], finish(result)))

    run_serially([scenario for _, scenario in loaded], settings, send)
    channel.send(None)
    channel.close()


class LoadingWorkers:
    """``--jobs N`` in virtual time: worker processes, started before any file is read,
    each load a share of the candidate files and then run its scenarios.

    :meth:`load` returns the scenarios (as :class:`ScenarioSummary`) and the problems in
    the order :func:`discover_scenarios` gives; :meth:`run` then has the workers run,
    and hands each result (as the workers' ``finish`` made it) over in that order.
    """

    def __init__(
        self,
        candidates: Sequence[tuple[Path, bool]],
        settings: RunSettings,
        jobs: int,
        load: Loader,
        finish: Finisher,
    ) -> None:
        self._candidates = list(candidates)
        self._paths = list(dict.fromkeys(path for path, _ in self._candidates))
        named = {path for path, is_named in self._candidates if is_named}
        in_folder = {path for path, is_named in self._candidates if not is_named}
        jobs = max(1, min(jobs, len(self._paths)))
        context = multiprocessing.get_context(_start_method())
        self._workers: list[tuple[BaseProcess, Connection]] = []
        for worker in range(jobs):
            files = [
                (number, path, path in in_folder, path in named)
                for number in range(worker, len(self._paths), jobs)
                for path in [self._paths[number]]
            ]
            parent_end, child_end = context.Pipe()
            process: BaseProcess = context.Process(  # type: ignore[attr-defined]
                target=_loading_worker,
                args=(files, settings, load, finish, child_end),
                daemon=True,
            )
            process.start()
            child_end.close()
            self._workers.append((process, parent_end))
        self._order: list[int] = []  # file numbers of the scenarios, in run order

    def load(self) -> tuple[list[ScenarioSummary], list[str]]:
        """Wait for every worker's loading; the scenarios and the problems, in order."""
        from lca_emulator.harness.discovery import select_scenarios

        outcomes: dict[int, _FileOutcome] = {}
        for _, channel in self._workers:
            try:
                for outcome in channel.recv():
                    outcomes[outcome[0]] = outcome
            except EOFError:
                raise RuntimeError("a --jobs worker died while loading its files") from None
        number_of = {path: number for number, path in enumerate(self._paths)}
        chosen = select_scenarios(self._candidates, lambda path: bool(outcomes[number_of[path]][1]))
        scenarios: list[ScenarioSummary] = []
        problems: list[str] = []
        for path in chosen:
            number, _, loaded = outcomes[number_of[path]]
            assert loaded is not None  # a file that counts was loaded
            kind, value = loaded
            if kind == "problem":
                problems.append(value)
            else:
                scenarios.append(value)
                self._order.append(number)
        return scenarios, problems

    def run(self, on_result: Callable[[int, Any], None]) -> list[Any]:
        """Have the workers run their scenarios; ``on_result`` hears of each (its index
        in :meth:`load`'s order) in order. Returns them, fewer when interrupted."""
        index_of = {number: index for index, number in enumerate(self._order)}
        pending: dict[Connection, BaseProcess] = {}
        for process, channel in self._workers:
            try:
                channel.send(True)
                pending[channel] = process
            except BrokenPipeError:
                pass  # the worker died: its scenarios are missing
        return _collect_in_order(pending, index_of.__getitem__, on_result)

    def close(self) -> None:
        """Stop the workers (told not to run, if they are still waiting for the word)."""
        for process, channel in self._workers:
            if process.is_alive():
                with contextlib.suppress(OSError):  # BrokenPipeError: it has gone
                    channel.send(False)
            channel.close()
        for process, _ in self._workers:
            process.join(timeout=1)
            if process.is_alive():
                process.kill()
                process.join()
