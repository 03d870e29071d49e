"""``lca-emulator run`` and ``sipserver-stub`` as a user runs them: real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from lca_emulator.cli.run import format_wall, long_run_warning, results_schema, wall_estimate
from lca_emulator.harness.loader import load_scenario
from lca_emulator.harness.runner import RunSettings
from lca_emulator.harness.site import RunMode

BIN = Path(sys.executable).parent

SCENARIO = """\
name: failed T-Controller
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
events:
  - {at: 60, kill: SIPS_A}
expect:
  - {application: SIPS_B, status: SERVICE_UNAVAILABLE, at: 5}
  - {application: SIPS_B, event: switchover-refused, at: 60}
  - {application: SIPS_B, never: PRIMARY}
"""


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one of the console scripts and capture its output."""
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    """A passing scenario file."""
    path = tmp_path / "scenario_ok.yaml"
    path.write_text(SCENARIO)
    return path


def test_passing_scenario_exits_0(scenario: Path) -> None:
    """All expectations hold: one PASS row per scenario, a summary, exit 0."""
    result = run("lca-emulator", "run", str(scenario), cwd=scenario.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS  failed T-Controller  [3/3 expectations" in result.stdout
    assert "1 scenarios: 1 passed, 0 failed" in result.stdout


def test_wrong_expectation_exits_1_with_timeline(scenario: Path) -> None:
    """A wrong expectation fails with exit 1 and prints the observed timeline."""
    scenario.write_text(
        SCENARIO.replace("status: SERVICE_UNAVAILABLE, at: 5", "status: RUNNING, within: 30")
    )
    result = run("lca-emulator", "run", str(scenario), cwd=scenario.parent)
    assert result.returncode == 1
    out = result.stdout
    assert "FAIL  failed T-Controller" in out
    assert "MISS expected SIPS_B status RUNNING within 30s" in out
    assert "observed no RUNNING (START_PENDING@0 -> INITIALIZING@0 -> SERVICE_UNAVAILABLE@5" in out
    assert "observed timeline of SIPS_B:" in out
    assert "switchover-refused" in out


def test_malformed_scenario_exits_2_naming_file_line_key(scenario: Path) -> None:
    """A malformed file exits 2 before anything runs, naming file, line and key path."""
    scenario.write_text(SCENARIO.replace("host: host-b", "hots: host-b"))
    result = run("lca-emulator", "run", str(scenario), cwd=scenario.parent)
    assert result.returncode == 2
    assert f"{scenario}:6: applications[1].hots: unknown key 'hots'; did you mean 'host'?" in (
        result.stderr
    )
    assert result.stdout == ""


def test_missing_path_exits_2(tmp_path: Path) -> None:
    """A path that does not exist is bad input."""
    result = run("lca-emulator", "run", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert result.returncode == 2
    assert "nope.yaml" in result.stderr


def test_json_and_timeline_outputs(scenario: Path) -> None:
    """--json writes the verdicts; --timeline writes each journal as JSON Lines."""
    out = scenario.parent / "out"
    result = run(
        "lca-emulator", "run", str(scenario), "--json", str(out / "r.json"),
        "--timeline", str(out / "tl"), cwd=scenario.parent,
    )  # fmt: skip
    assert result.returncode == 0
    doc = json.loads((out / "r.json").read_text())
    assert doc["summary"] == {"scenarios": 1, "passed": 1, "failed": 0}
    [entry] = doc["scenarios"]
    assert entry["mode"] == "virtual"
    assert [e["observed"] for e in entry["expectations"]] == [
        "SERVICE_UNAVAILABLE at t=5",
        "switchover-refused at t=60",
        "never PRIMARY",
    ]
    lines = (out / "tl" / "scenario_ok.jsonl").read_text().splitlines()  # named after the file
    events = [json.loads(line) for line in lines]
    assert {"time", "application", "event", "status", "mode", "detail"} <= set(events[0])
    refused = [e for e in events if e["event"] == "switchover-refused"]
    assert [(e["time"], e["application"]) for e in refused] == [(60, "SIPS_B")]


def _valid(document: object) -> None:
    """Fail unless ``document`` is valid under the shipped ``--json`` schema."""
    schema = results_schema()
    Draft202012Validator.check_schema(schema)
    Draft202012Validator(schema).validate(document)


def test_json_document_is_structured_and_valid_under_its_schema(scenario: Path) -> None:
    """Real --json output (with --golden) is valid under the shipped schema and carries
    each expectation's kind, subject, value, times and miss as fields."""
    scenario.write_text(
        SCENARIO.replace("at: 60}", "between: [50, 70]}")
        + "  - {application: SIPS_B, mode: BACKUP, at-end: true}\n"
        + "  - {application: SIPS_B, status: RUNNING, within: 30, miss: true}\n"
    )
    here = scenario.parent
    run("lca-emulator", "run", "--golden", "g", "--update-golden", scenario.name, cwd=here)
    result = run(
        "lca-emulator", "run", "--golden", "g", "--json", "r.json", scenario.name, cwd=here
    )
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads((here / "r.json").read_text())
    _valid(doc)
    [entry] = doc["scenarios"]
    assert entry["settings"] == {"mode": "virtual", "transport": "memory", "time_scale": None}
    assert entry["tolerance"] == 0
    assert entry["golden"] == []
    fields = ["kind", "application", "subject", "value", "time", "until", "miss", "passed"]
    rows = [tuple(e.get(f) for f in fields) for e in entry["expectations"]]
    assert rows == [
        ("at", "SIPS_B", "status", "SERVICE_UNAVAILABLE", 5, None, False, True),
        ("between", "SIPS_B", "event", "switchover-refused", 50, 70, False, True),
        ("never", "SIPS_B", "mode", "PRIMARY", None, None, False, True),
        ("at-end", "SIPS_B", "mode", "BACKUP", None, None, False, True),
        ("within", "SIPS_B", "status", "RUNNING", 30, None, True, True),
    ]
    assert "time" not in entry["expectations"][2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "taken/r.json"], "cannot write --json taken/r.json: taken is not a folder"),
        (["--json", "."], "cannot write --json .: . is a folder"),
        (["--timeline", "taken"], "cannot write --timeline taken: taken is not a folder"),
        (["--timeline", "taken/tl"], "cannot write --timeline taken/tl: taken is not a folder"),
        (
            ["--golden", "taken/g", "--update-golden"],
            "cannot write --golden taken/g: taken is not a folder",
        ),
        (["--json", "n" * 300], f"cannot write --json {'n' * 300}: File name too long"),
        (["--timeline", "n" * 300], f"cannot write --timeline {'n' * 300}: File name too long"),
    ],
    ids=[
        "json-in-file",
        "json-folder",
        "timeline-file",
        "timeline-in-file",
        "golden",
        "json-long",
        "timeline-long",
    ],
)
def test_output_paths_are_checked_before_running(
    scenario: Path, args: list[str], message: str
) -> None:
    """An output that cannot be written is exit 2 at once: nothing runs, nothing printed."""
    (scenario.parent / "taken").write_text("a file, not a folder")
    result = run("lca-emulator", "run", *args, scenario.name, cwd=scenario.parent)
    assert result.returncode == 2
    assert result.stderr == f"lca-emulator: {message}\n"
    assert result.stdout == ""


def test_folder_runs_only_scenarios(scenario: Path) -> None:
    """A folder runs every scenario under it; fixture files beside them are skipped."""
    (scenario.parent / "stub.yaml").write_text("application: X\nmode: primary\n")
    result = run("lca-emulator", "run", str(scenario.parent), cwd=scenario.parent)
    assert result.returncode == 0
    assert "running 1 scenario(s)" in result.stdout


def test_stub_with_bad_fixture_exits_2(tmp_path: Path) -> None:
    """sipserver-stub rejects a bad fixture with exit 2, naming file, line and key."""
    fixture = tmp_path / "stub.yaml"
    fixture.write_text("application: SIPS_B\ncomponents:\n  t-controler: ok\n")
    result = run("sipserver-stub", str(fixture), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{fixture}:3: components.t-controler: unknown" in result.stderr
    assert "did you mean 't-controller'?" in result.stderr


SHORT = """\
name: short rehearsal
duration: 40
applications:
  - {application: SIPS_A, host: host-a, mode: primary}
  - application: SIPS_B
    host: host-b
    mode: backup
    options: {TServer: {backup-init-check: true}}
    components: {t-controller: {result: fail, after: 5}}
ha-pairs:
  - {primary: SIPS_A, backup: SIPS_B}
events:
  - {at: 20, kill: SIPS_A}
expect:
  - {application: SIPS_B, status: SERVICE_UNAVAILABLE, within: 40}
  - {application: SIPS_B, event: switchover-refused, within: 40}
  - {application: SIPS_B, never: PRIMARY}
  - {application: SIPS_A, status: STOPPED, at-end: true}
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "flags", [["--real-time"], ["--processes"]], ids=["real-time", "processes"]
)
def test_same_file_runs_on_the_wall_clock(tmp_path: Path, flags: list[str]) -> None:
    """--real-time (stubs in-process) and --processes (stub processes) run the same file."""
    path = tmp_path / "scenario_short.yaml"
    path.write_text(SHORT)
    out = tmp_path / "r.json"
    # x0.2: the primary is killed 4 wall-clock seconds in, so a stub process that is
    # slow to start on a loaded machine has registered by then
    args = ["lca-emulator", "run", str(path), *flags, "--time-scale", "0.2", "--json", str(out)]
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wall clock x0.2" in result.stdout
    assert "times within -0.025/+0.475 s" in result.stdout.splitlines()[0]
    assert "; about 8 s of wall-clock time\n" in result.stdout
    assert "warning" not in result.stdout
    assert "  ... [1/1] short rehearsal (8 s; about 8 s left)\n" in result.stdout
    document = json.loads(out.read_text())
    _valid(document)
    [entry] = document["scenarios"]
    assert entry["mode"] == flags[0].removeprefix("--")
    assert entry["settings"]["time_scale"] == 0.2
    assert entry["passed"]
    # 95 ms late, 5 ms early of wall clock / 0.2
    assert entry["tolerance"] == document["tolerance"] == pytest.approx(0.475)
    assert entry["tolerance_early"] == document["tolerance_early"] == pytest.approx(0.025)


def _descendants_of(ancestor: int) -> dict[int, str]:
    """The live descendants of ``ancestor`` and their names (Linux /proc)."""
    parents: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            head, tail = stat.rsplit(")", 1)
            fields = tail.split()
            if fields[0] != "Z":
                parents[int(entry.name)] = (int(fields[1]), head.split("(", 1)[1])
    found: dict[int, str] = {}
    frontier = {ancestor}
    while frontier:
        frontier = {pid for pid, (parent, _) in parents.items() if parent in frontier}
        found.update({pid: parents[pid][1] for pid in frontier})
    return found


def _stubs_of(ancestor: int) -> list[int]:
    """The stub processes under ``ancestor`` (forked by its stub fork server)."""
    return [pid for pid, name in _descendants_of(ancestor).items() if name == "sipserver-stub"]


def _living(naming: str) -> list[int]:
    """The processes whose command line names ``naming`` and that are neither ended nor
    ending: not a zombie, not exiting (PF_EXITING), no SIGKILL pending (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if naming.encode() not in (entry / "cmdline").read_bytes():
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            status = (entry / "status").read_text()
        except OSError:
            continue  # gone meanwhile
        pending = [line.split()[1] for line in status.splitlines() if line[1:7] == "hdPnd:"]
        killed = any(int(mask, 16) & (1 << (9 - 1)) for mask in pending)
        exiting = int(fields[6]) & 0x4  # PF_EXITING
        if fields[0] not in ("Z", "X") and not killed and not exiting:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_refused_processes_run_leaves_no_fork_server_behind(tmp_path: Path, jobs: str) -> None:
    """--processes forks its stub fork server before it reads the files (it imports the
    stub meanwhile); a run refused for a bad file (exit 2) kills and reaps it first."""
    bad = tmp_path / "scenario_bad.yaml"
    bad.write_text("name: [unclosed\n")
    result = run("lca-emulator", "run", str(bad), "--processes", "--jobs", jobs, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "scenario_bad.yaml" in result.stderr
    assert _living(str(bad)) == []


def test_ctrl_c_stops_stub_processes_and_exits_1(tmp_path: Path) -> None:
    """Ctrl-C during --processes stops the stubs and exits 1, saying the run was cut short."""
    path = tmp_path / "scenario_long.yaml"
    path.write_text(SHORT.replace("duration: 40", "duration: 9000"))
    proc = subprocess.Popen(
        [str(BIN / "lca-emulator"), "run", str(path), "--processes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        header = proc.stdout.readline()
        assert header.startswith("running 1 scenario(s)")
        assert header.endswith("; about 2 h 30 min of wall-clock time\n")
        assert proc.stdout.readline() == (
            "warning: this run will take about 2 h 30 min of wall-clock time; "
            "--time-scale 0.01 runs it 100x faster\n"
        )
        assert (
            proc.stdout.readline()
            == "  ... [1/1] short rehearsal (9000 s; about 2 h 30 min left)\n"
        )
        for _ in range(400):  # until both stub processes exist: up to 20 s
            if len(_stubs_of(proc.pid)) == 2:
                break
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)  # waiting on the run itself, which must not end
        assert len(_stubs_of(proc.pid)) == 2, "the stub processes never started"
        everything = _descendants_of(proc.pid)  # the stubs and their fork server
        assert "stub-forkserver" in everything.values()  # forked from the run, not spawned
        proc.send_signal(2)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 1
        assert "interrupted: 0 of 1 scenarios ran" in err
        assert not [pid for pid in everything if Path(f"/proc/{pid}").exists()]
    finally:
        if proc.poll() is None:
            proc.kill()


def _nice_of(pid: int) -> int:
    """A process's nice value (Linux /proc: field 19 of stat)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _session_of(pid: int) -> int:
    """A process's session id (Linux /proc: field 6 of stat)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])


def _autogroups() -> bool:
    """Whether Linux shares the CPU between sessions first here (autogroups)."""
    switch = Path("/proc/sys/kernel/sched_autogroup_enabled")
    return switch.exists() and switch.read_text().strip() == "1"


def _may_raise_priority() -> bool:
    """Whether a process started from here may lower its nice value to -10."""
    probe = [sys.executable, "-c", "import os; os.setpriority(os.PRIO_PROCESS, 0, -10)"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def test_a_wall_clock_run_and_its_stubs_run_at_a_raised_priority(tmp_path: Path) -> None:
    """Where the system allows it, a wall-clock run and the stubs it starts run at nice
    -10 (so a busy machine delays them less), the stubs in a session of their own at
    nice -10 where sessions share the CPU first; where it does not, the run says so."""
    path = tmp_path / "scenario_long.yaml"
    path.write_text(SHORT.replace("duration: 40", "duration: 9000"))
    own = os.getpriority(os.PRIO_PROCESS, 0)
    permitted = _may_raise_priority()
    expected = own if own <= -10 or not permitted else -10
    proc = subprocess.Popen(
        [str(BIN / "lca-emulator"), "run", str(path), "--processes", "--time-scale", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(400):  # until both stub processes exist: up to 20 s
            if len(_stubs_of(proc.pid)) == 2:
                break
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)
        stubs = _stubs_of(proc.pid)
        assert len(stubs) == 2, "the stub processes never started"
        assert [_nice_of(pid) for pid in [proc.pid, *stubs]] == [expected] * 3
        sessions = {_session_of(pid) for pid in stubs}
        if permitted and _autogroups():
            assert sessions != {_session_of(proc.pid)}
            assert [Path(f"/proc/{pid}/autogroup").read_text().split()[-1] for pid in stubs] == [
                "-10"
            ] * 2
        else:
            assert sessions == {_session_of(proc.pid)}
        proc.send_signal(2)
        _, err = proc.communicate(timeout=30)
        assert ("could not raise the scheduling priority" in err) is (expected > -10)
    finally:
        if proc.poll() is None:
            proc.kill()


def _rows(output: str) -> list[str]:
    """The report without its header and summary (they name the workers and the time)."""
    return [line for line in output.splitlines()[1:-1]]


@pytest.mark.slow
@pytest.mark.parametrize(
    "flags", [(), ("--real-time", "--time-scale", "0.01")], ids=["virtual", "wall-clock"]
)
def test_jobs_give_the_serial_report_in_the_same_order(
    tmp_path: Path, flags: tuple[str, ...]
) -> None:
    """``--jobs 2`` prints the same rows, in file order, with the same exit code (1 here),
    whether its workers read their own files (virtual time) or are given them (wall
    clock)."""
    for index in range(5):
        text = SCENARIO.replace("name: failed T-Controller", f"name: case {index}")
        if index == 3:
            text = text.replace("status: SERVICE_UNAVAILABLE, at: 5", "status: RUNNING, at: 5")
        (tmp_path / f"scenario_{index}.yaml").write_text(text)
    serial = run("lca-emulator", "run", *flags, str(tmp_path), cwd=tmp_path)
    parallel = run("lca-emulator", "run", *flags, "--jobs", "2", str(tmp_path), cwd=tmp_path)
    assert serial.returncode == parallel.returncode == 1, parallel.stderr
    if flags:  # on the wall clock, observed times differ and a serial run shows progress
        verdicts = [line for line in serial.stdout.splitlines() if line[:4] in ("PASS", "FAIL")]
        assert [line for line in _rows(parallel.stdout) if line[:4] in ("PASS", "FAIL")] == (
            verdicts
        )
        assert len(verdicts) == 5
    else:
        assert _rows(parallel.stdout) == _rows(serial.stdout)
    assert "2 workers" in parallel.stdout.splitlines()[0]
    assert "5 scenarios: 4 passed, 1 failed" in parallel.stdout


STUB_FIXTURE = "application: SIPS_C\nhost: host-c\nmode: primary\n"


def _mixed_folder(folder: Path) -> list[str]:
    """Scenarios (one failing) beside a stub fixture they use, in nested folders; the
    paths to run: the folder, one file of it named again, and a file named first."""
    (folder / "stubs").mkdir(parents=True)
    (folder / "stubs" / "primary.yaml").write_text(STUB_FIXTURE)
    for index in range(7):
        text = SCENARIO.replace("name: failed T-Controller", f"name: case {index}")
        if index in (2, 5):
            text = text.replace("status: SERVICE_UNAVAILABLE, at: 5", "status: RUNNING, at: 5")
        if index == 4:
            text = text.replace(
                "applications:\n", "applications:\n  - fixture: ../stubs/primary.yaml\n"
            ).replace("expect:\n", "expect:\n  - {application: SIPS_C, status: RUNNING, at: 0}\n")
        sub = folder / ("b" if index % 2 else "a")
        sub.mkdir(exist_ok=True)
        (sub / f"scenario_{index}.yaml").write_text(text)
    return [
        str(folder / "b" / "scenario_3.yaml"),
        str(folder),
        str(folder / "a" / "scenario_0.yaml"),
    ]


@pytest.mark.parametrize("jobs", ["2", "3"])
def test_jobs_read_their_own_files_and_report_as_serially(tmp_path: Path, jobs: str) -> None:
    """With workers that each read a share of the files, ``--jobs`` prints the serial
    rows in the serial order (a file named twice runs once, where it first counts; a
    stub fixture in the folder is no scenario) and exits as the serial run does."""
    paths = _mixed_folder(tmp_path / "suite")
    serial = run("lca-emulator", "run", *paths, cwd=tmp_path)
    parallel = run("lca-emulator", "run", "--jobs", jobs, *paths, cwd=tmp_path)
    assert serial.returncode == parallel.returncode == 1, parallel.stderr
    assert _rows(parallel.stdout) == _rows(serial.stdout)
    assert [
        line.split("[")[0] for line in _rows(serial.stdout) if line[:4] in ("PASS", "FAIL")
    ] == [
        f"{'FAIL' if index in (2, 5) else 'PASS'}  case {index}  "
        for index in (3, 0, 2, 4, 6, 1, 5)
    ]
    assert f"{jobs} workers" in parallel.stdout.splitlines()[0]
    assert "7 scenarios: 5 passed, 2 failed" in parallel.stdout
    assert parallel.stderr == serial.stderr == ""


def test_jobs_report_every_bad_file_as_serially_and_run_nothing(tmp_path: Path) -> None:
    """Bad files found by ``--jobs`` workers are all reported, in file order, with file
    and line, and nothing runs (exit 2), as in a serial run."""
    paths = _mixed_folder(tmp_path / "suite")
    (tmp_path / "suite" / "a" / "scenario_0.yaml").write_text("name: x\nduration: -1\n")
    (tmp_path / "suite" / "b" / "scenario_9.yaml").write_text("name: y\nduration: 5\nexpekt: []\n")
    serial = run("lca-emulator", "run", *paths, cwd=tmp_path)
    parallel = run("lca-emulator", "run", "--jobs", "2", *paths, cwd=tmp_path)
    assert serial.returncode == parallel.returncode == 2
    assert parallel.stdout == serial.stdout == ""
    assert parallel.stderr == serial.stderr
    assert parallel.stderr.splitlines() == [
        f"lca-emulator: {tmp_path / 'suite' / 'a' / 'scenario_0.yaml'}:2: duration: "
        "expected a number greater than 0, got -1",
        f"lca-emulator: {tmp_path / 'suite' / 'b' / 'scenario_9.yaml'}:3: expekt: unknown key "
        "'expekt'; did you mean 'expect'?",
    ]


def test_jobs_write_the_same_json_as_a_serial_run(tmp_path: Path) -> None:
    """``--json`` from ``--jobs 2`` holds the serial document (wall times aside)."""
    paths = _mixed_folder(tmp_path / "suite")

    def document(*options: str) -> dict[str, object]:
        out = tmp_path / f"results{len(options)}.json"
        done = run("lca-emulator", "run", "-q", "--json", str(out), *options, *paths, cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        data: dict[str, object] = json.loads(out.read_text())
        for scenario in data["scenarios"]:  # type: ignore[attr-defined]
            scenario.pop("wall_seconds")
        return data

    assert document("--jobs", "2") == document()


def test_jobs_must_be_a_positive_count(scenario: Path) -> None:
    """``--jobs 0`` is a usage error (exit 2) that says what is expected."""
    result = run("lca-emulator", "run", "--jobs", "0", str(scenario), cwd=scenario.parent)
    assert result.returncode == 2
    assert "must be 1 or more" in result.stderr


def test_option_notes_show_under_quiet_and_strict_refuses_them(scenario: Path) -> None:
    """A misspelt option is a note even with -q; with --strict it is exit 2 at its line."""
    scenario.write_text(
        SCENARIO.replace("backup-init-check: true}", "backup-init-check: true, bakup-x: 1}")
    )
    quiet = run("lca-emulator", "run", "-q", str(scenario), cwd=scenario.parent)
    assert quiet.returncode == 0
    assert "note: failed T-Controller: SIPS_B: [TServer] unknown option 'bakup-x'" in quiet.stdout
    strict = run("lca-emulator", "run", "--strict", str(scenario), cwd=scenario.parent)
    assert strict.returncode == 2
    assert f"{scenario.name}:8: applications[1].options.TServer.bakup-x: " in strict.stderr
    assert "unknown option 'bakup-x' ignored (an error under --strict)" in strict.stderr


def test_golden_journals_record_compare_and_show_a_difference(scenario: Path) -> None:
    """--update-golden records; the same run then passes; a changed journal fails with a
    diff; a scenario without a golden journal fails saying how to record one."""
    folder = scenario.parent / "golden"
    here = scenario.parent
    recorded = run(
        "lca-emulator", "run", "--golden", "golden", "--update-golden", scenario.name, cwd=here
    )
    assert recorded.returncode == 0, recorded.stderr
    (golden_file,) = folder.iterdir()
    assert golden_file.name == "scenario_ok.jsonl"
    assert run("lca-emulator", "run", "--golden", "golden", scenario.name, cwd=here).returncode == 0

    golden_file.write_text(golden_file.read_text().replace('"time":5.0', '"time":6.0', 1))
    changed = run("lca-emulator", "run", "--golden", "golden", scenario.name, cwd=here)
    assert changed.returncode == 1
    assert "golden: journal differs from the golden one:" in changed.stdout
    assert '      golden: -{"time":6.0' in changed.stdout
    assert '      golden: +{"time":5.0' in changed.stdout

    golden_file.unlink()
    missing = run("lca-emulator", "run", "--golden", "golden", scenario.name, cwd=here)
    assert missing.returncode == 1
    assert "record one with --update-golden" in missing.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--update-golden"], "--update-golden needs --golden DIR"),
        (["--golden", "g", "--real-time"], "--golden compares virtual-time journals"),
    ],
)
def test_golden_usage_errors(scenario: Path, args: list[str], message: str) -> None:
    """Golden options that cannot work are refused before anything runs (exit 2)."""
    result = run("lca-emulator", "run", *args, scenario.name, cwd=scenario.parent)
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.5, "0.5 s"), (45, "45 s"), (59.4, "59.4 s"), (60, "1 min"), (725, "12 min"),
     (3600, "1 h"), (9000, "2 h 30 min"), (86_400 + 60, "24 h 1 min")],
)  # fmt: skip
def test_wall_durations_read_as_people_say_them(seconds: float, text: str) -> None:
    """Wall-clock durations are shown in seconds, minutes, or hours and minutes."""
    assert format_wall(seconds) == text


def test_wall_estimate_and_long_run_warning(tmp_path: Path) -> None:
    """The estimate is durations x time-scale (shared by workers); beyond 10 minutes a
    warning names a --time-scale that brings the run near 10 minutes or under."""
    path = tmp_path / "scenario_short.yaml"
    path.write_text(SHORT)
    scenarios = [load_scenario(str(path))] * 12  # 12 x 40 s
    assert wall_estimate(scenarios, 0.5) == 240
    assert wall_estimate(scenarios, 1.0, jobs=4) == 120
    assert wall_estimate(scenarios[:1], 1.0, jobs=4) == 40  # not less than the longest
    assert wall_estimate(scenarios, 1.25) == 600
    settings = RunSettings(RunMode.REAL_TIME, 1.25)
    assert long_run_warning(600, settings) is None
    assert long_run_warning(601, settings) == (
        "warning: this run will take about 10 min of wall-clock time; "
        "--time-scale 0.125 runs it 10x faster"
    )


LOGS_AS_A_RUN = """\
import sys, warnings
from twisted.logger import Logger
from lca_emulator.harness.batch import log_critical_only
log = Logger(namespace="probe")
log.critical("before: {n}", n=1)
log_critical_only(sys.stderr)
log.info("an info line")
log.error("an error line")
log.critical("after: {n}", n=2)
warnings.warn("a warning", UserWarning)
"""


def test_a_run_logs_critical_events_only_and_leaves_warnings_to_python() -> None:
    """A run's log shows critical events once each, as before logging began, nothing
    below them, and Python still prints its warnings."""
    done = subprocess.run(
        [sys.executable, "-c", LOGS_AS_A_RUN], capture_output=True, text=True, check=True
    )
    assert done.stderr.splitlines() == [
        "before: 1",
        "after: 2",
        "<string>:10: UserWarning: a warning",
    ]


@pytest.mark.parametrize(
    ("ending", "code", "stderr"),
    [("pass", 0, ""), ("raise SystemExit(3)", 3, ""), ("raise SystemExit('no')", 1, "no\n")],
)
def test_console_scripts_end_as_the_interpreter_would(ending: str, code: int, stderr: str) -> None:
    """The console scripts skip the interpreter's teardown, not what comes before it:
    output flushed, atexit handlers run, the exit code of SystemExit (1 for a message)."""
    script = (
        "import atexit, sys, threading\n"
        "from lca_common.entrypoints import exit_without_teardown\n"
        "atexit.register(lambda: print('atexit ran'))\n"
        "done = threading.Event()\n"
        "def late() -> None:\n"
        "    done.wait()\n"
        "    sys.stdout.write('thread ran ')\n"
        "def main():\n"
        "    threading.Thread(target=late).start()\n"
        "    sys.stdout.write('unflushed ')\n"
        "    done.set()\n"
        f"    {ending}\n"
        "exit_without_teardown(main)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == code
    assert sorted(done.stdout.split()) == ["atexit", "ran", "ran", "thread", "unflushed"]
    assert done.stdout.endswith("atexit ran\n")
    assert done.stderr == stderr


def test_the_collector_comes_back_on_after_the_start() -> None:
    """A console script starts with the garbage collector off; it is back on (with what
    exists by then frozen) once the command has read its files, and left alone where
    it was on (a test calling ``main``)."""
    script = (
        "import gc\n"
        "from lca_common.entrypoints import collect_garbage_from_now\n"
        "collect_garbage_from_now()\n"
        "print(gc.isenabled(), gc.get_freeze_count())\n"
        "gc.disable()\n"
        "collect_garbage_from_now()\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["True", "0", "True", "True"]
