"""The ``[TServer]`` options of the backup startup check, read the way SIP Server reads them.

Option values are configuration strings.  A value the server cannot use is not a
fixture error: the server logs it and takes the documented default, as the product
does.  Names, defaults and valid values follow the vendor's documentation of the
backup initialization check.
"""

from __future__ import annotations

import datetime
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from lca_emulator.yamlsource import suggestion

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

_DECIMAL = re.compile(r"[+-]?[0-9]{1,12}")


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
    restricted: bool = False
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
        value = text.strip()
        if self.kind is OptionKind.BOOLEAN:
            folded = value.casefold()
            return True if folded == "true" else False if folded == "false" else None
        if not _DECIMAL.fullmatch(value):
            return None
        number = int(value)
        if (self.minimum is not None and number < self.minimum) or (
            self.maximum is not None and number > self.maximum
        ):
            return None
        return number


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
                restricted=True,
            ),
            OptionSpec("backup-sip-port-check", OptionKind.BOOLEAN, True),
            OptionSpec("control-vip-scripts", OptionKind.BOOLEAN, False),
        )
    }
)
"""The documented ``[TServer]`` options, by name, in the documentation's order."""


@dataclass(frozen=True)
class TServerOptions:
    """The effective ``[TServer]`` options of the backup startup check."""

    backup_init_check: bool = False
    backup_init_check_timeout: int = 60
    backup_sip_port_check: bool = True
    control_vip_scripts: bool = False

    @property
    def sip_port_check_enabled(self) -> bool:
        """Whether a backup probes its SIP port: with the init check, and no VIP scripts."""
        return (
            self.backup_init_check and self.backup_sip_port_check and not self.control_vip_scripts
        )


def parse_tserver_options(raw: Mapping[str, str]) -> tuple[TServerOptions, tuple[str, ...]]:
    """Read a ``[TServer]`` section; invalid values fall back to their defaults.

    Returns the options and the log lines the server writes about what it ignored.
    """
    values: dict[str, bool | int] = {name: spec.default for name, spec in OPTION_SPECS.items()}
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
        values[name] = value
    options = TServerOptions(
        backup_init_check=bool(values["backup-init-check"]),
        backup_init_check_timeout=int(values["backup-init-check-timeout"]),
        backup_sip_port_check=bool(values["backup-sip-port-check"]),
        control_vip_scripts=bool(values["control-vip-scripts"]),
    )
    return options, tuple(log)


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
