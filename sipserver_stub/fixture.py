"""The SIP Server stub fixture: which application it is and how its startup goes.

A fixture is a YAML mapping (a file for ``sipserver-stub FIXTURE``, or an entry of a
scenario's ``applications``), validated at once into a frozen :class:`StubFixture`.
An invalid fixture is a :class:`~lca_common.yamlsource.ConfigError`; an invalid
*option value* is not: the server copes with it (see :mod:`sipserver_stub.options`).
"""

from __future__ import annotations

import dataclasses
import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from lca_common.configuration import freeze_options
from lca_common.protocol.limits import MAX_HOST_BYTES, MAX_NAME_BYTES
from lca_common.protocol.messages import ExecutionMode
from lca_common.yamlsource import MappingNode, Node, load_yaml
from sipserver_stub.options import (
    TSERVER_SECTION,
    TServerOptions,
    parse_tserver_options,
    scalar_to_option_string,
)

__all__ = [
    "FIXTURE_KEYS",
    "STARTING_MODES",
    "Component",
    "ComponentPlan",
    "ComponentResult",
    "SipPortState",
    "StubFixture",
    "fixture_from_fields",
    "fixture_from_node",
    "load_fixture",
]


class Component(enum.StrEnum):
    """An internal SIP Server component whose initialization the backup check verifies."""

    T_CONTROLLER = "t-controller"
    SMART_PROXY = "smart-proxy"
    INTERACTION_PROXY = "interaction-proxy"
    OPERATIONAL_INFO = "operational-info"

    @property
    def label(self) -> str:
        """The component's name as the product documentation writes it."""
        return _COMPONENT_LABELS[self]


_COMPONENT_LABELS: Final[Mapping[Component, str]] = MappingProxyType(
    {
        Component.T_CONTROLLER: "T-Controller",
        Component.SMART_PROXY: "Smart Proxy",
        Component.INTERACTION_PROXY: "Interaction Proxy",
        Component.OPERATIONAL_INFO: "Operational Information thread",
    }
)


class ComponentResult(enum.StrEnum):
    """How a component's initialization ends."""

    OK = "ok"
    FAIL = "fail"
    HANG = "hang"


@dataclass(frozen=True)
class ComponentPlan:
    """A component's scripted initialization: its result, ``after`` seconds from start.

    ``after`` means nothing for ``hang`` (it never completes).
    """

    result: ComponentResult
    after: float = 0.0

    def __post_init__(self) -> None:
        if not self.after >= 0:
            raise ValueError(f"after must be >= 0, got {self.after}")


class SuspendReply(enum.StrEnum):
    """What the stub does when asked to stop gracefully (``EventSuspendApplication``)."""

    SUSPEND = "suspend"
    IGNORE = "ignore"


class SipPortState(enum.StrEnum):
    """Whether the stub's SIP port is already taken when it starts."""

    FREE = "free"
    IN_USE = "in-use"


STARTING_MODES: Final = (ExecutionMode.PRIMARY, ExecutionMode.BACKUP)
"""The modes a stub may start in."""

FIXTURE_KEYS: Final = frozenset(
    {
        "application",
        "host",
        "peer-host",
        "mode",
        "sip-port",
        "options",
        "components",
        "sip-port-state",
        "auto-restart",
        "on-suspend",
    }
)
"""The keys of a fixture mapping."""

_ALL_OK: Final = ComponentPlan(ComponentResult.OK)


def _complete_plans(
    components: Mapping[Component, ComponentPlan],
) -> Mapping[Component, ComponentPlan]:
    return MappingProxyType(
        {component: components.get(component, _ALL_OK) for component in Component}
    )


@dataclass(frozen=True)
class StubFixture:
    """One SIP Server stub: its name, host, starting mode, options and scripted startup.

    ``options`` and ``components`` are frozen on construction; every component is
    present (an unlisted one completes at once).
    """

    application: str
    mode: ExecutionMode = ExecutionMode.BACKUP
    host: str | None = None
    peer_host: str | None = None
    sip_port: int = 0
    options: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    components: Mapping[Component, ComponentPlan] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    sip_port_state: SipPortState = SipPortState.FREE
    source: str = ""
    auto_restart: bool = False
    """For the LCA that starts it (restart it when it exits unasked); the stub ignores it."""
    suspends: bool = True
    """``on-suspend: suspend`` (default): a graceful stop reports SUSPENDING, then exits;
    ``ignore``: it does not answer, to rehearse the suspending-wait-timeout."""

    def __post_init__(self) -> None:
        if self.mode not in STARTING_MODES:
            raise ValueError(f"a stub starts as PRIMARY or BACKUP, not {self.mode}")
        if not 0 <= self.sip_port <= 65535:
            raise ValueError(f"sip_port must be from 0 to 65535, got {self.sip_port}")
        object.__setattr__(self, "options", freeze_options(self.options))
        object.__setattr__(self, "components", _complete_plans(self.components))

    def tserver_options(self) -> tuple[TServerOptions, tuple[str, ...]]:
        """The effective ``[TServer]`` options and the log lines about ignored values."""
        return parse_tserver_options(self.options.get(TSERVER_SECTION, {}))

    def with_option(
        self, section: str, option: str, value: str | bool | int | float | None
    ) -> StubFixture:
        """A copy with one option set (a YAML scalar becomes its configuration string)."""
        options = {name: dict(values) for name, values in self.options.items()}
        options.setdefault(section, {})[option] = scalar_to_option_string(value)
        return dataclasses.replace(self, options=options)

    def to_document(self) -> dict[str, object]:
        """The fixture as a YAML-ready mapping that :func:`load_fixture` reads back."""
        document: dict[str, object] = {
            "application": self.application,
            "mode": self.mode.value.lower(),
        }
        if self.host is not None:
            document["host"] = self.host
        if self.peer_host is not None:
            document["peer-host"] = self.peer_host
        document["sip-port"] = self.sip_port
        document["options"] = {name: dict(values) for name, values in self.options.items()}
        document["components"] = {
            component.value: {"result": plan.result.value, "after": plan.after}
            for component, plan in self.components.items()
        }
        document["sip-port-state"] = self.sip_port_state.value
        if self.auto_restart:
            document["auto-restart"] = True
        if not self.suspends:
            document["on-suspend"] = "ignore"
        return document


def load_fixture(path: str | os.PathLike[str]) -> StubFixture:
    """Read and validate a fixture file; any problem is a ``ConfigError``."""
    return fixture_from_node(load_yaml(path))


def fixture_from_node(node: Node, *, source: str | None = None) -> StubFixture:
    """Validate a fixture mapping (a whole file, or an entry inside a scenario file).

    ``source`` defaults to the node's file.
    """
    return fixture_from_fields(node.mapping(FIXTURE_KEYS), source=source)


def fixture_from_fields(fields: MappingNode, *, source: str | None = None) -> StubFixture:
    """Build a fixture from a mapping whose keys were already checked against FIXTURE_KEYS.

    Used for merged mappings (a fixture file with overrides from a scenario).
    """
    return StubFixture(
        # the LCA registers no longer name or host (docs/protocol.md, section 7)
        application=fields.get_str("application", max_bytes=MAX_NAME_BYTES),
        mode=fields.get_enum("mode", ExecutionMode, ExecutionMode.BACKUP, choices=STARTING_MODES),
        host=fields.get_str("host", None, max_bytes=MAX_HOST_BYTES),
        peer_host=fields.get_str("peer-host", None),
        sip_port=fields.get_int("sip-port", 0, minimum=0, maximum=65535),
        options=_options(fields.get_mapping("options")),
        components=_components(
            fields.get_mapping("components", [c.value for c in Component], what="component")
        ),
        sip_port_state=fields.get_enum("sip-port-state", SipPortState, SipPortState.FREE),
        source=fields.file if source is None else source,
        auto_restart=fields.get_bool("auto-restart", False),
        suspends=fields.get_enum("on-suspend", SuspendReply, SuspendReply.SUSPEND)
        is SuspendReply.SUSPEND,
    )


def _options(sections: MappingNode) -> dict[str, dict[str, str]]:
    options: dict[str, dict[str, str]] = {}
    for section in sections:
        values = sections.get_mapping(section)
        options[section] = {
            option: scalar_to_option_string(value.as_scalar()) for option, value in values.items()
        }
    return options


def _components(plans: MappingNode) -> dict[Component, ComponentPlan]:
    result: dict[Component, ComponentPlan] = {}
    for name, node in plans.items():
        if node.is_scalar:
            result[Component(name)] = ComponentPlan(node.as_enum(ComponentResult))
            continue
        plan = node.mapping(["result", "after"], required=["result"])
        result[Component(name)] = ComponentPlan(
            plan.get_enum("result", ComponentResult),
            plan.get_number("after", 0.0, minimum=0),
        )
    return result
