"""JsonLinesProtocol over a StringTransport: framing, forwarding, errors, observation."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import pytest
from twisted.internet.testing import StringTransport
from twisted.logger import LogEvent, LogLevel, capturedLogs
from twisted.python.failure import Failure
from wireschema import assert_valid_wire

from lca_common.protocol.codec import MAX_LINE_LENGTH, decode
from lca_common.protocol.framing import JsonLinesProtocol, MessageSender
from lca_common.protocol.messages import (
    CLIENT_TO_SCS,
    SCS_TO_CLIENT,
    ErrorCode,
    EventError,
    EventOk,
    Message,
    RequestGetApplicationInfo,
    RequestSubscribe,
)

SUBSCRIBE = b'{"message":"RequestSubscribe","ref":1}'


class RecordingController:
    """A ConnectionController that remembers what it was told."""

    def __init__(self) -> None:
        self.sender: MessageSender | None = None
        self.received: list[Message] = []
        self.lost: list[Failure] = []

    def connection_made(self, sender: MessageSender) -> None:
        self.sender = sender

    def message_received(self, message: Message) -> None:
        self.received.append(message)

    def connection_lost(self, reason: Failure) -> None:
        self.lost.append(reason)


class Connection:
    """A JsonLinesProtocol on the SCS side, connected to a StringTransport."""

    def __init__(self, *, answer_errors: bool = True) -> None:
        self.controller = RecordingController()
        self.protocol = JsonLinesProtocol(
            self.controller, CLIENT_TO_SCS, answer_errors=answer_errors
        )
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)

    def feed(self, *chunks: bytes) -> None:
        """Deliver ``chunks`` as separate ``dataReceived`` calls."""
        for chunk in chunks:
            self.protocol.dataReceived(chunk)

    def replies(self) -> list[Message]:
        """Everything written so far, decoded (and checked against the schema)."""
        data = self.transport.value()
        assert data == b"" or data.endswith(b"\n")
        lines = data.splitlines()
        for line in lines:
            assert_valid_wire(json.loads(line))
        return [decode(line, SCS_TO_CLIENT) for line in lines]

    @property
    def closing(self) -> bool:
        """Whether the protocol asked the transport to close."""
        return bool(self.transport.disconnecting)


@pytest.fixture
def conn() -> Connection:
    """A fresh SCS-side connection that answers bad lines."""
    return Connection()


@pytest.fixture
def logs() -> Iterator[Sequence[LogEvent]]:
    """Log events emitted through twisted.logger during the test."""
    with capturedLogs() as events:
        yield events


def _only_error(conn: Connection) -> EventError:
    (reply,) = conn.replies()
    assert isinstance(reply, EventError)
    return reply


def test_valid_line_is_forwarded(conn: Connection) -> None:
    """A complete valid line reaches the controller as a message, and nothing is written."""
    conn.feed(SUBSCRIBE + b"\n")
    assert conn.controller.received == [RequestSubscribe(ref=1)]
    assert conn.transport.value() == b""
    assert not conn.closing


def test_line_split_across_chunks(conn: Connection) -> None:
    """A line delivered a byte at a time is forwarded once, when its newline arrives."""
    line = SUBSCRIBE + b"\n"
    for i in range(len(line) - 1):
        conn.feed(line[i : i + 1])
    assert conn.controller.received == []
    conn.feed(line[-1:])
    assert conn.controller.received == [RequestSubscribe(ref=1)]


def test_several_lines_in_one_chunk(conn: Connection) -> None:
    """Several lines in one chunk are forwarded in order; a trailing partial line waits."""
    second = b'{"message":"RequestGetApplicationInfo","ref":2,"application":"SIPS_A"}'
    conn.feed(SUBSCRIBE + b"\n" + second + b"\n" + b'{"message":"Request')
    assert conn.controller.received == [
        RequestSubscribe(ref=1),
        RequestGetApplicationInfo(ref=2, application="SIPS_A"),
    ]


def test_crlf_is_tolerated(conn: Connection) -> None:
    """A line ended by \\r\\n is read like one ended by \\n."""
    conn.feed(SUBSCRIBE + b"\r\n")
    assert conn.controller.received == [RequestSubscribe(ref=1)]
    assert conn.transport.value() == b""


def test_line_of_exactly_the_limit_with_crlf_is_forwarded(conn: Connection) -> None:
    """A line of exactly MAX_LINE_LENGTH bytes plus \\r\\n is still accepted."""
    head = b'{"message":"RequestSubscribe","ref":1,"padding":"'
    line = head + b"x" * (MAX_LINE_LENGTH - len(head) - 2) + b'"}'
    assert len(line) == MAX_LINE_LENGTH
    conn.feed(line + b"\r\n")
    assert conn.controller.received == [RequestSubscribe(ref=1)]
    assert not conn.closing


def test_invalid_json_is_answered_and_closes(conn: Connection) -> None:
    """Invalid JSON gets EventError without ref and closes; later lines are dropped."""
    conn.feed(b'{"message":"RequestSubscribe",\n' + SUBSCRIBE + b"\n")
    error = _only_error(conn)
    assert error.code is ErrorCode.INVALID_JSON
    assert error.ref is None
    assert conn.closing
    assert conn.controller.received == []


def test_non_object_json_is_answered_and_closes(conn: Connection) -> None:
    """A JSON array is a framing error, like invalid JSON."""
    conn.feed(b'["RequestSubscribe"]\n')
    assert _only_error(conn).code is ErrorCode.INVALID_JSON
    assert conn.closing


def test_nothing_is_sent_after_a_framing_error(conn: Connection) -> None:
    """Once the protocol has given up on a connection, the controller cannot write to it."""
    conn.feed(b"garbage\n")
    before = conn.transport.value()
    assert conn.controller.sender is not None
    conn.controller.sender.send(EventOk(ref=1))
    assert conn.transport.value() == before


def test_over_long_partial_line_is_answered_and_closes(conn: Connection) -> None:
    """More than 65,536 bytes without a newline (beyond a tolerated \\r) closes the connection."""
    conn.feed(b"x" * (MAX_LINE_LENGTH + 1))
    assert conn.transport.value() == b""  # it may still be a full line ending in \r\n
    conn.feed(b"x")
    error = _only_error(conn)
    assert error.code is ErrorCode.LINE_TOO_LONG
    assert error.ref is None
    assert conn.closing
    assert conn.controller.received == []


def test_over_long_complete_line_is_answered_and_closes(conn: Connection) -> None:
    """A complete line of 65,537 bytes is answered line-too-long and closes the connection."""
    head = b'{"message":"RequestSubscribe","ref":1,"padding":"'
    line = head + b"x" * (MAX_LINE_LENGTH + 1 - len(head) - 2) + b'"}'
    assert len(line) == MAX_LINE_LENGTH + 1
    conn.feed(line + b"\n")
    assert _only_error(conn).code is ErrorCode.LINE_TOO_LONG
    assert conn.closing
    assert conn.controller.received == []


def test_much_longer_complete_line_is_answered_and_closes(conn: Connection) -> None:
    """A line far over the limit, arriving whole with its newline, is answered and closed."""
    conn.feed(b"{" + b" " * (3 * MAX_LINE_LENGTH) + b"}\n" + SUBSCRIBE + b"\n")
    assert _only_error(conn).code is ErrorCode.LINE_TOO_LONG
    assert conn.closing
    assert conn.controller.received == []


def test_unknown_message_is_answered_and_connection_stays_open(conn: Connection) -> None:
    """An unknown message gets EventError with its ref; the next valid line is still forwarded."""
    conn.feed(b'{"message":"RequestKillApplication","ref":4,"application":"SIPS_A"}\n')
    error = _only_error(conn)
    assert error.code is ErrorCode.UNKNOWN_MESSAGE
    assert error.ref == 4
    assert not conn.closing
    conn.feed(SUBSCRIBE + b"\n")
    assert conn.controller.received == [RequestSubscribe(ref=1)]


def test_invalid_field_is_answered_and_connection_stays_open(conn: Connection) -> None:
    """A bad field type gets invalid-field; the connection stays open."""
    conn.feed(b'{"message":"RequestSubscribe","ref":"1"}\n', SUBSCRIBE + b"\n")
    error = _only_error(conn)
    assert error.code is ErrorCode.INVALID_FIELD
    assert error.ref is None
    assert not conn.closing
    assert conn.controller.received == [RequestSubscribe(ref=1)]


def test_bad_lines_are_logged_as_warnings(conn: Connection, logs: Sequence[LogEvent]) -> None:
    """Every rejected line is logged through twisted.logger with its code."""
    conn.feed(b'{"message":"RequestNothing","ref":2}\n')
    (event,) = [e for e in logs if e.get("log_namespace", "").startswith("lca_common")]
    assert event["log_level"] is LogLevel.warn
    assert event["code"] == ErrorCode.UNKNOWN_MESSAGE.value


def test_without_answer_errors_bad_lines_are_only_logged(logs: Sequence[LogEvent]) -> None:
    """With answer_errors=False nothing is written back; the bad line is logged."""
    conn = Connection(answer_errors=False)
    conn.feed(b'{"message":"RequestNothing","ref":2}\n', SUBSCRIBE + b"\n")
    assert conn.transport.value() == b""
    assert not conn.closing
    assert conn.controller.received == [RequestSubscribe(ref=1)]
    warnings = [e for e in logs if e.get("log_level") is LogLevel.warn]
    assert [e["code"] for e in warnings] == [ErrorCode.UNKNOWN_MESSAGE.value]


def test_without_answer_errors_framing_errors_still_close(logs: Sequence[LogEvent]) -> None:
    """With answer_errors=False an invalid line is logged, not answered, and still closes."""
    conn = Connection(answer_errors=False)
    conn.feed(b"not json\n")
    assert conn.transport.value() == b""
    assert conn.closing
    warnings = [e for e in logs if e.get("log_level") is LogLevel.warn]
    assert [e["code"] for e in warnings] == [ErrorCode.INVALID_JSON.value]


def test_sender_writes_one_line_per_message(conn: Connection) -> None:
    """The controller's sender encodes each message as one \\n-terminated line."""
    assert conn.controller.sender is conn.protocol
    conn.protocol.send(EventOk(ref=1))
    conn.protocol.send(EventOk(ref=2))
    assert (
        conn.transport.value() == b'{"message":"EventOk","ref":1}\n{"message":"EventOk","ref":2}\n'
    )


def test_disconnect_and_abort_reach_the_transport() -> None:
    """disconnect() closes gently, abort() drops at once, and either stops further sends."""
    gentle = Connection()
    gentle.protocol.disconnect()
    assert gentle.closing
    assert not gentle.transport.disconnected
    gentle.protocol.send(EventOk(ref=1))
    assert gentle.transport.value() == b""

    abrupt = Connection()
    abrupt.protocol.abort()
    assert abrupt.transport.disconnected


def test_connection_lost_reaches_the_controller(conn: Connection) -> None:
    """connectionLost hands its reason to the controller, and sends are dropped afterwards."""
    reason = Failure(ConnectionResetError("peer went away"))
    conn.protocol.connectionLost(reason)
    assert conn.controller.lost == [reason]
    conn.protocol.send(EventOk(ref=1))
    assert conn.transport.value() == b""


def test_data_after_an_over_long_line_is_ignored(
    conn: Connection, logs: Sequence[LogEvent]
) -> None:
    """After an over-long line, more data before the close is neither logged nor answered."""
    conn.feed(b"x" * (MAX_LINE_LENGTH + 2))
    answered = conn.transport.value()
    conn.feed(b"y")
    assert conn.transport.value() == answered
    assert len([e for e in logs if e.get("log_level") is LogLevel.warn]) == 1


# -- Held notifications: one transport write per subscriber and read ---------------


class CountingTransport(StringTransport):
    """A StringTransport that also keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        super().write(data)


class Replier(RecordingController):
    """Answers each message with EventOk (ref), and notifies ``watcher`` (ref + 100)."""

    def __init__(self, watcher: JsonLinesProtocol | None = None, *, fail_on: int = 0) -> None:
        super().__init__()
        self.watcher = watcher
        self.fail_on = fail_on

    def message_received(self, message: Message) -> None:
        super().message_received(message)
        assert self.sender is not None
        ref = getattr(message, "ref", 0)
        if ref == self.fail_on:
            raise RuntimeError("a controller bug")
        if self.watcher is not None:
            self.watcher.notify(EventOk(ref=100 + ref))
        self.sender.send(EventOk(ref=ref))


def _connect(controller: RecordingController) -> tuple[JsonLinesProtocol, CountingTransport]:
    protocol = JsonLinesProtocol(controller, CLIENT_TO_SCS, answer_errors=True)
    transport = CountingTransport()
    protocol.makeConnection(transport)
    return protocol, transport


def _subscribes(*refs: int) -> bytes:
    return b"".join(b'{"message":"RequestSubscribe","ref":%d}\n' % ref for ref in refs)


def _oks(*refs: int) -> bytes:
    return b"".join(b'{"message":"EventOk","ref":%d}\n' % ref for ref in refs)


def test_notifications_made_during_a_read_go_out_in_one_write() -> None:
    """The notifications the lines of one read make are written once the read is
    handled, in one write per subscriber and in order; replies go out at once."""
    watcher, watcher_transport = _connect(RecordingController())
    protocol, transport = _connect(Replier(watcher))
    protocol.dataReceived(_subscribes(1, 2, 3))
    assert watcher_transport.writes == [_oks(101, 102, 103)]
    assert transport.writes == [_oks(1), _oks(2), _oks(3)]
    protocol.dataReceived(_subscribes(4))
    assert watcher_transport.writes == [_oks(101, 102, 103), _oks(104)]


def test_notifications_made_outside_a_read_go_out_at_once() -> None:
    """A notification made when no read is being handled (a timer, a process event)
    is written at once, alone."""
    protocol, transport = _connect(RecordingController())
    protocol.notify(EventOk(ref=1))
    protocol.notify(EventOk(ref=2))
    assert transport.writes == [_oks(1), _oks(2)]


def test_a_reply_writes_the_held_notifications_first() -> None:
    """Whatever else is written to a connection during a read goes after the
    notifications it holds: its bytes keep their order."""
    protocol, transport = _connect(RecordingController())

    class NotifyThenSend(RecordingController):
        def message_received(self, message: Message) -> None:
            protocol.notify(EventOk(ref=7))
            protocol.send(EventOk(ref=8))
            protocol.notify(EventOk(ref=9))

    reader, _ = _connect(NotifyThenSend())
    reader.dataReceived(_subscribes(1))
    assert transport.writes == [_oks(7), _oks(8), _oks(9)]


def test_a_read_inside_a_read_writes_when_the_outer_one_is_handled() -> None:
    """A read handled while another is (a peer that delivers at once) holds its
    notifications until the outer read is handled."""
    watcher, watcher_transport = _connect(RecordingController())
    inner, _ = _connect(Replier(watcher))

    class Relay(RecordingController):
        def message_received(self, message: Message) -> None:
            inner.dataReceived(_subscribes(getattr(message, "ref", 0) + 10))

    outer, _ = _connect(Relay())
    outer.dataReceived(_subscribes(1, 2))
    assert watcher_transport.writes == [_oks(111, 112)]


@pytest.mark.parametrize("abort", [False, True], ids=["disconnect", "abort"])
def test_closing_during_a_read_writes_the_held_notifications_first(abort: bool) -> None:
    """Notifications held for a connection that is closed during the read are written
    before it closes (an abort then drops them with the rest of its output, as before)."""
    watcher, watcher_transport = _connect(RecordingController())

    class Closer(Replier):
        def message_received(self, message: Message) -> None:
            super().message_received(message)
            if getattr(message, "ref", 0) == 2:
                if abort:
                    watcher.abort()
                else:
                    watcher.disconnect()

    protocol, _ = _connect(Closer(watcher))
    protocol.dataReceived(_subscribes(1, 2, 3))
    assert watcher_transport.writes == [_oks(101, 102)]
    assert watcher_transport.disconnecting


def test_a_failing_controller_still_gets_the_held_notifications_written() -> None:
    """When a controller raises during a read, the notifications made before are
    written, and one made afterwards, outside a read, goes out at once."""
    watcher, watcher_transport = _connect(RecordingController())
    protocol, _ = _connect(Replier(watcher, fail_on=2))
    with pytest.raises(RuntimeError, match="a controller bug"):
        protocol.dataReceived(_subscribes(1, 2, 3))
    assert watcher_transport.writes == [_oks(101)]
    watcher.notify(EventOk(ref=9))
    assert watcher_transport.writes == [_oks(101), _oks(9)]


def test_a_connection_lost_during_a_read_gets_nothing_later() -> None:
    """Notifications held for a connection that is lost before the read is handled are
    dropped with it."""
    watcher, watcher_transport = _connect(RecordingController())

    class Dropper(Replier):
        def message_received(self, message: Message) -> None:
            super().message_received(message)
            watcher.connectionLost(Failure(Exception("gone")))

    protocol, _ = _connect(Dropper(watcher))
    protocol.dataReceived(_subscribes(1))
    assert watcher_transport.writes == []
