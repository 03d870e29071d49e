"""The Management Layer wire protocol: messages, codec and framing (``docs/protocol.md``).

Its JSON Schema ships beside it: :func:`json_schema`.
"""

import json
from functools import cache
from typing import Any

from lca_common.protocol.codec import (
    MAX_LINE_LENGTH,
    FramingError,
    MessageError,
    ProtocolError,
    decode,
    encode,
)
from lca_common.protocol.messages import (
    APPLICATION_TO_LCA,
    CLIENT_TO_SCS,
    LCA_TO_APPLICATION,
    SCS_TO_CLIENT,
    ApplicationStatus,
    ErrorCode,
    EventApplicationInfo,
    EventApplicationRegistered,
    EventChangeExecutionMode,
    EventError,
    EventOk,
    EventSuspendApplication,
    EventSwitchover,
    EventSwitchoverRefused,
    ExecutionMode,
    Message,
    RequestEvent,
    RequestGetApplicationInfo,
    RequestHeartbeat,
    RequestRegisterApplication,
    RequestRestartApplication,
    RequestStartApplication,
    RequestStopApplication,
    RequestSubscribe,
    RequestSwitchover,
    RequestUpdateStatus,
    ResponseExecutionModeChanged,
)

__all__ = [
    "APPLICATION_TO_LCA",
    "CLIENT_TO_SCS",
    "LCA_TO_APPLICATION",
    "MAX_LINE_LENGTH",
    "SCS_TO_CLIENT",
    "ApplicationStatus",
    "ErrorCode",
    "EventApplicationInfo",
    "EventApplicationRegistered",
    "EventChangeExecutionMode",
    "EventError",
    "EventOk",
    "EventSuspendApplication",
    "EventSwitchover",
    "EventSwitchoverRefused",
    "ExecutionMode",
    "FramingError",
    "Message",
    "MessageError",
    "ProtocolError",
    "RequestEvent",
    "RequestGetApplicationInfo",
    "RequestHeartbeat",
    "RequestRegisterApplication",
    "RequestRestartApplication",
    "RequestStartApplication",
    "RequestStopApplication",
    "RequestSubscribe",
    "RequestSwitchover",
    "RequestUpdateStatus",
    "ResponseExecutionModeChanged",
    "decode",
    "encode",
    "json_schema",
]


@cache
def json_schema() -> dict[str, Any]:
    """The protocol's JSON Schema (2020-12), as shipped in this package."""
    from importlib import resources  # not needed to speak the protocol: loaded on demand

    text = resources.files(__name__).joinpath("protocol.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
