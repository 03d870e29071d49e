"""``lca-emulator serve --http ENDPOINT``: a live status page, a small JSON API and an
event stream (server-sent events), fed by a :class:`~lca_emulator.layer.ManagementLayer`.

Three layers, as elsewhere: :class:`LiveFeed` turns the layer's changes and switchover
notices into JSON-ready events and fans them out (no HTTP); :class:`EventStream` is one
client's stream, with a bounded queue; the resources at the bottom are the twisted.web
side.  The formats are in ``docs/formats.md`` (section 9).
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IDelayedCall,
    IListeningPort,
    IPushProducer,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.web.pages import notFound
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer

from lca_common.protocol.messages import EventSwitchover
from lca_emulator.journal import JournalEntry
from lca_emulator.layer import ListeningAddresses, ManagementLayer
from lca_emulator.registry import ApplicationRecord, RecordChange
from lca_emulator.scs.server import SwitchoverNotice
from lca_emulator.web.style import BASE_CSS, palette, script_json, status_chip_css

log = Logger()

Json = dict[str, Any]


@dataclass(frozen=True)
class LiveSettings:
    """How much the live side keeps and sends.

    :param max_queued: events queued for one client that is not reading (its socket
        buffer full); one more and the client is dropped.
    :param recent_journal: journal entries in the snapshot (``/api/journal`` default too).
    :param recent_notices: switchovers and refusals kept for the snapshot.
    :param keepalive: seconds between keep-alive comments on idle streams (0: none).
    :param rate: emulator seconds per wall-clock second (``1 / --time-scale``), so the
        page can move "now" between events.
    :param unix_time: the emulator's times are Unix times (else: seconds since start).
    """

    max_queued: int = 256
    recent_journal: int = 500
    recent_notices: int = 100
    keepalive: float = 15.0
    rate: float = 1.0
    unix_time: bool = True


def http_endpoint_description(text: str) -> str:
    """A server endpoint string; a bare port number means that port on loopback only."""
    return f"tcp:{text}:interface=127.0.0.1" if text.isdigit() else text


# -- JSON views ------------------------------------------------------------------------------


def record_json(record: ApplicationRecord) -> Json:
    """An application record as the API shows it."""
    return {
        "name": record.name,
        "host": record.host,
        "status": record.status.value,
        "mode": record.mode.value,
        "pid": record.pid,
        "since": record.since,
        "managed": record.managed,
        "connected": record.connected,
        "registered": record.registered,
        "hung": record.hung,
    }


def notice_json(notice: SwitchoverNotice) -> Json:
    """A switchover or a refusal, as the API shows it."""
    kind = "switchover" if isinstance(notice, EventSwitchover) else "switchover-refused"
    return {
        "kind": kind,
        "pair": notice.service,
        "from": notice.from_,
        "to": notice.to,
        "reason": notice.reason,
        "time": notice.time,
    }


class LiveFeed:
    """What the live page shows, kept current from ``layer``: records, pairs, the journal,
    recent switchovers and refusals; and the event streams it sends each change to."""

    def __init__(
        self,
        layer: ManagementLayer,
        clock: IReactorTime,
        settings: LiveSettings | None = None,
    ) -> None:
        """``clock`` times keep-alives (wall clock); the layer's clock times the events."""
        self.layer = layer
        self.clock = clock
        self.settings = settings or LiveSettings()
        self._ids = itertools.count(1)
        self._notices: deque[Json] = deque(maxlen=self.settings.recent_notices)
        self._streams: set[EventStream] = set()
        self._journal_seen = len(layer.journal)
        self._keepalive: IDelayedCall | None = None
        self._stops = [
            layer.registry.changes.subscribe(self._changed),
            layer.scs.listen(self._noticed),
        ]

    # -- what is shown -----------------------------------------------------------------

    def now(self) -> float:
        """The emulator's time."""
        return self.layer.clock.seconds()

    def applications(self) -> list[Json]:
        """Every application's current record."""
        return [record_json(r) for r in self.layer.registry.records()]

    def pairs(self) -> list[Json]:
        """Every HA pair with a known member: its members and who holds the primary role."""
        shown: list[Json] = []
        seen: set[str] = set()
        for record in self.layer.registry.records():
            pair = self.layer.scs.pair_of(record.name)
            if pair is None or pair.name in seen:
                continue
            seen.add(pair.name)
            machine = self.layer.scs.state_of(record.name)
            members = []
            for name, configured in ((pair.primary, "primary"), (pair.backup, "backup")):
                member = self.layer.registry.get(name)
                members.append(
                    {
                        "name": name,
                        "configured": configured,
                        "status": member.status.value if member else None,
                        "mode": member.mode.value if member else None,
                    }
                )
            shown.append(
                {
                    "name": pair.name,
                    "state": machine.current.state.value if machine else None,
                    "primary": machine.current.primary if machine else None,
                    "members": members,
                }
            )
        return shown

    def journal(self, limit: int | None = None, application: str | None = None) -> list[Json]:
        """The last ``limit`` journal entries (of ``application``), oldest first."""
        limit = self.settings.recent_journal if limit is None else limit
        kept: deque[JournalEntry] = deque(maxlen=limit)
        kept.extend(e for e in self.layer.journal if application in (None, e.application))
        return [e.to_json() for e in kept]

    def notices(self) -> list[Json]:
        """The recent switchovers and refusals, oldest first."""
        return list(self._notices)

    def snapshot(self) -> Json:
        """Everything the page shows, as the ``snapshot`` event carries it."""
        return {
            "now": self.now(),
            "clock": {"rate": self.settings.rate, "unix": self.settings.unix_time},
            "applications": self.applications(),
            "pairs": self.pairs(),
            "journal": self.journal(),
            "notices": self.notices(),
        }

    # -- streams -------------------------------------------------------------------------

    def open_stream(self, request: Request) -> EventStream:
        """Start an event stream on ``request``: a snapshot, then every change."""
        stream = EventStream(request, self.settings.max_queued, self._streams.discard)
        self._streams.add(stream)
        stream.send(self._event("snapshot", self.snapshot()))
        self._schedule_keepalive()
        return stream

    @property
    def streams(self) -> int:
        """How many clients are listening."""
        return len(self._streams)

    def close(self) -> None:
        """Stop listening to the layer and end every stream."""
        for stop in self._stops:
            stop()
        self._stops = []
        if self._keepalive is not None and self._keepalive.active():
            self._keepalive.cancel()
        for stream in list(self._streams):
            stream.close()

    def _changed(self, change: RecordChange) -> None:
        entries = [e.to_json() for e in self._new_entries()]
        self._broadcast(
            "change",
            {
                "now": self.now(),
                "record": record_json(change.after),
                "entries": entries,
                "pairs": self.pairs(),
            },
        )

    def _new_entries(self) -> Iterator[JournalEntry]:
        """The journal entries appended since the last change (usually this change's one;
        none when a queued change's entry went out with an earlier change)."""
        total = len(self.layer.journal)
        if total > self._journal_seen:
            yield from itertools.islice(self.layer.journal, self._journal_seen, total)
        self._journal_seen = total

    def _noticed(self, notice: SwitchoverNotice) -> None:
        shown = notice_json(notice)
        self._notices.append(shown)
        self._broadcast("notice", {"now": self.now(), **shown})

    def _broadcast(self, name: str, data: Json) -> None:
        if not self._streams:
            return
        event = self._event(name, data)
        for stream in list(self._streams):
            stream.send(event)

    def _event(self, name: str, data: Json) -> bytes:
        body = json.dumps(data, separators=(",", ":"))
        return f"id: {next(self._ids)}\nevent: {name}\ndata: {body}\n\n".encode()

    def _schedule_keepalive(self) -> None:
        period = self.settings.keepalive
        if period <= 0 or (self._keepalive is not None and self._keepalive.active()):
            return
        self._keepalive = self.clock.callLater(period, self._keep_alive)

    def _keep_alive(self) -> None:
        self._keepalive = None
        for stream in list(self._streams):
            stream.send(b": keep-alive\n\n")
        if self._streams:
            self._schedule_keepalive()


@implementer(IPushProducer)
class EventStream:
    """One client's event stream: written at once while the connection takes data, queued
    while its buffer is full (the transport paused us), and dropped once more than
    ``max_queued`` events wait, so a client that does not read costs bounded memory."""

    def __init__(
        self, request: Request, max_queued: int, closed: Callable[[EventStream], None]
    ) -> None:
        self.request = request
        self.max_queued = max_queued
        self.dropped = False
        self._closed_callback = closed
        self._queue: deque[bytes] = deque()
        self._paused = False
        self._open = True
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-accel-buffering", b"no")
        request.registerProducer(self, True)
        request.notifyFinish().addBoth(self._finished)
        request.write(b"retry: 2000\n\n")

    @property
    def queued(self) -> int:
        """Events waiting for the client to read."""
        return len(self._queue)

    def send(self, event: bytes) -> None:
        """Send ``event``, or queue it while the client is not reading."""
        if not self._open:
            return
        if not self._paused:
            self.request.write(event)
            return
        if len(self._queue) >= self.max_queued:
            self.drop()
            return
        self._queue.append(event)

    def drop(self) -> None:
        """Give up on a client that does not read: forget its queue, abort its connection."""
        log.warn(
            "dropping a live-page client that is not reading ({queued} events queued)",
            queued=len(self._queue),
        )
        self.dropped = True
        self._queue.clear()
        self._end()
        transport = self.request.channel.transport if self.request.channel else None
        if transport is not None:  # abort: closing would wait for the client to read
            getattr(transport, "abortConnection", transport.loseConnection)()

    def close(self) -> None:
        """End the stream cleanly (the server is stopping)."""
        if self._open:
            self._end()
            self.request.unregisterProducer()
            self.request.finish()

    # -- IPushProducer: the connection's buffer filled up, or drained ---------------------

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        while self._queue and not self._paused and self._open:
            self.request.write(self._queue.popleft())

    def stopProducing(self) -> None:
        self._end()

    def _finished(self, _: object) -> None:
        self._end()

    def _end(self) -> None:
        if self._open:
            self._open = False
            self._closed_callback(self)


# -- twisted.web -----------------------------------------------------------------------------


def _json_response(request: Request, value: object, code: int = 200) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


_PAGE_CSP = (
    b"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    b"connect-src 'self'; img-src data:"
)


class LivePageResource(Resource):
    """``/``: the page (HTML with its style and script inline, the palette filled in)."""

    isLeaf = True  # noqa: N815 - twisted.web's name

    def __init__(self) -> None:
        super().__init__()
        template = files("lca_emulator.web").joinpath("live.html").read_text(encoding="utf-8")
        page = template.replace("/*STYLE*/", BASE_CSS + status_chip_css())
        self.page = page.replace("/*PALETTE*/null", script_json(palette())).encode()

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"content-security-policy", _PAGE_CSP)
        return self.page


class ApplicationsResource(Resource):
    """``/api/applications``: every current record, and the HA pairs."""

    isLeaf = True  # noqa: N815 - twisted.web's name

    def __init__(self, feed: LiveFeed) -> None:
        super().__init__()
        self.feed = feed

    def render_GET(self, request: Request) -> bytes:
        return _json_response(
            request,
            {
                "now": self.feed.now(),
                "applications": self.feed.applications(),
                "pairs": self.feed.pairs(),
            },
        )


class JournalResource(Resource):
    """``/api/journal?limit=N&application=NAME``: the most recent journal entries."""

    isLeaf = True  # noqa: N815 - twisted.web's name
    max_limit = 100_000

    def __init__(self, feed: LiveFeed) -> None:
        super().__init__()
        self.feed = feed

    def render_GET(self, request: Request) -> bytes:
        args = request.args or {}
        limit_text = args.get(b"limit", [b""])[0].decode("utf-8", "replace")
        application = args.get(b"application", [b""])[0].decode("utf-8", "replace") or None
        limit = None
        if limit_text:
            if not limit_text.isdigit() or not 0 < int(limit_text) <= self.max_limit:
                return _json_response(
                    request,
                    {"error": f"limit must be an integer from 1 to {self.max_limit}"},
                    400,
                )
            limit = int(limit_text)
        return _json_response(
            request,
            {
                "now": self.feed.now(),
                "total": len(self.feed.layer.journal),
                "entries": self.feed.journal(limit, application),
            },
        )


class EventsResource(Resource):
    """``/events``: the server-sent event stream."""

    isLeaf = True  # noqa: N815 - twisted.web's name

    def __init__(self, feed: LiveFeed) -> None:
        super().__init__()
        self.feed = feed

    def render_GET(self, request: Request) -> int:
        self.feed.open_stream(request)
        return NOT_DONE_YET


class _Folder(Resource):
    """A resource with children only; anything else is a plain 404."""

    def getChild(self, path: bytes, request: Request) -> IResource:
        return notFound()


def live_site(feed: LiveFeed) -> Site:
    """The twisted.web site: ``/``, ``/api/applications``, ``/api/journal``, ``/events``."""
    root = _Folder()
    root.putChild(b"", LivePageResource())
    api = _Folder()
    api.putChild(b"applications", ApplicationsResource(feed))
    api.putChild(b"journal", JournalResource(feed))
    root.putChild(b"api", api)
    root.putChild(b"events", EventsResource(feed))
    site = Site(root)
    site.displayTracebacks = False
    return site


@dataclass(frozen=True)
class LiveServer:
    """The live page, listening: its feed and its port."""

    feed: LiveFeed
    port: IListeningPort

    @classmethod
    async def start(
        cls,
        layer: ManagementLayer,
        endpoint: IStreamServerEndpoint,
        clock: IReactorTime,
        settings: LiveSettings | None = None,
    ) -> LiveServer:
        """Follow ``layer`` and serve the page on ``endpoint``."""
        feed = LiveFeed(layer, clock, settings)
        try:
            port = await endpoint.listen(live_site(feed))
        except BaseException:
            feed.close()
            raise
        return cls(feed, port)

    @property
    def address(self) -> str:
        """``HOST:PORT`` where the page is served."""
        return ListeningAddresses.describe(self.port)

    def stop(self, result: object = None) -> Deferred[object]:
        """End every stream and stop listening; fires with ``result`` (for addBoth)."""
        self.feed.close()
        d: Deferred[object] = Deferred()
        stopped = self.port.stopListening()
        if stopped is None:
            d.callback(result)
        else:
            stopped.addBoth(lambda _: d.callback(result))
        return d
