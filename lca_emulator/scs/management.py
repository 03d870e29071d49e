"""The SCS management endpoint: query, subscribe, start, stop, switch over."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from lca_common.protocol.framing import ConnectionLimits, MessageSender, server_factory
from lca_common.protocol.limits import MAX_NAME_BYTES, length_problem, quote
from lca_common.protocol.messages import (
    CLIENT_TO_SCS,
    ErrorCode,
    EventError,
    EventOk,
    Message,
    RequestEvent,
    RequestGetApplicationInfo,
    RequestRestartApplication,
    RequestStartApplication,
    RequestStopApplication,
    RequestSubscribe,
    RequestSwitchover,
)
from lca_emulator.lca.control import ApplicationControl, ControlError
from lca_emulator.registry import ApplicationRegistry, RecordChange
from lca_emulator.scs.server import SolutionControlServer, SwitchoverNotice, SwitchoverRefusedError

log = Logger()


class ManagementEndpoint:
    """Builds one :class:`ManagementSession` per management client.

    :param limits: how many clients, and how much unread output each may have.
    """

    def __init__(
        self,
        registry: ApplicationRegistry,
        scs: SolutionControlServer,
        control: ApplicationControl,
        *,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self.registry = registry
        self.scs = scs
        self.control = control
        self.limits = limits
        self.play: Callable[[Mapping[str, object]], tuple[ErrorCode, str] | None] | None = None
        """Plays a ``RequestEvent``'s event now; returns what went wrong (an error code
        and a text), or None (set by whoever knows the event vocabulary: the harness, for
        ``serve``)."""

    def factory(self) -> Factory:
        """A protocol factory for the SCS endpoint."""
        return server_factory(
            lambda: ManagementSession(self),
            CLIENT_TO_SCS,
            clock=self.registry.clock,
            limits=self.limits,
            name="SCS",
        )


class ManagementSession:
    """One management client's connection."""

    def __init__(self, endpoint: ManagementEndpoint) -> None:
        self.endpoint = endpoint
        self.sender: MessageSender | None = None
        self._unsubscribe: list[Callable[[], None]] = []

    def connection_made(self, sender: MessageSender) -> None:
        self.sender = sender

    def connection_lost(self, reason: Failure) -> None:
        for stop in self._unsubscribe:
            stop()
        self._unsubscribe.clear()
        self.sender = None

    def send(self, message: Message) -> None:
        """Send to this client, if it is still connected."""
        if self.sender is not None:
            self.sender.send(message)

    def notify(self, message: Message) -> None:
        """Send a notification (dropping the client if it leaves too many unread)."""
        if self.sender is not None:
            self.sender.notify(message)

    def message_received(self, message: Message) -> None:
        if self.sender is not None:
            self.sender.admit()  # a client that asks: never closed to make room
        ep = self.endpoint
        name = getattr(message, "application", None)
        if isinstance(name, str):
            problem = length_problem("application", name, MAX_NAME_BYTES)
            if problem is not None:
                ref = getattr(message, "ref", None)
                self.send(
                    EventError(
                        code=ErrorCode.INVALID_FIELD, text=f"{message.MESSAGE}: {problem}", ref=ref
                    )
                )
                return
        if isinstance(message, RequestGetApplicationInfo):
            record = ep.registry.get(message.application)
            if record is None:
                self._unknown(message.ref, message.application)
            else:
                self.send(record.info(ref=message.ref))
        elif isinstance(message, RequestSubscribe):
            self._subscribe(message.ref)
        elif isinstance(
            message,
            RequestStartApplication | RequestStopApplication | RequestRestartApplication,
        ):
            self._control(message)
        elif isinstance(message, RequestSwitchover):
            self._switchover(message)
        elif isinstance(message, RequestEvent):
            self._event(message)

    def _event(self, message: RequestEvent) -> None:
        play = self.endpoint.play
        if play is None:
            text = "this emulator plays no events"
            self.send(EventError(code=ErrorCode.NOT_MANAGED, text=text, ref=message.ref))
            return
        problem = play(message.event)
        if problem is None:
            self.send(EventOk(ref=message.ref))
        else:
            code, text = problem
            self.send(EventError(code=code, text=text, ref=message.ref))

    def _unknown(self, ref: int, name: str) -> None:
        self.send(
            EventError(
                code=ErrorCode.UNKNOWN_APPLICATION,
                text=f"no application named {quote(name)}",
                ref=ref,
            )
        )

    def _subscribe(self, ref: int) -> None:
        self.send(EventOk(ref=ref))
        if self._unsubscribe:
            return  # already subscribed: one stream per connection
        for record in self.endpoint.registry.records():
            self.send(record.info())
        self._unsubscribe.append(self.endpoint.registry.changes.subscribe(self._record_changed))
        self._unsubscribe.append(self.endpoint.scs.listen(self._switchover_notice))

    def _record_changed(self, change: RecordChange) -> None:
        if change.shown_state_changed:
            self.notify(change.after.info())

    def _switchover_notice(self, notice: SwitchoverNotice) -> None:
        self.notify(notice)

    def _control(
        self,
        message: RequestStartApplication | RequestStopApplication | RequestRestartApplication,
    ) -> None:
        control = self.endpoint.control
        try:
            if isinstance(message, RequestStartApplication):
                control.start(message.application)
            elif isinstance(message, RequestStopApplication):
                control.stop(message.application, graceful=bool(message.graceful))
            else:
                self._restart(message)
                return
        except ControlError as e:
            self.send(EventError(code=e.code, text=e.text, ref=message.ref))
            return
        self.send(EventOk(ref=message.ref))

    def _restart(self, message: RequestRestartApplication) -> None:
        """Reply once the application has been started again, or could not be."""

        def started(_: object) -> None:
            self.send(EventOk(ref=message.ref))

        def failed(failure: Failure) -> None:
            error = failure.value
            if isinstance(error, ControlError):
                self.send(EventError(code=error.code, text=error.text, ref=message.ref))
            else:
                log.failure("restart of {app}", failure, app=message.application)
                self.send(
                    EventError(
                        code=ErrorCode.START_FAILED, text=failure.getErrorMessage(), ref=message.ref
                    )
                )

        self.endpoint.control.restart(message.application).addCallbacks(started, failed)

    def _switchover(self, message: RequestSwitchover) -> None:
        name = message.application
        if self.endpoint.registry.get(name) is None and self.endpoint.scs.pair_of(name) is None:
            self._unknown(message.ref, name)
            return
        try:
            self.endpoint.scs.request_switchover(name)
        except KeyError:
            self.send(
                EventError(
                    code=ErrorCode.NOT_PAIRED, text=f"{name} is in no HA pair", ref=message.ref
                )
            )
        except SwitchoverRefusedError as e:
            self.send(EventError(code=ErrorCode.SWITCHOVER_REFUSED, text=str(e), ref=message.ref))
        else:
            self.send(EventOk(ref=message.ref))
