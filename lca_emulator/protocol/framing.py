"""The framing protocol: JSON Lines over a stream, decoded and handed to a controller.

The protocol holds no logic of its own.  It answers lines it cannot decode with
``EventError`` as the contract says (closing the connection when the line is not a
JSON object at all), and forwards every valid message to its controller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol as TypingProtocol

from twisted.internet.interfaces import IAddress, ITCPTransport
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure

from .codec import MAX_LINE_LENGTH, FramingError, ProtocolError, decode, encode
from .messages import ErrorCode, EventError, Message


class MessageSender(TypingProtocol):
    """What a controller may do with its connection."""

    def send(self, message: Message) -> None:
        """Send one message to the peer."""

    def disconnect(self) -> None:
        """Close the connection once pending output is written."""

    def abort(self) -> None:
        """Drop the connection at once."""


class ConnectionController(TypingProtocol):
    """The logic behind one connection; it never touches a transport."""

    def connection_made(self, sender: MessageSender) -> None:
        """The connection is up; ``sender`` is how to talk back."""

    def message_received(self, message: Message) -> None:
        """A valid message arrived."""

    def connection_lost(self, reason: Failure) -> None:
        """The connection is gone."""


class TrafficObserver(TypingProtocol):
    """Sees every connection and line; the virtual-time harness uses it to find quiet."""

    def connection_opened(self, local: IAddress, peer: IAddress) -> None: ...

    def connection_closing(self, local: IAddress, peer: IAddress) -> None: ...

    def connection_closed(self, local: IAddress, peer: IAddress) -> None: ...

    def line_sent(self, local: IAddress, peer: IAddress) -> None: ...

    def line_handled(self, local: IAddress, peer: IAddress) -> None: ...


class JsonLinesProtocol(LineOnlyReceiver):
    """Frames JSON Lines; decodes with ``accepted`` and forwards to ``controller``.

    :param answer_errors: whether an undecodable line is answered with
        ``EventError`` (servers do; clients only log it, so two peers never
        bounce errors at each other).
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
        observer: TrafficObserver | None = None,
    ) -> None:
        self.controller = controller
        self.accepted = tuple(accepted)
        self.answer_errors = answer_errors
        self.observer = observer
        self._open = False
        self._observed = False
        self._addresses: tuple[IAddress, IAddress] | None = None

    # -- MessageSender ---------------------------------------------------------

    def send(self, message: Message) -> None:
        """Encode and write one message, if the connection is still open."""
        if not self._open:
            return
        if self.observer is not None:
            self.observer.line_sent(*self._ends())
        self.sendLine(encode(message))

    def disconnect(self) -> None:
        """Close the connection once pending output is written."""
        self._closing()
        self._transport().loseConnection()

    def abort(self) -> None:
        """Drop the connection at once."""
        self._closing()
        self._transport().abortConnection()

    def _closing(self) -> None:
        if self._open and self.observer is not None:
            self.observer.connection_closing(*self._ends())
        self._open = False

    def _transport(self) -> ITCPTransport:
        assert self.transport is not None
        return self.transport  # type: ignore[return-value]

    def _ends(self) -> tuple[IAddress, IAddress]:
        """Both ends' addresses, read once: a closed socket no longer knows them."""
        if self._addresses is None:
            transport = self._transport()
            self._addresses = (transport.getHost(), transport.getPeer())
        return self._addresses

    # -- Twisted ---------------------------------------------------------------

    def connectionMade(self) -> None:
        self._open = True
        self._ends()
        if self.observer is not None:
            self._observed = True
            self.observer.connection_opened(*self._ends())
        self.controller.connection_made(self)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._open = False
        self.controller.connection_lost(reason if reason is not None else Failure(Exception()))
        if self._observed and self.observer is not None:
            self.observer.connection_closed(*self._ends())

    def lineReceived(self, line: bytes) -> None:
        try:
            if not self._open:
                return
            self._handle(line.removesuffix(b"\r"))
        finally:
            if self.observer is not None:
                self.observer.line_handled(*self._ends())

    def lineLengthExceeded(self, line: bytes) -> None:
        if not self._open:
            return
        self._reject(
            FramingError(
                ErrorCode.LINE_TOO_LONG,
                f"line longer than the limit of {MAX_LINE_LENGTH} bytes",
            )
        )
        if self.observer is not None:
            self.observer.line_handled(*self._ends())

    def _handle(self, line: bytes) -> None:
        try:
            message = decode(line, self.accepted)
        except ProtocolError as error:
            self._reject(error)
            return
        self.controller.message_received(message)

    def _reject(self, error: ProtocolError) -> None:
        self.log.warn(
            "bad line from {peer}: {code}: {text}",
            peer=self._ends()[1],
            code=error.code.value,
            text=error.text,
        )
        if self.answer_errors:
            self.send(EventError(code=error.code, text=error.text, ref=error.ref))
        if isinstance(error, FramingError):
            self.disconnect()


def server_factory(
    new_controller: Callable[[], ConnectionController],
    accepted: Sequence[type[Message]],
    observer: TrafficObserver | None = None,
) -> Factory:
    """A listening factory: one :class:`JsonLinesProtocol` and one fresh controller per
    connection, answering undecodable lines with ``EventError``."""

    def build() -> JsonLinesProtocol:
        return JsonLinesProtocol(new_controller(), accepted, answer_errors=True, observer=observer)

    factory: Factory = Factory.forProtocol(build)
    factory.noisy = False  # a log line per connection is noise, not news
    return factory
