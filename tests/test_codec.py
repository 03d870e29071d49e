"""Pure codec tests: messages to bytes and back, bad lines, the schema and the docs."""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import subprocess
import sys
import types
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wireschema import DOCS, assert_valid_wire

from lca_common.protocol import codec, json_schema, messages
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
    EventApplicationRegistered,
    EventError,
    ExecutionMode,
    Message,
    RequestGetApplicationInfo,
    RequestHeartbeat,
    RequestRegisterApplication,
    RequestSubscribe,
)

DIRECTIONS: dict[str, tuple[type[Message], ...]] = {
    "APPLICATION_TO_LCA": APPLICATION_TO_LCA,
    "LCA_TO_APPLICATION": LCA_TO_APPLICATION,
    "CLIENT_TO_SCS": CLIENT_TO_SCS,
    "SCS_TO_CLIENT": SCS_TO_CLIENT,
}
MESSAGE_CLASSES: tuple[type[Message], ...] = tuple(
    sorted(
        {cls for accepted in DIRECTIONS.values() for cls in accepted},
        key=lambda cls: cls.MESSAGE,
    )
)
ALL_DIRECTIONS = MESSAGE_CLASSES
"""Every message: names are unique across endpoints, so one decoder can take them all."""


def load_schema() -> dict[str, Any]:
    """The published schema, as a plain dict."""
    schema: dict[str, Any] = json_schema()
    return schema


# -- Strategies ----------------------------------------------------------------

# Surrogates are left out: the codec accepts them on decode but cannot encode
# them (see test_lone_surrogate_is_rejected below).
_text = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)
_positive = st.integers(min_value=1, max_value=2**31 - 1)
_seconds = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)


def _field_strategy(hint: Any) -> st.SearchStrategy[Any]:
    if isinstance(hint, types.UnionType):
        (member,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return st.none() | _field_strategy(member)
    if hint is int:
        return _positive
    if hint is float:
        return _seconds
    if hint is str:
        return _text
    if hint is bool:
        return st.booleans()
    if typing.get_origin(hint) is dict:
        return st.dictionaries(_text, st.integers() | _text | st.booleans(), max_size=3)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(list(hint))
    raise AssertionError(f"no strategy for {hint!r}")


def message_strategy(cls: type[Message]) -> st.SearchStrategy[Message]:
    """Valid instances of ``cls``, built from its type hints."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: _field_strategy(hints[f.name]) for f in dataclasses.fields(cls)}
    return st.builds(cls, **fields)


any_message = st.sampled_from(MESSAGE_CLASSES).flatmap(message_strategy)

_json_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=5,
)


# -- Round trip ----------------------------------------------------------------


def test_direction_tuples_cover_every_message_class() -> None:
    """Every Message subclass in messages.py is accepted in at least one direction."""
    defined = {
        obj
        for obj in vars(messages).values()
        if isinstance(obj, type) and issubclass(obj, Message) and obj is not Message
    }
    assert defined == set(MESSAGE_CLASSES)
    assert len({cls.MESSAGE for cls in MESSAGE_CLASSES}) == len(MESSAGE_CLASSES)


@given(any_message)
def test_round_trip(message: Message) -> None:
    """Encoding then decoding any valid message gives the same message back."""
    line = encode(message)
    assert b"\n" not in line
    assert decode(line, ALL_DIRECTIONS) == message
    for accepted in DIRECTIONS.values():
        if type(message) in accepted:
            assert decode(line, accepted) == message


@given(any_message)
def test_encoded_messages_match_the_schema(message: Message) -> None:
    """Every encoded message validates against docs/protocol.schema.json."""
    assert_valid_wire(json.loads(encode(message)))


@given(any_message)
def test_encode_omits_none_and_uses_wire_names(message: Message) -> None:
    """Optional fields left as None are absent on the wire; ``from_`` travels as ``from``."""
    obj = json.loads(encode(message))
    assert obj["message"] == message.MESSAGE
    assert None not in obj.values()
    assert "from_" not in obj
    if hasattr(message, "from_"):
        assert obj["from"] == message.from_


@given(any_message)
def test_message_is_unknown_on_every_other_direction(message: Message) -> None:
    """A message valid in one direction is ``unknown-message`` everywhere else, ref echoed."""
    ref = getattr(message, "ref", None)
    for accepted in DIRECTIONS.values():
        if type(message) in accepted:
            continue
        with pytest.raises(MessageError) as caught:
            decode(encode(message), accepted)
        assert caught.value.code is ErrorCode.UNKNOWN_MESSAGE
        assert caught.value.ref == ref


@given(data=st.data(), value=_json_value)
def test_codec_and_schema_agree_on_any_field_value(data: st.DataObject, value: Any) -> None:
    """Any JSON value put in any field either decodes (and re-encodes validly) or is a
    MessageError; apart from null and integral floats, the schema accepts the same."""
    message = data.draw(any_message)
    obj = json.loads(encode(message))
    key = data.draw(st.sampled_from(sorted({*obj, "ref"} - {"message"})))
    obj[key] = value
    line = json.dumps(obj).encode()
    decoded: Message | None = None
    error: MessageError | None = None
    try:
        decoded = decode(line, ALL_DIRECTIONS)
    except MessageError as caught:
        error = caught
    if decoded is not None:
        assert_valid_wire(json.loads(encode(decoded)))
    else:
        assert error is not None
        assert error.code is ErrorCode.INVALID_FIELD
        raw_ref = obj.get("ref")
        valid_ref = type(raw_ref) is int and raw_ref > 0
        assert error.ref == (raw_ref if valid_ref else None)
    if value is None or (isinstance(value, float) and value.is_integer()):
        return  # the codec reads null as absent, and JSON Schema reads 5.0 as an integer
    try:
        assert_valid_wire(obj)
    except AssertionError:
        schema_accepts = False
    else:
        schema_accepts = True
    assert schema_accepts == (decoded is not None), obj


# -- Lines that are not JSON objects: FramingError -----------------------------


def _padded(length: int) -> bytes:
    """A valid RequestHeartbeat line of exactly ``length`` bytes."""
    head = b'{"message":"RequestHeartbeat","padding":"'
    tail = b'"}'
    return head + b"x" * (length - len(head) - len(tail)) + tail


@pytest.mark.parametrize(
    ("line", "code"),
    [
        pytest.param(b'{"message":"RequestHeartbeat"', ErrorCode.INVALID_JSON, id="truncated"),
        pytest.param(b"RequestHeartbeat", ErrorCode.INVALID_JSON, id="not-json"),
        pytest.param(b"", ErrorCode.INVALID_JSON, id="empty"),
        pytest.param(b'{"message":"RequestHeartbeat\xff"}', ErrorCode.INVALID_JSON, id="not-utf8"),
        pytest.param(b"\xef\xbb\xbf{}", ErrorCode.INVALID_JSON, id="byte-order-mark"),
        pytest.param(b'["RequestHeartbeat"]', ErrorCode.INVALID_JSON, id="array"),
        pytest.param(b'"RequestHeartbeat"', ErrorCode.INVALID_JSON, id="string"),
        pytest.param(b"42", ErrorCode.INVALID_JSON, id="number"),
        pytest.param(b"null", ErrorCode.INVALID_JSON, id="null"),
        pytest.param(b'{"message":"EventOk","ref":NaN}', ErrorCode.INVALID_JSON, id="nan"),
        pytest.param(b'{"message":"EventOk","ref":-Infinity}', ErrorCode.INVALID_JSON, id="inf"),
        pytest.param(_padded(MAX_LINE_LENGTH + 1), ErrorCode.LINE_TOO_LONG, id="over-long"),
    ],
)
def test_framing_errors(line: bytes, code: ErrorCode) -> None:
    """A line that is not a JSON object (or is too long) is a FramingError, without ref."""
    with pytest.raises(FramingError) as caught:
        decode(line, ALL_DIRECTIONS)
    assert caught.value.code is code
    assert caught.value.ref is None
    assert caught.value.text


def test_line_of_exactly_the_limit_is_accepted() -> None:
    """A line of exactly MAX_LINE_LENGTH bytes is still a valid line."""
    assert MAX_LINE_LENGTH == 65536
    assert decode(_padded(MAX_LINE_LENGTH), APPLICATION_TO_LCA) == RequestHeartbeat()


def test_framing_error_is_a_protocol_error_but_not_a_message_error() -> None:
    """The two kinds of bad input are told apart by class."""
    assert issubclass(FramingError, ProtocolError)
    assert issubclass(MessageError, ProtocolError)
    assert not issubclass(FramingError, MessageError)


# -- Objects that are not valid messages: MessageError --------------------------


@pytest.mark.parametrize(
    ("obj", "accepted", "code", "ref"),
    [
        pytest.param(
            {"message": "RequestNothing", "ref": 5},
            CLIENT_TO_SCS,
            ErrorCode.UNKNOWN_MESSAGE,
            5,
            id="unknown-message",
        ),
        pytest.param(
            {"message": "requestsubscribe", "ref": 5},
            CLIENT_TO_SCS,
            ErrorCode.UNKNOWN_MESSAGE,
            5,
            id="message-name-is-case-sensitive",
        ),
        pytest.param({"ref": 5}, CLIENT_TO_SCS, ErrorCode.INVALID_FIELD, 5, id="no-message"),
        pytest.param(
            {"message": 7, "ref": 5}, CLIENT_TO_SCS, ErrorCode.INVALID_FIELD, 5, id="message-int"
        ),
        pytest.param(
            {"message": "RequestGetApplicationInfo", "ref": 5},
            CLIENT_TO_SCS,
            ErrorCode.INVALID_FIELD,
            5,
            id="missing-field",
        ),
        pytest.param(
            {"message": "RequestGetApplicationInfo", "ref": 5, "application": None},
            CLIENT_TO_SCS,
            ErrorCode.INVALID_FIELD,
            5,
            id="null-required-field",
        ),
        pytest.param(
            {"message": "RequestSubscribe"},
            CLIENT_TO_SCS,
            ErrorCode.INVALID_FIELD,
            None,
            id="missing-ref",
        ),
        pytest.param(
            {"message": "RequestSubscribe", "ref": "5"},
            CLIENT_TO_SCS,
            ErrorCode.INVALID_FIELD,
            None,
            id="string-ref",
        ),
        pytest.param(
            {"message": "RequestSubscribe", "ref": True},
            CLIENT_TO_SCS,
            ErrorCode.INVALID_FIELD,
            None,
            id="bool-ref",
        ),
        pytest.param(
            {"message": "RequestSubscribe", "ref": 0},
            CLIENT_TO_SCS,
            ErrorCode.INVALID_FIELD,
            None,
            id="zero-ref",
        ),
        pytest.param(
            {"message": "RequestSubscribe", "ref": -3},
            CLIENT_TO_SCS,
            ErrorCode.INVALID_FIELD,
            None,
            id="negative-ref",
        ),
        pytest.param(
            {"message": "RequestSubscribe", "ref": 5.0},
            CLIENT_TO_SCS,
            ErrorCode.INVALID_FIELD,
            None,
            id="float-ref",
        ),
        pytest.param(
            {"message": "RequestRegisterApplication", "ref": 5, "application": "A", "pid": 12.5},
            APPLICATION_TO_LCA,
            ErrorCode.INVALID_FIELD,
            5,
            id="float-pid",
        ),
        pytest.param(
            {"message": "RequestRegisterApplication", "ref": 5, "application": "A", "pid": 12.0},
            APPLICATION_TO_LCA,
            ErrorCode.INVALID_FIELD,
            5,
            id="integral-float-pid",
        ),
        pytest.param(
            {"message": "RequestRegisterApplication", "ref": 5, "application": "A", "pid": 0},
            APPLICATION_TO_LCA,
            ErrorCode.INVALID_FIELD,
            5,
            id="zero-pid",
        ),
        pytest.param(
            {"message": "RequestRegisterApplication", "ref": 5, "application": ""},
            APPLICATION_TO_LCA,
            ErrorCode.INVALID_FIELD,
            5,
            id="empty-application",
        ),
        pytest.param(
            {"message": "RequestRegisterApplication", "ref": 5, "application": ["A"]},
            APPLICATION_TO_LCA,
            ErrorCode.INVALID_FIELD,
            5,
            id="list-application",
        ),
        pytest.param(
            {"message": "RequestUpdateStatus", "status": "READY", "mode": "BACKUP"},
            APPLICATION_TO_LCA,
            ErrorCode.INVALID_FIELD,
            None,
            id="bad-status",
        ),
        pytest.param(
            {"message": "RequestUpdateStatus", "status": "running", "mode": "BACKUP"},
            APPLICATION_TO_LCA,
            ErrorCode.INVALID_FIELD,
            None,
            id="lower-case-status",
        ),
        pytest.param(
            {"message": "RequestUpdateStatus", "status": "RUNNING", "mode": "SLAVE", "ref": 4},
            APPLICATION_TO_LCA,
            ErrorCode.INVALID_FIELD,
            4,
            id="bad-mode-ref-echoed",
        ),
        pytest.param(
            {"message": "EventApplicationRegistered", "ref": 5, "heartbeat": "10"},
            LCA_TO_APPLICATION,
            ErrorCode.INVALID_FIELD,
            5,
            id="string-heartbeat",
        ),
        pytest.param(
            {"message": "EventApplicationRegistered", "ref": 5, "heartbeat": -1},
            LCA_TO_APPLICATION,
            ErrorCode.INVALID_FIELD,
            5,
            id="negative-heartbeat",
        ),
        pytest.param(
            {"message": "EventError", "code": "oops", "text": "t"},
            SCS_TO_CLIENT,
            ErrorCode.INVALID_FIELD,
            None,
            id="bad-error-code",
        ),
        pytest.param(
            {
                "message": "EventApplicationInfo",
                "application": "SIPS_A",
                "status": "RUNNING",
                "mode": "PRIMARY",
                "time": -0.5,
            },
            SCS_TO_CLIENT,
            ErrorCode.INVALID_FIELD,
            None,
            id="negative-time",
        ),
        pytest.param(
            {"message": "EventSwitchover", "service": "S", "to": "B", "reason": "r", "time": 1},
            SCS_TO_CLIENT,
            ErrorCode.INVALID_FIELD,
            None,
            id="missing-from",
        ),
        pytest.param(
            {"message": "RequestSubscribe", "ref": 5},
            APPLICATION_TO_LCA,
            ErrorCode.UNKNOWN_MESSAGE,
            5,
            id="scs-message-on-lca",
        ),
        pytest.param(
            {"message": "RequestHeartbeat"},
            CLIENT_TO_SCS,
            ErrorCode.UNKNOWN_MESSAGE,
            None,
            id="lca-message-on-scs",
        ),
        pytest.param(
            {"message": "EventOk", "ref": 5},
            CLIENT_TO_SCS,
            ErrorCode.UNKNOWN_MESSAGE,
            5,
            id="wrong-direction",
        ),
    ],
)
def test_message_errors(
    obj: dict[str, object],
    accepted: tuple[type[Message], ...],
    code: ErrorCode,
    ref: int | None,
) -> None:
    """A JSON object that is not a valid message is a MessageError, with the ref when valid."""
    with pytest.raises(MessageError) as caught:
        decode(json.dumps(obj).encode(), accepted)
    assert caught.value.code is code
    assert caught.value.ref == ref
    assert caught.value.text


def test_unknown_extra_fields_are_ignored() -> None:
    """Members the message does not define are ignored (forward compatibility)."""
    line = b'{"message":"RequestSubscribe","ref":3,"verbose":true,"filter":{"a":[1]}}'
    assert decode(line, CLIENT_TO_SCS) == RequestSubscribe(ref=3)


def test_null_optional_field_counts_as_absent() -> None:
    """An optional member sent as null is read as absent."""
    line = b'{"message":"RequestRegisterApplication","ref":1,"application":"SIPS_B","pid":null}'
    assert decode(line, APPLICATION_TO_LCA) == RequestRegisterApplication(
        ref=1, application="SIPS_B"
    )


def test_member_order_and_whitespace_do_not_matter() -> None:
    """Members may come in any order, with JSON whitespace around them."""
    line = b' { "application" : "SIPS_A" ,\t"ref" : 2, "message" : "RequestGetApplicationInfo" } '
    assert decode(line, CLIENT_TO_SCS) == RequestGetApplicationInfo(ref=2, application="SIPS_A")


def test_integer_seconds_decode_as_float() -> None:
    """``time`` and ``heartbeat`` accept integers and decode them to floats."""
    message = decode(
        b'{"message":"EventApplicationRegistered","ref":1,"heartbeat":10}', ALL_DIRECTIONS
    )
    assert message == EventApplicationRegistered(ref=1, heartbeat=10.0)
    assert isinstance(message, EventApplicationRegistered)
    assert isinstance(message.heartbeat, float)


def test_encode_is_compact_utf8() -> None:
    """encode writes compact JSON, UTF-8 without escaping, and no newline."""
    line = encode(EventError(code=ErrorCode.UNKNOWN_APPLICATION, text="no SIPS_É", ref=2))
    assert (
        line
        == (
            '{"message":"EventError","code":"unknown-application","text":"no SIPS_É","ref":2}'
        ).encode()
    )


def _json_dumps_reference(message: Message) -> bytes:
    """``message`` as ``json.dumps`` writes it: what encode must write, byte for byte."""
    obj: dict[str, Any] = {"message": message.MESSAGE}
    for f in dataclasses.fields(message):
        value = getattr(message, f.name)
        if value is not None:
            obj[f.metadata.get("wire", f.name)] = value
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


_odd_value = (
    st.floats()  # inf, -inf and nan too
    | st.integers()
    | st.booleans()
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=5)
    | st.sampled_from([*ApplicationStatus, *ExecutionMode, *ErrorCode])
    | st.dictionaries(st.text(max_size=3), st.integers() | st.floats(), max_size=2)
)


@given(any_message)
def test_encode_writes_what_json_dumps_writes(message: Message) -> None:
    """encode writes its lines piece by piece, and each is what json.dumps writes."""
    assert encode(message) == _json_dumps_reference(message)


@given(st.sampled_from(MESSAGE_CLASSES), st.data())
def test_encode_writes_what_json_dumps_writes_for_any_value(
    cls: type[Message], data: st.DataObject
) -> None:
    """Even a value of another type than its field's (an int for seconds, an infinite
    float, a str for an enum) is written as json.dumps writes it."""
    fields = {f.name: data.draw(st.none() | _odd_value) for f in dataclasses.fields(cls)}
    message = cls(**fields)
    assert encode(message) == _json_dumps_reference(message)


@given(any_message)
def test_decode_builds_what_the_constructor_builds(message: Message) -> None:
    """decode fills a message's fields without its frozen ``__init__`` (which sets each
    through ``object.__setattr__``): the result is what the constructor makes, field for
    field, and still frozen."""
    line = encode(message)
    cls = type(message)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("__init__ called")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cls, "__init__", forbidden)
        built = decode(line, ALL_DIRECTIONS)
    assert type(built) is cls
    assert built == message
    assert vars(built) == vars(message)
    assert list(vars(built)) == list(vars(message))
    assert repr(built) == repr(message)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.ref = 1  # type: ignore[attr-defined]


def test_decode_calls_init_of_a_class_that_needs_it() -> None:
    """A message class with a ``__post_init__`` (or slots) is built by its constructor."""

    @dataclasses.dataclass(frozen=True)
    class Checked(Message):
        MESSAGE = "Checked"
        ref: int

        def __post_init__(self) -> None:
            if self.ref > 5:
                raise ValueError("too big")

    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted(Message):
        MESSAGE = "Slotted"
        ref: int

    assert decode(b'{"message":"Checked","ref":3}', (Checked,)) == Checked(ref=3)
    with pytest.raises(ValueError, match="too big"):
        decode(b'{"message":"Checked","ref":6}', (Checked,))
    assert decode(b'{"message":"Slotted","ref":3}', (Slotted,)) == Slotted(ref=3)


# -- The per-line path rebuilds nothing ------------------------------------------


@given(any_message)
def test_decode_and_encode_rebuild_nothing_per_line(message: Message) -> None:
    """Once warm, encode and decode build no JSON coder, read no type hints, no name table."""
    line = encode(message)
    decode(line, ALL_DIRECTIONS)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("rebuilt on the per-line path")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(json.JSONDecoder, "__init__", forbidden)
        patch.setattr(json.JSONEncoder, "__init__", forbidden)
        patch.setattr(typing, "get_type_hints", forbidden)
        patch.setattr(codec, "_NameTable", forbidden)
        assert encode(message) == line
        assert decode(line, ALL_DIRECTIONS) == message


def test_accepted_may_be_any_iterable() -> None:
    """decode takes a list or a generator of classes as well as a tuple."""
    line = b'{"message":"RequestSubscribe","ref":3}'
    assert decode(line, list(CLIENT_TO_SCS)) == RequestSubscribe(ref=3)
    assert decode(line, (cls for cls in CLIENT_TO_SCS)) == RequestSubscribe(ref=3)
    with pytest.raises(MessageError, match="expected one of: RequestHeartbeat, "):
        decode(line, iter(APPLICATION_TO_LCA))


# -- Hardening: values that once crashed or overflowed the codec ---------------


def test_huge_integer_seconds_are_a_message_error() -> None:
    """An integer too large for a float in ``heartbeat`` is invalid-field, not a crash."""
    line = b'{"message":"EventApplicationRegistered","ref":1,"heartbeat":1' + b"0" * 400 + b"}"
    with pytest.raises(MessageError) as caught:
        decode(line, LCA_TO_APPLICATION)
    assert caught.value.code is ErrorCode.INVALID_FIELD


def test_lone_surrogate_is_rejected() -> None:
    """A string with a lone surrogate (valid JSON, not encodable as UTF-8) is invalid-field."""
    line = b'{"message":"RequestRegisterApplication","ref":1,"application":"SIPS_\\ud800"}'
    with pytest.raises(MessageError) as caught:
        decode(line, APPLICATION_TO_LCA)
    assert caught.value.code is ErrorCode.INVALID_FIELD


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param({"message": "RequestSubscribe", "ref": '"' * 30000}, id="escaped-value"),
        pytest.param({"message": "'\"" * 16000, "ref": 1}, id="quoted-name"),
    ],
)
def test_error_reply_fits_in_one_line(obj: dict[str, object]) -> None:
    """The EventError answering a line within the limit is itself within the limit."""
    line = json.dumps(obj, ensure_ascii=False).encode()
    assert len(line) <= MAX_LINE_LENGTH
    with pytest.raises(MessageError) as caught:
        decode(line, CLIENT_TO_SCS)
    error = caught.value
    reply = encode(EventError(code=error.code, text=error.text, ref=error.ref))
    assert len(reply) <= MAX_LINE_LENGTH


# -- Unknown members hold any valid JSON: any depth, any integer -----------------

DEEP = 5000
"""Far deeper than the C scanner recurses (the interpreter's recursion limit)."""
HUGE = "9" * 5000
"""More digits than Python converts to int (sys.get_int_max_str_digits(): 4300)."""


def _with(line: bytes, member: str) -> bytes:
    """``line`` (a JSON object) with ``member`` (``"name":value``) added last."""
    return line[:-1] + b"," + member.encode() + b"}"


_DEEP_VALUES = {
    "deep-array": "[" * DEEP + "]" * DEEP,
    "deep-object": '{"a":' * DEEP + "1" + "}" * DEEP,
    "deep-mixed": '[{"a":' * (DEEP // 2) + "[]" + "}]" * (DEEP // 2),
    "deep-spaced": "[ " * DEEP + '"x" , 1e5, null' + " ]" * DEEP,
    "huge-int": HUGE,
    "huge-negative-int": "-" + HUGE,
    "nested-huge-int": f'[{{"n":{HUGE}}}]',
}


@pytest.mark.parametrize("value", _DEEP_VALUES.values(), ids=_DEEP_VALUES.keys())
def test_unknown_member_of_any_depth_or_size_is_ignored(value: str) -> None:
    """Valid JSON nested thousands deep or an integer over 4,300 digits, in an unknown
    member, is ignored like any other unknown member."""
    line = _with(b'{"message":"RequestSubscribe","ref":3}', f'"extension":{value}')
    assert len(line) <= MAX_LINE_LENGTH
    assert decode(line, CLIENT_TO_SCS) == RequestSubscribe(ref=3)


@settings(deadline=None)
@given(any_message, st.sampled_from(sorted(_DEEP_VALUES)))
def test_any_message_survives_a_deep_or_huge_unknown_member(message: Message, kind: str) -> None:
    """Every message decodes the same with a deep or huge unknown member before or after."""
    value = _DEEP_VALUES[kind]
    line = encode(message)
    before = b'{"x":' + value.encode() + b"," + line[1:]
    for extended in (_with(line, f'"x":{value}'), before):
        assert decode(extended, ALL_DIRECTIONS) == message


@pytest.mark.parametrize(
    ("member", "ref", "text"),
    [
        pytest.param(
            '"ref":' + HUGE,
            None,
            "RequestGetApplicationInfo: field 'ref' must be an integer of at most 4300 digits,"
            " got 999",
            id="huge-ref",
        ),
        pytest.param(
            '"application":' + "[" * DEEP + "]" * DEEP,
            4,
            "RequestGetApplicationInfo: field 'application' must be a non-empty string, got [[[",
            id="deep-application",
        ),
        pytest.param(
            '"application":[' + HUGE + "]",
            4,
            "RequestGetApplicationInfo: field 'application' must be a non-empty string, got [\"999",
            id="huge-int-in-a-list",
        ),
        pytest.param(
            '"ref":' + '{"a":' * DEEP + "1" + "}" * DEEP,
            None,
            "RequestGetApplicationInfo: field 'ref' must be an integer, got {\"a\":{",
            id="deep-ref",
        ),
        pytest.param(
            '"message":' + "[" * DEEP + "]" * DEEP,
            4,
            'field "message" is missing or not a string',
            id="deep-message",
        ),
    ],
)
def test_deep_or_huge_known_member_is_a_message_error(
    member: str, ref: int | None, text: str
) -> None:
    """A deep or huge value in a member the message defines is invalid-field, with the
    request's ref when that is valid, and a short error text."""
    line = _with(b'{"message":"RequestGetApplicationInfo","ref":4,"application":"A"}', member)
    with pytest.raises(MessageError) as caught:
        decode(line, CLIENT_TO_SCS)
    assert caught.value.code is ErrorCode.INVALID_FIELD
    assert caught.value.ref == ref
    assert caught.value.text.startswith(text)
    assert len(caught.value.text) < 400


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(HUGE, "a finite number", id="huge-int"),
        pytest.param("1" + "0" * 400, "a finite number", id="overflows-a-float"),
        pytest.param("1e999", "a non-negative number", id="infinite-float"),
    ],
)
def test_huge_seconds_are_a_message_error(value: str, expected: str) -> None:
    """An integer too large for a float in ``heartbeat``, however long, is invalid-field."""
    line = b'{"message":"EventApplicationRegistered","ref":1,"heartbeat":' + value.encode() + b"}"
    with pytest.raises(MessageError) as caught:
        decode(line, LCA_TO_APPLICATION)
    assert caught.value.code is ErrorCode.INVALID_FIELD
    assert caught.value.ref == 1
    assert f"must be {expected}" in caught.value.text


@pytest.mark.parametrize(
    ("line", "text"),
    [
        pytest.param(b"[" * 30000, "unexpected end of line", id="unterminated"),
        pytest.param(
            b'{"message":"RequestSubscribe","ref":1,"x":' + b"[" * DEEP + b"]" * (DEEP - 1) + b"}",
            "expecting ',' or a closing bracket",
            id="mismatched",
        ),
        pytest.param(
            b'{"x":' + b"[" * DEEP + b"]" * DEEP + b'},{"message":"RequestSubscribe","ref":1}',
            "extra data",
            id="extra-data",
        ),
        pytest.param(
            b'{"x":' + b"[" * DEEP + b"NaN" + b"]" * DEEP + b"}", "NaN is not allowed", id="nan"
        ),
        pytest.param(
            b'{"x":' + b"[" * DEEP + b'"\\x"' + b"]" * DEEP + b"}", r"Invalid \\escape", id="escape"
        ),
        pytest.param(b'{"x":' + b"[" * DEEP + b"01" + b"]" * DEEP + b"}", "expecting", id="01"),
        pytest.param(b'{"x":' + b"[" * DEEP + b"[,]" + b"]" * DEEP + b"}", "value", id="comma"),
        pytest.param(b'{"x":' + b"[" * DEEP + b"{1:2}" + b"]" * DEEP + b"}", "property", id="key"),
        pytest.param(b'{"x":' + b"[" * DEEP + b'{"a"}' + b"]" * DEEP + b"}", "':'", id="colon"),
        pytest.param(b'{"x":' + b"[" * DEEP + b"tru" + b"]" * DEEP + b"}", "value", id="word"),
    ],
)
def test_deep_invalid_json_is_a_framing_error(line: bytes, text: str) -> None:
    """A deep line that is not valid JSON is still invalid-json, naming the problem."""
    with pytest.raises(FramingError) as caught:
        decode(line, CLIENT_TO_SCS)
    assert caught.value.code is ErrorCode.INVALID_JSON
    assert caught.value.text.startswith("line is not valid JSON: ")
    assert re.search(text, caught.value.text), caught.value.text


def test_deep_array_is_json_but_not_an_object() -> None:
    """A valid array nested thousands deep is answered as JSON but not an object."""
    with pytest.raises(FramingError, match="line is JSON but not an object: list"):
        decode(b"[" * DEEP + b"]" * DEEP, CLIENT_TO_SCS)


# -- Fuzzing the codec -------------------------------------------------------------

_FUZZ = settings(max_examples=300, deadline=None)
_PIECES = {
    **{p: p.encode() for p in ("{", "}", "[", "]", ":", ",", '"', "\\", " ", "0", "-", "1e9")},
    **{p: p.encode() for p in ("true", "null", "NaN", '"message"', '"ref"', '"RequestSubscribe"')},
    "\\xff": b"\xff",
    "9*5000": b"9" * 5000,
    "[*3000": b"[" * 3000,
    "]*3000": b"]" * 3000,
    '{"a":*1500': b'{"a":' * 1500,
    "}*1500": b"}" * 1500,
}
"""Pieces of near-JSON lines, by a short name (so that Hypothesis shows names, not bytes)."""


@_FUZZ
@given(st.binary(max_size=200) | st.lists(st.sampled_from(sorted(_PIECES)), max_size=30))
def test_decode_raises_only_protocol_errors(raw: bytes | list[str]) -> None:
    """Whatever bytes arrive, decode returns a message or raises FramingError/MessageError."""
    line = raw if isinstance(raw, bytes) else b"".join(_PIECES[name] for name in raw)
    error: ProtocolError | None = None
    try:
        message = decode(line, ALL_DIRECTIONS)
    except (FramingError, MessageError) as caught:
        error = caught
    if error is None:
        assert decode(encode(message), ALL_DIRECTIONS) == message
        return
    assert error.text
    reply = encode(EventError(code=error.code, text=error.text, ref=error.ref))
    assert len(reply) <= MAX_LINE_LENGTH


_extra_value = (
    _json_value.map(json.dumps)
    | st.tuples(st.just("deep"), st.integers(min_value=1, max_value=DEEP))
    | st.tuples(st.just("digits"), st.integers(min_value=4301, max_value=6000))
)
"""JSON text, or ``(kind, size)`` of a deep array or a long integer (built by the test)."""


def _extra_text(value: str | tuple[str, int]) -> str:
    if isinstance(value, str):
        return value
    kind, size = value
    return "[" * size + "]" * size if kind == "deep" else "7" * size


WIRE_NAMES = {"message"} | {
    f.metadata.get("wire", f.name) for cls in MESSAGE_CLASSES for f in dataclasses.fields(cls)
}
"""Every member name some message defines."""


@_FUZZ
@given(any_message, st.dictionaries(st.text(max_size=8), _extra_value, max_size=3))
def test_round_trip_with_unknown_members(
    message: Message, extra: dict[str, str | tuple[str, int]]
) -> None:
    """Any message with any unknown members added (deep, huge or plain) decodes unchanged."""
    line = encode(message)
    for key, value in extra.items():
        if key not in WIRE_NAMES:
            line = _with(line, f"{json.dumps(key)}:{_extra_text(value)}")
    assert decode(line, ALL_DIRECTIONS) == message


def _mutations(text: str) -> st.SearchStrategy[str]:
    """``text`` with up to three characters inserted, replaced or deleted."""
    alphabet = st.sampled_from(list('[]{}:,"\\ 0123456789-+.eEtrufalsnNI\t\n\x01'))

    def mutate(edits: list[tuple[int, str, str]]) -> str:
        result = text
        for where, how, char in edits:
            index = where % (len(result) + 1)
            if how == "insert":
                result = result[:index] + char + result[index:]
            elif how == "replace":
                result = result[:index] + char + result[index + 1 :]
            else:
                result = result[:index] + result[index + 1 :]
        return result

    edit = st.tuples(
        st.integers(0, 10_000), st.sampled_from(["insert", "replace", "delete"]), alphabet
    )
    return st.lists(edit, max_size=3).map(mutate)


_nested_json_text = (
    st.recursive(
        _json_value,
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
        max_leaves=8,
    )
    .map(json.dumps)
    .flatmap(_mutations)
)


def _depth(value: object) -> int:
    """How deeply ``value`` nests: 0 for a scalar, 1 for a flat list or object."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@_FUZZ
@given(_nested_json_text)
def test_linear_scanner_agrees_with_json(text: str) -> None:
    """The scanner used for lines too deep for the C parser accepts exactly what json
    accepts, and finds each top-level member's text where json finds its value."""
    try:
        expected = json.loads(text, parse_constant=codec._reject_constant)
    except ValueError:
        expected = ValueError
    try:
        members = codec._scan_structure(text)
    except codec._NotJsonError:
        assert expected is ValueError, text
        return
    assert expected is not ValueError, text
    if isinstance(expected, dict):
        assert members is not None
        found = {key: json.loads(text[start:end]) for key, start, end, _ in members}
        assert found == expected
        depths = {key: depth for key, _, _, depth in members}
        assert depths == {key: _depth(value) for key, value in expected.items()}
    else:
        assert members is None


# -- The schema ----------------------------------------------------------------


def test_schema_has_one_definition_per_message() -> None:
    """The schema's top-level oneOf selects exactly the messages of messages.py, by name."""
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    names = [cls.MESSAGE for cls in MESSAGE_CLASSES]
    refs = sorted(choice["$ref"] for choice in schema["oneOf"])
    assert refs == sorted(f"#/$defs/{name}" for name in names)
    for name in names:
        definition = schema["$defs"][name]
        assert definition["properties"]["message"] == {"const": name}
        assert "additionalProperties" not in definition


@pytest.mark.parametrize(
    ("definition", "enum_class"),
    [
        ("ApplicationStatus", ApplicationStatus),
        ("ExecutionMode", ExecutionMode),
        ("ErrorCode", ErrorCode),
    ],
)
def test_schema_enums_match_messages(definition: str, enum_class: type[enum.Enum]) -> None:
    """The schema's enumerations are exactly the values in messages.py, in order."""
    assert load_schema()["$defs"][definition]["enum"] == [m.value for m in enum_class]


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda cls: cls.MESSAGE)
def test_schema_fields_match_dataclass(cls: type[Message]) -> None:
    """Each definition lists the dataclass's wire fields and requires the non-optional ones."""
    definition = load_schema()["$defs"][cls.MESSAGE]
    hints = typing.get_type_hints(cls)
    wire = {f.metadata.get("wire", f.name): hints[f.name] for f in dataclasses.fields(cls)}
    assert set(definition["properties"]) == {"message", *wire}
    required = {
        name
        for name, hint in wire.items()
        if not (isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint))
    }
    assert set(definition["required"]) == {"message", *required}


def test_schema_rejects_a_bad_message_with_its_reason() -> None:
    """assert_valid_wire names the offending member in its AssertionError."""
    with pytest.raises(AssertionError, match="ref"):
        assert_valid_wire({"message": "EventOk", "ref": 0})
    with pytest.raises(AssertionError):
        assert_valid_wire({"message": "EventNothing"})


# -- The examples in docs/protocol.md ------------------------------------------

DOCS_PATH = DOCS / "protocol.md"
_FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_ENDPOINTS: dict[str, tuple[tuple[type[Message], ...], tuple[type[Message], ...]]] = {
    # endpoint: (what the peer sends, what the server sends)
    "lca": (APPLICATION_TO_LCA, LCA_TO_APPLICATION),
    "scs": (CLIENT_TO_SCS, SCS_TO_CLIENT),
}


@dataclasses.dataclass(frozen=True)
class ExampleLine:
    """One ``>`` or ``<`` line of an example block in the docs."""

    endpoint: str
    from_server: bool
    raw: bytes
    lineno: int
    reply: ExampleLine | None

    def __str__(self) -> str:
        return f"protocol.md:{self.lineno}"


def _example_lines() -> Iterator[ExampleLine]:
    text = DOCS_PATH.read_text(encoding="utf-8")
    for fence in _FENCE.finditer(text):
        info = fence["info"].split()
        if not info or info[0] != "jsonl":
            continue
        assert len(info) == 2, f"a jsonl block needs its endpoint (lca or scs): {info}"
        assert info[1] in _ENDPOINTS, f"unknown endpoint {info[1]!r}"
        first = text.count("\n", 0, fence.start("body")) + 1
        parsed: list[tuple[bool, bytes, int]] = []
        for offset, line in enumerate(fence["body"].splitlines()):
            marker, space, payload = line.partition(" ")
            assert marker in (">", "<"), f"line {first + offset}: starts with neither > nor <"
            assert space, f"line {first + offset}: no space after {marker}"
            parsed.append((marker == "<", payload.encode(), first + offset))
        following: ExampleLine | None = None
        lines: list[ExampleLine] = []
        for from_server, raw, lineno in reversed(parsed):
            following = ExampleLine(info[1], from_server, raw, lineno, following)
            lines.append(following)
        yield from reversed(lines)


EXAMPLES = list(_example_lines())


def test_docs_have_examples_of_every_message() -> None:
    """docs/protocol.md shows every message at least once, in its own direction."""
    shown = set()
    for example in EXAMPLES:
        peer, server = _ENDPOINTS[example.endpoint]
        accepted = server if example.from_server else peer
        try:
            shown.add(type(decode(example.raw, accepted)))
        except ProtocolError:
            continue
    assert shown == set(MESSAGE_CLASSES)


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.from_server], ids=str)
def test_docs_server_lines_are_what_the_codec_writes(example: ExampleLine) -> None:
    """Each ``<`` example decodes, matches the schema and is byte for byte what encode writes."""
    message = decode(example.raw, _ENDPOINTS[example.endpoint][1])
    assert_valid_wire(json.loads(example.raw))
    assert encode(message) == example.raw


@pytest.mark.parametrize("example", [e for e in EXAMPLES if not e.from_server], ids=str)
def test_docs_peer_lines_decode_or_show_their_error(example: ExampleLine) -> None:
    """Each ``>`` example decodes and matches the schema, or is answered by its exact error."""
    error: ProtocolError | None = None
    try:
        decode(example.raw, _ENDPOINTS[example.endpoint][0])
    except ProtocolError as caught:
        error = caught
    if error is None:
        assert_valid_wire(json.loads(example.raw))
        return
    reply = example.reply
    assert reply is not None, "a bad line must be followed by its EventError"
    assert reply.from_server
    answer = decode(reply.raw, ALL_DIRECTIONS)
    assert answer == EventError(code=error.code, text=error.text, ref=error.ref)
    if error.code is ErrorCode.INVALID_FIELD:
        with pytest.raises(AssertionError):
            assert_valid_wire(json.loads(example.raw))


def test_prepare_builds_what_a_line_needs_ahead() -> None:
    """After prepare(), encoding and decoding lines of those directions builds nothing
    (a fork server prepares once; its children never pay for it): in a fresh
    interpreter, with the type-hint machinery the tables are built from taken away."""
    program = "; ".join(
        [
            "import typing",
            "from lca_common.protocol import codec, messages as m",
            "codec.prepare(m.APPLICATION_TO_LCA, m.LCA_TO_APPLICATION)",
            "typing.get_type_hints = None",
            "codec.encode(m.RequestUpdateStatus(status=m.ApplicationStatus.RUNNING, "
            "mode=m.ExecutionMode.BACKUP))",
            'codec.decode(b\'{"message":"EventApplicationRegistered","ref":1}\', '
            "m.LCA_TO_APPLICATION)",
        ]
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
