"""The ``[sml]`` options of an application, as the Management Layer reads them.

Every Genesys application has an ``[sml]`` section that tells the LCA and SCS how to
watch and control it (vendor: *Common Configuration Options*, ``[sml]`` section, and
the Platform SDK page *LCA Hang-up Detection Support*).  The emulator reads the ones
it emulates from the application's configuration, with the vendor's defaults and
valid values.  What happens to a value outside them is not documented: like the
stub with ``[TServer]``, the emulator uses the default and says so (our choice).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from lca_common.configuration import parse_boolean, parse_integer

SML_SECTION: Final = "sml"

_THREAD_CLASS = re.compile(r"heartbeat-period-thread-class-[0-9]+")

HEARTBEAT_PERIOD_MIN: Final = 3
HEARTBEAT_PERIOD_MAX: Final = 604800
SUSPENDING_WAIT_MIN: Final = 5
SUSPENDING_WAIT_MAX: Final = 600


@dataclass(frozen=True)
class SmlOptions:
    """The ``[sml]`` options the emulator acts on (vendor defaults)."""

    heartbeat_period: int = 0
    """Seconds of silence after which the application is hung; 0 = not watched."""
    hangup_restart: bool = True
    """A hung application is restarted by its LCA (false: only reported hung)."""
    autostart: bool = False
    """SCS starts the application whenever its host's LCA is up."""
    suspending_wait_timeout: int = 10
    """Seconds a graceful stop may take to reach SUSPENDING before the LCA kills it."""


def _integer(text: str, minimum: int, maximum: int, *, zero: bool = False) -> int | None:
    number = parse_integer(text, None, None)
    if number is not None and ((zero and number == 0) or minimum <= number <= maximum):
        return number
    return None


def parse_sml_options(raw: Mapping[str, str]) -> tuple[SmlOptions, tuple[str, ...]]:
    """Read an ``[sml]`` section: the options, and what the LCA logs about values it
    cannot use (each then keeps its default).  Options it does not emulate are
    ignored; ``heartbeat-period-thread-class-<n>`` is checked but not acted on (a
    stub has no thread classes)."""
    defaults = SmlOptions()
    values: dict[str, int | bool] = {}
    notes: list[str] = []

    def invalid(name: str, text: str, valid: str, default: object) -> None:
        shown = str(default).lower()
        notes.append(f"[sml] {name}: invalid value {text!r} (valid: {valid}); using {shown}")

    period_valid = f"0, or {HEARTBEAT_PERIOD_MIN} to {HEARTBEAT_PERIOD_MAX}"
    for name, text in raw.items():
        if name == "heartbeat-period" or _THREAD_CLASS.fullmatch(name):
            period = _integer(text, HEARTBEAT_PERIOD_MIN, HEARTBEAT_PERIOD_MAX, zero=True)
            if period is None:
                invalid(name, text, period_valid, 0)
            elif name == "heartbeat-period":
                values["heartbeat_period"] = period
        elif name in ("hangup-restart", "autostart"):
            flag = parse_boolean(text)
            if flag is None:
                invalid(name, text, "true or false", getattr(defaults, name.replace("-", "_")))
            else:
                values[name.replace("-", "_")] = flag
        elif name == "suspending-wait-timeout":
            wait = _integer(text, SUSPENDING_WAIT_MIN, SUSPENDING_WAIT_MAX)
            if wait is None:
                invalid(name, text, f"{SUSPENDING_WAIT_MIN} to {SUSPENDING_WAIT_MAX}", 10)
            else:
                values["suspending_wait_timeout"] = wait
    return SmlOptions(**values), tuple(notes)  # type: ignore[arg-type]
