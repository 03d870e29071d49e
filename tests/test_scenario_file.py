"""Scenario files and the ``serve --config`` file: loading, cross-references, discovery."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_common.yamlsource import ConfigError
from lca_emulator.harness.discovery import discover_scenarios
from lca_emulator.harness.loader import load_management_config, load_scenario
from lca_emulator.harness.model import (
    MAX_VIRTUAL_STEPS,
    EventAction,
    Expectation,
    ExpectationKind,
    HaPair,
    LinkCut,
    ScenarioEvent,
    ScsOptions,
)
from sipserver_stub.fixture import Component, ComponentPlan, ComponentResult

CONTRACT_SCENARIO = """
name: backup with a failed T-Controller is not promoted   # optional; default: file name
duration: 300
applications:
  - application: SIPS_A
    mode: primary
  - fixture: backup-tcontroller-fails.yaml
ha-pairs:
  - {primary: SIPS_A, backup: SIPS_B}
events:
  - {at: 120, stop: SIPS_A}
  - {at: 150, set-option: {application: SIPS_B, section: TServer,
                           option: backup-init-check, value: "false"}}
expect:
  - {application: SIPS_B, status: SERVICE_UNAVAILABLE, within: 60}
  - {application: SIPS_B, never: RUNNING}
  - {application: SIPS_B, mode: BACKUP, at-end: true}
  - {application: SIPS_B, status: SERVICE_UNAVAILABLE, at: 60}
"""

BACKUP_FIXTURE = """
application: SIPS_B
host: host-b
mode: backup
options:
  TServer:
    backup-init-check: true
components:
  t-controller: {result: fail, after: 5}
"""

TWO_APPS = """
duration: 300
applications:
  - application: SIPS_A
    mode: primary
  - application: SIPS_B
"""


def write(folder: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def scenario_error(tmp_path: Path, text: str) -> tuple[ConfigError, str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as excinfo:
        load_scenario(path)
    return excinfo.value, str(path)


# -- the whole file -------------------------------------------------------------


def test_contract_example_loads(tmp_path: Path) -> None:
    """The scenario of CONTRACT section 3 loads: fixture file, pairs, events, expectations."""
    write(tmp_path, BACKUP_FIXTURE, "backup-tcontroller-fails.yaml")
    path = write(tmp_path, CONTRACT_SCENARIO)
    scenario = load_scenario(path)
    assert scenario.name == "backup with a failed T-Controller is not promoted"
    assert scenario.path == str(path)
    assert scenario.duration == 300.0
    sips_a, sips_b = scenario.applications
    assert (sips_a.application, sips_a.mode, sips_a.source) == (
        "SIPS_A",
        ExecutionMode.PRIMARY,
        str(path),
    )
    assert sips_b.application == "SIPS_B"
    assert sips_b.source == str(tmp_path / "backup-tcontroller-fails.yaml")
    assert sips_b.components[Component.T_CONTROLLER] == ComponentPlan(ComponentResult.FAIL, 5.0)
    assert scenario.ha_pairs == (HaPair("SIPS_A", "SIPS_B", "SIPS_A/SIPS_B"),)
    assert scenario.events == (
        ScenarioEvent(120.0, EventAction.STOP, "SIPS_A", line=10),
        ScenarioEvent(
            150.0,
            EventAction.SET_OPTION,
            "SIPS_B",
            section="TServer",
            option="backup-init-check",
            value="false",
            line=11,
        ),
    )
    assert [(e.kind, e.status, e.mode, e.time, e.line) for e in scenario.expectations] == [
        (ExpectationKind.WITHIN, ApplicationStatus.SERVICE_UNAVAILABLE, None, 60.0, 14),
        (ExpectationKind.NEVER, ApplicationStatus.RUNNING, None, None, 15),
        (ExpectationKind.AT_END, None, ExecutionMode.BACKUP, None, 16),
        (ExpectationKind.AT, ApplicationStatus.SERVICE_UNAVAILABLE, None, 60.0, 17),
    ]
    assert [e.text for e in scenario.expectations] == [
        "SIPS_B status SERVICE_UNAVAILABLE within 60s",
        "SIPS_B never RUNNING",
        "SIPS_B mode BACKUP at end",
        "SIPS_B status SERVICE_UNAVAILABLE at t=60",
    ]


def test_name_defaults_to_the_file_name(tmp_path: Path) -> None:
    """Without ``name`` the scenario is named after its file, minus the extension."""
    scenario = load_scenario(write(tmp_path, "duration: 5\n", "quick-check.yml"))
    assert scenario.name == "quick-check"
    assert scenario.applications == ()
    assert scenario.ha_pairs == ()
    assert scenario.events == ()
    assert scenario.expectations == ()


def test_empty_sections_are_empty(tmp_path: Path) -> None:
    """``applications:``, ``events:`` and friends may be left empty."""
    scenario = load_scenario(
        write(tmp_path, "duration: 5\napplications:\nha-pairs:\nevents:\nexpect:\n")
    )
    assert (scenario.applications, scenario.events, scenario.expectations) == ((), (), ())


@pytest.mark.parametrize(
    ("text", "line", "key_path", "problem"),
    [
        ("name: x\n", 1, "", "missing required key 'duration'"),
        ("duration: 0\n", 1, "duration", "expected a number greater than 0, got 0"),
        ("duration: -5\n", 1, "duration", "expected a number greater than 0, got -5"),
        (
            "duration: '300'\n",
            1,
            "duration",
            "expected a number greater than 0, got a string ('300')",
        ),
        (
            "duration: 5\nexpects: []\n",
            2,
            "expects",
            "unknown key 'expects'; did you mean 'expect'?",
        ),
        ("duration: 5\nname: 7\n", 2, "name", "expected a string, got an integer (7)"),
        (
            "duration: 5\napplications: {a: 1}\n",
            2,
            "applications",
            "expected a list, got a mapping",
        ),
        ("- duration: 5\n", 1, "", "expected a mapping, got a list"),
    ],
)
def test_top_level_errors(
    tmp_path: Path, text: str, line: int, key_path: str, problem: str
) -> None:
    """Top-level problems name the scenario file, line and key."""
    err, path = scenario_error(tmp_path, text)
    assert (err.file, err.line, err.key_path, err.problem) == (path, line, key_path, problem)


# -- applications ------------------------------------------------------------------


def test_inline_fixture_errors_name_the_scenario_and_the_path(tmp_path: Path) -> None:
    """An invalid inline fixture names the scenario file and the key path inside it."""
    err, path = scenario_error(
        tmp_path,
        """
        duration: 10
        applications:
          - application: A
          - application: B
            components:
              smart-proxy: {result: ok, after: -3}
        """,
    )
    assert str(err) == (
        f"{path}:6: applications[1].components.smart-proxy.after: "
        "expected a number of at least 0, got -3"
    )


def test_unknown_key_in_an_application_entry(tmp_path: Path) -> None:
    """An unknown key in an application entry gets a did-you-mean."""
    err, _ = scenario_error(tmp_path, "duration: 10\napplications:\n  - fixtur: a.yaml\n")
    assert (err.line, err.key_path, err.problem) == (
        3,
        "applications[0].fixtur",
        "unknown key 'fixtur'; did you mean 'fixture'?",
    )


def test_fixture_file_is_relative_to_the_scenario_with_overrides(tmp_path: Path) -> None:
    """``fixture:`` is resolved beside the scenario; other keys in the entry override it."""
    write(tmp_path / "fixtures", BACKUP_FIXTURE, "backup.yaml")
    path = write(
        tmp_path / "scenarios",
        """
        duration: 60
        applications:
          - fixture: ../fixtures/backup.yaml
          - fixture: ../fixtures/backup.yaml
            application: SIPS_C
            host: host-c
            components: {smart-proxy: hang}
        """,
    )
    sips_b, sips_c = load_scenario(path).applications
    assert sips_b.application == "SIPS_B"
    assert sips_b.host == "host-b"
    assert sips_b.components[Component.T_CONTROLLER].result is ComponentResult.FAIL
    assert sips_c.application == "SIPS_C"
    assert sips_c.host == "host-c"
    assert sips_c.options["TServer"]["backup-init-check"] == "true"
    # the merge is shallow: the entry's components replace the file's
    assert sips_c.components[Component.T_CONTROLLER] == ComponentPlan(ComponentResult.OK)
    assert sips_c.components[Component.SMART_PROXY].result is ComponentResult.HANG
    assert sips_c.source == str(tmp_path / "scenarios" / "../fixtures/backup.yaml")


def test_error_inside_a_fixture_file_names_that_file(tmp_path: Path) -> None:
    """A problem inside a referenced fixture names the fixture file and its line."""
    fixture = write(tmp_path, "application: B\ncomponents:\n  t-controler: ok\n", "b.yaml")
    err, _ = scenario_error(tmp_path, "duration: 10\napplications:\n  - fixture: b.yaml\n")
    assert (err.file, err.line, err.key_path) == (str(fixture), 3, "components.t-controler")
    assert err.problem == "unknown component 't-controler'; did you mean 't-controller'?"


def test_override_errors_name_the_scenario(tmp_path: Path) -> None:
    """A bad override is reported in the scenario file, at its own key path."""
    write(tmp_path, BACKUP_FIXTURE, "b.yaml")
    err, path = scenario_error(
        tmp_path, "duration: 10\napplications:\n  - fixture: b.yaml\n    sip-port: -1\n"
    )
    assert (err.file, err.line, err.key_path) == (path, 4, "applications[0].sip-port")


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("none.yaml", "cannot read the file: No such file or directory"),
        (
            "pipe.yaml",
            "cannot read the file: it is a FIFO (named pipe); only regular files are read",
        ),
        ("big.yaml", "file is larger than 1048576 bytes (1 MiB), the limit"),
        (".", "cannot read the file: it is a directory; only regular files are read"),
        ("n" * 300 + ".yaml", "cannot read the file: File name too long"),
        ('"a\\0b.yaml"', "cannot read the file: its name holds a NUL"),
    ],
    ids=["missing", "fifo", "too-large", "directory", "name-too-long", "nul"],
)
def test_unreadable_fixture_file_is_reported_at_the_reference(
    tmp_path: Path, reference: str, problem: str
) -> None:
    """A fixture file that cannot be read is an error at the ``fixture`` key, saying why
    (its own faults are reported at their own lines)."""
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "big.yaml").write_bytes(b"#" * (1 << 20) + b"\n")
    text = f"duration: 10\napplications:\n  - fixture: {reference}\n"
    err, path = scenario_error(tmp_path, text)
    assert (err.file, err.line, err.key_path) == (path, 3, "applications[0].fixture")
    assert err.problem.startswith("fixture file ")
    assert err.problem.endswith(": " + problem)


def test_application_missing_from_file_and_entry(tmp_path: Path) -> None:
    """A fixture file may leave out ``application`` only if the entry gives it."""
    write(tmp_path, "mode: backup\n", "anonymous.yaml")
    scenario = load_scenario(
        write(
            tmp_path,
            "duration: 10\napplications:\n  - {fixture: anonymous.yaml, application: X}\n",
            "ok.yaml",
        )
    )
    assert scenario.applications[0].application == "X"
    err, path = scenario_error(
        tmp_path, "duration: 10\napplications:\n  - fixture: anonymous.yaml\n"
    )
    assert (err.file, err.line, err.key_path, err.problem) == (
        path,
        3,
        "applications[0]",
        "missing required key 'application'",
    )


def test_duplicate_application_names(tmp_path: Path) -> None:
    """Application names are unique within a scenario."""
    err, path = scenario_error(
        tmp_path,
        "duration: 10\napplications:\n  - application: A\n  - application: B\n  - application: A\n",
    )
    assert str(err) == (
        f"{path}:5: applications[2]: duplicate application 'A' "
        "(already defined by applications[0] at line 3)"
    )


# -- HA pairs ---------------------------------------------------------------------


def test_ha_pair_names_and_peer_hosts(tmp_path: Path) -> None:
    """Pairs get a default name; members learn the other member's host unless given."""
    scenario = load_scenario(
        write(
            tmp_path,
            """
            duration: 10
            applications:
              - {application: A, host: host-a, mode: primary}
              - {application: B, host: host-b}
              - {application: C, host: host-c, peer-host: elsewhere}
              - {application: D}
              - {application: E, host: host-e}
            ha-pairs:
              - {primary: A, backup: B}
              - {primary: C, backup: D, name: sip-service-2}
            """,
        )
    )
    assert scenario.ha_pairs == (HaPair("A", "B", "A/B"), HaPair("C", "D", "sip-service-2"))
    peers = {fixture.application: fixture.peer_host for fixture in scenario.applications}
    assert peers == {"A": "host-b", "B": "host-a", "C": "elsewhere", "D": "host-c", "E": None}
    assert [fixture.application for fixture in scenario.applications] == list("ABCDE")


@pytest.mark.parametrize(
    ("pairs", "line", "key_path", "problem"),
    [
        (
            "  - {primary: SIPS_A, backup: SIPS_AX}\n",
            7,
            "ha-pairs[0].backup",
            "unknown application 'SIPS_AX'; did you mean 'SIPS_A'?",
        ),
        (
            "  - {primary: SIPS_A, backup: SIPS_A}\n",
            7,
            "ha-pairs[0].backup",
            "the backup must differ from the primary ('SIPS_A')",
        ),
        (
            "  - {primary: SIPS_A, backup: SIPS_B}\n  - {primary: SIPS_B, backup: SIPS_A}\n",
            8,
            "ha-pairs[1].primary",
            "'SIPS_B' is already in HA pair 'SIPS_A/SIPS_B'; an application is in at most one pair",
        ),
        (
            "  - {primary: SIPS_A}\n",
            7,
            "ha-pairs[0]",
            "missing required key 'backup'",
        ),
        (
            "  - {primary: SIPS_A, backup: SIPS_B, role: x}\n",
            7,
            "ha-pairs[0].role",
            "unknown key 'role'; known keys: primary, backup, name",
        ),
    ],
)
def test_ha_pair_errors(tmp_path: Path, pairs: str, line: int, key_path: str, problem: str) -> None:
    """Pairs must name two different known applications, each in one pair at most."""
    err, path = scenario_error(tmp_path, TWO_APPS.lstrip("\n") + "ha-pairs:\n" + pairs)
    assert (err.file, err.line, err.key_path, err.problem) == (path, line, key_path, problem)


def test_duplicate_ha_pair_names(tmp_path: Path) -> None:
    """Two pairs cannot share a name."""
    err, _ = scenario_error(
        tmp_path,
        "duration: 5\napplications:\n"
        + "".join(f"  - application: {name}\n" for name in "ABCD")
        + "ha-pairs:\n  - {primary: A, backup: B, name: svc}\n"
        "  - {primary: C, backup: D, name: svc}\n",
    )
    assert (err.line, err.key_path, err.problem) == (
        9,
        "ha-pairs[1]",
        "duplicate HA pair name 'svc'",
    )


# -- events -------------------------------------------------------------------------


def test_every_event_kind_sorted_by_time(tmp_path: Path) -> None:
    """Each action loads; events are sorted by time, ties keep file order."""
    scenario = load_scenario(
        write(
            tmp_path,
            TWO_APPS
            + """events:
  - {at: 200, restart: SIPS_B}
  - {at: 10, kill: SIPS_A}
  - {at: 10, start: SIPS_A}
  - {at: 0, stop: SIPS_B}
  - at: 250.5
    set-option:
      application: SIPS_B
      section: TServer
      option: backup-init-check-timeout
      value: 30
""",
        )
    )
    assert [(e.at, e.action, e.application, e.line) for e in scenario.events] == [
        (0.0, EventAction.STOP, "SIPS_B", 10),
        (10.0, EventAction.KILL, "SIPS_A", 8),
        (10.0, EventAction.START, "SIPS_A", 9),
        (200.0, EventAction.RESTART, "SIPS_B", 7),
        (250.5, EventAction.SET_OPTION, "SIPS_B", 11),
    ]
    change = scenario.events[-1]
    assert (change.section, change.option, change.value) == (
        "TServer",
        "backup-init-check-timeout",
        "30",
    )
    assert scenario.events[0].section is None


@pytest.mark.parametrize(
    ("value", "text"), [("true", "true"), ('"false"', "false"), ("1.5", "1.5")]
)
def test_set_option_value_becomes_a_configuration_string(
    tmp_path: Path, value: str, text: str
) -> None:
    """A set-option value may be any scalar; it is kept as a configuration string."""
    scenario = load_scenario(
        write(
            tmp_path,
            TWO_APPS + "events:\n  - {at: 1, set-option: {application: SIPS_A, section: TServer, "
            f"option: x, value: {value}}}}}\n",
        )
    )
    assert scenario.events[0].value == text


@pytest.mark.parametrize(
    ("event", "key_path", "problem"),
    [
        (
            "{at: 1}",
            "events[0]",
            "an event needs exactly one of stop, kill, start, restart, set-option, switchover, "
            "hang, host-down, host-up, cut-lca-link, cut-link, delay-link",
        ),
        (
            "{at: 1, stop: SIPS_A, kill: SIPS_B}",
            "events[0].kill",
            "an event takes exactly one of stop, kill, start, restart, set-option, switchover, "
            "hang, host-down, host-up, cut-lca-link, cut-link, delay-link, not 'stop' and 'kill'",
        ),
        ("{stop: SIPS_A}", "events[0]", "missing required key 'at'"),
        (
            "{at: 1, stop: SIPS_AX}",
            "events[0].stop",
            "unknown application 'SIPS_AX'; did you mean 'SIPS_A'?",
        ),
        (
            "{at: 1, stop: CONFIG_SERVER}",
            "events[0].stop",
            "unknown application 'CONFIG_SERVER'; known applications: SIPS_A, SIPS_B",
        ),
        (
            "{at: 301, stop: SIPS_A}",
            "events[0].at",
            "expected a time from 0 to 300 (the scenario's duration), got 301",
        ),
        ("{at: -1, stop: SIPS_A}", "events[0].at", "expected a number of at least 0, got -1"),
        ("{at: 1, sotp: SIPS_A}", "events[0].sotp", "unknown key 'sotp'; did you mean 'stop'?"),
        (
            "{at: 1, set-option: {application: SIPS_A, section: TServer, option: x}}",
            "events[0].set-option",
            "missing required key 'value'",
        ),
        (
            "{at: 1, set-option: {application: SIPS_A, section: TServer, option: x, value: [1]}}",
            "events[0].set-option.value",
            "expected a single value, got a list",
        ),
        (
            "{at: 1, set-option: {application: NOPE, section: TServer, option: x, value: 1}}",
            "events[0].set-option.application",
            "unknown application 'NOPE'; known applications: SIPS_A, SIPS_B",
        ),
        (
            "{at: 1, set-option: SIPS_A}",
            "events[0].set-option",
            "expected a mapping, got a string ('SIPS_A')",
        ),
    ],
)
def test_event_errors(tmp_path: Path, event: str, key_path: str, problem: str) -> None:
    """Invalid events name the scenario file, the event's line and the key path."""
    err, path = scenario_error(tmp_path, TWO_APPS + f"events:\n  - {event}\n")
    assert (err.file, err.line, err.key_path, err.problem) == (path, 7, key_path, problem)


# -- expectations ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "kind", "status", "mode", "time", "text"),
    [
        (
            "{application: SIPS_A, status: running, within: 12.5}",
            ExpectationKind.WITHIN,
            ApplicationStatus.RUNNING,
            None,
            12.5,
            "SIPS_A status RUNNING within 12.5s",
        ),
        (
            "{application: SIPS_A, mode: primary, within: 0}",
            ExpectationKind.WITHIN,
            None,
            ExecutionMode.PRIMARY,
            0.0,
            "SIPS_A mode PRIMARY within 0s",
        ),
        (
            "{application: SIPS_B, status: Service_Unavailable, at: 300}",
            ExpectationKind.AT,
            ApplicationStatus.SERVICE_UNAVAILABLE,
            None,
            300.0,
            "SIPS_B status SERVICE_UNAVAILABLE at t=300",
        ),
        (
            "{application: SIPS_B, mode: BACKUP, at: 60}",
            ExpectationKind.AT,
            None,
            ExecutionMode.BACKUP,
            60.0,
            "SIPS_B mode BACKUP at t=60",
        ),
        (
            "{application: SIPS_B, never: running}",
            ExpectationKind.NEVER,
            ApplicationStatus.RUNNING,
            None,
            None,
            "SIPS_B never RUNNING",
        ),
        (
            "{application: SIPS_B, never: Primary}",
            ExpectationKind.NEVER,
            None,
            ExecutionMode.PRIMARY,
            None,
            "SIPS_B never PRIMARY",
        ),
        (
            "{application: SIPS_B, never: EXITING}",
            ExpectationKind.NEVER,
            None,
            ExecutionMode.EXITING,
            None,
            "SIPS_B never EXITING",
        ),
        (
            "{application: SIPS_B, never: unknown}",
            ExpectationKind.NEVER,
            ApplicationStatus.UNKNOWN,
            None,
            None,
            "SIPS_B never UNKNOWN",
        ),
        (
            "{application: SIPS_A, status: STOPPED, at-end: true}",
            ExpectationKind.AT_END,
            ApplicationStatus.STOPPED,
            None,
            None,
            "SIPS_A status STOPPED at end",
        ),
        (
            "{application: SIPS_A, mode: unknown, at-end: true}",
            ExpectationKind.AT_END,
            None,
            ExecutionMode.UNKNOWN,
            None,
            "SIPS_A mode UNKNOWN at end",
        ),
    ],
)
def test_every_expectation_kind(
    tmp_path: Path,
    item: str,
    kind: ExpectationKind,
    status: ApplicationStatus | None,
    mode: ExecutionMode | None,
    time: float | None,
    text: str,
) -> None:
    """Each expectation form loads, case-insensitively, with its short rendering."""
    scenario = load_scenario(write(tmp_path, TWO_APPS + f"expect:\n  - {item}\n"))
    (expectation,) = scenario.expectations
    assert expectation == Expectation(
        application=expectation.application,
        kind=kind,
        status=status,
        mode=mode,
        time=time,
        line=7,
        text=text,
    )


@pytest.mark.parametrize(
    ("item", "key_path", "problem"),
    [
        (
            "{application: SIPS_A, status: RUNNING}",
            "expect[0]",
            "an expectation needs exactly one of within, at, first-at, between, after, never, "
            "at-end",
        ),
        (
            "{application: SIPS_A, status: RUNNING, within: 5, at: 5}",
            "expect[0].at",
            "an expectation takes exactly one of within, at, first-at, between, after, never, "
            "at-end, not 'within' and 'at'",
        ),
        (
            "{application: SIPS_A, within: 5}",
            "expect[0]",
            "an expectation needs exactly one of status, mode, event",
        ),
        (
            "{application: SIPS_A, status: RUNNING, mode: PRIMARY, within: 5}",
            "expect[0].mode",
            "an expectation takes exactly one of status, mode, event, not 'status' and 'mode'",
        ),
        (
            "{application: SIPS_A, mode: BACKUP, at-end: false}",
            "expect[0].at-end",
            "at-end must be true (use within or at for other times)",
        ),
        (
            "{application: SIPS_A, mode: BACKUP, at-end: yes please}",
            "expect[0].at-end",
            "expected true or false, got a string ('yes please')",
        ),
        (
            "{application: SIPS_A, status: RUNNING, never: STOPPED}",
            "expect[0].status",
            "'never' names the status, mode or event itself; remove 'status'",
        ),
        (
            "{application: SIPS_A, status: RUNNING, within: 300.5}",
            "expect[0].within",
            "expected a time from 0 to 300 (the scenario's duration), got 300.5",
        ),
        (
            "{application: SIPS_A, status: RUNNING, at: -1}",
            "expect[0].at",
            "expected a number of at least 0, got -1",
        ),
        (
            "{application: SIPS_A, status: RUNING, within: 5}",
            "expect[0].status",
            "expected one of UNKNOWN, STOPPED, START_PENDING, START_TRANSITION, INITIALIZING, "
            "RUNNING, SERVICE_UNAVAILABLE, SUSPENDING, SUSPENDED, STOP_PENDING, STOP_TRANSITION, "
            "got 'RUNING'; "
            "did you mean 'RUNNING'?",
        ),
        (
            "{application: SIPS_A, mode: MASTER, within: 5}",
            "expect[0].mode",
            "expected one of PRIMARY, BACKUP, EXITING, UNKNOWN, got 'MASTER'",
        ),
        (
            "{application: SIPS_A, never: DEAD}",
            "expect[0].never",
            "expected one of UNKNOWN, STOPPED, START_PENDING, START_TRANSITION, INITIALIZING, "
            "RUNNING, SERVICE_UNAVAILABLE, SUSPENDING, SUSPENDED, STOP_PENDING, STOP_TRANSITION, "
            "PRIMARY, BACKUP, "
            "EXITING, registered, disconnected, exited, killed, start-failed, hung, recovered, "
            "switchover, switchover-refused, restarted, suspended, split-brain, vip-disabled, "
            "vip-enabled, host-down, host-up, lca-link-lost, lca-link-restored, no-brain, "
            "flapping, got 'DEAD'",
        ),
        (
            "{application: SIPS_AX, never: RUNNING}",
            "expect[0].application",
            "unknown application 'SIPS_AX'; did you mean 'SIPS_A'?",
        ),
        ("{never: RUNNING}", "expect[0]", "missing required key 'application'"),
        (
            "{application: SIPS_A, never: RUNNING, whithin: 5}",
            "expect[0].whithin",
            "unknown key 'whithin'; did you mean 'within'?",
        ),
    ],
)
def test_expectation_errors(tmp_path: Path, item: str, key_path: str, problem: str) -> None:
    """Invalid expectations name the scenario file, the item's line and the key path."""
    err, path = scenario_error(tmp_path, TWO_APPS + f"expect:\n  - {item}\n")
    assert (err.file, err.line, err.key_path, err.problem) == (path, 7, key_path, problem)


def test_expectation_built_in_code_renders_and_checks() -> None:
    """An Expectation made in code gets its text and refuses inconsistent fields."""
    never_mode = Expectation("A", ExpectationKind.NEVER, mode=ExecutionMode.UNKNOWN)
    assert never_mode.text == "A never mode UNKNOWN"
    with pytest.raises(ValueError, match="exactly one of status, mode and event"):
        Expectation("A", ExpectationKind.AT_END)
    with pytest.raises(ValueError, match="time is required"):
        Expectation("A", ExpectationKind.WITHIN, status=ApplicationStatus.RUNNING)
    with pytest.raises(ValueError, match="time is required"):
        Expectation("A", ExpectationKind.NEVER, status=ApplicationStatus.RUNNING, time=3.0)


# -- hosts, SCS options and fault events -------------------------------------------------

ON_HOSTS = """
duration: 100
hosts:
  - {name: host-a}
  - {name: host-b}
applications:
  - {application: SIPS_A, host: host-a, mode: primary}
  - {application: SIPS_B, host: host-b}
  - {application: SIPS_C, host: host-c}
"""
"""Three applications on three hosts, two of them listed (lines 3 and 4)."""


def test_hosts_listed_then_named_by_applications(tmp_path: Path) -> None:
    """The hosts are those listed, in order, then those only applications name."""
    scenario = load_scenario(write(tmp_path, ON_HOSTS))
    assert [(host.name, host.lca) for host in scenario.hosts] == [
        ("host-a", None),
        ("host-b", None),
        ("host-c", None),
    ]
    assert scenario.scs == ScsOptions()


def test_every_fault_event_loads(tmp_path: Path) -> None:
    """host-down, host-up, cut-lca-link, cut-link (each how) and delay-link load with their
    modifiers; ``for`` is optional where it is not required."""
    events = """events:
  - {at: 1, host-down: host-a}
  - {at: 2, host-up: host-a}
  - {at: 3, cut-lca-link: host-c, for: 2.5}
  - {at: 4, cut-link: SIPS_A, how: close}
  - {at: 5, cut-link: SIPS_A, how: reset, for: 1}
  - {at: 6, cut-link: SIPS_B, how: stall, for: 10}
  - {at: 7, delay-link: SIPS_B, ms: 250}
  - {at: 8, delay-link: SIPS_B, ms: 0, for: 3}
"""
    scenario = load_scenario(write(tmp_path, ON_HOSTS + events))
    assert [
        (e.action, e.application, e.seconds, e.how, e.latency_ms, e.on_host)
        for e in scenario.events
    ] == [
        (EventAction.HOST_DOWN, "host-a", None, None, None, True),
        (EventAction.HOST_UP, "host-a", None, None, None, True),
        (EventAction.CUT_LCA_LINK, "host-c", 2.5, None, None, True),
        (EventAction.CUT_LINK, "SIPS_A", None, LinkCut.CLOSE, None, False),
        (EventAction.CUT_LINK, "SIPS_A", 1.0, LinkCut.RESET, None, False),
        (EventAction.CUT_LINK, "SIPS_B", 10.0, LinkCut.STALL, None, False),
        (EventAction.DELAY_LINK, "SIPS_B", None, None, 250.0, False),
        (EventAction.DELAY_LINK, "SIPS_B", 3.0, None, 0.0, False),
    ]


@pytest.mark.parametrize(
    ("scs", "options"),
    [
        ("{}", ScsOptions()),
        ("{haflip-detect-timeout: -1}", ScsOptions(haflip_detect_timeout=-1)),
        ("{haflip-detect-timeout: 10}", ScsOptions(haflip_detect_timeout=10)),
        ("{haflip-detect-timeout: 2147483647}", ScsOptions(haflip_detect_timeout=2147483647)),
        ("{disconnect-switchover-timeout: 0}", ScsOptions()),
        ("{disconnect-switchover-timeout: 2.5}", ScsOptions(disconnect_switchover_timeout=2.5)),
        ("{promote-unavailable-backup: true}", ScsOptions(promote_unavailable_backup=True)),
    ],
)
def test_scs_options_in_range(tmp_path: Path, scs: str, options: ScsOptions) -> None:
    """The SCS options at their bounds load."""
    assert load_scenario(write(tmp_path, ON_HOSTS + f"scs: {scs}\n")).scs == options


HAFLIP_RANGE = "expected -1 (off) or 10 to 2147483647 seconds (the vendor's valid values)"


@pytest.mark.parametrize(
    ("scs", "key_path", "problem"),
    [
        ("{haflip-detect-timeout: 9}", "scs.haflip-detect-timeout", f"{HAFLIP_RANGE}, got 9"),
        ("{haflip-detect-timeout: 0}", "scs.haflip-detect-timeout", f"{HAFLIP_RANGE}, got 0"),
        ("{haflip-detect-timeout: -2}", "scs.haflip-detect-timeout", f"{HAFLIP_RANGE}, got -2"),
        (
            "{haflip-detect-timeout: 2147483648}",
            "scs.haflip-detect-timeout",
            f"{HAFLIP_RANGE}, got 2147483648",
        ),
        (
            "{haflip-detect-timeout: 10.5}",
            "scs.haflip-detect-timeout",
            "expected an integer, got a number (10.5)",
        ),
        (
            "{disconnect-switchover-timeout: -1}",
            "scs.disconnect-switchover-timeout",
            "expected a number of at least 0, got -1",
        ),
        (
            "{disconnect-switchover-timeout: soon}",
            "scs.disconnect-switchover-timeout",
            "expected a number of at least 0, got a string ('soon')",
        ),
        (
            "{haflip-detect-timout: 10}",
            "scs.haflip-detect-timout",
            "unknown key 'haflip-detect-timout'; did you mean 'haflip-detect-timeout'?",
        ),
    ],
)
def test_scs_option_errors(tmp_path: Path, scs: str, key_path: str, problem: str) -> None:
    """An SCS option out of its vendor range names the file, line and key, and the range."""
    err, path = scenario_error(tmp_path, ON_HOSTS + f"scs: {scs}\n")
    assert (err.file, err.line, err.key_path, err.problem) == (path, 9, key_path, problem)


@pytest.mark.parametrize(
    ("hosts", "line", "key_path", "problem"),
    [
        (
            "  - {name: host-a}\n  - {name: host-a}\n",
            4,
            "hosts[1].name",
            "duplicate host 'host-a'",
        ),
        (
            "  - {name: host-a}\n  - {name: host-b, lca: 'tcp:0:interface=127.0.0.1'}\n",
            4,
            "hosts[1].lca",
            "'lca' (where the host's LCA listens) is for serve --config; a scenario run puts "
            "every LCA on a free port",
        ),
        ("  - {name: host-a}\n  - {lca: x}\n", 4, "hosts[1]", "missing required key 'name'"),
        (
            "  - {name: host-a}\n  - {name: host-b, lcaa: x}\n",
            4,
            "hosts[1].lcaa",
            "unknown key 'lcaa'; did you mean 'lca'?",
        ),
        (
            "  - {name: host-a}\n  - {name: 7}\n",
            4,
            "hosts[1].name",
            "expected a string, got an integer (7)",
        ),
    ],
)
def test_host_list_errors(
    tmp_path: Path, hosts: str, line: int, key_path: str, problem: str
) -> None:
    """A duplicate host, an LCA endpoint in a scenario, a host without a name, an unknown
    key: each names the file, line and key path."""
    text = ON_HOSTS.replace("  - {name: host-a}\n  - {name: host-b}\n", hosts)
    err, path = scenario_error(tmp_path, text)
    assert (err.file, err.line, err.key_path, err.problem) == (path, line, key_path, problem)


def test_host_lca_endpoint_is_for_serve(tmp_path: Path) -> None:
    """The sibling: serve --config takes ``lca`` (where that host's LCA listens)."""
    text = ON_HOSTS.replace("duration: 100\n", "").replace(
        "{name: host-b}", "{name: host-b, lca: 'tcp:0:interface=127.0.0.1'}"
    )
    config = load_management_config(write(tmp_path, text, "site.yaml"))
    assert [(host.name, host.lca) for host in config.hosts] == [
        ("host-a", None),
        ("host-b", "tcp:0:interface=127.0.0.1"),
        ("host-c", None),
    ]
    duplicate = text.replace("{name: host-a}", "{name: host-b}")
    with pytest.raises(ConfigError, match=r"site\.yaml:3: hosts\[1\]\.name: duplicate host"):
        load_management_config(write(tmp_path, duplicate, "site.yaml"))
    nonsense = text.replace("tcp:0:interface=127.0.0.1", "carrier-pigeon:0")
    with pytest.raises(ConfigError) as caught:
        load_management_config(write(tmp_path, nonsense, "site.yaml"))
    assert (caught.value.line, caught.value.key_path) == (3, "hosts[1].lca")
    assert caught.value.problem.startswith("expected a server endpoint such as tcp:0:")


FAULT_EVENT_ERRORS = [
    (
        "{at: 1, host-down: host-d}",
        "events[0].host-down",
        "unknown host 'host-d'; did you mean 'host-c'?",
    ),
    (
        "{at: 1, host-up: mainframe}",
        "events[0].host-up",
        "unknown host 'mainframe'; known hosts: host-a, host-b, host-c",
    ),
    (
        "{at: 1, cut-lca-link: SIPS_A, for: 3}",
        "events[0].cut-lca-link",
        "'SIPS_A' is an application; 'cut-lca-link' takes a host (host-a, host-b, host-c)",
    ),
    (
        "{at: 1, cut-link: host-a, how: close}",
        "events[0].cut-link",
        "'host-a' is a host; 'cut-link' takes an application (SIPS_A, SIPS_B, SIPS_C)",
    ),
    (
        "{at: 1, delay-link: SIPS_D, ms: 5}",
        "events[0].delay-link",
        "unknown application 'SIPS_D'; did you mean 'SIPS_C'?",
    ),
    ("{at: 1, cut-lca-link: host-a}", "events[0]", "a cut-lca-link event needs 'for'"),
    ("{at: 1, cut-link: SIPS_A}", "events[0]", "a cut-link event needs 'how'"),
    ("{at: 1, delay-link: SIPS_A, for: 3}", "events[0]", "a delay-link event needs 'ms'"),
    (
        "{at: 1, cut-link: SIPS_A, how: explode}",
        "events[0].how",
        "expected one of close, reset, stall, got 'explode'",
    ),
    (
        "{at: 1, host-down: host-a, for: 3}",
        "events[0].for",
        "'for' goes with a cut-lca-link or cut-link or delay-link event only",
    ),
    (
        "{at: 1, stop: SIPS_A, for: 3}",
        "events[0].for",
        "'for' goes with a cut-lca-link or cut-link or delay-link event only",
    ),
    (
        "{at: 1, delay-link: SIPS_A, ms: 5, how: reset}",
        "events[0].how",
        "'how' goes with a cut-link event only",
    ),
    (
        "{at: 1, cut-link: SIPS_A, how: stall, ms: 5}",
        "events[0].ms",
        "'ms' goes with a delay-link event only",
    ),
    (
        "{at: 1, host-up: host-a, graceful: true}",
        "events[0].graceful",
        "'graceful' goes with a stop event only",
    ),
    (
        "{at: 1, cut-link: SIPS_A, how: close, for: 0}",
        "events[0].for",
        "expected a number greater than 0, got 0",
    ),
    (
        "{at: 1, delay-link: SIPS_A, ms: -1}",
        "events[0].ms",
        "expected a number of at least 0, got -1",
    ),
    (
        "{at: 1, delay-link: SIPS_A, ms: fast}",
        "events[0].ms",
        "expected a number of at least 0, got a string ('fast')",
    ),
]


@pytest.mark.parametrize(("event", "key_path", "problem"), FAULT_EVENT_ERRORS)
def test_fault_event_errors(tmp_path: Path, event: str, key_path: str, problem: str) -> None:
    """A fault event with an unknown or wrong-kind subject, a missing or misplaced
    modifier, or a bad ``how``/``for``/``ms`` names the file, the line and the key."""
    err, path = scenario_error(tmp_path, ON_HOSTS + f"events:\n  - {event}\n")
    assert (err.file, err.line, err.key_path, err.problem) == (path, 10, key_path, problem)
    assert str(err) == f"{path}:10: {key_path}: {problem}"


def test_a_host_event_without_hosts_says_how_to_get_one(tmp_path: Path) -> None:
    """With no host at all, a host event says where hosts come from."""
    err, _ = scenario_error(tmp_path, TWO_APPS + "events:\n  - {at: 1, host-down: h}\n")
    assert err.problem == (
        "unknown host 'h'; no host is defined (give applications a 'host', or list them "
        "under 'hosts')"
    )


# -- serve --config -----------------------------------------------------------------


def test_management_config_refuses_the_run_keys(tmp_path: Path) -> None:
    """serve would not act on a scenario's duration, events or expect: each is refused by
    name, at its line; without them the same file serves."""
    write(tmp_path, BACKUP_FIXTURE, "backup-tcontroller-fails.yaml")
    path = write(tmp_path, CONTRACT_SCENARIO)
    with pytest.raises(ConfigError, match=r":2: duration: .duration. belongs to scenario runs"):
        load_management_config(path)
    served = CONTRACT_SCENARIO.split("events:")[0].replace("duration: 300\n", "")
    config = load_management_config(write(tmp_path, served, "site.yaml"))
    assert [fixture.application for fixture in config.applications] == ["SIPS_A", "SIPS_B"]
    assert config.ha_pairs == (HaPair("SIPS_A", "SIPS_B"),)
    assert config.applications[0].peer_host == "host-b"


def test_management_config_without_duration(tmp_path: Path) -> None:
    """``duration`` is not needed to serve; unknown keys are still errors."""
    path = write(tmp_path, "applications:\n  - application: A\n", "serve.yaml")
    assert load_management_config(path).applications[0].application == "A"
    bad = write(tmp_path, "applications: []\nha-pair: []\n", "bad.yaml")
    with pytest.raises(ConfigError) as excinfo:
        load_management_config(bad)
    assert str(excinfo.value) == (
        f"{bad}:2: ha-pair: unknown key 'ha-pair'; did you mean 'ha-pairs'?"
    )


# -- discovery -----------------------------------------------------------------------


def test_discover_takes_files_as_given_and_searches_folders(tmp_path: Path) -> None:
    """Folders give their scenario files recursively and sorted, skipping fixtures and hidden."""
    write(tmp_path, "duration: 5\n", "suite/b.yaml")
    write(tmp_path, "expect: []\n", "suite/a.yml")
    write(tmp_path, "duration: 5\n", "suite/nested/c.yaml")
    write(tmp_path, "application: SIPS_B\n", "suite/backup.yaml")
    write(tmp_path, "- 1\n", "suite/list.yaml")
    write(tmp_path, "duration: 5\n", "suite/.hidden/d.yaml")
    write(tmp_path, "duration: 5\n", "suite/notes.txt")
    broken = write(tmp_path, "duration: [\n", "suite/broken.yaml")
    single = write(tmp_path, "application: A\n", "single.yaml")
    suite = tmp_path / "suite"
    found = discover_scenarios([str(single), str(suite)])
    assert found == [
        single,
        suite / "a.yml",
        suite / "b.yaml",
        broken,
        suite / "nested" / "c.yaml",
    ]


def test_discover_removes_repeats(tmp_path: Path) -> None:
    """A file named twice (directly and through its folder) is run once."""
    path = write(tmp_path, "duration: 5\n", "s.yaml")
    assert discover_scenarios([str(path), str(tmp_path)]) == [path]


def test_discover_missing_path_is_a_config_error(tmp_path: Path) -> None:
    """A path that does not exist is a ConfigError naming it."""
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError) as excinfo:
        discover_scenarios([str(missing)])
    assert str(excinfo.value) == f"{missing}: no such file or directory"


@pytest.mark.parametrize(
    ("name", "problem"),
    [("n" * 300 + ".yaml", "File name too long"), ("plain.yaml/inner.yaml", "Not a directory")],
    ids=["name-too-long", "through-a-file"],
)
def test_discover_unreachable_path_is_a_config_error(
    tmp_path: Path, name: str, problem: str
) -> None:
    """A path that cannot be looked at is a ConfigError saying why, not an OSError."""
    (tmp_path / "plain.yaml").write_text("duration: 5\n")
    with pytest.raises(ConfigError) as excinfo:
        discover_scenarios([str(tmp_path / name)])
    assert str(excinfo.value) == f"{tmp_path / name}: cannot read it: {problem}"


def test_discover_keeps_special_files_in_a_folder(tmp_path: Path) -> None:
    """A FIFO or a device named like a scenario in a folder is kept, so that loading it
    says why it is refused, rather than being skipped in silence."""
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    assert discover_scenarios([str(tmp_path)]) == [tmp_path / "pipe.yaml", tmp_path / "zero.yaml"]
    with pytest.raises(ConfigError, match="it is a FIFO"):
        load_scenario(tmp_path / "pipe.yaml")


@pytest.mark.parametrize(
    ("entries", "line", "key_path"),
    [
        (f"  - {{application: {'A' * 256}, mode: primary}}\n", 3, "applications[0].application"),
        (f"  - {{application: A, external: true, host: {'h' * 256}}}\n", 3, "applications[0].host"),
        (
            "  - {application: A, mode: primary}\n  - {application: B}\n"
            f"ha-pairs:\n  - {{primary: A, backup: B, name: {'P' * 512}}}\n",
            6,
            "ha-pairs[0].name",
        ),
    ],
    ids=["name", "outside-host", "pair-name"],
)
def test_names_over_the_protocol_limits_are_errors_at_their_line(
    tmp_path: Path, entries: str, line: int, key_path: str
) -> None:
    """A name or host the LCA would refuse to register (over 255 bytes), or a pair name
    over 511, is a file error at its line, for a scenario and a serve --config file alike
    (a scenario used to run with it, its stub never registered)."""
    err, path = scenario_error(tmp_path, "duration: 10\napplications:\n" + entries)
    assert (err.file, err.line, err.key_path) == (path, line, key_path)
    assert err.problem.startswith("expected at most ")
    site = write(tmp_path, "applications:\n" + entries, "site.yaml")
    with pytest.raises(ConfigError) as excinfo:
        load_management_config(site)
    assert (excinfo.value.line, excinfo.value.key_path) == (line - 1, key_path)


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("duration: 1000000\nheartbeat: 3\n", True),
        ("duration: 1000001\nheartbeat: 3\n", False),
        ("duration: 1.0e+9\nheartbeat: 10\n", False),
        ("duration: 1000001\n", True),
        ("duration: 600000\nheartbeat: 3\n", False),  # two stubs: 2 beats a second
        ("duration: 1000001\nheartbeat: 3600\n", False),  # SIPS_A's own [sml] period: 3 s
    ],
    ids=["at-the-limit", "over", "issue-b6", "no-heartbeat", "two-stubs", "sml-period"],
)
def test_a_run_of_endless_heartbeats_is_refused_at_the_duration(
    tmp_path: Path, text: str, accepted: bool
) -> None:
    """A scenario whose heartbeats alone would take more than MAX_VIRTUAL_STEPS steps of
    virtual time is a file error at its duration (each stub beats 3 times a period)."""
    entries = "  - {application: SIPS_A, mode: primary}\n"
    if "600000" in text:
        entries += "  - {application: SIPS_B}\n"
    if "3600" in text:
        entries = "  - {application: SIPS_A, options: {sml: {heartbeat-period: 3}}}\n"
    path = write(tmp_path, text + "applications:\n" + entries)
    if accepted:
        load_scenario(path)
        return
    with pytest.raises(ConfigError, match=f"more than {MAX_VIRTUAL_STEPS:,}") as excinfo:
        load_scenario(path)
    assert (excinfo.value.line, excinfo.value.key_path) == (1, "duration")
