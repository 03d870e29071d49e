"""Both pages in a real headless browser: Debian's chromium and chromedriver, driven by
Selenium.  The report must render its charts and the live page must follow a status
change, both without a console error.  Screenshots go to ``$LCA_ARTIFACTS`` (CI keeps
them) or to the test's tmp folder.

Skipped when the browser is not installed, except in CI (``CI=true``), where ``.ci/run``
installs it and a skip would hide a broken page.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serveproc import TIMEOUT, ServeProcess
from test_web_report import FAILING, PASSING

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1100",
)

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def _browser_missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is not installed (apt-get install chromium chromium-driver)"
    return None


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """Where screenshots go: ``$LCA_ARTIFACTS`` if set, else this test's tmp folder."""
    folder = Path(os.environ.get("LCA_ARTIFACTS") or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A fresh headless chromium (its own profile folder), its console log kept."""
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser tests: {missing}")
        pytest.skip(missing)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


def console_problems(driver: Any) -> list[dict[str, Any]]:
    """The browser console's errors and warnings since the last call."""
    entries: list[dict[str, Any]] = driver.get_log("browser")
    return [e for e in entries if e["level"] in ("SEVERE", "WARNING")]


def text_of(driver: Any, selector: str) -> str | None:
    """The text of the first element matching ``selector``, read in one script (the live
    page redraws its rows, so an element found a moment ago may be gone)."""
    text: str | None = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
        selector,
    )
    return text


def wait_until(driver: Any, what: str, condition: Any) -> Any:
    """Poll the page (bounded) until ``condition(driver)`` is truthy."""
    return WebDriverWait(driver, TIMEOUT, poll_frequency=0.1).until(condition, message=what)


def test_report_shows_a_chart_per_scenario(browser: Any, tmp_path: Path, artifacts: Path) -> None:
    """The run --html page renders: a chart per scenario with a lane per application."""
    (tmp_path / "scenario_pass.yaml").write_text(PASSING)
    (tmp_path / "scenario_fail.yaml").write_text(FAILING)
    report = tmp_path / "report.html"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lca-emulator"), "run", "--html", str(report), "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr  # one scenario fails on purpose
    browser.get(report.as_uri())
    charts = browser.find_elements(By.CSS_SELECTOR, "section.scenario svg.timeline")
    assert len(charts) == 2
    first, second = browser.find_elements(By.CSS_SELECTOR, "section.scenario")
    assert first.get_attribute("data-passed") == "false"
    lanes = [
        [g.get_attribute("data-application") for g in s.find_elements(By.CSS_SELECTOR, "g.lane")]
        for s in (first, second)
    ]
    assert lanes == [["LONE"], ["SIPS_A", "SIPS_B"]]
    for chart in charts:  # really drawn: a size on screen, spans that are visible
        assert chart.size["width"] > 600
        assert chart.size["height"] > 80
        spans = chart.find_elements(By.CSS_SELECTOR, "rect.span")
        assert spans
        assert any(s.is_displayed() and s.size["width"] > 5 for s in spans)
    browser.save_screenshot(str(artifacts / "report.png"))
    browser.execute_script("arguments[0].scrollIntoView()", charts[1])
    charts[1].screenshot(str(artifacts / "report-chart.png"))
    assert console_problems(browser) == []


@pytest.mark.slow
def test_live_page_follows_a_status_change(browser: Any, tmp_path: Path, artifacts: Path) -> None:
    """serve --http: the page shows RUNNING, then SERVICE_UNAVAILABLE when it is reported."""
    server = ServeProcess.start(tmp_path, "--http", "tcp:0:interface=127.0.0.1")
    try:
        browser.get(server.http_url)
        wait_until(
            browser, "the event stream to open", lambda d: text_of(d, "#connection") == "live"
        )
        app = server.register("SIPS_B", host="host-b")
        server.report(app, ApplicationStatus.RUNNING, ExecutionMode.BACKUP)
        status = '#applications tr[data-app="SIPS_B"] td.status'
        wait_until(
            browser,
            "SIPS_B shown RUNNING",
            lambda d: text_of(d, status) == "RUNNING",
        )
        server.report(app, ApplicationStatus.SERVICE_UNAVAILABLE, ExecutionMode.BACKUP)
        wait_until(
            browser,
            "SIPS_B shown SERVICE_UNAVAILABLE",
            lambda d: text_of(d, status) == "SERVICE_UNAVAILABLE",
        )
        span = '#timeline g.lane[data-application="SIPS_B"] rect.span[data-status="{}"]'
        assert text_of(browser, span.format("RUNNING")) is not None
        unavailable = span.format("SERVICE_UNAVAILABLE")
        wait_until(  # the last span grows as the page's clock moves on
            browser,
            "the SERVICE_UNAVAILABLE span to grow",
            lambda d: (
                d.execute_script(
                    "const e = document.querySelector(arguments[0]);"
                    "return e ? e.getBoundingClientRect().width : 0;",
                    unavailable,
                )
                > 150
            ),
        )
        assert "SERVICE_UNAVAILABLE" in (text_of(browser, "#journal tbody tr") or "")
        browser.save_screenshot(str(artifacts / "live.png"))
        problems = console_problems(browser)
    finally:
        server.stop()
    assert problems == []
