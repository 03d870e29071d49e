"""``lca-emulator run --html FILE``: one self-contained HTML page for a run.

One section per scenario, failed ones first, each with a timeline chart (inline SVG, drawn
here: no script runs in the report) and its expectations, expected against observed.  The
page loads nothing: its style is inline, and its Content-Security-Policy forbids any fetch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_common.yamlsource import format_number
from lca_emulator.harness.model import TIMED_KINDS, Expectation, ExpectationKind
from lca_emulator.web.style import (
    BASE_CSS,
    EVENT_MARKS,
    FAIL_COLOUR,
    MODE_COLOURS,
    PASS_COLOUR,
    STATUS_COLOURS,
    status_chip_css,
)

if TYPE_CHECKING:
    from lca_emulator.harness.runner import ScenarioResult
    from lca_emulator.harness.verdict import Verdict


def check_writable(path: Path) -> str | None:
    """Why ``path`` cannot be written, or ``None`` if it can (folders on the way are made).

    Tried for real (opened for appending, then removed if it did not exist), because
    permission bits say nothing to root and nothing about a read-only file system.
    """
    try:  # Path.is_dir and exists raise for some errors (a name too long)
        if path.is_dir():
            return f"{path} is a folder"
        existing = next((p for p in path.parents if p.exists()), None)
        if existing is not None and not existing.is_dir():
            return f"{existing} is not a folder"
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        with path.open("a", encoding="utf-8"):
            pass
        if not existed:
            path.unlink()
    except OSError as e:
        return e.strerror or str(e)
    return None


def write_report(results: Sequence[ScenarioResult], path: Path) -> None:
    """Write the report of ``results`` to ``path`` (atomically: a reader never sees half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(report_html(results), encoding="utf-8")
    os.replace(partial, path)


# -- the page ------------------------------------------------------------------------------

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_REPORT_CSS = """
header { border-bottom: 1px solid var(--line); padding-bottom: 8px; }
nav table td { padding: 2px 8px; }
section.scenario { margin-top: 28px; padding-top: 4px; border-top: 3px solid var(--line); }
section.scenario.fail { border-top-color: var(--fail); }
section.scenario.pass { border-top-color: var(--pass); }
section.scenario h2 { margin-top: 8px; }
ul.errors li { color: var(--fail); }
ul.notes li { color: var(--muted); }
table.expectations td.result { font-weight: 600; white-space: nowrap; }
table.expectations tr.pass td.result { color: var(--pass); }
table.expectations tr.fail td.result { color: var(--fail); }
table.expectations tr.fail { background: #fce8e6; }
details { margin-top: 8px; }
details summary { cursor: pointer; color: var(--muted); }
table.journal td { font-size: 12.5px; }
"""


def report_html(results: Sequence[ScenarioResult]) -> str:
    """The whole report page for ``results``: failures first, then in run order."""
    ordered = sorted(results, key=lambda r: r.passed)  # stable: run order within each
    failed = sum(not r.passed for r in results)
    title = (
        f"lca-emulator run: {len(results)} scenarios, "
        f"{len(results) - failed} passed, {failed} failed"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{escape(title)}</title>",
        f"<style>{BASE_CSS}{status_chip_css()}{_REPORT_CSS}</style>",
        "</head><body>",
        f'<header><h1>{escape(title)}</h1><p class="muted">Each chart shows what the '
        "emulated Management Layer observed: one lane per application, its status as "
        "coloured spans, its mode in the thin strip below, journal events as marks above, "
        "and each expectation as a \u2714 or \u2718 at its time (never and at-end: at the "
        "end). Hover over anything for details.</p>",
        legend_html(),
        "</header>",
        _summary_html(ordered),
    ]
    parts.extend(_scenario_html(index, result) for index, result in enumerate(ordered, 1))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def legend_html() -> str:
    """The key to the charts' colours and marks."""
    items = [
        f'<span><span class="sw" style="background:{c}"></span>{escape(s.value)}</span>'
        for s, c in STATUS_COLOURS.items()
    ]
    items += [
        f'<span><span class="sw" style="background:{c};height:6px"></span>mode {m.value}</span>'
        for m, c in MODE_COLOURS.items()
        if m is not ExecutionMode.UNKNOWN
    ]
    items += [
        f'<span><b style="color:{m.colour}">{m.glyph}</b> {escape(e.value)}</span>'
        for e, m in EVENT_MARKS.items()
    ]
    items += [
        f'<span><b style="color:{PASS_COLOUR}">\u2714</b> expectation held</span>',
        f'<span><b style="color:{FAIL_COLOUR}">\u2718</b> expectation missed</span>',
    ]
    return '<div class="legend">' + "".join(items) + "</div>"


def _summary_html(ordered: Sequence[ScenarioResult]) -> str:
    rows = []
    for index, r in enumerate(ordered, 1):
        held = sum(v.passed for v in r.verdicts)
        rows.append(
            f"<tr><td>{_badge(r.passed)}</td>"
            f'<td><a href="#scenario-{index}">{escape(r.scenario.name)}</a></td>'
            f'<td class="num">{held}/{len(r.verdicts)}</td>'
            f'<td class="mono muted">{escape(r.scenario.path)}</td></tr>'
        )
    return (
        '<nav><h2>Scenarios</h2><table class="summary"><thead><tr><th>result</th>'
        "<th>scenario</th><th>held</th><th>file</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></nav>"
    )


def _badge(passed: bool) -> str:
    state, word = ("pass", "PASS") if passed else ("fail", "FAIL")
    return f'<span class="badge {state}">{word}</span>'


def _scenario_html(index: int, result: ScenarioResult) -> str:
    scenario = result.scenario
    held = sum(v.passed for v in result.verdicts)
    state = "pass" if result.passed else "fail"
    parts = [
        f'<section class="scenario {state}" id="scenario-{index}" '
        f'data-passed="{str(result.passed).lower()}">',
        f"<h2>{_badge(result.passed)} {escape(scenario.name)}</h2>",
        f'<p class="muted"><span class="mono">{escape(scenario.path)}</span> \u00b7 '
        f"{escape(result.mode.value)} \u00b7 {format_number(scenario.duration)} s \u00b7 "
        f"{held}/{len(result.verdicts)} expectations held</p>",
    ]
    if result.errors:
        parts.append(
            '<ul class="errors">'
            + "".join(f"<li>error: {escape(e)}</li>" for e in result.errors)
            + "</ul>"
        )
    if result.golden:
        parts.append(
            '<ul class="errors">'
            + "".join(f"<li>golden: {escape(g)}</li>" for g in result.golden)
            + "</ul>"
        )
    if result.notes:
        parts.append(
            '<ul class="notes">'
            + "".join(f"<li>note: {escape(n)}</li>" for n in result.notes)
            + "</ul>"
        )
    parts.append(timeline_svg(result))
    parts.append(_expectations_html(result.verdicts))
    parts.append(_journal_html(result))
    parts.append("</section>")
    return "\n".join(parts)


def _expectations_html(verdicts: Iterable[Verdict]) -> str:
    rows = []
    for v in verdicts:
        state = "pass" if v.passed else "fail"
        rows.append(
            f'<tr class="{state}"><td class="result">{"ok" if v.passed else "MISS"}</td>'
            f"<td>{escape(v.expectation.text)}</td><td>{escape(v.observed)}</td>"
            f'<td class="num muted">{v.expectation.line or ""}</td></tr>'
        )
    if not rows:
        return '<p class="muted">No expectations.</p>'
    return (
        '<table class="expectations"><thead><tr><th>result</th><th>expected</th>'
        "<th>observed</th><th>line</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _journal_html(result: ScenarioResult) -> str:
    entries = result.timeline.entries
    rows = "".join(
        f'<tr><td class="num">{_t(e.time)}</td><td>{escape(e.application)}</td>'
        f"<td>{escape(e.event.value)}</td>"
        f'<td><span class="chip s-{e.status.value}">{e.status.value}</span></td>'
        f'<td><span class="chip m-{e.mode.value}">{e.mode.value}</span></td>'
        f"<td>{escape(e.detail)}</td></tr>"
        for e in entries
    )
    return (
        f"<details><summary>Journal ({len(entries)} entries)</summary>"
        '<table class="journal"><thead><tr><th>t</th><th>application</th><th>event</th>'
        f"<th>status</th><th>mode</th><th>detail</th></tr></thead><tbody>{rows}</tbody>"
        "</table></details>"
    )


def _t(seconds: float) -> str:
    return format_number(round(seconds, 3))


# -- the chart -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartLayout:
    """The chart's geometry, in SVG user units (the chart scales to the page's width)."""

    width: float = 1000.0
    label_width: float = 150.0
    right: float = 56.0
    top: float = 30.0
    lane_height: float = 62.0
    bottom: float = 22.0
    mark_gap: float = 11.0
    """Marks closer than this are moved apart, so none hides another."""

    @property
    def plot_width(self) -> float:
        return self.width - self.label_width - self.right


@dataclass
class _Row:
    """Places marks along one row so that none covers another."""

    gap: float
    taken: list[float] = field(default_factory=list)

    def place(self, x: float) -> float:
        while any(abs(x - t) < self.gap for t in self.taken):
            x += self.gap
        self.taken.append(x)
        return x


def timeline_svg(result: ScenarioResult, layout: ChartLayout | None = None) -> str:
    """One scenario's timeline as an inline SVG: a lane per application."""
    layout = layout or ChartLayout()
    scenario = result.scenario
    timeline = result.timeline
    hosts = {app.application: app.host for app in scenario.applications}
    hosts.update((app.application, app.host) for app in scenario.outside)
    names = list(hosts)
    names += [n for n in dict.fromkeys(e.application for e in timeline.entries) if n not in names]
    end = max([scenario.duration, *(e.time for e in timeline.entries)])
    end = end if end > 0 else 1.0
    height = layout.top + layout.lane_height * max(len(names), 1) + layout.bottom

    def x(t: float) -> float:
        return layout.label_width + layout.plot_width * max(0.0, min(t, end)) / end

    out = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {layout.width:g} {height:g}" '
        f'aria-label="timeline of {escape(scenario.name)}">',
    ]
    bottom_y = height - layout.bottom
    for lane in range(1, len(names), 2):  # every other lane shaded, under the grid
        out.append(
            f'<rect class="lane-bg" x="0" y="{layout.top + lane * layout.lane_height:g}" '
            f'width="{layout.width:g}" height="{layout.lane_height:g}" fill="#f8f9fa"/>'
        )
    for tick in _ticks(end):
        tx = x(tick)
        out.append(
            f'<line class="grid" x1="{tx:.1f}" y1="{layout.top - 4:g}" '
            f'x2="{tx:.1f}" y2="{bottom_y:g}"/>'
            f'<text x="{tx:.1f}" y="{layout.top - 10:g}" text-anchor="middle">'
            f"{_t(tick)}</text>"
        )
    out.append(
        f'<text x="{layout.label_width - 8:g}" y="{layout.top - 10:g}" text-anchor="end" '
        'class="muted">t (s)</text>'
    )
    axis = _Row(layout.mark_gap)
    for event in scenario.events:
        ex = axis.place(x(event.at))
        out.append(
            f'<text class="mark scenario-event" x="{ex:.1f}" y="{bottom_y + 15:g}" '
            f'text-anchor="middle" fill="#5f6368">\u25b3<title>t={_t(event.at)}: '
            f"{escape(event.action.value)} {escape(event.application)} "
            f"(scenario event, line {event.line})</title></text>"
        )
    for lane, name in enumerate(names):
        y0 = layout.top + lane * layout.lane_height
        out.append(_lane(result, name, hosts.get(name), y0, end, x, layout))
    out.append(
        f'<line class="axis" x1="{layout.label_width:g}" y1="{bottom_y:g}" '
        f'x2="{layout.width - layout.right:g}" y2="{bottom_y:g}"/>'
    )
    out.append("</svg>")
    return "".join(out)


def _lane(
    result: ScenarioResult,
    name: str,
    host: str | None,
    y0: float,
    end: float,
    x: Callable[[float], float],
    layout: ChartLayout,
) -> str:
    timeline = result.timeline
    band_y, band_h = y0 + 17, 20.0
    mode_y, mode_h = band_y + band_h + 2, 9.0
    expect_y = mode_y + mode_h + 11
    out = [
        f'<g class="lane" data-application="{escape(name)}">',
        f'<text class="lane-label" x="{layout.label_width - 8:g}" y="{band_y + 14:g}" '
        f'text-anchor="end">{escape(name)}</text>',
    ]
    if host:
        out.append(
            f'<text x="{layout.label_width - 8:g}" y="{mode_y + 9:g}" text-anchor="end" '
            f'fill="#5f6368">{escape(host)}</text>'
        )
    out.append(
        f'<rect x="{layout.label_width:g}" y="{band_y:g}" width="{layout.plot_width:g}" '
        f'height="{band_h:g}" fill="#f1f3f4"/>'
    )
    statuses = timeline.changes(name)
    for i, change in enumerate(statuses):
        until = statuses[i + 1].time if i + 1 < len(statuses) else end
        status = ApplicationStatus(change.value)
        x1, x2 = x(change.time), x(until)
        width = max(x2 - x1, 1.5)
        colour = STATUS_COLOURS[status]
        out.append(
            f'<rect class="span" data-status="{status.value}" x="{x1:.1f}" y="{band_y:g}" '
            f'width="{width:.1f}" height="{band_h:g}" fill="{colour}">'
            f"<title>{escape(name)}: {status.value} from t={_t(change.time)} to "
            f"t={_t(until)}</title></rect>"
        )
        if width > 7.2 * len(status.value) + 8:
            light = status in (ApplicationStatus.UNKNOWN, ApplicationStatus.START_PENDING)
            out.append(
                f'<text x="{x1 + 4:.1f}" y="{band_y + 14:g}" '
                f'fill="{"#202124" if light else "#ffffff"}" pointer-events="none">'
                f"{status.value}</text>"
            )
    modes = timeline.changes(name, mode=True)
    for i, change in enumerate(modes):
        until = modes[i + 1].time if i + 1 < len(modes) else end
        mode = ExecutionMode(change.value)
        x1, x2 = x(change.time), x(until)
        width = max(x2 - x1, 1.5)
        out.append(
            f'<rect class="mode" data-mode="{mode.value}" x="{x1:.1f}" y="{mode_y:g}" '
            f'width="{width:.1f}" height="{mode_h:g}" fill="{MODE_COLOURS[mode]}">'
            f"<title>{escape(name)}: mode {mode.value} from t={_t(change.time)}</title></rect>"
        )
        if i > 0:  # a mode change: a tick across the strip
            out.append(
                f'<line x1="{x1:.1f}" y1="{mode_y - 1:g}" x2="{x1:.1f}" '
                f'y2="{mode_y + mode_h + 1:g}" stroke="#202124" stroke-width="1.5">'
                f"<title>t={_t(change.time)}: {escape(name)} mode {mode.value}</title></line>"
            )
    marks = _Row(layout.mark_gap)
    for entry in timeline.entries:
        mark = EVENT_MARKS.get(entry.event) if entry.application == name else None
        if mark is None:
            continue
        mx = marks.place(x(entry.time))
        detail = f": {entry.detail}" if entry.detail else ""
        out.append(
            f'<text class="mark" data-event="{entry.event.value}" x="{mx:.1f}" '
            f'y="{band_y - 4:g}" text-anchor="middle" fill="{mark.colour}">{mark.glyph}'
            f"<title>t={_t(entry.time)}: {escape(name)} {entry.event.value}"
            f"{escape(detail)}</title></text>"
        )
    expects = _Row(layout.mark_gap)
    for verdict in result.verdicts:
        if verdict.expectation.application != name:
            continue
        at = _expectation_time(verdict.expectation, end)
        ex = expects.place(x(at))
        colour = PASS_COLOUR if verdict.passed else FAIL_COLOUR
        glyph = "\u2714" if verdict.passed else "\u2718"
        latest = verdict.expectation.until
        span = ""
        if verdict.expectation.kind is ExpectationKind.BETWEEN and latest is not None:
            span = (  # the window it must first happen in
                f'<line x1="{x(at):.1f}" y1="{expect_y - 4:g}" x2="{x(latest):.1f}" '
                f'y2="{expect_y - 4:g}" stroke="{colour}" stroke-width="2"/>'
            )
        out.append(
            f'<g class="expect" data-passed="{str(verdict.passed).lower()}">{span}'
            f'<line x1="{ex:.1f}" y1="{band_y:g}" x2="{ex:.1f}" y2="{expect_y - 9:g}" '
            f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="3 2"/>'
            f'<text class="mark" x="{ex:.1f}" y="{expect_y + 2:g}" text-anchor="middle" '
            f'fill="{colour}">{glyph}</text>'
            f"<title>{'held' if verdict.passed else 'MISSED'}: expected "
            f"{escape(verdict.expectation.text)}; observed {escape(verdict.observed)}"
            "</title></g>"
        )
    out.append("</g>")
    return "".join(out)


def _expectation_time(expectation: Expectation, end: float) -> float:
    """Where an expectation is drawn: at its time (the start of a ``between``), or at the
    end for never and at-end."""
    if expectation.kind in TIMED_KINDS:
        assert expectation.time is not None
        return expectation.time
    return end


def _ticks(end: float, most: int = 10) -> list[float]:
    """Round tick times from 0 to ``end``: at most ``most`` + 1, a step of 1, 2 or 5 x 10^k."""
    raw = end / most
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    count = int(end / step + 1e-9)
    return [round(i * step, 9) for i in range(count + 1)]


__all__ = [
    "ChartLayout",
    "check_writable",
    "legend_html",
    "report_html",
    "timeline_svg",
    "write_report",
]
