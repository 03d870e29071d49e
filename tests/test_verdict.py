"""Expectations judged on a journal: every kind on statuses, modes and journal events,
each with a case that must pass and a case that must fail, exactly (virtual time) and
with a tolerance (wall clock)."""

from __future__ import annotations

import dataclasses

import pytest

from lca_common.protocol.messages import ApplicationStatus as S
from lca_common.protocol.messages import ExecutionMode as M
from lca_emulator.harness.model import Expectation, ExpectationKind
from lca_emulator.harness.verdict import Timeline, judge
from lca_emulator.journal import JournalEntry
from lca_emulator.journal import JournalEvent as E
from lca_emulator.registry import ApplicationRecord

JOURNAL = [
    JournalEntry(0, "B", E.CONFIGURED, S.STOPPED, M.UNKNOWN),
    JournalEntry(0, "B", E.START_REQUESTED, S.START_PENDING, M.UNKNOWN),
    JournalEntry(0, "B", E.STATUS, S.INITIALIZING, M.BACKUP),
    JournalEntry(60, "B", E.STATUS, S.SERVICE_UNAVAILABLE, M.BACKUP),
    JournalEntry(64, "B", E.HUNG, S.UNKNOWN, M.BACKUP),
    JournalEntry(70, "B", E.RECOVERED, S.SERVICE_UNAVAILABLE, M.BACKUP),
    JournalEntry(90, "B", E.HUNG, S.UNKNOWN, M.BACKUP),
    JournalEntry(95, "B", E.RECOVERED, S.SERVICE_UNAVAILABLE, M.BACKUP),
    JournalEntry(100, "B", E.MODE, S.SERVICE_UNAVAILABLE, M.PRIMARY),
    JournalEntry(120, "B", E.SWITCHOVER_REFUSED, S.SERVICE_UNAVAILABLE, M.PRIMARY),
]
"""B: INITIALIZING at 0, SERVICE_UNAVAILABLE at 60, hung at 64 and 90 (UNKNOWN), back to
SERVICE_UNAVAILABLE at 70 and 95, PRIMARY at 100, a refusal at 120."""
FINAL = {"B": ApplicationRecord("B", S.SERVICE_UNAVAILABLE, M.PRIMARY)}
K = ExpectationKind
SU = S.SERVICE_UNAVAILABLE


def verdict(expectation: Expectation, tolerance: float = 0.0) -> tuple[bool, str]:
    """Judge one expectation against the journal above."""
    v = judge(expectation, Timeline(JOURNAL), FINAL, tolerance=tolerance)
    return v.passed, v.observed


def status(
    kind: K, time: float | None = None, until: float | None = None, s: S = SU
) -> Expectation:
    return Expectation("B", kind, status=s, time=time, until=until)


def mode(
    kind: K, time: float | None = None, until: float | None = None, m: M = M.PRIMARY
) -> Expectation:
    return Expectation("B", kind, mode=m, time=time, until=until)


def event(
    kind: K, time: float | None = None, until: float | None = None, e: E = E.HUNG
) -> Expectation:
    return Expectation("B", kind, event=e, time=time, until=until)


CASES = [
    # within: first seen by then
    (status(K.WITHIN, 60), True, "SERVICE_UNAVAILABLE first at t=60"),
    (status(K.WITHIN, 59.5), False, "SERVICE_UNAVAILABLE first at t=60"),
    (
        status(K.WITHIN, 300, s=S.RUNNING),
        False,
        "no RUNNING (START_PENDING@0 -> INITIALIZING@0 -> SERVICE_UNAVAILABLE@60 -> UNKNOWN@64 "
        "-> SERVICE_UNAVAILABLE@70 -> UNKNOWN@90 -> SERVICE_UNAVAILABLE@95)",
    ),
    (mode(K.WITHIN, 100), True, "PRIMARY first at t=100"),
    (mode(K.WITHIN, 99), False, "PRIMARY first at t=100"),
    (event(K.WITHIN, 64), True, "hung first at t=64"),
    (event(K.WITHIN, 63), False, "hung first at t=64"),
    # at: seen then (earlier sightings allowed)
    (status(K.AT, 70), True, "SERVICE_UNAVAILABLE at t=70"),
    (status(K.AT, 61), False, "SERVICE_UNAVAILABLE at t=60, t=70, t=95"),
    (mode(K.AT, 100), True, "PRIMARY at t=100"),
    (mode(K.AT, 101), False, "PRIMARY at t=100"),
    (event(K.AT, 90), True, "hung at t=90"),
    (event(K.AT, 91), False, "hung at t=64, t=90"),
    (event(K.AT, 120, e=E.SWITCHOVER_REFUSED), True, "switchover-refused at t=120"),
    # first-at: first seen exactly then, nothing earlier
    (status(K.FIRST_AT, 60), True, "SERVICE_UNAVAILABLE first at t=60"),
    (status(K.FIRST_AT, 70), False, "SERVICE_UNAVAILABLE first at t=60"),
    (mode(K.FIRST_AT, 100), True, "PRIMARY first at t=100"),
    (mode(K.FIRST_AT, 0, m=M.BACKUP), True, "BACKUP first at t=0"),
    (mode(K.FIRST_AT, 50, m=M.BACKUP), False, "BACKUP first at t=0"),
    (event(K.FIRST_AT, 64), True, "hung first at t=64"),
    (event(K.FIRST_AT, 90), False, "hung first at t=64"),
    # between: first seen inside the window
    (status(K.BETWEEN, 50, 65), True, "SERVICE_UNAVAILABLE first at t=60"),
    (status(K.BETWEEN, 65, 100), False, "SERVICE_UNAVAILABLE first at t=60"),
    (status(K.BETWEEN, 0, 59), False, "SERVICE_UNAVAILABLE first at t=60"),
    (mode(K.BETWEEN, 100, 100), True, "PRIMARY first at t=100"),
    (mode(K.BETWEEN, 0, 99), False, "PRIMARY first at t=100"),
    (event(K.BETWEEN, 60, 66), True, "hung first at t=64"),
    (event(K.BETWEEN, 65, 95), False, "hung first at t=64"),
    # after: seen, and never before then
    (status(K.AFTER, 60), True, "SERVICE_UNAVAILABLE first at t=60"),
    (status(K.AFTER, 61), False, "SERVICE_UNAVAILABLE first at t=60"),
    (mode(K.AFTER, 99), True, "PRIMARY first at t=100"),
    (mode(K.AFTER, 101), False, "PRIMARY first at t=100"),
    (event(K.AFTER, 60), True, "hung first at t=64"),
    (event(K.AFTER, 65), False, "hung first at t=64"),
    (event(K.AFTER, 0, e=E.KILLED), False, "no killed"),
    # never
    (status(K.NEVER, s=S.RUNNING), True, "never RUNNING"),
    (status(K.NEVER, s=S.UNKNOWN), False, "UNKNOWN at t=64"),
    (mode(K.NEVER, m=M.EXITING), True, "never EXITING"),
    (mode(K.NEVER), False, "PRIMARY at t=100"),
    (event(K.NEVER, e=E.SWITCHOVER), True, "no switchover"),
    (event(K.NEVER), False, "hung at t=64, t=90"),
    # at the end
    (mode(K.AT_END), True, "mode PRIMARY at end"),
    (mode(K.AT_END, m=M.BACKUP), False, "mode PRIMARY at end"),
    (status(K.AT_END), True, "status SERVICE_UNAVAILABLE at end"),
    (status(K.AT_END, s=S.RUNNING), False, "status SERVICE_UNAVAILABLE at end"),
]


@pytest.mark.parametrize(("expectation", "passed", "observed"), CASES, ids=lambda x: None)
def test_judge_on_the_virtual_clock(expectation: Expectation, passed: bool, observed: str) -> None:
    """Each kind passes or fails exactly, with a readable observation."""
    assert verdict(expectation) == (passed, observed)


def test_every_kind_and_subject_has_a_case_that_must_fail() -> None:
    """The table above holds a failing case for every kind on every subject it applies to."""
    failing = {
        (e.kind, "status" if e.status else "mode" if e.mode else "event")
        for e, passed, _ in CASES
        if not passed
    }
    for kind in K:
        subjects = ["status", "mode"] if kind is K.AT_END else ["status", "mode", "event"]
        for subject in subjects:
            assert (kind, subject) in failing, (kind, subject)


WALL_CLOCK = [
    # (expectation, passes with tolerance 1, passes exactly)
    (status(K.AT, 59.2), True, False),
    (status(K.AT, 58.9), False, False),
    (status(K.WITHIN, 59.2), True, False),
    (status(K.WITHIN, 58.9), False, False),
    (status(K.FIRST_AT, 60.8), True, False),
    (status(K.FIRST_AT, 61.1), False, False),
    (status(K.BETWEEN, 60.9, 80), True, False),
    (status(K.BETWEEN, 61.1, 80), False, False),
    (status(K.BETWEEN, 40, 59.1), True, False),
    (status(K.BETWEEN, 40, 58.9), False, False),
    (event(K.AFTER, 64.9), True, False),
    (event(K.AFTER, 65.1), False, False),
    (mode(K.FIRST_AT, 99.5), True, False),
    (mode(K.FIRST_AT, 98.5), False, False),
]


@pytest.mark.parametrize(("expectation", "tolerant", "exact"), WALL_CLOCK, ids=lambda x: None)
def test_judge_on_the_wall_clock(expectation: Expectation, tolerant: bool, exact: bool) -> None:
    """With a tolerance of 1 s a time off by less passes and one off by more fails."""
    assert verdict(expectation, tolerance=1.0)[0] is tolerant
    assert verdict(expectation)[0] is exact


def test_configured_state_is_not_a_change() -> None:
    """The STOPPED of a configured, not yet started application is not 'reported'."""
    assert Timeline(JOURNAL).first("B", "STOPPED") is None


def test_between_needs_its_times_in_order() -> None:
    """An expectation whose window ends before it starts cannot be built."""
    with pytest.raises(ValueError, match="first time first"):
        status(K.BETWEEN, 80, 60)


@pytest.mark.parametrize(("expectation", "passed", "observed"), CASES, ids=lambda x: None)
def test_miss_turns_every_verdict_around(
    expectation: Expectation, passed: bool, observed: str
) -> None:
    """``miss: true`` holds exactly when the expectation itself does not."""
    turned = dataclasses.replace(expectation, miss=True, text="")
    assert verdict(turned) == (not passed, observed)
    assert turned.text.endswith("(must miss)")
