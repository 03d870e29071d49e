"""The YAML examples and the worked timelines of the docs are real.

- Every ```yaml block of the pages below loads: a scenario (it has ``duration``) loads
  and passes in virtual time, unless it names a fixture file or an outside program
  (those need files or processes the page only describes); a stub fixture (top-level
  ``application``) loads as a fixture; anything else loads as a ``serve --config``
  file (so a fragment such as ``scs: {...}`` is checked too).
- Every ```text block of ``docs/faults.md`` whose info string names a reference
  scenario (```text fixtures/hosts/scenario_x.yaml) shows lines of that scenario's
  golden journal (``tests/golden``), in order, written as :func:`timeline_line` writes
  them; a line ``...`` stands for lines left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from reactortest import reactor_test

from lca_emulator.harness import golden
from lca_emulator.harness.loader import load_management_config, load_scenario
from lca_emulator.harness.runner import run_scenario
from sipserver_stub.fixture import load_fixture

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GOLDEN = ROOT / "tests" / "golden"
PAGES = ("faults.md", "formats.md", "ha-rules.md")
"""The pages whose YAML examples are checked."""

_FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_NEEDS_FILES = ("fixture", "command", "external")
"""Application keys that need a file or a process the page only describes."""


@dataclass(frozen=True)
class Block:
    """One fenced block of a page."""

    page: str
    line: int
    info: str
    body: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def _blocks(page: str) -> Iterator[Block]:
    text = (DOCS / page).read_text(encoding="utf-8")
    for fence in _FENCE.finditer(text):
        line = text.count("\n", 0, fence.start()) + 1
        yield Block(page, line, fence["info"].strip(), fence["body"])


YAML_BLOCKS = [b for page in PAGES for b in _blocks(page) if b.info.split()[:1] == ["yaml"]]


def _kind(data: Any) -> str:
    if not isinstance(data, dict):
        return "other"
    if "duration" in data:
        entries = data.get("applications") or []
        if any(isinstance(e, dict) and set(e) & set(_NEEDS_FILES) for e in entries):
            return "scenario with files"
        return "scenario"
    if "application" in data:
        return "fixture"
    return "serve config"


def test_every_page_has_yaml_examples_that_run() -> None:
    """The check below is not empty: each page has scenarios it runs."""
    for page in PAGES:
        kinds = [_kind(yaml.safe_load(b.body)) for b in YAML_BLOCKS if b.page == page]
        assert kinds.count("scenario") >= 2, f"{page}: {kinds}"


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=str)
@reactor_test
async def test_yaml_example_loads_and_a_scenario_passes(block: Block, tmp_path: Path) -> None:
    """A scenario example passes in virtual time; other examples load."""
    from twisted.internet import reactor

    data = yaml.safe_load(block.body)
    kind = _kind(data)
    path = tmp_path / "example.yaml"
    path.write_text(block.body, encoding="utf-8")
    if kind == "scenario":
        result = await run_scenario(load_scenario(path), reactor)
        missed = [v.observed for v in result.verdicts if not v.passed]
        assert result.passed, f"{block}: errors {result.errors}, missed {missed}"
    elif kind == "scenario with files":
        assert data["duration"] > 0
    elif kind == "fixture":
        load_fixture(path)
    elif kind == "serve config":
        load_management_config(path)
    else:
        pytest.fail(f"{block}: a YAML example that is not a mapping")


# -- worked timelines ------------------------------------------------------------


def timeline_line(entry: dict[str, Any]) -> str:
    """One journal entry as the worked timelines of docs/faults.md show it."""
    line = (
        f"t={entry['time']:<7g} {entry['application']:<6} {entry['event']:<18} "
        f"{entry['status']:<19} {entry['mode']:<7}  {entry['detail']}"
    )
    if "log-id" in entry:
        line += f" [log-id {entry['log-id']}]"
    return line.rstrip()


def _normal(line: str) -> str:
    return " ".join(line.split())


TIMELINES = [b for b in _blocks("faults.md") if b.info.startswith("text fixtures/")]


def test_faults_md_has_worked_timelines() -> None:
    assert len(TIMELINES) >= 3


@pytest.mark.parametrize("block", TIMELINES, ids=str)
def test_worked_timeline_is_the_golden_journal(block: Block) -> None:
    """Each line shown is a line of the scenario's golden journal, in order."""
    scenario = block.info.split()[1]
    assert (ROOT / scenario).is_file(), f"{block}: no {scenario}"
    journal = GOLDEN / golden.result_file_name(str(ROOT / scenario), ROOT)
    lines = [
        _normal(timeline_line(json.loads(raw)))
        for raw in journal.read_text(encoding="utf-8").splitlines()
    ]
    position = 0
    for shown in block.body.splitlines():
        if shown.strip() in ("", "..."):
            continue
        wanted = _normal(shown)
        assert wanted in lines[position:], f"{block}: not in {journal.name} (in order): {shown}"
        position = lines.index(wanted, position) + 1
