"""The stub as a real OS process (``python -m sipserver_stub``) against an emulated LCA
in this process, over real loopback TCP: one test per outcome of the backup check.

The stub runs with ``--time-scale 0.01`` (its 60 s timeout takes 0.6 s); what counts is
the status the emulator received, read from its registry and journal.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import yaml
from reactortest import reactor_test
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IReactorProcess, IReactorTime

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_emulator.journal import JournalEvent
from lca_emulator.layer import ManagementLayer
from lca_emulator.lca.processes import ChildProcess, ProcessExit, ProcessLauncher, ProcessSpec
from lca_emulator.registry import ApplicationRecord, RecordChange
from sipserver_stub.sip_port import LOOPBACK, OccupiedPort

TIME_SCALE = 0.01
"""Real seconds per stub second: the default 60 s timeout takes 0.6 s."""

WAIT_LIMIT = 20.0
"""Wall-clock bound on any wait, so a broken test fails instead of hanging."""

GRACE = 2.0
"""Wall-clock seconds a stub has to exit after EXITING before it is signalled."""

RUNNING = ApplicationStatus.RUNNING
UNAVAILABLE = ApplicationStatus.SERVICE_UNAVAILABLE
INITIALIZING = ApplicationStatus.INITIALIZING


class EmulatedSite:
    """An emulated Management Layer on loopback port 0, and the stub processes it watches."""

    def __init__(self, reactor: Any, layer: ManagementLayer, lca_port: int) -> None:
        self.reactor = reactor
        self.clock = cast(IReactorTime, reactor)
        self.layer = layer
        self.lca_port = lca_port
        self.launcher = ProcessLauncher(cast(IReactorProcess, reactor), self.clock)
        self.children: list[ChildProcess] = []

    def start_stub(self, fixture: Path, *extra: str) -> ChildProcess:
        """Run ``python -m sipserver_stub FIXTURE`` against this LCA, scaled."""
        argv = (
            sys.executable,
            "-m",
            "sipserver_stub",
            str(fixture),
            "--lca",
            f"tcp:{LOOPBACK}:{self.lca_port}",
            "--time-scale",
            str(TIME_SCALE),
            *extra,
        )
        child = self.launcher.start(fixture.stem, ProcessSpec(argv=argv))
        self.children.append(child)
        return child

    def wait_for(
        self, application: str, accept: Callable[[ApplicationRecord], bool]
    ) -> Deferred[ApplicationRecord]:
        """Fire with ``application``'s record once ``accept`` holds for it (bounded)."""
        d: Deferred[ApplicationRecord] = Deferred()
        record = self.layer.registry.get(application)
        if record is not None and accept(record):
            d.callback(record)
            return d

        def changed(change: RecordChange) -> None:
            after = change.after
            if after.name == application and not d.called and accept(after):
                d.callback(after)

        stop = self.layer.registry.changes.subscribe(changed)

        def done(result: object) -> object:
            stop()
            return result

        d.addBoth(done)
        return d.addTimeout(WAIT_LIMIT, self.clock)

    def wait_for_status(
        self, application: str, status: ApplicationStatus
    ) -> Deferred[ApplicationRecord]:
        """Fire once ``application`` has reported ``status``."""
        return self.wait_for(application, lambda record: record.reported_status is status)

    def reported(self, application: str) -> list[ApplicationStatus]:
        """The statuses ``application`` reported, in order, as the LCA journaled them."""
        return [
            entry.status
            for entry in self.layer.journal.entries(application)
            if entry.event is JournalEvent.STATUS
        ]

    def status_time(self, application: str, status: ApplicationStatus) -> float:
        """When the LCA first heard ``status`` from ``application`` (reactor seconds)."""
        return next(
            entry.time
            for entry in self.layer.journal.entries(application)
            if entry.event is JournalEvent.STATUS and entry.status is status
        )

    async def stop_stub(self, child: ChildProcess) -> ProcessExit:
        """Ask the stub to exit (EXITING); signals follow if it does not."""
        exited = child.stop(
            GRACE, lambda: self.layer.lca.change_mode(child.name, ExecutionMode.EXITING)
        )
        outcome = await exited.addTimeout(WAIT_LIMIT, self.clock)
        record = self.layer.registry.get(child.name)
        if record is not None and record.connected:
            await self.wait_for(child.name, lambda r: not r.connected)
        return outcome


@asynccontextmanager
async def emulated_site() -> AsyncIterator[EmulatedSite]:
    """An emulated LCA + SCS listening on loopback port 0; stubs left running are killed."""
    from twisted.internet import reactor

    layer = ManagementLayer(cast(IReactorTime, reactor))
    ports = await layer.listen(
        TCP4ServerEndpoint(reactor, 0, interface=LOOPBACK),
        TCP4ServerEndpoint(reactor, 0, interface=LOOPBACK),
    )
    site = EmulatedSite(reactor, layer, ports.lca.getHost().port)  # type: ignore[attr-defined]
    try:
        yield site
    finally:
        for child in site.children:
            await child.kill().addTimeout(WAIT_LIMIT, site.clock)
        await layer.shutdown().addTimeout(WAIT_LIMIT, site.clock)


def write_fixture(folder: Path, application: str, **fields: object) -> Path:
    """A backup stub fixture file for ``application`` (``sip_port_state`` -> ``sip-port-state``)."""
    document: dict[str, object] = {"application": application, "host": "host-b", "mode": "backup"}
    document.update({key.replace("_", "-"): value for key, value in fields.items()})
    path = folder / f"{application}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


CHECK_ON = {"TServer": {"backup-init-check": True}}


@reactor_test
async def test_process_all_components_ok_is_running(tmp_path: Path) -> None:
    """A backup process whose components all complete reports RUNNING, with its own pid."""
    fixture = write_fixture(
        tmp_path,
        "SIPS_OK",
        options=CHECK_ON,
        components={"smart-proxy": {"result": "ok", "after": 20}},
    )
    async with emulated_site() as site:
        child = site.start_stub(fixture)
        record = await site.wait_for_status("SIPS_OK", RUNNING)
        assert record.pid == child.pid
        assert record.mode is ExecutionMode.BACKUP
        assert record.host == "host-b"
        assert site.reported("SIPS_OK") == [INITIALIZING, RUNNING]
        assert await site.stop_stub(child) == ProcessExit(code=0, signal=None)


@reactor_test
async def test_process_failing_component_is_service_unavailable(tmp_path: Path) -> None:
    """A backup process whose T-Controller fails reports SERVICE_UNAVAILABLE, never RUNNING."""
    fixture = write_fixture(
        tmp_path,
        "SIPS_FAIL",
        options=CHECK_ON,
        components={"t-controller": {"result": "fail", "after": 5}},
    )
    async with emulated_site() as site:
        child = site.start_stub(fixture)
        await site.wait_for_status("SIPS_FAIL", UNAVAILABLE)
        assert RUNNING not in site.reported("SIPS_FAIL")
        assert await site.stop_stub(child) == ProcessExit(code=0, signal=None)
        assert RUNNING not in site.reported("SIPS_FAIL")


@reactor_test
async def test_process_hang_is_service_unavailable_at_the_timeout(tmp_path: Path) -> None:
    """A hanging component: INITIALIZING, then SERVICE_UNAVAILABLE no sooner than the timeout."""
    options = {"TServer": {"backup-init-check": True, "backup-init-check-timeout": 100}}
    fixture = write_fixture(
        tmp_path, "SIPS_HANG", options=options, components={"operational-info": "hang"}
    )
    async with emulated_site() as site:
        spawned = site.clock.seconds()
        child = site.start_stub(fixture)
        await site.wait_for_status("SIPS_HANG", UNAVAILABLE)
        assert site.reported("SIPS_HANG") == [INITIALIZING, UNAVAILABLE]
        waited = site.status_time("SIPS_HANG", UNAVAILABLE) - spawned
        assert waited >= 100 * TIME_SCALE
        assert await site.stop_stub(child) == ProcessExit(code=0, signal=None)


@reactor_test
async def test_process_startup_counts_from_its_epoch(tmp_path: Path) -> None:
    """With --epoch, the timeout counts from the start request: a 3600 s timeout (36 s
    here) asked for 40 s ago has run out, so SERVICE_UNAVAILABLE comes at once."""
    options = {"TServer": {"backup-init-check": True, "backup-init-check-timeout": 3600}}
    fixture = write_fixture(
        tmp_path, "SIPS_EPOCH", options=options, components={"operational-info": "hang"}
    )
    async with emulated_site() as site:
        epoch = site.clock.seconds() - 40
        child = site.start_stub(fixture, "--epoch", repr(epoch))
        await site.wait_for_status("SIPS_EPOCH", UNAVAILABLE)  # within WAIT_LIMIT, not 36 s
        assert RUNNING not in site.reported("SIPS_EPOCH")
        assert await site.stop_stub(child) == ProcessExit(code=0, signal=None)


@reactor_test
async def test_an_epoch_in_the_future_counts_from_now(tmp_path: Path) -> None:
    """An --epoch ahead of the clock (clocks apart) is taken as now, and said: the 15 s
    timeout still runs out, instead of never."""
    options = {"TServer": {"backup-init-check": True, "backup-init-check-timeout": 15}}
    fixture = write_fixture(
        tmp_path, "SIPS_AHEAD", options=options, components={"operational-info": "hang"}
    )
    async with emulated_site() as site:
        child = site.start_stub(fixture, "--epoch", repr(site.clock.seconds() + 100_000))
        await site.wait_for_status("SIPS_AHEAD", UNAVAILABLE)
        assert RUNNING not in site.reported("SIPS_AHEAD")
        assert await site.stop_stub(child) == ProcessExit(code=0, signal=None)


@reactor_test
async def test_process_port_taken_by_the_test_is_service_unavailable(tmp_path: Path) -> None:
    """A SIP port this test really occupies makes the backup SERVICE_UNAVAILABLE at once."""
    with OccupiedPort(0) as occupied:
        fixture = write_fixture(tmp_path, "SIPS_BUSY", options=CHECK_ON, sip_port=occupied.port)
        async with emulated_site() as site:
            child = site.start_stub(fixture)
            await site.wait_for_status("SIPS_BUSY", UNAVAILABLE)
            assert RUNNING not in site.reported("SIPS_BUSY")
            assert await site.stop_stub(child) == ProcessExit(code=0, signal=None)


@reactor_test
async def test_process_port_in_use_per_fixture_is_service_unavailable(tmp_path: Path) -> None:
    """``sip-port-state: in-use``: the stub command takes the port first, then fails its probe."""
    fixture = write_fixture(
        tmp_path, "SIPS_INUSE", options=CHECK_ON, sip_port=0, sip_port_state="in-use"
    )
    async with emulated_site() as site:
        child = site.start_stub(fixture)
        await site.wait_for_status("SIPS_INUSE", UNAVAILABLE)
        assert RUNNING not in site.reported("SIPS_INUSE")
        assert await site.stop_stub(child) == ProcessExit(code=0, signal=None)


@reactor_test
async def test_process_busy_port_under_ip_takeover_is_running(tmp_path: Path) -> None:
    """With control-vip-scripts true the busy port is not probed: RUNNING."""
    options = {"TServer": {"backup-init-check": True, "control-vip-scripts": True}}
    with OccupiedPort(0) as occupied:
        fixture = write_fixture(tmp_path, "SIPS_VIP", options=options, sip_port=occupied.port)
        async with emulated_site() as site:
            child = site.start_stub(fixture)
            await site.wait_for_status("SIPS_VIP", RUNNING)
            assert UNAVAILABLE not in site.reported("SIPS_VIP")
            assert await site.stop_stub(child) == ProcessExit(code=0, signal=None)


@reactor_test
async def test_process_check_off_is_running_despite_failures(tmp_path: Path) -> None:
    """With the check off (default) a backup with a failing component still reports RUNNING."""
    fixture = write_fixture(
        tmp_path, "SIPS_OFF", components={"t-controller": {"result": "fail", "after": 1}}
    )
    async with emulated_site() as site:
        child = site.start_stub(fixture)
        await site.wait_for_status("SIPS_OFF", RUNNING)
        assert await site.stop_stub(child) == ProcessExit(code=0, signal=None)
        assert UNAVAILABLE not in site.reported("SIPS_OFF")
