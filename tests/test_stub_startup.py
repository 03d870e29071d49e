"""The stub's startup on a virtual clock: its components, and the backup initialization
check as a state machine (every transition, the timer's life, late inputs, the tie)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
from twisted.internet.task import Clock

from lca_common.protocol.messages import ApplicationStatus
from sipserver_stub.fixture import Component, ComponentPlan, ComponentResult
from sipserver_stub.startup import BackupInitCheck, CheckCore, CheckInputs, ComponentStartup

RUNNING = ApplicationStatus.RUNNING
UNAVAILABLE = ApplicationStatus.SERVICE_UNAVAILABLE
OK, FAIL, HANG = ComponentResult.OK, ComponentResult.FAIL, ComponentResult.HANG
T_CONTROLLER = Component.T_CONTROLLER
SMART_PROXY = Component.SMART_PROXY
INTERACTION_PROXY = Component.INTERACTION_PROXY
OPERATIONAL_INFO = Component.OPERATIONAL_INFO


@dataclass
class Verdicts:
    """Every verdict the check gave, with the clock's time."""

    clock: Clock
    given: list[tuple[float, ApplicationStatus, str]] = field(default_factory=list)

    def __call__(self, status: ApplicationStatus, reason: str) -> None:
        self.given.append((self.clock.seconds(), status, reason))

    @property
    def statuses(self) -> list[tuple[float, ApplicationStatus]]:
        """The verdicts without their reasons."""
        return [(time, status) for time, status, _ in self.given]


@dataclass
class Outcomes:
    """Every component outcome ComponentStartup announced, with the clock's time."""

    clock: Clock
    seen: list[tuple[float, str, Component]] = field(default_factory=list)

    def completed(self, component: Component) -> None:
        self.seen.append((self.clock.seconds(), "completed", component))

    def failed(self, component: Component) -> None:
        self.seen.append((self.clock.seconds(), "failed", component))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verdicts(clock: Clock) -> Verdicts:
    return Verdicts(clock)


def new_check(clock: Clock, verdicts: Verdicts, timeout: float = 60) -> CheckInputs:
    return BackupInitCheck(CheckCore(clock, timeout, verdicts))


def started_check(clock: Clock, verdicts: Verdicts, timeout: float = 60) -> CheckInputs:
    check = new_check(clock, verdicts, timeout)
    check.begin()
    return check


def plans(**results: ComponentPlan) -> Mapping[Component, ComponentPlan]:
    """Every component completes at once unless named (``t_controller=...``)."""
    every = {component: ComponentPlan(OK) for component in Component}
    every.update({Component(name.replace("_", "-")): plan for name, plan in results.items()})
    return every


def no_failure(component: Component) -> None:
    pytest.fail(f"{component} was not meant to fail")


def complete_all(check: CheckInputs, *, but: Component | None = None) -> None:
    for component in Component:
        if component is not but:
            check.component_completed(component)


# --- ComponentStartup ----------------------------------------------------------------------


def test_components_without_delay_end_during_start(clock: Clock) -> None:
    """Components with after 0 end inside start(), in the documented order, scheduling nothing."""
    outcomes = Outcomes(clock)
    startup = ComponentStartup(
        clock, plans(smart_proxy=ComponentPlan(FAIL)), outcomes.completed, outcomes.failed
    )
    startup.start()
    assert outcomes.seen == [
        (0.0, "completed", T_CONTROLLER),
        (0.0, "failed", SMART_PROXY),
        (0.0, "completed", INTERACTION_PROXY),
        (0.0, "completed", OPERATIONAL_INFO),
    ]
    assert clock.getDelayedCalls() == []


def test_components_end_after_their_delay(clock: Clock) -> None:
    """A delayed component ends exactly ``after`` seconds from start, with its result."""
    outcomes = Outcomes(clock)
    startup = ComponentStartup(
        clock,
        plans(t_controller=ComponentPlan(OK, 3), interaction_proxy=ComponentPlan(FAIL, 7.5)),
        outcomes.completed,
        outcomes.failed,
    )
    startup.start()
    outcomes.seen.clear()
    clock.advance(2.999)
    assert outcomes.seen == []
    clock.advance(0.001)
    assert outcomes.seen == [(3.0, "completed", T_CONTROLLER)]
    clock.advance(4.5)
    assert outcomes.seen[-1] == (7.5, "failed", INTERACTION_PROXY)
    assert clock.getDelayedCalls() == []


def test_hanging_component_never_ends(clock: Clock) -> None:
    """A hanging component schedules nothing and is never announced."""
    outcomes = Outcomes(clock)
    startup = ComponentStartup(
        clock, plans(operational_info=ComponentPlan(HANG, 5)), outcomes.completed, outcomes.failed
    )
    startup.start()
    clock.advance(10_000)
    assert OPERATIONAL_INFO not in [component for _, _, component in outcomes.seen]
    assert len(outcomes.seen) == 3
    assert clock.getDelayedCalls() == []


def test_stop_cancels_pending_initializations(clock: Clock) -> None:
    """stop() cancels every initialization still under way: nothing is announced after it."""
    outcomes = Outcomes(clock)
    startup = ComponentStartup(
        clock,
        plans(smart_proxy=ComponentPlan(OK, 5), t_controller=ComponentPlan(FAIL, 8)),
        outcomes.completed,
        outcomes.failed,
    )
    startup.start()
    clock.advance(5)
    startup.stop()
    assert clock.getDelayedCalls() == []
    clock.advance(100)
    assert [c for _, _, c in outcomes.seen] == [INTERACTION_PROXY, OPERATIONAL_INFO, SMART_PROXY]
    startup.stop()  # a second stop is harmless


def test_a_late_start_keeps_the_delays_counted_from_the_start_request(clock: Clock) -> None:
    """start(elapsed): delays count from the start request; those already over end at once,
    in the order they would have, the others when they were due."""
    outcomes = Outcomes(clock)
    startup = ComponentStartup(
        clock,
        plans(
            t_controller=ComponentPlan(FAIL, 6),
            smart_proxy=ComponentPlan(OK, 4),
            interaction_proxy=ComponentPlan(OK, 9),
        ),
        outcomes.completed,
        outcomes.failed,
    )
    startup.start(elapsed=7)
    assert outcomes.seen == [
        (0.0, "completed", OPERATIONAL_INFO),
        (0.0, "completed", SMART_PROXY),
        (0.0, "failed", T_CONTROLLER),
    ]
    clock.advance(1.999)
    assert len(outcomes.seen) == 3
    clock.advance(0.001)
    assert outcomes.seen[-1] == (2.0, "completed", INTERACTION_PROXY)
    assert clock.getDelayedCalls() == []


# --- BackupInitCheck: idle -------------------------------------------------------------------


def test_idle_schedules_nothing(clock: Clock, verdicts: Verdicts) -> None:
    """A check that has not begun has no timer and gives no verdict."""
    new_check(clock, verdicts)
    clock.advance(1000)
    assert clock.getDelayedCalls() == []
    assert verdicts.given == []


def test_idle_ignores_component_outcomes(clock: Clock, verdicts: Verdicts) -> None:
    """Outcomes before begin() are ignored: the check counts only what happens after it starts."""
    check = new_check(clock, verdicts)
    complete_all(check)
    check.component_failed(T_CONTROLLER)
    assert verdicts.given == []
    check.begin()
    clock.advance(60)
    assert verdicts.statuses == [(60.0, UNAVAILABLE)]


def test_abandon_before_begin(clock: Clock, verdicts: Verdicts) -> None:
    """Abandoning a check that never began gives no verdict and leaves no timer."""
    check = new_check(clock, verdicts)
    check.abandon()
    check.component_failed(SMART_PROXY)
    clock.advance(100)
    assert verdicts.given == []
    assert clock.getDelayedCalls() == []


# --- BackupInitCheck: checking -> passed -----------------------------------------------------


def test_begin_starts_the_timeout(clock: Clock, verdicts: Verdicts) -> None:
    """begin() schedules exactly one timer, due at the timeout."""
    started_check(clock, verdicts, timeout=45)
    (timer,) = clock.getDelayedCalls()
    assert timer.getTime() == 45.0


def test_all_completed_is_running(clock: Clock, verdicts: Verdicts) -> None:
    """RUNNING as soon as the last of the four components completes; the timer is cancelled."""
    check = started_check(clock, verdicts)
    complete_all(check, but=OPERATIONAL_INFO)
    clock.advance(12)
    assert verdicts.given == []
    check.component_completed(OPERATIONAL_INFO)
    assert verdicts.given == [(12.0, RUNNING, "all internal components initialized")]
    assert clock.getDelayedCalls() == []


def test_a_component_counts_once(clock: Clock, verdicts: Verdicts) -> None:
    """The same component completing twice does not stand in for another one."""
    check = started_check(clock, verdicts)
    for _ in range(4):
        check.component_completed(T_CONTROLLER)
    check.component_completed(SMART_PROXY)
    check.component_completed(INTERACTION_PROXY)
    assert verdicts.given == []
    check.component_completed(OPERATIONAL_INFO)
    assert verdicts.statuses == [(0.0, RUNNING)]


def test_running_ignores_late_inputs(clock: Clock, verdicts: Verdicts) -> None:
    """After RUNNING, a failure, a port problem or a repeat completion changes nothing."""
    check = started_check(clock, verdicts)
    complete_all(check)
    check.component_failed(SMART_PROXY)
    check.port_unavailable("taken")
    check.component_completed(SMART_PROXY)
    clock.advance(3600)
    assert verdicts.statuses == [(0.0, RUNNING)]


# --- BackupInitCheck: checking -> failed -----------------------------------------------------


@pytest.mark.parametrize("component", list(Component))
def test_a_failure_is_service_unavailable(
    clock: Clock, verdicts: Verdicts, component: Component
) -> None:
    """Any one failing component gives SERVICE_UNAVAILABLE at once, naming it; timer cancelled."""
    check = started_check(clock, verdicts)
    clock.advance(5)
    check.component_failed(component)
    assert verdicts.given == [(5.0, UNAVAILABLE, f"{component.label} failed to initialize")]
    assert clock.getDelayedCalls() == []


def test_port_unavailable_is_service_unavailable(clock: Clock, verdicts: Verdicts) -> None:
    """A SIP port that cannot be opened gives SERVICE_UNAVAILABLE at once, with the reason."""
    check = started_check(clock, verdicts)
    check.port_unavailable("cannot open SIP port 127.0.0.1:5060: in use")
    assert verdicts.given == [
        (0.0, UNAVAILABLE, "SIP port check failed: cannot open SIP port 127.0.0.1:5060: in use")
    ]
    assert clock.getDelayedCalls() == []


def test_timeout_is_service_unavailable(clock: Clock, verdicts: Verdicts) -> None:
    """At the timeout with components pending: SERVICE_UNAVAILABLE, naming the pending ones."""
    check = started_check(clock, verdicts, timeout=15)
    check.component_completed(T_CONTROLLER)
    check.component_completed(INTERACTION_PROXY)
    clock.advance(14.999)
    assert verdicts.given == []
    clock.advance(0.001)
    assert verdicts.given == [
        (
            15.0,
            UNAVAILABLE,
            "not initialized within backup-init-check-timeout (15 s): "
            "Smart Proxy, Operational Information thread",
        )
    ]
    assert clock.getDelayedCalls() == []


@pytest.mark.parametrize(("elapsed", "due"), [(10.0, 5.0), (15.0, 0.0), (40.0, 0.0)])
def test_timeout_counts_from_the_start_request(
    clock: Clock, verdicts: Verdicts, elapsed: float, due: float
) -> None:
    """A check that begins ``elapsed`` seconds after the start request times out at
    ``timeout - elapsed`` from now, or at once if that is over."""
    check = BackupInitCheck(CheckCore(clock, 15, verdicts, elapsed=elapsed))
    check.begin()
    if due > 0:
        clock.advance(due - 0.001)
        assert verdicts.given == []
    clock.advance(due - clock.seconds())
    [(when, status)] = verdicts.statuses
    assert status is UNAVAILABLE
    assert when == pytest.approx(due)


def test_failed_ignores_late_inputs(clock: Clock, verdicts: Verdicts) -> None:
    """After SERVICE_UNAVAILABLE nothing changes it: late completions, failures, abandon."""
    check = started_check(clock, verdicts)
    check.component_failed(T_CONTROLLER)
    complete_all(check)
    check.component_failed(SMART_PROXY)
    check.port_unavailable("taken")
    check.abandon()
    clock.advance(3600)
    assert verdicts.statuses == [(0.0, UNAVAILABLE)]


def test_completion_after_the_timeout_is_ignored(clock: Clock, verdicts: Verdicts) -> None:
    """A component completing after the timeout does not turn the verdict into RUNNING."""
    check = started_check(clock, verdicts)
    complete_all(check, but=SMART_PROXY)
    clock.advance(60)
    clock.advance(30)
    check.component_completed(SMART_PROXY)
    assert verdicts.statuses == [(60.0, UNAVAILABLE)]


def test_port_failure_then_component_failure_gives_one_verdict(
    clock: Clock, verdicts: Verdicts
) -> None:
    """A busy port and a later failing component give exactly one SERVICE_UNAVAILABLE, at 0."""
    check = started_check(clock, verdicts)
    check.port_unavailable("taken")
    clock.advance(5)
    check.component_failed(SMART_PROXY)
    assert verdicts.statuses == [(0.0, UNAVAILABLE)]


# --- the tie at the timeout --------------------------------------------------------------------


@pytest.mark.parametrize("check_first", [True, False], ids=["check-first", "components-first"])
def test_completion_exactly_at_the_timeout_is_in_time(
    clock: Clock, verdicts: Verdicts, check_first: bool
) -> None:
    """A component completing exactly at the timeout counts, whichever timer was set first."""
    check = new_check(clock, verdicts)
    startup = ComponentStartup(
        clock, plans(smart_proxy=ComponentPlan(OK, 60)), check.component_completed, no_failure
    )
    if check_first:  # the stub's order: the timeout starts, then the components
        check.begin()
        startup.start()
    else:
        startup.start()  # the at-once completions fall in idle and are ignored ...
        check.begin()
        complete_all(check, but=SMART_PROXY)  # ... so they are given again
    clock.advance(60)
    assert verdicts.statuses == [(60.0, RUNNING)]
    assert clock.getDelayedCalls() == []


def test_failure_exactly_at_the_timeout_names_the_component(
    clock: Clock, verdicts: Verdicts
) -> None:
    """A component failing exactly at the timeout: the failure is the reason, not the timeout."""
    check = started_check(clock, verdicts)
    startup = ComponentStartup(
        clock,
        plans(t_controller=ComponentPlan(FAIL, 60), smart_proxy=ComponentPlan(HANG)),
        check.component_completed,
        check.component_failed,
    )
    startup.start()
    clock.advance(60)
    assert verdicts.given == [(60.0, UNAVAILABLE, "T-Controller failed to initialize")]


def test_completion_just_after_the_timeout_is_late(clock: Clock, verdicts: Verdicts) -> None:
    """A component completing a millisecond after the timeout is too late."""
    check = started_check(clock, verdicts)
    startup = ComponentStartup(
        clock, plans(smart_proxy=ComponentPlan(OK, 60.001)), check.component_completed, no_failure
    )
    startup.start()
    clock.advance(60)
    clock.advance(0.001)
    assert verdicts.statuses == [(60.0, UNAVAILABLE)]


def verdict_after(elapsed: float, plan: ComponentPlan, timeout: float = 15) -> tuple[str, str]:
    """The check's verdict, wired as the stub wires it, for a start ``elapsed`` seconds
    late in which Smart Proxy follows ``plan`` and the others complete at once."""
    clock = Clock()
    verdicts = Verdicts(clock)
    check = BackupInitCheck(CheckCore(clock, timeout, verdicts, elapsed=elapsed))
    check.begin()
    startup = ComponentStartup(
        clock, plans(smart_proxy=plan), check.component_completed, check.component_failed
    )
    startup.start(elapsed, deadline=(timeout, check.timed_out))
    clock.pump([0.5] * 120)  # in steps, as a reactor turns: callLater(0) runs before later calls
    [(_, status, reason)] = verdicts.given
    return status.value, reason


@pytest.mark.parametrize(
    "plan",
    [
        ComponentPlan(OK, 20),
        ComponentPlan(OK, 15),
        ComponentPlan(OK, 10),
        ComponentPlan(FAIL, 20),
        ComponentPlan(FAIL, 15),
        ComponentPlan(HANG),
    ],
    ids=["ok-after", "ok-at", "ok-before", "fail-after", "fail-at", "hang"],
)
@pytest.mark.parametrize("elapsed", [14.0, 15.0, 16.0, 30.0])
def test_a_late_start_gives_the_on_time_verdict(plan: ComponentPlan, elapsed: float) -> None:
    """A process that comes up after its check's timeout (and after its components'
    delays) decides as if it had started on time: a component done after the timeout
    is late, one done exactly at it is in time."""
    assert verdict_after(elapsed, plan) == verdict_after(0.0, plan)


def test_a_late_start_past_every_delay_is_not_running() -> None:
    """The case that once went wrong: timeout 15, every component done at 20, the process
    up at 30. Its components' completions must not beat the timeout."""
    status, reason = verdict_after(30.0, ComponentPlan(OK, 20))
    assert (status, reason) == (
        "SERVICE_UNAVAILABLE",
        "not initialized within backup-init-check-timeout (15 s): Smart Proxy",
    )


def test_abandon_at_the_deadline(clock: Clock, verdicts: Verdicts) -> None:
    """Abandoned at the very instant of the timeout, after the timer fired: no verdict."""
    check = started_check(clock, verdicts)
    clock.advance(59)
    clock.callLater(1, check.abandon)  # due with the deadline, but set after it
    clock.advance(1)
    assert verdicts.given == []
    assert clock.getDelayedCalls() == []


# --- abandoned -------------------------------------------------------------------------------


def test_abandon_during_the_check(clock: Clock, verdicts: Verdicts) -> None:
    """Abandoned while checking (promoted to primary): no verdict, the timer is cancelled."""
    check = started_check(clock, verdicts)
    clock.advance(10)
    check.abandon()
    assert clock.getDelayedCalls() == []
    clock.advance(100)
    assert verdicts.given == []


def test_abandoned_ignores_late_inputs(clock: Clock, verdicts: Verdicts) -> None:
    """After abandon, completions, failures, a port problem or another abandon give nothing."""
    check = started_check(clock, verdicts)
    check.abandon()
    complete_all(check)
    check.component_failed(T_CONTROLLER)
    check.port_unavailable("taken")
    check.abandon()
    clock.advance(100)
    assert verdicts.given == []
