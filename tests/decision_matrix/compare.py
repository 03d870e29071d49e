"""Observed against expected, and a readable report of every difference."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .model import Case, Change, Outcome, format_time

SHOWN: int = 60
"""Differences listed one by one in a report; the rest are only counted by kind."""


@dataclass(frozen=True)
class Difference:
    """A case whose run did not show what the oracle expects (or went wrong)."""

    case: Case
    expected: Outcome
    observed: tuple[Change, ...]
    errors: tuple[str, ...] = ()


def render_changes(changes: Sequence[Change]) -> str:
    return " -> ".join(f"{status}@{format_time(t)}" for t, status in changes) or "(nothing)"


def compare(
    case: Case,
    expected: Outcome,
    observed: Sequence[Change],
    errors: Sequence[str] = (),
) -> Difference | None:
    """None when the run shows exactly the expected changes and reported no error."""
    seen = tuple((float(t), str(status)) for t, status in observed)
    wanted = tuple((float(t), status) for t, status in expected.changes)
    if seen == wanted and not errors:
        return None
    return Difference(case, expected, seen, tuple(errors))


def _kind(difference: Difference) -> str:
    situation = difference.expected.rule.split(":", 1)[0]
    statuses = [status for _, status in difference.observed]
    observed = " -> ".join(statuses) or "(nothing)"
    if statuses == [status for _, status in difference.expected.changes]:
        observed += ", at other times"
    if difference.errors:
        observed += ", with run errors"
    return f"oracle {situation} ({difference.expected.render()}) / observed {observed}"


def render_report(differences: Sequence[Difference], total: int) -> str:
    """The differences as a table: case, oracle (with the doc rule), observed."""
    lines = [f"{len(differences)} of {total} cases differ from the oracle", ""]
    width = len(str(min(len(differences), SHOWN)))
    for n, difference in enumerate(differences[:SHOWN], 1):
        pad = " " * (width + 2)
        lines.append(f"{n:>{width}}. {difference.case.describe()}")
        lines.append(f"{pad}oracle:   {difference.expected.render()}")
        lines.append(f"{pad}          ({difference.expected.rule})")
        lines.append(f"{pad}observed: {render_changes(difference.observed)}")
        lines.extend(f"{pad}error:    {error}" for error in difference.errors)
    if len(differences) > SHOWN:
        lines.append(f"... and {len(differences) - SHOWN} more")
    lines += ["", "by kind:"]
    for kind, count in Counter(_kind(d) for d in differences).most_common():
        lines.append(f"  {count:>5} x {kind}")
    return "\n".join(lines)
