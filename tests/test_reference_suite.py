"""The reference suite under ``fixtures/`` loads cleanly, and the stub's decision table
(``docs/sipserver-stub.md``) and its scenario files cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

from lca_emulator.cli.run import load_all

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
