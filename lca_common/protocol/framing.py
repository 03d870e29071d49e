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

from lca_common.protocol.codec import MAX_LINE_LENGTH, FramingError, ProtocolError, decode, encode
from lca_common.protocol.messages import ErrorCode, EventError, Message


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
    ) -> None:
        self.controller = controller
        self.accepted = tuple(accepted)
        self.answer_errors = answer_errors
        self._open = False
        self._peer: IAddress | None = None

    # -- MessageSender ---------------------------------------------------------

    def send(self, message: Message) -> None:
        """Encode and write one message, if the connection is still open."""
        if not self._open:
            return
        self.sendLine(encode(message))

    def disconnect(self) -> None:
        """Close the connection once pending output is written."""
        self._open = False
        self._transport().loseConnection()

    def abort(self) -> None:
        """Drop the connection at once."""
        self._open = False
        self._transport().abortConnection()

    def _transport(self) -> ITCPTransport:
        assert self.transport is not None
        return self.transport  # type: ignore[return-value]

    # -- Twisted ---------------------------------------------------------------

    def connectionMade(self) -> None:
        self._open = True
        transport = self._transport()
        self._peer = transport.getPeer()  # read once: a closed socket forgets it
        if ITCPTransport.providedBy(transport):
            # each line is a whole message: send it now, not after the peer's delayed ACK
            transport.setTcpNoDelay(True)
        self.controller.connection_made(self)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._open = False
        self.controller.connection_lost(reason if reason is not None else Failure(Exception()))

    def lineReceived(self, line: bytes) -> None:
        if self._open:
            self._handle(line.removesuffix(b"\r"))

    def lineLengthExceeded(self, line: bytes) -> None:
        if not self._open:
            return
        self._reject(
            FramingError(
                ErrorCode.LINE_TOO_LONG,
                f"line longer than the limit of {MAX_LINE_LENGTH} bytes",
            )
        )

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
            peer=self._peer,
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
) -> Factory:
    """A listening factory: one :class:`JsonLinesProtocol` and one fresh controller per
    connection, answering undecodable lines with ``EventError``."""

    def build() -> JsonLinesProtocol:
        return JsonLinesProtocol(new_controller(), accepted, answer_errors=True)

    factory: Factory = Factory.forProtocol(build)
    factory.noisy = False  # a log line per connection is noise, not news
    return factory
