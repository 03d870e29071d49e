"""The stub's connection to the LCA: register, report, take mode changes, reconnect.

Reconnection is Twisted's ``ClientService`` (with backoff); after every reconnect
the stub registers again and re-reports its current status and mode.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from lca_common.protocol.framing import JsonLinesProtocol, MessageSender
from lca_common.protocol.messages import (
    LCA_TO_APPLICATION,
    ApplicationStatus,
    EventApplicationRegistered,
    EventChangeExecutionMode,
    EventError,
    EventSuspendApplication,
    ExecutionMode,
    Message,
    RequestHeartbeat,
    RequestRegisterApplication,
    RequestUpdateStatus,
    ResponseExecutionModeChanged,
)

log = Logger()


def _no_jitter() -> float:
    """Reconnect delays without randomness, so virtual-time runs repeat exactly."""
    return 0.0


ModeHandler = Callable[[ExecutionMode], None]
"""Called when the LCA changes the stub's mode, after the change is acknowledged."""


class LcaLink:
    """Keeps one registered connection to the LCA for as long as it runs."""

    def __init__(
        self,
        clock: IReactorTime,
        endpoint: IStreamClientEndpoint,
        application: str,
        *,
        host: str | None = None,
        pid: int | None = None,
        on_mode: ModeHandler,
        on_suspend: Callable[[], None] = lambda: None,
    ) -> None:
        self.clock = clock
        self.application = application
        self.host = host
        self.pid = pid
        self.on_mode = on_mode
        self.on_suspend = on_suspend
        self.status = ApplicationStatus.INITIALIZING
        self.mode = ExecutionMode.UNKNOWN
        self.session: LcaSession | None = None
        self.frozen = False
        self._refs = itertools.count(1)
        factory: Factory = Factory.forProtocol(self._build_protocol)
        factory.noisy = False
        self._service = ClientService(
            endpoint,
            factory,
            retryPolicy=backoffPolicy(initialDelay=0.5, maxDelay=5.0, jitter=_no_jitter),
            clock=clock,
        )

    def _build_protocol(self) -> Protocol:
        return JsonLinesProtocol(LcaSession(self), LCA_TO_APPLICATION, answer_errors=False)

    def start(self) -> None:
        """Connect (and keep reconnecting) to the LCA."""
        self._service.startService()

    def stop(self, *, abort: bool = False) -> Deferred[None]:
        """Disconnect for good; ``abort`` drops the connection without a goodbye."""
        if abort and self.session is not None and self.session.sender is not None:
            self.session.sender.abort()
        d: Deferred[None] = self._service.stopService()
        return d

    def next_ref(self) -> int:
        """A fresh request reference."""
        return next(self._refs)

    def report(self, status: ApplicationStatus, mode: ExecutionMode) -> None:
        """Report ``status`` and ``mode`` now if registered, else once registered."""
        self.status, self.mode = status, mode
        if self.session is not None and not self.frozen:
            self.session.report()

    def freeze(self) -> None:
        """Send and answer nothing from now on; the connection stays open."""
        self.frozen = True
        if self.session is not None:
            self.session.stop_heartbeat()


class LcaSession:
    """One connection to the LCA."""

    def __init__(self, link: LcaLink) -> None:
        self.link = link
        self.sender: MessageSender | None = None
        self.registered = False
        self._heartbeat: LoopingCall | None = None

    def connection_made(self, sender: MessageSender) -> None:
        self.sender = sender
        link = self.link
        sender.send(
            RequestRegisterApplication(
                ref=link.next_ref(), application=link.application, host=link.host, pid=link.pid
            )
        )

    def stop_heartbeat(self) -> None:
        """Stop sending heartbeats."""
        if self._heartbeat is not None and self._heartbeat.running:
            self._heartbeat.stop()

    def connection_lost(self, reason: Failure) -> None:
        self.stop_heartbeat()
        if self.link.session is self:
            self.link.session = None
        self.sender = None

    def message_received(self, message: Message) -> None:
        if self.link.frozen:
            return
        if isinstance(message, EventApplicationRegistered):
            self.registered = True
            self.link.session = self
            self.report()
            if message.heartbeat:
                self._heartbeat = LoopingCall(self._beat)
                self._heartbeat.clock = self.link.clock
                self._heartbeat.start(message.heartbeat / 3, now=False)
        elif isinstance(message, EventChangeExecutionMode):
            assert self.sender is not None
            self.sender.send(ResponseExecutionModeChanged(ref=message.ref, mode=message.mode))
            self.link.on_mode(message.mode)
        elif isinstance(message, EventSuspendApplication):
            self.link.on_suspend()
        elif isinstance(message, EventError):
            log.warn("LCA refused a message: {code}: {text}", code=message.code, text=message.text)

    def report(self) -> None:
        """Send the link's current status and mode."""
        if self.sender is not None and self.registered:
            self.sender.send(RequestUpdateStatus(status=self.link.status, mode=self.link.mode))

    def _beat(self) -> None:
        if self.sender is not None:
            self.sender.send(RequestHeartbeat())
