"""Expectations judged on a journal: each kind, exact and with a real-time tolerance."""

from __future__ import annotations

import pytest

from lca_common.protocol.messages import ApplicationStatus as S
from lca_common.protocol.messages import ExecutionMode as M
from lca_emulator.harness.model import Expectation, ExpectationKind
from lca_emulator.harness.verdict import Timeline, judge
from lca_emulator.journal import JournalEntry, JournalEvent
from lca_emulator.registry import ApplicationRecord

JOURNAL = [
    JournalEntry(0, "B", JournalEvent.CONFIGURED, S.STOPPED, M.UNKNOWN),
    JournalEntry(0, "B", JournalEvent.START_REQUESTED, S.START_PENDING, M.UNKNOWN),
    JournalEntry(0, "B", JournalEvent.STATUS, S.INITIALIZING, M.BACKUP),
    JournalEntry(60, "B", JournalEvent.STATUS, S.SERVICE_UNAVAILABLE, M.BACKUP),
    JournalEntry(120, "B", JournalEvent.SWITCHOVER_REFUSED, S.SERVICE_UNAVAILABLE, M.BACKUP),
]
FINAL = {"B": ApplicationRecord("B", S.SERVICE_UNAVAILABLE, M.BACKUP)}
K = ExpectationKind


def verdict(expectation: Expectation, tolerance: float = 0.0) -> tuple[bool, str]:
    """Judge one expectation against the journal above."""
    v = judge(expectation, Timeline(JOURNAL), FINAL, tolerance=tolerance)
    return v.passed, v.observed


@pytest.mark.parametrize(
    ("expectation", "passed", "observed"),
    [
        (Expectation("B", K.WITHIN, status=S.SERVICE_UNAVAILABLE, time=60), True,
         "SERVICE_UNAVAILABLE first at t=60"),
        (Expectation("B", K.WITHIN, status=S.SERVICE_UNAVAILABLE, time=59.5), False,
         "SERVICE_UNAVAILABLE first at t=60"),
        (Expectation("B", K.WITHIN, status=S.RUNNING, time=300), False,
         "no RUNNING (START_PENDING@0 -> INITIALIZING@0 -> SERVICE_UNAVAILABLE@60)"),
        (Expectation("B", K.AT, status=S.SERVICE_UNAVAILABLE, time=60), True,
         "SERVICE_UNAVAILABLE at t=60"),
        (Expectation("B", K.AT, status=S.SERVICE_UNAVAILABLE, time=61), False,
         "SERVICE_UNAVAILABLE at t=60"),
        (Expectation("B", K.NEVER, status=S.RUNNING), True, "never RUNNING"),
        (Expectation("B", K.NEVER, mode=M.PRIMARY), True, "never PRIMARY"),
        (Expectation("B", K.NEVER, status=S.STOPPED), True, "never STOPPED"),
        (Expectation("B", K.AT_END, mode=M.BACKUP), True, "mode BACKUP at end"),
        (Expectation("B", K.AT_END, status=S.RUNNING), False,
         "status SERVICE_UNAVAILABLE at end"),
        (Expectation("B", K.AT, event=JournalEvent.SWITCHOVER_REFUSED, time=120), True,
         "switchover-refused at t=120"),
        (Expectation("B", K.NEVER, event=JournalEvent.SWITCHOVER), True, "no switchover"),
        (Expectation("B", K.WITHIN, event=JournalEvent.SWITCHOVER_REFUSED, time=100), False,
         "switchover-refused at t=120"),
    ],
)  # fmt: skip
def test_judge(expectation: Expectation, passed: bool, observed: str) -> None:
    """Each kind of expectation passes or fails with a readable observation."""
    assert verdict(expectation) == (passed, observed)


def test_configured_state_is_not_a_change() -> None:
    """The STOPPED of a configured, not yet started application is not 'reported'."""
    assert Timeline(JOURNAL).first("B", "STOPPED") is None


def test_tolerance_in_real_time() -> None:
    """With a tolerance, ``at`` and ``within`` accept times off by up to it."""
    late = Expectation("B", K.AT, status=S.SERVICE_UNAVAILABLE, time=58)
    assert verdict(late, tolerance=2.5)[0]
    assert not verdict(late, tolerance=1.0)[0]
