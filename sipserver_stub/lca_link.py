"""The stub's connection to the LCA: register, report, take mode changes, reconnect.

Reconnection is Twisted's ``ClientService`` (with backoff); after every reconnect
the stub registers again and re-reports its current status and mode.  While the LCA
is gone the link logs the loss once, one line per backoff step (its delay in real
seconds), and one line when it is back; ``ClientService``'s own per-attempt lines
are silenced (at a small ``--time-scale`` they came 20 times a second, for ever).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import ILogObserver, LogEvent, Logger
from twisted.python.failure import Failure
from zope.interface import implementer

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
from lca_common.yamlsource import format_number

log = Logger()


def _no_jitter() -> float:
    """Reconnect delays without randomness, so virtual-time runs repeat exactly."""
    return 0.0


INITIAL_DELAY, MAX_DELAY = 0.5, 5.0
"""The reconnect backoff, in the link clock's seconds (scenario seconds under a scale)."""


@implementer(ILogObserver)
def _discard(event: LogEvent) -> None:
    """A log observer that drops everything."""


class QuietClientService(ClientService):
    """A ``ClientService`` without its own log lines ("Scheduling retry N to connect
    <object at 0x...> in 5.0 seconds", in the clock's units): the link logs instead."""

    _log = Logger(observer=_discard)


@implementer(IStreamClientEndpoint)
class _WatchedEndpoint:
    """An endpoint that tells of each failed connection attempt (and still fails it)."""

    def __init__(self, endpoint: IStreamClientEndpoint, failed: Callable[[Failure], None]):
        self._endpoint = endpoint
        self._failed = failed

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        def failed(failure: Failure) -> Failure:
            self._failed(failure)
            return failure

        return self._endpoint.connect(protocolFactory).addErrback(failed)


def describe_endpoint(endpoint: IStreamClientEndpoint) -> str:
    """``host:port`` for a TCP endpoint, else the endpoint's class name (never a repr)."""
    host, port = getattr(endpoint, "_host", None), getattr(endpoint, "_port", None)
    if host is not None and port is not None:
        return f"{host}:{port}"
    path = getattr(endpoint, "_path", None)
    return f"unix:{path}" if path is not None else type(endpoint).__name__


def _seconds(value: float) -> str:
    return format_number(round(value, 4))


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
        lca_name: str | None = None,
    ) -> None:
        self.clock = clock
        self.lca_name = lca_name if lca_name is not None else describe_endpoint(endpoint)
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
        self._stopping = False
        self._ever_connected = False
        self._outage: _Outage | None = None
        self._backoff = backoffPolicy(
            initialDelay=INITIAL_DELAY, maxDelay=MAX_DELAY, jitter=_no_jitter
        )
        factory: Factory = Factory.forProtocol(self._build_protocol)
        factory.noisy = False
        self._service = QuietClientService(
            _WatchedEndpoint(endpoint, self._attempt_failed),
            factory,
            retryPolicy=self._retry_delay,
            clock=clock,
        )

    # -- reconnecting, and saying so once per step ------------------------------------

    def _real(self, delay: float) -> float:
        """``delay`` on the link's clock in real seconds (a ScaledClock has a scale)."""
        scale: float = getattr(self.clock, "scale", 1.0)
        return delay * scale

    def _went_away(self, reason: str, *, lost: bool) -> None:
        if self._stopping or self._outage is not None:
            return
        self._outage = _Outage(self.clock.seconds(), reason)
        if lost:
            log.warn(
                "lost the LCA at {lca}: {reason}; reconnecting", lca=self.lca_name, reason=reason
            )
        else:
            log.warn(
                "cannot reach the LCA at {lca}: {reason}; reconnecting",
                lca=self.lca_name,
                reason=reason,
            )

    def _attempt_failed(self, failure: Failure) -> None:
        reason = failure.getErrorMessage()
        self._went_away(reason, lost=self._ever_connected)
        if self._outage is not None:
            self._outage.failures += 1
            self._outage.reason = reason

    def _retry_delay(self, attempt: int) -> float:
        """The backoff policy, which also logs each new step (not each attempt)."""
        delay = self._backoff(attempt)
        outage = self._outage
        if outage is None or self._stopping or delay == outage.delay:
            return delay
        outage.delay = delay
        if delay >= MAX_DELAY:
            then = f"retrying every {_seconds(self._real(delay))} s from now on"
        else:
            then = f"next try in {_seconds(self._real(delay))} s"
        if outage.failures:
            log.info(
                "no LCA at {lca}: {failures} failed attempt(s) (last: {reason}); {then}",
                lca=self.lca_name,
                failures=outage.failures,
                reason=outage.reason,
                then=then,
            )
        else:  # the first step after a lost connection: nothing has failed yet
            log.info("no LCA at {lca} yet; {then}", lca=self.lca_name, then=then)
        return delay

    def _connected(self) -> None:
        outage, self._outage = self._outage, None
        self._ever_connected = True
        if outage is not None:
            away = self._real(self.clock.seconds() - outage.since)
            log.info(
                "connected to the LCA at {lca} again after {failures} failed attempt(s) ({away} s)",
                lca=self.lca_name,
                failures=outage.failures,
                away=_seconds(away),
            )

    def _build_protocol(self) -> Protocol:
        return JsonLinesProtocol(LcaSession(self), LCA_TO_APPLICATION, answer_errors=False)

    def start(self) -> None:
        """Connect (and keep reconnecting) to the LCA."""
        self._stopping = False
        self._service.startService()

    def stop(self, *, abort: bool = False) -> Deferred[None]:
        """Disconnect for good; ``abort`` drops the connection without a goodbye."""
        self._stopping = True
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


class _Outage:
    """The LCA is gone since ``since`` (clock seconds); what the link last said of it."""

    def __init__(self, since: float, reason: str) -> None:
        self.since = since
        self.reason = reason
        self.failures = 0
        self.delay: float | None = None


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
        link._connected()
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
        self.link._went_away(reason.getErrorMessage(), lost=True)
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
