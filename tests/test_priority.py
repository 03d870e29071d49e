"""The scheduling priority a wall-clock run and the stub fork server ask for (best
effort), with the OS calls replaced: nothing here changes the test process's own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lca_common import entrypoints
from lca_common.entrypoints import WALL_CLOCK_NICE, raise_priority


class FakeOs:
    """This process's nice value and session, refusing a raise when unprivileged."""

    def __init__(self, nice: int, *, privileged: bool) -> None:
        self.nice = nice
        self.privileged = privileged
        self.set_to: list[int] = []
        self.new_sessions = 0

    def getpriority(self, which: int, who: int) -> int:
        assert (which, who) == (os.PRIO_PROCESS, 0)
        return self.nice

    def setpriority(self, which: int, who: int, nice: int) -> None:
        assert (which, who) == (os.PRIO_PROCESS, 0)
        if nice < self.nice and not self.privileged:
            raise PermissionError(1, "Operation not permitted")
        self.set_to.append(nice)
        self.nice = nice

    def setsid(self) -> int:
        self.new_sessions += 1
        return 4242


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, tmp_path: Path) -> FakeOs:
    """The OS calls replaced; ``request.param``: (nice, privileged, autogroups on)."""
    nice, privileged, autogroups = request.param
    fake = FakeOs(nice, privileged=privileged)
    for name in ("getpriority", "setpriority", "setsid"):
        monkeypatch.setattr(os, name, getattr(fake, name))
    switch = tmp_path / "sched_autogroup_enabled"
    switch.write_text("1\n" if autogroups else "0\n")
    monkeypatch.setattr(entrypoints, "AUTOGROUP_SWITCH", str(switch))
    monkeypatch.setattr(entrypoints, "AUTOGROUP", str(tmp_path / "autogroup"))
    return fake


def _autogroup_nice(tmp_path: Path) -> str | None:
    group = tmp_path / "autogroup"
    return group.read_text() if group.exists() else None


@pytest.mark.parametrize("fake", [(0, True, True)], indirect=True)
def test_raised_where_permitted(fake: FakeOs, tmp_path: Path) -> None:
    """Allowed (root, CAP_SYS_NICE or RLIMIT_NICE): the process runs at WALL_CLOCK_NICE,
    in the session it was in."""
    assert raise_priority() is None
    assert fake.set_to == [WALL_CLOCK_NICE] == [-10]
    assert fake.new_sessions == 0
    assert _autogroup_nice(tmp_path) is None


@pytest.mark.parametrize("fake", [(0, False, True)], indirect=True)
def test_refused_says_why(fake: FakeOs, tmp_path: Path) -> None:
    """An unprivileged user may not raise it: the answer says so, nothing changes, and no
    session of its own is started (one at nice 0 would fare worse)."""
    assert raise_priority(own_session=True) == (
        "could not raise the scheduling priority to nice -10: Operation not permitted"
    )
    assert fake.nice == 0
    assert fake.new_sessions == 0
    assert _autogroup_nice(tmp_path) is None


@pytest.mark.parametrize("fake", [(-10, False, False), (-15, False, False)], indirect=True)
def test_already_there_is_left_alone(fake: FakeOs) -> None:
    """A process at that priority or higher (a child of a raised run) keeps it."""
    before = fake.nice
    assert raise_priority() is None
    assert fake.set_to == []
    assert fake.nice == before


@pytest.mark.parametrize("fake", [(0, True, True), (-10, True, True)], indirect=True)
def test_own_session_with_autogroups(fake: FakeOs, tmp_path: Path) -> None:
    """With own_session where sessions share the CPU first, it starts a session of its own
    and gives it the nice value too."""
    assert raise_priority(own_session=True) is None
    assert fake.nice == -10
    assert fake.new_sessions == 1
    assert _autogroup_nice(tmp_path) == "-10"


@pytest.mark.parametrize("fake", [(0, True, False)], indirect=True)
def test_own_session_without_autogroups_changes_no_session(fake: FakeOs, tmp_path: Path) -> None:
    """Without autogroups a nice value counts machine-wide: no session of its own."""
    assert raise_priority(own_session=True) is None
    assert fake.nice == -10
    assert fake.new_sessions == 0
    assert _autogroup_nice(tmp_path) is None
