"""The cases of the matrix, and each case as a scenario document.

The factors (one run of ``SIPS_B``, the application under test, beside its HA partner
``SIPS_A``, a healthy stub without options):

- mode: the mode ``SIPS_B`` starts in: backup, primary;
- role: its role in the configured pair: backup, primary (the partner has the other role
  and starts in it);
- backup-init-check: true, "TRUE", false, "False", "yes" (invalid), unset;
- backup-init-check-timeout: 15, 16, 60, 300, 3599, 3600, unset (valid); 14, 10, 0, -1
  (below); 3601, 4000 (above); "abc", "1.5", "" (not a number);
- backup-sip-port-check: unset, true, false, "FALSE", "disabled" (invalid);
- control-vip-scripts: unset, true (IP Address Takeover), false, "TRUE", "enabled"
  (invalid);
- topology: separate-hosts (partner on host-a, SIPS_B on host-b), same-host (both on
  host-a, so host == peer-host);
- sip-port-state: free, in-use;
- each of the four components: ok or fail at 0, just before (T-1), exactly at (T) or just
  after (T+1) the effective timeout T, or hang (9 timing classes).

The full product is 2 x 2 x 6 x 16 x 5 x 5 x 2 x 2 x 9^4, about 2.5e8 runs.  The matrix
is, without duplicates:

1. ``doc``: the single-start rows of the doc's decision table (:data:`table.DOC_ROWS`);
2. ``pairwise``: a pairwise covering design over all twelve factors;
3. ``timing``: the full product of the timeout values and a set of component vectors
   (each component alone in each timing class, and a pairwise design over the four
   components), with the check on: timeout x component timings;
4. ``port``: the full product of SIP port state x port-check x vip-scripts x topology x
   mode x role x backup-init-check, with a failing T-Controller at 5 s (so that "port not
   probed" and "check off" tell apart), and the same product with all components ready at
   once and the check on.

The default subset (normal test runs), at most :data:`DEFAULT_LIMIT` cases: the doc
rows, one timing case per timeout value and as many port cases (spread evenly over their
blocks), then the first rows of the pairwise design (the greedy design covers the most
pairs first).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Final

from . import covering, table
from .model import Case, ComponentScript, OptionScalar
from .oracle import effective_int
from .table import BACKUP, FAIL, HANG, OK, PRIMARY

UNDER_TEST: Final = "SIPS_B"
PARTNER: Final = "SIPS_A"

DEFAULT_LIMIT: Final = 150
"""At most this many cases run in a normal test run (LCA_FULL_MATRIX=1 runs them all)."""

SETTLE_MARGIN: Final = 10.0
"""Seconds a scenario runs past the last moment that could matter."""

Unset = None
OptionLevel = OptionScalar | None

# Values are listed most telling first: where a covering row does not care, the design
# takes the first value, and a backup with the check on says the most.
INIT_CHECK_VALUES: Final[tuple[OptionLevel, ...]] = (True, "TRUE", False, "False", "yes", Unset)
TIMEOUT_VALUES: Final[tuple[OptionLevel, ...]] = (
    15, 16, 60, 300, 3599, 3600, Unset,  # valid, both edges
    14, 10, 0, -1,  # below the range
    3601, 4000,  # above the range
    "abc", "1.5", "",  # not a number
)  # fmt: skip
PORT_CHECK_VALUES: Final[tuple[OptionLevel, ...]] = (Unset, True, False, "FALSE", "disabled")
VIP_SCRIPTS_VALUES: Final[tuple[OptionLevel, ...]] = (Unset, True, False, "TRUE", "enabled")


@dataclass(frozen=True)
class TimingClass:
    """A component's result and its time relative to the effective timeout T."""

    result: str
    anchor: str
    """``0`` (at start), ``before`` (T-1), ``at`` (T), ``after`` (T+1); unused for hang."""

    @property
    def label(self) -> str:
        return self.result if self.result == HANG else f"{self.result}@{self.anchor}"

    def script(self, component: str, timeout: int) -> ComponentScript:
        if self.result == HANG:
            return ComponentScript(component, HANG, None, self.label)
        after = {"0": 0, "before": timeout - 1, "at": timeout, "after": timeout + 1}[self.anchor]
        return ComponentScript(component, self.result, float(after), self.label)


TIMING_CLASSES: Final[tuple[TimingClass, ...]] = (
    *(
        TimingClass(result, anchor)
        for result in (OK, FAIL)
        for anchor in ("0", "before", "at", "after")
    ),
    TimingClass(HANG, ""),
)
ALL_OK_AT_ONCE: Final = TIMING_CLASSES[0]

FACTORS: Final[tuple[tuple[str, tuple[object, ...]], ...]] = (
    ("mode", (BACKUP, PRIMARY)),
    ("role", (BACKUP, PRIMARY)),
    (table.BACKUP_INIT_CHECK.name, INIT_CHECK_VALUES),
    (table.BACKUP_INIT_CHECK_TIMEOUT.name, TIMEOUT_VALUES),
    (table.BACKUP_SIP_PORT_CHECK.name, PORT_CHECK_VALUES),
    (table.CONTROL_VIP_SCRIPTS.name, VIP_SCRIPTS_VALUES),
    ("topology", table.TOPOLOGIES),
    ("sip-port-state", table.PORT_STATES),
    *((component, TIMING_CLASSES) for component in table.COMPONENTS),
)
"""Every factor and its values, in the order of a pairwise row."""

FACTOR_LEVELS: Final = tuple(len(values) for _, values in FACTORS)


# -- building one case --------------------------------------------------------------


def _written_int(value: OptionLevel) -> int | None:
    if value is None:
        return None
    text = table.configuration_string(value)
    return int(text) if re.fullmatch(table.INTEGER_SYNTAX, text) else None


def make_case(
    origin: str,
    *,
    mode: str,
    role: str,
    options: Iterable[tuple[str, OptionLevel]],
    topology: str,
    sip_port_state: str,
    components: Sequence[ComponentScript],
) -> Case:
    """A case; its duration covers the timeout (effective and as written), every scripted
    time, plus :data:`SETTLE_MARGIN`."""
    set_options = tuple((name, value) for name, value in options if value is not None)
    case = Case(origin, mode, role, set_options, topology, sip_port_state, tuple(components), 1.0)
    effective = effective_int(table.BACKUP_INIT_CHECK_TIMEOUT, case)
    written = _written_int(case.option(table.BACKUP_INIT_CHECK_TIMEOUT.name))
    times = [float(effective)]
    times += [c.after for c in components if c.after is not None]
    if written is not None and 0 < written <= 2 * table.BACKUP_INIT_CHECK_TIMEOUT.maximum:
        times.append(float(written))
    return Case(
        origin,
        mode,
        role,
        set_options,
        topology,
        sip_port_state,
        tuple(components),
        max(times) + SETTLE_MARGIN,
    )


def _timed_case(
    origin: str,
    *,
    mode: str,
    role: str,
    options: Sequence[tuple[str, OptionLevel]],
    topology: str,
    sip_port_state: str,
    timings: Sequence[TimingClass],
) -> Case:
    """A case whose components are given as timing classes, placed on its effective T."""
    probe = make_case(
        origin, mode=mode, role=role, options=options, topology=topology,
        sip_port_state=sip_port_state, components=(),
    )  # fmt: skip
    timeout = effective_int(table.BACKUP_INIT_CHECK_TIMEOUT, probe)
    scripts = [
        timing.script(component, timeout)
        for component, timing in zip(table.COMPONENTS, timings, strict=True)
    ]
    return make_case(
        origin, mode=mode, role=role, options=options, topology=topology,
        sip_port_state=sip_port_state, components=scripts,
    )  # fmt: skip


def _option_factors(
    init_check: OptionLevel, timeout: OptionLevel, port_check: OptionLevel, vip: OptionLevel
) -> list[tuple[str, OptionLevel]]:
    return [
        (table.BACKUP_INIT_CHECK.name, init_check),
        (table.BACKUP_INIT_CHECK_TIMEOUT.name, timeout),
        (table.BACKUP_SIP_PORT_CHECK.name, port_check),
        (table.CONTROL_VIP_SCRIPTS.name, vip),
    ]


# -- the blocks ----------------------------------------------------------------------


def doc_row_cases() -> list[Case]:
    """The single-start rows of the doc's decision table, as written there."""
    return [
        make_case(
            f"doc {row.row}",
            mode=row.mode,
            role=row.role,
            options=row.options,
            topology=row.topology,
            sip_port_state=row.sip_port_state,
            components=[
                ComponentScript(name, result, after, result if after is None else "")
                for name, result, after in row.components
            ],
        )
        for row in table.DOC_ROWS
    ]


@functools.cache
def pairwise_rows() -> tuple[tuple[int, ...], ...]:
    """The pairwise design over :data:`FACTORS`, as value indices (cached: pure)."""
    return tuple(covering.pairwise(FACTOR_LEVELS))


def case_of_row(row: Sequence[int], origin: str) -> Case:
    values = [FACTORS[f][1][v] for f, v in enumerate(row)]
    mode, role, init_check, timeout, port_check, vip, topology, port = values[:8]
    timings = values[8:]
    assert all(isinstance(t, TimingClass) for t in timings)
    return _timed_case(
        origin,
        mode=str(mode),
        role=str(role),
        options=_option_factors(*(_as_level(v) for v in (init_check, timeout, port_check, vip))),
        topology=str(topology),
        sip_port_state=str(port),
        timings=[t for t in timings if isinstance(t, TimingClass)],
    )


def _as_level(value: object) -> OptionLevel:
    assert value is None or isinstance(value, str | int | bool)
    return value


@functools.cache  # the same every time: built once per process
def pairwise_cases() -> tuple[Case, ...]:
    return tuple(case_of_row(row, f"pairwise {n}") for n, row in enumerate(pairwise_rows(), 1))


def component_vectors() -> list[tuple[TimingClass, ...]]:
    """Each component alone in each timing class (the others ready at once), then a
    pairwise design over the four components."""
    vectors: dict[tuple[TimingClass, ...], None] = {}
    for position, timing in product(range(len(table.COMPONENTS)), TIMING_CLASSES):
        vector = [ALL_OK_AT_ONCE] * len(table.COMPONENTS)
        vector[position] = timing
        vectors[tuple(vector)] = None
    levels = [len(TIMING_CLASSES)] * len(table.COMPONENTS)
    for row in covering.pairwise(levels):
        vectors[tuple(TIMING_CLASSES[v] for v in row)] = None
    return list(vectors)


@functools.cache  # the same every time: built once per process
def timing_cases() -> tuple[Case, ...]:
    """Timeout x component timings, the check on, the port free, a backup."""
    vectors = component_vectors()  # the same design for every timeout
    return tuple(
        _timed_case(
            f"timing timeout={'unset' if timeout is None else repr(timeout)}",
            mode=BACKUP,
            role=BACKUP,
            options=_option_factors(True, timeout, None, None),
            topology=table.SEPARATE_HOSTS,
            sip_port_state=table.FREE,
            timings=vector,
        )
        for timeout in TIMEOUT_VALUES
        for vector in vectors
    )


@functools.cache  # the same every time: built once per process
def port_cases() -> tuple[Case, ...]:
    """Port state x port-check x vip-scripts x topology x mode x role (x init-check)."""
    cases: list[Case] = []
    failing = [ComponentScript("t-controller", FAIL, 5.0, "fail@5")]
    for init_check, components in (
        *((value, failing) for value in INIT_CHECK_VALUES),
        (True, []),
    ):
        for port, port_check, vip, topology, mode, role in product(
            table.PORT_STATES,
            PORT_CHECK_VALUES,
            VIP_SCRIPTS_VALUES,
            table.TOPOLOGIES,
            table.MODES,
            (PRIMARY, BACKUP),
        ):
            cases.append(
                make_case(
                    "port",
                    mode=mode,
                    role=role,
                    options=_option_factors(init_check, None, port_check, vip),
                    topology=topology,
                    sip_port_state=port,
                    components=components,
                )
            )
    return tuple(cases)


def _unique(cases: Iterable[Case]) -> list[Case]:
    seen: dict[tuple[object, ...], Case] = {}
    for case in cases:
        seen.setdefault(case.key(), case)
    return list(seen.values())


@functools.cache
def full_matrix() -> tuple[Case, ...]:
    """Every case, without duplicates (a later block's copy of a case is dropped)."""
    return tuple(_unique([*doc_row_cases(), *pairwise_cases(), *timing_cases(), *port_cases()]))


def _spread(cases: Sequence[Case], count: int) -> list[Case]:
    """``count`` cases taken with a golden-ratio stride (coprime to the length), so that
    consecutive picks differ in every factor of a product, inner ones included."""
    step = max(1, round(len(cases) * 0.6180339887))
    while math.gcd(step, len(cases)) != 1:
        step += 1
    return [cases[(n * step) % len(cases)] for n in range(min(count, len(cases)))]


@functools.cache
def default_subset() -> tuple[Case, ...]:
    """The doc rows, samples of the timing and port blocks, then the pairwise design's
    first rows: at most DEFAULT_LIMIT cases, the same on every run."""
    picks = len(TIMEOUT_VALUES)
    sample = [*doc_row_cases(), *_spread(timing_cases(), picks), *_spread(port_cases(), picks)]
    chosen: dict[tuple[object, ...], Case] = {}
    for case in [*sample, *pairwise_cases()]:
        if len(chosen) >= DEFAULT_LIMIT:
            break
        chosen.setdefault(case.key(), case)
    return tuple(chosen.values())


def default_pairwise_coverage() -> float:
    """The share of all value pairs that the pairwise rows in the default subset cover."""
    taken = sum(case.origin.startswith("pairwise ") for case in default_subset())
    return covering.coverage(pairwise_rows()[:taken], FACTOR_LEVELS)


# -- the scenario document -----------------------------------------------------------


def _number(seconds: float) -> int | float:
    return int(seconds) if float(seconds).is_integer() else seconds


def scenario_document(case: Case) -> dict[str, object]:
    """The scenario file of ``case`` (docs/sipserver-stub.md 'The fixture'), as a mapping
    ready for ``yaml.safe_dump``."""
    host, partner_host = "host-b", "host-a"
    if case.topology == table.SAME_HOST:
        host = partner_host
    partner_role = BACKUP if case.role == PRIMARY else PRIMARY
    under_test: dict[str, object] = {
        "application": UNDER_TEST,
        "host": host,
        "mode": case.mode,
        "sip-port": 0,
        "sip-port-state": case.sip_port_state,
    }
    if case.options:
        under_test["options"] = {table.SECTION: dict(case.options)}
    if case.components:
        components: dict[str, object] = {}
        for script in case.components:
            if script.after is None:
                components[script.component] = {"result": script.result}
            else:
                components[script.component] = {
                    "result": script.result,
                    "after": _number(script.after),
                }
        under_test["components"] = components
    partner = {"application": PARTNER, "host": partner_host, "mode": partner_role, "sip-port": 0}
    pair = {case.role: UNDER_TEST, partner_role: PARTNER}
    return {
        "name": case.describe(),
        "duration": _number(case.duration),
        "applications": [partner, under_test],
        "ha-pairs": [{"primary": pair[PRIMARY], "backup": pair[BACKUP]}],
    }


def summary() -> str:
    """The matrix sizes, for reports."""
    full = full_matrix()
    blocks: dict[str, int] = {}
    for case in full:
        block = case.origin.split(" ", 1)[0]
        blocks[block] = blocks.get(block, 0) + 1
    parts = ", ".join(f"{name} {count}" for name, count in blocks.items())
    return (
        f"decision matrix: {len(full)} cases ({parts}); default subset "
        f"{len(default_subset())} (pairwise rows {len(pairwise_rows())}, the subset's "
        f"share of all value pairs {default_pairwise_coverage():.1%})"
    )


if __name__ == "__main__":
    print(summary())
