"""The live page's JSON API and event stream, without a browser: an emulated site on a
virtual clock, the page served on a real loopback port, read with twisted.web's Agent
(and, for the client that never reads, a plain socket).  Every wait has a deadline."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from reactortest import reactor_test
from serveproc import TIMEOUT, ServeProcess
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.web.client import Agent, ResponseDone
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_emulator.harness.site import Site
from lca_emulator.journal import JournalEvent
from lca_emulator.pytest_plugin import SiteFactory
from lca_emulator.scs.server import HaPair
from lca_emulator.testing import ScriptedApplication
from lca_emulator.web.live import EventStream, LiveServer, LiveSettings, http_endpoint_description

Json = dict[str, Any]
RUNNING = ApplicationStatus.RUNNING
SU = ApplicationStatus.SERVICE_UNAVAILABLE


@dataclass
class Live:
    """A site, its live page listening on loopback, and an HTTP client for it."""

    site: Site
    server: LiveServer
    agent: Agent = field(default_factory=lambda: Agent(reactor))

    @property
    def base(self) -> bytes:
        return f"http://{self.server.address}".encode()

    async def get(self, path: str) -> tuple[IResponse, bytes]:
        d = self.agent.request(b"GET", self.base + path.encode())
        response = await d.addTimeout(TIMEOUT, reactor)
        body = BodyCollector()
        response.deliverBody(body)
        return response, await body.done.addTimeout(TIMEOUT, reactor)

    async def get_json(self, path: str) -> Json:
        response, body = await self.get(path)
        assert response.code == 200, body
        assert response.headers.getRawHeaders(b"content-type") == [
            b"application/json; charset=utf-8"
        ]
        document: Json = json.loads(body)
        return document

    async def events(self) -> EventCollector:
        """Open ``/events`` and collect what arrives."""
        response = await self.agent.request(
            b"GET", self.base + b"/events", Headers({b"accept": [b"text/event-stream"]})
        ).addTimeout(TIMEOUT, reactor)
        assert response.code == 200
        assert response.headers.getRawHeaders(b"content-type") == [
            b"text/event-stream; charset=utf-8"
        ]
        collector = EventCollector()
        response.deliverBody(collector)
        return collector

    async def application(self, name: str, **kwargs: Any) -> ScriptedApplication:
        app = ScriptedApplication(
            reactor, self.site.lca_port, name, network=self.site.network, **kwargs
        )
        await app.connect()
        await app.register()
        return app


@asynccontextmanager
async def live_site(
    factory: SiteFactory, settings: LiveSettings | None = None, **site: Any
) -> AsyncIterator[Live]:
    """An emulated site (virtual clock) with its live page on a free loopback port."""
    opened = await factory(**site)
    settings = settings or LiveSettings(rate=0.0, unix_time=False)
    endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
    server = await LiveServer.start(opened.layer, endpoint, reactor, settings)
    try:
        yield Live(opened, server)
    finally:
        await server.stop()


class BodyCollector(Protocol):
    """A whole response body (twisted's readBody warns about Agent's own transport)."""

    def __init__(self) -> None:
        self.data = b""
        self.done: Deferred[bytes] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        if reason.check(ResponseDone):
            self.done.callback(self.data)
        else:
            self.done.errback(reason)


class EventCollector(Protocol):
    """Parses a server-sent event stream; waits for an event that matches."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Json]] = []
        self.comments = 0
        self.retry: int | None = None
        self.closed: Deferred[None] = Deferred()
        self._buffer = b""
        self._waiters: list[tuple[Callable[[str, Json], bool], Deferred[Json]]] = []

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while b"\n\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            self._block(block.decode())

    def _block(self, block: str) -> None:
        name, data = "message", ""
        for line in block.split("\n"):
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "":
                self.comments += 1
            elif key == "event":
                name = value
            elif key == "data":
                data += value
            elif key == "retry":
                self.retry = int(value)
        if not data:
            return
        event = json.loads(data)
        self.events.append((name, event))
        for waiter in list(self._waiters):
            if waiter[0](name, event):
                self._waiters.remove(waiter)
                waiter[1].callback(event)

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self.closed.callback(None)

    def stop(self) -> None:
        """Close the stream from the client's side."""
        assert self.transport is not None
        self.transport.stopProducing()  # type: ignore[attr-defined]

    def wait_for(self, match: Callable[[str, Json], bool]) -> Deferred[Json]:
        """The first event (already here or to come) that ``match`` accepts."""
        for name, event in self.events:
            if match(name, event):
                return succeed(event)
        d: Deferred[Json] = Deferred()
        self._waiters.append((match, d))
        return d.addTimeout(TIMEOUT, reactor)


async def until(condition: Callable[[], bool]) -> None:
    """Let the reactor turn until ``condition`` holds (at most TIMEOUT wall seconds)."""
    deadline = reactor.seconds() + TIMEOUT
    while not condition():
        assert reactor.seconds() < deadline, "condition not reached in time"
        await deferLater(reactor, 0.001, lambda: None)


def status_change(name: str, status: ApplicationStatus) -> Callable[[str, Json], bool]:
    """Matches the ``change`` event in which ``name`` takes ``status``."""

    def match(event: str, data: Json) -> bool:
        record = data.get("record", {})
        return event == "change" and record["name"] == name and record["status"] == status.value

    return match


# -- the endpoint string --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("8080", "tcp:8080:interface=127.0.0.1"),
        ("0", "tcp:0:interface=127.0.0.1"),
        ("tcp:8080", "tcp:8080"),
        ("tcp:0:interface=0.0.0.0", "tcp:0:interface=0.0.0.0"),
        ("unix:/tmp/page.sock", "unix:/tmp/page.sock"),
    ],
)
def test_a_bare_port_is_loopback_only(given: str, meant: str) -> None:
    """--http 8080 listens on 127.0.0.1; a full endpoint string is taken as written."""
    assert http_endpoint_description(given) == meant


# -- the JSON API -----------------------------------------------------------------------------


@reactor_test
async def test_applications_lists_every_record(lca_site_factory: SiteFactory) -> None:
    """/api/applications: name, host, status, mode, pid and since of every application."""
    async with live_site(lca_site_factory) as live:
        assert (await live.get_json("/api/applications"))["applications"] == []
        app = await live.application("APP", host="host-a", pid=4242)
        app.report(RUNNING, ExecutionMode.PRIMARY)
        await live.site.wait_for("APP", RUNNING, within=5)
        document = await live.get_json("/api/applications")
    assert document["now"] == live.site.now()
    assert document["applications"] == [
        {
            "name": "APP",
            "host": "host-a",
            "status": "RUNNING",
            "mode": "PRIMARY",
            "pid": 4242,
            "since": live.site.now(),
            "managed": False,
            "connected": True,
            "registered": True,
            "hung": False,
        }
    ]
    assert document["pairs"] == []


@reactor_test
async def test_pairs_say_who_holds_the_primary_role(lca_site_factory: SiteFactory) -> None:
    """A pair shows its members, the SCS state and the member holding the primary role."""
    async with live_site(lca_site_factory, pairs=[HaPair("SIPS_A", "SIPS_B")]) as live:
        a = await live.application("SIPS_A")
        b = await live.application("SIPS_B")
        a.report(RUNNING, ExecutionMode.PRIMARY)
        b.report(RUNNING, ExecutionMode.BACKUP)
        await live.site.wait_for("SIPS_B", RUNNING, within=5)
        pairs = (await live.get_json("/api/applications"))["pairs"]
    assert pairs == [
        {
            "name": "SIPS_A/SIPS_B",
            "state": "active",
            "primary": "SIPS_A",
            "members": [
                {"name": "SIPS_A", "configured": "primary", "status": "RUNNING", "mode": "PRIMARY"},
                {"name": "SIPS_B", "configured": "backup", "status": "RUNNING", "mode": "BACKUP"},
            ],
        }
    ]


@reactor_test
async def test_journal_gives_recent_entries(lca_site_factory: SiteFactory) -> None:
    """/api/journal: the last entries, oldest first; limit and application narrow it."""
    async with live_site(lca_site_factory) as live:
        one = await live.application("ONE")
        two = await live.application("TWO")
        one.report(RUNNING, ExecutionMode.PRIMARY)
        two.report(SU, ExecutionMode.BACKUP)
        await live.site.wait_for("TWO", SU, within=5)
        everything = await live.get_json("/api/journal")
        last = await live.get_json("/api/journal?limit=1")
        of_two = await live.get_json("/api/journal?application=TWO")
    journal = [e.to_json() for e in live.site.layer.journal]
    assert everything["entries"] == journal
    assert everything["total"] == len(journal)
    assert last["entries"] == journal[-1:]
    assert of_two["entries"] == [e for e in journal if e["application"] == "TWO"]
    assert [e["event"] for e in of_two["entries"]] == ["registered", "status"]


@reactor_test
async def test_journal_refuses_a_bad_limit(lca_site_factory: SiteFactory) -> None:
    """A limit that is not a positive integer is a 400 with a JSON error."""
    async with live_site(lca_site_factory) as live:
        for bad in ("x", "0", "-1", "100001"):
            response, body = await live.get(f"/api/journal?limit={bad}")
            assert response.code == 400
            assert "limit must be an integer" in json.loads(body)["error"]


@reactor_test
async def test_the_page_is_self_contained(lca_site_factory: SiteFactory) -> None:
    """/ is one HTML page: palette filled in, nothing loaded from elsewhere (CSP says so)."""
    async with live_site(lca_site_factory) as live:
        response, body = await live.get("/")
        missing, _ = await live.get("/nothing-here")
    page = body.decode()
    assert response.code == 200
    assert response.headers.getRawHeaders(b"content-type") == [b"text/html; charset=utf-8"]
    csp = response.headers.getRawHeaders(b"content-security-policy")
    assert csp is not None
    assert b"default-src 'none'" in csp[0]
    assert b"connect-src 'self'" in csp[0]
    assert "/*PALETTE*/" not in page
    assert "/*STYLE*/" not in page
    assert '"RUNNING":"#2e9e48"' in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        'SVG = "http://www.w3.org/2000/svg"', ""
    )
    assert missing.code == 404


# -- the event stream -------------------------------------------------------------------------


@reactor_test
async def test_stream_starts_with_a_snapshot(lca_site_factory: SiteFactory) -> None:
    """/events first sends a snapshot: clock, applications, pairs, journal, notices."""
    async with live_site(lca_site_factory) as live:
        app = await live.application("APP")
        app.report(RUNNING, ExecutionMode.PRIMARY)
        await live.site.wait_for("APP", RUNNING, within=5)
        events = await live.events()
        snapshot = await events.wait_for(lambda name, _: name == "snapshot")
        events.stop()
        await events.closed
    assert events.retry == 2000
    assert events.events[0][0] == "snapshot"
    assert snapshot["clock"] == {"rate": 0.0, "unix": False}
    assert [a["status"] for a in snapshot["applications"]] == ["RUNNING"]
    assert snapshot["journal"] == [e.to_json() for e in live.site.layer.journal]
    assert snapshot["pairs"] == []
    assert snapshot["notices"] == []


@reactor_test
async def test_stream_sends_each_change(lca_site_factory: SiteFactory) -> None:
    """RUNNING then SERVICE_UNAVAILABLE: two change events, each with its journal entry."""
    async with live_site(lca_site_factory) as live:
        events = await live.events()
        await events.wait_for(lambda name, _: name == "snapshot")
        app = await live.application("APP")
        app.report(RUNNING, ExecutionMode.PRIMARY)
        running = await events.wait_for(status_change("APP", RUNNING))
        app.report(SU, ExecutionMode.PRIMARY)
        unavailable = await events.wait_for(status_change("APP", SU))
        events.stop()
        await events.closed
    assert running["entries"][-1]["status"] == "RUNNING"
    assert unavailable["entries"] == [live.site.layer.journal.entries("APP")[-1].to_json()]
    assert unavailable["record"]["mode"] == "PRIMARY"
    # every journal entry went out exactly once, in order
    sent = [e for name, data in events.events if name == "change" for e in data["entries"]]
    assert sent == [e.to_json() for e in live.site.layer.journal]


@reactor_test
async def test_stream_sends_switchovers(lca_site_factory: SiteFactory) -> None:
    """A switchover is a notice event, and is in the next snapshot's notices."""
    async with live_site(lca_site_factory, pairs=[HaPair("SIPS_A", "SIPS_B")]) as live:
        events = await live.events()
        a = await live.application("SIPS_A")
        b = await live.application("SIPS_B")
        a.report(RUNNING, ExecutionMode.PRIMARY)
        b.report(RUNNING, ExecutionMode.BACKUP)
        await live.site.wait_for("SIPS_B", RUNNING, within=5)
        a.disconnect(abort=True)
        notice = await events.wait_for(lambda name, _: name == "notice")
        await live.site.wait_for("SIPS_B", RUNNING, within=5)
        later = await live.events()
        snapshot = await later.wait_for(lambda name, _: name == "snapshot")
        events.stop()
        later.stop()
        await events.closed
        await later.closed
    assert notice["kind"] == "switchover"
    assert (notice["pair"], notice["from"], notice["to"]) == ("SIPS_A/SIPS_B", "SIPS_A", "SIPS_B")
    assert snapshot["notices"] == [{k: v for k, v in notice.items() if k != "now"}]
    assert snapshot["pairs"][0]["primary"] == "SIPS_B"


@reactor_test
async def test_a_client_that_leaves_is_forgotten(lca_site_factory: SiteFactory) -> None:
    """Closing the stream from the browser's side removes it from the feed."""
    async with live_site(lca_site_factory) as live:
        events = await live.events()
        await events.wait_for(lambda name, _: name == "snapshot")
        assert live.server.feed.streams == 1
        events.stop()
        await until(lambda: live.server.feed.streams == 0)


@reactor_test
async def test_idle_streams_get_keep_alives(lca_site_factory: SiteFactory) -> None:
    """Every keepalive period, an idle stream gets a comment line (a real, short period)."""
    settings = LiveSettings(keepalive=0.05, rate=0.0, unix_time=False)
    async with live_site(lca_site_factory, settings) as live:
        events = await live.events()
        await events.wait_for(lambda name, _: name == "snapshot")
        await until(lambda: events.comments >= 2)
        events.stop()
        await events.closed


@reactor_test
async def test_stopping_ends_every_stream(lca_site_factory: SiteFactory) -> None:
    """When serve stops, open streams end cleanly (the browser sees the end)."""
    async with live_site(lca_site_factory) as live:
        events = await live.events()
        await events.wait_for(lambda name, _: name == "snapshot")
    await events.closed.addTimeout(TIMEOUT, reactor)
    assert live.server.feed.streams == 0


# -- a client that does not read ---------------------------------------------------------------


class FakeRequest:
    """Just what :class:`EventStream` uses of a request: headers, writes, its producer,
    its end, and the transport it aborts."""

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.written: list[bytes] = []
        self.producer: Any = None
        self.aborted = False
        self.finished: Deferred[None] = Deferred()
        self.channel = self
        self.transport = self

    def setHeader(self, name: bytes, value: bytes) -> None:
        self.headers[name] = value

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        assert streaming
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def notifyFinish(self) -> Deferred[None]:
        return self.finished

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def finish(self) -> None:
        self.finished.callback(None)

    def loseConnection(self) -> None:
        raise AssertionError("a client that does not read is aborted, not closed")

    def abortConnection(self) -> None:
        self.aborted = True
        self.finished.errback(ConnectionError("aborted"))


def test_paused_stream_queues_then_flushes_in_order() -> None:
    """While the connection is full, events wait; when it drains they go out in order."""
    request = FakeRequest()
    gone: list[EventStream] = []
    stream = EventStream(request, 3, gone.append)  # type: ignore[arg-type]
    stream.send(b"1")
    stream.pauseProducing()
    stream.send(b"2")
    stream.send(b"3")
    assert request.written == [b"retry: 2000\n\n", b"1"]
    assert stream.queued == 2
    stream.resumeProducing()
    assert request.written[1:] == [b"1", b"2", b"3"]
    assert stream.queued == 0
    assert not gone


def test_a_client_that_does_not_read_is_dropped() -> None:
    """Past max_queued waiting events the client is dropped: queue freed, connection aborted."""
    request = FakeRequest()
    gone: list[EventStream] = []
    stream = EventStream(request, 3, gone.append)  # type: ignore[arg-type]
    stream.pauseProducing()
    for n in range(3):
        stream.send(b"%d" % n)
    assert stream.queued == 3
    assert not request.aborted
    stream.send(b"one too many")
    assert request.aborted
    assert stream.dropped
    assert stream.queued == 0
    assert gone == [stream]
    stream.send(b"after")
    stream.resumeProducing()
    assert stream.queued == 0
    assert request.written == [b"retry: 2000\n\n"]


@reactor_test
async def test_a_real_socket_that_does_not_read_is_dropped(lca_site_factory: SiteFactory) -> None:
    """Over loopback: a client that never reads fills its socket, then its queue, then is
    dropped, while a reading client keeps up and gets every change."""
    settings = LiveSettings(max_queued=8, rate=0.0, unix_time=False)
    async with live_site(lca_site_factory, settings) as live:
        host, port = live.server.address.rsplit(":", 1)
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect((host, int(port)))
        stuck.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = await live.events()
        await reader.wait_for(lambda name, _: name == "snapshot")
        await until(lambda: live.server.feed.streams == 2)
        registry = live.site.layer.registry
        detail = "x" * 5_000  # 4 a turn: well under what makes a reading client wait
        sent = 0
        while live.server.feed.streams == 2:
            assert sent < 20_000, "the stuck client was never dropped"
            for _ in range(4):
                registry.note("BIG", JournalEvent.STATUS, detail, status=RUNNING)
                sent += 1
            await deferLater(reactor, 0, lambda: None)
        await until(lambda: len(reader.events) == 1 + sent)
        reader.stop()
        await reader.closed
        stuck.close()
    assert live.server.feed.streams == 0
    assert [name for name, _ in reader.events] == ["snapshot"] + ["change"] * sent


# -- serve --http -------------------------------------------------------------------------------


def test_serve_prints_the_http_line_last(tmp_path: Path) -> None:
    """serve --http: the two contract lines first, unchanged, then ``HTTP listening on``."""
    server = ServeProcess.start(tmp_path, "--http", "0")
    try:
        assert server.lines[0].startswith("LCA listening on 127.0.0.1:")
        assert server.lines[1].startswith("SCS listening on 127.0.0.1:")
        assert server.lines[2].startswith("HTTP listening on 127.0.0.1:")
        server.register("APP")
        with urllib.request.urlopen(server.http_url + "api/applications", timeout=TIMEOUT) as f:
            document = json.load(f)
        assert [a["name"] for a in document["applications"]] == ["APP"]
    finally:
        assert server.stop() == 0, server.log_text()


def test_serve_without_http_prints_two_lines(tmp_path: Path) -> None:
    """Without --http nothing changes: two lines, no web server."""
    server = ServeProcess.start(tmp_path, lines=2)
    try:
        assert [line.split(" ")[0] for line in server.lines] == ["LCA", "SCS"]
        server.register("APP")  # answered: serve is up (and handles Ctrl-C)
        assert server.proc.stdout is not None
        assert select.select([server.proc.stdout], [], [], 0)[0] == []
    finally:
        assert server.stop() == 0, server.log_text()


def test_serve_refuses_a_bad_http_endpoint(tmp_path: Path) -> None:
    """--http that is not a server endpoint string: exit code 2, a clear message."""
    done = subprocess.run(
        [*ServeProcess.command(), "--http", "nonsense:1"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 2
    assert "--lca/--scs/--http must be server endpoints" in done.stderr
