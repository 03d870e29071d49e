"""Outside programs as applications: ``command`` (the LCA runs it) and ``external`` (it
registers by itself); the loader's checks, the virtual-time refusal, and real-time runs
with ``examples/vendor_app.py`` and a ScriptedApplication."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from reactortest import reactor_test

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_common.yamlsource import ConfigError
from lca_emulator.applications import CommandProgram
from lca_emulator.harness.loader import load_management_config, load_scenario
from lca_emulator.harness.runner import run_scenario
from lca_emulator.harness.site import RunMode, Site
from lca_emulator.journal import JournalEvent
from lca_emulator.lca.control import ControlError
from lca_emulator.testing import ScriptedApplication

ROOT = Path(__file__).resolve().parent.parent
VENDOR_APP = ROOT / "examples" / "vendor_app.py"
LCA_EMULATOR = str(Path(sys.executable).parent / "lca-emulator")

WAIT = 20.0
"""Wall-clock seconds a real-time wait may take before the test fails."""


def write(folder: Path, name: str, text: str) -> Path:
    """Write a YAML file (dedented) and return its path."""
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def vendor_scenario(folder: Path) -> Path:
    """A stub primary and the vendor program as its backup; the primary is killed at 10."""
    return write(
        folder,
        "scenario_vendor.yaml",
        f"""\
        duration: 30
        applications:
          - {{application: SIPS_A, host: host-a, mode: primary}}
          - application: VENDOR_B
            host: host-b
            command: [{sys.executable}, {VENDOR_APP}, --mode, backup]
        ha-pairs:
          - {{primary: SIPS_A, backup: VENDOR_B}}
        events:
          - {{at: 10, kill: SIPS_A}}
        expect:
          - {{application: VENDOR_B, event: registered, within: 5}}
          - {{application: VENDOR_B, mode: BACKUP, within: 5}}
          - {{application: VENDOR_B, event: switchover, within: 12}}
          - {{application: VENDOR_B, mode: PRIMARY, at-end: true}}
          - {{application: VENDOR_B, status: RUNNING, at-end: true}}
        """,
    )


# == the loader ==========================================================================


def load_error(tmp_path: Path, entry: str) -> ConfigError:
    """The ConfigError of a scenario whose second application is ``entry``."""
    path = write(
        tmp_path,
        "scenario_bad.yaml",
        "duration: 10\napplications:\n  - {application: SIPS_A}\n" + entry,
    )
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    return caught.value


def test_command_with_a_stub_key_is_refused(tmp_path: Path) -> None:
    """A command with components is an error at the components key, naming the kind."""
    error = load_error(
        tmp_path, "  - application: V\n    command: [./app]\n    components: {t-controller: ok}\n"
    )
    assert (error.line, error.key_path) == (6, "applications[1].components")
    assert "'components' is for SIP Server stubs" in error.problem


def test_command_and_external_together_are_refused(tmp_path: Path) -> None:
    """command and external are mutually exclusive, said at external's line."""
    error = load_error(tmp_path, "  - application: V\n    command: [./app]\n    external: true\n")
    assert error.key_path == "applications[1].external"
    assert "either a 'command'" in error.problem
    assert "not both" in error.problem


@pytest.mark.parametrize("command", ["[]", "./app", "[./app, [x]]"])
def test_command_must_be_a_non_empty_list_of_strings(tmp_path: Path, command: str) -> None:
    """An empty list, a bare string or a non-string item is refused at the command."""
    error = load_error(tmp_path, f"  - application: V\n    command: {command}\n")
    assert error.key_path.startswith("applications[1].command")


def test_external_must_be_a_boolean(tmp_path: Path) -> None:
    """external: yes-please is not a boolean."""
    error = load_error(tmp_path, "  - {application: V, external: yes-please}\n")
    assert error.key_path == "applications[1].external"


def test_command_is_relative_to_the_file_and_pairs_fill_peer_host(tmp_path: Path) -> None:
    """The command runs in the file's folder; a stub paired with it gets its host as peer."""
    path = write(
        tmp_path,
        "scenario_ok.yaml",
        """\
        duration: 10
        applications:
          - {application: SIPS_A, host: host-a, mode: primary}
          - {application: V, host: host-v, command: [./app, --flag]}
          - {application: X, external: true}
          - {application: S, external: false}
        ha-pairs:
          - {primary: SIPS_A, backup: V}
        events:
          - {at: 1, switchover: V}
        """,
    )
    scenario = load_scenario(path)
    v, x = scenario.outside
    assert v.command == CommandProgram(("./app", "--flag"), str(tmp_path))
    assert (x.application, x.external, x.command) == ("X", True, None)
    assert [app.application for app in scenario.applications] == ["SIPS_A", "S"]
    assert scenario.applications[0].peer_host == "host-v"
    assert str(scenario.wall_clock_error()).startswith(f"{path}:4: applications[1].command: ")


def test_serve_config_takes_outside_applications(tmp_path: Path) -> None:
    """serve --config reads command and external entries too."""
    path = write(
        tmp_path,
        "site.yaml",
        """\
        applications:
          - {application: V, command: [./app]}
          - {application: X, external: true}
        """,
    )
    assert [app.application for app in load_management_config(path).outside] == ["V", "X"]


# == virtual time refuses them ===========================================================


def test_virtual_time_run_of_a_command_exits_2(tmp_path: Path) -> None:
    """lca-emulator run without --real-time exits 2 naming the file, line and key."""
    path = vendor_scenario(tmp_path)
    result = subprocess.run(
        [LCA_EMULATOR, "run", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == (
        f"lca-emulator: {path}:6: applications[1].command: "
        "command needs --real-time: a program runs on the wall clock\n"
    )


def test_pytest_item_is_skipped_in_virtual_time(pytester: pytest.Pytester) -> None:
    """As a pytest item, an external application's scenario is skipped with the reason."""
    (pytester.path / "scenario_external.yaml").write_text(
        "duration: 5\napplications:\n  - {application: X, external: true}\n"
    )
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*external needs --real-time*"])


# == real time ===========================================================================


@pytest.mark.slow
@reactor_test
async def test_vendor_program_is_switched_over_when_the_stub_primary_is_killed(
    tmp_path: Path,
) -> None:
    """examples/vendor_app.py registers, is BACKUP, and becomes PRIMARY after the kill."""
    from twisted.internet import reactor

    scenario = load_scenario(vendor_scenario(tmp_path))
    result = await run_scenario(scenario, reactor, mode=RunMode.REAL_TIME, time_scale=0.1)
    assert result.passed, (result.errors, [v.observed for v in result.failures])
    switchover = [e for e in result.journal if e.event is JournalEvent.SWITCHOVER]
    assert [e.application for e in switchover] == ["VENDOR_B"]
    assert "SIPS_A -> VENDOR_B" in switchover[0].detail


@reactor_test
async def test_external_application_is_waited_for_and_seen(tmp_path: Path) -> None:
    """An external application is START_PENDING until it registers by itself; the pair
    then decides for it, and the LCA refuses to stop or kill it."""
    from twisted.internet import reactor

    scenario = load_scenario(
        write(
            tmp_path,
            "scenario_external.yaml",
            """\
            duration: 30
            applications:
              - {application: SIPS_A, host: host-a, mode: primary}
              - {application: VENDOR_C, host: host-c, external: true}
            ha-pairs:
              - {primary: SIPS_A, backup: VENDOR_C}
            """,
        )
    )
    site = Site(
        reactor,
        applications=scenario.applications,
        outside=scenario.outside,
        pairs=scenario.ha_pairs,
        mode=RunMode.REAL_TIME,
        time_scale=0.1,
    )
    await site.open()
    app = ScriptedApplication(reactor, site.lca_port, "VENDOR_C", host="host-c")
    try:
        assert site.layer.start_all() == []
        record = site.record("VENDOR_C")
        assert record is not None
        assert record.status is ApplicationStatus.START_PENDING
        await app.connect(timeout=WAIT)
        await app.register()
        app.report(ApplicationStatus.RUNNING, ExecutionMode.BACKUP)
        await site.wait_for("VENDOR_C", ApplicationStatus.RUNNING, ExecutionMode.BACKUP, within=50)
        await site.wait_for("SIPS_A", ApplicationStatus.RUNNING, ExecutionMode.PRIMARY, within=50)
        for refused in (site.layer.control.stop, site.layer.control.kill):
            with pytest.raises(ControlError, match="VENDOR_C is external"):
                refused("VENDOR_C")
        site.layer.control.kill("SIPS_A")
        await site.wait_for("VENDOR_C", mode=ExecutionMode.PRIMARY, within=50)
        assert ExecutionMode.PRIMARY in app.modes_requested()
        events = [e.event for e in site.layer.journal if e.application == "VENDOR_C"]
        assert events[:3] == [
            JournalEvent.CONFIGURED,
            JournalEvent.START_REQUESTED,
            JournalEvent.REGISTERED,
        ]
        assert JournalEvent.SWITCHOVER in events
    finally:
        app.disconnect()
        await site.close()
