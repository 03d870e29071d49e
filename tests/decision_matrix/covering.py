"""A deterministic pairwise (strength 2) covering design, greedy and without randomness.

Each row is built from the factor pair with the most value pairs still uncovered; the
other factors are filled one at a time (most levels first) with the value that covers
the most new pairs against the values already chosen.  Early rows cover the most, so a
prefix of the design is itself a good small sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

Pair = tuple[int, int, int, int]
"""(factor i, value of i, factor j, value of j) with i < j."""


def all_pairs(levels: Sequence[int]) -> set[Pair]:
    """Every value of every factor against every value of every other factor."""
    return {
        (i, a, j, b)
        for i, j in combinations(range(len(levels)), 2)
        for a in range(levels[i])
        for b in range(levels[j])
    }


def pairs_of(row: Sequence[int]) -> set[Pair]:
    return {(i, row[i], j, row[j]) for i, j in combinations(range(len(row)), 2)}


def _pair(f: int, v: int, g: int, w: int) -> Pair:
    return (f, v, g, w) if f < g else (g, w, f, v)


def pairwise(levels: Sequence[int]) -> list[tuple[int, ...]]:
    """Rows of value indices such that every pair of :func:`all_pairs` is in some row."""
    if any(level < 1 for level in levels):
        raise ValueError(f"every factor needs a value: {list(levels)}")
    uncovered = all_pairs(levels)
    rows: list[tuple[int, ...]] = []
    fill_order = sorted(range(len(levels)), key=lambda f: (-levels[f], f))
    while uncovered:
        per_factor_pair: dict[tuple[int, int], int] = {}
        per_value: dict[tuple[int, int], int] = {}
        for i, a, j, b in uncovered:
            per_factor_pair[i, j] = per_factor_pair.get((i, j), 0) + 1
            per_value[i, a] = per_value.get((i, a), 0) + 1
            per_value[j, b] = per_value.get((j, b), 0) + 1
        (i, j), _ = min(per_factor_pair.items(), key=lambda item: (-item[1], item[0]))
        _, a, _, b = min(p for p in uncovered if p[0] == i and p[2] == j)
        row: list[int | None] = [None] * len(levels)
        row[i], row[j] = a, b
        for f in fill_order:
            if row[f] is not None:
                continue
            chosen = [(g, w) for g, w in enumerate(row) if w is not None]

            # most new pairs, then the value with most pairs left, then the first value
            scores = [
                (
                    -sum(_pair(f, v, g, w) in uncovered for g, w in chosen),
                    -per_value.get((f, v), 0),
                    v,
                )
                for v in range(levels[f])
            ]
            row[f] = min(scores)[2]
        complete = tuple(v for v in row if v is not None)
        assert len(complete) == len(levels)
        rows.append(complete)
        uncovered -= pairs_of(complete)
    return rows


def coverage(rows: Sequence[Sequence[int]], levels: Sequence[int]) -> float:
    """The share of :func:`all_pairs` that ``rows`` cover (1.0 = pairwise complete)."""
    wanted = all_pairs(levels)
    covered: set[Pair] = set()
    for row in rows:
        covered |= pairs_of(row)
    return len(covered & wanted) / len(wanted)
