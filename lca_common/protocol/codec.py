"""Encode and decode wire messages: JSON objects, one per line.  No Twisted here.

``decode`` raises :class:`FramingError` when a line is not a JSON object at all
(the connection is closed) and :class:`MessageError` when it is an object but not a
valid message for the endpoint (the connection stays open).

The per-line path rebuilds nothing: each message class's field specs (with its enum
value tables) are built once, each tuple of accepted classes gets its name table
once, and one JSON decoder and one encoder serve every line.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any, Final, TypeGuard

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


# -- Per-class tables, built once -------------------------------------------------

_Converter = Callable[[str, str, object, "int | None"], object]


@dataclasses.dataclass(frozen=True, slots=True)
class _FieldSpec:
    attribute: str
    wire: str
    optional: bool
    convert: _Converter
    to_wire: bool
    """Whether encode must write ``value.value`` (an enum that is not also a str)."""


@dataclasses.dataclass(frozen=True, slots=True)
class _ClassSpec:
    fields: tuple[_FieldSpec, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class _NameTable:
    by_name: Mapping[str, type[Message]]
    known: str


_SPECS: dict[type[Message], _ClassSpec] = {}
_TABLES: dict[tuple[type[Message], ...], _NameTable] = {}


def _spec(cls: type[Message]) -> _ClassSpec:
    spec = _SPECS.get(cls)
    if spec is None:
        spec = _SPECS[cls] = _build_spec(cls)
    return spec


def _build_spec(cls: type[Message]) -> _ClassSpec:
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        optional = False
        if isinstance(hint, types.UnionType):
            members = [a for a in typing.get_args(hint) if a is not type(None)]
            optional = len(members) < len(typing.get_args(hint))
            hint = members[0]
        wire = f.metadata.get("wire", f.name)
        to_wire = isinstance(hint, type) and issubclass(hint, enum.Enum) and str not in hint.__mro__
        specs.append(_FieldSpec(f.name, wire, optional, _converter(hint, wire), to_wire))
    return _ClassSpec(tuple(specs))


def _table(accepted: Iterable[type[Message]]) -> _NameTable:
    key = accepted if isinstance(accepted, tuple) else tuple(accepted)
    table = _TABLES.get(key)
    if table is None:
        by_name = {cls.MESSAGE: cls for cls in key}
        table = _NameTable(by_name, ", ".join(sorted(by_name)))
        if len(_TABLES) < 64:  # a few direction tuples in practice; never grow without end
            _TABLES[key] = table
    return table


# -- Encoding ---------------------------------------------------------------------

_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_C_ENCODER: Final = (
    None
    if c_make_encoder is None
    # what _ENCODER.encode builds on every call, built once (no circular check: only scalars)
    else c_make_encoder(
        None, _ENCODER.default, encode_basestring, None, ":", ",", False, False, True
    )
)


def encode(message: Message) -> bytes:
    """Serialize ``message`` to one JSON line, without the trailing newline.

    Optional fields that are ``None`` are left out.
    """
    obj: dict[str, Any] = {"message": message.MESSAGE}
    for spec in _spec(type(message)).fields:
        value = getattr(message, spec.attribute)
        if value is None:
            continue
        obj[spec.wire] = value.value if spec.to_wire else value
    if _C_ENCODER is None:  # pragma: no cover - Pythons without the C accelerator
        return _ENCODER.encode(obj).encode("utf-8")
    return "".join(_C_ENCODER(obj, 0)).encode("utf-8")


# -- Parsing ----------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)
_SCAN_ONCE: Final[Callable[[str, int], tuple[Any, int]]] = _DECODER.scan_once  # type: ignore[attr-defined]


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
    obj = _parse(text)
    if not isinstance(obj, dict):
        raise FramingError(
            ErrorCode.INVALID_JSON, f"line is JSON but not an object: {type(obj).__name__}"
        )
    return obj


def _parse(text: str) -> object:
    """The whole line with the C scanner; anything it cannot take goes the long way."""
    try:
        obj, end = _SCAN_ONCE(text, 0)
    except (StopIteration, ValueError, RecursionError):
        pass
    else:
        if end == len(text):
            return obj
    return _parse_slowly(text)


def _parse_slowly(text: str) -> object:
    """Leading or trailing whitespace, or an error to report as ``json.loads`` would."""
    try:
        if text.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return _DECODER.decode(text)
    except ValueError as e:
        raise FramingError(ErrorCode.INVALID_JSON, f"line is not valid JSON: {e}") from None
    except RecursionError:
        raise FramingError(ErrorCode.INVALID_JSON, "line is JSON nested too deeply") from None


# -- Decoding -----------------------------------------------------------------------


def decode(line: bytes, accepted: Iterable[type[Message]]) -> Message:
    """Decode one line into one of the ``accepted`` message classes.

    ``accepted`` is best a tuple: its name table is then built once and reused.

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
    table = _table(accepted)
    cls = table.by_name.get(name)
    if cls is None:
        raise MessageError(
            ErrorCode.UNKNOWN_MESSAGE,
            f"unknown message {_shorten(repr(name))} on this endpoint; "
            f"expected one of: {table.known}",
            ref,
        )
    kwargs: dict[str, Any] = {}
    for spec in _spec(cls).fields:
        value = obj.get(spec.wire)
        if value is None:
            if spec.optional:
                kwargs[spec.attribute] = None
                continue
            raise MessageError(
                ErrorCode.INVALID_FIELD, f"{name}: required field {spec.wire!r} is missing", ref
            )
        kwargs[spec.attribute] = spec.convert(name, spec.wire, value, ref)
    return cls(**kwargs)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _shorten(shown: str, limit: int = 200) -> str:
    """Keep quoted bad values short, so an error reply stays well under the line limit."""
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _show(value: object) -> str:
    """A bad value as JSON, shortened."""
    return _shorten(json.dumps(value))


def _wrong(name: str, wire: str, expected: str, value: object, ref: int | None) -> MessageError:
    return MessageError(
        ErrorCode.INVALID_FIELD,
        f"{name}: field {wire!r} must be {expected}, got {_show(value)}",
        ref,
    )


def _converter(kind: object, wire: str) -> _Converter:
    """The check and conversion of one field's wire value, chosen once per field."""
    if kind is int:
        return _to_positive_int if wire in ("ref", "pid") else _to_int
    if kind is float:
        return _to_seconds
    if kind is str:
        return _to_text
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return _enum_converter(kind)
    raise AssertionError(f"no conversion for {kind!r}")  # pragma: no cover


def _to_int(name: str, wire: str, value: object, ref: int | None) -> object:
    if _is_int(value):
        return value
    raise _wrong(name, wire, "an integer", value, ref)


def _to_positive_int(name: str, wire: str, value: object, ref: int | None) -> object:
    number = _to_int(name, wire, value, ref)
    assert isinstance(number, int)
    if number <= 0:
        raise _wrong(name, wire, "a positive integer", value, ref)
    return number


def _to_seconds(name: str, wire: str, value: object, ref: int | None) -> object:
    if not (_is_int(value) or isinstance(value, float)):
        raise _wrong(name, wire, "a number", value, ref)
    assert isinstance(value, int | float)
    try:
        number = float(value)
    except OverflowError:
        raise _wrong(name, wire, "a finite number", value, ref) from None
    if not math.isfinite(number) or number < 0:
        raise _wrong(name, wire, "a non-negative number", value, ref)
    return number


def _to_text(name: str, wire: str, value: object, ref: int | None) -> object:
    if not isinstance(value, str) or not value:
        raise _wrong(name, wire, "a non-empty string", value, ref)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            expected = "valid Unicode text (no lone surrogates)"
            raise _wrong(name, wire, expected, value, ref) from None
    return value


def _enum_converter(kind: type[enum.Enum]) -> _Converter:
    members: dict[object, enum.Enum] = {m.value: m for m in kind}
    expected = "one of " + ", ".join(str(m.value) for m in kind)

    def convert(name: str, wire: str, value: object, ref: int | None) -> object:
        member = members.get(value) if isinstance(value, str) else None
        if member is None:
            raise _wrong(name, wire, expected, value, ref)
        return member

    return convert
