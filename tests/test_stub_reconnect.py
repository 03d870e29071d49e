"""The stub's LCA link: after a lost connection it reconnects (ClientService), registers
again and re-reports its current status and mode, on the virtual clock."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, cast

from reactortest import reactor_test
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionLost, ConnectionRefusedError
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import ILogObserver, LogEvent, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface import implementer

from lca_common.clock import ScaledClock
from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_emulator.harness.site import Site
from lca_emulator.journal import JournalEvent
from lca_emulator.scs.server import HaPair
from sipserver_stub.fixture import Component, ComponentPlan, ComponentResult, StubFixture
from sipserver_stub.lca_link import LcaLink

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
    site.layer.hosts.of("SIPS_B").lca.disconnect("SIPS_B", abort=True)
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
    site.layer.hosts.of("SIPS_A").lca.disconnect("SIPS_A", abort=True)
    await site.wait_for("SIPS_A", ApplicationStatus.RUNNING, ExecutionMode.PRIMARY, within=10)
    timeline = site.timeline()
    assert [c.value for c in timeline.changes("SIPS_B", mode=True)] == ["UNKNOWN", "BACKUP"]
    refusals = site.layer.journal.entries("SIPS_B")
    assert [e.time for e in refusals if e.event is JournalEvent.SWITCHOVER_REFUSED] == [20]


@implementer(IStreamClientEndpoint)
class FlakyEndpoint:
    """A client endpoint that refuses every connection while ``up`` is false."""

    def __init__(self) -> None:
        self.up = False
        self.attempts = 0
        self.protocols: list[IProtocol] = []

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        self.attempts += 1
        if not self.up:
            return fail(ConnectionRefusedError("Connection refused"))
        protocol = protocolFactory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 4999))
        assert protocol is not None
        protocol.makeConnection(StringTransport())
        self.protocols.append(protocol)
        return succeed(protocol)


def _link_lines(events: list[LogEvent]) -> list[str]:
    """The text of every log event from the link or from ClientService."""
    return [
        formatEvent(e)
        for e in events
        if e.get("log_namespace", "").startswith(("sipserver_stub", "twisted.application"))
    ]


def test_a_missing_lca_is_logged_once_per_backoff_step_in_real_seconds() -> None:
    """With no LCA for thousands of attempts at --time-scale 0.01, the link logs the loss
    once, one line per backoff step (delays in real seconds), one line when it is back,
    and nothing of ClientService's own per-attempt lines."""
    real = Clock()
    endpoint = FlakyEndpoint()
    link = LcaLink(
        ScaledClock(real, 0.01), endpoint, "SIPS_B", on_mode=lambda _: None, lca_name="tcp:lca:4999"
    )
    events: list[LogEvent] = []
    observer = cast(ILogObserver, events.append)
    globalLogPublisher.addObserver(observer)
    try:
        link.start()
        real.pump([0.01] * 10_000)  # 100 real seconds: about 2,000 attempts
        assert endpoint.attempts > 1_800
        endpoint.up = True
        real.advance(0.05)
        assert len(endpoint.protocols) == 1
        refused = "Connection was refused by other side: Connection refused."
        assert _link_lines(events) == [
            f"cannot reach the LCA at tcp:lca:4999: {refused}; reconnecting",
            f"no LCA at tcp:lca:4999: 1 failed attempt(s) (last: {refused}); next try in 0.0075 s",
            *[
                f"no LCA at tcp:lca:4999: {n} failed attempt(s) (last: {refused}); "
                f"next try in {delay} s"
                for n, delay in [(2, 0.0112), (3, 0.0169), (4, 0.0253), (5, 0.038)]
            ],
            f"no LCA at tcp:lca:4999: 6 failed attempt(s) (last: {refused}); "
            "retrying every 0.05 s from now on",
            f"connected to the LCA at tcp:lca:4999 again after {endpoint.attempts - 1} "
            "failed attempt(s) (100.05 s)",
        ]

        del events[:]
        endpoint.up = False
        endpoint.protocols[0].connectionLost(Failure(ConnectionLost("the LCA went away")))
        real.pump([0.01] * 1_000)
        lines = _link_lines(events)
        assert lines[0] == (
            "lost the LCA at tcp:lca:4999: Connection to the other side was lost in a "
            "non-clean fashion: the LCA went away.; reconnecting"
        )
        assert len(lines) == 7  # the loss, then the six steps of the backoff
        assert lines[1:3] == [
            "no LCA at tcp:lca:4999 yet; next try in 0.0075 s",
            f"no LCA at tcp:lca:4999: 1 failed attempt(s) (last: {refused}); next try in 0.0112 s",
        ]
        assert lines[-1].endswith("retrying every 0.05 s from now on")
    finally:
        globalLogPublisher.removeObserver(observer)
        link.stop()
