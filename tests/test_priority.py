"""The scheduling priority a wall-clock run asks for (best effort), with the OS calls
replaced: nothing here changes the test process's own priority."""

from __future__ import annotations

import os

import pytest

from lca_common.entrypoints import WALL_CLOCK_NICE, raise_priority


class FakePriority:
    """os.getpriority / os.setpriority for this process, refusing a raise when unprivileged."""

    def __init__(self, nice: int, *, privileged: bool) -> None:
        self.nice = nice
        self.privileged = privileged
        self.set_to: list[int] = []

    def get(self, which: int, who: int) -> int:
        assert (which, who) == (os.PRIO_PROCESS, 0)
        return self.nice

    def set(self, which: int, who: int, nice: int) -> None:
        assert (which, who) == (os.PRIO_PROCESS, 0)
        if nice < self.nice and not self.privileged:
            raise PermissionError(1, "Operation not permitted")
        self.set_to.append(nice)
        self.nice = nice


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> FakePriority:
    nice, privileged = request.param
    fake = FakePriority(nice, privileged=privileged)
    monkeypatch.setattr(os, "getpriority", fake.get)
    monkeypatch.setattr(os, "setpriority", fake.set)
    return fake


@pytest.mark.parametrize("fake", [(0, True)], indirect=True)
def test_raised_where_permitted(fake: FakePriority) -> None:
    """Allowed (root, CAP_SYS_NICE or RLIMIT_NICE): the process runs at WALL_CLOCK_NICE."""
    assert raise_priority() is None
    assert fake.set_to == [WALL_CLOCK_NICE] == [-10]


@pytest.mark.parametrize("fake", [(0, False)], indirect=True)
def test_refused_says_why(fake: FakePriority) -> None:
    """An unprivileged user may not raise it: the answer says so, nothing changes."""
    assert raise_priority() == (
        "could not raise the scheduling priority to nice -10: Operation not permitted"
    )
    assert fake.nice == 0


@pytest.mark.parametrize("fake", [(-10, False), (-15, False)], indirect=True)
def test_already_there_is_left_alone(fake: FakePriority) -> None:
    """A process at that priority or higher (a child of a raised run) keeps it."""
    before = fake.nice
    assert raise_priority() is None
    assert fake.set_to == []
    assert fake.nice == before
