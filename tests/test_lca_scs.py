"""Clock-driven tests of the whole Management Layer (LCA + SCS + management endpoint).

Every test opens a :class:`~lca_emulator.harness.site.Site` on a virtual clock with
real loopback sockets, and drives it with the package's test doubles
(:class:`ScriptedApplication`, :class:`ManagementClient`).  Virtual time moves only
once all their traffic has been handled, so times below are exact.  Every message
a double receives is checked against the published JSON Schema.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from reactortest import reactor_test
from twisted.internet.defer import Deferred, succeed
from wireschema import assert_valid_wire

from lca_common.protocol.codec import encode
from lca_common.protocol.messages import (
    ApplicationStatus,
    ErrorCode,
    EventApplicationInfo,
    EventApplicationRegistered,
    EventChangeExecutionMode,
    EventError,
    EventOk,
    EventSwitchover,
    EventSwitchoverRefused,
    ExecutionMode,
    Message,
    RequestGetApplicationInfo,
    RequestHeartbeat,
    RequestStartApplication,
    RequestStopApplication,
    RequestSubscribe,
    RequestSwitchover,
    RequestUpdateStatus,
    ResponseExecutionModeChanged,
)
from lca_emulator.applications import ApplicationSpec
from lca_emulator.harness.site import RunMode, Site
from lca_emulator.journal import JournalEntry, JournalEvent
from lca_emulator.lca.processes import ProcessExit
from lca_emulator.registry import ApplicationRecord
from lca_emulator.scs.ha import PairMachineState, PairState
from lca_emulator.scs.server import HaPair
from lca_emulator.testing import ManagementClient, ScriptedApplication
from sipserver_stub.fixture import StubFixture

A = "SIPS_A"
B = "SIPS_B"
PAIR = HaPair(A, B)
SERVICE = "SIPS_A/SIPS_B"

RUNNING = ApplicationStatus.RUNNING
SU = ApplicationStatus.SERVICE_UNAVAILABLE
UNKNOWN = ApplicationStatus.UNKNOWN
STOPPED = ApplicationStatus.STOPPED
PRIMARY = ExecutionMode.PRIMARY
BACKUP = ExecutionMode.BACKUP

CLOSE_TIMEOUT = 20.0
"""Wall-clock seconds a test double may take to see its connection close."""


def wire(message: Message) -> dict[str, Any]:
    """``message`` as it travels: encoded, then parsed back as plain JSON."""
    obj: dict[str, Any] = json.loads(encode(message))
    return obj


# -- fakes: a launcher whose processes the test ends ----------------------------------


@dataclass
class FakeProcess:
    """A started application whose exit the test decides (``end``)."""

    pid: int
    exited: Deferred[ProcessExit] = field(default_factory=Deferred)
    asked: int = 0

    def end(self, code: int | None = 0, signal: int | None = None) -> None:
        """The process ends now."""
        if not self.exited.called:
            self.exited.callback(ProcessExit(code, signal))

    def stop(self, grace: float, ask: Callable[[], bool]) -> Deferred[ProcessExit]:
        """Asked to stop: it asks the application, then exits at once."""
        self.asked += 1
        ask()
        self.end(0)
        return succeed(ProcessExit(0, None))

    def kill(self) -> Deferred[ProcessExit]:
        """Killed: it exits at once."""
        self.end(None, 9)
        return succeed(ProcessExit(None, 9))

    def hang(self) -> None:
        """Hanging is the test double's business (it speaks through ScriptedApplication)."""


@dataclass
class FakeLauncher:
    """Starts :class:`FakeProcess` objects with pids from 4711 on."""

    started: dict[str, FakeProcess] = field(default_factory=dict)

    def launch(self, spec: ApplicationSpec, lca: str) -> FakeProcess:
        process = FakeProcess(pid=4711 + len(self.started))
        self.started[spec.name] = process
        return process


# -- the bench: a site plus the test doubles talking to it -----------------------------


class Bench:
    """A virtual-clock site with HA pair SIPS_A/SIPS_B and the doubles the test opened."""

    def __init__(self, reactor: Any, site: Site, launcher: FakeLauncher) -> None:
        self.reactor = reactor
        self.site = site
        self.peers: list[ScriptedApplication | ManagementClient] = []
        self.launcher = launcher

    async def app(
        self,
        name: str,
        *,
        register: bool = True,
        host: str | None = None,
        pid: int | None = None,
        follow_modes: bool = True,
    ) -> ScriptedApplication:
        """A connected application (registered unless ``register`` is False), settled."""
        app = ScriptedApplication(
            self.reactor,
            self.site.lca_port,
            name,
            network=self.site.network,
            host=host,
            pid=pid,
            follow_modes=follow_modes,
        )
        self.peers.append(app)
        await app.connect()
        if register:
            reply = await app.register()
            assert isinstance(reply, EventApplicationRegistered)
        await self.settle()
        return app

    async def running(self, name: str, **kwargs: Any) -> ScriptedApplication:
        """A registered application that reports RUNNING in the mode it was given."""
        app = await self.app(name, **kwargs)
        app.report(RUNNING)
        await self.settle()
        return app

    async def client(self, *, subscribe: bool = False) -> ManagementClient:
        """A connected management client, subscribed if asked."""
        client = ManagementClient(self.reactor, self.site.scs_port, network=self.site.network)
        self.peers.append(client)
        await client.connect()
        if subscribe:
            reply = await client.request(RequestSubscribe(ref=client.next_ref()))
            assert reply == EventOk(ref=1)
        await self.settle()
        return client

    async def ask(self, client: ManagementClient, message: Message) -> Message:
        """Send a request and return its reply, once everything it caused has settled."""
        reply = await client.request(message)
        await self.settle()
        return reply

    async def settle(self) -> None:
        await self.site.settle()

    async def at(self, when: float) -> None:
        """Let virtual time reach ``when``."""
        await self.site.run_until(when)

    async def gone(self, peer: ScriptedApplication | ManagementClient) -> None:
        """Wait until ``peer``'s connection has closed (the other side closed it)."""
        await peer.closed.addTimeout(CLOSE_TIMEOUT, self.reactor)
        await self.settle()

    async def drop(self, app: ScriptedApplication, *, abort: bool = True) -> None:
        """Close ``app``'s connection (abort: like a crash) and let the LCA see it."""
        app.disconnect(abort=abort)
        await self.gone(app)

    def record(self, name: str) -> ApplicationRecord:
        record = self.site.layer.registry.get(name)
        assert record is not None, f"{name} is not known"
        return record

    def journal(self, name: str, event: JournalEvent) -> list[JournalEntry]:
        return [e for e in self.site.layer.journal.entries(name) if e.event is event]

    def now(self) -> float:
        return self.site.now()

    def pair(self) -> PairMachineState:
        """Where the SIPS_A/SIPS_B decision machine stands."""
        machine = self.site.layer.scs.state_of(A)
        assert machine is not None
        return machine.current

    async def close(self) -> None:
        """Check every message the doubles received, close them, close the site."""
        for peer in self.peers:
            for message in peer.received:
                assert_valid_wire(wire(message))
        for peer in self.peers:
            peer.disconnect()
        for peer in self.peers:
            await peer.closed.addTimeout(CLOSE_TIMEOUT, self.reactor)
        await self.site.close()


@pytest.fixture
def reactor() -> Any:
    from twisted.internet import reactor as global_reactor

    return global_reactor


@asynccontextmanager
async def bench(
    reactor: Any,
    *,
    heartbeat: float | None = None,
    applications: tuple[StubFixture, ...] = (),
) -> AsyncIterator[Bench]:
    """Open a virtual-clock site with the pair SIPS_A/SIPS_B; close it afterwards."""
    launcher = FakeLauncher()
    site = Site(
        reactor,
        applications=applications,
        pairs=[PAIR],
        mode=RunMode.VIRTUAL,
        heartbeat=heartbeat,
        launcher=launcher,
    )
    await site.open()
    b = Bench(reactor, site, launcher)
    try:
        yield b
    finally:
        await b.close()


CONFIGURED = (StubFixture(A, mode=PRIMARY, host="host-a"), StubFixture(B, host="host-b"))
"""SIPS_A and SIPS_B in the configuration, so the LCA can start them (fake launcher)."""


async def healthy_pair(b: Bench) -> tuple[ScriptedApplication, ScriptedApplication]:
    """SIPS_A primary and SIPS_B backup, both RUNNING."""
    a = await b.running(A, host="host-a", pid=4711)
    bb = await b.running(B, host="host-b", pid=4712)
    assert (b.record(A).mode, b.record(B).mode) == (PRIMARY, BACKUP)
    return a, bb


def switchovers(client: ManagementClient) -> list[EventSwitchover]:
    return [m for m in client.received if isinstance(m, EventSwitchover)]


def refusals(client: ManagementClient) -> list[EventSwitchoverRefused]:
    return [m for m in client.received if isinstance(m, EventSwitchoverRefused)]


def infos(client: ManagementClient, name: str) -> list[tuple[str, str, float]]:
    """The (status, mode, time) notifications ``client`` received for ``name``."""
    return [
        (m.status.value, m.mode.value, m.time)
        for m in client.received
        if isinstance(m, EventApplicationInfo) and m.application == name and m.ref is None
    ]


def errors(peer: ScriptedApplication | ManagementClient) -> list[EventError]:
    return [m for m in peer.received if isinstance(m, EventError)]


# == HA rules ===========================================================================


@reactor_test
async def test_r1_configured_primary_first(reactor: Any) -> None:
    """R1: the configured primary registering first is PRIMARY; the backup then BACKUP."""
    async with bench(reactor) as b:
        a = await b.app(A)
        assert a.modes_requested() == [PRIMARY]
        bb = await b.app(B)
        assert bb.modes_requested() == [BACKUP]
        assert (b.record(A).mode, b.record(B).mode) == (PRIMARY, BACKUP)
        details = [e.detail for e in b.journal(B, JournalEvent.MODE_REQUESTED)]
        assert details == ["BACKUP (R1)"]


@reactor_test
async def test_r1_backup_first_while_primary_starts(reactor: Any) -> None:
    """R1: the backup registering while the LCA is starting the primary is BACKUP."""
    async with bench(reactor, applications=CONFIGURED) as b:
        b.site.layer.control.start(A)
        assert b.record(A).status is ApplicationStatus.START_PENDING
        bb = await b.app(B)
        assert bb.modes_requested() == [BACKUP]
        a = await b.app(A, pid=4711)
        assert a.modes_requested() == [PRIMARY]
        assert (b.record(A).mode, b.record(B).mode) == (PRIMARY, BACKUP)


@reactor_test
async def test_r2_lone_backup_is_primary(reactor: Any) -> None:
    """R2: the backup registering with its peer nowhere is PRIMARY; the peer then BACKUP."""
    async with bench(reactor) as b:
        bb = await b.app(B)
        assert bb.modes_requested() == [PRIMARY]
        assert [e.detail for e in b.journal(B, JournalEvent.MODE_REQUESTED)] == ["PRIMARY (R2)"]
        a = await b.app(A)
        assert a.modes_requested() == [BACKUP]
        assert (b.record(A).mode, b.record(B).mode) == (BACKUP, PRIMARY)


@pytest.mark.parametrize("backup_status", [RUNNING, SU])
@reactor_test
async def test_r3_primary_exits_before_registering(
    reactor: Any, backup_status: ApplicationStatus
) -> None:
    """R3: the started primary exits before registering: a RUNNING backup takes over,
    a SERVICE_UNAVAILABLE one is refused (R5)."""
    async with bench(reactor, applications=CONFIGURED) as b:
        watcher = await b.client(subscribe=True)
        b.site.layer.control.start(A)
        bb = await b.app(B)
        bb.report(backup_status)
        await b.at(30)
        b.launcher.started[A].end(code=1)
        await b.settle()
        assert b.record(A).status is STOPPED
        if backup_status is RUNNING:
            assert bb.modes_requested() == [BACKUP, PRIMARY]
            assert switchovers(watcher) == [
                EventSwitchover(SERVICE, A, B, "primary SIPS_A exited", 30.0)
            ]
        else:
            assert bb.modes_requested() == [BACKUP]
            reason = "primary SIPS_A exited; backup SIPS_B is SERVICE_UNAVAILABLE, not RUNNING"
            assert refusals(watcher) == [EventSwitchoverRefused(SERVICE, A, B, reason, 30.0)]


@reactor_test
async def test_r4_primary_disconnects(reactor: Any) -> None:
    """R4: the primary's connection drops: the RUNNING backup is promoted at that moment."""
    async with bench(reactor) as b:
        watcher = await b.client(subscribe=True)
        a, bb = await healthy_pair(b)
        await b.at(42)
        await b.drop(a)
        assert switchovers(watcher) == [
            EventSwitchover(SERVICE, A, B, "primary SIPS_A disconnected", 42.0)
        ]
        assert bb.modes_requested() == [BACKUP, PRIMARY]
        assert (b.record(A).status, b.record(B).mode) == (UNKNOWN, PRIMARY)
        assert ("UNKNOWN", "PRIMARY", 42.0) in infos(watcher, A)
        assert ("RUNNING", "PRIMARY", 42.0) in infos(watcher, B)
        (entry,) = b.journal(B, JournalEvent.SWITCHOVER)
        assert entry.time == 42.0
        assert entry.detail.endswith("primary SIPS_A disconnected (R4)")


@reactor_test
async def test_r4_primary_process_exits(reactor: Any) -> None:
    """R4: the LCA sees the primary's process exit: STOPPED, and the backup takes over."""
    async with bench(reactor, applications=CONFIGURED) as b:
        watcher = await b.client(subscribe=True)
        b.site.layer.control.start(A)
        a = await b.running(A, pid=4711)
        bb = await b.running(B)
        await b.at(60)
        b.launcher.started[A].end(code=None, signal=9)
        await b.settle()
        assert b.record(A).status is STOPPED
        assert switchovers(watcher) == [
            EventSwitchover(SERVICE, A, B, "primary SIPS_A exited", 60.0)
        ]
        assert bb.modes_requested() == [BACKUP, PRIMARY]
        # The dead process's socket closes afterwards: it stays STOPPED, not UNKNOWN.
        await b.drop(a)
        assert b.record(A).status is STOPPED
        assert len(switchovers(watcher)) == 1


@reactor_test
async def test_r4_primary_hangs_at_the_exact_heartbeat_time(reactor: Any) -> None:
    """R4: with heartbeat 10 s, a primary silent since t=0 is hung at t=10 exactly."""
    async with bench(reactor, heartbeat=10.0) as b:
        watcher = await b.client(subscribe=True)
        a, bb = await healthy_pair(b)
        assert a.of_type(EventApplicationRegistered) == [
            EventApplicationRegistered(ref=1, heartbeat=10.0)
        ]
        for t in (5, 9.5):
            await b.at(t)
            bb.heartbeat()
        await b.at(9.999)
        assert b.record(A).status is RUNNING
        assert switchovers(watcher) == []
        await b.at(10)
        (hung,) = b.journal(A, JournalEvent.HUNG)
        assert (hung.time, hung.status, hung.detail) == (10.0, UNKNOWN, "silent for 10 s")
        assert switchovers(watcher) == [EventSwitchover(SERVICE, A, B, "primary SIPS_A hung", 10.0)]
        assert b.record(B).mode is PRIMARY


@reactor_test
async def test_r4_hung_primary_that_recovers_is_demoted(reactor: Any) -> None:
    """R4: a hung primary that speaks again after the switchover is told BACKUP (one primary)."""
    async with bench(reactor, heartbeat=10.0) as b:
        a, bb = await healthy_pair(b)
        await b.at(5)
        bb.heartbeat()
        await b.at(12)
        assert b.record(B).mode is PRIMARY
        a.heartbeat()
        await b.settle()
        assert b.record(A).status is RUNNING
        assert a.modes_requested() == [PRIMARY, BACKUP]
        assert (b.record(A).mode, b.record(B).mode) == (BACKUP, PRIMARY)


@reactor_test
async def test_r7_hung_primary_back_keeps_the_role_from_a_newcomer(reactor: Any) -> None:
    """R5 then R7: a primary hung with no backup to take over still believes it is primary
    when it speaks again, so a backup registering afterwards is told BACKUP, not PRIMARY."""
    async with bench(reactor, heartbeat=10.0) as b:
        watcher = await b.client(subscribe=True)
        a = await b.app(A)
        a.report(ApplicationStatus.INITIALIZING)
        await b.at(10)
        (refusal,) = refusals(watcher)
        assert refusal.reason == "primary SIPS_A hung; backup SIPS_B is not connected"
        assert b.pair() == PairMachineState(PairState.FAILED, A, holding=False)
        await b.at(12)
        a.heartbeat()
        await b.settle()
        assert b.pair() == PairMachineState(PairState.FAILED, A, holding=True)
        bb = await b.app(B)
        assert bb.modes_requested() == [BACKUP]
        assert (b.record(A).mode, b.record(B).mode) == (PRIMARY, BACKUP)
        a.report(RUNNING)  # healthy after all: the pair is ACTIVE again (R8)
        await b.settle()
        assert b.pair() == PairMachineState(PairState.ACTIVE, A)


@pytest.mark.parametrize("failing", [SU, STOPPED, UNKNOWN])
@reactor_test
async def test_r4_primary_reports_a_failing_status(
    reactor: Any, failing: ApplicationStatus
) -> None:
    """R4: a primary reporting SERVICE_UNAVAILABLE (or STOPPED, UNKNOWN) is switched to
    BACKUP and the RUNNING backup becomes PRIMARY."""
    async with bench(reactor) as b:
        watcher = await b.client(subscribe=True)
        a, bb = await healthy_pair(b)
        await b.at(70)
        a.report(failing)
        await b.settle()
        reason = f"primary SIPS_A reported {failing.value}"
        assert switchovers(watcher) == [EventSwitchover(SERVICE, A, B, reason, 70.0)]
        assert a.modes_requested() == [PRIMARY, BACKUP]
        assert bb.modes_requested() == [BACKUP, PRIMARY]
        assert (b.record(A).mode, b.record(B).mode) == (BACKUP, PRIMARY)


@pytest.mark.parametrize("failure", ["disconnect", "exit", "hang", "unavailable"])
@reactor_test
async def test_r5_unavailable_backup_is_never_promoted(reactor: Any, failure: str) -> None:
    """R5: whatever the primary's failure, a SERVICE_UNAVAILABLE backup is not promoted;
    the refusal is journaled and announced with its reason."""
    async with bench(reactor, heartbeat=10.0, applications=CONFIGURED) as b:
        watcher = await b.client(subscribe=True)
        b.site.layer.control.start(A)
        a = await b.running(A)
        bb = await b.app(B)
        bb.report(SU)
        for t in range(1, 12):  # the backup stays alive throughout
            await b.at(t)
            bb.heartbeat()
            if failure != "hang" and t < 11:
                a.heartbeat()
        # t = 11 (hang: the primary was found hung at t = 10)
        if failure == "disconnect":
            await b.drop(a)
        elif failure == "exit":
            b.launcher.started[A].end(code=1)
        elif failure == "unavailable":
            a.report(SU)
        await b.settle()
        cause = {
            "disconnect": ("disconnected", 11.0),
            "exit": ("exited", 11.0),
            "hang": ("hung", 10.0),
            "unavailable": ("reported SERVICE_UNAVAILABLE", 11.0),
        }[failure]
        reason = f"primary SIPS_A {cause[0]}; backup SIPS_B is SERVICE_UNAVAILABLE, not RUNNING"
        assert refusals(watcher) == [EventSwitchoverRefused(SERVICE, A, B, reason, cause[1])]
        assert switchovers(watcher) == []
        (entry,) = b.journal(B, JournalEvent.SWITCHOVER_REFUSED)
        assert entry.time == cause[1]
        assert entry.detail == f"{SERVICE}: SIPS_A -> SIPS_B: {reason} (R5)"
        assert bb.modes_requested() == [BACKUP]
        assert b.record(B).mode is BACKUP
        assert b.journal(B, JournalEvent.SWITCHOVER) == []


@reactor_test
async def test_r5_missing_backup_is_not_promoted(reactor: Any) -> None:
    """R5: the primary fails with no backup connected: refused, 'not connected'."""
    async with bench(reactor) as b:
        watcher = await b.client(subscribe=True)
        a = await b.running(A)
        await b.drop(a)
        reason = "primary SIPS_A disconnected; backup SIPS_B is not connected"
        assert refusals(watcher) == [EventSwitchoverRefused(SERVICE, A, B, reason, 0.0)]


@reactor_test
async def test_r6_manual_switchover_accepted(reactor: Any) -> None:
    """R6: RequestSwitchover with a RUNNING backup: EventOk, EventSwitchover, modes swap."""
    async with bench(reactor) as b:
        watcher = await b.client(subscribe=True)
        a, bb = await healthy_pair(b)
        await b.at(120)
        reply = await b.ask(watcher, RequestSwitchover(ref=7, application=A))
        assert reply == EventOk(ref=7)
        assert switchovers(watcher) == [EventSwitchover(SERVICE, A, B, "manual switchover", 120.0)]
        assert a.modes_requested() == [PRIMARY, BACKUP]
        assert bb.modes_requested() == [BACKUP, PRIMARY]
        assert ("RUNNING", "PRIMARY", 120.0) in infos(watcher, B)
        assert ("RUNNING", "BACKUP", 120.0) in infos(watcher, A)
        # and back again, naming the other member
        reply = await b.ask(watcher, RequestSwitchover(ref=8, application=A))
        assert reply == EventOk(ref=8)
        assert (b.record(A).mode, b.record(B).mode) == (PRIMARY, BACKUP)


@reactor_test
async def test_r6_manual_switchover_refused(reactor: Any) -> None:
    """R6: RequestSwitchover with a SERVICE_UNAVAILABLE backup: switchover-refused, announced."""
    async with bench(reactor) as b:
        watcher = await b.client(subscribe=True)
        other = await b.client()
        a = await b.running(A)
        bb = await b.app(B)
        bb.report(SU)
        await b.at(130)
        reply = await b.ask(other, RequestSwitchover(ref=8, application=B))
        reason = "manual switchover; backup SIPS_B is SERVICE_UNAVAILABLE, not RUNNING"
        assert reply == EventError(ErrorCode.SWITCHOVER_REFUSED, reason, ref=8)
        assert refusals(watcher) == [EventSwitchoverRefused(SERVICE, A, B, reason, 130.0)]
        assert refusals(other) == []  # not subscribed: only the reply
        assert (b.journal(B, JournalEvent.SWITCHOVER_REFUSED)[0].time) == 130.0
        assert a.modes_requested() == [PRIMARY]
        assert (b.record(A).mode, b.record(B).mode) == (PRIMARY, BACKUP)


@reactor_test
async def test_r7_restarted_primary_takes_the_service_back(reactor: Any) -> None:
    """R7: after a refused switchover, the primary registering again is PRIMARY again."""
    async with bench(reactor) as b:
        watcher = await b.client(subscribe=True)
        a = await b.running(A)
        bb = await b.app(B)
        bb.report(SU)
        await b.at(120)
        await b.drop(a)
        assert len(refusals(watcher)) == 1
        await b.at(150)
        again = await b.running(A)
        assert again.modes_requested() == [PRIMARY]
        assert [e.detail for e in b.journal(A, JournalEvent.MODE_REQUESTED)][-1] == "PRIMARY (R7)"
        assert (b.record(A).status, b.record(A).mode) == (RUNNING, PRIMARY)
        assert b.record(B).mode is BACKUP
        assert switchovers(watcher) == []


@reactor_test
async def test_r7_r8_newcomer_backup_then_takes_over(reactor: Any) -> None:
    """R7: while the failed primary still holds the role a restarted backup is BACKUP;
    R8: once that backup is RUNNING it takes over and the failed primary is demoted."""
    async with bench(reactor) as b:
        watcher = await b.client(subscribe=True)
        a = await b.running(A)
        bb = await b.app(B)
        bb.report(SU)
        await b.at(10)
        a.report(SU)  # the primary fails but stays connected: it still holds the role
        await b.settle()
        assert len(refusals(watcher)) == 1
        await b.drop(bb)
        await b.at(20)
        restarted = await b.app(B)
        assert restarted.modes_requested() == [BACKUP]
        assert b.journal(B, JournalEvent.MODE_REQUESTED)[-1].detail == "BACKUP (R7)"
        await b.at(25)
        restarted.report(RUNNING)
        await b.settle()
        assert switchovers(watcher) == [
            EventSwitchover(SERVICE, A, B, "primary SIPS_A failed earlier", 25.0)
        ]
        assert restarted.modes_requested() == [BACKUP, PRIMARY]
        assert a.modes_requested() == [PRIMARY, BACKUP]
        assert (b.record(A).mode, b.record(B).mode) == (BACKUP, PRIMARY)


@reactor_test
async def test_r8_failed_primary_running_again_keeps_the_role(reactor: Any) -> None:
    """R8: a failed primary that reports RUNNING again is healthy again (ACTIVE): a later
    failure is judged afresh."""
    async with bench(reactor) as b:
        watcher = await b.client(subscribe=True)
        a = await b.running(A)
        bb = await b.app(B)
        bb.report(SU)
        a.report(SU)
        await b.settle()
        assert b.pair() == PairMachineState(PairState.FAILED, A, holding=True)
        await b.at(5)
        a.report(RUNNING)
        await b.settle()
        assert b.pair() == PairMachineState(PairState.ACTIVE, A)
        assert a.modes_requested() == [PRIMARY]
        await b.at(8)
        bb.report(RUNNING)
        await b.drop(a)
        assert switchovers(watcher) == [
            EventSwitchover(SERVICE, A, B, "primary SIPS_A disconnected", 8.0)
        ]


@reactor_test
async def test_r8_running_backup_after_the_primary_left(reactor: Any) -> None:
    """R8: a backup that turns RUNNING after a refused failover takes over (no one to demote)."""
    async with bench(reactor) as b:
        watcher = await b.client(subscribe=True)
        a = await b.running(A)
        bb = await b.app(B)
        bb.report(ApplicationStatus.INITIALIZING)
        await b.at(3)
        await b.drop(a)
        assert [r.reason for r in refusals(watcher)] == [
            "primary SIPS_A disconnected; backup SIPS_B is INITIALIZING, not RUNNING"
        ]
        await b.at(9)
        bb.report(RUNNING)
        await b.settle()
        assert switchovers(watcher) == [
            EventSwitchover(SERVICE, A, B, "primary SIPS_A failed earlier", 9.0)
        ]
        assert bb.modes_requested() == [BACKUP, PRIMARY]


@reactor_test
async def test_switchover_without_a_primary_is_refused(reactor: Any) -> None:
    """R6: a switchover while nobody holds the primary role is refused."""
    async with bench(reactor, applications=CONFIGURED) as b:
        client = await b.client()
        b.site.layer.control.start(A)
        await b.running(B)
        reply = await b.ask(client, RequestSwitchover(ref=3, application=A))
        assert reply == EventError(
            ErrorCode.SWITCHOVER_REFUSED, "manual switchover; no healthy primary (waiting)", ref=3
        )


# == LCA behaviours =====================================================================


@reactor_test
async def test_drop_makes_a_registered_application_unknown(reactor: Any) -> None:
    """A registered application whose connection drops is UNKNOWN, journaled and announced."""
    async with bench(reactor) as b:
        watcher = await b.client(subscribe=True)
        app = await b.running("MONITOR_1", host="host-m", pid=99)
        await b.at(17)
        await b.drop(app, abort=False)
        record = b.record("MONITOR_1")
        assert (record.status, record.connected, record.registered) == (UNKNOWN, False, False)
        assert b.journal("MONITOR_1", JournalEvent.DISCONNECTED)[0].time == 17.0
        assert infos(watcher, "MONITOR_1")[-1] == ("UNKNOWN", "UNKNOWN", 17.0)


@reactor_test
async def test_exit_makes_it_stopped_and_silences_its_connection(reactor: Any) -> None:
    """After the LCA saw the process exit it is STOPPED; its late lines and its
    connection closing change nothing."""
    async with bench(reactor) as b:
        app = await b.running("MONITOR_1", pid=99)
        b.site.layer.lca.process_exited("MONITOR_1", "exited with code 0")
        await b.settle()
        assert b.record("MONITOR_1").status is STOPPED
        assert b.record("MONITOR_1").pid is None
        app.report(RUNNING)  # written before it died, read after: stale
        await b.settle()
        assert b.record("MONITOR_1").status is STOPPED
        await b.drop(app)
        assert b.record("MONITOR_1").status is STOPPED


@reactor_test
async def test_reregistration_takes_over_the_name(reactor: Any) -> None:
    """A second connection registering a live name wins; the old one is closed, state kept."""
    async with bench(reactor) as b:
        old = await b.running("MONITOR_1", pid=10)
        new = await b.app("MONITOR_1", pid=11)
        await b.gone(old)
        record = b.record("MONITOR_1")
        assert (record.connected, record.registered, record.pid) == (True, True, 11)
        assert b.journal("MONITOR_1", JournalEvent.DISCONNECTED) == []
        new.report(SU)
        await b.settle()
        assert b.record("MONITOR_1").status is SU


@reactor_test
async def test_reregistered_member_keeps_the_pair_straight(reactor: Any) -> None:
    """A restarted primary reclaiming its name before the drop is seen is PRIMARY again."""
    async with bench(reactor) as b:
        old, bb = await healthy_pair(b)
        new = await b.app(A)
        await b.gone(old)
        assert new.modes_requested() == [PRIMARY]
        assert bb.modes_requested() == [BACKUP]


@reactor_test
async def test_not_registered(reactor: Any) -> None:
    """Anything before RequestRegisterApplication gets not-registered; the connection stays."""
    async with bench(reactor) as b:
        app = await b.app("MONITOR_1", register=False)
        app.send(RequestUpdateStatus(status=RUNNING, mode=BACKUP))
        app.send(RequestHeartbeat())
        app.send(ResponseExecutionModeChanged(ref=5, mode=BACKUP))
        await b.settle()
        assert errors(app) == [
            EventError(
                ErrorCode.NOT_REGISTERED, "RequestUpdateStatus before RequestRegisterApplication"
            ),
            EventError(
                ErrorCode.NOT_REGISTERED, "RequestHeartbeat before RequestRegisterApplication"
            ),
            EventError(
                ErrorCode.NOT_REGISTERED,
                "ResponseExecutionModeChanged before RequestRegisterApplication",
                ref=5,
            ),
        ]
        assert b.site.layer.registry.get("MONITOR_1") is None
        await app.register()
        app.report(RUNNING)
        await b.settle()
        assert b.record("MONITOR_1").status is RUNNING


@reactor_test
async def test_already_registered(reactor: Any) -> None:
    """A second registration on one connection gets already-registered (with its ref)."""
    async with bench(reactor) as b:
        app = await b.app("MONITOR_1")
        reply = await app.register()
        assert reply == EventError(
            ErrorCode.ALREADY_REGISTERED,
            "this connection is already registered as 'MONITOR_1'",
            ref=2,
        )
        app.report(RUNNING)
        await b.settle()
        assert b.record("MONITOR_1").status is RUNNING


@reactor_test
async def test_unknown_ref(reactor: Any) -> None:
    """A ResponseExecutionModeChanged for no pending request gets unknown-ref; a repeated
    answer too."""
    async with bench(reactor) as b:
        a = await b.app(A)
        (change,) = a.of_type(EventChangeExecutionMode)
        assert isinstance(change, EventChangeExecutionMode)
        a.send(ResponseExecutionModeChanged(ref=9, mode=BACKUP))
        a.send(ResponseExecutionModeChanged(ref=change.ref, mode=BACKUP))  # already answered
        await b.settle()
        assert errors(a) == [
            EventError(
                ErrorCode.UNKNOWN_REF, "no EventChangeExecutionMode with ref 9 is pending", 9
            ),
            EventError(
                ErrorCode.UNKNOWN_REF,
                f"no EventChangeExecutionMode with ref {change.ref} is pending",
                change.ref,
            ),
        ]
        assert b.record(A).mode is PRIMARY


@reactor_test
async def test_mode_is_recorded_when_acknowledged(reactor: Any) -> None:
    """The LCA records a new mode when the application acknowledges it, not when asked."""
    async with bench(reactor) as b:
        a = await b.app(A, follow_modes=False)
        assert a.modes_requested() == [PRIMARY]
        assert b.record(A).mode is PRIMARY
        (entry,) = b.journal(A, JournalEvent.MODE)
        assert entry.detail == "acknowledged PRIMARY"


@reactor_test
async def test_acknowledgement_without_ref_answers_the_latest_request(reactor: Any) -> None:
    """As vendor SDK samples do, a ResponseExecutionModeChanged without ref is accepted:
    it answers the latest EventChangeExecutionMode (no EventError)."""
    async with bench(reactor) as b:
        a = ScriptedApplication(
            reactor, b.site.lca_port, A, network=b.site.network, acknowledge=False
        )
        b.peers.append(a)
        await a.connect()
        await a.register()
        await b.settle()
        assert a.modes_requested() == [PRIMARY]
        a.send(ResponseExecutionModeChanged(mode=PRIMARY))
        await b.settle()
        assert b.record(A).mode is PRIMARY
        assert a.of_type(EventError) == []
        (entry,) = b.journal(A, JournalEvent.MODE)
        assert entry.detail == "acknowledged PRIMARY"


@reactor_test
async def test_heartbeat_silence_and_recovery(reactor: Any) -> None:
    """A silent application is UNKNOWN at the heartbeat deadline; its next message
    restores the status it last reported."""
    async with bench(reactor, heartbeat=10.0) as b:
        watcher = await b.client(subscribe=True)
        app = await b.running("MONITOR_1")
        await b.at(4)
        app.heartbeat()  # deadline moves to 14
        await b.at(13.9)
        assert b.record("MONITOR_1").status is RUNNING
        await b.at(14)
        assert (b.record("MONITOR_1").status, b.record("MONITOR_1").hung) == (UNKNOWN, True)
        await b.at(20)
        app.heartbeat()
        await b.settle()
        assert (b.record("MONITOR_1").status, b.record("MONITOR_1").hung) == (RUNNING, False)
        assert [(e.event, e.time) for e in b.site.layer.journal.entries("MONITOR_1")][-2:] == [
            (JournalEvent.HUNG, 14.0),
            (JournalEvent.RECOVERED, 20.0),
        ]
        assert infos(watcher, "MONITOR_1")[-2:] == [
            ("UNKNOWN", "UNKNOWN", 14.0),
            ("RUNNING", "UNKNOWN", 20.0),
        ]


@reactor_test
async def test_any_message_counts_as_a_heartbeat(reactor: Any) -> None:
    """Status reports keep an application alive as well as RequestHeartbeat does."""
    async with bench(reactor, heartbeat=10.0) as b:
        app = await b.running("MONITOR_1")
        for t in range(6, 61, 6):
            await b.at(t)
            app.report(RUNNING if t % 12 else SU)
        await b.at(60)
        assert b.journal("MONITOR_1", JournalEvent.HUNG) == []


@reactor_test
async def test_without_heartbeat_silence_is_fine(reactor: Any) -> None:
    """Without a heartbeat period, registration says none and silence is never hanging."""
    async with bench(reactor) as b:
        app = await b.running("MONITOR_1")
        assert app.of_type(EventApplicationRegistered) == [EventApplicationRegistered(ref=1)]
        await b.at(3600)
        assert b.record("MONITOR_1").status is RUNNING
        assert b.journal("MONITOR_1", JournalEvent.HUNG) == []


@reactor_test
async def test_unpaired_application_keeps_its_mode(reactor: Any) -> None:
    """An application in no HA pair is never sent EventChangeExecutionMode."""
    async with bench(reactor) as b:
        app = await b.app("MONITOR_1")
        app.report(RUNNING, PRIMARY)
        await b.settle()
        assert app.modes_requested() == []
        assert b.record("MONITOR_1").mode is PRIMARY


# == management endpoint ================================================================


@reactor_test
async def test_get_application_info(reactor: Any) -> None:
    """RequestGetApplicationInfo answers with the record, echoing the ref."""
    async with bench(reactor) as b:
        client = await b.client()
        await healthy_pair(b)
        await b.at(3)
        reply = await b.ask(client, RequestGetApplicationInfo(ref=1, application=A))
        assert reply == EventApplicationInfo(A, RUNNING, PRIMARY, 0.0, "host-a", 4711, ref=1)
        assert wire(reply) == {
            "message": "EventApplicationInfo",
            "application": "SIPS_A",
            "status": "RUNNING",
            "mode": "PRIMARY",
            "time": 0.0,
            "host": "host-a",
            "pid": 4711,
            "ref": 1,
        }


@reactor_test
async def test_get_info_of_an_unknown_application(reactor: Any) -> None:
    """An unknown name is answered with unknown-application, and the client may go on."""
    async with bench(reactor) as b:
        client = await b.client()
        reply = await b.ask(client, RequestGetApplicationInfo(ref=2, application="SIPS_C"))
        assert reply == EventError(
            ErrorCode.UNKNOWN_APPLICATION, "no application named 'SIPS_C'", ref=2
        )
        reply = await b.ask(client, RequestSubscribe(ref=3))
        assert reply == EventOk(ref=3)


@reactor_test
async def test_configured_application_not_started(reactor: Any) -> None:
    """A configured application that was never started is STOPPED with mode UNKNOWN."""
    async with bench(reactor, applications=CONFIGURED) as b:
        client = await b.client()
        reply = await b.ask(client, RequestGetApplicationInfo(ref=1, application=B))
        assert isinstance(reply, EventApplicationInfo)
        assert (reply.status, reply.mode) == (STOPPED, ExecutionMode.UNKNOWN)


@reactor_test
async def test_subscribe_snapshot_then_notifications(reactor: Any) -> None:
    """RequestSubscribe: EventOk, one snapshot line per known application in the order
    they became known, then every change; a second subscribe only says EventOk."""
    async with bench(reactor) as b:
        await healthy_pair(b)
        await b.running("MONITOR_1")
        client = await b.client()
        reply = await b.ask(client, RequestSubscribe(ref=3))
        assert reply == EventOk(ref=3)
        snapshot = client.received[1:]
        assert [
            (m.application, m.ref) for m in snapshot if isinstance(m, EventApplicationInfo)
        ] == [
            (A, None),
            (B, None),
            ("MONITOR_1", None),
        ]
        assert len(snapshot) == 3
        reply = await b.ask(client, RequestSubscribe(ref=4))
        assert reply == EventOk(ref=4)
        assert len(client.received) == 5  # no second snapshot
        await b.at(50)
        monitor = await b.app("MONITOR_2")
        monitor.report(SU, BACKUP)
        await b.settle()
        # registering is not a change (a new record starts UNKNOWN); the report is
        assert infos(client, "MONITOR_2") == [("SERVICE_UNAVAILABLE", "BACKUP", 50.0)]


@reactor_test
async def test_unsubscribed_client_gets_only_replies(reactor: Any) -> None:
    """A client that did not subscribe receives nothing it did not ask for."""
    async with bench(reactor) as b:
        client = await b.client()
        a, _ = await healthy_pair(b)
        await b.drop(a)
        assert client.received == []


@reactor_test
async def test_start_and_stop_of_an_unmanaged_application(reactor: Any) -> None:
    """Start/stop of a registered but unconfigured application: not-managed; unknown names:
    unknown-application."""
    async with bench(reactor) as b:
        client = await b.client()
        await b.running("MONITOR_1")
        text = "MONITOR_1 is not in the configuration; it is only tracked"
        for ref, request in enumerate(
            [
                RequestStartApplication(ref=1, application="MONITOR_1"),
                RequestStopApplication(ref=2, application="MONITOR_1"),
            ],
            start=1,
        ):
            reply = await b.ask(client, request)
            assert reply == EventError(ErrorCode.NOT_MANAGED, text, ref=ref)
        reply = await b.ask(client, RequestStartApplication(ref=3, application="NOPE"))
        assert reply == EventError(ErrorCode.UNKNOWN_APPLICATION, "no application named 'NOPE'", 3)
        assert b.record("MONITOR_1").status is RUNNING


@reactor_test
async def test_start_and_stop_of_a_configured_application(reactor: Any) -> None:
    """Start of a configured application: EventOk, START_PENDING; again: already-running;
    stop: EventOk, EXITING sent, then STOPPED."""
    async with bench(reactor, applications=CONFIGURED) as b:
        client = await b.client()
        reply = await b.ask(client, RequestStartApplication(ref=1, application=A))
        assert reply == EventOk(ref=1)
        assert b.record(A).status is ApplicationStatus.START_PENDING
        reply = await b.ask(client, RequestStartApplication(ref=2, application=A))
        assert reply == EventError(ErrorCode.ALREADY_RUNNING, "SIPS_A is already running", 2)
        a = await b.running(A)
        reply = await b.ask(client, RequestStopApplication(ref=3, application=A))
        assert reply == EventOk(ref=3)
        assert a.modes_requested() == [PRIMARY, ExecutionMode.EXITING]
        assert b.record(A).status is STOPPED
        reply = await b.ask(client, RequestStopApplication(ref=4, application=A))
        assert reply == EventOk(ref=4)  # stopping what is not running is accepted


@reactor_test
async def test_switchover_of_unpaired_or_unknown_application(reactor: Any) -> None:
    """RequestSwitchover: not-paired for an application in no pair, unknown-application
    for a name nobody knows."""
    async with bench(reactor) as b:
        client = await b.client()
        await b.running("MONITOR_1")
        reply = await b.ask(client, RequestSwitchover(ref=9, application="MONITOR_1"))
        assert reply == EventError(ErrorCode.NOT_PAIRED, "MONITOR_1 is in no HA pair", ref=9)
        reply = await b.ask(client, RequestSwitchover(ref=10, application="NOPE"))
        assert reply == EventError(
            ErrorCode.UNKNOWN_APPLICATION, "no application named 'NOPE'", ref=10
        )


@reactor_test
async def test_subscriber_leaving_does_not_disturb_others(reactor: Any) -> None:
    """A subscriber that disconnects stops getting notifications; the others go on."""
    async with bench(reactor) as b:
        leaving = await b.client(subscribe=True)
        staying = await b.client(subscribe=True)
        leaving.disconnect()
        await b.gone(leaving)
        app = await b.running("MONITOR_1")
        app.report(SU)
        await b.settle()
        assert infos(leaving, "MONITOR_1") == []
        assert [s for s, _, _ in infos(staying, "MONITOR_1")] == [
            "RUNNING",
            "SERVICE_UNAVAILABLE",
        ]
