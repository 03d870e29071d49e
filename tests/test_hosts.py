"""Hosts, the SCS's link to each host's LCA, and the SCS rules that faults bring into
play (no brain, flapping, the old primary's BACKUP before the new PRIMARY).

Two layers, both on a virtual clock: :class:`LcaLink` and :class:`Hosts` on their own
(a registry and a ``task.Clock``), then whole sites of in-process stubs in memory,
driven synchronously (the site's reactor is a ``task.Clock`` too, so every run is the
same and takes no reactor turn).  A test that checks a verdict has a sibling that
checks the opposite case, so a rule that does nothing cannot pass both.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock

from lca_common.protocol.messages import ApplicationStatus, ErrorCode, ExecutionMode
from lca_emulator.applications import ApplicationSpec
from lca_emulator.harness.model import (
    EventAction,
    Expectation,
    ExpectationKind,
    LinkCut,
    Scenario,
    ScenarioEvent,
)
from lca_emulator.harness.runner import ScenarioResult, run_scenario
from lca_emulator.harness.site import Site
from lca_emulator.hosts import Hosts
from lca_emulator.journal import (
    LOG_FLAPPING,
    LOG_FLAPPING_STABLE,
    LOG_NO_BRAIN,
    LOG_NO_BRAIN_RECOVERED,
    LOG_SPLIT_BRAIN,
    JournalEntry,
    JournalEvent,
)
from lca_emulator.lca.agent import ApplicationSession
from lca_emulator.lca.control import ApplicationLauncher, ControlError, RunningApplication
from lca_emulator.lca.processes import ProcessExit
from lca_emulator.registry import ApplicationRecord, ApplicationRegistry, RecordChange
from lca_emulator.scs.links import LcaLink, LinkState
from lca_emulator.scs.server import DEMOTION_WAIT, HaPair, ScsOptions
from sipserver_stub.fixture import StubFixture

A, B, C = "SIPS_A", "SIPS_B", "SIPS_C"
HOST_A, HOST_B = "host-a", "host-b"
PAIR = HaPair(A, B)

RUNNING = ApplicationStatus.RUNNING
SU = ApplicationStatus.SERVICE_UNAVAILABLE
UNKNOWN = ApplicationStatus.UNKNOWN
STOPPED = ApplicationStatus.STOPPED
PRIMARY = ExecutionMode.PRIMARY
BACKUP = ExecutionMode.BACKUP

T = TypeVar("T")


# == LcaLink on its own =====================================================================


@dataclass
class LinkBench:
    """A registry on a virtual clock, one link to host-a's LCA, and every change heard."""

    clock: Clock = field(default_factory=Clock)
    timeout: float = 0.0
    heard: list[tuple[RecordChange, tuple[bool, ...]]] = field(default_factory=list)
    """Each change announced, with whether SIPS_A and SIPS_B were up at that moment."""
    registry: ApplicationRegistry = field(init=False)
    link: LcaLink = field(init=False)

    def __post_init__(self) -> None:
        self.registry = ApplicationRegistry(self.clock)
        self.registry.changes.subscribe(self._hear)
        self.link = LcaLink(HOST_A, self.registry, disconnect_switchover_timeout=self.timeout)

    def up(
        self, name: str, status: ApplicationStatus = RUNNING, mode: ExecutionMode = PRIMARY
    ) -> None:
        """``name`` registered on host-a's LCA and reports ``status``."""
        self.link.note(
            name,
            JournalEvent.REGISTERED,
            status=status,
            reported_status=status,
            mode=mode,
            connected=True,
            registered=True,
        )

    def _hear(self, change: RecordChange) -> None:
        records = (self.registry.get(A), self.registry.get(B))
        self.heard.append((change, tuple(r is not None and r.up for r in records)))

    def record(self, name: str) -> ApplicationRecord:
        record = self.registry.get(name)
        assert record is not None
        return record

    def events(self, name: str) -> list[tuple[float, JournalEvent]]:
        return [(e.time, e.event) for e in self.registry.journal.entries(name)]


def state_of(link: LcaLink) -> LinkState:
    """Where ``link`` stands now (a call, so that a type checker reads it afresh)."""
    return link.state


def test_lost_link_loses_every_running_member_at_once_in_one_go() -> None:
    """With timeout 0, every running member is lost at the moment of the cut, and the first
    change announced already shows all of them lost (the SCS decides on the whole host)."""
    bench = LinkBench()
    bench.up(A)
    bench.up(B, mode=BACKUP)
    bench.link.note(C, JournalEvent.CONFIGURED, status=STOPPED)
    bench.clock.advance(7)
    bench.heard.clear()
    assert bench.link.lose(JournalEvent.LCA_LINK_LOST, "cut")
    assert [(c.after.name, c.event, up) for c, up in bench.heard] == [
        (A, JournalEvent.LCA_LINK_LOST, (False, False)),  # B is lost already when A is heard
        (B, JournalEvent.LCA_LINK_LOST, (False, False)),
        (C, JournalEvent.LCA_LINK_LOST, (False, False)),
    ]
    for name in (A, B):
        record = bench.record(name)
        assert (record.status, record.connected, record.registered, record.up) == (
            UNKNOWN,
            False,
            False,
            False,
        )
    assert bench.record(C).status is STOPPED  # not running: journaled, unchanged
    assert (bench.link.state, bench.link.up) == (LinkState.LOST, False)
    lost = [e for e in bench.registry.journal if e.event is JournalEvent.LCA_LINK_LOST]
    assert [(e.time, e.application) for e in lost] == [(7, A), (7, B), (7, C)]


def test_the_bench_hears_members_noted_one_by_one_one_by_one() -> None:
    """The sibling: noted one at a time, the first lost member is heard while the other
    is still up (what the test above rules out for a lost link)."""
    bench = LinkBench()
    bench.up(A)
    bench.up(B, mode=BACKUP)
    bench.heard.clear()
    for name in (A, B):
        bench.registry.note(name, JournalEvent.LCA_LINK_LOST, connected=False, registered=False)
    assert [up for _, up in bench.heard] == [(False, True), (False, False)]


def test_a_link_that_is_up_loses_nothing() -> None:
    """The sibling: while the link is up, the LCA's notes reach the registry as they are."""
    bench = LinkBench()
    bench.up(A)
    assert bench.link.up
    assert bench.record(A).up
    assert bench.link.get(A) is bench.registry.get(A)


def test_losing_a_lost_link_again_changes_nothing() -> None:
    """A second loss is refused (False) and journals nothing; a host that goes down behind
    the lost link only changes the link's state (the SCS cannot see it)."""
    bench = LinkBench()
    bench.up(A)
    assert bench.link.lose(JournalEvent.LCA_LINK_LOST, "cut")
    journaled = len(bench.registry.journal)
    assert not bench.link.lose(JournalEvent.LCA_LINK_LOST, "again")
    assert state_of(bench.link) is LinkState.LOST
    assert not bench.link.lose(JournalEvent.HOST_DOWN, "host down behind the cut")
    assert state_of(bench.link) is LinkState.HOST_DOWN
    assert len(bench.registry.journal) == journaled


def test_disconnect_switchover_timeout_waits_then_disconnects() -> None:
    """With a timeout, running members stay up for the SCS until it has passed; then they
    are journaled ``disconnected`` and UNKNOWN, all at that moment."""
    bench = LinkBench(timeout=10)
    bench.up(A)
    bench.up(B, mode=BACKUP)
    bench.clock.advance(30)
    bench.link.lose(JournalEvent.LCA_LINK_LOST, "cut")
    (lost,) = [
        e for e in bench.registry.journal.entries(A) if e.event is JournalEvent.LCA_LINK_LOST
    ]
    assert lost.detail == "cut; SCS waits 10 s (disconnect-switchover-timeout)"
    assert bench.record(A).up
    assert bench.record(B).up
    bench.clock.advance(9.999)
    assert bench.record(A).up
    assert (40, JournalEvent.DISCONNECTED) not in bench.events(A)
    bench.clock.advance(0.001)
    for name in (A, B):
        assert not bench.record(name).up
        assert bench.record(name).status is UNKNOWN
        assert (40, JournalEvent.DISCONNECTED) in bench.events(name)


def test_link_back_within_the_timeout_loses_nothing() -> None:
    """The sibling: the link back before the timeout cancels the wait; nobody is ever lost."""
    bench = LinkBench(timeout=10)
    bench.up(A)
    bench.link.lose(JournalEvent.LCA_LINK_LOST, "cut")
    bench.clock.advance(3)
    assert bench.link.restore(JournalEvent.LCA_LINK_RESTORED, "back")
    bench.clock.advance(60)
    assert bench.record(A).up
    assert JournalEvent.DISCONNECTED not in [event for _, event in bench.events(A)]
    assert bench.clock.getDelayedCalls() == []


def test_a_member_that_reported_service_unavailable_is_lost_at_once() -> None:
    """The timeout does not apply to a member whose last report was SERVICE_UNAVAILABLE:
    it is lost at the cut, while a RUNNING one on the same host waits."""
    bench = LinkBench(timeout=10)
    bench.up(A, status=SU)
    bench.up(B, mode=BACKUP)
    bench.link.lose(JournalEvent.LCA_LINK_LOST, "cut")
    assert not bench.record(A).up
    assert bench.record(A).status is UNKNOWN
    assert bench.record(B).up


def test_the_lca_keeps_its_own_records_while_the_link_is_lost() -> None:
    """What the LCA notes behind a lost link stays with the link, unseen by the SCS; the
    link back writes it to the registry at once, journaled lca-link-restored."""
    bench = LinkBench()
    bench.up(A)
    bench.link.lose(JournalEvent.LCA_LINK_LOST, "cut")
    bench.clock.advance(2)
    bench.link.note(A, JournalEvent.STATUS, status=SU, reported_status=SU)
    bench.link.note(A, JournalEvent.MODE, mode=BACKUP)
    assert bench.record(A).status is UNKNOWN  # the SCS's view
    own = bench.link.get(A)
    assert own is not None
    assert (own.status, own.mode, own.connected) == (SU, BACKUP, True)
    assert JournalEvent.STATUS not in [event for _, event in bench.events(A)][1:]
    bench.clock.advance(3)
    assert bench.link.restore(JournalEvent.LCA_LINK_RESTORED, "back")
    record = bench.record(A)
    assert (record.status, record.mode, record.up) == (SU, BACKUP, True)
    assert bench.events(A)[-1] == (5, JournalEvent.LCA_LINK_RESTORED)
    assert bench.link.get(A) is bench.registry.get(A)


def test_host_up_resets_every_member_to_stopped() -> None:
    """A host back up has a new LCA, which knows each of its applications as stopped."""
    bench = LinkBench()
    bench.up(A)
    bench.link.note(A, JournalEvent.STATUS, pid=4711)
    bench.link.lose(JournalEvent.HOST_DOWN, "host down")
    assert bench.link.state is LinkState.HOST_DOWN
    assert not bench.link.restore(JournalEvent.LCA_LINK_RESTORED, "a cut ending")  # it is down
    assert bench.link.restore(JournalEvent.HOST_UP, "host up")
    record = bench.record(A)
    assert (record.status, record.mode, record.pid, record.connected, record.registered) == (
        STOPPED,
        ExecutionMode.UNKNOWN,
        None,
        False,
        False,
    )
    assert bench.events(A)[-1][1] is JournalEvent.HOST_UP


def test_a_cut_that_ends_is_not_a_reboot() -> None:
    """The sibling: host-up on a link that is only cut restores nothing (False)."""
    bench = LinkBench()
    bench.up(A)
    bench.link.lose(JournalEvent.LCA_LINK_LOST, "cut")
    assert not bench.link.restore(JournalEvent.HOST_UP, "host up")
    assert bench.link.state is LinkState.LOST
    assert bench.link.restore(JournalEvent.LCA_LINK_RESTORED, "back")


def test_restore_later_restores_at_the_time() -> None:
    """``restore_later(10)`` brings the link back exactly 10 s later."""
    bench = LinkBench()
    bench.up(A)
    bench.link.lose(JournalEvent.LCA_LINK_LOST, "cut")
    bench.link.restore_later(10, "back")
    bench.clock.advance(9.999)
    assert not bench.link.up
    bench.clock.advance(0.001)
    assert bench.link.up
    assert bench.events(A)[-1] == (10, JournalEvent.LCA_LINK_RESTORED)


def test_restore_later_ignores_a_stale_generation() -> None:
    """The sibling: a link restored and lost again meanwhile is not restored by the first
    loss's timer."""
    bench = LinkBench()
    bench.up(A)
    bench.link.lose(JournalEvent.LCA_LINK_LOST, "first cut")
    bench.link.restore_later(10, "first cut over")
    bench.clock.advance(4)
    bench.link.restore(JournalEvent.LCA_LINK_RESTORED, "back early")
    bench.clock.advance(1)
    bench.link.lose(JournalEvent.LCA_LINK_LOST, "second cut")
    bench.clock.advance(5)
    assert not bench.link.up
    assert bench.events(A)[-1] == (5, JournalEvent.LCA_LINK_LOST)


# == Hosts: which LCA an application belongs to ===============================================


def test_hosts_route_an_application_to_its_lca() -> None:
    """An application belongs to the LCA it is registered with, else its configured host's,
    else the host it was last seen on, else the default LCA."""
    registry = ApplicationRegistry(Clock())
    hosts = Hosts(registry.clock, registry, [HOST_A, HOST_B, HOST_A])
    assert [host.name for host in hosts] == [None, HOST_A, HOST_B]
    assert hosts.default.label == "-"
    hosts.place(A, HOST_A)
    assert hosts.of(A).name == HOST_A
    assert A in hosts.named(HOST_A).link.members()
    hosts.named(HOST_B).lca.attach(A, ApplicationSession(hosts.named(HOST_B).lca))
    assert hosts.of(A).name == HOST_B  # registered elsewhere: that LCA speaks for it
    hosts.named(HOST_A).lca.attach(A, ApplicationSession(hosts.named(HOST_A).lca))
    assert hosts.of(A).name == HOST_A  # its own host's LCA first
    hosts.named(HOST_B).link.note(B, JournalEvent.REGISTERED)
    assert hosts.of(B).name == HOST_B  # not configured: the host it was seen on
    assert hosts.of(C).name is None  # nowhere: the default LCA
    with pytest.raises(KeyError):
        hosts.named("host-z")


def test_no_mode_goes_through_a_lost_link() -> None:
    """A mode change or suspend for an application behind a lost link is not sent (False);
    on a link that is up it is sent (True)."""
    registry = ApplicationRegistry(Clock())
    hosts = Hosts(registry.clock, registry, [HOST_A])
    hosts.place(A, HOST_A)
    lca = hosts.named(HOST_A).lca
    sent: list[str] = []

    class Session(ApplicationSession):
        def request_mode(self, mode: ExecutionMode) -> None:
            sent.append(mode.value)

        def request_suspend(self) -> None:
            sent.append("suspend")

    lca.attach(A, Session(lca))
    assert hosts.change_mode(A, PRIMARY)
    assert hosts.suspend(A)
    hosts.named(HOST_A).link.lose(JournalEvent.LCA_LINK_LOST, "cut")
    assert not hosts.change_mode(A, BACKUP)
    assert not hosts.suspend(A)
    assert sent == ["PRIMARY", "suspend"]


# == sites of in-process stubs, driven synchronously ==========================================


def done(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end; in memory on a fake reactor it needs no reactor turn."""
    d: Deferred[T] = ensureDeferred(coroutine)
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "a virtual-time site in memory needs no reactor turn"
    if isinstance(results[0], Exception) or hasattr(results[0], "raiseException"):
        results[0].raiseException()
    result: T = results[0]
    return result


class CountingLauncher:
    """Counts the starts of the launcher it wraps, per application."""

    def __init__(self, launcher: ApplicationLauncher) -> None:
        self.launcher = launcher
        self.starts: dict[str, int] = {}

    def launch(self, spec: ApplicationSpec, lca: str) -> RunningApplication:
        self.starts[spec.name] = self.starts.get(spec.name, 0) + 1
        return self.launcher.launch(spec, lca)


class SyncSite:
    """A site of in-process stubs in memory, on a virtual clock, driven synchronously."""

    def __init__(self, site: Site) -> None:
        self.site = site
        launcher = site.layer.control.launcher
        assert launcher is not None
        self.launcher = CountingLauncher(launcher)
        site.layer.control.launcher = self.launcher

    @property
    def layer(self) -> Any:
        return self.site.layer

    def at(self, when: float) -> None:
        """Let the clock reach ``when``, handling everything due on the way."""
        done(self.site.run_until(when))

    def record(self, name: str) -> ApplicationRecord:
        record = self.site.record(name)
        assert record is not None
        return record

    def entries(self, name: str, event: JournalEvent) -> list[JournalEntry]:
        return [e for e in self.site.layer.journal.entries(name) if e.event is event]

    def times(self, name: str, event: JournalEvent) -> list[float]:
        return [e.time for e in self.entries(name, event)]

    def modes_requested(self, name: str) -> list[tuple[float, str]]:
        """(time, mode) of each mode the SCS asked ``name`` for."""
        return [
            (e.time, e.detail.split()[0]) for e in self.entries(name, JournalEvent.MODE_REQUESTED)
        ]


def stub(
    name: str, mode: ExecutionMode = BACKUP, host: str | None = HOST_A, **sml: str
) -> StubFixture:
    """An in-process stub on ``host`` with ``[sml]`` options."""
    options = {"sml": dict(sml)} if sml else {}
    return StubFixture(name, mode, host=host, options=options)


@contextmanager
def sync_site(
    *applications: StubFixture,
    pairs: tuple[HaPair, ...] = (PAIR,),
    hosts: tuple[str, ...] = (),
    scs: ScsOptions | None = None,
    start: bool = True,
) -> Iterator[SyncSite]:
    """Open a site of ``applications`` (started, unless ``start`` is False); close it after."""
    site = Site(Clock(), applications=applications, pairs=pairs, hosts=hosts, scs_options=scs)
    done(site.open())
    bench = SyncSite(site)
    try:
        if start:
            assert site.layer.start_all() == []
            bench.at(0)
        yield bench
    finally:
        done(site.close())


def pair_on_two_hosts(**sml: str) -> tuple[StubFixture, StubFixture]:
    """SIPS_A primary on host-a (with ``[sml]`` options), SIPS_B backup on host-b."""
    return stub(A, PRIMARY, HOST_A, **sml), stub(B, BACKUP, HOST_B)


# -- the layer's host faults: errors ------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "text"),
    [
        ((("host_down", "host-z"),), "no host named 'host-z'"),
        ((("host_up", "host-z"),), "no host named 'host-z'"),
        ((("cut_lca_link", "host-z"),), "no host named 'host-z'"),
        ((("host_down", HOST_A), ("host_down", HOST_A)), "host host-a is down already"),
        ((("host_up", HOST_A),), "host host-a is not down"),
        ((("cut_lca_link", HOST_A), ("host_up", HOST_A)), "host host-a is not down"),
        (
            (("cut_lca_link", HOST_A), ("cut_lca_link", HOST_A)),
            "the link to the LCA of host host-a is lost already",
        ),
        ((("host_down", HOST_A), ("cut_lca_link", HOST_A)), "host host-a is down"),
        (
            (("cut_lca_link", HOST_A), ("host_down", HOST_A), ("cut_lca_link", HOST_A)),
            "host host-a is down",
        ),
    ],
)
def test_host_faults_refused_as_host_unreachable(
    faults: tuple[tuple[str, str], ...], text: str
) -> None:
    """An unknown host, a host down twice, a host up that is not down, a link cut twice:
    ControlError host-unreachable, saying which."""
    with sync_site(*pair_on_two_hosts()) as bench:
        *before, (last, host) = faults
        for method, name in before:
            getattr(bench.site, method)(name)
        with pytest.raises(ControlError) as caught:
            getattr(bench.site, last)(host)
        assert (caught.value.code, caught.value.text) == (ErrorCode.HOST_UNREACHABLE, text)


def test_host_faults_in_their_order_are_accepted() -> None:
    """The sibling: down then up, and a cut, on known hosts, raise nothing."""
    with sync_site(*pair_on_two_hosts()) as bench:
        bench.site.host_down(HOST_A)
        bench.at(1)
        bench.site.host_up(HOST_A)
        bench.site.cut_lca_link(HOST_B, 5)
        bench.at(10)
        assert bench.times(A, JournalEvent.HOST_DOWN) == [0]
        assert bench.times(A, JournalEvent.HOST_UP) == [1]
        assert bench.times(B, JournalEvent.LCA_LINK_RESTORED) == [6]


# -- what the SCS may still ask for across a lost link ------------------------------------------


@pytest.mark.parametrize(
    ("fault", "why"),
    [
        ("cut_lca_link", "SCS has no link to the LCA of host host-a"),
        ("host_down", "host host-a is down"),
    ],
)
@pytest.mark.parametrize("action", ["start", "stop", "restart"])
def test_start_stop_restart_need_the_link(fault: str, why: str, action: str) -> None:
    """A start, stop or restart is a request from the SCS: across a lost link, or to a
    host that is down, it is refused with host-unreachable."""
    with sync_site(*pair_on_two_hosts()) as bench:
        getattr(bench.site, fault)(HOST_A)
        bench.at(1)
        with pytest.raises(ControlError) as caught:
            getattr(bench.site, action)(A)
        assert caught.value.code is ErrorCode.HOST_UNREACHABLE
        assert caught.value.text == f"cannot {action} {A}: {why}"


def test_the_other_host_is_still_controlled() -> None:
    """The sibling: with host-a cut off, SIPS_B on host-b stops and starts as usual."""
    with sync_site(*pair_on_two_hosts()) as bench:
        bench.site.cut_lca_link(HOST_A)
        bench.site.stop(B)
        bench.at(1)
        assert bench.record(B).status is STOPPED
        bench.site.start(B)
        bench.at(2)
        assert bench.record(B).status is RUNNING
        assert bench.launcher.starts == {A: 1, B: 2}


def test_hangup_restart_needs_no_link() -> None:
    """The LCA restarts a hung application on its own authority, even with the SCS's link
    to it lost: the SCS learns of it when the link is back."""
    a, b = pair_on_two_hosts(**{"heartbeat-period": "5"})
    with sync_site(a, b) as bench:
        bench.at(10)
        bench.site.cut_lca_link(HOST_A)
        bench.site.hang(A)
        bench.at(30)
        assert bench.launcher.starts[A] == 2  # restarted behind the lost link
        assert bench.entries(A, JournalEvent.RESTARTED) == []  # the SCS has not heard of it
        link = bench.layer.hosts.named(HOST_A).link
        own = link.get(A)
        assert own is not None
        assert (own.up, own.status) == (True, RUNNING)
        link.restore(JournalEvent.LCA_LINK_RESTORED, "back")
        bench.at(31)
        assert bench.record(A).up
        assert bench.record(A).mode is BACKUP  # B took over at the cut; A is told BACKUP


def test_auto_restart_needs_no_link() -> None:
    """An application that exits unasked behind a lost link is started again by its LCA."""
    a = StubFixture(A, PRIMARY, host=HOST_A, auto_restart=True)
    with sync_site(a, stub(B, BACKUP, HOST_B)) as bench:
        bench.site.cut_lca_link(HOST_A, 10)
        bench.at(1)
        bench.site.kill(A)
        bench.at(20)
        assert bench.launcher.starts[A] == 2
        assert bench.record(A).up
        assert bench.times(A, JournalEvent.LCA_LINK_RESTORED) == [10]


def test_no_auto_restart_on_a_host_that_is_down() -> None:
    """The sibling: an application killed with its host is not restarted (its LCA is gone)."""
    a = StubFixture(A, PRIMARY, host=HOST_A, auto_restart=True)
    with sync_site(a, stub(B, BACKUP, HOST_B)) as bench:
        bench.site.host_down(HOST_A)
        bench.at(20)
        assert bench.launcher.starts[A] == 1
        assert not bench.layer.control.running(A)


# -- host up ----------------------------------------------------------------------------------


def test_host_up_starts_the_autostart_applications_only() -> None:
    """When a host is back, its applications with ``[sml] autostart: true`` start; the
    others stay STOPPED."""
    apps = (stub(A, PRIMARY, HOST_A, autostart="true"), stub(B, BACKUP, HOST_B), stub(C))
    with sync_site(*apps) as bench:
        bench.at(5)
        bench.site.host_down(HOST_A)
        bench.at(10)
        assert not bench.layer.control.running(A)
        assert not bench.layer.control.running(C)
        bench.site.host_up(HOST_A)
        bench.at(11)
        assert bench.times(A, JournalEvent.HOST_UP) == [10]
        assert bench.times(A, JournalEvent.START_REQUESTED) == [0, 10]
        assert bench.times(C, JournalEvent.START_REQUESTED) == [0]
        assert (bench.record(A).status, bench.record(A).mode) == (RUNNING, BACKUP)
        assert bench.record(C).status is STOPPED
        assert bench.launcher.starts == {A: 2, B: 1, C: 1}


def test_host_down_takes_every_application_on_it() -> None:
    """A host going down kills what runs there, and the SCS loses them at once: the RUNNING
    backup on the other host takes over."""
    with sync_site(*pair_on_two_hosts()) as bench:
        bench.at(30)
        bench.site.host_down(HOST_A)
        bench.at(31)
        assert not bench.layer.control.running(A)
        assert bench.record(A).status is UNKNOWN
        (switchover,) = bench.entries(B, JournalEvent.SWITCHOVER)
        assert switchover.time == 30
        assert "primary SIPS_A lost with its host" in switchover.detail
        assert bench.record(B).mode is PRIMARY


@dataclass
class DyingProcess:
    """A process that takes its time to die of a kill (a real one is reaped later)."""

    pid: int
    exited: Deferred[ProcessExit] = field(default_factory=Deferred)

    def die(self) -> None:
        """The kill takes effect now."""
        if not self.exited.called:
            self.exited.callback(ProcessExit(None, 9))

    def stop(self, grace: float, ask: Callable[[], bool]) -> Deferred[ProcessExit]:
        self.die()
        return self.exited

    def kill(self) -> Deferred[ProcessExit]:
        return self.exited

    def hang(self) -> None:
        pass


@dataclass
class DyingLauncher:
    """Starts :class:`DyingProcess` objects, every one kept."""

    started: list[DyingProcess] = field(default_factory=list)

    def launch(self, spec: ApplicationSpec, lca: str) -> DyingProcess:
        process = DyingProcess(pid=4711 + len(self.started))
        self.started.append(process)
        return process


def test_a_host_back_before_its_processes_died_starts_them_again() -> None:
    """A host down and up again before the kill of its process took effect (a real process
    takes a moment): autostart starts it anew, and the old process's end, heard later,
    is not an exit of the new one (it used to block the autostart: 'already running')."""
    launcher = DyingLauncher()
    site = Site(
        Clock(), applications=[stub(A, PRIMARY, autostart="true")], launcher=launcher, pairs=()
    )
    done(site.open())
    try:
        assert site.layer.start_all() == []
        done(site.run_until(5))
        site.host_down(HOST_A)
        assert not site.layer.control.running(A)
        site.host_up(HOST_A)
        assert len(launcher.started) == 2
        assert site.layer.control.running(A)
        old = launcher.started[0]
        old.die()
        done(site.run_until(6))
        assert site.layer.control.running(A)
        events = [e.event for e in site.layer.journal.entries(A)]
        assert events[-3:] == [
            JournalEvent.HOST_UP,
            JournalEvent.START_REQUESTED,
            JournalEvent.STARTED,
        ]
        record = site.record(A)
        assert record is not None
        assert (record.status, record.pid) == (ApplicationStatus.START_PENDING, 4712)
    finally:
        launcher.started[-1].die()
        done(site.close())


def test_a_process_that_dies_of_its_kill_at_once_is_not_left_running() -> None:
    """The sibling: without host-up, the host's process is not running from the moment it
    went down, whenever its end is heard, and nothing starts it again."""
    launcher = DyingLauncher()
    site = Site(
        Clock(), applications=[stub(A, PRIMARY, autostart="true")], launcher=launcher, pairs=()
    )
    done(site.open())
    try:
        site.layer.start_all()
        site.host_down(HOST_A)
        assert not site.layer.control.running(A)
        launcher.started[0].die()
        done(site.run_until(30))
        assert len(launcher.started) == 1
        assert [e.event for e in site.layer.journal.entries(A)][-1] is JournalEvent.HOST_DOWN
    finally:
        done(site.close())


# -- no brain --------------------------------------------------------------------------------


def test_no_brain_when_both_members_go_down_with_their_host() -> None:
    """Both members on host-a: host down is "no brain" (20621), journaled once; a member
    up again after host-up is "recovered" (20623)."""
    apps = (stub(A, PRIMARY, HOST_A, autostart="true"), stub(B, BACKUP, HOST_A))
    with sync_site(*apps) as bench:
        bench.at(20)
        bench.site.host_down(HOST_A)
        bench.at(40)
        bench.site.host_up(HOST_A)
        bench.at(41)
        no_brain = bench.entries(B, JournalEvent.NO_BRAIN)
        assert [(e.time, e.log_id) for e in no_brain] == [
            (20, LOG_NO_BRAIN),
            (40, LOG_NO_BRAIN_RECOVERED),
        ]
        assert no_brain[0].detail == "SIPS_A/SIPS_B: neither SIPS_A nor SIPS_B is up"
        assert bench.entries(B, JournalEvent.SWITCHOVER) == []


def test_no_no_brain_while_a_member_on_another_host_is_up() -> None:
    """The sibling: one member's host going down leaves the other up: no brain is fine."""
    with sync_site(*pair_on_two_hosts()) as bench:
        bench.site.host_down(HOST_A)
        bench.at(10)
        assert bench.entries(B, JournalEvent.NO_BRAIN) == []


# -- flapping ---------------------------------------------------------------------------------


def test_two_switchovers_within_haflip_detect_timeout_are_flapping() -> None:
    """The primary role moving twice within 10 s (the default) is flapping (10327); 10 s
    after the last move without another it is stable again (10328)."""
    with sync_site(*pair_on_two_hosts()) as bench:
        bench.at(1)
        bench.site.switchover(A)
        bench.at(5)
        bench.site.switchover(B)
        bench.at(30)
        flapping = bench.entries(B, JournalEvent.FLAPPING)
        assert [(e.time, e.log_id) for e in flapping] == [
            (5, LOG_FLAPPING),
            (15, LOG_FLAPPING_STABLE),
        ]
        assert flapping[0].detail == (
            "SIPS_A/SIPS_B: the primary role moved twice within 10 s (haflip-detect-timeout)"
        )


def test_switchovers_further_apart_are_not_flapping() -> None:
    """The sibling: two moves 11 s apart are not flapping."""
    with sync_site(*pair_on_two_hosts()) as bench:
        bench.at(1)
        bench.site.switchover(A)
        bench.at(12)
        bench.site.switchover(B)
        bench.at(30)
        assert len(bench.entries(B, JournalEvent.SWITCHOVER)) == 1
        assert len(bench.entries(A, JournalEvent.SWITCHOVER)) == 1
        assert bench.entries(B, JournalEvent.FLAPPING) == []


def test_haflip_detect_timeout_minus_one_turns_flapping_off() -> None:
    """With haflip-detect-timeout -1, moves 4 s apart are not journaled as flapping."""
    with sync_site(*pair_on_two_hosts(), scs=ScsOptions(haflip_detect_timeout=-1)) as bench:
        bench.at(1)
        bench.site.switchover(A)
        bench.at(5)
        bench.site.switchover(B)
        bench.at(30)
        assert len(bench.entries(A, JournalEvent.SWITCHOVER)) == 1
        assert bench.entries(B, JournalEvent.FLAPPING) == []


def test_a_longer_haflip_detect_timeout_widens_the_window() -> None:
    """With haflip-detect-timeout 60, moves 30 s apart are flapping, stable 60 s later."""
    with sync_site(*pair_on_two_hosts(), scs=ScsOptions(haflip_detect_timeout=60)) as bench:
        bench.at(1)
        bench.site.switchover(A)
        bench.at(31)
        bench.site.switchover(B)
        bench.at(100)
        assert [(e.time, e.log_id) for e in bench.entries(B, JournalEvent.FLAPPING)] == [
            (31, LOG_FLAPPING),
            (91, LOG_FLAPPING_STABLE),
        ]


# -- the old primary is BACKUP before the new one is PRIMARY ------------------------------------


def test_promotion_follows_the_old_primarys_backup_acknowledgement() -> None:
    """A switchover asks the old primary for BACKUP and promotes the new one once it has
    acknowledged: in the same instant when it answers at once, never the other way."""
    with sync_site(*pair_on_two_hosts()) as bench:
        bench.at(10)
        bench.site.switchover(A)
        bench.at(11)
        journal = bench.layer.journal.entries()
        order = [
            (e.application, e.event, e.detail.split()[0] if e.detail else "")
            for e in journal
            if e.time == 10 and e.event in (JournalEvent.MODE_REQUESTED, JournalEvent.MODE)
        ]
        assert order == [
            (A, JournalEvent.MODE_REQUESTED, "BACKUP"),
            (A, JournalEvent.MODE, "acknowledged"),
            (B, JournalEvent.MODE_REQUESTED, "PRIMARY"),
            (B, JournalEvent.MODE, "acknowledged"),
        ]
        assert bench.layer.journal.entries(B)[-1].mode is PRIMARY
        assert bench.entries(B, JournalEvent.SPLIT_BRAIN) == []


def test_promotion_waits_for_a_silent_old_primary_then_goes_ahead() -> None:
    """An old primary that never acknowledges BACKUP (hung) holds the promotion for
    DEMOTION_WAIT seconds; then the new one is promoted anyway, and both being PRIMARY is
    journaled as a split brain."""
    with sync_site(*pair_on_two_hosts()) as bench:
        bench.at(10)
        bench.site.hang(A)
        bench.site.switchover(A)
        bench.at(10 + DEMOTION_WAIT - 0.001)
        assert bench.modes_requested(B)[-1] == (0, "BACKUP")
        bench.at(10 + DEMOTION_WAIT)
        promoted = bench.entries(B, JournalEvent.MODE_REQUESTED)[-1]
        assert (promoted.time, promoted.detail) == (
            10 + DEMOTION_WAIT,
            "PRIMARY (R6; SIPS_A did not acknowledge BACKUP within 10 s)",
        )
        split = bench.entries(B, JournalEvent.SPLIT_BRAIN)
        assert [(e.time, e.log_id) for e in split] == [(10 + DEMOTION_WAIT, LOG_SPLIT_BRAIN)]


def test_an_old_primary_that_drops_releases_the_promotion_at_once() -> None:
    """The held promotion goes ahead the moment the silent old primary is lost."""
    with sync_site(*pair_on_two_hosts()) as bench:
        bench.at(10)
        bench.site.hang(A)
        bench.site.switchover(A)
        bench.at(13)
        bench.site.cut_link(A, LinkCut.RESET)
        bench.at(14)
        assert bench.modes_requested(B)[-1] == (13, "PRIMARY")
        assert bench.entries(B, JournalEvent.SPLIT_BRAIN) == []


# -- closing a site, and the members behind a lost link ---------------------------------------


def test_a_site_closes_with_an_lca_link_still_lost() -> None:
    """Closing a site stops every application, those behind a lost link too: each LCA stops
    its own (the shutdown used to raise host-unreachable and leave them running)."""
    with sync_site(*pair_on_two_hosts()) as bench:
        bench.site.cut_lca_link(HOST_A)
        bench.at(5)
        control = bench.layer.control
        assert control.running(A)
        assert control.running(B)
    assert not control.running(A)
    assert not control.running(B)


def test_a_scenario_that_ends_during_a_cut_is_judged() -> None:
    """A run whose cut-lca-link lasts past its end finishes and is judged."""
    scenario = Scenario(
        name="cut past the end",
        path="cut.yaml",
        duration=60,
        applications=pair_on_two_hosts(),
        ha_pairs=(PAIR,),
        events=(ScenarioEvent(50, EventAction.CUT_LCA_LINK, HOST_A, seconds=100),),
        expectations=(Expectation(B, ExpectationKind.AT_END, mode=PRIMARY),),
    )
    result = done(run_scenario(scenario, Clock()))
    assert isinstance(result, ScenarioResult)
    assert result.passed, result.errors


def test_no_promotion_behind_a_lost_link_then_the_role_when_it_is_back() -> None:
    """During disconnect-switchover-timeout the SCS still shows the backup behind the lost
    link as up, but cannot reach it: the primary dying then is refused (R5), rather than a
    PRIMARY request lost with the link.  When the link is back the backup is told its new
    role (R7), so the pair has a primary."""
    scs = ScsOptions(disconnect_switchover_timeout=10)
    with sync_site(*pair_on_two_hosts(), scs=scs) as bench:
        bench.at(10)
        bench.site.cut_lca_link(HOST_B, 5)
        bench.at(12)
        bench.site.kill(A)
        bench.at(13)
        assert bench.modes_requested(B) == [(0, "BACKUP")]
        (refused,) = bench.entries(B, JournalEvent.SWITCHOVER_REFUSED)
        assert refused.time == 12
        assert bench.record(B).up  # as the SCS last saw it
        bench.at(20)
        assert bench.modes_requested(B)[-1] == (15, "PRIMARY")
        assert (bench.record(B).mode, bench.record(B).status) == (PRIMARY, RUNNING)


def test_a_member_back_as_it_was_is_told_its_role_again() -> None:
    """The sibling: after a short blip nothing changes hands; the member is told its role
    again (a request may have been lost with the link), which changes nothing."""
    scs = ScsOptions(disconnect_switchover_timeout=10)
    with sync_site(*pair_on_two_hosts(), scs=scs) as bench:
        bench.at(10)
        bench.site.cut_lca_link(HOST_A, 3)
        bench.at(20)
        assert bench.modes_requested(A) == [(0, "PRIMARY"), (13, "PRIMARY")]
        assert bench.modes_requested(B) == [(0, "BACKUP")]
        assert bench.entries(B, JournalEvent.SWITCHOVER) == []
        assert (bench.record(A).mode, bench.record(B).mode) == (PRIMARY, BACKUP)


def test_an_old_primary_behind_a_lost_link_is_made_backup_when_it_is_back() -> None:
    """A manual switchover while the primary's LCA is unreachable (the SCS still shows it
    up) cannot demote it: two PRIMARY members, journaled split brain.  When its link is back
    it is told BACKUP, and the split brain is over."""
    scs = ScsOptions(disconnect_switchover_timeout=10)
    with sync_site(*pair_on_two_hosts(), scs=scs) as bench:
        bench.at(10)
        bench.site.cut_lca_link(HOST_A, 5)
        bench.at(11)
        bench.site.switchover(A)
        bench.at(12)
        assert [e.time for e in bench.entries(B, JournalEvent.SPLIT_BRAIN)] == [11]
        bench.at(20)
        assert bench.modes_requested(A)[-1] == (15, "BACKUP")
        assert (bench.record(A).mode, bench.record(B).mode) == (BACKUP, PRIMARY)
        split = bench.entries(B, JournalEvent.SPLIT_BRAIN)
        assert [(e.time, e.detail) for e in split][-1] == (
            15,
            "SIPS_A/SIPS_B: recovered from split brain",
        )
