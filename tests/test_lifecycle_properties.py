"""Property tests over random lifecycles of an HA pair, run as whole scenarios in
virtual time (in memory, on a fake reactor, so each run is synchronous):

- no journal holds two members of a pair up and PRIMARY at the end of an instant
  without a ``split-brain`` entry;
- every switchover whose old primary is still connected asks it to be BACKUP before
  the new one is asked to be PRIMARY.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_emulator.harness.model import EventAction, HaPair, Scenario, ScenarioEvent
from lca_emulator.harness.runner import ScenarioResult, run_scenario
from lca_emulator.journal import JournalEntry, JournalEvent
from sipserver_stub.fixture import Component, ComponentPlan, ComponentResult, StubFixture

A, B = "SIPS_A", "SIPS_B"
UP = {JournalEvent.REGISTERED: True, JournalEvent.RECOVERED: True}
DOWN = {JournalEvent.DISCONNECTED, JournalEvent.EXITED, JournalEvent.HUNG}

_ACTIONS = [
    EventAction.KILL,
    EventAction.STOP,
    EventAction.START,
    EventAction.RESTART,
    EventAction.HANG,
    EventAction.SWITCHOVER,
]
_EVENTS = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=200),
        st.sampled_from(_ACTIONS),
        st.sampled_from([A, B]),
    ),
    max_size=8,
)


def _backup(check: bool, fails: bool, restart: bool) -> StubFixture:
    plans = {Component.T_CONTROLLER: ComponentPlan(ComponentResult.FAIL, 5)} if fails else {}
    return StubFixture(
        B,
        ExecutionMode.BACKUP,
        host="host-b",
        peer_host="host-a",
        options={"TServer": {"backup-init-check": "true" if check else "false"}},
        components=plans,
        auto_restart=restart,
    )


def _run(scenario: Scenario) -> ScenarioResult:
    d = ensureDeferred(run_scenario(scenario, Clock()))
    assert d.called, "a virtual-time run in memory needs no reactor turn"
    result: Any = d.result
    assert isinstance(result, ScenarioResult), result
    return result


def _check_journal(journal: tuple[JournalEntry, ...]) -> None:
    up = {A: False, B: False}
    mode = {A: ExecutionMode.UNKNOWN, B: ExecutionMode.UNKNOWN}
    split = False  # a split brain journaled and not yet recovered
    for index, entry in enumerate(journal):
        if entry.event is JournalEvent.SPLIT_BRAIN:
            split = "recovered" not in entry.detail
        if entry.application in up:
            if entry.event in UP:
                up[entry.application] = True
            elif entry.event in DOWN:
                up[entry.application] = False
            mode[entry.application] = entry.mode
        last_of_instant = index + 1 == len(journal) or journal[index + 1].time != entry.time
        if last_of_instant and all(up[n] and mode[n] is ExecutionMode.PRIMARY for n in up):
            assert split, f"two PRIMARY members at t={entry.time} and no split brain journaled"
        if entry.event is JournalEvent.SWITCHOVER:
            old = A if entry.application == B else B
            later = [e for e in journal[index:] if e.time == entry.time]
            requests = [
                (e.application, e.detail.split()[0])
                for e in later
                if e.event is JournalEvent.MODE_REQUESTED
            ]
            promoted, demoted = (entry.application, "PRIMARY"), (old, "BACKUP")
            if up[old] and demoted in requests and promoted in requests:
                assert requests.index(demoted) < requests.index(promoted)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=_EVENTS,
    check=st.booleans(),
    fails=st.booleans(),
    restart=st.booleans(),
    heartbeat=st.sampled_from([None, 6.0]),
)
def test_random_lifecycles_keep_one_primary(
    events: list[tuple[int, EventAction, str]],
    check: bool,
    fails: bool,
    restart: bool,
    heartbeat: float | None,
) -> None:
    """Whatever happens to the pair, one PRIMARY (or a journaled split brain), and
    switchovers demote before they promote."""
    primary = StubFixture(A, ExecutionMode.PRIMARY, host="host-a", peer_host="host-b")
    scenario = Scenario(
        name="random lifecycle",
        path="random.yaml",
        duration=250,
        applications=(primary, _backup(check, fails, restart)),
        ha_pairs=(HaPair(A, B),),
        events=tuple(ScenarioEvent(float(at), action, name) for at, action, name in sorted(events)),
        heartbeat=heartbeat,
    )
    _check_journal(_run(scenario).journal)


def _entry(
    time: float, app: str, event: JournalEvent, mode: ExecutionMode, detail: str = ""
) -> JournalEntry:

    return JournalEntry(time, app, event, ApplicationStatus.RUNNING, mode, detail)


P, K = ExecutionMode.PRIMARY, ExecutionMode.BACKUP


def test_the_check_catches_two_primaries_without_a_split_brain_entry() -> None:
    """A journal with both members up and PRIMARY, and no split-brain entry, fails."""
    journal = (
        _entry(0, A, JournalEvent.REGISTERED, P),
        _entry(0, B, JournalEvent.REGISTERED, P),
    )
    with pytest.raises(AssertionError, match="two PRIMARY members at t=0"):
        _check_journal(journal)
    _check_journal((*journal, _entry(0, B, JournalEvent.SPLIT_BRAIN, P, "both are PRIMARY")))
    recovered = _entry(1, B, JournalEvent.SPLIT_BRAIN, P, "recovered from split brain")
    with pytest.raises(AssertionError, match="two PRIMARY members at t=1"):
        _check_journal((*journal, _entry(0, B, JournalEvent.SPLIT_BRAIN, P), recovered))


def test_the_check_catches_a_promotion_before_the_demotion() -> None:
    """A switchover that asks for PRIMARY before the live old primary's BACKUP fails."""
    journal = (
        _entry(0, A, JournalEvent.REGISTERED, P),
        _entry(0, B, JournalEvent.REGISTERED, K),
        _entry(5, B, JournalEvent.SWITCHOVER, K),
        _entry(5, B, JournalEvent.MODE_REQUESTED, K, "PRIMARY (R6)"),
        _entry(5, A, JournalEvent.MODE_REQUESTED, P, "BACKUP (R6)"),
    )
    with pytest.raises(AssertionError):
        _check_journal(journal)
