"""The messages of the Management Layer wire protocol, as frozen dataclasses.

Field names follow the wire names; ``from_`` stands for ``from``.  Names follow
the vendor SDK's public message names where one exists.  See ``docs/protocol.md``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar


class ApplicationStatus(enum.StrEnum):
    """The status an application reports to (or is given by) the Management Layer."""

    UNKNOWN = "UNKNOWN"
    STOPPED = "STOPPED"
    START_PENDING = "START_PENDING"
    START_TRANSITION = "START_TRANSITION"
    INITIALIZING = "INITIALIZING"
    RUNNING = "RUNNING"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    SUSPENDING = "SUSPENDING"
    SUSPENDED = "SUSPENDED"
    STOP_PENDING = "STOP_PENDING"
    STOP_TRANSITION = "STOP_TRANSITION"


class ExecutionMode(enum.StrEnum):
    """The HA role of an application; ``EXITING`` asks it to stop gracefully."""

    PRIMARY = "PRIMARY"
    BACKUP = "BACKUP"
    EXITING = "EXITING"
    UNKNOWN = "UNKNOWN"


class ErrorCode(enum.StrEnum):
    """The ``code`` of an ``EventError``."""

    INVALID_JSON = "invalid-json"
    LINE_TOO_LONG = "line-too-long"
    UNKNOWN_MESSAGE = "unknown-message"
    INVALID_FIELD = "invalid-field"
    NOT_REGISTERED = "not-registered"
    ALREADY_REGISTERED = "already-registered"
    UNKNOWN_APPLICATION = "unknown-application"
    UNKNOWN_REF = "unknown-ref"
    NOT_MANAGED = "not-managed"
    NOT_PAIRED = "not-paired"
    ALREADY_RUNNING = "already-running"
    START_FAILED = "start-failed"
    SWITCHOVER_REFUSED = "switchover-refused"
    REGISTRATION_TIMEOUT = "registration-timeout"
    TOO_SLOW = "too-slow"
    TOO_MANY_CONNECTIONS = "too-many-connections"
    HOST_UNREACHABLE = "host-unreachable"


def _wire(name: str) -> dict[str, str]:
    return {"wire": name}


@dataclass(frozen=True)
class Message:
    """Base of every message; ``MESSAGE`` is the wire name in ``"message"``."""

    MESSAGE: ClassVar[str] = ""


# -- Applications <-> LCA ------------------------------------------------------


@dataclass(frozen=True)
class RequestRegisterApplication(Message):
    """An application announces itself on the LCA endpoint."""

    MESSAGE: ClassVar[str] = "RequestRegisterApplication"
    ref: int
    application: str
    host: str | None = None
    pid: int | None = None


@dataclass(frozen=True)
class EventApplicationRegistered(Message):
    """The LCA accepted a registration; ``heartbeat`` is the expected period, if any."""

    MESSAGE: ClassVar[str] = "EventApplicationRegistered"
    ref: int
    heartbeat: float | None = None


@dataclass(frozen=True)
class RequestUpdateStatus(Message):
    """An application reports its status and mode; no reply unless it is invalid."""

    MESSAGE: ClassVar[str] = "RequestUpdateStatus"
    status: ApplicationStatus
    mode: ExecutionMode
    pid: int | None = None
    """Its process id, as the vendor SDK's ProcessId (optional)."""
    control_object_id: int | None = field(default=None, metadata={"wire": "control-object-id"})
    """Its configuration object id, as the vendor SDK's ControlObjectId (optional; kept
    in the journal detail, not otherwise used)."""


@dataclass(frozen=True)
class EventChangeExecutionMode(Message):
    """SCS (through the LCA) tells an application to change mode, or to exit."""

    MESSAGE: ClassVar[str] = "EventChangeExecutionMode"
    ref: int
    mode: ExecutionMode


@dataclass(frozen=True)
class ResponseExecutionModeChanged(Message):
    """An application acknowledges an ``EventChangeExecutionMode``; without ``ref`` it
    answers the latest one (vendor SDK samples send it so)."""

    MESSAGE: ClassVar[str] = "ResponseExecutionModeChanged"
    mode: ExecutionMode
    ref: int | None = None


@dataclass(frozen=True)
class EventSuspendApplication(Message):
    """The LCA asks an application to stop gracefully: it reports SUSPENDING, then
    exits, within its ``[sml] suspending-wait-timeout`` (vendor SDK name)."""

    MESSAGE: ClassVar[str] = "EventSuspendApplication"
    ref: int


@dataclass(frozen=True)
class RequestHeartbeat(Message):
    """An optional liveness signal from an application."""

    MESSAGE: ClassVar[str] = "RequestHeartbeat"


@dataclass(frozen=True)
class EventError(Message):
    """A request or a line could not be honoured; ``ref`` is set when answering one."""

    MESSAGE: ClassVar[str] = "EventError"
    code: ErrorCode
    text: str
    ref: int | None = None


# -- Management clients <-> SCS -----------------------------------------------


@dataclass(frozen=True)
class RequestGetApplicationInfo(Message):
    """Ask for one application's current record."""

    MESSAGE: ClassVar[str] = "RequestGetApplicationInfo"
    ref: int
    application: str


@dataclass(frozen=True)
class EventApplicationInfo(Message):
    """An application's record: a reply (with ``ref``) or a notification (without)."""

    MESSAGE: ClassVar[str] = "EventApplicationInfo"
    application: str
    status: ApplicationStatus
    mode: ExecutionMode
    time: float
    host: str | None = None
    pid: int | None = None
    ref: int | None = None


@dataclass(frozen=True)
class RequestSubscribe(Message):
    """Receive every later status or mode change as ``EventApplicationInfo``."""

    MESSAGE: ClassVar[str] = "RequestSubscribe"
    ref: int


@dataclass(frozen=True)
class RequestStartApplication(Message):
    """Start a configured application."""

    MESSAGE: ClassVar[str] = "RequestStartApplication"
    ref: int
    application: str


@dataclass(frozen=True)
class RequestStopApplication(Message):
    """Stop a configured application gracefully."""

    MESSAGE: ClassVar[str] = "RequestStopApplication"
    ref: int
    application: str
    graceful: bool | None = None
    """``true``: stop with ``EventSuspendApplication`` (SUSPENDING, or killed after the
    application's suspending-wait-timeout) instead of ``EXITING``."""


@dataclass(frozen=True)
class RequestEvent(Message):
    """Play one scenario event now on a running emulator (an extension): ``event`` is a
    mapping as in a scenario file's ``events``, without ``at``."""

    MESSAGE: ClassVar[str] = "RequestEvent"
    ref: int
    event: dict[str, Any]


@dataclass(frozen=True)
class RequestRestartApplication(Message):
    """Stop a configured application gracefully, then start it again (an extension)."""

    MESSAGE: ClassVar[str] = "RequestRestartApplication"
    ref: int
    application: str


@dataclass(frozen=True)
class RequestSwitchover(Message):
    """Ask SCS to make the backup of ``application``'s pair primary."""

    MESSAGE: ClassVar[str] = "RequestSwitchover"
    ref: int
    application: str


@dataclass(frozen=True)
class EventOk(Message):
    """A request succeeded."""

    MESSAGE: ClassVar[str] = "EventOk"
    ref: int


@dataclass(frozen=True)
class EventSwitchover(Message):
    """SCS moved the primary role of ``service`` from one member to the other."""

    MESSAGE: ClassVar[str] = "EventSwitchover"
    service: str
    from_: str = field(metadata=_wire("from"))
    to: str
    reason: str
    time: float


@dataclass(frozen=True)
class EventSwitchoverRefused(Message):
    """SCS would have switched over but the backup could not take the service."""

    MESSAGE: ClassVar[str] = "EventSwitchoverRefused"
    service: str
    from_: str = field(metadata=_wire("from"))
    to: str
    reason: str
    time: float


APPLICATION_TO_LCA: tuple[type[Message], ...] = (
    RequestRegisterApplication,
    RequestUpdateStatus,
    ResponseExecutionModeChanged,
    RequestHeartbeat,
)
LCA_TO_APPLICATION: tuple[type[Message], ...] = (
    EventApplicationRegistered,
    EventChangeExecutionMode,
    EventSuspendApplication,
    EventError,
)
CLIENT_TO_SCS: tuple[type[Message], ...] = (
    RequestEvent,
    RequestGetApplicationInfo,
    RequestSubscribe,
    RequestStartApplication,
    RequestStopApplication,
    RequestRestartApplication,
    RequestSwitchover,
)
SCS_TO_CLIENT: tuple[type[Message], ...] = (
    EventApplicationInfo,
    EventOk,
    EventError,
    EventSwitchover,
    EventSwitchoverRefused,
)
