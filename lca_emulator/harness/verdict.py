"""Checking expectations against what the emulator observed (its journal).

An expectation is judged on the statuses and modes the Management Layer
recorded, never on what a stub believes it reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_common.yamlsource import format_number
from lca_emulator.harness.model import Expectation, ExpectationKind
from lca_emulator.journal import JournalEntry, JournalEvent
from lca_emulator.registry import ApplicationRecord


def _time(seconds: float) -> str:
    """A time for reports: whole seconds as ``60``, wall-clock times to the millisecond."""
    return format_number(round(seconds, 3))


DEFAULT_TOLERANCE = 0.0
"""How far (scenario seconds) an ``at`` may be off; 0 in virtual time."""


@dataclass(frozen=True)
class Change:
    """The status or mode of an application became ``value`` at ``time``."""

    time: float
    value: str


class Timeline:
    """Per application, every status and mode it entered, in order, from a journal.

    The ``configured`` entry (the state before the run starts) is not a change.
    """

    def __init__(self, journal: Iterable[JournalEntry]) -> None:
        self.entries = list(journal)
        self._status: dict[str, list[Change]] = {}
        self._mode: dict[str, list[Change]] = {}
        for entry in self.entries:
            if entry.event is JournalEvent.CONFIGURED:
                continue
            self._append(self._status, entry.application, entry.time, entry.status.value)
            self._append(self._mode, entry.application, entry.time, entry.mode.value)

    @staticmethod
    def _append(table: dict[str, list[Change]], name: str, time: float, value: str) -> None:
        changes = table.setdefault(name, [])
        if not changes or changes[-1].value != value:
            changes.append(Change(time, value))

    def occurrences(self, application: str, event: JournalEvent) -> list[Change]:
        """Every journal entry of kind ``event`` for ``application``."""
        return [
            Change(e.time, e.event.value)
            for e in self.entries
            if e.application == application and e.event is event
        ]

    def changes(self, application: str, *, mode: bool = False) -> list[Change]:
        """Every status (or mode) ``application`` entered, in order."""
        return list((self._mode if mode else self._status).get(application, []))

    def first(self, application: str, value: str, *, mode: bool = False) -> Change | None:
        """When ``application`` first entered ``value``, if it did."""
        return next((c for c in self.changes(application, mode=mode) if c.value == value), None)

    def describe(self, application: str) -> str:
        """A one-line summary: ``INITIALIZING@0 -> SERVICE_UNAVAILABLE@60``."""
        return (
            " -> ".join(f"{c.value}@{_time(c.time)}" for c in self.changes(application))
            or "(nothing observed)"
        )

    def lines(self, application: str) -> list[str]:
        """The journal of ``application`` as readable lines."""
        return [
            f"t={_time(e.time):>7}  {e.event.value:<18} {e.status.value:<19} "
            f"{e.mode.value:<8} {e.detail}".rstrip()
            for e in self.entries
            if e.application == application
        ]


@dataclass(frozen=True)
class Verdict:
    """One expectation's outcome: what was expected, what was observed, and whether it held."""

    expectation: Expectation
    passed: bool
    observed: str


def judge(
    expectation: Expectation,
    timeline: Timeline,
    final: dict[str, ApplicationRecord],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    early: float | None = None,
) -> Verdict:
    """Judge one expectation against a run's timeline and its final records (an expectation
    marked ``miss`` holds when the judgement fails).  A time may be up to ``tolerance``
    late, or ``early`` (default: ``tolerance``) early."""
    early = tolerance if early is None else early
    verdict = _judge(expectation, timeline, final, tolerance, early)
    if expectation.miss:
        return Verdict(expectation, not verdict.passed, verdict.observed)
    return verdict


def _judge(
    expectation: Expectation,
    timeline: Timeline,
    final: dict[str, ApplicationRecord],
    tolerance: float,
    early: float,
) -> Verdict:
    if expectation.event is not None:
        return _judge_events(expectation, expectation.event, timeline, tolerance, early)
    app = expectation.application
    is_mode = expectation.mode is not None
    wanted: str = (expectation.mode or expectation.status or ApplicationStatus.UNKNOWN).value
    what = "mode" if is_mode else "status"
    kind = expectation.kind

    if kind is ExpectationKind.AT_END:
        record = final.get(app)
        value: ApplicationStatus | ExecutionMode | None = None
        if record is not None:
            value = record.mode if is_mode else record.status
        observed = f"{what} {value.value if value else 'unknown'} at end"
        return Verdict(expectation, value is not None and value.value == wanted, observed)

    entered = [c for c in timeline.changes(app, mode=is_mode) if c.value == wanted]
    if kind is ExpectationKind.NEVER:
        if not entered:
            return Verdict(expectation, True, f"never {wanted}")
        return Verdict(expectation, False, f"{wanted} at t={_time(entered[0].time)}")
    times = [c.time for c in entered]
    return _judge_times(expectation, wanted, times, tolerance, early, timeline)


def _judge_events(
    expectation: Expectation,
    event: JournalEvent,
    timeline: Timeline,
    tolerance: float,
    early: float,
) -> Verdict:
    """A journal event (such as ``switchover-refused``) happened as expected, or never did."""
    seen = [c.time for c in timeline.occurrences(expectation.application, event)]
    if expectation.kind is ExpectationKind.NEVER:
        observed = f"{event.value} at {_times(seen)}" if seen else f"no {event.value}"
        return Verdict(expectation, not seen, observed)
    return _judge_times(expectation, event.value, seen, tolerance, early, None)


def _judge_times(
    expectation: Expectation,
    wanted: str,
    times: list[float],
    tolerance: float,
    early: float,
    timeline: Timeline | None,
) -> Verdict:
    """A timed expectation against every time ``wanted`` was seen (in order)."""
    if not times:
        context = f" ({timeline.describe(expectation.application)})" if timeline else ""
        return Verdict(expectation, False, f"no {wanted}{context}")
    kind, first = expectation.kind, times[0]
    assert expectation.time is not None
    earliest = expectation.time - early
    latest = expectation.time + tolerance
    if kind is ExpectationKind.AT:
        hits = [t for t in times if earliest <= t <= latest]
        shown = _time(hits[0]) if hits else None
        if shown is not None:
            return Verdict(expectation, True, f"{wanted} at t={shown}")
        return Verdict(expectation, False, f"{wanted} at {_times(times)}")
    if kind is ExpectationKind.WITHIN:
        passed = first <= latest
    elif kind is ExpectationKind.FIRST_AT:
        passed = earliest <= first <= latest
    elif kind is ExpectationKind.AFTER:
        passed = first >= earliest
    else:
        assert expectation.until is not None
        passed = earliest <= first <= expectation.until + tolerance
    return Verdict(expectation, passed, f"{wanted} first at t={_time(first)}")


def _times(times: list[float]) -> str:
    return ", ".join(f"t={_time(t)}" for t in times)


def judge_all(
    expectations: Sequence[Expectation],
    timeline: Timeline,
    final: dict[str, ApplicationRecord],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    early: float | None = None,
) -> list[Verdict]:
    """Judge every expectation (all of them, so a report shows every miss)."""
    return [judge(e, timeline, final, tolerance=tolerance, early=early) for e in expectations]
