"""The pytest plugin, tested the way users meet it: through pytester, in a subprocess."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PASSING = """\
name: backup with a failed T-Controller
duration: 120
applications:
  - {application: SIPS_A, host: host-a, mode: primary}
  - application: SIPS_B
    host: host-b
    mode: backup
    options: {TServer: {backup-init-check: true}}
    components: {t-controller: {result: fail, after: 5}}
ha-pairs:
  - {primary: SIPS_A, backup: SIPS_B}
expect:
  - {application: SIPS_B, status: SERVICE_UNAVAILABLE, at: 5}
  - {application: SIPS_B, never: RUNNING}
"""

WRONG = PASSING.replace("never: RUNNING", "status: RUNNING, within: 60")

MALFORMED = PASSING.replace("duration: 120", "duration: 120\nexpekt: []")

PYTHON_TEST = """
import pytest_twisted
from lca_emulator import ApplicationStatus, ExecutionMode
from lca_emulator.testing import ScriptedApplication
from twisted.internet import reactor


@pytest_twisted.ensureDeferred
async def test_scripted_application(lca_site):
    app = ScriptedApplication(reactor, lca_site.lca_port, "APP", network=lca_site.network)
    await app.connect()
    await app.register()
    await lca_site.run_until(30)
    app.report(ApplicationStatus.RUNNING, ExecutionMode.PRIMARY)
    when = await lca_site.wait_for("APP", ApplicationStatus.RUNNING, within=5)
    assert when == 30
"""


def write(pytester: pytest.Pytester, name: str, text: str) -> None:
    """Write one file into the pytester directory."""
    (pytester.path / name).write_text(textwrap.dedent(text))


def test_scenario_file_is_collected_as_an_item(pytester: pytest.Pytester) -> None:
    """A file named scenario_*.yaml becomes one item named after the scenario."""
    write(pytester, "scenario_backup.yaml", PASSING)
    write(pytester, "not_a_scenario.yaml", PASSING)
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    result.stdout.fnmatch_lines(["scenario_backup.yaml::backup with a failed T-Controller"])
    assert "not_a_scenario" not in result.stdout.str()


def test_passing_scenario_passes(pytester: pytest.Pytester) -> None:
    """A scenario whose expectations hold is a passing test."""
    write(pytester, "scenario_backup.yaml", PASSING)
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_wrong_expectation_fails_with_the_timeline(pytester: pytest.Pytester) -> None:
    """A wrong expectation fails and the report shows expected, observed and the timeline."""
    write(pytester, "scenario_backup.yaml", WRONG)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*MISS expected SIPS_B status RUNNING within 60s*observed no RUNNING*",
            "*observed timeline of SIPS_B:*",
            "*t=      5*status*SERVICE_UNAVAILABLE*",
        ]
    )


def test_malformed_scenario_is_a_collection_error(pytester: pytest.Pytester) -> None:
    """A malformed scenario is a collection error naming the file, line and key."""
    write(pytester, "scenario_backup.yaml", MALFORMED)
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*scenario_backup.yaml:3: expekt: unknown key 'expekt'*"])


def test_ini_patterns_choose_the_files(pytester: pytest.Pytester) -> None:
    """The lca_scenario_files ini option replaces the default name patterns."""
    pytester.makeini("[pytest]\nlca_scenario_files = *.rehearsal.yaml\n")
    write(pytester, "backup.rehearsal.yaml", PASSING)
    write(pytester, "scenario_ignored.yaml", WRONG)
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_site_fixture_in_a_python_test(pytester: pytest.Pytester) -> None:
    """lca_site gives a Python test an emulator on port 0 driven by the virtual clock."""
    pytester.makepyfile(test_site=PYTHON_TEST)
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


@pytest.mark.slow
def test_same_results_under_xdist(pytester: pytest.Pytester) -> None:
    """pytest -n 2 gives the same outcomes as a serial run."""
    write(pytester, "scenario_good.yaml", PASSING)
    write(pytester, "scenario_bad.yaml", WRONG)
    pytester.makepyfile(test_site=PYTHON_TEST)
    serial = pytester.runpytest_subprocess()
    parallel = pytester.runpytest_subprocess("-n", "2")
    serial.assert_outcomes(passed=2, failed=1)
    parallel.assert_outcomes(passed=2, failed=1)


def test_plugin_import_does_not_install_a_reactor() -> None:
    """Importing the plugin leaves the reactor choice to pytest-twisted."""
    code = (
        "import sys, lca_emulator.pytest_plugin; "
        "sys.exit('twisted.internet.reactor' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.slow
def test_processes_mode_runs_stub_processes(pytester: pytest.Pytester) -> None:
    """--lca-mode processes runs the same file with sipserver-stub child processes."""
    # the stub's reports are judged after its process started, however slow that was on
    # a busy machine: this checks the mode, not the timing (tests/test_run_cli.py does)
    text = PASSING.replace("duration: 120", "duration: 50").replace("at: 5}", "after: 5}")
    write(pytester, "scenario_backup.yaml", text)
    # x0.1: 5 wall-clock seconds, room for stub processes slow to start on a busy machine
    result = pytester.runpytest_subprocess("--lca-mode", "processes", "--lca-time-scale", "0.1")
    result.assert_outcomes(passed=1)


TYPO = PASSING.replace("backup-init-check: true", "backup-init-check: true, backup-init-chek: x")


def test_option_notes_are_in_the_report(pytester: pytest.Pytester) -> None:
    """An option the server ignores passes, but the report names it after the run."""
    write(pytester, "scenario_typo.yaml", TYPO)
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*lca-emulator notes*", "*unknown option 'backup-init-chek' ignored*"]
    )


def test_strict_makes_an_ignored_option_a_collection_error(pytester: pytest.Pytester) -> None:
    """``--lca-strict``: the same file is a collection error naming the line."""
    write(pytester, "scenario_typo.yaml", TYPO)
    result = pytester.runpytest_subprocess("-q", "--lca-strict")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*scenario_typo.yaml:8: *backup-init-chek*--strict*"])
