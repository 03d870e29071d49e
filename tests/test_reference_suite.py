"""The reference suite under ``fixtures/`` loads cleanly, and the stub's decision table
(``docs/sipserver-stub.md``) and its scenario files cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from reactortest import reactor_test

from lca_emulator.cli.run import load_all
from lca_emulator.harness import golden
from lca_emulator.harness.model import Scenario
from lca_emulator.harness.network import Transport
from lca_emulator.harness.runner import run_scenario
from lca_emulator.journal import JournalEntry

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
DECISION_TABLE = FIXTURES / "decision-table"
STUB_DOC = ROOT / "docs" / "sipserver-stub.md"

_DOC_REFERENCE = re.compile(r"fixtures/decision-table/(scenario_[A-Za-z0-9_-]+\.ya?ml)")


def test_reference_suite_loads_and_matches_the_decision_table() -> None:
    """Every scenario under fixtures/ loads; each decision-table file is in the doc's table."""
    scenarios, problems = load_all([str(FIXTURES)])
    assert [str(problem) for problem in problems] == []

    table_files = sorted(path.name for path in DECISION_TABLE.iterdir() if path.is_file())
    assert table_files, "fixtures/decision-table/ holds no scenarios"
    assert [name for name in table_files if not re.fullmatch(r"scenario_\w+\.ya?ml", name)] == []

    loaded = {Path(scenario.path).resolve() for scenario in scenarios}
    assert [name for name in table_files if DECISION_TABLE / name not in loaded] == []

    referenced = set(_DOC_REFERENCE.findall(STUB_DOC.read_text(encoding="utf-8")))
    assert [name for name in table_files if name not in referenced] == []
    assert sorted(referenced - set(table_files)) == [], "the doc names files that do not exist"


SCENARIOS, _ = load_all([str(FIXTURES)])


def _per_application(journal: tuple[JournalEntry, ...]) -> dict[str, list[dict[str, Any]]]:
    timelines: dict[str, list[dict[str, Any]]] = {}
    for entry in journal:
        timelines.setdefault(entry.application, []).append(entry.to_json())
    return timelines


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: Path(s.path).stem)
@reactor_test
async def test_memory_and_tcp_give_the_same_run(scenario: Scenario) -> None:
    """In memory and over loopback TCP, a scenario passes alike and each application's
    journal is the same to the byte (events of different applications at the same
    instant may interleave differently: that order is the kernel's on TCP)."""
    from twisted.internet import reactor

    memory = await run_scenario(scenario, reactor, transport=Transport.MEMORY)
    tcp = await run_scenario(scenario, reactor, transport=Transport.TCP)
    assert memory.passed
    assert tcp.passed
    assert [v.observed for v in memory.verdicts] == [v.observed for v in tcp.verdicts]
    assert _per_application(memory.journal) == _per_application(tcp.journal)
    assert sorted(map(repr, memory.journal)) == sorted(map(repr, tcp.journal))


GOLDEN = ROOT / "tests" / "golden"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: Path(s.path).stem)
@reactor_test
async def test_reference_journals_match_the_golden_ones(scenario: Scenario) -> None:
    """Each reference scenario's whole journal is the one recorded in tests/golden
    (re-record with: lca-emulator run --golden tests/golden --update-golden fixtures/)."""
    from twisted.internet import reactor

    result = await run_scenario(scenario, reactor)
    assert golden.compare(scenario.path, result.journal, GOLDEN, base=ROOT) == ()
