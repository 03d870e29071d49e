"""Property tests over random host and link faults on a pair on two hosts, run as whole
sites of in-process stubs in virtual time (in memory, on a fake reactor: each run is
synchronous, and the same every time).

Random sequences of host-down, host-up, cut-lca-link, cut-link (close, reset, stall)
and delay-link, with a few kills and switchovers, must keep three promises, checked as
they happen (at every change the SCS hears of, and at the end of every instant):

(a) no member is up and PRIMARY, in the SCS's view, on a host that is down, from the
    moment the SCS counts it lost (at once, or ``disconnect-switchover-timeout`` later:
    it cannot tell a host down from a link lost) until the host is up again;
(b) never two members up and PRIMARY at the end of an instant unless a split brain is
    journaled (and not yet recovered);
(c) on a link that was only delayed (no cut, no fault on its host, no kill), every
    status the stub wrote reaches the journal, in order, each exactly when its latency
    says (the LCA journals a status when it changes).
"""

from __future__ import annotations

import json
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.task import Clock
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_emulator.harness.faults import AppLink, FaultyProtocol, LinkFaults
from lca_emulator.harness.launchers import InProcessLauncher
from lca_emulator.harness.model import EventAction, LinkCut, ScenarioEvent
from lca_emulator.harness.network import ClosingEndpoint
from lca_emulator.harness.runner import play_event
from lca_emulator.harness.site import Site
from lca_emulator.journal import JournalEntry, JournalEvent
from lca_emulator.lca.agent import ApplicationSession
from lca_emulator.registry import RecordChange
from lca_emulator.scs import links
from lca_emulator.scs.server import HaPair, ScsOptions, SolutionControlServer
from sipserver_stub.fixture import Component, ComponentPlan, ComponentResult, StubFixture

A, B = "SIPS_A", "SIPS_B"
HOST_OF = {A: "host-a", B: "host-b"}
HOSTS = ("host-a", "host-b")
LAST_EVENT = 150
DURATION = 200.0
"""Long enough after the last event for everything on its way to have arrived."""

T = TypeVar("T")


# -- watching what the stubs write -----------------------------------------------------------


@dataclass(frozen=True)
class Write:
    """One status report a stub wrote on one of its connections: when, and when it is due
    at the LCA."""

    connection: int
    sent: float
    due: float
    status: ApplicationStatus


class _Recording(ProtocolWrapper):
    """Sits between a stub and its link's faults: sees each write as the stub makes it."""

    factory: _RecordingFactory

    def write(self, data: bytes) -> None:
        self.factory.sent(data)
        super().write(data)

    def writeSequence(self, data: Any) -> None:
        self.write(b"".join(data))


class _RecordingFactory(WrappingFactory):
    """One connection of a stub (a stub makes one factory per connection attempt)."""

    protocol = _Recording

    def __init__(self, wrapped: IProtocolFactory, reports: Reports) -> None:
        super().__init__(wrapped)
        self.reports = reports
        self.index = reports.connections
        reports.connections += 1
        self.last_due = 0.0
        self._buffer = b""

    def sent(self, data: bytes) -> None:
        """Each write is due ``ms`` later, never before what this connection sent before."""
        link = self.reports.link
        now = link.clock.seconds()
        self.last_due = max(now + link.delay, self.last_due)
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            message = json.loads(line)
            if message["message"] == "RequestRegisterApplication":
                self.reports.registered.append(self.index)
            elif message["message"] == "RequestUpdateStatus":
                status = ApplicationStatus(message["status"])
                self.reports.writes.append(Write(self.index, now, self.last_due, status))


@dataclass
class Reports:
    """What one stub wrote, over all its connections."""

    link: AppLink
    writes: list[Write] = field(default_factory=list)
    registered: list[int] = field(default_factory=list)
    """The connections that sent a registration, in order."""
    connections: int = 0


class _RecordingEndpoint:
    def __init__(self, wrapped: ClosingEndpoint, reports: Reports) -> None:
        self.wrapped = wrapped
        self.reports = reports

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[Any]:
        d = self.wrapped.connect(_RecordingFactory(protocolFactory, self.reports))
        return d.addCallback(lambda wrapper: wrapper.wrappedProtocol)

    def when_closed(self) -> Deferred[None]:
        return self.wrapped.when_closed()


class RecordingFaults(LinkFaults):
    """Each application's link, with what its stub writes recorded before the link's
    faults act on it."""

    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        self.reports: dict[str, Reports] = {}

    def endpoint(self, application: str, endpoint: ClosingEndpoint) -> ClosingEndpoint:
        reports = self.reports.setdefault(application, Reports(self.link(application)))
        return _RecordingEndpoint(super().endpoint(application, endpoint), reports)


# -- the run ---------------------------------------------------------------------------------


def done(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end; in memory on a fake reactor it needs no reactor turn."""
    results: list[Any] = []
    ensureDeferred(coroutine).addBoth(results.append)
    assert results, "a virtual-time site in memory needs no reactor turn"
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    result: T = results[0]
    return result


class Watch:
    """Checks promises (a) and (b) at every change and at the end of every instant."""

    def __init__(self, site: Site, timeout: float) -> None:
        self.site = site
        self.timeout = timeout
        self.down_since: dict[str, float] = {}
        self.split = False
        """A split brain is journaled and not yet recovered."""
        self.checked = 0
        site.layer.registry.changes.subscribe(self._heard)

    def hosts_changed(self) -> None:
        """After an event: note when a host went down, forget it when it is up."""
        for host in HOSTS:
            if self.site.layer.hosts.named(host).lca.down:
                self.down_since.setdefault(host, self.site.now())
            else:
                self.down_since.pop(host, None)

    def _heard(self, change: RecordChange) -> None:
        if change.event is JournalEvent.SPLIT_BRAIN:
            self.split = "recovered" not in change.detail
        self.no_primary_on_a_host_down(instant_over=False)

    def no_primary_on_a_host_down(self, *, instant_over: bool) -> None:
        """(a); in the middle of an instant, not yet at the moment the SCS counts them lost
        (the timer of another host may come first)."""
        now = self.site.now()
        for name, host in HOST_OF.items():
            since = self.down_since.get(host)
            record = self.site.record(name)
            if since is None or record is None:
                continue
            lost_at = since + self.timeout
            if now < lost_at or (now == lost_at and not instant_over):
                continue
            self.checked += 1
            assert not (record.up and record.mode is ExecutionMode.PRIMARY), (
                f"t={now:g}: {name} is up and PRIMARY on {host}, down since t={since:g}\n"
                + journal_text(self.site.layer.journal)
            )

    def end_of_instant(self) -> bool:
        """(a) and (b), once everything due at this moment has been handled."""
        self.no_primary_on_a_host_down(instant_over=True)
        records = [self.site.record(name) for name in (A, B)]
        both = all(r is not None and r.up and r.mode is ExecutionMode.PRIMARY for r in records)
        assert self.split or not both, (
            f"t={self.site.now():g}: two PRIMARY members and no split brain journaled\n"
            + journal_text(self.site.layer.journal)
        )
        return False  # never stop the run early


def journal_text(entries: Iterable[JournalEntry]) -> str:
    """A journal, one line an entry, for a failure message."""
    return "\n".join(
        f"{e.time:8.3f} {e.application} {e.event.value} {e.status.value} {e.mode.value} {e.detail}"
        for e in entries
    )


@dataclass(frozen=True)
class Run:
    """What one run left when its time was up (before the site closed): the journal, and
    the status reports each stub wrote."""

    journal: tuple[JournalEntry, ...]
    reports: dict[str, Reports]
    host_down_checks: int
    """How often (a) found a member on a host that was down (and checked it)."""

    def tell(self) -> None:
        """What the run exercised, for ``--hypothesis-show-statistics``."""
        hypothesis.event(f"(a) checked a member on a host down: {self.host_down_checks > 0}")
        split = any(e.event is JournalEvent.SPLIT_BRAIN for e in self.journal)
        hypothesis.event(f"split brain journaled: {split}")


def run(
    events: Sequence[ScenarioEvent],
    *,
    timeout: float = 0.0,
    autostart: bool = True,
    heartbeat: float | None = None,
) -> Run:
    """Run the pair through ``events``, checking (a) and (b) as it goes."""
    sml = {"sml": {"autostart": "true"}} if autostart else {}
    checking = {"TServer": {"backup-init-check": "true"}}  # INITIALIZING, then RUNNING at 4 s
    applications = (
        StubFixture(A, ExecutionMode.PRIMARY, host="host-a", peer_host="host-b", options=sml),
        StubFixture(
            B,
            ExecutionMode.BACKUP,
            host="host-b",
            peer_host="host-a",
            options={**sml, **checking},
            components={Component.T_CONTROLLER: ComponentPlan(ComponentResult.OK, 4)},
        ),
    )
    site = Site(
        Clock(),
        applications=applications,
        pairs=[HaPair(A, B)],
        scs_options=ScsOptions(disconnect_switchover_timeout=timeout),
        heartbeat=heartbeat,
    )
    faults = site.faults = RecordingFaults(site.clock)
    site.layer.control.launcher = InProcessLauncher(site.network, site.clock, faults=faults)
    watch = Watch(site, timeout)

    def play(event: ScenarioEvent) -> None:
        play_event(site.layer, event, lambda _: None, faults)  # refusals are fine here
        watch.hosts_changed()

    done(site.open())
    try:
        assert site.layer.start_all() == []
        for event in events:
            site.clock.callLater(event.at, play, event)
        done(site.run_until(DURATION, watch.end_of_instant))
        reports = {
            name: Reports(r.link, list(r.writes), list(r.registered), r.connections)
            for name, r in faults.reports.items()
        }
        return Run(tuple(site.layer.journal), reports, watch.checked)
    finally:
        done(site.close())


def assert_no_report_lost(result: Run, name: str) -> None:
    """(c) for ``name``: on each of its connections, each status it wrote that differs
    from the one before reaches the journal as a status change (after that connection's
    registration), in order, exactly when due."""
    reports = result.reports[name]
    expected: list[tuple[float, str]] = []
    for connection in reports.registered:
        writes = [w for w in reports.writes if w.connection == connection]
        expected += [
            (w.due, w.status.value)
            for i, w in enumerate(writes)
            if i == 0 or w.status is not writes[i - 1].status
        ]
    journaled = [
        (e.time, e.status.value)
        for e in result.journal
        if e.application == name and e.event is JournalEvent.STATUS and not e.detail
    ]
    assert _same(journaled, expected), (
        f"{name}: wrote {[(w.connection, w.sent, w.status.value) for w in reports.writes]}\n"
        f"expected {expected}\njournaled {journaled}\n{journal_text(result.journal)}"
    )


def _same(got: list[tuple[float, str]], wanted: list[tuple[float, str]]) -> bool:
    return len(got) == len(wanted) and all(
        abs(t1 - t2) < 1e-9 and s1 == s2 for (t1, s1), (t2, s2) in zip(got, wanted, strict=True)
    )


# -- the random sequences --------------------------------------------------------------------

_times = st.integers(min_value=1, max_value=LAST_EVENT * 2).map(lambda half: half / 2)
_for = st.one_of(st.none(), st.integers(min_value=1, max_value=20).map(float))
_hosts = st.sampled_from(HOSTS)
_apps = st.sampled_from([A, B])

_host_events = st.builds(
    lambda at, action, host: ScenarioEvent(at, action, host),
    _times,
    st.sampled_from([EventAction.HOST_DOWN, EventAction.HOST_UP]),
    _hosts,
)
_lca_cuts = st.builds(
    lambda at, host, seconds: ScenarioEvent(at, EventAction.CUT_LCA_LINK, host, seconds=seconds),
    _times,
    _hosts,
    st.integers(min_value=1, max_value=30).map(float),
)
_link_cuts = st.builds(
    lambda at, app, how, seconds: ScenarioEvent(
        at, EventAction.CUT_LINK, app, how=how, seconds=seconds
    ),
    _times,
    _apps,
    st.sampled_from(list(LinkCut)),
    _for,
)


def _delay_events(most_ms: int) -> st.SearchStrategy[ScenarioEvent]:
    """delay-link events of 0 to ``most_ms`` milliseconds, with or without ``for``."""
    return st.builds(
        lambda at, app, ms, seconds: ScenarioEvent(
            at, EventAction.DELAY_LINK, app, latency_ms=float(ms), seconds=seconds
        ),
        _times,
        _apps,
        st.integers(min_value=0, max_value=most_ms),
        _for,
    )


_delays = _delay_events(3000)
_others = st.builds(
    lambda at, action, app: ScenarioEvent(at, action, app),
    _times,
    st.sampled_from([EventAction.KILL, EventAction.SWITCHOVER]),
    _apps,
)
_host_downs = st.builds(
    lambda at, host: ScenarioEvent(at, EventAction.HOST_DOWN, host), _times, _hosts
)
_faults = st.lists(
    st.one_of(_host_downs, _host_events, _host_events, _lca_cuts, _link_cuts, _delays, _others),
    min_size=1,
    max_size=12,
).map(lambda events: sorted(events, key=lambda event: event.at))
_short_delays = _delay_events(2000)  # a stop's two ways fit in its 5 s grace
_lifecycle = st.builds(
    lambda at, action, app: ScenarioEvent(at, action, app),
    _times,
    st.sampled_from(
        [EventAction.STOP, EventAction.START, EventAction.RESTART, EventAction.SWITCHOVER]
    ),
    _apps,
)
_delays_only = st.lists(st.one_of(_short_delays, _short_delays, _lifecycle), max_size=14).map(
    lambda events: sorted(events, key=lambda event: event.at)
)


def _only_delayed(events: Sequence[ScenarioEvent], name: str) -> bool:
    """Whether ``name``'s link was only delayed: no cut, no fault on its host, no kill."""
    for event in events:
        if event.on_host and event.application == HOST_OF[name]:
            return False
        if event.application == name and event.action in (EventAction.CUT_LINK, EventAction.KILL):
            return False
    return True


PROFILE = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
"""Deterministic (the same examples on every run) and quick enough for every CI run."""


@PROFILE
@given(events=_faults, timeout=st.sampled_from([0.0, 5.0]), autostart=st.booleans())
def test_random_host_and_link_faults_keep_the_promises(
    events: list[ScenarioEvent], timeout: float, autostart: bool
) -> None:
    """(a) no PRIMARY on a host that is down, (b) no two PRIMARY members without a split
    brain journaled, (c) no status report lost on a link that was only delayed."""
    result = run(events, timeout=timeout, autostart=autostart)
    result.tell()
    qualified = [name for name in (A, B) if _only_delayed(events, name)]
    hypothesis.event(f"(c) checked for {len(qualified)} member(s)")
    for name in qualified:
        assert_no_report_lost(result, name)
    late = [w for name in qualified for w in result.reports[name].writes if w.due > w.sent]
    hypothesis.event(f"(c) checked reports that came late: {bool(late)}")


@PROFILE
@given(events=_delays_only)
def test_random_latency_loses_no_status_report(events: list[ScenarioEvent]) -> None:
    """(c) with latency only, and stops, starts, restarts and switchovers: every report
    arrives, in order, each exactly when due (a stop's last report before the close)."""
    result = run(events)
    result.tell()
    qualified = [name for name in (A, B) if _only_delayed(events, name)]
    hypothesis.event(f"(c) checked for {len(qualified)} member(s)")
    for name in qualified:
        assert_no_report_lost(result, name)
    late = [w for name in qualified for w in result.reports[name].writes if w.due > w.sent]
    hypothesis.event(f"(c) checked reports that came late: {bool(late)}")


# -- the checks catch what they are for --------------------------------------------------------


def test_the_checks_pass_a_plain_host_down() -> None:
    """A host down and up again, a blip, a slow link: every promise holds."""
    result = run(
        [
            ScenarioEvent(10, EventAction.DELAY_LINK, B, latency_ms=1500),
            ScenarioEvent(20, EventAction.HOST_DOWN, "host-a"),
            ScenarioEvent(40, EventAction.HOST_UP, "host-a"),
            ScenarioEvent(60, EventAction.CUT_LCA_LINK, "host-a", seconds=5),
        ]
    )
    assert_no_report_lost(result, B)


def test_check_a_catches_a_primary_left_up_on_a_host_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """An SCS that did not count the applications of a lost host as lost fails (a)."""
    monkeypatch.setattr(links, "_LOST_FIELDS", {})
    with pytest.raises(AssertionError, match="SIPS_A is up and PRIMARY on host-a, down since"):
        run([ScenarioEvent(20, EventAction.HOST_DOWN, "host-a")])


def test_check_a_waits_for_disconnect_switchover_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same SCS passes while the timeout lasts, and fails once it is over."""
    monkeypatch.setattr(links, "_LOST_FIELDS", {})
    events = [ScenarioEvent(20, EventAction.HOST_DOWN, "host-a")]
    with pytest.raises(AssertionError, match=r"t=25: SIPS_A is up and PRIMARY on host-a"):
        run(events, timeout=5)


def test_check_b_catches_an_unjournaled_split_brain(monkeypatch: pytest.MonkeyPatch) -> None:
    """An SCS that journals no split brain fails (b) when a silent old primary makes the
    promotion go ahead after DEMOTION_WAIT (two PRIMARY members from t=30)."""
    monkeypatch.setattr(SolutionControlServer, "_split_brain_change", lambda self, pair: None)
    events = [ScenarioEvent(20, EventAction.HANG, A), ScenarioEvent(20, EventAction.SWITCHOVER, A)]
    with pytest.raises(AssertionError, match="t=30: two PRIMARY members and no split brain"):
        run(events)


def test_check_b_passes_a_journaled_split_brain() -> None:
    """The sibling: the same run with the split brain journaled passes."""
    events = [ScenarioEvent(20, EventAction.HANG, A), ScenarioEvent(20, EventAction.SWITCHOVER, A)]
    result = run(events)
    split = [e.time for e in result.journal if e.event is JournalEvent.SPLIT_BRAIN]
    assert split == [30]


def test_check_c_catches_a_late_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """A link that delays twice what it says fails (c): the report is late."""

    def write_late(self: FaultyProtocol, data: bytes) -> None:
        self._out.send(data, 2 * self.link.delay, self.link.stalled)

    monkeypatch.setattr(FaultyProtocol, "write", write_late)
    result = run([ScenarioEvent(0.5, EventAction.DELAY_LINK, B, latency_ms=1000)])
    with pytest.raises(AssertionError, match="SIPS_B: wrote"):
        assert_no_report_lost(result, B)


def test_check_c_catches_a_lost_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """An LCA that drops a status report fails (c)."""
    update = ApplicationSession._update_status

    def drop_running(self: ApplicationSession, name: str, message: Any, record: Any) -> None:
        if message.status is not ApplicationStatus.RUNNING or self.lca.records.get(name) is None:
            update(self, name, message, record)

    monkeypatch.setattr(ApplicationSession, "_update_status", drop_running)
    result = run([ScenarioEvent(10, EventAction.DELAY_LINK, B, latency_ms=500)])
    with pytest.raises(AssertionError, match="SIPS_B: wrote"):
        assert_no_report_lost(result, B)
