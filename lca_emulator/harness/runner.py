"""Running one scenario: open a site, start its applications, play its events on
the clock, let it run for its duration, then judge its expectations."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from lca_common.protocol.messages import ErrorCode
from lca_common.yamlsource import ConfigError, format_number
from lca_emulator.harness.faults import LinkFaults
from lca_emulator.harness.loader import event_from_mapping
from lca_emulator.harness.model import EventAction, Scenario, ScenarioEvent
from lca_emulator.harness.network import Transport
from lca_emulator.harness.site import RunMode, Site, TooManyStepsError, open_stub_fork_server
from lca_emulator.harness.verdict import Timeline, Verdict, judge_all
from lca_emulator.journal import JournalEntry
from lca_emulator.layer import ManagementLayer
from lca_emulator.lca.control import ControlError
from lca_emulator.registry import ApplicationRecord
from lca_emulator.scs.server import SwitchoverRefusedError
from lca_emulator.sml import parse_sml_options

if TYPE_CHECKING:  # imported by wall-clock runs only
    from lca_emulator.lca.forkserver import ForkServer

log = Logger()

LATE_SLACK = 0.095
"""Wall-clock seconds an observed time may be late by in a wall-clock run.

Every delay of a run counts from the instant it refers to, on one wall clock (a stub
process's from its start request: ``--epoch``), so what is left is latency, and
latency only makes times late:
a stub's start (forked by the stub fork server) and registration, a report's way to
the LCA, timers and scheduling on a busy machine.  ``LATE_SLACK + EARLY_SLACK`` is
0.1 s: at x0.1 a time one scenario second off fails either way as long as nothing is
delayed by more than this.  Measured with ``bench/bench_timing.py``
(docs/architecture.md, "Wall-clock runs: one time origin").
"""

EARLY_SLACK = 0.005
"""Wall-clock seconds an observed time may be early by: nothing is observed before it
happens, so this only absorbs rounding."""


_LINK_FAULTS = frozenset({EventAction.CUT_LINK, EventAction.DELAY_LINK})


@dataclass(frozen=True)
class Tolerance:
    """How far (scenario seconds) an observed time may be from an expected one: up to
    ``late`` after it, ``early`` before it.  Both 0 in virtual time."""

    late: float = 0.0
    early: float = 0.0

    def describe(self) -> str:
        """For the run's header: ``times within -0.05/+0.95 s`` (``times exact``)."""
        if not (self.late or self.early):
            return "times exact"
        late, early = (format_number(round(t, 3)) for t in (self.late, self.early))
        return f"times within -{early}/+{late} s"

    def to_json(self) -> dict[str, float]:
        """For ``--json``: ``{"tolerance": 0.95, "tolerance_early": 0.05}`` (how late a
        time may be is the ``tolerance`` it has always been)."""
        return {"tolerance": round(self.late, 6), "tolerance_early": round(self.early, 6)}


def tolerance(mode: RunMode, time_scale: float) -> Tolerance:
    """How far observed times may be from expected ones in a run: exact in virtual time,
    else :data:`LATE_SLACK` / :data:`EARLY_SLACK` of wall clock in scenario seconds."""
    if mode is RunMode.VIRTUAL:
        return Tolerance()
    return Tolerance(late=LATE_SLACK / time_scale, early=EARLY_SLACK / time_scale)


@dataclass(frozen=True)
class ScenarioResult:
    """The outcome of one scenario run."""

    scenario: Scenario
    mode: RunMode
    verdicts: tuple[Verdict, ...]
    timeline: Timeline = field(repr=False, compare=False)
    """What the Management Layer observed: the run's journal, read per application."""
    errors: tuple[str, ...] = ()
    wall_seconds: float = 0.0
    notes: tuple[str, ...] = ()
    golden: tuple[str, ...] = ()
    """How the journal differs from its golden journal (``--golden``); () when it does not."""
    """What the stubs' servers would log about their options (a typo is ignored there)."""
    tolerance: Tolerance = Tolerance()
    """How far observed times could be from expected ones."""

    @property
    def journal(self) -> tuple[JournalEntry, ...]:
        """Every journal entry of the run, in order."""
        return tuple(self.timeline.entries)

    @property
    def passed(self) -> bool:
        """Every expectation held and nothing went wrong on the way."""
        return not self.errors and not self.golden and all(v.passed for v in self.verdicts)

    @property
    def failures(self) -> list[Verdict]:
        """The expectations that did not hold."""
        return [v for v in self.verdicts if not v.passed]


@dataclass(frozen=True)
class RunSettings:
    """How scenarios run: the clock and stubs (``mode``), the wall-clock scale, and what
    carries a virtual-time run's connections."""

    mode: RunMode = RunMode.VIRTUAL
    time_scale: float = 1.0
    transport: Transport = Transport.MEMORY

    @property
    def tolerance(self) -> Tolerance:
        """How far observed times may be from expected ones."""
        return tolerance(self.mode, self.time_scale)

    def describe(self) -> str:
        """For the run's header: ``virtual time, in memory, stubs in-process``, or
        ``wall clock x0.1, stubs as processes, times within -0.05/+0.95 s``."""
        if self.mode is RunMode.VIRTUAL:
            where = "in memory" if self.transport is Transport.MEMORY else "loopback TCP"
            return f"virtual time, {where}, stubs in-process"
        how = "stubs as processes" if self.mode is RunMode.PROCESSES else "stubs in-process"
        return f"wall clock x{self.time_scale:g}, {how}, {self.tolerance.describe()}"


async def run_scenario(
    scenario: Scenario,
    reactor: Any,
    *,
    mode: RunMode = RunMode.VIRTUAL,
    time_scale: float = 1.0,
    transport: Transport = Transport.MEMORY,
    opened: Callable[[Site], object] | None = None,
    forks: ForkServer | None = None,
) -> ScenarioResult:
    """Run ``scenario`` once and judge it; ``opened`` hears of the site once it listens
    (so an interrupted run can still stop its applications).

    With stub processes, ``forks`` starts them (a stub fork server that serves, shared
    by the scenarios of a run); without one, the scenario starts its own first.

    :raises ConfigError: it has outside applications and ``mode`` is virtual.
    """
    problem = scenario.wall_clock_error()
    if mode is RunMode.VIRTUAL and problem is not None:
        raise problem
    own = None
    if mode is RunMode.PROCESSES and forks is None:
        forks = own = await open_stub_fork_server(reactor)
    try:
        return await _run(scenario, reactor, mode, time_scale, transport, opened, forks)
    finally:
        if own is not None:
            await own.stop()


async def _run(
    scenario: Scenario,
    reactor: Any,
    mode: RunMode,
    time_scale: float,
    transport: Transport,
    opened: Callable[[Site], object] | None,
    forks: ForkServer | None,
) -> ScenarioResult:
    started = time.monotonic()
    site = Site(
        reactor,
        applications=scenario.applications,
        outside=scenario.outside,
        pairs=scenario.ha_pairs,
        mode=mode,
        time_scale=time_scale,
        heartbeat=scenario.heartbeat,
        transport=transport,
        scs_options=scenario.scs,
        hosts=scenario.hosts,
        link_faults=any(e.action in _LINK_FAULTS for e in scenario.events),
        forks=forks,
    )
    errors: list[str] = []
    await site.open()
    if opened is not None:
        opened(site)
    try:
        errors.extend(site.layer.start_all())
        for event in scenario.events:
            site.clock.callLater(
                event.at, play_event, site.layer, event, errors.append, site.faults
            )
        try:
            await site.run_until(scenario.duration)
        except TooManyStepsError as e:
            errors.append(str(e))
        final: dict[str, ApplicationRecord] = {r.name: r for r in site.layer.registry.records()}
        journal = tuple(site.layer.journal)
    finally:
        # In virtual time nothing outlives the run (no process, no socket but loopback
        # listeners): kill rather than stop gracefully, a third of a scenario's time.
        await site.close(abort=mode is RunMode.VIRTUAL)
    timeline = Timeline(journal)
    allowed = tolerance(mode, time_scale)
    verdicts = judge_all(
        scenario.expectations, timeline, final, tolerance=allowed.late, early=allowed.early
    )
    notes = tuple(
        f"{app.application}: {problem}"
        for app in scenario.applications
        for problem in (
            *app.tserver_options()[1],
            *parse_sml_options(app.options.get("sml", {}))[1],
        )
    )
    return ScenarioResult(
        scenario,
        mode,
        tuple(verdicts),
        timeline,
        tuple(errors),
        wall_seconds=time.monotonic() - started,
        notes=notes,
        tolerance=allowed,
    )


def _sml_notes(options: Mapping[str, Mapping[str, str]]) -> tuple[str, ...]:
    """What the LCA would log about the application's ``[sml]`` values."""
    return parse_sml_options(options.get("sml", {}))[1]


def play_event(
    layer: ManagementLayer,
    event: ScenarioEvent,
    error: Callable[[str], None],
    faults: LinkFaults | None = None,
) -> None:
    """Carry out one scenario event on a Management Layer (link faults on ``faults``);
    problems go to ``error``."""
    try:
        _play(layer, event, error, faults)
    except ControlError as e:
        what = f"{event.action.value} {event.application} at t={event.at:g}"
        error(f"line {event.line}: {what}: {e.text}")


def _play(
    layer: ManagementLayer,
    event: ScenarioEvent,
    error: Callable[[str], None],
    faults: LinkFaults | None,
) -> None:
    """Carry out ``event``; a request refused at once raises :class:`ControlError`, and
    one that fails later goes to ``error``."""
    control = layer.control
    name = event.application
    if event.action is EventAction.HOST_DOWN:
        layer.host_down(name)
    elif event.action is EventAction.HOST_UP:
        layer.host_up(name)
    elif event.action is EventAction.CUT_LCA_LINK:
        layer.cut_lca_link(name, event.seconds)
    elif event.action in (EventAction.CUT_LINK, EventAction.DELAY_LINK):
        _link_fault(layer, event, faults)
    elif event.action is EventAction.STOP:
        _report_failure(control.stop(name, graceful=event.graceful), error, event)
    elif event.action is EventAction.KILL:
        _report_failure(control.kill(name), error, event)
    elif event.action is EventAction.START:
        control.start(name)
    elif event.action is EventAction.RESTART:
        _report_failure(control.restart(name), error, event)
    elif event.action is EventAction.SWITCHOVER:
        _switchover(layer, event, error)
    elif event.action is EventAction.HANG:
        control.hang(name)
    else:
        section, option, value = event.section or "", event.option or "", event.value or ""
        control.set_option(name, section, option, value)  # read at the next start


def _link_fault(layer: ManagementLayer, event: ScenarioEvent, faults: LinkFaults | None) -> None:
    """``cut-link`` or ``delay-link``: only an application the LCA starts has its
    connection through the emulator (a wrapper or a relay)."""
    spec = layer.control.applications.get(event.application)
    if faults is None or spec is None or spec.external:
        why = "it is external: its connection does not pass through the emulator"
        if faults is None:
            why = "this emulator has no link faults"
        raise ControlError(ErrorCode.NOT_MANAGED, f"{event.application}: {why}")
    link = faults.link(event.application)
    if event.action is EventAction.CUT_LINK:
        assert event.how is not None
        link.cut(event.how, event.seconds)
    else:
        link.slow(event.latency_ms or 0.0, event.seconds)


def _switchover(layer: ManagementLayer, event: ScenarioEvent, error: Callable[[str], None]) -> None:
    """A manual switchover; a refusal is an outcome to expect, not a run error."""
    try:
        layer.scs.request_switchover(event.application)
    except KeyError:
        error(f"line {event.line}: switchover {event.application}: it is in no HA pair")
    except SwitchoverRefusedError as e:
        log.info("switchover refused: {reason}", reason=str(e))


def _report_failure(d: Deferred[Any], error: Callable[[str], None], event: ScenarioEvent) -> None:
    def failed(failure: Any) -> None:
        message = getattr(failure.value, "text", None) or failure.getErrorMessage()
        error(f"line {event.line}: {event.action.value} {event.application}: {message}")

    d.addErrback(failed)


def play_requested_event(
    layer: ManagementLayer, event: Mapping[str, object], faults: LinkFaults | None = None
) -> tuple[ErrorCode, str] | None:
    """``RequestEvent`` on a running ``serve``: validate ``event`` as a scenario's event
    (without ``at``: it plays now) and play it; returns what went wrong (the code of the
    ``EventError`` and its text), or None."""
    names = list(layer.control.applications)
    hosts = [host.name for host in layer.hosts if host.name is not None]
    try:
        parsed = event_from_mapping(event, names, hosts)
    except ConfigError as e:
        where = f"event.{e.key_path}" if e.key_path else "event"
        return ErrorCode.INVALID_FIELD, f"{where}: {e.problem}"
    errors: list[str] = []
    try:
        _play(layer, parsed, errors.append, faults)
    except ControlError as e:
        return e.code, f"{parsed.action.value} {parsed.application}: {e.text}"
    if errors:  # a failure the request's own Deferred already reported
        return ErrorCode.INVALID_FIELD, errors[0].removeprefix("line 1: ")
    return None
