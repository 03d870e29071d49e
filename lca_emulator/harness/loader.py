"""Scenario files (what ``lca-emulator run`` executes) and the ``serve --config`` file.

Both are YAML, validated at once into the frozen dataclasses of
:mod:`lca_emulator.harness.model`: the applications (stub fixtures, inline or from
fixture files), the HA pairs, and for a scenario its duration, timed events and
expectations.  Every problem is a ``ConfigError`` naming the file, the line and the
key path.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from lca_common.protocol.limits import (
    MAX_HOST_BYTES,
    MAX_NAME_BYTES,
    MAX_SERVICE_BYTES,
    MIN_HEARTBEAT,
)
from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_common.yamlsource import (
    ConfigError,
    MappingNode,
    Node,
    format_number,
    load_yaml,
    parse_yaml,
    suggestion,
)
from lca_emulator.applications import CommandProgram
from lca_emulator.harness.model import (
    EXPECTABLE_EVENTS,
    HOST_ACTIONS,
    MAX_VIRTUAL_STEPS,
    EventAction,
    Expectation,
    ExpectationKind,
    HaPair,
    HostConfig,
    LinkCut,
    ManagementConfig,
    OutsideApplication,
    Scenario,
    ScenarioEvent,
    ScsOptions,
    VipScripts,
)
from lca_emulator.journal import JournalEvent
from lca_emulator.scs.server import (
    HAFLIP_OFF,
    MAX_HAFLIP_DETECT_TIMEOUT,
    MIN_HAFLIP_DETECT_TIMEOUT,
)
from lca_emulator.sml import SML_SECTION, parse_sml_options
from sipserver_stub.fixture import FIXTURE_KEYS, StubFixture, fixture_from_fields
from sipserver_stub.options import (
    TSERVER_SECTION,
    parse_tserver_options,
    scalar_to_option_string,
)

__all__ = ["SCENARIO_KEYS", "SERVE_CONFIG_KEYS", "load_management_config", "load_scenario"]

SCENARIO_KEYS: Final = (
    "name",
    "duration",
    "heartbeat",
    "hosts",
    "applications",
    "ha-pairs",
    "scs",
    "events",
    "expect",
)
"""The top-level keys of a scenario file (a ``serve --config`` file ignores the rest)."""

_OUTSIDE_KEYS: Final = ("command", "external")
"""The keys that make an application an outside program rather than a stub."""

_APPLICATION_ENTRY_KEYS: Final = FIXTURE_KEYS | {"fixture", *_OUTSIDE_KEYS}

_OUTSIDE_ENTRY_KEYS: Final = ("application", "host")
"""What an outside application takes besides ``command`` or ``external``."""


def load_scenario(path: str | os.PathLike[str], *, strict: bool = False) -> Scenario:
    """Read and validate a scenario file; any problem is a ``ConfigError``.

    ``strict``: an option the server would ignore (an unknown name, an invalid value)
    is a file error too, instead of a note.
    """
    root = load_yaml(path).mapping(SCENARIO_KEYS, required=["duration"])
    duration = root.get_number("duration", positive=True)
    name = root.get_str("name", Path(root.file).stem)
    heartbeat = root.get_number("heartbeat", None, minimum=MIN_HEARTBEAT)  # see protocol.md
    applications, outside, pairs = _applications_and_pairs(root, strict=strict)
    _check_heartbeats(root, duration, heartbeat, applications)
    names = [fixture.application for fixture in applications]
    names += [app.application for app in outside]
    hosts = _hosts(root, [*applications, *outside], serve=False)
    host_names = [host.name for host in hosts]
    events = [_event(node, duration, names, host_names) for node in root.get_list("events")]
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
        scs=_scs_options(root),
        outside=outside,
        hosts=hosts,
    )


def _check_heartbeats(
    root: MappingNode,
    duration: float,
    heartbeat: float | None,
    applications: Sequence[StubFixture],
) -> None:
    """Refuse a run whose heartbeats alone would take more than MAX_VIRTUAL_STEPS steps of
    virtual time (``duration: 1e9`` with ``heartbeat: 10`` is 3x10^8): each stub beats
    three times per period, its ``[sml] heartbeat-period`` or else the scenario's."""
    beats_per_second = 0.0
    for fixture in applications:
        sml, _ = parse_sml_options(fixture.options.get(SML_SECTION, {}))
        period = sml.heartbeat_period or heartbeat
        if period:
            beats_per_second += 3 / period
    beats = duration * beats_per_second
    if beats > MAX_VIRTUAL_STEPS:
        raise root.require("duration").error(
            f"{format_number(duration)} s of heartbeats is about {beats:.2g} steps of virtual "
            f"time (each stub beats 3 times per heartbeat period), more than "
            f"{MAX_VIRTUAL_STEPS:,}, the most a run takes; shorten the duration or lengthen "
            "the heartbeat"
        )


SERVE_CONFIG_KEYS: Final = ("name", "hosts", "applications", "ha-pairs", "scs")
"""The top-level keys a ``serve --config`` file takes."""


def load_management_config(path: str | os.PathLike[str]) -> ManagementConfig:
    """Read a ``serve --config`` file: the applications, HA pairs and SCS options.

    A scenario file's ``duration``, ``heartbeat``, ``events`` and ``expect`` are refused
    by name: ``serve`` would not act on them (use ``serve --heartbeat`` for the one).
    """
    root = load_yaml(path).mapping(SCENARIO_KEYS)
    for key in root:
        if key not in SERVE_CONFIG_KEYS:
            hint = " (use serve --heartbeat)" if key == "heartbeat" else ""
            raise root.require(key).error(
                f"'{key}' belongs to scenario runs (lca-emulator run); serve --config takes "
                f"{', '.join(SERVE_CONFIG_KEYS)}{hint}"
            )
    applications, outside, pairs = _applications_and_pairs(root)
    return ManagementConfig(
        applications=applications,
        ha_pairs=pairs,
        path=root.file,
        scs=_scs_options(root),
        outside=outside,
        hosts=_hosts(root, [*applications, *outside], serve=True),
    )


_SCS_KEYS: Final = (
    "promote-unavailable-backup",
    "disconnect-switchover-timeout",
    "haflip-detect-timeout",
)


def _scs_options(root: MappingNode) -> ScsOptions:
    fields = root.get_mapping("scs", _SCS_KEYS)
    haflip = fields.get_int("haflip-detect-timeout", 10)
    if haflip != HAFLIP_OFF and not (
        MIN_HAFLIP_DETECT_TIMEOUT <= haflip <= MAX_HAFLIP_DETECT_TIMEOUT
    ):
        raise fields.require("haflip-detect-timeout").error(
            f"expected -1 (off) or {MIN_HAFLIP_DETECT_TIMEOUT} to {MAX_HAFLIP_DETECT_TIMEOUT} "
            f"seconds (the vendor's valid values), got {haflip}"
        )
    return ScsOptions(
        promote_unavailable_backup=fields.get_bool("promote-unavailable-backup", False),
        disconnect_switchover_timeout=fields.get_number(
            "disconnect-switchover-timeout", 0.0, minimum=0
        ),
        haflip_detect_timeout=haflip,
    )


def _hosts(
    root: MappingNode, applications: Sequence[StubFixture | OutsideApplication], *, serve: bool
) -> tuple[HostConfig, ...]:
    """The ``hosts:`` list, then every other host an application names.  ``lca`` (where
    the host's LCA listens) is for ``serve`` only: a run puts every LCA on port 0."""
    hosts: dict[str, HostConfig] = {}
    for node in root.get_list("hosts"):
        fields = node.mapping(["name", "lca", "vip-scripts"], required=["name"])
        name = fields.get_str("name")
        if name in hosts:
            raise fields.require("name").error(f"duplicate host {name!r}")
        lca = fields.get_str("lca", None)
        if lca is not None and not serve:
            raise fields.require("lca").error(
                "'lca' (where the host's LCA listens) is for serve --config; a scenario run "
                "puts every LCA on a free port"
            )
        if lca is not None:
            _check_server_endpoint(fields.require("lca"), lca)
        scripts = fields.get("vip-scripts")
        hosts[name] = HostConfig(
            name,
            lca,
            _vip_scripts(fields),
            file=fields.file,
            line=scripts.line if scripts is not None else 0,
            key=scripts.path if scripts is not None else "",
        )
    for application in applications:
        if application.host is not None and application.host not in hosts:
            hosts[application.host] = HostConfig(application.host)
    return tuple(hosts.values())


def _applications_and_pairs(
    root: MappingNode, *, strict: bool = False
) -> tuple[tuple[StubFixture, ...], tuple[OutsideApplication, ...], tuple[HaPair, ...]]:
    fixtures: dict[str, StubFixture] = {}
    outside: dict[str, OutsideApplication] = {}
    first_entry: dict[str, str] = {}
    for entry in root.get_list("applications"):
        application: StubFixture | OutsideApplication | None = _outside_application(entry)
        if application is None:
            application = _application(entry, strict=strict)
        name = application.application
        if name in first_entry:
            raise entry.error(
                f"duplicate application {name!r} (already defined by {first_entry[name]})"
            )
        if isinstance(application, OutsideApplication):
            outside[name] = application
        else:
            fixtures[name] = application
        first_entry[name] = f"{entry.path} at line {entry.line}"
    pairs = _ha_pairs(root, list(first_entry))
    hosts = {name: app.host for name, app in outside.items()}
    hosts.update((name, fixture.host) for name, fixture in fixtures.items())
    for pair in pairs:
        for member, other in ((pair.primary, pair.backup), (pair.backup, pair.primary)):
            if member in fixtures and fixtures[member].peer_host is None:
                fixtures[member] = dataclasses.replace(fixtures[member], peer_host=hosts[other])
    return tuple(fixtures.values()), tuple(outside.values()), pairs


def _outside_application(entry: Node) -> OutsideApplication | None:
    """An entry with ``command`` or ``external: true``; None for a stub entry.

    Our choice: an outside program takes only its name and host; a stub's keys
    (components, sip-port, ...) would mean nothing to it.
    """
    fields = entry.mapping(_APPLICATION_ENTRY_KEYS)
    present = [key for key in _OUTSIDE_KEYS if key in fields]
    if not present:
        return None
    if len(present) == 2:
        raise fields.require("external").error(
            "an application has either a 'command' (the LCA runs it) or 'external: true' "
            "(it starts by itself), not both"
        )
    key = present[0]
    if key == "external" and not fields.get_bool("external"):
        return None  # external: false is a stub like any other
    for other in fields:
        if other not in _OUTSIDE_ENTRY_KEYS and other != key:
            raise fields.require(other).error(
                f"{other!r} is for SIP Server stubs; an application with {key!r} takes "
                f"{', '.join(_OUTSIDE_ENTRY_KEYS)} and {key}"
            )
    command: CommandProgram | None = None
    if key == "command":
        node = fields.require("command")
        items = node.as_list()
        if not items:
            raise node.error("expected a non-empty list: the program, then its arguments")
        argv = tuple(item.as_str() for item in items)
        command = CommandProgram(argv, str(Path(fields.file).parent.absolute()))
    node = fields.require(key)
    return OutsideApplication(
        fields.get_str("application", max_bytes=MAX_NAME_BYTES),
        host=fields.get_str("host", None, max_bytes=MAX_HOST_BYTES),
        command=command,
        file=fields.file,
        line=node.line,
        key=node.path,
    )


def _application(entry: Node, *, strict: bool = False) -> StubFixture:
    fields = entry.mapping(_APPLICATION_ENTRY_KEYS)
    reference = fields.get("fixture")
    source: str | None = None
    if reference is not None:
        target = Path(fields.file).parent / reference.as_str()
        try:
            base = load_yaml(target).mapping(FIXTURE_KEYS)
        except ConfigError as e:
            if e.line is not None:
                raise  # a fault inside the fixture file, at its own line
            raise reference.error(f"fixture file {target}: {e.problem}") from None
        fields, source = fields.without("fixture").layered_over(base), str(target)
    fixture = fixture_from_fields(fields, source=source)
    if strict:
        _refuse_ignored_options(fields)
    return fixture


def _refuse_ignored_options(fields: MappingNode) -> None:
    """``--strict``: an option the server would ignore is an error at its own line."""
    sections = fields.get_mapping("options")
    readers = {TSERVER_SECTION: parse_tserver_options, SML_SECTION: parse_sml_options}
    for section, read in readers.items():
        if section not in sections:
            continue
        for option, node in sections.get_mapping(section).items():
            text = scalar_to_option_string(node.as_scalar())
            for problem in read({option: text})[1]:
                raise node.error(f"{problem} (an error under --strict)")


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
        pair = HaPair(primary, backup, fields.get_str("name", "", max_bytes=MAX_SERVICE_BYTES))
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


def _known_application(
    fields: MappingNode, key: str, names: list[str], hosts: Sequence[str] = ()
) -> str:
    name = fields.get_str(key)
    if name not in names:
        if name in hosts:
            raise fields.require(key).error(
                f"{name!r} is a host; '{key}' takes an application "
                f"({', '.join(names) or 'none is defined'})"
            )
        hint = suggestion(name, names, what="applications")
        raise fields.require(key).error(f"unknown application {name!r}; {hint}")
    return name


def _check_server_endpoint(node: Node, description: str) -> None:
    """A Twisted server endpoint string (``tcp:PORT:interface=...``, ``unix:PATH``)."""
    from twisted.internet.endpoints import serverFromString

    try:
        serverFromString(None, description)
    except (ValueError, KeyError, TypeError) as e:
        example = "tcp:0:interface=127.0.0.1"
        raise node.error(f"expected a server endpoint such as {example}: {e}") from None


def _vip_scripts(fields: MappingNode) -> VipScripts:
    """``vip-scripts: {enable: [PROGRAM, ARG...], disable: [...]}``, run in the folder of
    the file."""
    scripts = fields.get_mapping("vip-scripts", ["enable", "disable"])
    folder = str(Path(fields.file).parent.absolute())
    programs: dict[str, CommandProgram] = {}
    for key in ("enable", "disable"):
        node = scripts.get(key)
        if node is None:
            continue
        items = node.as_list()
        if not items:
            raise node.error("expected a non-empty list: the program, then its arguments")
        programs[key] = CommandProgram(tuple(item.as_str() for item in items), folder)
    return VipScripts(**programs)


def _known_host(
    fields: MappingNode, key: str, hosts: Sequence[str], names: Sequence[str] = ()
) -> str:
    name = fields.get_str(key)
    if name not in hosts and name in names:
        raise fields.require(key).error(
            f"{name!r} is an application; '{key}' takes a host "
            f"({', '.join(hosts) or 'none is defined'})"
        )
    if name not in hosts:
        if not hosts:
            raise fields.require(key).error(
                f"unknown host {name!r}; no host is defined (give applications a 'host', "
                "or list them under 'hosts')"
            )
        hint = suggestion(name, list(hosts), what="hosts")
        raise fields.require(key).error(f"unknown host {name!r}; {hint}")
    return name


def _time(fields: MappingNode, key: str, duration: float) -> float:
    return _time_of(fields.require(key), duration)


def _time_of(node: Node, duration: float) -> float:
    time = node.as_number(minimum=0)
    if time > duration:
        raise node.error(
            f"expected a time from 0 to {format_number(duration)} (the scenario's duration), "
            f"got {format_number(time)}"
        )
    return time


def _time_range(fields: MappingNode, key: str, duration: float) -> tuple[float, float]:
    """``between: [A, B]``: two times within the run, the first no later than the second."""
    node = fields.require(key)
    bounds = node.as_list()
    if len(bounds) != 2:
        raise node.error(f"expected two times [earliest, latest], got {len(bounds)} item(s)")
    earliest, latest = (_time_of(bound, duration) for bound in bounds)
    if latest < earliest:
        raise node.error(
            f"the earliest time comes first: [{format_number(latest)}, "
            f"{format_number(earliest)}], not [{format_number(earliest)}, {format_number(latest)}]"
        )
    return earliest, latest


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


def event_from_mapping(
    event: Mapping[str, object], names: list[str], hosts: Sequence[str] = ()
) -> ScenarioEvent:
    """An event given as data (``RequestEvent``): the same keys as in a scenario file,
    checked the same way, but without ``at`` (it plays now)."""
    if "at" in event:
        raise ConfigError("RequestEvent", None, "at", "an event requested now has no 'at'")
    text = json.dumps({"at": 0, **event})
    return _event(parse_yaml(text, "RequestEvent"), 0.0, names, hosts)


_EVENT_MODIFIERS: Final = {
    "graceful": (EventAction.STOP,),
    "for": (EventAction.CUT_LCA_LINK, EventAction.CUT_LINK, EventAction.DELAY_LINK),
    "how": (EventAction.CUT_LINK,),
    "ms": (EventAction.DELAY_LINK,),
}
"""The keys an event takes besides its action and ``at``, and the actions they go with."""
_REQUIRED_MODIFIERS: Final = {
    EventAction.CUT_LCA_LINK: "for",
    EventAction.CUT_LINK: "how",
    EventAction.DELAY_LINK: "ms",
}


def _event(node: Node, duration: float, names: list[str], hosts: Sequence[str]) -> ScenarioEvent:
    fields = node.mapping(["at", *_EVENT_MODIFIERS, *_EVENT_ACTIONS], required=["at"])
    action = EventAction(_exactly_one(fields, _EVENT_ACTIONS, "an event"))
    at = _time(fields, "at", duration)
    for key, actions in _EVENT_MODIFIERS.items():
        if key in fields and action not in actions:
            goes_with = " or ".join(a.value for a in actions)
            raise fields.require(key).error(f"'{key}' goes with a {goes_with} event only")
    required = _REQUIRED_MODIFIERS.get(action)
    if required is not None and required not in fields:
        raise fields.error(f"a {action.value} event needs '{required}'")
    graceful = fields.get_bool("graceful", False)
    if action in HOST_ACTIONS:
        name = _known_host(fields, action.value, hosts, names)
        return ScenarioEvent(
            at,
            action,
            name,
            line=fields.line,
            seconds=fields.get_number("for", None, positive=True),
        )
    if action is not EventAction.SET_OPTION:
        name = _known_application(fields, action.value, names, hosts)
        return ScenarioEvent(
            at,
            action,
            name,
            line=fields.line,
            graceful=graceful,
            seconds=fields.get_number("for", None, positive=True),
            how=fields.get_enum("how", LinkCut, None),
            latency_ms=fields.get_number("ms", None, minimum=0),
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


_EXPECTATION_WHEN: Final = tuple(kind.value for kind in ExpectationKind)
_NEVER_MODES: Final = (ExecutionMode.PRIMARY, ExecutionMode.BACKUP, ExecutionMode.EXITING)


def _expectation(node: Node, duration: float, names: list[str]) -> Expectation:
    fields = node.mapping(
        ["application", "status", "mode", "event", "miss", *_EXPECTATION_WHEN],
        required=["application"],
    )
    application = _known_application(fields, "application", names)
    kind = ExpectationKind(_exactly_one(fields, _EXPECTATION_WHEN, "an expectation"))
    status: ApplicationStatus | None = None
    mode: ExecutionMode | None = None
    event: JournalEvent | None = None
    time: float | None = None
    until: float | None = None
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
        elif kind is ExpectationKind.BETWEEN:
            time, until = _time_range(fields, kind.value, duration)
        else:
            time = _time(fields, kind.value, duration)
    return Expectation(
        application,
        kind,
        status,
        mode,
        time,
        line=fields.line,
        event=event,
        until=until,
        miss=fields.get_bool("miss", False),
    )


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
