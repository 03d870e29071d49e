"""The limits of the wire protocol that are ours to choose (``docs/protocol.md``, section 7).

The line limit itself is :data:`lca_common.protocol.codec.MAX_LINE_LENGTH`.  The
values here keep every line the emulator sends well under it, whatever a peer sent:
names and hosts are bounded when they are registered, and error texts quote only a
short prefix of what they complain about.
"""

from __future__ import annotations

from typing import Final

MAX_NAME_BYTES: Final = 255
"""The longest application name, in bytes of UTF-8 (255 ASCII characters)."""

MAX_HOST_BYTES: Final = 255
"""The longest ``host``, in bytes of UTF-8 (a DNS name is at most 253)."""

MAX_SERVICE_BYTES: Final = 2 * MAX_NAME_BYTES + 1
"""The longest HA pair (service) name: its default is two names and a slash."""

MAX_PID: Final = 2**31 - 1
"""The largest ``pid`` accepted: a signed 32-bit integer, as every OS and language has."""

MIN_HEARTBEAT: Final = 0.1
"""The shortest heartbeat period, in seconds on the emulator's clock."""

QUOTE_CHARS: Final = 40
"""How many characters of an offending value an error text quotes."""


def utf8_length(text: str) -> int:
    """The length of ``text`` on the wire before JSON escaping, in bytes."""
    return len(text.encode("utf-8", "surrogatepass"))


def quote(value: str, limit: int = QUOTE_CHARS) -> str:
    """``repr(value)``, cut to its first ``limit`` characters (saying how long it was)."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"


def length_problem(field: str, value: str, limit: int) -> str | None:
    """Why ``value`` is too long for ``field`` (for an ``invalid-field`` text), or None."""
    size = utf8_length(value)
    if size <= limit:
        return None
    return f"field {field!r} must be at most {limit} bytes of UTF-8, got {size}: {quote(value)}"
