"""The Python API of a site, as a pytest user drives it (the lca_site_factory fixture):
start, kill, hang, switch over, set options, inject host and link faults and wait, on
the virtual clock."""

from __future__ import annotations

from typing import Any

import pytest
from reactortest import reactor_test
from twisted.internet.task import deferLater

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_emulator.harness import site as site_module
from lca_emulator.harness.model import HaPair, LinkCut
from lca_emulator.harness.site import TooManyStepsError
from lca_emulator.journal import JournalEvent
from lca_emulator.lca.control import ControlError
from lca_emulator.scs.server import ScsOptions, SwitchoverRefusedError
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


@reactor_test
async def test_faults_from_python(lca_site_factory: Any) -> None:
    """The fault API a pytest user drives: host down and up, an LCA link cut for a time,
    an application's own link cut, reset and delayed, each seen in the site's records."""
    site = await lca_site_factory(
        applications=[PRIMARY, BACKUP],
        pairs=[PAIR],
        hosts=["host-c"],
        scs_options=ScsOptions(disconnect_switchover_timeout=5),
    )
    site.start("SIPS_A")
    site.start("SIPS_B")
    await site.wait_for("SIPS_B", ApplicationStatus.RUNNING, ExecutionMode.BACKUP, within=1)

    site.cut_lca_link("host-b", 3)  # shorter than disconnect-switchover-timeout: no harm
    assert await site.wait_for("SIPS_B", mode=ExecutionMode.BACKUP, within=1) == 0
    await site.run_until(10)
    events = [(e.time, e.event) for e in site.layer.journal.entries("SIPS_B")]
    assert (0, JournalEvent.LCA_LINK_LOST) in events
    assert (3, JournalEvent.LCA_LINK_RESTORED) in events
    assert JournalEvent.SWITCHOVER not in [event for _, event in events]

    site.delay_link("SIPS_A", 2000)  # the switchover's BACKUP takes 4 s to be acknowledged
    site.switchover("SIPS_A")
    assert await site.wait_for("SIPS_B", mode=ExecutionMode.PRIMARY, within=10) == 14
    site.delay_link("SIPS_A", 0)

    site.host_down("host-b")  # the SCS cannot tell a host down from a link lost: it waits
    assert await site.wait_for("SIPS_A", mode=ExecutionMode.PRIMARY, within=6) == 19
    record = site.record("SIPS_B")
    assert record is not None
    assert record.status is ApplicationStatus.UNKNOWN
    with pytest.raises(ControlError, match="host host-b is down already"):
        site.host_down("host-b")
    await site.run_until(20)
    site.host_up("host-b")
    await site.run_until(21)
    assert site.record("SIPS_B").status is ApplicationStatus.STOPPED  # its new LCA's view

    site.cut_link("SIPS_A", LinkCut.RESET, seconds=2)
    await site.run_until(22)
    assert [e.event for e in site.layer.journal.entries("SIPS_A")][-1] is JournalEvent.DISCONNECTED
    await site.wait_for("SIPS_A", ApplicationStatus.RUNNING, ExecutionMode.PRIMARY, within=5)
    assert site.now() >= 23
    site.cut_link("SIPS_A", "stall")
    with pytest.raises(ValueError, match="'explode' is not a valid LinkCut"):
        site.cut_link("SIPS_A", "explode")
    with pytest.raises(ControlError, match="no host named 'host-z'"):
        site.cut_lca_link("host-z")


@reactor_test
async def test_a_virtual_run_stops_past_the_step_limit(
    lca_site_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_until raises TooManyStepsError past MAX_VIRTUAL_STEPS moments (heartbeats that
    would go on for a virtual eternity), and turns the reactor every YIELD_EVERY steps,
    so that Ctrl-C and SIGTERM are heard during a long run."""
    monkeypatch.setattr(site_module, "MAX_VIRTUAL_STEPS", 300)
    monkeypatch.setattr(site_module, "YIELD_EVERY", 10)
    turns: list[float] = []

    def counted(clock: Any, delay: float, *args: Any) -> Any:
        turns.append(delay)
        return deferLater(clock, delay, *args)

    monkeypatch.setattr(site_module, "deferLater", counted)
    site = await lca_site_factory(applications=[PRIMARY], heartbeat=3)
    site.start("SIPS_A")
    with pytest.raises(TooManyStepsError, match="more than 300 steps of virtual time"):
        await site.run_until(10_000)
    assert 200 < site.clock.seconds() < 400  # about one beat a second
    assert turns == [0] * 30


@reactor_test
async def test_an_aborted_close_kills_everything_and_leaks_nothing() -> None:
    """close(abort=True), the end of a virtual-time run: every application is killed
    (no graceful stop, no auto-restart), a port a stub held is free again, and the
    site no longer listens."""
    import socket

    from twisted.internet import reactor

    from lca_emulator.harness.site import Site
    from sipserver_stub.fixture import SipPortState

    restarting = StubFixture("SIPS_A", ExecutionMode.PRIMARY, host="host-a", auto_restart=True)
    holding = StubFixture(
        "SIPS_B",
        ExecutionMode.BACKUP,
        host="host-b",
        sip_port=0,
        sip_port_state=SipPortState.IN_USE,
    )
    site = Site(reactor, applications=[restarting, holding], pairs=[PAIR])
    await site.open()
    site.start("SIPS_A")
    site.start("SIPS_B")
    await site.wait_for("SIPS_B", ApplicationStatus.RUNNING, within=5)
    held = site.layer.control._running["SIPS_B"].occupied  # type: ignore[attr-defined]
    assert held is not None
    port = held.port
    before = len(site.layer.journal.entries())
    await site.close(abort=True)
    after = [(e.application, e.event) for e in site.layer.journal.entries()[before:]]
    for name in ("SIPS_A", "SIPS_B"):
        assert (name, JournalEvent.KILLED) in after
        assert (name, JournalEvent.EXITED) in after
    assert not [event for _, event in after if event is JournalEvent.RESTARTED]
    assert not [event for _, event in after if event is JournalEvent.STOP_REQUESTED]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # released
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", site.lca_port), timeout=5).close()
