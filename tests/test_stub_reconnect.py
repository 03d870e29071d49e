"""The stub's LCA link: after a lost connection it reconnects (ClientService), registers
again and re-reports its current status and mode, on the virtual clock."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from reactortest import reactor_test

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_emulator.harness.site import Site
from lca_emulator.journal import JournalEvent
from lca_emulator.scs.server import HaPair
from sipserver_stub.fixture import Component, ComponentPlan, ComponentResult, StubFixture

PRIMARY = StubFixture(application="SIPS_A", mode=ExecutionMode.PRIMARY, host="a")
BACKUP = StubFixture(
    application="SIPS_B",
    mode=ExecutionMode.BACKUP,
    host="b",
    options={"TServer": {"backup-init-check": "true"}},
    components={Component.SMART_PROXY: ComponentPlan(ComponentResult.FAIL, after=5)},
)


@reactor_test
async def test_dropped_stub_registers_again_and_re_reports(
    lca_site_factory: Callable[..., Coroutine[Any, Any, Site]],
) -> None:
    """A backup whose connection drops comes back, registers, and reports its verdict again."""
    site = await lca_site_factory(
        applications=[PRIMARY, BACKUP], pairs=[HaPair("SIPS_A", "SIPS_B")]
    )
    site.layer.start_all()
    assert await site.wait_for("SIPS_B", ApplicationStatus.SERVICE_UNAVAILABLE, within=10) == 5

    await site.run_until(50)
    site.layer.lca.disconnect("SIPS_B", abort=True)
    await site.settle()
    assert site.record("SIPS_B").status is ApplicationStatus.UNKNOWN  # type: ignore[union-attr]

    back = await site.wait_for(
        "SIPS_B", ApplicationStatus.SERVICE_UNAVAILABLE, ExecutionMode.BACKUP, within=10
    )
    assert back == 50.75  # ClientService's first retry: 0.5 s x 1.5, without jitter
    events = [(e.time, e.event) for e in site.layer.journal.entries("SIPS_B") if e.time >= 50]
    assert events[:3] == [
        (50, JournalEvent.DISCONNECTED),
        (50.75, JournalEvent.REGISTERED),
        (50.75, JournalEvent.MODE_REQUESTED),
    ]
    assert site.record("SIPS_B").up  # type: ignore[union-attr]


@reactor_test
async def test_primary_drop_and_return_keeps_the_pair_consistent(
    lca_site_factory: Callable[..., Coroutine[Any, Any, Site]],
) -> None:
    """A primary that drops while the backup is unavailable is refused a switchover, then
    takes the role back when it re-registers: never two primaries."""
    site = await lca_site_factory(
        applications=[PRIMARY, BACKUP], pairs=[HaPair("SIPS_A", "SIPS_B")]
    )
    site.layer.start_all()
    await site.run_until(20)
    site.layer.lca.disconnect("SIPS_A", abort=True)
    await site.wait_for("SIPS_A", ApplicationStatus.RUNNING, ExecutionMode.PRIMARY, within=10)
    timeline = site.timeline()
    assert [c.value for c in timeline.changes("SIPS_B", mode=True)] == ["UNKNOWN", "BACKUP"]
    refusals = site.layer.journal.entries("SIPS_B")
    assert [e.time for e in refusals if e.event is JournalEvent.SWITCHOVER_REFUSED] == [20]
