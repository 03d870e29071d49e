"""Encode and decode wire messages: JSON objects, one per line.  No Twisted here.

``decode`` raises :class:`FramingError` when a line is not a JSON object at all
(the connection is closed) and :class:`MessageError` when it is an object but not a
valid message for the endpoint (the connection stays open).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

from lca_common.protocol.messages import ErrorCode, Message

MAX_LINE_LENGTH = 65536
"""The longest line, in bytes and without its ``\\n``, that either side accepts."""


class ProtocolError(Exception):
    """A line that is not a valid message; ``code`` and ``text`` go into ``EventError``."""

    def __init__(self, code: ErrorCode, text: str, ref: int | None = None) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.ref = ref


class FramingError(ProtocolError):
    """The line is not JSON, not UTF-8, not an object, or too long: the peer is lost."""


class MessageError(ProtocolError):
    """The line is a JSON object but not a valid message here: answer and carry on."""


@dataclasses.dataclass(frozen=True)
class _FieldSpec:
    attribute: str
    wire: str
    kind: type
    optional: bool


_FIELDS: dict[type[Message], tuple[_FieldSpec, ...]] = {}


def _fields(cls: type[Message]) -> tuple[_FieldSpec, ...]:
    cached = _FIELDS.get(cls)
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        optional = False
        if isinstance(hint, types.UnionType):
            members = [a for a in typing.get_args(hint) if a is not type(None)]
            optional = len(members) < len(typing.get_args(hint))
            hint = members[0]
        specs.append(_FieldSpec(f.name, f.metadata.get("wire", f.name), hint, optional))
    _FIELDS[cls] = tuple(specs)
    return _FIELDS[cls]


def encode(message: Message) -> bytes:
    """Serialize ``message`` to one JSON line, without the trailing newline.

    Optional fields that are ``None`` are left out.
    """
    obj: dict[str, Any] = {"message": message.MESSAGE}
    for spec in _fields(type(message)):
        value = getattr(message, spec.attribute)
        if value is None:
            continue
        obj[spec.wire] = value.value if isinstance(value, enum.Enum) else value
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse_object(line: bytes) -> dict[str, Any]:
    """Parse one line into a JSON object, or raise :class:`FramingError`."""
    if len(line) > MAX_LINE_LENGTH:
        raise FramingError(
            ErrorCode.LINE_TOO_LONG,
            f"line of {len(line)} bytes is longer than the limit of {MAX_LINE_LENGTH} bytes",
        )
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FramingError(ErrorCode.INVALID_JSON, f"line is not UTF-8: {e}") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except ValueError as e:
        raise FramingError(ErrorCode.INVALID_JSON, f"line is not valid JSON: {e}") from None
    except RecursionError:
        raise FramingError(ErrorCode.INVALID_JSON, "line is JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise FramingError(
            ErrorCode.INVALID_JSON, f"line is JSON but not an object: {type(obj).__name__}"
        )
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def decode(line: bytes, accepted: Iterable[type[Message]]) -> Message:
    """Decode one line into one of the ``accepted`` message classes.

    :raises FramingError: the line is not a JSON object (or is too long).
    :raises MessageError: the object is not a valid accepted message.
    """
    return decode_object(parse_object(line), accepted)


def decode_object(obj: Mapping[str, Any], accepted: Iterable[type[Message]]) -> Message:
    """Turn a parsed JSON object into one of the ``accepted`` message classes."""
    raw_ref = obj.get("ref")
    ref = raw_ref if _is_int(raw_ref) and raw_ref > 0 else None
    name = obj.get("message")
    if not isinstance(name, str):
        raise MessageError(
            ErrorCode.INVALID_FIELD, 'field "message" is missing or not a string', ref
        )
    by_name = {cls.MESSAGE: cls for cls in accepted}
    cls = by_name.get(name)
    if cls is None:
        known = ", ".join(sorted(by_name))
        raise MessageError(
            ErrorCode.UNKNOWN_MESSAGE,
            f"unknown message {_shorten(repr(name))} on this endpoint; expected one of: {known}",
            ref,
        )
    kwargs: dict[str, Any] = {}
    for spec in _fields(cls):
        value = obj.get(spec.wire)
        if value is None:
            if spec.optional:
                kwargs[spec.attribute] = None
                continue
            raise MessageError(
                ErrorCode.INVALID_FIELD, f"{name}: required field {spec.wire!r} is missing", ref
            )
        kwargs[spec.attribute] = _convert(name, spec, value, ref)
    return cls(**kwargs)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _shorten(shown: str, limit: int = 200) -> str:
    """Keep quoted bad values short, so an error reply stays well under the line limit."""
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _convert(name: str, spec: _FieldSpec, value: object, ref: int | None) -> object:
    def wrong(expected: str) -> MessageError:
        return MessageError(
            ErrorCode.INVALID_FIELD,
            f"{name}: field {spec.wire!r} must be {expected}, got {_shorten(json.dumps(value))}",
            ref,
        )

    if spec.kind is int:
        if not _is_int(value):
            raise wrong("an integer")
        assert isinstance(value, int)
        if spec.wire in ("ref", "pid") and value <= 0:
            raise wrong("a positive integer")
        return value
    if spec.kind is float:
        if not (_is_int(value) or isinstance(value, float)):
            raise wrong("a number")
        assert isinstance(value, int | float)
        try:
            number = float(value)
        except OverflowError:
            raise wrong("a finite number") from None
        if not math.isfinite(number) or number < 0:
            raise wrong("a non-negative number")
        return number
    if spec.kind is str:
        if not isinstance(value, str) or not value:
            raise wrong("a non-empty string")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise wrong("valid Unicode text (no lone surrogates)") from None
        return value
    if issubclass(spec.kind, enum.Enum):
        allowed = [m.value for m in spec.kind]
        if value not in allowed:
            raise wrong("one of " + ", ".join(allowed))
        return spec.kind(value)
    raise AssertionError(f"no conversion for {spec.kind!r}")  # pragma: no cover
