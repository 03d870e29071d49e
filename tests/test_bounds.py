"""The limits of docs/protocol.md, section 7, on fake transports and a task.Clock: line
length, names, flow control, connection caps, the registration deadline, the bounded
journal, forgetting departed applications, and the heartbeat's lower bound."""

from __future__ import annotations

import io
import resource
from collections.abc import Iterator, Sequence
from pathlib import Path
from socket import SOMAXCONN
from typing import IO, Any

import pytest
from boundsfakes import BufferedTransport, FakeLauncher, Layer, Wire
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.logger import LogEvent, LogLevel, capturedLogs
from twisted.python.failure import Failure

from lca_common.protocol.codec import MAX_LINE_LENGTH, encode
from lca_common.protocol.framing import (
    BAD_LINES_LOGGED,
    DEFAULT_MAX_CONNECTIONS,
    MAX_REFUSING,
    ConnectionLimits,
    JsonLinesProtocol,
    JsonLinesServerFactory,
    MessageSender,
)
from lca_common.protocol.limits import MAX_NAME_BYTES, MAX_PID, quote
from lca_common.protocol.messages import (
    CLIENT_TO_SCS,
    SCS_TO_CLIENT,
    ApplicationStatus,
    ErrorCode,
    EventApplicationInfo,
    EventApplicationRegistered,
    EventError,
    EventOk,
    ExecutionMode,
    Message,
    RequestGetApplicationInfo,
    RequestRegisterApplication,
    RequestStartApplication,
    RequestSubscribe,
    RequestSwitchover,
    RequestUpdateStatus,
)
from lca_common.yamlsource import ConfigError
from lca_emulator.applications import ApplicationSpec
from lca_emulator.cli import default_max_connections, with_backlog
from lca_emulator.harness.loader import load_scenario
from lca_emulator.journal import JournalEntry, JournalEvent, StatusJournal
from lca_emulator.layer import ManagementLayer, configuration_problems
from lca_emulator.lca.agent import LocalControlAgent
from lca_emulator.registry import ApplicationRegistry
from lca_emulator.scs.server import HaPair

RUNNING = ApplicationStatus.RUNNING
PRIMARY = ExecutionMode.PRIMARY


@pytest.fixture
def logs() -> Iterator[Sequence[LogEvent]]:
    """Log events emitted through twisted.logger during the test."""
    with capturedLogs() as events:
        yield events


def errors_of(wire: Wire) -> list[EventError]:
    """The EventErrors that arrived on ``wire`` since the last look."""
    return [m for m in wire.received() if isinstance(m, EventError)]


def register(layer: Layer, name: str, **extra: Any) -> Wire:
    """A new application connection registered as ``name`` (and reporting RUNNING)."""
    wire = layer.lca()
    wire.send(RequestRegisterApplication(ref=1, application=name, **extra))
    assert isinstance(wire.received()[0], EventApplicationRegistered)
    wire.send(RequestUpdateStatus(status=RUNNING, mode=PRIMARY))
    return wire


def subscribe(layer: Layer) -> Wire:
    """A new management connection, subscribed (its snapshot read)."""
    wire = layer.scs()
    wire.send(RequestSubscribe(ref=1))
    assert isinstance(wire.received()[0], EventOk)
    return wire


# -- flow control on one connection ---------------------------------------------------


class Silent:
    """A controller that keeps its sender and ignores everything."""

    sender: MessageSender

    def connection_made(self, sender: MessageSender) -> None:
        self.sender = sender

    def message_received(self, message: Message) -> None:
        pass

    def connection_lost(self, reason: Failure) -> None:
        pass


def info(n: int) -> EventApplicationInfo:
    """A notification of about 100 bytes."""
    return EventApplicationInfo(application=f"APP_{n}", status=RUNNING, mode=PRIMARY, time=n)


def flow_connection(
    limits: ConnectionLimits | None = None, clock: Clock | None = None
) -> tuple[Silent, BufferedTransport, JsonLinesProtocol]:
    controller = Silent()
    protocol = JsonLinesProtocol(
        controller,
        CLIENT_TO_SCS,
        answer_errors=True,
        limits=limits or ConnectionLimits(max_unread=10_000),
        clock=clock,
    )
    transport = BufferedTransport()
    protocol.makeConnection(transport)
    return controller, transport, protocol


def test_server_connection_registers_as_streaming_producer() -> None:
    """A server connection is a streaming producer of its transport; closing unregisters it."""
    controller, transport, protocol = flow_connection()
    assert transport.producer is protocol.backpressure
    assert transport.streaming
    controller.sender.disconnect()
    assert transport.producer is None
    assert transport.disconnecting


def test_client_connection_has_no_flow_control() -> None:
    """Without limits (the clients' case) nothing is registered on the transport."""
    transport = BufferedTransport()
    JsonLinesProtocol(Silent(), SCS_TO_CLIENT, answer_errors=False).makeConnection(transport)
    assert transport.producer is None


def test_reading_pauses_while_replies_pile_up_and_resumes_when_sent() -> None:
    """Past the transport's buffer, the connection stops reading; it reads again once drained."""
    controller, transport, _ = flow_connection()
    while transport.reading:
        controller.sender.send(EventOk(ref=1))
    assert transport.unsent > transport.bufferSize
    transport.drain()
    assert transport.reading


def test_replies_are_never_dropped_while_paused() -> None:
    """Replies written while paused are all written (what bounds them is not reading)."""
    controller, transport, _ = flow_connection(ConnectionLimits(max_unread=100))
    for ref in range(1, 5001):
        controller.sender.send(EventOk(ref=ref))
    assert not transport.disconnecting
    assert transport.value().count(b"\n") == 5000


def test_notifications_past_the_budget_get_one_too_slow_then_close() -> None:
    """A peer leaving more than max_unread bytes of notifications unread gets one
    too-slow, is closed, and is aborted after the grace period if it still does not read."""
    clock = Clock()
    controller, transport, _ = flow_connection(
        ConnectionLimits(max_unread=10_000, close_grace=10.0), clock
    )
    for n in range(20_000):
        controller.sender.notify(info(n))
    lines = transport.value().splitlines()
    assert lines[-1] == encode(
        EventError(
            code=ErrorCode.TOO_SLOW,
            text="more than 10000 bytes of notifications are waiting unread; "
            "closing the connection",
        )
    )
    assert sum(b"too-slow" in line for line in lines) == 1
    assert len(transport.value()) <= transport.bufferSize + 10_000 + 2 * len(lines[-1])
    assert transport.disconnecting
    assert transport.producer is None
    assert not transport.disconnected
    clock.advance(10.0)
    assert transport.disconnected  # aborted


def test_notifications_after_a_drain_start_a_fresh_budget() -> None:
    """A peer that reads now and then is never too slow, however much it gets in all."""
    controller, transport, _ = flow_connection(ConnectionLimits(max_unread=10_000))
    for n in range(50_000):
        controller.sender.notify(info(n))
        if n % 100 == 0:
            transport.drain()
    assert not transport.disconnecting


def test_too_slow_without_clock_aborts_at_once() -> None:
    """Without a clock to time the grace, a too-slow peer is dropped at once."""
    controller, transport, _ = flow_connection(ConnectionLimits(max_unread=100))
    for n in range(2000):
        controller.sender.notify(info(n))
    assert transport.disconnected


def test_an_oversized_event_error_is_cut_and_other_oversized_messages_are_not_sent(
    logs: Sequence[LogEvent],
) -> None:
    """The last guard of the line limit: an EventError's text is cut, anything else is
    logged and not sent."""
    controller, transport, _ = flow_connection()
    controller.sender.send(EventError(code=ErrorCode.START_FAILED, text="x" * 100_000, ref=3))
    controller.sender.send(info(1))
    controller.sender.notify(EventApplicationInfo("y" * 70_000, RUNNING, PRIMARY, 0.0))
    lines = transport.value().splitlines()
    assert len(lines) == 2
    assert all(len(line) <= MAX_LINE_LENGTH for line in lines)
    assert b'"ref":3' in lines[0]
    assert [e["log_level"] for e in logs if "line limit" in e["log_format"]] == [LogLevel.error]


# -- connections per endpoint -------------------------------------------------------------


def open_wire(factory: JsonLinesServerFactory) -> BufferedTransport:
    """A connection accepted by ``factory`` (closed at once when it builds no protocol)."""
    transport = BufferedTransport()
    protocol = factory.buildProtocol(transport.getPeer())
    if protocol is None:
        transport.loseConnection()  # what Twisted does
        return transport
    protocol.makeConnection(transport)
    transport.protocol = protocol
    return transport


def test_connections_over_the_cap_are_told_and_closed_at_once() -> None:
    """Past max_connections, all admitted, a connection gets one too-many-connections line
    and is closed; once one closes, a new one is accepted again."""
    factory = JsonLinesServerFactory(
        Silent, CLIENT_TO_SCS, clock=Clock(), limits=ConnectionLimits(max_connections=512)
    )
    factory.name = "LCA"
    accepted = [open_wire(factory) for _ in range(512)]
    for wire in accepted:
        admit(wire)
    refused = open_wire(factory)
    assert (
        refused.value()
        == encode(
            EventError(
                code=ErrorCode.TOO_MANY_CONNECTIONS,
                text="the LCA endpoint has 512 connections open, the most it accepts; "
                "try again later",
            )
        )
        + b"\n"
    )
    assert refused.disconnecting
    assert (factory.connections, factory.refused) == (512, 1)
    accepted[0].protocol.connectionLost(Failure(Exception("gone")))
    assert factory.connections == 511
    again = open_wire(factory)
    assert again.value() == b""
    assert not again.disconnecting


def admit(wire: BufferedTransport) -> None:
    """The peer on ``wire`` shows it is a client (as a registration or a request does)."""
    protocol = wire.protocol
    assert isinstance(protocol, JsonLinesProtocol)
    protocol.admit()


def test_a_full_endpoint_closes_the_oldest_connection_not_admitted() -> None:
    """At max_connections a new connection is accepted, and the oldest one whose peer has
    not registered or asked anything is told too-many-connections and closed: idle
    connections cannot lock clients out.  Admitted ones are never closed to make room."""
    factory = JsonLinesServerFactory(
        Silent, CLIENT_TO_SCS, clock=Clock(), limits=ConnectionLimits(max_connections=3)
    )
    factory.name = "LCA"
    client, idle, idler = (open_wire(factory) for _ in range(3))
    admit(client)
    newcomer = open_wire(factory)
    assert idle.value() == (
        encode(
            EventError(
                code=ErrorCode.TOO_MANY_CONNECTIONS,
                text="the LCA endpoint has 3 connections open, the most it accepts: this one, "
                "the oldest that had not registered or asked anything, is closed to make room",
            )
        )
        + b"\n"
    )
    assert idle.disconnecting
    assert not any(w.disconnecting for w in (client, idler, newcomer))
    assert (factory.connections, factory.evicted, factory.refused) == (3, 1, 0)
    idle.protocol.connectionLost(Failure(ConnectionDone()))
    assert factory.connections == 3  # counted out when it was closed to make room
    admit(newcomer)
    fifth = open_wire(factory)
    assert idler.disconnecting
    admit(fifth)
    refused = open_wire(factory)  # every one admitted: the new one is refused
    assert refused.disconnecting
    assert not any(w.disconnecting for w in (client, newcomer, fifth))
    assert (factory.evicted, factory.refused) == (2, 1)


def test_a_flood_of_refusals_holds_few_files() -> None:
    """Past MAX_REFUSING refusals still being written, more are closed without a word; once
    those close, refusals are told again."""
    factory = JsonLinesServerFactory(
        Silent, CLIENT_TO_SCS, clock=Clock(), limits=ConnectionLimits(max_connections=1)
    )
    admit(open_wire(factory))
    told = [open_wire(factory) for _ in range(MAX_REFUSING)]
    silent = open_wire(factory)
    assert all(t.value() for t in told)
    assert (silent.value(), silent.disconnecting) == (b"", True)
    told[0].protocol.connectionLost(Failure(ConnectionDone()))
    assert open_wire(factory).value()
    assert factory.refused == MAX_REFUSING + 2


def test_refusals_are_logged_at_most_once_a_second(logs: Sequence[LogEvent]) -> None:
    """A flood of refusals is one log line a second, each with how many it stands for."""
    clock = Clock()
    factory = JsonLinesServerFactory(
        Silent, CLIENT_TO_SCS, clock=clock, limits=ConnectionLimits(max_connections=1)
    )
    admit(open_wire(factory))
    for _ in range(3):
        for _ in range(1000):
            open_wire(factory)
        clock.advance(0.5)
    clock.advance(10)
    counts = [e.get("held", 1) for e in logs if "refused" in e["log_format"]]
    assert counts == [1, 1999, 1000]
    assert sum(counts) == factory.refused


def test_bad_lines_are_logged_a_few_times_a_second(logs: Sequence[LogEvent]) -> None:
    """A flood of bad lines is BAD_LINES_LOGGED log lines a second: the first in detail,
    then one that counts the rest: a hostile peer cannot fill the log (each bad line is
    still answered)."""
    clock = Clock()
    factory = JsonLinesServerFactory(Silent, CLIENT_TO_SCS, clock=clock)
    wire = open_wire(factory)
    for _ in range(2):
        wire.protocol.dataReceived(b'{"message":"Nonsense"}\n' * 1000)
        clock.advance(1)
    detailed = [e for e in logs if e["log_format"].startswith("bad line from")]
    counted = [e["held"] for e in logs if "more bad line(s) not shown" in e["log_format"]]
    # the count of the first second's rest is the first line of the next second
    assert len(detailed) == 2 * BAD_LINES_LOGGED - 1
    assert counted == [1000 - BAD_LINES_LOGGED, 1000 - BAD_LINES_LOGGED + 1]
    assert wire.value().count(b"unknown-message") == 2000


# -- the registration deadline ------------------------------------------------------------


def test_unregistered_connection_is_closed_at_the_deadline() -> None:
    """An LCA connection silent for 30 s is told registration-timeout and closed."""
    layer = Layer()
    wire = layer.lca()
    layer.clock.advance(29.9)
    assert not wire.closing
    layer.clock.advance(0.1)
    assert errors_of(wire) == [
        EventError(
            code=ErrorCode.REGISTRATION_TIMEOUT,
            text="no RequestRegisterApplication within 30 s; closing the connection",
        )
    ]
    assert wire.closing


def test_registered_connection_outlives_the_deadline() -> None:
    """Registering in time cancels the deadline; the connection stays open."""
    layer = Layer()
    wire = register(layer, "APP")
    layer.clock.advance(3600)
    assert not wire.closing
    assert errors_of(wire) == []


def test_talking_without_registering_does_not_extend_the_deadline() -> None:
    """Messages other than a registration do not count: the deadline still closes it."""
    layer = Layer(register_timeout=5.0)
    wire = layer.lca()
    for _ in range(10):
        layer.clock.advance(1)
        wire.send(RequestUpdateStatus(status=RUNNING, mode=PRIMARY))
    codes = [e.code for e in errors_of(wire)]
    assert codes[-1] is ErrorCode.REGISTRATION_TIMEOUT
    assert wire.closing


def test_management_connections_have_no_deadline() -> None:
    """A subscriber may stay silent for ever."""
    layer = Layer()
    wire = subscribe(layer)
    layer.clock.advance(86400)
    assert not wire.closing


def test_both_endpoints_share_the_connection_cap() -> None:
    """ManagementLayer(max_connections=N) caps each endpoint at N: a registration, or any
    request, admits a connection; a full endpoint first closes those not admitted."""
    layer = Layer(max_connections=2)
    lca = [register(layer, "A"), layer.lca(), layer.lca()]
    scs = [subscribe(layer), layer.scs(), layer.scs()]
    assert [w.closing for w in lca] == [False, True, False]
    assert [w.closing for w in scs] == [False, True, False]
    lca[2].send(RequestUpdateStatus(status=RUNNING, mode=PRIMARY))  # not-registered
    scs[2].feed(b'{"message":"Nonsense"}\n')  # answered unknown-message
    lca.append(layer.lca())
    scs.append(layer.scs())
    assert lca[2].closing  # talking without registering does not admit
    assert scs[2].closing
    lca[3].send(RequestRegisterApplication(ref=1, application="B"))
    scs[3].send(RequestGetApplicationInfo(ref=1, application="A"))
    assert layer.lca().closing  # every one admitted: the new one is refused
    assert layer.scs().closing


# -- names and other strings --------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"application": "A" * (MAX_NAME_BYTES + 1)}, "application"),
        ({"application": "é" * 128}, "application"),
        ({"application": "APP", "host": "h" * 256}, "host"),
        ({"application": "APP", "pid": MAX_PID + 1}, "pid"),
    ],
    ids=["long-name", "long-utf8-name", "long-host", "huge-pid"],
)
def test_registration_over_a_limit_is_invalid_field(extra: dict[str, Any], field: str) -> None:
    """A registration over a limit is answered invalid-field and registers nothing."""
    layer = Layer()
    wire = layer.lca()
    wire.send(RequestRegisterApplication(ref=7, **extra))
    [error] = errors_of(wire)
    assert (error.code, error.ref) == (ErrorCode.INVALID_FIELD, 7)
    assert error.text.startswith(f"RequestRegisterApplication: field '{field}' must be at most")
    assert len(error.text) < 200
    assert layer.layer.registry.records() == []
    assert not wire.closing
    wire.send(RequestRegisterApplication(ref=8, application="APP"))
    assert wire.received() == [EventApplicationRegistered(ref=8)]


def test_names_at_the_limit_are_accepted() -> None:
    """255 bytes of name and host, and the largest pid, register."""
    layer = Layer()
    name = "\x01" * MAX_NAME_BYTES  # the worst case for JSON escaping
    register(layer, name, host="\\" * 255, pid=MAX_PID)
    record = layer.layer.registry.get(name)
    assert record is not None
    assert record.pid == MAX_PID


def test_the_pid_example_of_the_docs() -> None:
    """The invalid-field example of protocol.md section 7, as the LCA writes it."""
    layer = Layer()
    wire = layer.lca()
    wire.feed(
        b'{"message":"RequestRegisterApplication","ref":1,"application":"SIPS_B",'
        b'"host":"host-b","pid":4294967296}\n'
    )
    assert wire.lines() == [
        b'{"message":"EventError","code":"invalid-field","text":"RequestRegisterApplication: '
        b'field \'pid\' must be at most 2147483647, got 4294967296","ref":1}'
    ]


@pytest.mark.parametrize(
    "request_type", [RequestGetApplicationInfo, RequestStartApplication, RequestSwitchover]
)
def test_scs_request_with_an_overlong_name_is_invalid_field(request_type: Any) -> None:
    """No application can have a name over the limit: such a request is invalid-field."""
    layer = Layer()
    wire = layer.scs()
    wire.send(request_type(ref=4, application="N" * 40_000))
    [error] = errors_of(wire)
    assert (error.code, error.ref) == (ErrorCode.INVALID_FIELD, 4)
    assert len(error.text) < 200


def test_error_texts_quote_a_short_prefix() -> None:
    """An unknown name is quoted by its first characters only."""
    layer = Layer()
    wire = layer.scs()
    wire.send(RequestGetApplicationInfo(ref=1, application="Z" * 250))
    [error] = errors_of(wire)
    assert error.text == f"no application named {quote('Z' * 250)}"
    assert error.text.endswith("... (250 characters)")
    assert quote("SIPS_C") == "'SIPS_C'"


def test_configured_names_over_the_limits_are_reported() -> None:
    """serve --config refuses names, hosts and pair names over the limits."""
    long = "A" * 256
    problems = configuration_problems(
        [ApplicationSpec("ok", host="h"), ApplicationSpec(long), ApplicationSpec("b", host=long)],
        [HaPair("ok", "b"), HaPair("ok", "b", name="P" * 512)],
    )
    assert [p.split(" must")[0] for p in problems] == [
        "field 'application'",
        "field 'host'",
        "field 'name'",
    ]


def longest_names_layer() -> tuple[Layer, str, str]:
    """A layer whose pair members have the longest, worst-escaping names allowed."""
    a, b = "\x01" * MAX_NAME_BYTES, '"' * MAX_NAME_BYTES
    layer = Layer(
        applications=[ApplicationSpec(a, host="\x02" * 255), ApplicationSpec(b)],
        pairs=[HaPair(a, b)],
        launcher=FakeLauncher(),
    )
    return layer, a, b


def test_the_longest_notifications_fit_in_a_line() -> None:
    """Switchovers between members with the longest, worst-escaping names fit in a line."""
    layer, a, b = longest_names_layer()
    watcher = subscribe(layer)
    wa = register(layer, a, host="\x03" * 255, pid=MAX_PID)
    register(layer, b, host="\\" * 255, pid=MAX_PID)
    control = layer.scs()
    control.send(RequestSwitchover(ref=2, application=a))
    wa.protocol.connectionLost(Failure(Exception("x" * 100_000)))
    lines = watcher.lines()  # each checked against the limit and the schema
    assert any(b"EventSwitchover" in line for line in lines)
    assert max(map(len, lines)) < 16_000


# -- property: nothing the emulator sends is over the line limit ---------------------------

_nasty = st.sampled_from(["a", '"', "\\", "\x01", "é", "😀", "\u2028", "\x7f"])
_long_text = st.builds(
    lambda prefix, char, count: prefix + char * count,
    st.text(max_size=20),
    _nasty,
    st.integers(min_value=0, max_value=20_000),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(_long_text, min_size=1, max_size=4),
    hosts=st.lists(st.none() | _long_text, min_size=1, max_size=4),
    pids=st.lists(st.none() | st.integers(min_value=1, max_value=10**200), min_size=1),
    asked=st.lists(_long_text, max_size=4),
)
def test_no_line_sent_is_over_the_limit(
    names: list[str], hosts: list[str | None], pids: list[int | None], asked: list[str]
) -> None:
    """Registrations, requests and unknown messages with long strings (accepted or not):
    every line any connection gets is within the line limit and valid on the wire."""
    layer = Layer()
    watcher = subscribe(layer)
    wires: list[Wire] = [watcher]
    for n, name in enumerate(names):
        wire = layer.lca()
        wires.append(wire)
        message = RequestRegisterApplication(
            ref=n + 1, application=name or "x", host=hosts[n % len(hosts)] or None, pid=pids[0]
        )
        wire.feed(encode(message) + b"\n")
        wire.send(RequestUpdateStatus(status=RUNNING, mode=PRIMARY))
        wire.feed(b'{"message":' + encode(message)[:30_000] + b"\n")
    client = layer.scs()
    wires.append(client)
    for n, name in enumerate(asked):
        for kind in (RequestGetApplicationInfo, RequestStartApplication, RequestSwitchover):
            client.send(kind(ref=n + 1, application=name or "x"))
        client.feed(encode(RequestSubscribe(ref=1)).replace(b"RequestSubscribe", name.encode()))
        client.feed(b"\n")
    client.send(RequestSubscribe(ref=99))
    for wire in wires:
        wire.lines()  # checks the limit and the schema


# -- the journal -----------------------------------------------------------------------------


def entry(n: int) -> JournalEntry:
    return JournalEntry(float(n), f"A{n % 3}", JournalEvent.STATUS, RUNNING, PRIMARY)


def test_journal_keeps_everything_by_default() -> None:
    """A scenario run's journal (no limit) keeps every entry."""
    journal = StatusJournal()
    for n in range(1000):
        journal.append(entry(n))
    assert (len(journal), journal.dropped) == (1000, 0)


def test_bounded_journal_keeps_the_latest() -> None:
    """A journal with a limit keeps the latest entries and counts those it dropped."""
    journal = StatusJournal(limit=100)
    for n in range(1000):
        journal.append(entry(n))
    assert [e.time for e in journal] == [float(n) for n in range(900, 1000)]
    assert journal.dropped == 900
    assert [e.time for e in journal.entries("A0")][-1] == 999.0


def test_journal_streams_each_entry_as_it_happens(tmp_path: Path) -> None:
    """With a sink, each entry is a flushed JSON line at once, even past the limit."""
    path = tmp_path / "journal.jsonl"
    with path.open("w", encoding="utf-8") as sink:
        journal = StatusJournal(limit=2, sink=sink)
        for n in range(5):
            journal.append(entry(n))
            assert len(path.read_text().splitlines()) == n + 1
    assert path.read_text().splitlines()[0] == (
        '{"time":0.0,"application":"A0","event":"status","status":"RUNNING",'
        '"mode":"PRIMARY","detail":""}'
    )


class BrokenSink(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")


def test_journal_survives_a_sink_that_fails(logs: Sequence[LogEvent]) -> None:
    """A sink that cannot be written is logged once and dropped; the journal goes on."""
    sink: IO[str] = BrokenSink()
    journal = StatusJournal(sink=sink)
    for n in range(3):
        journal.append(entry(n))
    assert len(journal) == 3
    assert journal.sink is None
    assert len([e for e in logs if e["log_level"] is LogLevel.error]) == 1


def test_journal_limit_must_be_positive() -> None:
    """A journal keeps at least one entry."""
    with pytest.raises(ValueError, match="at least one"):
        StatusJournal(limit=0)


# -- departed applications -------------------------------------------------------------------


def depart(wire: Wire) -> None:
    wire.protocol.connectionLost(Failure(Exception("closed")))


def test_departed_application_is_forgotten_after_300_s() -> None:
    """A self-registered application is forgotten 300 s after it disconnected: it leaves
    the snapshot, the journal says so."""
    layer = Layer()
    registry = layer.layer.registry
    depart(register(layer, "GONE"))
    register(layer, "STAYS")
    layer.clock.advance(299.9)
    assert "GONE" in registry
    layer.clock.advance(0.1)
    assert "GONE" not in registry
    assert [e.event for e in layer.layer.journal.entries("GONE")][-1] is JournalEvent.FORGOTTEN
    watcher = layer.scs()
    watcher.send(RequestSubscribe(ref=1))
    watcher.send(RequestGetApplicationInfo(ref=2, application="GONE"))
    received = watcher.received()
    assert [m.application for m in received if isinstance(m, EventApplicationInfo)] == ["STAYS"]
    assert [m.code for m in received if isinstance(m, EventError)] == [
        ErrorCode.UNKNOWN_APPLICATION
    ]


def test_reregistering_in_time_keeps_the_record() -> None:
    """An application that comes back before 300 s is not forgotten later."""
    layer = Layer()
    depart(register(layer, "BACK"))
    layer.clock.advance(200)
    register(layer, "BACK")
    layer.clock.advance(1000)
    assert "BACK" in layer.layer.registry


def test_configured_and_paired_applications_are_never_forgotten() -> None:
    """Configured applications and HA pair members stay, connected or not."""
    layer = Layer(
        applications=[ApplicationSpec("CONF")],
        pairs=[HaPair("P", "B")],
        launcher=FakeLauncher(),
    )
    for name in ("CONF", "P", "B"):
        depart(register(layer, name))
    layer.clock.advance(10_000)
    assert all(name in layer.layer.registry for name in ("CONF", "P", "B"))


def test_at_most_max_departed_wait_to_be_forgotten() -> None:
    """Past max_departed, the oldest departure is forgotten at once."""
    clock = Clock()
    registry = ApplicationRegistry(clock, forget_departed_after=300, max_departed=3)
    for n in range(5):
        registry.note(f"A{n}", JournalEvent.REGISTERED, connected=True, registered=True)
        registry.note(f"A{n}", JournalEvent.DISCONNECTED, connected=False, registered=False)
    assert [r.name for r in registry.records()] == ["A2", "A3", "A4"]
    assert registry.departed() == ["A2", "A3", "A4"]
    clock.advance(300)
    assert registry.records() == []
    assert clock.getDelayedCalls() == []


def test_forgetting_is_off_without_a_period() -> None:
    """A registry without forget_departed_after keeps every record (the default)."""
    clock = Clock()
    registry = ApplicationRegistry(clock)
    registry.note("A", JournalEvent.REGISTERED, connected=True)
    registry.note("A", JournalEvent.DISCONNECTED, connected=False)
    clock.advance(10**6)
    assert "A" in registry


# -- heartbeat lower bound --------------------------------------------------------------------


@pytest.mark.parametrize("period", [0.0999, 1e-300, 0.0, float("nan")])
def test_lca_refuses_a_heartbeat_under_a_tenth_of_a_second(period: float) -> None:
    """The LCA refuses a heartbeat period below 0.1 s (it would announce it to everyone)."""
    with pytest.raises(ValueError, match=r"at least 0.1 s"):
        LocalControlAgent(Clock(), ApplicationRegistry(Clock()), heartbeat=period)
    with pytest.raises(ValueError, match=r"at least 0.1 s"):
        ManagementLayer(Clock(), heartbeat=period)


def test_heartbeat_at_the_bound_is_announced() -> None:
    """0.1 s is accepted and announced at registration."""
    layer = Layer(heartbeat=0.1)
    wire = layer.lca()
    wire.send(RequestRegisterApplication(ref=1, application="APP"))
    assert wire.received() == [EventApplicationRegistered(ref=1, heartbeat=0.1)]


@pytest.mark.parametrize("value", ["1.0e-300", "0.05", "0"])
def test_scenario_heartbeat_under_the_bound_is_a_config_error(tmp_path: Path, value: str) -> None:
    """A scenario's heartbeat below 0.1 is an error naming the key, not a run that never ends."""
    path = tmp_path / "scenario_tiny_heartbeat.yaml"
    path.write_text(f"duration: 10\nheartbeat: {value}\napplications: []\n")
    with pytest.raises(ConfigError, match=r"heartbeat: expected a number of at least 0.1"):
        load_scenario(path)


def test_scenario_heartbeat_at_the_bound_loads(tmp_path: Path) -> None:
    """heartbeat: 0.1 is accepted."""
    path = tmp_path / "scenario_heartbeat.yaml"
    path.write_text("duration: 10\nheartbeat: 0.1\napplications: []\n")
    assert load_scenario(path).heartbeat == 0.1


def test_bounds_use_the_documented_values() -> None:
    """The defaults are the values docs/protocol.md section 7 gives."""
    limits = ConnectionLimits()
    assert (limits.max_connections, limits.max_unread, limits.close_grace) == (512, 1 << 20, 10)
    layer = Layer()
    assert layer.layer.lca.register_timeout == 30.0
    assert layer.layer.registry.forget_departed_after == 300.0
    assert layer.layer.registry.max_departed == 1000
    assert layer.layer.journal.limit is None
    assert isinstance(layer.lca_factory, JsonLinesServerFactory)
    assert layer.lca_factory.limits.max_connections == 512


@pytest.mark.parametrize(
    ("given", "listened"),
    [
        ("tcp:4999:interface=127.0.0.1", f"tcp:4999:interface=127.0.0.1:backlog={SOMAXCONN}"),
        ("TCP6:0:interface=\\:\\:1", f"TCP6:0:interface=\\:\\:1:backlog={SOMAXCONN}"),
        ("tcp:0:backlog=10", "tcp:0:backlog=10"),
        ("unix:/run/lca.sock", "unix:/run/lca.sock"),
    ],
)
def test_serve_listens_with_a_long_queue(given: str, listened: str) -> None:
    """serve's TCP endpoints listen with the system's longest queue (a burst of clients is
    not dropped and retried a second later), unless the endpoint gives its own."""
    assert with_backlog(given) == listened


@pytest.mark.parametrize(
    ("limit", "endpoints", "cap"),
    [
        (1024, 2, 384),
        (1024, 4, 192),  # a site with two hosts: their LCAs are endpoints too
        (65536, 2, DEFAULT_MAX_CONNECTIONS),
        (resource.RLIM_INFINITY, 9, DEFAULT_MAX_CONNECTIONS),
        (300, 2, 22),
    ],
)
def test_the_connection_cap_shares_the_open_file_limit(
    monkeypatch: pytest.MonkeyPatch, limit: int, endpoints: int, cap: int
) -> None:
    """Under a low open-file limit each endpoint gets (limit - 256) / endpoints, so that
    every endpoint full still leaves files for the rest: none can run serve out of files."""
    monkeypatch.setattr(resource, "getrlimit", lambda _: (limit, resource.RLIM_INFINITY))
    assert default_max_connections(endpoints) == cap
