"""The generated decision matrix: every case run through the real harness in virtual time,
and judged by an oracle written from the documents alone (``tests/decision_matrix``).

By default a deterministic subset runs (the doc's rows, samples of the timing and port
blocks and the first rows of a pairwise design: at most ``DEFAULT_LIMIT`` cases, see
``decision_matrix.cases.default_subset``); ``LCA_FULL_MATRIX=1`` runs the whole matrix,
in shards so that ``pytest -n auto`` spreads it.  The test ids carry the sizes; the
sizes alone: ``cd tests && python -m decision_matrix.cases``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from decision_matrix import cases, table
from decision_matrix.compare import Difference, compare, render_report
from decision_matrix.model import Case, Change, Outcome
from decision_matrix.oracle import expected
from reactortest import reactor_test

from lca_emulator.harness.loader import load_scenario
from lca_emulator.harness.runner import run_scenario

FULL_MATRIX = os.environ.get("LCA_FULL_MATRIX") == "1"
SHARD_SIZE = 300
"""Cases per test item when the whole matrix runs."""


def write_scenario(case: Case, path: Path) -> Path:
    """The case's scenario document as a YAML file."""
    text = f"# {case.describe()}\n" + yaml.safe_dump(
        cases.scenario_document(case), sort_keys=False, allow_unicode=True
    )
    path.write_text(text, encoding="utf-8")
    return path


async def observe(
    case: Case, path: Path, reactor: Any
) -> tuple[tuple[Change, ...], tuple[str, ...]]:
    """Run the case's scenario file; what the Management Layer recorded for SIPS_B."""
    result = await run_scenario(load_scenario(write_scenario(case, path)), reactor)
    changes = tuple((c.time, c.value) for c in result.timeline.changes(cases.UNDER_TEST))
    return changes, tuple(result.errors)


async def run_cases(selection: Sequence[Case], folder: Path, reactor: Any) -> list[Difference]:
    """Every case run and compared; every difference kept."""
    differences: list[Difference] = []
    for index, case in enumerate(selection):
        observed, errors = await observe(case, folder / f"case_{index:05d}.yaml", reactor)
        difference = compare(case, expected(case), observed, errors)
        if difference is not None:
            differences.append(difference)
    return differences


@pytest.fixture
def reactor() -> Any:
    """The global reactor, which pytest-twisted runs."""
    from twisted.internet import reactor as global_reactor

    return global_reactor


def _selections() -> list[Any]:
    full = cases.full_matrix()
    if not FULL_MATRIX:
        subset = cases.default_subset()
        return [pytest.param(subset, id=f"default-{len(subset)}-of-{len(full)}")]
    shards = math.ceil(len(full) / SHARD_SIZE)
    return [
        pytest.param(
            full[n * SHARD_SIZE : (n + 1) * SHARD_SIZE],
            id=f"full-{len(full)}-part-{n + 1:02d}-of-{shards:02d}",
        )
        for n in range(shards)
    ]


@pytest.mark.parametrize("selection", _selections())
@reactor_test
async def test_stub_agrees_with_the_oracle(
    selection: tuple[Case, ...], tmp_path: Path, reactor: Any
) -> None:
    """Each case's observed status changes of SIPS_B equal the oracle's, exactly."""
    started = time.perf_counter()
    differences = await run_cases(selection, tmp_path, reactor)
    print(
        f"{cases.summary()}\nran {len(selection)} cases in "
        f"{time.perf_counter() - started:.1f} s; {len(differences)} differ"
    )
    if differences:
        pytest.fail(render_report(differences, len(selection)), pytrace=False)


# -- the comparison itself can fail -------------------------------------------------


def _doc_case(row: str) -> Case:
    return next(case for case in cases.doc_row_cases() if case.origin == f"doc {row}")


def test_a_wrong_observation_is_reported() -> None:
    """A mutated timeline (RUNNING one second late, or a missing INITIALIZING) differs."""
    case = _doc_case("C2")
    oracle = expected(case)
    assert compare(case, oracle, oracle.changes) is None
    late = (*oracle.changes[:-1], (oracle.changes[-1][0] + 1, oracle.changes[-1][1]))
    skipped = (oracle.changes[0], oracle.changes[-1])
    unavailable = (*oracle.changes[:-1], (20.0, table.SERVICE_UNAVAILABLE))
    found = [compare(case, oracle, observed) for observed in (late, skipped, unavailable)]
    assert all(difference is not None for difference in found)
    report = render_report([d for d in found if d is not None], 3)
    assert report.startswith("3 of 3 cases differ from the oracle")
    assert "[doc C2]" in report
    assert "oracle:   START_PENDING@0 -> INITIALIZING@0 -> RUNNING@20" in report
    assert "observed: START_PENDING@0 -> INITIALIZING@0 -> RUNNING@21" in report
    assert "observed: START_PENDING@0 -> INITIALIZING@0 -> SERVICE_UNAVAILABLE@20" in report
    assert compare(case, oracle, oracle.changes, ["line 3: kill SIPS_B: failed"]) is not None


@reactor_test
async def test_a_wrong_oracle_fails_against_a_real_run(tmp_path: Path, reactor: Any) -> None:
    """A real run of row C3 matches the oracle, and not a deliberately wrong outcome."""
    case = _doc_case("C3")
    observed, errors = await observe(case, tmp_path / "case_c3.yaml", reactor)
    assert compare(case, expected(case), observed, errors) is None
    wrong = Outcome(((0.0, table.START_PENDING), (0.0, table.INITIALIZING), (5.0, table.RUNNING)))
    difference = compare(case, wrong, observed, errors)
    assert difference is not None
    assert "observed: START_PENDING@0 -> INITIALIZING@0 -> SERVICE_UNAVAILABLE@5" in (
        render_report([difference], 1)
    )


# -- the oracle and the design, without the harness -------------------------------


@pytest.mark.parametrize("row", table.DOC_ROWS, ids=[row.row for row in table.DOC_ROWS])
def test_the_oracle_gives_each_doc_row_its_reports(row: table.DocRow) -> None:
    """The oracle shows what the doc's "reports" column says, and never what it excludes."""
    outcome = expected(_doc_case(row.row))
    for moment in row.at:
        assert moment in outcome.changes, f"{row.row}: {moment} not in {outcome.render()}"
    statuses = {status for _, status in outcome.changes}
    assert not statuses & set(row.never), f"{row.row}: {outcome.render()}"


def test_the_matrix_covers_every_pair_of_values() -> None:
    """Pairwise complete over all twelve factors; full products where factors interact."""
    full = cases.full_matrix()
    print(cases.summary())
    assert 0 < len(cases.default_subset()) <= cases.DEFAULT_LIMIT
    assert cases.default_subset() == cases.default_subset()
    from decision_matrix.covering import coverage

    assert coverage(cases.pairwise_rows(), cases.FACTOR_LEVELS) == 1.0
    keys = {case.key() for case in full}
    assert len(keys) == len(full)
    assert {case.key() for case in cases.timing_cases()} <= keys
    assert {case.key() for case in cases.port_cases()} <= keys
    assert len(cases.timing_cases()) == len(cases.TIMEOUT_VALUES) * len(cases.component_vectors())
    assert (
        coverage(
            [[cases.TIMING_CLASSES.index(t) for t in v] for v in cases.component_vectors()],
            [len(cases.TIMING_CLASSES)] * len(table.COMPONENTS),
        )
        == 1.0
    )
    ports = {(c.sip_port_state, c.option("backup-sip-port-check"), c.option("control-vip-scripts"),
              c.topology, c.mode, c.role) for c in cases.port_cases()}  # fmt: skip
    assert len(ports) == 2 * 5 * 5 * 2 * 2 * 2


def test_the_exported_reference_scenarios_are_current() -> None:
    """fixtures/matrix/ holds exactly what decision_matrix.export writes (no drift between
    the oracle and the reference suite's files)."""
    from decision_matrix import export

    written = {path.name: path.read_text(encoding="utf-8") for path in export.FOLDER.iterdir()}
    wanted = dict(export.render(index, case) for index, case in enumerate(export.sample()))
    assert written.keys() == wanted.keys()
    stale = [name for name in wanted if written[name] != wanted[name]]
    assert stale == [], (
        f"re-export with: cd tests && python -m decision_matrix.export ({stale[:3]})"
    )
