"""ScaledClock over a virtual clock: scenario seconds, its origin, and calls that keep
their real due times."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from lca_common.clock import ScaledClock


def real_clock(now: float = 0.0) -> Clock:
    clock = Clock()
    clock.advance(now)
    return clock


def test_seconds_count_from_creation_by_default() -> None:
    """Without an origin, scenario time is 0 at creation and runs 1/scale as fast as real time."""
    real = real_clock(1000.0)
    clock = ScaledClock(real, 0.1)
    assert clock.seconds() == 0.0
    assert clock.origin == 1000.0
    real.advance(0.5)
    assert clock.seconds() == pytest.approx(5.0)


def test_seconds_count_from_an_origin_in_the_past() -> None:
    """With an origin (a start asked for earlier), scenario time already runs at creation."""
    real = real_clock(1000.0)
    clock = ScaledClock(real, 0.1, origin=998.6)
    assert clock.seconds() == pytest.approx(14.0)
    real.advance(0.1)
    assert clock.seconds() == pytest.approx(15.0)


def test_call_later_is_scaled_from_now_whatever_the_origin() -> None:
    """callLater(d) runs d * scale real seconds from now, with or without an origin."""
    real = real_clock(1000.0)
    clock = ScaledClock(real, 0.1, origin=990.0)
    fired: list[float] = []
    clock.callLater(5, lambda: fired.append(clock.seconds()))
    real.advance(0.499)
    assert fired == []
    real.advance(0.001)
    assert fired == [pytest.approx(105.0)]


def test_a_call_due_from_the_origin_fires_at_origin_plus_scaled_delay() -> None:
    """Scheduling ``d - seconds()`` from a late start fires at origin + d * scale real time."""
    real = real_clock(1000.0)
    clock = ScaledClock(real, 0.1, origin=999.7)  # came up 0.3 real seconds late
    fired: list[float] = []
    clock.callLater(5 - clock.seconds(), lambda: fired.append(real.seconds()))
    real.advance(0.2)
    assert fired == [pytest.approx(1000.2)]  # 999.7 + 5 * 0.1


def test_restart_makes_now_scenario_time_zero() -> None:
    """restart(): scenario time is 0 now; a call scheduled before keeps its real time."""
    real = real_clock(1000.0)
    clock = ScaledClock(real, 0.1)
    fired: list[float] = []
    clock.callLater(5, lambda: fired.append(clock.seconds()))
    real.advance(0.3)
    clock.restart()
    assert clock.seconds() == 0.0
    assert clock.origin == 1000.3
    real.advance(0.2)
    assert fired == [pytest.approx(2.0)]


def test_a_held_clock_reads_zero_until_restarted() -> None:
    """held: scenario time is 0 until restart(), so what happens before (a site's
    configuration while its fork server starts) is at 0 and time never goes back."""
    real = real_clock(1000.0)
    clock = ScaledClock(real, 0.1, held=True)
    real.advance(0.5)
    assert clock.seconds() == 0.0
    clock.restart()
    assert clock.seconds() == 0.0
    real.advance(0.2)
    assert clock.seconds() == pytest.approx(2.0)


def test_delayed_calls_are_the_real_clocks() -> None:
    """getDelayedCalls() lists the real clock's pending calls."""
    real = real_clock()
    clock = ScaledClock(real, 2.0)
    call = clock.callLater(1, lambda: None)
    assert clock.getDelayedCalls() == [call]
    assert call.getTime() == 2.0


@pytest.mark.parametrize("scale", [0.0, -1.0])
def test_scale_must_be_positive(scale: float) -> None:
    """A scale of 0 or less is refused."""
    with pytest.raises(ValueError, match="time scale must be positive"):
        ScaledClock(real_clock(), scale)
