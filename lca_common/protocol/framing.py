"""The framing protocol: JSON Lines over a stream, decoded and handed to a controller.

The protocol holds no logic of its own.  It answers lines it cannot decode with
``EventError`` as the contract says (closing the connection when the line is not a
JSON object at all), and forwards every valid message to its controller.

A server's connections are also bounded (``docs/protocol.md``, section 7): no line
sent is longer than the line limit; the protocol registers as a streaming producer
on its transport, stops reading from a peer whose replies pile up unsent and reads
again once they are gone; a peer that lets more than
:attr:`ConnectionLimits.max_unread` bytes of notifications pile up is told
``too-slow`` and disconnected; and :class:`JsonLinesServerFactory` keeps at most
:attr:`ConnectionLimits.max_connections` connections at a time: past it, the oldest
connection whose peer has not yet shown it is a client (``admit``) is closed to make
room, or else the new one is refused.  Bad lines and refusals are logged at most a few
times a second, with counts, so that a hostile peer cannot fill the log.

While a connection handles the lines of one read, the notifications it makes (each
status report sends one to every subscriber) are held, and each connection's are
written in one piece once the read is handled: one transport write per subscriber and
read, not one per report.  Nothing waits for a timer, and each connection's bytes keep
their order: anything else written to, or done with, a connection writes what it holds
first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, cast
from typing import Protocol as TypingProtocol

from twisted.internet.abstract import FileDescriptor
from twisted.internet.error import ConnectionAborted
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IDelayedCall,
    IPushProducer,
    IReactorTime,
    ISystemHandle,
    ITCPTransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from lca_common.protocol.codec import MAX_LINE_LENGTH, FramingError, ProtocolError, decode, encode
from lca_common.protocol.messages import ErrorCode, EventError, Message

DEFAULT_MAX_CONNECTIONS: Final = 512
"""Connections a server endpoint keeps open at once, by default."""

MAX_UNREAD: Final = 1 << 20
"""Bytes of notifications that may wait, unsent, for a peer that does not read."""

READ_SIZE: Final = 4096
"""Bytes read from a connection at a time, and unsent bytes past which reading pauses."""

MAX_REFUSING: Final = 64
"""Refused connections an endpoint may be telling ``too-many-connections`` at once; past
it, a refused connection is closed without a word (each holds a file until it closes)."""

TOO_SLOW_GRACE: Final = 10.0
"""Seconds a peer told ``too-slow`` has to read what is left before it is dropped."""

_ERROR_TEXT_CHARS: Final = 1000
"""An ``EventError`` text that would not fit in a line is cut to this many characters."""

BAD_LINES_LOGGED: Final = 5
"""Log lines an endpoint writes a second about bad lines: each in detail, until one
counts those not shown (a second later, or before the next one shown)."""


@dataclass(frozen=True)
class ConnectionLimits:
    """What a server endpoint allows: how many connections, how much unread output."""

    max_connections: int | None = DEFAULT_MAX_CONNECTIONS
    """Connections open at once; more are answered ``too-many-connections`` and closed."""
    max_unread: int = MAX_UNREAD
    """Bytes of notifications queued for a peer that stopped reading; past it, ``too-slow``."""
    close_grace: float = TOO_SLOW_GRACE
    """Seconds a ``too-slow`` peer has to read the rest before the connection is aborted."""
    read_size: int | None = READ_SIZE
    """Bytes read at a time (so one busy peer holds the others up for little time), which
    is also how much unsent output pauses reading (Twisted's ``bufferSize``).  ``None``:
    the transport's own (64 KiB)."""


class MessageSender(TypingProtocol):
    """What a controller may do with its connection."""

    def send(self, message: Message) -> None:
        """Send one message to the peer."""

    def notify(self, message: Message) -> None:
        """Send a message the peer did not ask for (a subscription's notification).

        A peer that lets too many of these pile up unread is told ``too-slow`` and
        disconnected instead."""

    def disconnect(self) -> None:
        """Close the connection once pending output is written."""

    def abort(self) -> None:
        """Drop the connection at once."""

    def admit(self) -> None:
        """The peer has shown it is a client (it registered, or made a valid request):
        a full endpoint no longer closes this connection to make room for a new one."""


class ConnectionController(TypingProtocol):
    """The logic behind one connection; it never touches a transport."""

    def connection_made(self, sender: MessageSender) -> None:
        """The connection is up; ``sender`` is how to talk back."""

    def message_received(self, message: Message) -> None:
        """A valid message arrived."""

    def connection_lost(self, reason: Failure) -> None:
        """The connection is gone."""


@implementer(IPushProducer)
class _Backpressure:
    """Registered on a server connection's transport, which pauses it when what we wrote
    piles up unsent (more than the transport's buffer) and resumes it once all is sent."""

    def __init__(self, protocol: JsonLinesProtocol) -> None:
        self.protocol = protocol
        self.paused = False
        self.unread = 0
        """Bytes of notifications written since the transport paused us."""

    def pauseProducing(self) -> None:
        if not self.paused:
            self.paused = True
            self.protocol.output_stuck()

    def resumeProducing(self) -> None:
        if self.paused:
            self.paused = False
            self.unread = 0
            self.protocol.output_drained()

    def stopProducing(self) -> None:
        self.paused = False


class _HeldWrites:
    """Notifications made while a connection handles a read: held per connection, then
    each connection's written at once when the outermost read is handled.

    One for the process (:data:`_HELD`): it holds something only while a
    ``dataReceived`` is on the call stack, and is empty again when it returns.
    """

    def __init__(self) -> None:
        self.reading = 0
        """Reads being handled (nested when a write delivers at once to a peer)."""
        self.waiting: list[JsonLinesProtocol] = []
        """Connections with lines held, in the order of their first."""

    def flush(self) -> None:
        """Write every connection's held lines (and any that writing them holds)."""
        while self.waiting:
            waiting, self.waiting = self.waiting, []
            for protocol in waiting:
                protocol.write_held()


_HELD: Final = _HeldWrites()


class JsonLinesProtocol(LineOnlyReceiver):
    """Frames JSON Lines; decodes with ``accepted`` and forwards to ``controller``.

    :param answer_errors: whether an undecodable line is answered with
        ``EventError`` (servers do; clients only log it, so two peers never
        bounce errors at each other).
    :param limits: a server connection's flow control: stop reading while replies
        pile up unsent, drop a peer that leaves too many notifications unread.
        ``None`` (clients): no flow control.
    :param clock: times the grace a ``too-slow`` peer gets; without it, such a peer
        is dropped at once.

    Notifications made while any connection handles a read are held, and written in
    one piece when that read is handled (see the module's docstring).
    """

    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE_LENGTH + 1  # a tolerated trailing "\r"
    log = Logger()

    def __init__(
        self,
        controller: ConnectionController,
        accepted: Sequence[type[Message]],
        *,
        answer_errors: bool,
        limits: ConnectionLimits | None = None,
        clock: IReactorTime | None = None,
    ) -> None:
        self.controller = controller
        self.accepted = tuple(accepted)
        self.answer_errors = answer_errors
        self.limits = limits
        self.clock = clock
        self.backpressure: _Backpressure | None = None
        self._open = False
        self._peer: IAddress | None = None
        self._counted_by: JsonLinesServerFactory | None = None
        self._abort_later: IDelayedCall | None = None
        self._held: list[bytes] = []
        """Notifications made during a read, each with its delimiter, not yet written."""

    # -- MessageSender ---------------------------------------------------------

    def send(self, message: Message) -> None:
        """Encode and write one message, if the connection is still open."""
        if not self._open:
            return
        line = self._line(message)
        if line is not None:
            self.sendLine(line)

    def notify(self, message: Message) -> None:
        """Write a notification, unless the peer already has too many unread: then tell
        it ``too-slow`` and close the connection.

        During a read it is held, and written with the others once the read is handled;
        the peer's unread bytes are counted from the write that finds it not reading, so
        a peer may get what one read makes past ``max_unread`` before it is told."""
        if not self._open:
            return
        line = self._line(message)
        if line is None:
            return
        flow = self.backpressure
        if flow is not None and flow.paused:
            assert self.limits is not None
            if flow.unread + len(line) + 1 > self.limits.max_unread:
                self._too_slow()
                return
            flow.unread += len(line) + 1
        if _HELD.reading:
            if not self._held:
                _HELD.waiting.append(self)
            self._held.append(line + self.delimiter)
            return
        self.sendLine(line)

    def sendLine(self, line: bytes) -> None:
        """One write per line: ``LineOnlyReceiver`` writes the line and its delimiter as
        a sequence, which a socket checks piece by piece and the harness's transports join.
        Held notifications go first.
        """
        if self._held:
            self.write_held()
        self._transport().write(line + self.delimiter)

    def write_held(self) -> None:
        """Write the notifications held for this connection, in one piece."""
        if self._held:
            held, self._held = self._held, []
            self._transport().write(b"".join(held))

    def dataReceived(self, data: bytes) -> None:
        """Frame and handle ``data``; the notifications its lines make are held until all
        are handled."""
        _HELD.reading += 1
        try:
            super().dataReceived(data)
        finally:
            try:
                if _HELD.reading == 1:
                    _HELD.flush()
            finally:
                _HELD.reading -= 1

    def disconnect(self) -> None:
        """Close the connection once pending output is written."""
        self._open = False
        self._stop_producing()
        self.write_held()
        self._transport().loseConnection()

    def abort(self) -> None:
        """Drop the connection at once."""
        self._open = False
        self._stop_producing()
        self.write_held()  # what it wrote: the transport drops it (or not) as before
        self._transport().abortConnection()

    def admit(self) -> None:
        """The peer has shown it is a client: never closed to make room."""
        if self._counted_by is not None:
            self._counted_by.admitted(self)

    def make_room(self, error: EventError) -> None:
        """Closed by a full endpoint for a newer connection: the peer is told why, and
        on a socket the file is closed at once, not at the reactor's next turn (a burst
        of new connections, each closing an older one, must not run the process out of
        files while those wait to close)."""
        self._counted_by = None  # the factory counts it out already
        transport = self.transport
        handle = transport.getHandle() if ISystemHandle.providedBy(transport) else None
        line = self._line(error)
        if not (isinstance(handle, socket.socket) and isinstance(transport, FileDescriptor)):
            self.send(error)
            self.disconnect()
            return
        self._open = False
        self._stop_producing()
        if line is not None:
            with contextlib.suppress(OSError):  # an idle peer: nothing else waits to be sent
                handle.send(line + b"\n")
        transport.connectionLost(Failure(ConnectionAborted()))

    def _transport(self) -> ITCPTransport:
        assert self.transport is not None
        return self.transport  # type: ignore[return-value]

    def _line(self, message: Message) -> bytes | None:
        """``message`` encoded; never longer than the line limit (None: not sent)."""
        line = encode(message)
        if len(line) <= MAX_LINE_LENGTH:
            return line
        if isinstance(message, EventError):
            text = message.text[:_ERROR_TEXT_CHARS] + "..."
            return encode(dataclasses.replace(message, text=text))
        self.log.error(
            "not sending {message} to {peer}: {size} bytes is over the line limit",
            message=message.MESSAGE,
            peer=self._peer,
            size=len(line),
        )
        return None

    # -- flow control ----------------------------------------------------------

    def output_stuck(self) -> None:
        """The transport holds more than it wants unsent: stop reading requests."""
        cast(IPushProducer, self.transport).pauseProducing()

    def output_drained(self) -> None:
        """All we wrote is sent: read requests again."""
        if self._open:
            cast(IPushProducer, self.transport).resumeProducing()

    def _stop_producing(self) -> None:
        """Unregister from the transport, or it would never close (Twisted waits for
        a registered producer)."""
        if self.backpressure is not None:
            self.backpressure = None
            cast(IConsumer, self.transport).unregisterProducer()

    def _too_slow(self) -> None:
        assert self.limits is not None
        self.log.warn(
            "closing the connection of {peer}: more than {limit} bytes of notifications unread",
            peer=self._peer,
            limit=self.limits.max_unread,
        )
        self.send(
            EventError(
                code=ErrorCode.TOO_SLOW,
                text=f"more than {self.limits.max_unread} bytes of notifications are waiting "
                "unread; closing the connection",
            )
        )
        self.disconnect()
        if self.clock is None:
            self._transport().abortConnection()
        else:
            self._abort_later = self.clock.callLater(
                self.limits.close_grace, self._transport().abortConnection
            )

    # -- Twisted ---------------------------------------------------------------

    def connectionMade(self) -> None:
        self._open = True
        transport = self._transport()
        self._peer = transport.getPeer()  # read once: a closed socket forgets it
        if ITCPTransport.providedBy(transport):
            # each line is a whole message: send it now, not after the peer's delayed ACK
            transport.setTcpNoDelay(True)
        if self.limits is not None:
            if self.limits.read_size is not None and isinstance(transport, FileDescriptor):
                transport.bufferSize = self.limits.read_size
            self.backpressure = _Backpressure(self)
            cast(IConsumer, transport).registerProducer(self.backpressure, True)
        factory = getattr(self, "factory", None)
        if isinstance(factory, JsonLinesServerFactory):
            self._counted_by = factory
            factory.opened(self)
        self.controller.connection_made(self)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._open = False
        self._held.clear()
        self.backpressure = None
        if self._abort_later is not None and self._abort_later.active():
            self._abort_later.cancel()
        self._abort_later = None
        if self._counted_by is not None:
            self._counted_by.closed(self)
            self._counted_by = None
        self.controller.connection_lost(reason if reason is not None else Failure(Exception()))

    def lineReceived(self, line: bytes) -> None:
        if not self._open:
            return
        try:
            message = decode(line.removesuffix(b"\r"), self.accepted)
        except ProtocolError as error:
            self._reject(error)
            return
        self.controller.message_received(message)

    def lineLengthExceeded(self, line: bytes) -> None:
        if not self._open:
            return
        self._reject(
            FramingError(
                ErrorCode.LINE_TOO_LONG,
                f"line longer than the limit of {MAX_LINE_LENGTH} bytes",
            )
        )

    def _reject(self, error: ProtocolError) -> None:
        factory = self._counted_by
        if factory is None:
            self.log.warn(
                "bad line from {peer}: {code}: {text}",
                peer=self._peer,
                code=error.code.value,
                text=error.text,
            )
        else:
            factory.bad_lines.note(peer=self._peer, code=error.code.value, text=error.text)
        if self.answer_errors:
            self.send(EventError(code=error.code, text=error.text, ref=error.ref))
        if isinstance(error, FramingError):
            self.disconnect()


class _ThrottledLog:
    """At most ``per_second`` events logged a second (on ``clock``); those over it are
    counted, and the count is logged (``summary``, with ``held``) before the next event
    or a second later.  Without a clock, every event is logged."""

    def __init__(
        self,
        log: Logger,
        clock: IReactorTime | None,
        event: str,
        summary: str,
        *,
        per_second: int = 1,
        **fields: object,
    ) -> None:
        self.log = log
        self.clock = clock
        self.event = event
        self.summary = summary
        self.per_second = per_second
        self.fields = fields
        self.held = 0
        """Events counted, not logged yet."""
        self._window_start = -math.inf
        self._in_window = 0
        self._summary_call: IDelayedCall | None = None

    def note(self, **fields: object) -> None:
        """One event: logged now, or counted for later."""
        if self.clock is not None:
            now = self.clock.seconds()
            if now - self._window_start >= 1.0:
                self._window_start, self._in_window = now, 0
            if self._in_window >= self.per_second:
                self.held += 1
                if self._summary_call is None:
                    wait = self._window_start + 1.0 - now
                    self._summary_call = self.clock.callLater(wait, self.flush)
                return
            self._in_window += 1
        self._log_held()
        self.log.warn(self.event, **self.fields, **fields)

    def flush(self) -> None:
        """Log the count of the events held back, if any."""
        if self._summary_call is not None and self._summary_call.active():
            self._summary_call.cancel()
        self._summary_call = None
        if self.held and self.clock is not None:
            self._window_start, self._in_window = self.clock.seconds(), 1
        self._log_held()

    def _log_held(self) -> None:
        if self.held:
            held, self.held = self.held, 0
            self.log.warn(self.summary, **self.fields, held=held)


class _Refusal(Protocol):
    """A connection over the limit: one ``EventError`` line, then closed at once."""

    def __init__(self, line: bytes, owner: JsonLinesServerFactory) -> None:
        self.line = line
        self.owner = owner

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.owner.refusing += 1
        self.transport.write(self.line + b"\n")
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.owner.refusing -= 1


class JsonLinesServerFactory(Factory):
    """A listening factory: one :class:`JsonLinesProtocol` and one fresh controller per
    connection, answering undecodable lines with ``EventError``, within ``limits``.

    At ``limits.max_connections``, a new connection closes the oldest one that has not
    been admitted (its peer has not registered, or made a valid request: idle
    connections cannot lock clients out), which is told ``too-many-connections``.  When
    every connection is admitted, the new one is told so and closed at once (without a
    word when :data:`MAX_REFUSING` are being told already).  Both are logged at most
    once a second (on ``clock``), with how many there were; bad lines at most
    :data:`BAD_LINES_LOGGED` times a second.
    """

    noisy = False  # a log line per connection is noise, not news
    log = Logger()

    def __init__(
        self,
        new_controller: Callable[[], ConnectionController],
        accepted: Sequence[type[Message]],
        *,
        clock: IReactorTime | None = None,
        limits: ConnectionLimits | None = None,
        name: str = "server",
    ) -> None:
        self.new_controller = new_controller
        self.accepted = tuple(accepted)
        self.clock = clock
        self.limits = limits if limits is not None else ConnectionLimits()
        self.name = name
        self.connections = 0
        """Connections open now (refused ones, and those closed to make room, are not
        counted)."""
        self.refused = 0
        """Connections refused so far."""
        self.evicted = 0
        """Connections closed so far to make room for a newer one."""
        self.refusing = 0
        """Refused connections being told so, not yet closed."""
        self._waiting: dict[JsonLinesProtocol, None] = {}
        """Open connections not admitted yet, oldest first."""
        limit = self.limits.max_connections
        log = self.log  # a Logger read from an instance is a new Logger each time
        self.refusals = _ThrottledLog(
            log,
            clock,
            "{name}: refused a connection: {limit} are open, the most it accepts",
            "{name}: refused {held} more connection(s): {limit} are open, the most it accepts",
            name=name,
            limit=limit,
        )
        self.evictions = _ThrottledLog(
            log,
            clock,
            "{name}: {limit} connections open, the most it accepts: closed the oldest that "
            "had not registered or asked anything, to make room",
            "{name}: closed {held} more connection(s) that had not registered or asked "
            "anything, to make room",
            name=name,
            limit=limit,
        )
        self.bad_lines = _ThrottledLog(
            JsonLinesProtocol.log,
            clock,
            "bad line from {peer}: {code}: {text}",
            "{name}: {held} more bad line(s) not shown",
            per_second=BAD_LINES_LOGGED,
            name=name,
        )

    def opened(self, protocol: JsonLinesProtocol) -> None:
        """``protocol``'s connection is up: counted, and waiting to be admitted."""
        self.connections += 1
        self._waiting[protocol] = None

    def admitted(self, protocol: JsonLinesProtocol) -> None:
        """``protocol``'s peer showed it is a client: never closed to make room."""
        self._waiting.pop(protocol, None)

    def closed(self, protocol: JsonLinesProtocol) -> None:
        """``protocol``'s connection is gone."""
        self.connections -= 1
        self._waiting.pop(protocol, None)

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        cap = self.limits.max_connections
        if cap is not None and self.connections >= cap:
            error = EventError(
                code=ErrorCode.TOO_MANY_CONNECTIONS,
                text=f"the {self.name} endpoint has {cap} connections open, the most it "
                "accepts; try again later",
            )
            if self._waiting:
                self._make_room()
            else:
                self.refused += 1
                self.refusals.note()
                if self.refusing >= MAX_REFUSING:
                    return None  # Twisted closes it at once: a flood holds no more files
                return _Refusal(encode(error), self)
        protocol = JsonLinesProtocol(
            self.new_controller(),
            self.accepted,
            answer_errors=True,
            limits=self.limits,
            clock=self.clock,
        )
        protocol.factory = self
        return protocol

    def stopFactory(self) -> None:
        for throttled in (self.refusals, self.evictions, self.bad_lines):
            throttled.flush()

    def _make_room(self) -> None:
        """Close the oldest connection not admitted, counting it out at once."""
        oldest = next(iter(self._waiting))
        del self._waiting[oldest]
        self.connections -= 1
        self.evicted += 1
        self.evictions.note()
        oldest.make_room(
            EventError(
                code=ErrorCode.TOO_MANY_CONNECTIONS,
                text=f"the {self.name} endpoint has {self.limits.max_connections} connections "
                "open, the most it accepts: this one, the oldest that had not registered or "
                "asked anything, is closed to make room",
            )
        )


def server_factory(
    new_controller: Callable[[], ConnectionController],
    accepted: Sequence[type[Message]],
    *,
    clock: IReactorTime | None = None,
    limits: ConnectionLimits | None = None,
    name: str = "server",
) -> JsonLinesServerFactory:
    """A listening factory: one :class:`JsonLinesProtocol` and one fresh controller per
    connection, answering undecodable lines with ``EventError``, within ``limits``."""
    return JsonLinesServerFactory(new_controller, accepted, clock=clock, limits=limits, name=name)
