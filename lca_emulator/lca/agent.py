"""The LCA side: applications connect, register, report status and take mode changes."""

from __future__ import annotations

import itertools
from typing import Final, Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from lca_common.protocol.framing import ConnectionLimits, MessageSender, server_factory
from lca_common.protocol.limits import (
    MAX_HOST_BYTES,
    MAX_NAME_BYTES,
    MAX_PID,
    MIN_HEARTBEAT,
    length_problem,
)
from lca_common.protocol.messages import (
    APPLICATION_TO_LCA,
    ApplicationStatus,
    ErrorCode,
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
from lca_emulator.journal import LOG_NOW_BACKUP, LOG_NOW_PRIMARY, JournalEvent
from lca_emulator.registry import ApplicationRecord, Records
from lca_emulator.sml import SmlOptions

log = Logger()

_MODE_LOG_IDS = {ExecutionMode.PRIMARY: LOG_NOW_PRIMARY, ExecutionMode.BACKUP: LOG_NOW_BACKUP}
"""A mode the SCS gave, acknowledged: the vendor's SCS logs it as 00-5150 / 00-5151."""

REGISTER_TIMEOUT: Final = 30.0
"""Seconds a new connection has to send ``RequestRegisterApplication`` before it is closed."""


def check_heartbeat(seconds: float) -> float:
    """``seconds`` if it is a heartbeat period the LCA accepts; ``ValueError`` if not."""
    if not seconds >= MIN_HEARTBEAT:  # NaN too
        raise ValueError(f"a heartbeat period is at least {MIN_HEARTBEAT:g} s, not {seconds:g}")
    return seconds


class Supervisor(Protocol):
    """What the LCA tells the process control about (it restarts hung applications)."""

    def application_hung(self, name: str) -> None:
        """``name`` was found hung (silent past its heartbeat period)."""


class LocalControlAgent:
    """Accepts application connections and keeps their records in the registry.

    :param heartbeat: the hang-detection period, in seconds, of applications whose
        ``[sml] heartbeat-period`` is 0 or that are not configured (our default; the
        vendor's is off); ``None``: only those with a period of their own are watched.
        At least :data:`MIN_HEARTBEAT`.
    :param register_timeout: seconds a new connection has to register before it is
        told ``registration-timeout`` and closed (``None``: no limit).
    :param limits: how many connections, and how much unread output each may have.
    :param host: the host it runs on (``None``: the default LCA, for applications
        configured without a host).

    It writes its applications' records to ``records``: the registry, or the SCS's
    link to it (which keeps them while it is lost).
    """

    def __init__(
        self,
        clock: IReactorTime,
        records: Records,
        *,
        host: str | None = None,
        heartbeat: float | None = None,
        register_timeout: float | None = REGISTER_TIMEOUT,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self.clock = clock
        self.records = records
        self.host = host
        self.down = False
        """Its host is down: it accepts no connection until :meth:`revive`."""
        self.heartbeat = check_heartbeat(heartbeat) if heartbeat is not None else None
        self.register_timeout = register_timeout
        self.limits = limits
        self.endpoint: str | None = None
        """Where applications reach this LCA (a client endpoint string), once it listens."""
        self._sessions: dict[str, ApplicationSession] = {}
        self._refs = itertools.count(1)
        self._sml: dict[str, SmlOptions] = {}
        self._supervisor: Supervisor | None = None

    def supervise_with(self, supervisor: Supervisor) -> None:
        """Tell ``supervisor`` (the process control) of hung applications."""
        self._supervisor = supervisor

    def configure(self, name: str, sml: SmlOptions) -> None:
        """``name``'s ``[sml]`` options.  A new heartbeat period applies from the
        application's next registration, when it learns the period (our choice: watching
        with a period it does not beat at would find a healthy application hung)."""
        self._sml[name] = sml

    def heartbeat_period(self, name: str) -> float | None:
        """How long ``name`` may be silent before it is hung (``None``: not watched)."""
        sml = self._sml.get(name)
        if sml is not None and sml.heartbeat_period > 0:
            return float(sml.heartbeat_period)
        return self.heartbeat

    def application_hung(self, name: str) -> None:
        """A session found ``name`` hung: its supervisor decides what to do."""
        if self._supervisor is not None:
            self._supervisor.application_hung(name)

    def factory(self) -> Factory:
        """A protocol factory for the LCA endpoint."""
        return server_factory(
            lambda: ApplicationSession(self),
            APPLICATION_TO_LCA,
            clock=self.clock,
            limits=self.limits,
            name="LCA",
        )

    def next_ref(self) -> int:
        """A fresh reference number for a request the LCA sends."""
        return next(self._refs)

    def change_mode(self, application: str, mode: ExecutionMode) -> bool:
        """Send ``EventChangeExecutionMode``; False when the application is not connected."""
        session = self._sessions.get(application)
        if session is None:
            return False
        session.request_mode(mode)
        return True

    def suspend(self, application: str) -> bool:
        """Send ``EventSuspendApplication``; False when the application is not connected."""
        session = self._sessions.get(application)
        if session is None:
            return False
        session.request_suspend()
        return True

    def connected(self, application: str) -> bool:
        """Whether ``application`` is registered on a live connection."""
        return application in self._sessions

    def disconnect(self, application: str, *, abort: bool = False) -> None:
        """Close ``application``'s connection, if it has one."""
        session = self._sessions.get(application)
        if session is not None:
            session.close(abort=abort)

    def process_exited(self, application: str, detail: str) -> None:
        """The application's process ended: it is ``STOPPED`` whatever it said last.

        Lines its old connection still delivers are stale and are dropped.
        """
        session = self._sessions.get(application)
        if session is not None:
            session.process_gone = True
        self.records.note(
            application,
            JournalEvent.EXITED,
            detail,
            status=ApplicationStatus.STOPPED,
            reported_status=ApplicationStatus.STOPPED,
            pid=None,
            hung=False,
        )

    def crash(self) -> None:
        """Its host went down: every connection is gone at once, and new ones are closed
        until :meth:`revive`."""
        self.down = True
        for session in list(self._sessions.values()):
            session.close(abort=True)

    def revive(self) -> None:
        """Its host is back up: it accepts connections again."""
        self.down = False

    # -- sessions ----------------------------------------------------------------

    def attach(self, name: str, session: ApplicationSession) -> None:
        """``session`` now speaks for ``name``; an older connection of it is closed."""
        previous = self._sessions.get(name)
        if previous is not None and previous is not session:
            previous.detach("replaced by a new registration")
        self._sessions[name] = session

    def release(self, name: str, session: ApplicationSession) -> bool:
        """``session`` of ``name`` is gone; False if a newer one had replaced it already."""
        if self._sessions.get(name) is session:
            del self._sessions[name]
            return True
        return False


class ApplicationSession:
    """One application connection: registration, status reports, mode changes."""

    def __init__(self, lca: LocalControlAgent) -> None:
        self.lca = lca
        self.sender: MessageSender | None = None
        self.application: str | None = None
        self._pending_modes: dict[int, ExecutionMode] = {}
        self._silence: IDelayedCall | None = None
        self._deadline: IDelayedCall | None = None
        self.process_gone = False
        self.suspend_asked = False
        self.period: float | None = None
        """The heartbeat period this application was given when it registered."""

    # -- ConnectionController ----------------------------------------------------

    def connection_made(self, sender: MessageSender) -> None:
        self.sender = sender
        if self.lca.down:
            sender.abort()  # its host is down: nothing listens there
            return
        timeout = self.lca.register_timeout
        if timeout is not None:
            self._deadline = self.lca.clock.callLater(timeout, self._registration_overdue)

    def connection_lost(self, reason: Failure) -> None:
        self._stop_watch()
        self._stop_deadline()
        name, self.application = self.application, None
        if name is None or not self.lca.release(name, self):
            return
        status = ApplicationStatus.STOPPED if self.process_gone else ApplicationStatus.UNKNOWN
        self.lca.records.note(
            name,
            JournalEvent.DISCONNECTED,
            reason.getErrorMessage(),
            status=status,
            connected=False,
            registered=False,
            hung=False,
        )

    def message_received(self, message: Message) -> None:
        if self.process_gone:
            return  # written before its process ended; it no longer speaks for it
        if isinstance(message, RequestRegisterApplication):
            self._register(message)
            return
        name = self.application
        if name is None:
            self._error(
                ErrorCode.NOT_REGISTERED,
                f"{message.MESSAGE} before RequestRegisterApplication",
                getattr(message, "ref", None),
            )
            return
        record = self._heard_from(name)
        if isinstance(message, RequestUpdateStatus):
            self._update_status(name, message, record)
        elif isinstance(message, ResponseExecutionModeChanged):
            self._mode_changed(name, message)
        elif isinstance(message, RequestHeartbeat):
            pass

    # -- requests from the LCA ---------------------------------------------------

    def request_suspend(self) -> None:
        """Ask the application to stop gracefully (``EventSuspendApplication``)."""
        self.suspend_asked = True
        assert self.sender is not None
        self.sender.send(EventSuspendApplication(ref=self.lca.next_ref()))

    def request_mode(self, mode: ExecutionMode) -> None:
        """Ask the application to change mode (``EXITING``: stop gracefully)."""
        ref = self.lca.next_ref()
        self._pending_modes[ref] = mode
        assert self.sender is not None
        self.sender.send(EventChangeExecutionMode(ref=ref, mode=mode))

    def close(self, *, abort: bool) -> None:
        """Close the connection."""
        if self.sender is not None:
            if abort:
                self.sender.abort()
            else:
                self.sender.disconnect()

    def detach(self, why: str) -> None:
        """Forget the application without touching its record, and close."""
        self._stop_watch()
        if self.application is not None:
            log.info("closing old connection of {app}: {why}", app=self.application, why=why)
        self.application = None
        self.close(abort=False)

    # -- handlers ----------------------------------------------------------------

    def _register(self, message: RequestRegisterApplication) -> None:
        if self.application is not None:
            self._error(
                ErrorCode.ALREADY_REGISTERED,
                f"this connection is already registered as {self.application!r}",
                message.ref,
            )
            return
        problem = _registration_problem(message)
        if problem is not None:
            self._error(ErrorCode.INVALID_FIELD, f"{message.MESSAGE}: {problem}", message.ref)
            return
        self._stop_deadline()
        assert self.sender is not None
        self.sender.admit()  # a full endpoint closes unregistered connections, not this one
        name = message.application
        self.application = name
        self.lca.attach(name, self)
        records = self.lca.records
        record = records.get(name)
        status = record.status if record is not None else ApplicationStatus.UNKNOWN
        if status is ApplicationStatus.STOPPED:
            status = ApplicationStatus.UNKNOWN  # it runs, though nothing reported yet
        assert self.sender is not None
        period = self.period = self.lca.heartbeat_period(name)
        self.sender.send(EventApplicationRegistered(ref=message.ref, heartbeat=period))
        records.note(
            name,
            JournalEvent.REGISTERED,
            f"host={message.host or '-'} pid={message.pid or '-'}",
            status=status,
            host=message.host,
            pid=message.pid if message.pid is not None else (record.pid if record else None),
            mode=ExecutionMode.UNKNOWN,  # a new process: nothing is known of it yet
            connected=True,
            registered=True,
            hung=False,
        )
        self.watch()

    def _update_status(
        self, name: str, message: RequestUpdateStatus, record: ApplicationRecord | None
    ) -> None:
        assert record is not None
        mode = message.mode
        if self._pending_modes and mode is not self._pending_modes[max(self._pending_modes)]:
            # written before it heard the mode the SCS gave it: the mode counts once the
            # change is acknowledged (so a restarted former primary never shows as a
            # second PRIMARY); the status counts now
            mode = record.mode
        if message.pid is not None and message.pid != record.pid:
            self.lca.records.note(name, JournalEvent.STATUS, f"pid={message.pid}", pid=message.pid)
        if (record.status, record.mode) == (message.status, mode):
            return
        event = JournalEvent.STATUS if record.status != message.status else JournalEvent.MODE
        self.lca.records.note(
            name, event, status=message.status, mode=mode, reported_status=message.status
        )
        if message.status is ApplicationStatus.SUSPENDING and self.suspend_asked:
            self.lca.records.note(name, JournalEvent.SUSPENDED, "reached SUSPENDING in time")

    def _mode_changed(self, name: str, message: ResponseExecutionModeChanged) -> None:
        ref = message.ref
        if ref is None and self._pending_modes:
            ref = max(self._pending_modes)  # no ref: it answers the latest request
        requested = self._pending_modes.pop(ref, None) if ref is not None else None
        if requested is None:
            self._error(
                ErrorCode.UNKNOWN_REF,
                f"no EventChangeExecutionMode with ref {message.ref} is pending",
                message.ref,
            )
            return
        record = self.lca.records.get(name)
        assert record is not None
        if record.mode != message.mode:
            self.lca.records.note(
                name,
                JournalEvent.MODE,
                f"acknowledged {requested.value}",
                mode=message.mode,
                log_id=_MODE_LOG_IDS.get(message.mode),
            )

    def _error(self, code: ErrorCode, text: str, ref: int | None) -> None:
        assert self.sender is not None
        self.sender.send(EventError(code=code, text=text, ref=ref))

    # -- registration deadline -------------------------------------------------------

    def _registration_overdue(self) -> None:
        self._deadline = None
        if self.application is not None or self.sender is None:
            return
        timeout = self.lca.register_timeout
        self._error(
            ErrorCode.REGISTRATION_TIMEOUT,
            f"no RequestRegisterApplication within {timeout:g} s; closing the connection",
            None,
        )
        self.sender.disconnect()

    def _stop_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    # -- heartbeat -----------------------------------------------------------------

    def watch(self) -> None:
        """(Re)start the hang watch with the application's heartbeat period."""
        self._stop_watch()
        if self.application is None:
            return
        period = self.period
        if period is not None:
            self._silence = self.lca.clock.callLater(period, self._hung, self.application, period)

    def _stop_watch(self) -> None:
        if self._silence is not None and self._silence.active():
            self._silence.cancel()
        self._silence = None

    def _heard_from(self, name: str) -> ApplicationRecord | None:
        """Any message shows ``name`` answers: recovered if it was hung; its record now."""
        record = self.lca.records.get(name)
        if record is not None and record.hung:
            self.lca.records.note(
                name, JournalEvent.RECOVERED, status=record.reported_status, hung=False
            )
            record = self.lca.records.get(name)  # as the SCS may have left it since
        if self.period is not None or self._silence is not None:  # else watch() does nothing
            self.watch()
        return record

    def _hung(self, name: str, period: float) -> None:
        self._silence = None
        self.lca.records.note(
            name,
            JournalEvent.HUNG,
            f"silent for {period:g} s",
            status=ApplicationStatus.UNKNOWN,
            hung=True,
        )
        self.lca.application_hung(name)


def _registration_problem(message: RequestRegisterApplication) -> str | None:
    """Why a registration is refused as ``invalid-field`` (a limit of section 7), or None."""
    problem = length_problem("application", message.application, MAX_NAME_BYTES)
    if problem is None and message.host is not None:
        problem = length_problem("host", message.host, MAX_HOST_BYTES)
    if problem is None and message.pid is not None and message.pid > MAX_PID:
        digits = str(message.pid)
        shown = digits if len(digits) <= 20 else f"an integer of {len(digits)} digits"
        problem = f"field 'pid' must be at most {MAX_PID}, got {shown}"
    return problem
