"""The Python API of a site, as a pytest user drives it (the lca_site_factory fixture):
start, kill, hang, switch over, set options and wait, on the virtual clock."""

from __future__ import annotations

from typing import Any

import pytest
from reactortest import reactor_test

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_emulator.harness.model import HaPair
from lca_emulator.journal import JournalEvent
from lca_emulator.lca.control import ControlError
from lca_emulator.scs.server import SwitchoverRefusedError
from sipserver_stub.fixture import StubFixture

PRIMARY = StubFixture("SIPS_A", ExecutionMode.PRIMARY, host="host-a")
BACKUP = StubFixture("SIPS_B", ExecutionMode.BACKUP, host="host-b")
PAIR = HaPair("SIPS_A", "SIPS_B")


@reactor_test
async def test_drive_a_pair_from_python(lca_site_factory: Any) -> None:
    """Start both, switch over by hand, kill the new primary, see the takeover."""
    site = await lca_site_factory(
        applications=[PRIMARY, BACKUP], pairs=[HaPair("SIPS_A", "SIPS_B")]
    )
    site.start("SIPS_A")
    site.start("SIPS_B")
    await site.wait_for("SIPS_B", ApplicationStatus.RUNNING, ExecutionMode.BACKUP, within=5)
    site.switchover("SIPS_A")
    assert await site.wait_for("SIPS_B", mode=ExecutionMode.PRIMARY, within=1) == 0
    await site.run_until(30)
    site.kill("SIPS_B")
    assert await site.wait_for("SIPS_A", mode=ExecutionMode.PRIMARY, within=1) == 30
    with pytest.raises(ControlError, match="already running"):
        site.start("SIPS_A")


@reactor_test
async def test_a_refused_switchover_says_why(lca_site_factory: Any) -> None:
    """A switchover to a backup that is not RUNNING raises with the reason."""
    broken = StubFixture(
        "SIPS_B",
        ExecutionMode.BACKUP,
        host="host-b",
        options={"TServer": {"backup-init-check": "true"}},
        sip_port=0,
    )
    site = await lca_site_factory(
        applications=[PRIMARY, broken], pairs=[HaPair("SIPS_A", "SIPS_B")]
    )
    site.set_option("SIPS_B", "TServer", "backup-init-check-timeout", "15")
    site.start("SIPS_A")
    site.start("SIPS_B")
    site.hang("SIPS_B")
    await site.run_until(20)
    with pytest.raises(SwitchoverRefusedError, match="SIPS_B"):
        site.switchover("SIPS_A")
    refusals = site.layer.journal.entries("SIPS_B")
    assert any(e.event is JournalEvent.SWITCHOVER_REFUSED for e in refusals)


@reactor_test
async def test_wait_for_says_what_it_saw(lca_site_factory: Any) -> None:
    """A wait that times out fails with the observed timeline, not a hang."""
    site = await lca_site_factory(applications=[BACKUP])
    site.start("SIPS_B")
    with pytest.raises(AssertionError, match="SIPS_B did not show PRIMARY within 5 s"):
        await site.wait_for("SIPS_B", mode=ExecutionMode.PRIMARY, within=5)
