"""Golden journals: a scenario's whole journal, recorded once and compared on every run.

For regression suites: ``lca-emulator run --golden DIR`` fails a scenario whose journal
(every entry, in order, as ``--timeline`` writes it) differs from the one recorded in
``DIR``, and shows the difference; ``--update-golden`` records them.  Virtual time
only: on the wall clock times differ from run to run.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from lca_emulator.journal import JournalEntry

MAX_DIFF_LINES = 40
"""A longer difference is cut (the rest is counted)."""


def journal_text(journal: Iterable[JournalEntry]) -> str:
    """A journal as JSON Lines, one entry per line (the ``--timeline`` format)."""
    return "".join(json.dumps(e.to_json(), separators=(",", ":")) + "\n" for e in journal)


def result_file_name(scenario_path: str, base: Path | None = None) -> str:
    """The file name for a scenario's journal: its path relative to ``base`` (the
    current folder by default), folders joined by ``__``, so two scenarios never share
    one: ``fixtures/ha/scenario_x.yaml`` -> ``fixtures__ha__scenario_x.jsonl``."""
    path = Path(os.path.abspath(scenario_path))
    root = Path(os.path.abspath(base if base is not None else Path.cwd()))
    try:
        parts = path.relative_to(root).with_suffix("").parts
    except ValueError:
        parts = path.with_suffix("").parts[1:]
    return "__".join(parts) + ".jsonl"


def compare(
    scenario_path: str,
    journal: Iterable[JournalEntry],
    folder: Path,
    *,
    base: Path | None = None,
) -> tuple[str, ...]:
    """How the journal differs from the golden one: () when it is the same."""
    golden = folder / result_file_name(scenario_path, base)
    try:
        expected = golden.read_text(encoding="utf-8")
    except FileNotFoundError:
        return (f"no golden journal {golden}: record one with --update-golden",)
    except OSError as e:
        return (f"cannot read the golden journal {golden}: {e.strerror or e}",)
    observed = journal_text(journal)
    if observed == expected:
        return ()
    diff = list(
        difflib.unified_diff(
            expected.splitlines(),
            observed.splitlines(),
            fromfile=f"golden {golden}",
            tofile="this run",
            lineterm="",
        )
    )
    if len(diff) > MAX_DIFF_LINES:
        diff = [*diff[:MAX_DIFF_LINES], f"... ({len(diff) - MAX_DIFF_LINES} more lines)"]
    return ("journal differs from the golden one:", *diff)


def record(
    scenario_path: str,
    journal: Iterable[JournalEntry],
    folder: Path,
    *,
    base: Path | None = None,
) -> Path:
    """Write the journal as the golden one; returns the file written."""
    folder.mkdir(parents=True, exist_ok=True)
    golden = folder / result_file_name(scenario_path, base)
    golden.write_text(journal_text(journal), encoding="utf-8")
    return golden
