"""Encode and decode wire messages: JSON objects, one per line.  No Twisted here.

``decode`` raises :class:`FramingError` when a line is not a JSON object at all
(the connection is closed) and :class:`MessageError` when it is an object but not a
valid message for the endpoint (the connection stays open).

The per-line path rebuilds nothing: each message class's field specs (with its enum
value tables and the JSON text written around each field) are built once, each tuple
of accepted classes gets its name table once, and one JSON decoder and one encoder
serve every line.  A decoded message is built without its frozen ``__init__``, and
an encoded one is written field by field (see :func:`encode`): both cost far less so.

Members the protocol does not define are ignored, whatever valid JSON they hold.  An
integer longer than Python converts (``sys.get_int_max_str_digits()``) is kept as an
:class:`UnparsedValue`.  A line nested deeper than the C scanner recurses is checked
by a linear scan without recursion instead, and those of its members that nest deeper
than :data:`MAX_DEPTH` are kept as an :class:`UnparsedValue` too.  Either is an error
only in a member the message defines.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from json.decoder import scanstring  # type: ignore[attr-defined]
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any, Final, TypeGuard

from lca_common.protocol.messages import ErrorCode, Message

MAX_LINE_LENGTH = 65536
"""The longest line, in bytes and without its ``\\n``, that either side accepts."""

MAX_DEPTH = 200
"""In a line too deep for the C scanner, the deepest member value built into Python
values; deeper ones stay unparsed."""


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


class UnparsedValue:
    """Valid JSON kept as its text: an integer with more digits than Python converts to
    ``int``, or a member value nested deeper than :data:`MAX_DEPTH` in a line too deep
    for the C scanner."""

    __slots__ = ("huge_int", "text")

    def __init__(self, text: str, huge_int: bool = False) -> None:
        self.text = text
        self.huge_int = huge_int

    def __repr__(self) -> str:
        return f"UnparsedValue({_shorten(self.text, 40)!r}, huge_int={self.huge_int})"


# -- Per-class tables, built once -------------------------------------------------

_Converter = Callable[[str, str, object, "int | None"], object]

_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_C_ENCODER: Final = (
    None
    if c_make_encoder is None
    # what _ENCODER.encode builds on every call, built once (no circular check: a
    # message holds scalars, or a dict decoded from JSON)
    else c_make_encoder(
        None, _ENCODER.default, encode_basestring, None, ":", ",", False, False, True
    )
)


def _json(value: object) -> str:
    """``value`` as the encoder writes it: compact JSON, without escaping non-ASCII."""
    if _C_ENCODER is None:  # pragma: no cover - Pythons without the C accelerator
        return _ENCODER.encode(value)
    return "".join(_C_ENCODER(value, 0))


# Plain classes with slots, not dataclasses: as fast to read, far cheaper to define at
# import (a stub process imports this module at every start).
class _FieldSpec:
    __slots__ = (
        "attribute",
        "convert",
        "enum",
        "members",
        "optional",
        "prefix",
        "seconds",
        "text",
        "texts",
        "wire",
    )

    def __init__(self, attribute: str, wire: str, optional: bool, hint: object) -> None:
        self.attribute = attribute
        self.wire = wire
        self.optional = optional
        self.convert = _converter(hint, wire)
        self.text = hint is str
        """Decode keeps a non-empty ASCII string as it is (what ``_to_text`` does)."""
        self.seconds = hint is float
        """Decode keeps a finite, non-negative float as it is (what ``_to_seconds`` does)."""
        self.prefix = "," + _json(wire) + ":"
        """What encode writes before the value."""
        self.enum: type[enum.Enum] | None = None
        self.members: dict[str, enum.Enum] | None = None
        """An enum field's members by wire value: decode's fast path for a valid value
        (``convert`` checks any other, and words its error)."""
        self.texts: dict[enum.Enum, str] | None = None
        """An enum field's members as encode writes them (``value.value`` for an enum
        that is not also a str)."""
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            plain = str not in hint.__mro__
            self.enum = hint
            self.members = {m.value: m for m in hint if isinstance(m.value, str)}
            self.texts = {m: _json(m.value if plain else m) for m in hint}


class _ClassTable:
    """What encoding and decoding one message class needs."""

    __slots__ = ("build", "head", "specs")

    def __init__(self, cls: type[Message]) -> None:
        hints = typing.get_type_hints(cls)
        specs = []
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            optional = False
            if isinstance(hint, types.UnionType):
                members = [a for a in typing.get_args(hint) if a is not type(None)]
                optional = len(members) < len(typing.get_args(hint))
                hint = members[0]
            specs.append(_FieldSpec(f.name, f.metadata.get("wire", f.name), optional, hint))
        self.specs = tuple(specs)
        self.head = '{"message":' + _json(cls.MESSAGE)
        """What encode writes before the fields."""
        self.build = _builder(cls)


def _builder(cls: type[Message]) -> Callable[[dict[str, Any]], Message]:
    """How decode makes a ``cls`` from a value for every field, in the fields' order.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``,
    which costs several times what the line's whole JSON parse does; for a plain one
    (no ``__post_init__``, no slots, every field in ``__init__``) the values go into the
    instance's ``__dict__`` at once, which is all that ``__init__`` would do.
    """
    params = getattr(cls, "__dataclass_params__", None)
    plain = (
        params is not None
        and params.init
        and not hasattr(cls, "__post_init__")
        and not any("__slots__" in vars(c) for c in cls.__mro__)
        and all(f.init for f in dataclasses.fields(cls))
    )
    if not plain:
        return lambda fields: cls(**fields)
    new = object.__new__

    def build(fields: dict[str, Any]) -> Message:
        message = new(cls)
        message.__dict__.update(fields)
        return message

    return build


class _NameTable:
    __slots__ = ("by_name", "known")

    def __init__(self, by_name: Mapping[str, type[Message]], known: str) -> None:
        self.by_name = by_name
        self.known = known


_CLASSES: dict[type[Message], _ClassTable] = {}
_TABLES: dict[tuple[type[Message], ...], _NameTable] = {}


def _class_table(cls: type[Message]) -> _ClassTable:
    table = _CLASSES.get(cls)
    if table is None:
        table = _CLASSES[cls] = _ClassTable(cls)
    return table


def _table(accepted: Iterable[type[Message]]) -> _NameTable:
    key = accepted if isinstance(accepted, tuple) else tuple(accepted)
    table = _TABLES.get(key)
    if table is None:
        by_name = {cls.MESSAGE: cls for cls in key}
        table = _NameTable(by_name, ", ".join(sorted(by_name)))
        if len(_TABLES) < 64:  # a few direction tuples in practice; never grow without end
            _TABLES[key] = table
    return table


def prepare(*directions: Iterable[type[Message]]) -> None:
    """Build now, rather than at the first line, the tables that encoding and decoding
    the messages of each direction (such as ``LCA_TO_APPLICATION``) need: a fork server
    does it once for every child it forks."""
    for accepted in directions:
        _table(accepted)
        for cls in accepted:
            _class_table(cls)


# -- Encoding ---------------------------------------------------------------------


def encode(message: Message) -> bytes:
    """Serialize ``message`` to one JSON line, without the trailing newline.

    Optional fields that are ``None`` are left out.  Written piece by piece: a string,
    an integer, a finite float or an enum member directly, as the JSON encoder writes
    it (its C accelerator writes floats and integers with their ``repr``); any other
    value by the encoder.
    """
    table = _class_table(type(message))
    parts = [table.head]
    for spec in table.specs:
        value = getattr(message, spec.attribute)
        if value is None:
            continue
        parts.append(spec.prefix)
        kind = value.__class__
        if kind is str:
            parts.append(encode_basestring(value))
        elif kind is spec.enum:
            parts.append(spec.texts[value])  # type: ignore[index]
        elif kind is int:
            parts.append(int.__repr__(value))
        elif kind is float and value - value == 0.0:  # finite: not inf, -inf or nan
            parts.append(float.__repr__(value))
        else:
            parts.append(_json(value))
    parts.append("}")
    return "".join(parts).encode("utf-8")


# -- Parsing ----------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _parse_int(digits: str) -> int | UnparsedValue:
    try:
        return int(digits)
    except ValueError:  # over sys.get_int_max_str_digits(): keep it, unconverted
        return UnparsedValue(digits, huge_int=True)


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_parse_int)
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
    except RecursionError:
        return _parse_deep(text)
    except (StopIteration, ValueError):
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
        return _parse_deep(text)


def _parse_deep(text: str) -> object:
    """A line nested deeper than the C scanner recurses: check it is one JSON value in a
    linear scan without recursion, then build its top-level members, each with the C
    scanner when it nests at most MAX_DEPTH deep, as an :class:`UnparsedValue` if not."""
    try:
        members = _scan_structure(text)
    except _NotJsonError as e:
        raise FramingError(ErrorCode.INVALID_JSON, f"line is not valid JSON: {e}") from None
    if members is None:  # an array: not an object anyway
        return []
    obj: dict[str, Any] = {}
    for key, start, end, depth in members:
        value_text = text[start:end]
        if depth <= MAX_DEPTH:
            try:
                obj[key] = _DECODER.decode(value_text)
                continue
            except RecursionError:  # pragma: no cover - only with the stack nearly full
                pass
        obj[key] = UnparsedValue(value_text)
    return obj


class _NotJsonError(Exception):
    """The structural scan found the text is not one JSON value."""


_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")
_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_OPENERS: Final = re.compile(r"\[+")
_WORDS: Final = ("true", "false", "null")
_CONSTANTS: Final = ("NaN", "Infinity", "-Infinity")

# what the scanner expects next
_VALUE, _VALUE_OR_CLOSE, _KEY, _KEY_OR_CLOSE, _COLON, _COMMA_OR_CLOSE = range(6)
_Member = tuple[str, int, int, int]


def _scan_structure(text: str) -> list[_Member] | None:
    """Check ``text`` is one JSON value, in one pass and without recursion.

    Returns, when the value is an object, its members as ``(key, start, end, depth)``:
    where each value's text lies, and how deep it nests (None for any other value).

    :raises _NotJsonError: naming the first problem and its position.
    """
    length = len(text)
    stack: list[str] = []
    members: list[_Member] | None = None
    key = ""
    member_start = 0
    member_deepest = 0
    expect = _VALUE
    pos = _WHITESPACE.match(text, 0).end()  # type: ignore[union-attr]
    while True:
        if pos >= length:
            raise _NotJsonError(f"unexpected end of line at char {pos}")
        char = text[pos]
        value_done = False
        if expect in (_VALUE, _VALUE_OR_CLOSE):
            if char == "[":
                run = _OPENERS.match(text, pos).end() - pos  # type: ignore[union-attr]
                stack.extend("[" * run)
                pos += run
                expect = _VALUE_OR_CLOSE
            elif char == "{":
                stack.append("{")
                pos += 1
                expect = _KEY_OR_CLOSE
                if len(stack) == 1:
                    members = []
            elif char == "]" and expect == _VALUE_OR_CLOSE:
                stack.pop()
                pos += 1
                value_done = True
            elif char == '"':
                pos = _string(text, pos)[1]
                value_done = True
            elif text.startswith(_CONSTANTS, pos):
                name = next(c for c in _CONSTANTS if text.startswith(c, pos))
                raise _NotJsonError(f"{name} is not allowed")
            elif char == "-" or "0" <= char <= "9":
                number = _NUMBER.match(text, pos)
                if number is None:
                    raise _NotJsonError(f"expecting a value at char {pos}")
                pos = number.end()
                value_done = True
            else:
                word = next((w for w in _WORDS if text.startswith(w, pos)), None)
                if word is None:
                    raise _NotJsonError(f"expecting a value at char {pos}")
                pos += len(word)
                value_done = True
            if len(stack) > member_deepest:
                member_deepest = len(stack)
        elif expect in (_KEY, _KEY_OR_CLOSE):
            if char == '"':
                name, pos = _string(text, pos)
                if len(stack) == 1:
                    key = name
                expect = _COLON
            elif char == "}" and expect == _KEY_OR_CLOSE:
                stack.pop()
                pos += 1
                value_done = True
            else:
                raise _NotJsonError(f"expecting a property name in double quotes at char {pos}")
        elif expect == _COLON:
            if char != ":":
                raise _NotJsonError(f"expecting ':' at char {pos}")
            pos = _WHITESPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
            expect = _VALUE
            if len(stack) == 1:
                member_start = pos
                member_deepest = 1
        else:  # _COMMA_OR_CLOSE
            if char == ",":
                pos += 1
                expect = _VALUE if stack[-1] == "[" else _KEY
            elif char in "]}" and stack[-1] == ("[" if char == "]" else "{"):
                stack.pop()
                pos += 1
                value_done = True
            else:
                raise _NotJsonError(f"expecting ',' or a closing bracket at char {pos}")
        if value_done:
            if not stack:
                break
            expect = _COMMA_OR_CLOSE
            if len(stack) == 1 and members is not None and stack[0] == "{":
                members.append((key, member_start, pos, member_deepest - 1))
        pos = _WHITESPACE.match(text, pos).end()  # type: ignore[union-attr]
    pos = _WHITESPACE.match(text, pos).end()  # type: ignore[union-attr]
    if pos != length:
        raise _NotJsonError(f"extra data at char {pos}")
    return members


def _string(text: str, pos: int) -> tuple[str, int]:
    """The JSON string starting at ``pos`` (its opening quote), and the index past it."""
    try:
        value, end = scanstring(text, pos + 1, True)
        return str(value), int(end)
    except ValueError as e:
        raise _NotJsonError(str(e)) from None


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
    class_table = _class_table(cls)
    fields: dict[str, Any] = {}
    for spec in class_table.specs:
        value = obj.get(spec.wire)
        if value is None:
            if spec.optional:
                fields[spec.attribute] = None
                continue
            raise MessageError(
                ErrorCode.INVALID_FIELD, f"{name}: required field {spec.wire!r} is missing", ref
            )
        # the values most lines hold, kept or looked up as the converter would; any
        # other is the converter's to check (and to word the error for)
        kind = value.__class__
        if kind is str:
            members = spec.members
            if members is not None:
                member = members.get(value)
                if member is not None:
                    fields[spec.attribute] = member
                    continue
            elif spec.text and value and value.isascii():
                fields[spec.attribute] = value
                continue
        elif kind is float and spec.seconds and 0.0 <= value < math.inf:
            fields[spec.attribute] = value
            continue
        fields[spec.attribute] = spec.convert(name, spec.wire, value, ref)
    return class_table.build(fields)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _shorten(shown: str, limit: int = 200) -> str:
    """Keep quoted bad values short, so an error reply stays well under the line limit."""
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _show(value: object) -> str:
    """A bad value as JSON, shortened; unparsed parts as their own text."""
    if isinstance(value, UnparsedValue):
        return _shorten(value.text)
    try:
        return _shorten(json.dumps(value, default=_unparsed_text))
    except RecursionError:
        return "a value nested too deeply to show"


def _unparsed_text(value: object) -> str:
    if isinstance(value, UnparsedValue):
        return _shorten(value.text, 40)
    raise TypeError(f"{type(value).__name__} is not JSON")  # pragma: no cover


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
    if kind is bool:
        return _to_bool
    if typing.get_origin(kind) is dict:
        return _to_object
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return _enum_converter(kind)
    raise AssertionError(f"no conversion for {kind!r}")  # pragma: no cover


def _huge_int(name: str, wire: str, value: UnparsedValue, ref: int | None) -> MessageError:
    expected = f"an integer of at most {sys.get_int_max_str_digits()} digits"
    return _wrong(name, wire, expected, value, ref)


def _to_int(name: str, wire: str, value: object, ref: int | None) -> object:
    if _is_int(value):
        return value
    if isinstance(value, UnparsedValue) and value.huge_int:
        raise _huge_int(name, wire, value, ref)
    raise _wrong(name, wire, "an integer", value, ref)


def _to_positive_int(name: str, wire: str, value: object, ref: int | None) -> object:
    number = _to_int(name, wire, value, ref)
    assert isinstance(number, int)
    if number <= 0:
        raise _wrong(name, wire, "a positive integer", value, ref)
    return number


def _to_seconds(name: str, wire: str, value: object, ref: int | None) -> object:
    if isinstance(value, UnparsedValue) and value.huge_int:
        raise _wrong(name, wire, "a finite number", value, ref)
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


def _to_object(name: str, wire: str, value: object, ref: int | None) -> object:
    if not isinstance(value, dict):
        raise _wrong(name, wire, "a JSON object", value, ref)
    return value


def _to_bool(name: str, wire: str, value: object, ref: int | None) -> object:
    if not isinstance(value, bool):
        raise _wrong(name, wire, "true or false", value, ref)
    return value


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
