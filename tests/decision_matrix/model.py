"""The data types of the matrix: one case (the stub's startup inputs) and an outcome."""

from __future__ import annotations

from dataclasses import dataclass

OptionScalar = str | int | bool
"""An option value as written in the scenario file (a YAML scalar)."""

Change = tuple[float, str]
"""(scenario seconds, status) as the Management Layer records it."""


def format_time(seconds: float) -> str:
    """Whole seconds as ``60``, anything else as ``59.5``."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


@dataclass(frozen=True)
class ComponentScript:
    """How one internal component's initialization ends: ``result`` ``after`` seconds.

    ``after`` is None for ``hang``.  ``label`` names the timing class the case generator
    meant (``ok@at`` = completes at the timeout), for readable reports.
    """

    component: str
    result: str
    after: float | None = None
    label: str = ""

    def render(self) -> str:
        if self.after is None:
            return self.result
        return f"{self.result}@{format_time(self.after)}"


@dataclass(frozen=True)
class Case:
    """One run of the application under test (``SIPS_B``) beside its HA partner (``SIPS_A``).

    ``options`` holds only the ``[TServer]`` options that are set (an absent option takes
    its default); ``components`` only the listed components (an unlisted one completes at
    once).  ``role`` is the member's role in the configured HA pair; ``mode`` the mode it
    starts in.
    """

    origin: str
    mode: str
    role: str
    options: tuple[tuple[str, OptionScalar], ...]
    topology: str
    sip_port_state: str
    components: tuple[ComponentScript, ...]
    duration: float

    def option(self, name: str) -> OptionScalar | None:
        """The value written for option ``name``, or None when it is not set."""
        for option, value in self.options:
            if option == name:
                return value
        return None

    def key(self) -> tuple[object, ...]:
        """What makes two cases the same run (the origin and labels do not)."""
        return (
            self.mode,
            self.role,
            tuple(sorted((name, type(value).__name__, value) for name, value in self.options)),
            self.topology,
            self.sip_port_state,
            tuple((c.component, c.result, c.after) for c in self.components),
        )

    def describe(self) -> str:
        """One line: the inputs, as short as readable."""
        options = " ".join(f"{name}={value!r}" for name, value in self.options) or "no options"
        components = " ".join(f"{c.component}={c.render()}" for c in self.components) or "all ok@0"
        return (
            f"[{self.origin}] start {self.mode}, pair {self.role}; {options}; "
            f"{self.topology}; port {self.sip_port_state}; {components}"
        )


@dataclass(frozen=True)
class Outcome:
    """The status changes the Management Layer records, in order, and why (the doc rule)."""

    changes: tuple[Change, ...]
    rule: str = ""

    def render(self) -> str:
        return " -> ".join(f"{status}@{format_time(time)}" for time, status in self.changes)
