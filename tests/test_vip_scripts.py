"""IP Address Takeover scripts: a host's ``vip-scripts`` run by its LCA in a switchover.

The order (disable on the old primary's host, then enable on the new one's) and what
is journaled are checked in virtual time with a scripted runner; a real run on the
wall clock runs real scripts.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from reactortest import reactor_test
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock

from lca_common.yamlsource import ConfigError
from lca_emulator.applications import ApplicationSpec, CommandProgram
from lca_emulator.harness.loader import load_scenario
from lca_emulator.harness.runner import run_scenario
from lca_emulator.harness.site import RunMode
from lca_emulator.hosts import VipScripts
from lca_emulator.journal import JournalEvent
from lca_emulator.layer import ManagementLayer
from lca_emulator.lca.processes import ProcessExit
from lca_emulator.registry import ApplicationRecord
from lca_emulator.scs.ha import Switchover
from lca_emulator.scs.server import HaPair

UP = Path("/bin/vip-up")
DOWN = Path("/bin/vip-down")


class Runner:
    """Scripts that end when told to; each run is recorded."""

    def __init__(self) -> None:
        self.runs: list[tuple[str | None, tuple[str, ...]]] = []
        self.pending: list[Deferred[ProcessExit]] = []

    def run(self, host: str | None, program: CommandProgram) -> Deferred[ProcessExit]:
        self.runs.append((host, program.argv))
        d: Deferred[ProcessExit] = Deferred()
        self.pending.append(d)
        return d


def layer_with_scripts(runner: object) -> ManagementLayer:
    vip = {
        name: VipScripts(
            enable=CommandProgram((str(UP), name), "/"),
            disable=CommandProgram((str(DOWN), name), "/"),
        )
        for name in ("host-a", "host-b")
    }
    layer = ManagementLayer(
        Clock(),
        applications=[ApplicationSpec("A", host="host-a"), ApplicationSpec("B", host="host-b")],
        pairs=[HaPair("A", "B")],
        vip_scripts=vip,
        scripts=runner,  # type: ignore[arg-type]
    )
    layer.scs.uses_ip_takeover("A")
    return layer


def vip_entries(layer: ManagementLayer) -> list[tuple[str, str, str]]:
    events = (JournalEvent.VIP_DISABLED, JournalEvent.VIP_ENABLED)
    return [(e.application, e.event.value, e.detail) for e in layer.journal if e.event in events]


def test_disable_runs_first_and_enable_waits_for_its_end() -> None:
    runner = Runner()
    layer = layer_with_scripts(runner)
    layer.scs._move_vip(Switchover("A", "B", "test"))
    assert runner.runs == [("host-a", (str(DOWN), "host-a"))]
    assert vip_entries(layer) == []  # journaled when the script has ended
    runner.pending[0].callback(ProcessExit(code=0, signal=None))
    assert runner.runs[1] == ("host-b", (str(UP), "host-b"))
    runner.pending[1].callback(ProcessExit(code=3, signal=None))
    assert vip_entries(layer) == [
        ("A", "vip-disabled", f"host=host-a: {DOWN} host-a exited with code 0"),
        ("B", "vip-enabled", f"host=host-b: {UP} host-b exited with code 3"),
    ]


def test_a_script_that_cannot_run_is_journaled_and_the_next_one_runs() -> None:
    class Failing(Runner):
        def run(self, host: str | None, program: CommandProgram) -> Deferred[ProcessExit]:
            self.runs.append((host, program.argv))
            if program.argv[0] == str(DOWN):
                return fail(FileNotFoundError("no such program"))
            return succeed(ProcessExit(code=0, signal=None))

    runner = Failing()
    layer = layer_with_scripts(runner)
    layer.scs._move_vip(Switchover("A", "B", "test"))
    assert [event for _, event, _ in vip_entries(layer)] == ["vip-disabled", "vip-enabled"]
    assert "could not run: no such program" in vip_entries(layer)[0][2]


def test_a_script_on_an_unreachable_host_does_not_run() -> None:
    runner = Runner()
    layer = layer_with_scripts(runner)
    layer.cut_lca_link("host-a", None)
    layer.scs._move_vip(Switchover("A", "B", "test"))
    assert runner.runs == [("host-b", (str(UP), "host-b"))]
    assert vip_entries(layer)[0][2] == f"host=host-a: {DOWN} host-a: not run, host unreachable"


def test_without_a_runner_the_switchover_only_journals() -> None:
    layer = layer_with_scripts(None)
    layer.scs._move_vip(Switchover("A", "B", "test"))
    assert vip_entries(layer) == [
        ("A", "vip-disabled", "host=host-a"),
        ("B", "vip-enabled", "host=host-b"),
    ]


def write_scenario(tmp_path: Path) -> Path:
    script = tmp_path / "vip.py"
    script.write_text(
        "import os, sys\n"
        "with open(sys.argv[1], 'a') as out:\n"
        "    out.write(os.environ['LCA_HOST'] + ' ' + sys.argv[2] + '\\n')\n",
        encoding="utf-8",
    )
    log = tmp_path / "vip.log"
    py = sys.executable
    scripts = f"{{enable: [{py}, vip.py, {log}, up], disable: [{py}, vip.py, {log}, down]}}"
    takeover = "{TServer: {control-vip-scripts: true}}"
    path = tmp_path / "scenario_vip.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            duration: 6
            hosts:
              - {{name: host-a, vip-scripts: {scripts}}}
              - {{name: host-b, vip-scripts: {scripts}}}
            applications:
              - {{application: SIPS_A, host: host-a, mode: primary, options: {takeover}}}
              - {{application: SIPS_B, host: host-b, mode: backup, options: {takeover}}}
            ha-pairs:
              - {{primary: SIPS_A, backup: SIPS_B}}
            events:
              - {{at: 2, kill: SIPS_A}}
            expect:
              - {{application: SIPS_A, event: vip-disabled, within: 5}}
              - {{application: SIPS_B, event: vip-enabled, within: 5}}
            """
        ),
        encoding="utf-8",
    )
    return path


def test_scripts_need_the_wall_clock(tmp_path: Path) -> None:
    scenario = load_scenario(write_scenario(tmp_path))
    error = scenario.wall_clock_error()
    assert isinstance(error, ConfigError)
    assert error.key_path == "hosts[0].vip-scripts"
    assert "needs --real-time" in error.problem


@reactor_test
async def test_real_scripts_run_in_order_on_the_wall_clock(tmp_path: Path) -> None:
    from twisted.internet import reactor

    scenario = load_scenario(write_scenario(tmp_path))
    result = await run_scenario(scenario, reactor, mode=RunMode.REAL_TIME, time_scale=0.1)
    assert result.passed, (result.errors, [v.observed for v in result.failures])
    assert (tmp_path / "vip.log").read_text(encoding="utf-8").splitlines() == [
        "host-a down",
        "host-b up",
    ]
    details = [e.detail for e in result.journal if e.event.value.startswith("vip-")]
    assert [d.split(":")[0] for d in details] == ["host=host-a", "host=host-b"]
    assert [d.endswith("exited with code 0") for d in details] == [True, True]


def test_records_are_untouched_by_scripts() -> None:
    """A script's outcome is journaled against the application; its record stays."""
    runner = Runner()
    layer = layer_with_scripts(runner)
    before: ApplicationRecord | None = layer.registry.get("A")
    layer.scs._move_vip(Switchover("A", "B", "test"))
    runner.pending[0].callback(ProcessExit(code=0, signal=None))
    assert layer.registry.get("A") == before


@pytest.mark.parametrize("entry", ["{enable: []}", "{enable: ls}", "{start: [ls]}"])
def test_bad_vip_scripts_are_file_errors(tmp_path: Path, entry: str) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(
        f"duration: 5\nhosts:\n  - {{name: host-a, vip-scripts: {entry}}}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    assert caught.value.line == 3
    assert caught.value.key_path.startswith("hosts[0].vip-scripts")
