"""What the emulator knows of a configured application before it runs.

The Management Layer starts *applications*: a SIP Server stub, a vendor's program,
anything that speaks the wire protocol.  It keeps each one's configuration (as
Config Server would) and hands it to a launcher when the application starts; it
never looks inside ``program``, which only the launcher understands.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType

from lca_common.configuration import Options, freeze_options
from lca_emulator.sml import SML_SECTION, SmlOptions, parse_sml_options


@dataclass(frozen=True)
class CommandProgram:
    """An outside program the LCA runs as it is: ``argv`` started in ``cwd``.

    It speaks the wire protocol itself; it learns where the LCA listens from its
    environment (``LCA_ENDPOINT``, ``LCA_APPLICATION``, ``LCA_HOST``).
    """

    argv: tuple[str, ...]
    cwd: str

    def __post_init__(self) -> None:
        if not self.argv:
            raise ValueError("a command needs at least the program to run")


@dataclass(frozen=True)
class ApplicationSpec:
    """One configured application: its name, host, options and how to start it.

    ``options`` is its configuration, read by the application at each start;
    ``program`` is what its launcher needs to start it (the harness passes a stub
    fixture; the emulator itself does not read it).
    """

    name: str
    host: str | None = None
    options: Options = field(default_factory=lambda: MappingProxyType({}), hash=False)
    program: object = field(default=None, compare=False, hash=False)
    auto_restart: bool = False
    """Restart it when it exits without being asked to (the vendor's auto-restart)."""
    external: bool = False
    """Started by someone else: the LCA waits for it to register and never stops,
    kills or hangs it (``program`` is then None)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", freeze_options(self.options))

    def sml(self) -> tuple[SmlOptions, tuple[str, ...]]:
        """Its ``[sml]`` options, and the notes about values the LCA cannot use."""
        return parse_sml_options(self.options.get(SML_SECTION, {}))

    def with_option(self, section: str, option: str, value: str) -> ApplicationSpec:
        """A copy with one option set; it applies at the application's next start."""
        options = {name: dict(values) for name, values in self.options.items()}
        options.setdefault(section, {})[option] = value
        return dataclasses.replace(self, options=options)
