"""The SIP Server stub fixture: validation into frozen dataclasses, and its errors."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest
import yaml

from lca_common.protocol.messages import ExecutionMode
from lca_common.yamlsource import ConfigError, parse_yaml
from sipserver_stub.fixture import (
    Component,
    ComponentPlan,
    ComponentResult,
    SipPortState,
    StubFixture,
    fixture_from_node,
    load_fixture,
)
from sipserver_stub.options import TServerOptions

CONTRACT_EXAMPLE = """
application: SIPS_B          # the application's name in the Management Layer
host: host-b                 # optional, logical host name (same-host pairs)
mode: backup                 # the mode it starts in: primary | backup
sip-port: 5060               # SIP port it opens; 0 = any free port
options:
  TServer:
    backup-init-check: true
    backup-init-check-timeout: 60
    backup-sip-port-check: true
    control-vip-scripts: false
components:
  t-controller: ok
  smart-proxy: {result: ok, after: 3}
  interaction-proxy: {result: fail, after: 5}
  operational-info: {result: hang}
sip-port-state: free
"""

OK = ComponentResult.OK


def write(tmp_path: Path, text: str, name: str = "fixture.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> tuple[ConfigError, str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as excinfo:
        load_fixture(path)
    return excinfo.value, str(path)


def test_contract_example_loads(tmp_path: Path) -> None:
    """The fixture of CONTRACT section 2 loads into the expected dataclass."""
    path = write(tmp_path, CONTRACT_EXAMPLE)
    fixture = load_fixture(path)
    assert fixture == StubFixture(
        application="SIPS_B",
        mode=ExecutionMode.BACKUP,
        host="host-b",
        sip_port=5060,
        options={
            "TServer": {
                "backup-init-check": "true",
                "backup-init-check-timeout": "60",
                "backup-sip-port-check": "true",
                "control-vip-scripts": "false",
            }
        },
        components={
            Component.T_CONTROLLER: ComponentPlan(OK),
            Component.SMART_PROXY: ComponentPlan(OK, 3.0),
            Component.INTERACTION_PROXY: ComponentPlan(ComponentResult.FAIL, 5.0),
            Component.OPERATIONAL_INFO: ComponentPlan(ComponentResult.HANG),
        },
        sip_port_state=SipPortState.FREE,
        source=str(path),
    )
    assert fixture.peer_host is None
    assert fixture.tserver_options() == (
        TServerOptions(backup_init_check=True, backup_init_check_timeout=60),
        (),
    )


def test_minimal_fixture_takes_defaults(tmp_path: Path) -> None:
    """Only ``application`` is required; everything else has a default."""
    fixture = load_fixture(write(tmp_path, "application: SIPS_A\n"))
    assert fixture.mode is ExecutionMode.BACKUP
    assert fixture.host is None
    assert fixture.peer_host is None
    assert fixture.sip_port == 0
    assert dict(fixture.options) == {}
    assert dict(fixture.components) == {component: ComponentPlan(OK) for component in Component}
    assert fixture.sip_port_state is SipPortState.FREE
    assert fixture.tserver_options() == (TServerOptions(), ())


def test_component_shorthand_and_long_forms(tmp_path: Path) -> None:
    """``name: result`` means after 0; the long form takes ``result`` and ``after``."""
    fixture = load_fixture(
        write(
            tmp_path,
            """
            application: A
            components:
              t-controller: FAIL
              smart-proxy: {result: ok}
              interaction-proxy: {result: hang, after: 7}
              operational-info:
                result: ok
                after: 2.5
            """,
        )
    )
    assert dict(fixture.components) == {
        Component.T_CONTROLLER: ComponentPlan(ComponentResult.FAIL, 0.0),
        Component.SMART_PROXY: ComponentPlan(OK, 0.0),
        Component.INTERACTION_PROXY: ComponentPlan(ComponentResult.HANG, 7.0),
        Component.OPERATIONAL_INFO: ComponentPlan(OK, 2.5),
    }


def test_unlisted_components_complete_at_once(tmp_path: Path) -> None:
    """Components not in the fixture are ``ok`` after 0, in documentation order."""
    fixture = load_fixture(
        write(tmp_path, "application: A\ncomponents:\n  operational-info: fail\n")
    )
    assert list(fixture.components) == list(Component)
    assert fixture.components[Component.T_CONTROLLER] == ComponentPlan(OK)
    assert fixture.components[Component.OPERATIONAL_INFO] == ComponentPlan(ComponentResult.FAIL)


@pytest.mark.parametrize(("text", "mode"), [("primary", "PRIMARY"), ("BACKUP", "BACKUP")])
def test_mode_is_case_insensitive(tmp_path: Path, text: str, mode: str) -> None:
    """``mode`` accepts primary and backup in any case."""
    fixture = load_fixture(write(tmp_path, f"application: A\nmode: {text}\n"))
    assert fixture.mode is ExecutionMode(mode)


def test_in_use_sip_port_and_peer_host(tmp_path: Path) -> None:
    """``sip-port-state: in-use`` and ``peer-host`` are read."""
    fixture = load_fixture(
        write(tmp_path, "application: A\nsip-port-state: IN-USE\npeer-host: host-a\n")
    )
    assert fixture.sip_port_state is SipPortState.IN_USE
    assert fixture.peer_host == "host-a"


def test_option_scalars_become_configuration_strings(tmp_path: Path) -> None:
    """Any scalar option value is kept as the configuration string the server reads."""
    fixture = load_fixture(
        write(
            tmp_path,
            """
            application: A
            options:
              TServer:
                backup-init-check: TRUE
                backup-init-check-timeout: "10"
                control-vip-scripts: 1.5
                backup-sip-port-check:
              log:
                verbose: all
              empty:
            """,
        )
    )
    assert {name: dict(values) for name, values in fixture.options.items()} == {
        "TServer": {
            "backup-init-check": "true",
            "backup-init-check-timeout": "10",
            "control-vip-scripts": "1.5",
            "backup-sip-port-check": "",
        },
        "log": {"verbose": "all"},
        "empty": {},
    }


def test_invalid_option_values_are_the_server_s_concern(tmp_path: Path) -> None:
    """An invalid option value loads fine; the server logs it and uses the default."""
    fixture = load_fixture(
        write(
            tmp_path,
            "application: A\noptions:\n  TServer:\n    backup-init-check-timeout: 10\n"
            "    backup-init-check: maybe\n",
        )
    )
    options, log = fixture.tserver_options()
    assert options == TServerOptions()
    assert log == (
        "[TServer] backup-init-check-timeout: invalid value '10' "
        "(valid: an integer from 15 to 3600); using the default 60",
        "[TServer] backup-init-check: invalid value 'maybe' (valid: true or false); "
        "using the default false",
    )


# -- errors: file, line and key path ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "key_path", "problem"),
    [
        (
            "application: A\nsip-prot: 5060\n",
            2,
            "sip-prot",
            "unknown key 'sip-prot'; did you mean 'sip-port'?",
        ),
        ("application: 5\n", 1, "application", "expected a string, got an integer (5)"),
        ('application: ""\n', 1, "application", "expected a non-empty string"),
        ("host: h\n", 1, "", "missing required key 'application'"),
        (
            "application: A\nmode: exiting\n",
            2,
            "mode",
            "expected one of PRIMARY, BACKUP, got 'exiting'",
        ),
        (
            "application: A\nmode: primray\n",
            2,
            "mode",
            "expected one of PRIMARY, BACKUP, got 'primray'; did you mean 'PRIMARY'?",
        ),
        (
            "application: A\nsip-port: 70000\n",
            2,
            "sip-port",
            "expected an integer from 0 to 65535, got 70000",
        ),
        (
            "application: A\nsip-port: -1\n",
            2,
            "sip-port",
            "expected an integer from 0 to 65535, got -1",
        ),
        (
            "application: A\nsip-port: '5060'\n",
            2,
            "sip-port",
            "expected an integer from 0 to 65535, got a string ('5060')",
        ),
        (
            "application: A\nsip-port-state: busy\n",
            2,
            "sip-port-state",
            "expected one of free, in-use, got 'busy'",
        ),
        (
            "application: A\ncomponents:\n  smart-proxi: ok\n",
            3,
            "components.smart-proxi",
            "unknown component 'smart-proxi'; did you mean 'smart-proxy'?",
        ),
        (
            "application: A\ncomponents:\n  database: ok\n",
            3,
            "components.database",
            "unknown component 'database'; known components: t-controller, smart-proxy, "
            "interaction-proxy, operational-info",
        ),
        (
            "application: A\ncomponents:\n  t-controller: done\n",
            3,
            "components.t-controller",
            "expected one of ok, fail, hang, got 'done'",
        ),
        (
            "application: A\ncomponents:\n  t-controller: {result: ok, after: -1}\n",
            3,
            "components.t-controller.after",
            "expected a number of at least 0, got -1",
        ),
        (
            "application: A\ncomponents:\n  t-controller: {after: 3}\n",
            3,
            "components.t-controller",
            "missing required key 'result'",
        ),
        (
            "application: A\ncomponents:\n  t-controller: {result: ok, afer: 3}\n",
            3,
            "components.t-controller.afer",
            "unknown key 'afer'; did you mean 'after'?",
        ),
        (
            "application: A\ncomponents:\n  t-controller: [ok]\n",
            3,
            "components.t-controller",
            "expected a mapping, got a list",
        ),
        (
            "application: A\ncomponents: [t-controller]\n",
            2,
            "components",
            "expected a mapping, got a list",
        ),
        (
            "application: A\noptions:\n  TServer: true\n",
            3,
            "options.TServer",
            "expected a mapping, got a boolean (true)",
        ),
        (
            "application: A\noptions:\n  TServer:\n    backup-init-check: {value: true}\n",
            4,
            "options.TServer.backup-init-check",
            "expected a single value, got a mapping",
        ),
        (
            "application: A\noptions:\n  TServer:\n    backup-init-check: [true]\n",
            4,
            "options.TServer.backup-init-check",
            "expected a single value, got a list",
        ),
        ("- application: A\n", 1, "", "expected a mapping, got a list"),
        (
            "mode: primary\napplication: " + "S" * 256 + "\n",
            2,
            "application",
            f"expected at most 255 bytes of UTF-8, got 256: {'S' * 37 + '...'!r}",
        ),
        (
            "application: A\nhost: " + "é" * 128 + "\n",
            2,
            "host",
            f"expected at most 255 bytes of UTF-8, got 256: {'é' * 37 + '...'!r}",
        ),
    ],
)
def test_fixture_errors_name_file_line_and_key_path(
    tmp_path: Path, text: str, line: int, key_path: str, problem: str
) -> None:
    """Each kind of invalid fixture is a ConfigError at the right file, line and key path."""
    err, path = load_error(tmp_path, text)
    assert (err.file, err.line, err.key_path, err.problem) == (path, line, key_path, problem)


def test_error_message_reads_file_line_path_problem(tmp_path: Path) -> None:
    """The full message of a fixture error is ``file:line: path: problem``."""
    err, path = load_error(
        tmp_path,
        """
        application: A
        components:
          smart-proxy:
            result: ok
            after: -2
        """,
    )
    assert str(err) == (
        f"{path}:5: components.smart-proxy.after: expected a number of at least 0, got -2"
    )


def test_empty_fixture_file_is_an_error(tmp_path: Path) -> None:
    """An empty fixture file says so."""
    err, path = load_error(tmp_path, "")
    assert str(err) == f"{path}: file is empty"


def test_fixture_from_node_names_the_path_inside_a_larger_file() -> None:
    """An inline fixture's errors name the enclosing file and the full key path."""
    root = parse_yaml(
        "duration: 10\napplications:\n  - application: A\n    components:\n"
        "      smart-proxy: {result: maybe}\n",
        "scenario.yaml",
    ).mapping()
    entry = root.get_list("applications")[0]
    with pytest.raises(ConfigError) as excinfo:
        fixture_from_node(entry)
    assert str(excinfo.value) == (
        "scenario.yaml:5: applications[0].components.smart-proxy.result: "
        "expected one of ok, fail, hang, got 'maybe'"
    )


def test_fixture_from_node_source_defaults_to_the_file() -> None:
    """``source`` is the node's file unless given."""
    node = parse_yaml("application: A\n", "inline.yaml")
    assert fixture_from_node(node).source == "inline.yaml"
    assert fixture_from_node(node, source="elsewhere").source == "elsewhere"


# -- the dataclasses ------------------------------------------------------------


def test_with_option_returns_a_changed_copy() -> None:
    """``with_option`` changes one option in a copy and leaves the original alone."""
    fixture = StubFixture("A", options={"TServer": {"backup-init-check": "true"}})
    changed = fixture.with_option("TServer", "backup-init-check", False)
    assert changed.options["TServer"]["backup-init-check"] == "false"
    assert fixture.options["TServer"]["backup-init-check"] == "true"
    added = changed.with_option("log", "verbose", "all").with_option("TServer", "x", 60)
    assert dict(added.options["log"]) == {"verbose": "all"}
    assert dict(added.options["TServer"]) == {"backup-init-check": "false", "x": "60"}
    assert added.tserver_options()[0] == TServerOptions()


def test_fixture_is_immutable_and_hashable() -> None:
    """Fields, options and components cannot be changed; the fixture can be hashed."""
    fixture = StubFixture("A", options={"TServer": {"a": "b"}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        fixture.application = "B"  # type: ignore[misc]
    with pytest.raises(TypeError):
        fixture.options["TServer"]["a"] = "c"  # type: ignore[index]
    with pytest.raises(TypeError):
        fixture.components[Component.SMART_PROXY] = ComponentPlan(OK)  # type: ignore[index]
    assert hash(fixture) == hash(StubFixture("A", options={"TServer": {"a": "b"}}))


def test_direct_construction_is_checked() -> None:
    """Building a fixture in code refuses modes and ports a file could not give."""
    with pytest.raises(ValueError, match="PRIMARY or BACKUP"):
        StubFixture("A", mode=ExecutionMode.EXITING)
    with pytest.raises(ValueError, match="sip_port"):
        StubFixture("A", sip_port=65536)
    with pytest.raises(ValueError, match="after must be >= 0"):
        ComponentPlan(OK, -1.0)


def test_component_labels() -> None:
    """Each component has the name the product documentation uses."""
    assert [component.label for component in Component] == [
        "T-Controller",
        "Smart Proxy",
        "Interaction Proxy",
        "Operational Information thread",
    ]
    assert Component("smart-proxy") is Component.SMART_PROXY


def test_to_document_round_trips(tmp_path: Path) -> None:
    """``to_document`` dumps a fixture that loads back equal (for stub processes)."""
    original = load_fixture(write(tmp_path, CONTRACT_EXAMPLE)).with_option("X", "y", True)
    original = dataclasses.replace(original, peer_host="host-a", sip_port_state=SipPortState.IN_USE)
    path = tmp_path / "dumped.yaml"
    path.write_text(yaml.safe_dump(original.to_document()), encoding="utf-8")
    reloaded = load_fixture(path)
    assert dataclasses.replace(reloaded, source=original.source) == original
