"""Test doubles that ship with the package: a scripted application and a management
client, both speaking the wire protocol over real loopback TCP.

Give them a site's network (``network=site.network``) and they connect over it
(in memory, in a default virtual-time site), and the virtual clock waits for their
traffic too; without one they connect to 127.0.0.1 over TCP.
"""

from __future__ import annotations

import itertools
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.python.failure import Failure

from lca_common.protocol.framing import JsonLinesProtocol, MessageSender
from lca_common.protocol.messages import (
    LCA_TO_APPLICATION,
    SCS_TO_CLIENT,
    ApplicationStatus,
    EventApplicationRegistered,
    EventChangeExecutionMode,
    ExecutionMode,
    Message,
    RequestHeartbeat,
    RequestRegisterApplication,
    RequestUpdateStatus,
    ResponseExecutionModeChanged,
)
from lca_emulator.harness.network import SiteNetwork

__all__ = ["ConnectionClosedError", "ManagementClient", "PeerTimeoutError", "ScriptedApplication"]

DEFAULT_TIMEOUT = 10.0
"""Wall-clock seconds a test double waits for a connection or a reply."""

T = TypeVar("T")


class PeerTimeoutError(Exception):
    """A test double waited too long for a connection or a reply."""


class ConnectionClosedError(Exception):
    """The connection closed while a test double was waiting for a reply."""


class _Peer:
    """What both doubles share: a connection, what arrived, and waiting for it."""

    accepted: tuple[type[Message], ...] = ()

    def __init__(self, reactor: Any, port: int, network: SiteNetwork | None = None) -> None:
        self.reactor = reactor
        self.port = port
        self.network = network
        self.sender: MessageSender | None = None
        self.received: list[Message] = []
        self.closed: Deferred[None] = Deferred()
        self._refs = itertools.count(1)
        self._replies: dict[int, Deferred[Message]] = {}

    async def connect(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Open the connection.

        :raises PeerTimeoutError: not connected within ``timeout`` wall-clock seconds.
        """
        protocol = JsonLinesProtocol(self, self.accepted, answer_errors=False)
        endpoint: Any = TCP4ClientEndpoint(self.reactor, "127.0.0.1", self.port)
        if self.network is not None:
            endpoint = self.network.client_endpoint(self.port)
        attempt = connectProtocol(endpoint, protocol)
        await self._bounded(attempt, timeout, f"not connected to 127.0.0.1:{self.port}")

    def next_ref(self) -> int:
        """A fresh request reference."""
        return next(self._refs)

    def send(self, message: Message) -> None:
        """Send one message."""
        assert self.sender is not None, "not connected"
        self.sender.send(message)

    def request(self, message: Message, *, timeout: float = DEFAULT_TIMEOUT) -> Deferred[Message]:
        """Send a request (it must carry ``ref``) and get a Deferred of its reply.

        The Deferred fails with :class:`PeerTimeoutError` when no reply comes within
        ``timeout`` wall-clock seconds, or with :class:`ConnectionClosedError` when the
        connection closes first.
        """
        ref = getattr(message, "ref")  # noqa: B009 - every request type has one
        d: Deferred[Message] = Deferred()
        self._replies[ref] = d
        self.send(message)

        def forget(result: object) -> object:
            self._replies.pop(ref, None)
            return result

        what = f"no reply to {message.MESSAGE} (ref {ref})"
        return self._bounded(d, timeout, what).addBoth(forget)

    def _bounded(self, d: Deferred[T], timeout: float, what: str) -> Deferred[T]:
        """``d``, failing with a clear error after ``timeout`` seconds on the reactor."""

        def timed_out(result: T | Failure, timeout: float) -> T | Failure:
            raise PeerTimeoutError(f"{type(self).__name__}: {what} within {timeout:g} s")

        return d.addTimeout(timeout, self.reactor, onTimeoutCancel=timed_out)

    def disconnect(self, *, abort: bool = False) -> None:
        """Close (``abort``: drop at once, like a crash)."""
        if self.sender is not None:
            if abort:
                self.sender.abort()
            else:
                self.sender.disconnect()

    def of_type(self, kind: type[Message]) -> list[Message]:
        """What arrived of one message type, in order."""
        return [m for m in self.received if isinstance(m, kind)]

    # -- ConnectionController --------------------------------------------------------

    def connection_made(self, sender: MessageSender) -> None:
        self.sender = sender

    def connection_lost(self, reason: Failure) -> None:
        self.sender = None
        waiting, self._replies = self._replies, {}
        for ref, d in waiting.items():
            d.errback(ConnectionClosedError(f"the connection closed before the reply to ref {ref}"))
        if not self.closed.called:
            self.closed.callback(None)

    def message_received(self, message: Message) -> None:
        self.received.append(message)
        ref = getattr(message, "ref", None)
        waiter = self._replies.pop(ref, None) if ref is not None else None
        self._handle(message)
        if waiter is not None:
            waiter.callback(message)

    def _handle(self, message: Message) -> None:
        pass


class ScriptedApplication(_Peer):
    """An application whose every report the test dictates; it acknowledges mode changes.

    ``follow_modes``: report the new mode (with the current status) after each change.
    """

    accepted = LCA_TO_APPLICATION

    def __init__(
        self,
        reactor: Any,
        port: int,
        name: str,
        *,
        network: SiteNetwork | None = None,
        host: str | None = None,
        pid: int | None = None,
        follow_modes: bool = True,
        acknowledge: bool = True,
    ) -> None:
        super().__init__(reactor, port, network)
        self.name = name
        self.host = host
        self.pid = pid
        self.follow_modes = follow_modes
        self.acknowledge = acknowledge
        self.status = ApplicationStatus.INITIALIZING
        self.mode = ExecutionMode.UNKNOWN

    def register(self) -> Deferred[Message]:
        """Send ``RequestRegisterApplication``; fires with the reply."""
        return self.request(
            RequestRegisterApplication(
                ref=self.next_ref(), application=self.name, host=self.host, pid=self.pid
            )
        )

    def report(self, status: ApplicationStatus, mode: ExecutionMode | None = None) -> None:
        """Send ``RequestUpdateStatus``."""
        self.status = status
        self.mode = mode if mode is not None else self.mode
        self.send(RequestUpdateStatus(status=self.status, mode=self.mode))

    def heartbeat(self) -> None:
        """Send ``RequestHeartbeat``."""
        self.send(RequestHeartbeat())

    def modes_requested(self) -> list[ExecutionMode]:
        """Every mode the LCA asked for, in order."""
        return [m.mode for m in self.received if isinstance(m, EventChangeExecutionMode)]

    def _handle(self, message: Message) -> None:
        if isinstance(message, EventChangeExecutionMode) and self.acknowledge:
            self.send(ResponseExecutionModeChanged(ref=message.ref, mode=message.mode))
            if self.follow_modes:
                self.report(self.status, message.mode)
        elif isinstance(message, EventApplicationRegistered):
            pass


class ManagementClient(_Peer):
    """A client of the SCS endpoint: requests, and the notifications it subscribed to."""

    accepted = SCS_TO_CLIENT
