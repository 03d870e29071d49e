"""Scenario files (what ``lca-emulator run`` executes) and the ``serve --config`` file.

Both are YAML, validated at once into frozen dataclasses: the applications (stub
fixtures, inline or from fixture files), the HA pairs, and for a scenario its
duration, timed events and expectations.  Every problem is a ``ConfigError``
naming the file, the line and the key path.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from lca_emulator.protocol.messages import ApplicationStatus, ExecutionMode
from lca_emulator.registry import JournalEvent
from lca_emulator.scs import HaPair
from lca_emulator.yamlsource import (
    ConfigError,
    MappingNode,
    Node,
    format_number,
    load_yaml,
    suggestion,
)
from sipserver_stub.fixture import FIXTURE_KEYS, StubFixture, fixture_from_fields
from sipserver_stub.options import scalar_to_option_string

__all__ = [
    "SCENARIO_KEYS",
    "EventAction",
    "Expectation",
    "ExpectationKind",
    "HaPair",
    "ManagementConfig",
    "Scenario",
    "ScenarioEvent",
    "discover_scenarios",
    "load_management_config",
    "load_scenario",
]

SCENARIO_KEYS: Final = (
    "name",
    "duration",
    "heartbeat",
    "applications",
    "ha-pairs",
    "events",
    "expect",
)
"""The top-level keys of a scenario file (a ``serve --config`` file ignores the rest)."""

_SCENARIO_MARKERS: Final = frozenset({"duration", "expect"})
_APPLICATION_ENTRY_KEYS: Final = FIXTURE_KEYS | {"fixture"}


class EventAction(enum.StrEnum):
    """What a scenario event does to an application."""

    STOP = "stop"
    KILL = "kill"
    START = "start"
    RESTART = "restart"
    SET_OPTION = "set-option"
    SWITCHOVER = "switchover"
    """A manual switchover of the application's HA pair (``RequestSwitchover``)."""
    HANG = "hang"
    """The application stops answering (SIGSTOP for a process): only a heartbeat sees it."""


@dataclass(frozen=True)
class ScenarioEvent:
    """An action at ``at`` seconds; ``set-option`` also carries section, option and value."""

    at: float
    action: EventAction
    application: str
    section: str | None = None
    option: str | None = None
    value: str | None = None
    line: int = 0


class ExpectationKind(enum.StrEnum):
    """When an expectation is checked."""

    WITHIN = "within"
    AT = "at"
    NEVER = "never"
    AT_END = "at-end"


@dataclass(frozen=True)
class Expectation:
    """Something the run must show about one application's status, mode or journal.

    Exactly one of ``status``, ``mode`` and ``event`` (a journal event such as
    ``switchover-refused``) is set; ``time`` is set for ``within`` and ``at`` only.
    ``text`` is a short rendering for reports (filled in when empty).
    """

    application: str
    kind: ExpectationKind
    status: ApplicationStatus | None = None
    mode: ExecutionMode | None = None
    time: float | None = None
    line: int = 0
    text: str = ""
    event: JournalEvent | None = None

    def __post_init__(self) -> None:
        if [self.status, self.mode, self.event].count(None) != 2:
            raise ValueError("an expectation has exactly one of status, mode and event")
        if self.event is not None and self.kind is ExpectationKind.AT_END:
            raise ValueError("a journal event cannot be expected at-end")
        timed = self.kind in (ExpectationKind.WITHIN, ExpectationKind.AT)
        if timed != (self.time is not None):
            raise ValueError(f"time is required for within/at and only for them: {self}")
        if not self.text:
            object.__setattr__(self, "text", self._render())

    def _render(self) -> str:
        if self.kind is ExpectationKind.NEVER:
            if self.event is not None:
                return f"{self.application} never {self.event}"
            if self.status is not None:
                return f"{self.application} never {self.status}"
            word = "mode UNKNOWN" if self.mode is ExecutionMode.UNKNOWN else str(self.mode)
            return f"{self.application} never {word}"
        subject = f"status {self.status}" if self.status is not None else f"mode {self.mode}"
        if self.event is not None:
            subject = f"event {self.event}"
        if self.kind is ExpectationKind.AT_END:
            return f"{self.application} {subject} at end"
        assert self.time is not None
        if self.kind is ExpectationKind.WITHIN:
            return f"{self.application} {subject} within {format_number(self.time)}s"
        return f"{self.application} {subject} at t={format_number(self.time)}"


@dataclass(frozen=True)
class Scenario:
    """A validated scenario file: what runs, for how long, what happens and what must hold.

    ``events`` are sorted by time (ties keep file order).
    """

    name: str
    path: str
    duration: float
    applications: tuple[StubFixture, ...]
    ha_pairs: tuple[HaPair, ...] = ()
    events: tuple[ScenarioEvent, ...] = ()
    expectations: tuple[Expectation, ...] = ()
    heartbeat: float | None = None
    """The LCA's heartbeat period (our extension): an application silent longer is hung."""


@dataclass(frozen=True)
class ManagementConfig:
    """The ``serve --config`` file: the applications the emulator starts and the HA pairs."""

    applications: tuple[StubFixture, ...]
    ha_pairs: tuple[HaPair, ...]
    path: str


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate a scenario file; any problem is a ``ConfigError``."""
    root = load_yaml(path).mapping(SCENARIO_KEYS, required=["duration"])
    duration = root.get_number("duration", positive=True)
    name = root.get_str("name", Path(root.file).stem)
    heartbeat = root.get_number("heartbeat", None, positive=True)
    applications, pairs = _applications_and_pairs(root)
    names = [fixture.application for fixture in applications]
    events = [_event(node, duration, names) for node in root.get_list("events")]
    expectations = [_expectation(node, duration, names) for node in root.get_list("expect")]
    return Scenario(
        name=name,
        path=root.file,
        duration=duration,
        applications=applications,
        ha_pairs=pairs,
        events=tuple(sorted(events, key=lambda event: event.at)),
        expectations=tuple(expectations),
        heartbeat=heartbeat,
    )


def load_management_config(path: str | os.PathLike[str]) -> ManagementConfig:
    """Read a ``serve --config`` file: the applications and HA pairs of a scenario file.

    ``name``, ``duration``, ``events`` and ``expect`` are accepted and ignored.
    """
    root = load_yaml(path).mapping(SCENARIO_KEYS)
    applications, pairs = _applications_and_pairs(root)
    return ManagementConfig(applications=applications, ha_pairs=pairs, path=root.file)


def discover_scenarios(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The scenario files named by ``paths``: a file as is, a folder searched recursively.

    In a folder only ``*.yaml``/``*.yml`` files with a top-level ``duration`` or
    ``expect`` key count (fixture files live beside scenarios); hidden ones are skipped.
    """
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            candidates = sorted(
                candidate
                for candidate in path.rglob("*")
                if candidate.suffix in (".yaml", ".yml")
                and candidate.is_file()
                and not any(part.startswith(".") for part in candidate.relative_to(path).parts)
            )
            found.update((candidate, None) for candidate in candidates if _is_scenario(candidate))
        elif path.exists():
            found[path] = None
        else:
            raise ConfigError(str(path), None, "", "no such file or directory")
    return list(found)


def _is_scenario(path: Path) -> bool:
    """Every YAML file in a folder is a scenario except stub fixtures (a top-level
    ``application`` key): a mistyped scenario is reported, never silently skipped.
    A file that cannot be read or parsed is kept too, so that running it says why."""
    try:
        root = load_yaml(path)
        if not root.is_mapping:
            return False
        keys = set(root.mapping())
    except ConfigError:
        return True
    return bool(keys & _SCENARIO_MARKERS) or "application" not in keys


def _applications_and_pairs(
    root: MappingNode,
) -> tuple[tuple[StubFixture, ...], tuple[HaPair, ...]]:
    fixtures: dict[str, StubFixture] = {}
    first_entry: dict[str, str] = {}
    for entry in root.get_list("applications"):
        fixture = _application(entry)
        if fixture.application in fixtures:
            raise entry.error(
                f"duplicate application {fixture.application!r} "
                f"(already defined by {first_entry[fixture.application]})"
            )
        fixtures[fixture.application] = fixture
        first_entry[fixture.application] = f"{entry.path} at line {entry.line}"
    pairs = _ha_pairs(root, list(fixtures))
    for pair in pairs:
        for member, other in ((pair.primary, pair.backup), (pair.backup, pair.primary)):
            if fixtures[member].peer_host is None:
                fixtures[member] = dataclasses.replace(
                    fixtures[member], peer_host=fixtures[other].host
                )
    return tuple(fixtures.values()), pairs


def _application(entry: Node) -> StubFixture:
    fields = entry.mapping(_APPLICATION_ENTRY_KEYS)
    reference = fields.get("fixture")
    if reference is None:
        return fixture_from_fields(fields)
    target = Path(fields.file).parent / reference.as_str()
    if not target.is_file():
        raise reference.error(f"fixture file not found: {target}")
    base = load_yaml(target).mapping(FIXTURE_KEYS)
    return fixture_from_fields(fields.without("fixture").layered_over(base), source=str(target))


def _ha_pairs(root: MappingNode, names: list[str]) -> tuple[HaPair, ...]:
    pairs: list[HaPair] = []
    paired: dict[str, str] = {}
    for node in root.get_list("ha-pairs"):
        fields = node.mapping(["primary", "backup", "name"], required=["primary", "backup"])
        primary = _known_application(fields, "primary", names)
        backup = _known_application(fields, "backup", names)
        if primary == backup:
            raise fields.require("backup").error(
                f"the backup must differ from the primary ({primary!r})"
            )
        pair = HaPair(primary, backup, fields.get_str("name", ""))
        for role in ("primary", "backup"):
            member = primary if role == "primary" else backup
            if member in paired:
                raise fields.require(role).error(
                    f"{member!r} is already in HA pair {paired[member]!r}; "
                    "an application is in at most one pair"
                )
            paired[member] = pair.name
        if any(other.name == pair.name for other in pairs):
            raise node.error(f"duplicate HA pair name {pair.name!r}")
        pairs.append(pair)
    return tuple(pairs)


def _known_application(fields: MappingNode, key: str, names: list[str]) -> str:
    name = fields.get_str(key)
    if name not in names:
        hint = suggestion(name, names, what="applications")
        raise fields.require(key).error(f"unknown application {name!r}; {hint}")
    return name


def _time(fields: MappingNode, key: str, duration: float) -> float:
    time = fields.get_number(key, minimum=0)
    if time > duration:
        raise fields.require(key).error(
            f"expected a time from 0 to {format_number(duration)} (the scenario's duration), "
            f"got {format_number(time)}"
        )
    return time


def _exactly_one(fields: MappingNode, keys: Sequence[str], what: str) -> str:
    present = [key for key in keys if key in fields]
    if len(present) == 1:
        return present[0]
    choices = ", ".join(keys)
    if not present:
        raise fields.error(f"{what} needs exactly one of {choices}")
    both = " and ".join(repr(key) for key in present)
    raise fields.require(present[1]).error(f"{what} takes exactly one of {choices}, not {both}")


_EVENT_ACTIONS: Final = tuple(action.value for action in EventAction)


def _event(node: Node, duration: float, names: list[str]) -> ScenarioEvent:
    fields = node.mapping(["at", *_EVENT_ACTIONS], required=["at"])
    action = EventAction(_exactly_one(fields, _EVENT_ACTIONS, "an event"))
    at = _time(fields, "at", duration)
    if action is not EventAction.SET_OPTION:
        return ScenarioEvent(
            at, action, _known_application(fields, action.value, names), line=fields.line
        )
    change = fields.require(action.value).mapping(
        ["application", "section", "option", "value"],
        required=["application", "section", "option", "value"],
    )
    return ScenarioEvent(
        at,
        action,
        _known_application(change, "application", names),
        section=change.get_str("section"),
        option=change.get_str("option"),
        value=scalar_to_option_string(change.require("value").as_scalar()),
        line=fields.line,
    )


EXPECTABLE_EVENTS: Final = (
    JournalEvent.REGISTERED,
    JournalEvent.DISCONNECTED,
    JournalEvent.EXITED,
    JournalEvent.KILLED,
    JournalEvent.START_FAILED,
    JournalEvent.HUNG,
    JournalEvent.RECOVERED,
    JournalEvent.SWITCHOVER,
    JournalEvent.SWITCHOVER_REFUSED,
)
"""The journal events an expectation may name (``event:`` or ``never:``)."""

_EXPECTATION_WHEN: Final = tuple(kind.value for kind in ExpectationKind)
_NEVER_MODES: Final = (ExecutionMode.PRIMARY, ExecutionMode.BACKUP, ExecutionMode.EXITING)


def _expectation(node: Node, duration: float, names: list[str]) -> Expectation:
    fields = node.mapping(
        ["application", "status", "mode", "event", *_EXPECTATION_WHEN], required=["application"]
    )
    application = _known_application(fields, "application", names)
    kind = ExpectationKind(_exactly_one(fields, _EXPECTATION_WHEN, "an expectation"))
    status: ApplicationStatus | None = None
    mode: ExecutionMode | None = None
    event: JournalEvent | None = None
    time: float | None = None
    if kind is ExpectationKind.NEVER:
        for key in ("status", "mode", "event"):
            if key in fields:
                raise fields.require(key).error(
                    f"'never' names the status, mode or event itself; remove {key!r}"
                )
        status, mode, event = _never_target(fields.require("never"))
    else:
        subject = _exactly_one(fields, ["status", "mode", "event"], "an expectation")
        if subject == "status":
            status = fields.get_enum("status", ApplicationStatus)
        elif subject == "mode":
            mode = fields.get_enum("mode", ExecutionMode)
        else:
            event = fields.get_enum("event", JournalEvent, choices=EXPECTABLE_EVENTS)
            if kind is ExpectationKind.AT_END:
                raise fields.require("at-end").error(
                    "a journal event happens at a time: use within or at"
                )
        if kind is ExpectationKind.AT_END:
            if not fields.get_bool("at-end"):
                raise fields.require("at-end").error(
                    "at-end must be true (use within or at for other times)"
                )
        else:
            time = _time(fields, kind.value, duration)
    return Expectation(application, kind, status, mode, time, line=fields.line, event=event)


_Target = tuple[ApplicationStatus | None, ExecutionMode | None, JournalEvent | None]


def _never_target(node: Node) -> _Target:
    """``never: X``: a mode if X is PRIMARY, BACKUP or EXITING, a journal event such
    as ``switchover``, else a status."""
    choices: list[enum.StrEnum] = [*ApplicationStatus, *_NEVER_MODES, *EXPECTABLE_EVENTS]
    target = node.as_enum(enum.StrEnum, choices)
    if isinstance(target, ExecutionMode):
        return None, target, None
    if isinstance(target, JournalEvent):
        return None, None, target
    assert isinstance(target, ApplicationStatus)
    return target, None, None
