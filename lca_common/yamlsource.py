"""YAML files read with their line numbers, and validated with clear errors.

Every configuration file of the project (stub fixtures, scenarios, the ``serve``
configuration) goes through here.  :func:`load_yaml` composes the document with
PyYAML's safe loader and returns a :class:`Node`; its methods check keys and types
and raise :class:`ConfigError`, which names the file, the line and the key path.
"""

from __future__ import annotations

import difflib
import enum
import math
import os
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Final, TypeVar, overload

import yaml
from yaml.constructor import SafeConstructor

__all__ = [
    "ConfigError",
    "MappingNode",
    "Node",
    "format_number",
    "load_yaml",
    "parse_yaml",
    "suggestion",
]

_E = TypeVar("_E", bound=enum.Enum)
_D = TypeVar("_D")

_MAP_TAG: Final = "tag:yaml.org,2002:map"
_SEQ_TAG: Final = "tag:yaml.org,2002:seq"
_STR_TAG: Final = "tag:yaml.org,2002:str"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_PLAIN_COLLECTION_TAGS: Final = frozenset({_MAP_TAG, _SEQ_TAG})


class ConfigError(Exception):
    """An invalid or unreadable configuration file.

    ``str(err)`` reads ``file:line: key.path: problem``; missing parts are left out.
    """

    file: str
    line: int | None
    key_path: str
    problem: str

    def __init__(self, file: str, line: int | None, key_path: str, problem: str) -> None:
        super().__init__(file, line, key_path, problem)
        self.file = file
        self.line = line
        self.key_path = key_path
        self.problem = problem

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        return ": ".join(part for part in (where, self.key_path, self.problem) if part)


def suggestion(word: str, known: Iterable[str], *, what: str = "keys") -> str:
    """Say which known name ``word`` was probably meant to be, or list the known names."""
    names = list(known)
    close = difflib.get_close_matches(word, names, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    if not names:
        return f"no {what} are allowed here"
    return f"known {what}: {', '.join(names)}"


class _Required(enum.Enum):
    TOKEN = enum.auto()


_REQUIRED: Final = _Required.TOKEN


def _child_key(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Node:
    """One node of a YAML document, with the file and key path it came from.

    The ``as_*`` methods return its value as a Python type, or raise
    :class:`ConfigError` at this node's line when it has another type.
    """

    __slots__ = ("_file", "_path", "_yaml")

    def __init__(self, yaml_node: yaml.Node, file: str, path: str = "") -> None:
        self._yaml = yaml_node
        self._file = file
        self._path = path

    def __repr__(self) -> str:
        return f"<Node {self._file}:{self.line} {self._path!r}>"

    @property
    def file(self) -> str:
        """The file the node was read from."""
        return self._file

    @property
    def path(self) -> str:
        """The key path from the document root, like ``applications[0].host``."""
        return self._path

    @property
    def line(self) -> int:
        """The 1-based line where the node starts."""
        return int(self._yaml.start_mark.line) + 1

    def error(self, problem: str) -> ConfigError:
        """A :class:`ConfigError` at this node (to raise)."""
        return ConfigError(self._file, self.line, self._path, problem)

    @property
    def is_null(self) -> bool:
        """Whether the node is an empty value or ``null``."""
        return self.is_scalar and self._construct() is None

    @property
    def is_scalar(self) -> bool:
        """Whether the node is a scalar (not a mapping or a list)."""
        return isinstance(self._yaml, yaml.ScalarNode)

    @property
    def is_mapping(self) -> bool:
        """Whether the node is a plain YAML mapping."""
        return isinstance(self._yaml, yaml.MappingNode) and self._yaml.tag == _MAP_TAG

    def describe(self) -> str:
        """A short description of the value for error messages: ``an integer (5)``."""
        if self._yaml.tag not in _PLAIN_COLLECTION_TAGS and not self.is_scalar:
            return f"a value tagged {self._yaml.tag}"
        if isinstance(self._yaml, yaml.MappingNode):
            return "a mapping"
        if isinstance(self._yaml, yaml.SequenceNode):
            return "a list"
        value = self._construct()
        if value is None:
            return "nothing (null)"
        if isinstance(value, bool):
            return f"a boolean ({'true' if value else 'false'})"
        if isinstance(value, int):
            return f"an integer ({value})"
        if isinstance(value, float):
            return f"a number ({value})"
        if isinstance(value, str):
            return f"a string ({_shorten(value)!r})"
        return f"a {type(value).__name__} ({_shorten(str(value))})"

    def _construct(self) -> object:
        try:
            return SafeConstructor().construct_object(self._yaml, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise self.error(f"invalid value: {problem}") from exc
        except (ValueError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
            # explicit tags (!!int abc, !!timestamp foo) and huge integers fail here
            raise self.error(f"invalid value: {_shorten(str(exc), 120)}") from exc

    def _expected(self, what: str) -> ConfigError:
        return self.error(f"expected {what}, got {self.describe()}")

    def as_scalar(self) -> object:
        """The value of a scalar of any type (string, number, boolean, null, date)."""
        if not self.is_scalar:
            raise self._expected("a single value")
        return self._construct()

    def as_str(self, *, allow_empty: bool = False) -> str:
        """A YAML string (quoted or not); empty strings only with ``allow_empty``."""
        value = self._construct() if self.is_scalar else None
        if not isinstance(value, str):
            raise self._expected("a string")
        if not value and not allow_empty:
            raise self.error("expected a non-empty string")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise self.error("expected valid Unicode text (a lone surrogate escape?)") from None
        return value

    def as_bool(self) -> bool:
        """A YAML boolean (``true``/``false``); strings and numbers are refused."""
        value = self._construct() if self.is_scalar else None
        if not isinstance(value, bool):
            raise self._expected("true or false")
        return value

    def as_int(self, *, minimum: int | None = None, maximum: int | None = None) -> int:
        """A YAML integer (not a boolean or a float) within the given bounds."""
        value = self._construct() if self.is_scalar else None
        wanted = "an integer" + _range_text(minimum, maximum)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._expected(wanted)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self.error(f"expected {wanted}, got {value}")
        return value

    def as_number(
        self,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        positive: bool = False,
    ) -> float:
        """A finite YAML int or float (not a boolean); ``positive`` means > 0."""
        value = self._construct() if self.is_scalar else None
        wanted = (
            "a number greater than 0" if positive else "a number" + _range_text(minimum, maximum)
        )
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self._expected(wanted)
        try:
            number = float(value)
        except OverflowError:
            raise self.error(f"expected {wanted}, got an integer too large") from None
        if not math.isfinite(number):
            raise self.error(f"expected a finite number, got {value}")
        if (
            (positive and number <= 0)
            or (minimum is not None and number < minimum)
            or (maximum is not None and number > maximum)
        ):
            raise self.error(f"expected {wanted}, got {value}")
        return number

    def as_enum(self, enum_type: type[_E], choices: Iterable[_E] | None = None) -> _E:
        """A member of ``enum_type`` (or of ``choices``) by its value, in any case."""
        members = list(enum_type) if choices is None else list(choices)
        values = [str(member.value) for member in members]
        wanted = f"one of {', '.join(values)}"
        value = self._construct() if self.is_scalar else None
        if not isinstance(value, str):
            raise self._expected(wanted)
        for member, text in zip(members, values, strict=True):
            if text.casefold() == value.casefold():
                return member
        problem = f"expected {wanted}, got {_shorten(value)!r}"
        folded = {text.casefold(): text for text in values}
        close = difflib.get_close_matches(value.casefold(), list(folded), n=1)
        if close:
            problem += f"; did you mean {folded[close[0]]!r}?"
        raise self.error(problem)

    def as_list(self) -> tuple[Node, ...]:
        """The items of a YAML list, each with its index in the key path."""
        if not (isinstance(self._yaml, yaml.SequenceNode) and self._yaml.tag == _SEQ_TAG):
            raise self._expected("a list")
        return tuple(
            Node(item, self._file, f"{self._path}[{index}]")
            for index, item in enumerate(self._yaml.value)
        )

    def mapping(
        self,
        allowed: Collection[str] | None = None,
        *,
        required: Iterable[str] = (),
        what: str = "key",
    ) -> MappingNode:
        """Check this is a mapping with string keys, no duplicates and only ``allowed`` keys.

        ``allowed=None`` accepts any key; ``what`` names a key in errors (``component``).
        """
        if not self.is_mapping:
            raise self._expected("a mapping")
        assert isinstance(self._yaml, yaml.MappingNode)
        entries: dict[str, Node] = {}
        key_lines: dict[str, int] = {}
        for key_yaml, value_yaml in self._yaml.value:
            key_node = Node(key_yaml, self._file, self._path)
            if key_yaml.tag == _MERGE_TAG:
                raise key_node.error("YAML merge keys (<<) are not supported; repeat the keys")
            if not (isinstance(key_yaml, yaml.ScalarNode) and key_yaml.tag == _STR_TAG):
                raise key_node._expected("a string key")
            key = str(key_yaml.value)
            key_path = _child_key(self._path, key)
            if key in entries:
                raise ConfigError(
                    self._file,
                    key_node.line,
                    key_path,
                    f"duplicate key {key!r} (first at line {key_lines[key]})",
                )
            if allowed is not None and key not in allowed:
                known = list(allowed) if isinstance(allowed, Sequence) else sorted(allowed)
                hint = suggestion(key, known, what=f"{what}s")
                problem = f"unknown {what} {key!r}; {hint}"
                raise ConfigError(self._file, key_node.line, key_path, problem)
            entries[key] = Node(value_yaml, self._file, key_path)
            key_lines[key] = key_node.line
        result = MappingNode(self._yaml, self._file, self._path, entries)
        for key in required:
            result.require(key)
        return result


def format_number(value: float) -> str:
    """A number as people write it: ``60`` rather than ``60.0``, ``2.5`` as is."""
    if isinstance(value, int) or (math.isfinite(value) and value.is_integer()):
        return str(int(value))
    return repr(value)


def _range_text(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {format_number(minimum)} to {format_number(maximum)}"
    if minimum is not None:
        return f" of at least {format_number(minimum)}"
    if maximum is not None:
        return f" of at most {format_number(maximum)}"
    return ""


class MappingNode(Node):
    """A mapping node whose keys have been checked; values are reached by key.

    The ``get_*`` methods convert one value; with no ``default`` the key is required.
    """

    __slots__ = ("_entries",)

    def __init__(
        self, yaml_node: yaml.Node, file: str, path: str, entries: dict[str, Node]
    ) -> None:
        super().__init__(yaml_node, file, path)
        self._entries = entries

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, key: str) -> Node:
        return self.require(key)

    def keys(self) -> tuple[str, ...]:
        """The keys, in file order."""
        return tuple(self._entries)

    def items(self) -> tuple[tuple[str, Node], ...]:
        """The ``(key, value node)`` pairs, in file order."""
        return tuple(self._entries.items())

    def get(self, key: str) -> Node | None:
        """The value node of ``key``, or None when the key is absent."""
        return self._entries.get(key)

    def require(self, key: str) -> Node:
        """The value node of ``key``; its absence is an error at this mapping."""
        node = self._entries.get(key)
        if node is None:
            raise self.error(f"missing required key {key!r}")
        return node

    def without(self, *keys: str) -> MappingNode:
        """The same mapping minus ``keys``."""
        kept = {key: node for key, node in self._entries.items() if key not in keys}
        return MappingNode(self._yaml, self._file, self._path, kept)

    def layered_over(self, base: MappingNode) -> MappingNode:
        """This mapping's keys over ``base``'s (a shallow merge); errors still point home.

        Each value keeps the file and line it came from; a missing key is reported here.
        """
        merged = dict(base._entries)
        merged.update(self._entries)
        return MappingNode(self._yaml, self._file, self._path, merged)

    def get_mapping(
        self,
        key: str,
        allowed: Collection[str] | None = None,
        *,
        required: Iterable[str] = (),
        what: str = "key",
    ) -> MappingNode:
        """The mapping under ``key``; an absent key or an empty value gives an empty one."""
        node = self._entries.get(key)
        if node is None or node.is_null:
            yaml_node = node._yaml if node is not None else self._yaml
            empty = MappingNode(yaml_node, self._file, _child_key(self._path, key), {})
            for name in required:
                empty.require(name)
            return empty
        return node.mapping(allowed, required=required, what=what)

    def get_list(self, key: str) -> tuple[Node, ...]:
        """The items of the list under ``key``; an absent key or an empty value gives ()."""
        node = self._entries.get(key)
        if node is None or node.is_null:
            return ()
        return node.as_list()

    @overload
    def get_str(self, key: str) -> str: ...
    @overload
    def get_str(self, key: str, default: _D) -> str | _D: ...
    def get_str(self, key: str, default: object = _REQUIRED) -> object:
        """A non-empty string; required unless a ``default`` is given."""
        node = self._lookup(key, default)
        return default if node is None else node.as_str()

    @overload
    def get_bool(self, key: str) -> bool: ...
    @overload
    def get_bool(self, key: str, default: _D) -> bool | _D: ...
    def get_bool(self, key: str, default: object = _REQUIRED) -> object:
        """A YAML boolean; required unless a ``default`` is given."""
        node = self._lookup(key, default)
        return default if node is None else node.as_bool()

    @overload
    def get_int(
        self, key: str, *, minimum: int | None = None, maximum: int | None = None
    ) -> int: ...
    @overload
    def get_int(
        self, key: str, default: _D, *, minimum: int | None = None, maximum: int | None = None
    ) -> int | _D: ...
    def get_int(
        self,
        key: str,
        default: object = _REQUIRED,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> object:
        """An integer within bounds; required unless a ``default`` is given."""
        node = self._lookup(key, default)
        return default if node is None else node.as_int(minimum=minimum, maximum=maximum)

    @overload
    def get_number(
        self,
        key: str,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        positive: bool = False,
    ) -> float: ...
    @overload
    def get_number(
        self,
        key: str,
        default: _D,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        positive: bool = False,
    ) -> float | _D: ...
    def get_number(
        self,
        key: str,
        default: object = _REQUIRED,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        positive: bool = False,
    ) -> object:
        """A finite int or float as a float; required unless a ``default`` is given."""
        node = self._lookup(key, default)
        if node is None:
            return default
        return node.as_number(minimum=minimum, maximum=maximum, positive=positive)

    @overload
    def get_enum(
        self, key: str, enum_type: type[_E], *, choices: Iterable[_E] | None = None
    ) -> _E: ...
    @overload
    def get_enum(
        self,
        key: str,
        enum_type: type[_E],
        default: _D,
        *,
        choices: Iterable[_E] | None = None,
    ) -> _E | _D: ...
    def get_enum(
        self,
        key: str,
        enum_type: type[_E],
        default: object = _REQUIRED,
        *,
        choices: Iterable[_E] | None = None,
    ) -> object:
        """An enum member by value, in any case; required unless a ``default`` is given."""
        node = self._lookup(key, default)
        return default if node is None else node.as_enum(enum_type, choices)

    def _lookup(self, key: str, default: object) -> Node | None:
        if default is _REQUIRED:
            return self.require(key)
        return self._entries.get(key)


def parse_yaml(text: str, file: str = "<string>") -> Node:
    """Compose one YAML document with the safe loader; ``file`` is used in errors."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise ConfigError(file, None, "", "invalid YAML: nested too deeply") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else None
        detail = "; ".join(part for part in (exc.context, exc.problem) if part)
        raise ConfigError(file, line, "", f"invalid YAML: {detail or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(file, None, "", f"invalid YAML: {exc}") from exc
    if root is None:
        raise ConfigError(file, None, "", "file is empty")
    return Node(root, file)


def load_yaml(path: str | os.PathLike[str]) -> Node:
    """Read a UTF-8 YAML file into a :class:`Node`; any failure is a :class:`ConfigError`."""
    file = os.fspath(path)
    try:
        with open(file, encoding="utf-8") as stream:
            text = stream.read()
    except UnicodeDecodeError as exc:
        raise ConfigError(file, None, "", f"not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise ConfigError(file, None, "", f"cannot read the file: {exc.strerror or exc}") from exc
    return parse_yaml(text, file)
