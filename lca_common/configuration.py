"""Configuration options as Genesys applications hold them: strings by section.

Shared by the emulated LCA (an application's ``[sml]`` section) and the SIP Server
stub (its ``[TServer]`` section): how an option string reads as a boolean or an
integer, and a read-only copy of a whole configuration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

Options = Mapping[str, Mapping[str, str]]
"""Configuration options by section, as configuration strings."""

_INTEGER = re.compile(r"[+-]?[0-9]{1,12}")


def freeze_options(options: Options) -> Options:
    """A read-only copy of ``options``."""
    return MappingProxyType(
        {section: MappingProxyType(dict(values)) for section, values in options.items()}
    )


def parse_boolean(text: str) -> bool | None:
    """``true`` or ``false`` in any letter case (spaces around ignored), else None."""
    folded = text.strip().casefold()
    return True if folded == "true" else False if folded == "false" else None


def parse_integer(text: str, minimum: int | None, maximum: int | None) -> int | None:
    """A decimal integer within ``minimum``..``maximum`` (None: unbounded), else None."""
    value = text.strip()
    if not _INTEGER.fullmatch(value):
        return None
    number = int(value)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        return None
    return number
