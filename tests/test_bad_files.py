"""Every malformed file of ``bench/bounds.py`` given to the three commands in this process:
``lca-emulator run FILE``, ``lca-emulator serve --config FILE`` and ``sipserver-stub FILE``
each exit 2 naming the file and the fault's line, without a traceback.  The bench runs
the same table through real processes, with their start-up time; here each file takes
milliseconds.  A file accepted by mistake fails the test instead of starting a reactor.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from lca_emulator import cli as emulator_cli
from lca_emulator.cli import run as run_cli
from sipserver_stub import cli as stub_cli

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bounds.py"


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bounds", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bounds", module)  # dataclasses look their module up
    spec.loader.exec_module(sys.modules["bounds"])
    return sys.modules["bounds"]


bounds = _load_bench()


def _in_process(command: str, path: Path) -> list[str]:
    """The arguments of ``command``'s ``main`` for ``path`` (no program name)."""
    return bounds.command_line(command, path)[1:]  # type: ignore[no-any-return]


def _never(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the file was accepted: the command went on to run")


@pytest.fixture
def no_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Whatever a command would run once its file is accepted fails the test instead."""
    import twisted.internet.task

    monkeypatch.setattr(twisted.internet.task, "react", _never)
    monkeypatch.setattr(run_cli, "_run_all", _never)
    yield
    bounds.release_held()


def test_the_table_has_every_kind_of_bad_file() -> None:
    """The table holds the 86 files the issue asks for, each with a name of its own."""
    names = [row.name for row in bounds.BAD_FILES]
    assert len(names) == bounds.BAD_FILE_COUNT == 86
    assert len(set(names)) == len(names)
    for kind in ("billion-laughs", "fifo", "dev-zero", "nul", "bel", "huge", "directory"):
        assert kind in names


@pytest.mark.usefixtures("no_runs")
@pytest.mark.parametrize("row", bounds.BAD_FILES, ids=lambda row: row.name)
def test_bad_file_exits_2_with_file_and_line(
    row: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each command exits 2, names the file and (where the fault has one) its line."""
    path = row.build(tmp_path)
    mains = {
        bounds.RUN: emulator_cli.main,
        bounds.SERVE: emulator_cli.main,
        bounds.STUB: stub_cli.main,
    }
    for command in bounds.COMMANDS:
        started = time.monotonic()
        with pytest.raises(SystemExit) as exit_info:
            mains[command](_in_process(command, path))
        code = exit_info.value.code
        stderr = capsys.readouterr().err
        outcome = bounds.FileOutcome(row, command, path, code, time.monotonic() - started, stderr)
        assert outcome.problems() == [], (command, stderr)
