"""Times judged on the wall clock at x0.1, with stub processes: a time one scenario second
off fails, the right one passes (the stated tolerance, not a slack of seconds).

Each stub counts its startup from the start request (``--epoch``), so its timeout ends
when the scenario says, however long its process took to come up.

The bounds themselves are checked without a clock (``tolerance``, ``judge``).  The runs
below are load-sensitive by nature: the right times pass only while the machine delays
a report by less than the 95 ms of wall clock the tolerance allows.  So only times well
after start-up are judged, timeouts at 15 and 16 s (1.5 s of wall clock in), each late
by a stub's timer and one message to the LCA.  Measured in this setup while the whole
suite ran under ``pytest -n auto`` and three busy processes shared the 2-core machine
(load average 3 to 6), over 40 runs with stub processes: 4 to 6 ms late at the median,
47 ms at worst; over 20 in-process: 2 ms, 6 ms at worst.  The expectations that fail
for being too early (``at: 14``, ``within: 14``, a timeout one second late) fail
whatever the load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from reactortest import reactor_test

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_emulator.harness.loader import load_scenario
from lca_emulator.harness.model import Expectation, ExpectationKind
from lca_emulator.harness.runner import RunSettings, Tolerance, run_scenario, tolerance
from lca_emulator.harness.site import RunMode
from lca_emulator.harness.verdict import Timeline, judge
from lca_emulator.journal import JournalEntry, JournalEvent

TIME_SCALE = 0.1

SCENARIO = """\
name: timeouts judged on the wall clock
duration: 18
applications:
  - application: SIPS_B
    mode: backup
    sip-port: 0
    options: {TServer: {backup-init-check: true, backup-init-check-timeout: 15}}
    components: {operational-info: hang}
  - application: SIPS_LATE
    mode: backup
    sip-port: 0
    options: {TServer: {backup-init-check: true, backup-init-check-timeout: 16}}
    components: {operational-info: hang}
expect:
  - {application: SIPS_B, status: SERVICE_UNAVAILABLE, at: 15}
  - {application: SIPS_B, status: SERVICE_UNAVAILABLE, within: 15}
  - {application: SIPS_B, status: SERVICE_UNAVAILABLE, at: 16}
  - {application: SIPS_B, status: SERVICE_UNAVAILABLE, at: 14}
  - {application: SIPS_B, status: SERVICE_UNAVAILABLE, within: 14}
  - {application: SIPS_LATE, status: SERVICE_UNAVAILABLE, at: 15}
  - {application: SIPS_LATE, status: SERVICE_UNAVAILABLE, within: 15}
  - {application: SIPS_LATE, status: SERVICE_UNAVAILABLE, at: 16}
"""

HOLDS = [True, True, False, False, False, False, False, True]
"""Which expectations hold: the right times only; one second off either way fails, and
so does a timeout one second late (SIPS_LATE)."""


def test_the_tolerance_at_x0_1_is_under_a_scenario_second() -> None:
    """At x0.1 a wall-clock run accepts less than a scenario second either way, and the
    two sides together make one second: one second off fails whichever way."""
    allowed = tolerance(RunMode.PROCESSES, TIME_SCALE)
    assert allowed == tolerance(RunMode.REAL_TIME, TIME_SCALE)
    assert 0 < allowed.early < allowed.late < 1.0
    assert allowed.late + allowed.early == pytest.approx(1.0)
    assert tolerance(RunMode.VIRTUAL, TIME_SCALE) == Tolerance()


def test_the_tolerance_is_stated() -> None:
    """The header and --json say how far times may be off, in scenario seconds."""
    processes = RunSettings(RunMode.PROCESSES, TIME_SCALE)
    assert processes.describe() == (
        "wall clock x0.1, stubs as processes, times within -0.05/+0.95 s"
    )
    assert processes.tolerance.to_json() == {"tolerance": 0.95, "tolerance_early": 0.05}
    assert RunSettings().describe() == "virtual time, in memory, stubs in-process"
    assert Tolerance().describe() == "times exact"


def _entered(time: float) -> Timeline:
    return Timeline(
        [
            JournalEntry(
                time, "B", JournalEvent.STATUS, ApplicationStatus.RUNNING, ExecutionMode.BACKUP
            )
        ]
    )


@pytest.mark.parametrize(
    ("observed", "holds"),
    [
        (5.0, True),
        (5.9, True),
        (6.0, False),
        (4.96, True),
        (4.9, False),
        (4.0, False),
    ],
)
def test_a_time_may_be_later_than_earlier(observed: float, holds: bool) -> None:
    """``at: 5`` judged as a run with stub processes at x0.1 judges it (0.95 late, 0.05
    early): a time is judged in [4.95, 5.95], so one second off fails either way."""
    allowed = tolerance(RunMode.PROCESSES, TIME_SCALE)
    at_5 = Expectation("B", ExpectationKind.AT, status=ApplicationStatus.RUNNING, time=5)
    v = judge(at_5, _entered(observed), {}, tolerance=allowed.late, early=allowed.early)
    assert v.passed is holds


@pytest.mark.slow
@pytest.mark.parametrize("mode", [RunMode.PROCESSES, RunMode.REAL_TIME])
@reactor_test
async def test_one_second_off_fails_and_the_right_time_passes(
    tmp_path: Path, mode: RunMode
) -> None:
    """At x0.1, expectations one scenario second off (or a timeout one second late) fail;
    the right ones pass, with stub processes as with stubs in-process."""
    from twisted.internet import reactor

    path = tmp_path / "scenario_wall_clock.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    scenario = load_scenario(path)
    result = await run_scenario(scenario, reactor, mode=mode, time_scale=TIME_SCALE)
    observed: list[Any] = [(v.expectation.text, v.observed) for v in result.verdicts]
    assert result.errors == ()
    assert [v.passed for v in result.verdicts] == HOLDS, observed
    assert result.tolerance == tolerance(mode, TIME_SCALE)
