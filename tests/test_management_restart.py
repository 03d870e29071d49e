"""RequestRestartApplication (our extension): a graceful stop, then a start that reads
the options changed since; over loopback on the virtual clock."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from reactortest import reactor_test
from twisted.internet import reactor
from wireschema import assert_valid_wire

from lca_common.protocol.codec import encode
from lca_common.protocol.messages import (
    ApplicationStatus,
    ErrorCode,
    EventError,
    EventOk,
    ExecutionMode,
    RequestRestartApplication,
)
from lca_emulator.harness.site import Site
from lca_emulator.journal import JournalEvent
from lca_emulator.testing import ManagementClient, ScriptedApplication
from sipserver_stub.fixture import Component, ComponentPlan, ComponentResult, StubFixture

SiteFactory = Callable[..., Coroutine[Any, Any, Site]]


BACKUP = StubFixture(
    application="SIPS_B",
    mode=ExecutionMode.BACKUP,
    options={"TServer": {"backup-init-check": "true"}},
    components={Component.T_CONTROLLER: ComponentPlan(ComponentResult.FAIL, after=5)},
)


async def client(site: Site) -> ManagementClient:
    """A management client connected to the site's SCS endpoint."""
    scs = ManagementClient(reactor, site.scs_port, network=site.network)
    await scs.connect()
    return scs


@reactor_test
async def test_restart_applies_options_changed_since(lca_site_factory: SiteFactory) -> None:
    """A restart stops gracefully, starts again, and the new start reads the changed option."""
    site = await lca_site_factory(applications=[BACKUP])
    site.layer.start_all()
    await site.wait_for("SIPS_B", ApplicationStatus.SERVICE_UNAVAILABLE, within=10)
    site.layer.control.set_option("SIPS_B", "TServer", "backup-init-check", "false")
    await site.run_until(30)
    assert site.record("SIPS_B").status is ApplicationStatus.SERVICE_UNAVAILABLE  # type: ignore[union-attr]

    scs = await client(site)
    reply = await scs.request(RequestRestartApplication(ref=1, application="SIPS_B"))
    assert reply == EventOk(ref=1)
    assert await site.wait_for("SIPS_B", ApplicationStatus.RUNNING, within=10) == 30
    events = [e.event for e in site.layer.journal.entries("SIPS_B") if e.time == 30]
    assert events[:2] == [JournalEvent.STOP_REQUESTED, JournalEvent.MODE]
    assert JournalEvent.EXITED in events
    assert events.index(JournalEvent.EXITED) < events.index(JournalEvent.START_REQUESTED)
    assert events[-1] is JournalEvent.STATUS
    for message in scs.received:
        assert_valid_wire(json.loads(encode(message)))


@reactor_test
async def test_restart_of_unmanaged_or_unknown_is_refused(lca_site_factory: SiteFactory) -> None:
    """Only configured applications restart: not-managed, unknown-application otherwise."""
    site = await lca_site_factory()
    app = ScriptedApplication(reactor, site.lca_port, "MONITOR_1", network=site.network)
    await app.connect()
    await app.register()
    scs = await client(site)
    not_managed = await scs.request(RequestRestartApplication(ref=1, application="MONITOR_1"))
    unknown = await scs.request(RequestRestartApplication(ref=2, application="NOPE"))
    assert isinstance(not_managed, EventError)
    assert not_managed.code is ErrorCode.NOT_MANAGED
    assert isinstance(unknown, EventError)
    assert unknown.code is ErrorCode.UNKNOWN_APPLICATION


PRIMARY = StubFixture(application="SIPS_A", mode=ExecutionMode.PRIMARY)


@reactor_test
async def test_two_restarts_at_once_are_one(lca_site_factory: SiteFactory) -> None:
    """A restart asked for while one is under way joins it: one stop, one start, no error."""
    site = await lca_site_factory(applications=[PRIMARY])
    site.layer.start_all()
    await site.run_until(10)
    first = site.layer.control.restart("SIPS_A")
    second = site.layer.control.restart("SIPS_A")
    await site.run_until(20)
    assert first.called
    assert second.called
    starts = [e for e in site.layer.journal.entries("SIPS_A") if e.event is JournalEvent.STARTED]
    assert [e.time for e in starts] == [0, 10]
    assert site.record("SIPS_A").status is ApplicationStatus.RUNNING  # type: ignore[union-attr]


@reactor_test
async def test_stop_during_a_restart_wins(lca_site_factory: SiteFactory) -> None:
    """A stop that comes in while a restart is under way cancels the restart's start."""
    site = await lca_site_factory(applications=[PRIMARY])
    site.layer.start_all()
    await site.run_until(10)
    site.layer.control.restart("SIPS_A")
    site.layer.control.stop("SIPS_A")
    await site.run_until(20)
    assert site.record("SIPS_A").status is ApplicationStatus.STOPPED  # type: ignore[union-attr]
    assert not site.layer.control.running("SIPS_A")
