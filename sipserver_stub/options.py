"""The ``[TServer]`` options of the backup startup check, read the way SIP Server reads them.

Option values are configuration strings.  Names, defaults and valid values follow
the vendor's documentation of the backup initialization check.  A value the server
cannot use is not a fixture error: the stub logs it and takes the option's default.
That fallback is our choice: no vendor document says what SIP Server does with an
invalid value (``docs/sipserver-stub.md``).
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from lca_common.configuration import parse_boolean, parse_integer
from lca_common.yamlsource import suggestion

__all__ = [
    "OPTION_SPECS",
    "TSERVER_SECTION",
    "OptionKind",
    "OptionSpec",
    "TServerOptions",
    "parse_tserver_options",
    "scalar_to_option_string",
]

TSERVER_SECTION: Final = "TServer"


class OptionKind(enum.Enum):
    """How an option's configuration string is read."""

    BOOLEAN = "boolean"
    INTEGER = "integer"


@dataclass(frozen=True)
class OptionSpec:
    """One documented option: its name, type, default and valid values."""

    name: str
    kind: OptionKind
    default: bool | int
    minimum: int | None = None
    maximum: int | None = None
    section: str = TSERVER_SECTION

    @property
    def valid_values(self) -> str:
        """The valid values in words, for log lines and docs."""
        if self.kind is OptionKind.BOOLEAN:
            return "true or false"
        return f"an integer from {self.minimum} to {self.maximum}"

    @property
    def default_text(self) -> str:
        """The default as a configuration string."""
        return scalar_to_option_string(self.default)

    def parse(self, text: str) -> bool | int | None:
        """The value of a configuration string, or None when it is not a valid value."""
        if self.kind is OptionKind.BOOLEAN:
            return parse_boolean(text)
        return parse_integer(text, self.minimum, self.maximum)


OPTION_SPECS: Final[Mapping[str, OptionSpec]] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            OptionSpec("backup-init-check", OptionKind.BOOLEAN, False),
            OptionSpec(
                "backup-init-check-timeout",
                OptionKind.INTEGER,
                60,
                minimum=15,
                maximum=3600,
            ),
            OptionSpec("backup-sip-port-check", OptionKind.BOOLEAN, True),
            OptionSpec("control-vip-scripts", OptionKind.BOOLEAN, False),
        )
    }
)
"""The documented ``[TServer]`` options, by name, in the documentation's order."""


@dataclass(frozen=True)
class TServerOptions:
    """The effective ``[TServer]`` options of the backup startup check; the defaults are
    those of :data:`OPTION_SPECS`, and each field is named after its option."""

    backup_init_check: bool = bool(OPTION_SPECS["backup-init-check"].default)
    backup_init_check_timeout: int = int(OPTION_SPECS["backup-init-check-timeout"].default)
    backup_sip_port_check: bool = bool(OPTION_SPECS["backup-sip-port-check"].default)
    control_vip_scripts: bool = bool(OPTION_SPECS["control-vip-scripts"].default)


def parse_tserver_options(raw: Mapping[str, str]) -> tuple[TServerOptions, tuple[str, ...]]:
    """Read a ``[TServer]`` section; invalid values fall back to their defaults.

    Returns the options and the log lines the server writes about what it ignored.
    """
    values: dict[str, bool | int] = {}
    log: list[str] = []
    for name, text in raw.items():
        spec = OPTION_SPECS.get(name)
        if spec is None:
            hint = suggestion(name, OPTION_SPECS, what="options")
            hint = f"; {hint}" if hint.startswith("did you mean") else ""
            log.append(f"[{TSERVER_SECTION}] unknown option {name!r} ignored{hint}")
            continue
        value = spec.parse(text)
        if value is None:
            log.append(
                f"[{TSERVER_SECTION}] {name}: invalid value {text!r} "
                f"(valid: {spec.valid_values}); using the default {spec.default_text}"
            )
            continue
        values[name.replace("-", "_")] = value
    return TServerOptions(**values), tuple(log)  # type: ignore[arg-type]


def scalar_to_option_string(value: object) -> str:
    """The configuration string for a YAML scalar: ``True`` -> ``"true"``, ``60`` -> ``"60"``.

    Null becomes the empty string; dates use ISO format.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)
