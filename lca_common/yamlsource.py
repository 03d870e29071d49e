"""YAML files read with their line numbers, and validated with clear errors.

Every configuration file of the project (stub fixtures, scenarios, the ``serve``
configuration) goes through here.  :func:`load_yaml` composes the document with
PyYAML's safe loader (libyaml's when present) and returns a :class:`Node`; its
methods check keys and types and raise :class:`ConfigError`, which names the file,
the line and the key path.

Limits, each a :class:`ConfigError` with the file and, for YAML, the line: only
regular files of at most :data:`MAX_FILE_SIZE` bytes (1 MiB) are read; a document
holds at most :data:`MAX_NODES` nodes, nested at most :data:`MAX_DEPTH` deep, counted
as it is parsed, before anything is composed; YAML aliases may repeat at most
:data:`MAX_ALIAS_NODES` nodes in all (a "billion laughs" file is refused before
anything walks it).  Each file is parsed once per content.
"""

from __future__ import annotations

import enum
import math
import os
import re
import stat
from collections import OrderedDict
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Final, TypeVar, overload

import yaml
from yaml.constructor import SafeConstructor

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_DEPTH",
    "MAX_FILE_SIZE",
    "MAX_NODES",
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

    ``str(err)`` reads ``file:line: key.path: problem``; missing parts are left out, and
    control characters are escaped (``\\x1b``).
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
        text = ": ".join(part for part in (where, self.key_path, self.problem) if part)
        return _UNPRINTABLE.sub(_escape, text)


_UNPRINTABLE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""Control characters and line separators: a key or a path from a file may hold them
(``"\\e[2J": 1``), and a message printed to a terminal must not act on it."""


def _escape(match: re.Match[str]) -> str:
    return repr(match.group())[1:-1]


def suggestion(word: str, known: Iterable[str], *, what: str = "keys") -> str:
    """Say which known name ``word`` was probably meant to be, or list the known names."""
    import difflib  # only for errors: not loaded by a start that has none

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

    def as_str(self, *, allow_empty: bool = False, max_bytes: int | None = None) -> str:
        """A YAML string (quoted or not); empty strings only with ``allow_empty``; at
        most ``max_bytes`` bytes of UTF-8 when given."""
        value = self._construct() if self.is_scalar else None
        if not isinstance(value, str):
            raise self._expected("a string")
        if not value and not allow_empty:
            raise self.error("expected a non-empty string")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise self.error("expected valid Unicode text (a lone surrogate escape?)") from None
        if max_bytes is not None and size > max_bytes:
            raise self.error(
                f"expected at most {max_bytes} bytes of UTF-8, got {size}: {_shorten(value)!r}"
            )
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
        import difflib

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
    def get_str(self, key: str, *, max_bytes: int | None = None) -> str: ...
    @overload
    def get_str(self, key: str, default: _D, *, max_bytes: int | None = None) -> str | _D: ...
    def get_str(
        self, key: str, default: object = _REQUIRED, *, max_bytes: int | None = None
    ) -> object:
        """A non-empty string (of at most ``max_bytes`` bytes of UTF-8 when given);
        required unless a ``default`` is given."""
        node = self._lookup(key, default)
        return default if node is None else node.as_str(max_bytes=max_bytes)

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


MAX_FILE_SIZE: Final = 1 << 20
"""The largest configuration file read, in bytes (1 MiB); ours are a few kilobytes."""

MAX_ALIAS_NODES: Final = 10_000
"""How many nodes YAML aliases may repeat in one document, in all."""

MAX_NODES: Final = 10_000
"""How many nodes (values, lists, mappings, aliases) one document may hold; ours hold a
few hundred.  Composing and checking a node costs microseconds: a 1 MiB file of half a
million would take seconds before any check could refuse it."""

MAX_DEPTH: Final = 100
"""How deep lists and mappings may nest; ours nest five deep.  (PyYAML's own composer
recurses, and runs out of stack a few hundred levels down.)"""

_NODE_EVENTS: Final = (yaml.ScalarEvent, yaml.CollectionStartEvent, yaml.AliasEvent)

_LOADER: Final[type[yaml.SafeLoader] | type[yaml.CSafeLoader]] = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)
"""libyaml's safe loader when PyYAML was built with it (about 15 times faster)."""


class _ParsedFiles:
    """The documents (or errors) of the files read so far, by content: a bounded LRU
    cache, so each file is parsed once however often (and by whatever path) it is read.
    A document holds no file name; an error is kept as it is and renamed on the way out."""

    def __init__(self, entries: int = 1024, total_bytes: int = 16 * MAX_FILE_SIZE) -> None:
        self._found: OrderedDict[bytes, yaml.Node | ConfigError] = OrderedDict()
        self._entries = entries
        self._total_bytes = total_bytes
        self._bytes = 0

    def get(self, data: bytes) -> yaml.Node | ConfigError | None:
        found = self._found.get(data)
        if found is not None:
            self._found.move_to_end(data)
        return found

    def put(self, data: bytes, found: yaml.Node | ConfigError) -> None:
        self._found[data] = found
        self._bytes += len(data)
        while len(self._found) > self._entries or self._bytes > self._total_bytes:
            old, _ = self._found.popitem(last=False)
            self._bytes -= len(old)


_parsed = _ParsedFiles()


def parse_yaml(text: str, file: str = "<string>") -> Node:
    """Compose one YAML document with the safe loader; ``file`` is used in errors."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = _line_at(text, exc.start)
        raise ConfigError(file, line, "", "invalid YAML: a lone surrogate is not text") from None
    return Node(_compose(data, text, file, _LOADER), file)


def load_yaml(path: str | os.PathLike[str]) -> Node:
    """Read a UTF-8 YAML file into a :class:`Node`; any failure is a :class:`ConfigError`.

    Only a regular file of at most :data:`MAX_FILE_SIZE` bytes is read (a FIFO or a
    device would block or never end).  Each content is parsed once: reading it again,
    by any path, returns the same document, or raises the same error, without parsing.
    """
    file = os.fspath(path)
    data = _read(file)
    found = _parsed.get(data)
    if found is None:
        try:
            found = _compose(data, _utf8(data, file), file, _LOADER)
        except ConfigError as exc:
            found = exc
        _parsed.put(data, found)
    if isinstance(found, ConfigError):
        raise ConfigError(file, found.line, found.key_path, found.problem)
    return Node(found, file)


_FILE_KINDS: Final = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


_LINE_BREAKS: Final = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_LINE_BREAK_BYTES: Final = re.compile(b"\r\n|[\r\n]|\xc2\x85|\xe2\x80[\xa8\xa9]")


def _line_at(text: str | bytes, position: int) -> int:
    """The 1-based line of ``position`` in ``text``, counting line breaks as YAML does
    (CR LF, CR, LF, and NEL, LS, PS), so that it agrees with the parser's own marks."""
    if isinstance(text, str):
        return len(_LINE_BREAKS.findall(text, 0, position)) + 1
    return len(_LINE_BREAK_BYTES.findall(text, 0, position)) + 1


def _utf8(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = _line_at(data, exc.start)
        raise ConfigError(file, line, "", f"not UTF-8 text ({exc.reason})") from None


def _read(file: str) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_SIZE bytes, or a ConfigError.

    It is opened without blocking (a FIFO with no writer would block ``open``) and
    checked on the open descriptor, so it cannot be swapped in between.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(file, flags)
    except OSError as exc:
        raise ConfigError(file, None, "", f"cannot read the file: {exc.strerror or exc}") from exc
    except ValueError:  # a NUL in the name (a path read from a YAML file can hold one)
        raise ConfigError(file, None, "", "cannot read the file: its name holds a NUL") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _FILE_KINDS if test(mode)), "a special file")
            raise ConfigError(
                file, None, "", f"cannot read the file: it is {kind}; only regular files are read"
            )
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_SIZE:
            chunk = os.read(fd, MAX_FILE_SIZE + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ConfigError(file, None, "", f"cannot read the file: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if size > MAX_FILE_SIZE:
        raise ConfigError(
            file, None, "", f"file is larger than {MAX_FILE_SIZE} bytes (1 MiB), the limit"
        )
    return b"".join(chunks)


def _compose(
    data: bytes, text: str, file: str, loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader]
) -> yaml.Node:
    """Compose ``data`` (``text`` encoded) with ``loader``; every error gets its line."""
    source = data if loader is not yaml.SafeLoader else text  # libyaml reads the bytes
    try:
        aliased = _count_nodes(source, file, loader)
        root = yaml.compose(source, Loader=loader)
    except RecursionError:  # PyYAML's composer recurses; libyaml stops at its own limit
        line = _deepest_line(text)
        raise ConfigError(file, line, "", "invalid YAML: nested too deeply") from None
    except yaml.reader.ReaderError as exc:
        # the position counts bytes (libyaml) or characters (PyYAML)
        line = _line_at(text if loader is yaml.SafeLoader else data, exc.position)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        problem = f"invalid YAML: character #x{code:04x} is not allowed in YAML text"
        raise ConfigError(file, line, "", problem) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else None
        detail = "; ".join(part for part in (exc.context, exc.problem) if part)
        if "maximum nesting depth" in detail:
            detail = "nested too deeply"
        raise ConfigError(file, line, "", f"invalid YAML: {detail or exc}") from exc
    except yaml.YAMLError as exc:  # pragma: no cover - every error PyYAML raises has a mark
        raise ConfigError(file, None, "", f"invalid YAML: {exc}") from exc
    if root is None:
        raise ConfigError(file, None, "", "file is empty")
    if aliased:  # without an alias, each node is reached once: nothing to check
        _check_aliases(root, file)
    return root


def _count_nodes(
    source: str | bytes, file: str, loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader]
) -> bool:
    """Refuse a document of more than MAX_NODES nodes, or nested more than MAX_DEPTH
    deep, at the line of the first node too many, from the parser's events: it stops
    there, before anything is composed.  Returns whether it holds an alias."""
    nodes = depth = 0
    aliased = False
    for event in yaml.parse(source, Loader=loader):
        if isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, _NODE_EVENTS):
            nodes += 1
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
            elif isinstance(event, yaml.AliasEvent):
                aliased = True
            if nodes > MAX_NODES or depth > MAX_DEPTH:
                mark = event.start_mark
                line = int(mark.line) + 1 if mark is not None else None
                problem = (
                    f"too many nodes: the document holds more than {MAX_NODES:,} values, "
                    "lists and mappings; these files need a few hundred"
                    if nodes > MAX_NODES
                    else "invalid YAML: nested too deeply"
                )
                raise ConfigError(file, line, "", problem)
    return aliased


def _deepest_line(text: str, enough: int = 100) -> int | None:
    """The line where the document first nests ``enough`` levels deep, or else reaches
    its deepest; PyYAML's parser does not recurse, so this finds where its composer ran
    out of stack (and stops there: PyYAML's scanner slows with every level)."""
    depth = deepest = 0
    line: int | None = None
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > deepest and event.start_mark is not None:
                    deepest, line = depth, int(event.start_mark.line) + 1
                    if depth >= enough:
                        break
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        pass
    return line


def _check_aliases(root: yaml.Node, file: str) -> None:
    """Refuse a document whose aliases repeat more than MAX_ALIAS_NODES nodes, or an
    alias inside the node it names: walked as composed (each node once), without
    recursion, so a billion laughs costs no more than its own size."""
    finished: dict[int, int] = {}  # node id -> the number of nodes it stands for
    on_path: set[int] = {id(root)}
    repeated = 0
    # each frame: the node, its children with the line and key path each is reached by,
    # the next child's index, and the nodes counted so far
    stack: list[tuple[yaml.Node, list[tuple[yaml.Node, int, str]], list[int]]] = [
        (root, _children(root, ""), [0, 1])
    ]
    while stack:
        node, children, state = stack[-1]
        if state[0] == len(children):
            stack.pop()
            on_path.discard(id(node))
            finished[id(node)] = state[1]
            if stack:
                stack[-1][2][1] += state[1]
            continue
        child, line, path = children[state[0]]
        state[0] += 1
        size = finished.get(id(child))
        if size is not None:  # reached again: an alias
            repeated += size
            state[1] += size
            if repeated > MAX_ALIAS_NODES:
                raise ConfigError(
                    file,
                    line,
                    path,
                    f"too many nodes: YAML aliases repeat more than {MAX_ALIAS_NODES} nodes; "
                    "aliases are not needed in these files, write the values out",
                )
        elif id(child) in on_path:
            raise ConfigError(file, line, path, "a YAML alias inside the node it names")
        elif isinstance(child, yaml.ScalarNode):
            finished[id(child)] = 1
            state[1] += 1
        else:
            on_path.add(id(child))
            stack.append((child, _children(child, path), [0, 1]))


def _children(node: yaml.Node, path: str) -> list[tuple[yaml.Node, int, str]]:
    """A collection's nodes, each with the line and key path it is reached by: a value
    by its key's line, a list item by its list's line (an alias has no line of its own)."""
    line = int(node.start_mark.line) + 1
    if isinstance(node, yaml.SequenceNode):
        return [(item, line, f"{path}[{index}]") for index, item in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        found = []
        for key, value in node.value:
            key_line = int(key.start_mark.line) + 1
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
            found.append((key, key_line, path))
            found.append((value, key_line, _child_key(path, name)))
        return found
    return []
