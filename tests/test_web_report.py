"""``lca-emulator run --html FILE``: the report page, read back with the standard library's
HTML parser (the browser test in ``test_web_browser.py`` looks at it rendered)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from reactortest import reactor_test
from twisted.internet import reactor

from lca_emulator.harness.loader import load_scenario
from lca_emulator.harness.runner import ScenarioResult, run_scenario
from lca_emulator.web.report import _ticks, check_writable, report_html, timeline_svg

BIN = Path(sys.executable).parent

PASSING = """\
name: refused switchover
duration: 120
applications:
  - {application: SIPS_A, host: host-a, mode: primary}
  - application: SIPS_B
    host: host-b
    mode: backup
    options: {TServer: {backup-init-check: true}}
    components: {t-controller: {result: fail, after: 5}}
ha-pairs:
  - {primary: SIPS_A, backup: SIPS_B}
events:
  - {at: 60, kill: SIPS_A}
expect:
  - {application: SIPS_B, status: SERVICE_UNAVAILABLE, at: 5}
  - {application: SIPS_B, event: switchover-refused, at: 60}
  - {application: SIPS_B, never: PRIMARY}
"""

FAILING = """\
name: <b>wrong</b> & expected
duration: 30
applications:
  - {application: LONE, host: host-x, mode: primary}
expect:
  - {application: LONE, status: RUNNING, within: 10}
  - {application: LONE, status: SERVICE_UNAVAILABLE, at: 20}
"""


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""


@dataclass
class Page(HTMLParser):
    """Every element of a page, in document order, with its attributes and direct text."""

    elements: list[Element] = field(default_factory=list)
    _open: list[Element] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.elements.append(element)
        if tag not in {"meta", "link", "line", "rect", "br", "input"}:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1].text += data

    def find(self, tag: str, cls: str | None = None, **attrs: str) -> list[Element]:
        return [
            e
            for e in self.elements
            if e.tag == tag
            and (cls is None or cls in e.attrs.get("class", "").split())
            and all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


async def run_file(path: Path, text: str) -> ScenarioResult:
    path.write_text(text)
    return await run_scenario(load_scenario(path), reactor)


@reactor_test
async def test_failures_come_first(tmp_path: Path) -> None:
    """One section per scenario, the failed one first, each with its PASS/FAIL badge."""
    passing = await run_file(tmp_path / "scenario_pass.yaml", PASSING)
    failing = await run_file(tmp_path / "scenario_fail.yaml", FAILING)
    page = parse(report_html([passing, failing]))
    sections = page.find("section", "scenario")
    assert [s.attrs["data-passed"] for s in sections] == ["false", "true"]
    assert [b.text for b in page.find("span", "badge")][-2:] == ["FAIL", "PASS"]
    assert page.find("title")[0].text == "lca-emulator run: 2 scenarios, 1 passed, 1 failed"


@reactor_test
async def test_each_chart_has_a_lane_per_application(tmp_path: Path) -> None:
    """The chart: one lane per application, status spans in order, marks of the journal."""
    result = await run_file(tmp_path / "scenario_pass.yaml", PASSING)
    page = parse(timeline_svg(result))
    lanes = page.find("g", "lane")
    assert [lane.attrs["data-application"] for lane in lanes] == ["SIPS_A", "SIPS_B"]
    statuses = [r.attrs["data-status"] for r in page.find("rect", "span")]
    observed = [c.value for c in result.timeline.changes("SIPS_A")] + [
        c.value for c in result.timeline.changes("SIPS_B")
    ]
    assert statuses == observed
    events = [t.attrs["data-event"] for t in page.find("text", "mark") if "data-event" in t.attrs]
    assert "switchover-refused" in events
    assert "killed" in events
    assert [m.attrs["data-passed"] for m in page.find("g", "expect")] == ["true"] * 3
    assert len(page.find("text", "scenario-event")) == 1  # kill SIPS_A at 60


@reactor_test
async def test_expectations_table_shows_expected_and_observed(tmp_path: Path) -> None:
    """A row per expectation: ok or MISS, expected, observed, its line in the file."""
    failing = await run_file(tmp_path / "scenario_fail.yaml", FAILING)
    page = parse(report_html([failing]))
    rows = [r for r in page.find("tr") if r.attrs.get("class") in ("pass", "fail")]
    assert [r.attrs["class"] for r in rows] == [
        "pass" if v.passed else "fail" for v in failing.verdicts
    ]
    cells = [e.text for e in page.find("td")]
    for verdict in failing.verdicts:
        assert verdict.expectation.text in cells
        assert verdict.observed in cells
    assert "MISS" in [c.text for c in page.find("td", "result")]
    marks = [m.attrs["data-passed"] for m in page.find("g", "expect")]
    assert marks == [str(v.passed).lower() for v in failing.verdicts]


WINDOWS = """\
name: windows and misses
duration: 30
applications:
  - {application: LONE, host: host-x, mode: primary}
expect:
  - {application: LONE, status: RUNNING, between: [0, 10]}
  - {application: LONE, status: RUNNING, after: 20, miss: true}
"""


@reactor_test
async def test_between_and_must_miss_expectations(tmp_path: Path) -> None:
    """A between draws its window; a must-miss expectation that missed is a pass mark."""
    result = await run_file(tmp_path / "scenario_windows.yaml", WINDOWS)
    assert result.passed
    page = parse(timeline_svg(result))
    marks = page.find("g", "expect")
    assert [m.attrs["data-passed"] for m in marks] == ["true", "true"]
    window = [e for e in page.elements if e.tag == "line" and e.attrs.get("stroke-width") == "2"]
    assert len(window) == 1
    assert float(window[0].attrs["x2"]) > float(window[0].attrs["x1"])
    rows = parse(report_html([result])).find("td")
    assert any("(must miss)" in r.text for r in rows)


@reactor_test
async def test_text_from_files_is_escaped(tmp_path: Path) -> None:
    """A scenario name with markup shows as text; nothing of it becomes an element."""
    failing = await run_file(tmp_path / "scenario_fail.yaml", FAILING)
    html = report_html([failing])
    assert "<b>wrong</b>" not in html
    assert "&lt;b&gt;wrong&lt;/b&gt; &amp; expected" in html


@reactor_test
async def test_the_report_loads_nothing(tmp_path: Path) -> None:
    """Self-contained: inline style, no script, no URL but the SVG namespace; CSP forbids any."""
    result = await run_file(tmp_path / "scenario_pass.yaml", PASSING)
    html = report_html([result])
    page = parse(html)
    assert page.find("script") == []
    assert [e.attrs["href"] for e in page.find("link")] == ["data:,"]
    csp = page.find("meta", http_equiv="Content-Security-Policy")[0].attrs["content"]
    assert csp.startswith("default-src 'none'")
    assert "https://" not in html
    assert html.count("http://") == html.count('xmlns="http://www.w3.org/2000/svg"')


@pytest.mark.parametrize(
    ("end", "ticks"),
    [
        (300, [0, 50, 100, 150, 200, 250, 300]),
        (120, [0, 20, 40, 60, 80, 100, 120]),
        (7, [0, 1, 2, 3, 4, 5, 6, 7]),
        (3600, [0, 500, 1000, 1500, 2000, 2500, 3000, 3500]),
        (0.4, [0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4]),
    ],
)
def test_ticks_are_round(end: float, ticks: list[float]) -> None:
    """Axis ticks: a step of 1, 2 or 5 times a power of ten, from 0, at most 11."""
    assert _ticks(end) == ticks


def test_writable_paths(tmp_path: Path) -> None:
    """A new file (folders made on the way) is fine and left absent; a folder is not."""
    target = tmp_path / "new" / "report.html"
    assert check_writable(target) is None
    assert not target.exists()
    assert check_writable(tmp_path) == f"{tmp_path} is a folder"
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert check_writable(blocker / "report.html") == f"{blocker} is not a folder"
    assert check_writable(blocker) is None
    assert blocker.read_text() == ""


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "lca-emulator"), "run", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_run_html_writes_the_report(tmp_path: Path) -> None:
    """run --html FILE writes the page once the run is over (exit code as without it)."""
    (tmp_path / "scenario_pass.yaml").write_text(PASSING)
    (tmp_path / "scenario_fail.yaml").write_text(FAILING)
    done = _run("--html", "out/report.html", ".", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    page = parse((tmp_path / "out" / "report.html").read_text(encoding="utf-8"))
    assert len(page.find("section", "scenario")) == 2
    assert len(page.find("svg", "timeline")) == 2
    assert not list((tmp_path / "out").glob(".*partial"))


def test_run_html_checks_the_path_before_running(tmp_path: Path) -> None:
    """An --html path that cannot be written: exit 2 at once, no scenario run."""
    (tmp_path / "scenario_pass.yaml").write_text(PASSING)
    (tmp_path / "taken").write_text("a file, not a folder")
    done = _run("--html", "taken/report.html", ".", cwd=tmp_path)
    assert done.returncode == 2
    assert (
        done.stderr
        == "lca-emulator: cannot write --html taken/report.html: taken is not a folder\n"
    )
    assert done.stdout == ""
