"""pytest plugin of lca-emulator, registered through the ``pytest11`` entry point.

Two things:

* **Scenario files are tests.**  Every YAML file whose name matches the
  ``lca_scenario_files`` ini patterns (default ``scenario_*.yaml scenario_*.yml``)
  is collected as one item and run in virtual time (``--lca-mode`` to change).
* **Fixtures for Python tests.**  ``lca_site_factory`` opens emulated sites on
  loopback port 0 (virtual clock) and closes them after the test; ``lca_site`` is
  one empty site.  Drive them with ``await site.run_until(t)`` and
  ``await site.wait_for(app, status, within=...)``; talk to them with
  :mod:`lca_emulator.testing`.

Import-light on purpose: nothing here imports the reactor or Twisted at import
time, so ``--reactor`` choices of pytest-twisted keep working.
"""

from __future__ import annotations

import fnmatch
import io
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from lca_emulator.harness.model import Scenario
    from lca_emulator.harness.runner import ScenarioResult
    from lca_emulator.harness.site import Site

DEFAULT_PATTERNS = ["scenario_*.yaml", "scenario_*.yml"]
MODES = ("virtual", "real-time", "processes")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "lca_scenario_files",
        type="args",
        default=DEFAULT_PATTERNS,
        help="glob patterns of YAML files collected as lca-emulator scenarios",
    )
    group = parser.getgroup("lca-emulator")
    group.addoption(
        "--lca-mode",
        choices=MODES,
        default="virtual",
        help="how scenario files run: virtual (default), real-time or processes",
    )
    group.addoption(
        "--lca-golden",
        metavar="DIR",
        help="compare each scenario's journal with the one recorded in DIR (files named "
        "after the scenario's path from the rootdir)",
    )
    group.addoption(
        "--lca-update-golden",
        action="store_true",
        help="with --lca-golden: record the journals instead of comparing",
    )
    group.addoption(
        "--lca-strict",
        action="store_true",
        help="an option the server would ignore is a collection error, not a note",
    )
    group.addoption(
        "--lca-transport",
        choices=("memory", "tcp"),
        default="memory",
        help="virtual time: connections in memory (default) or over loopback TCP",
    )
    group.addoption(
        "--lca-time-scale",
        type=_positive_float,
        default=1.0,
        help="real seconds per scenario second for real-time and processes modes",
    )


def _positive_float(text: str) -> float:
    from lca_common.entrypoints import positive_float

    return positive_float(text)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "lca_scenario: an item collected from an lca-emulator scenario file"
    )
    config.pluginmanager.register(OptionNotes(), "lca_emulator_option_notes")


class OptionNotes:
    """Shows, after the run, what the servers would log about their options (an option
    name typo passes silently otherwise); notes travel in the reports, so xdist works."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.notes += [str(v) for name, v in report.user_properties if name == "lca_note"]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.notes:
            terminalreporter.section("lca-emulator notes")
            for note in self.notes:
                terminalreporter.line(f"note: {note}")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    patterns: list[str] = parent.config.getini("lca_scenario_files")
    if any(fnmatch.fnmatch(file_path.name, pattern) for pattern in patterns):
        collector: ScenarioFile = ScenarioFile.from_parent(parent, path=file_path)
        return collector
    return None


class ScenarioFile(pytest.File):
    """A scenario file: one item (a malformed file is a collection error naming file,
    line and key)."""

    def collect(self) -> Iterator[pytest.Item]:
        from lca_common.yamlsource import ConfigError
        from lca_emulator.harness.loader import load_scenario

        try:
            scenario = load_scenario(self.path, strict=self.config.getoption("--lca-strict"))
        except ConfigError as e:
            raise self.CollectError(str(e)) from None
        item: ScenarioItem = ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)
        item.add_marker(pytest.mark.lca_scenario)
        yield item


class ScenarioFailedError(Exception):
    """A scenario whose expectations did not all hold."""

    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(result.scenario.name)
        self.result = result


class ScenarioItem(pytest.Item):
    """Runs one scenario and fails with the report of ``lca-emulator run``."""

    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self) -> None:
        import pytest_twisted
        from twisted.internet import reactor
        from twisted.internet.defer import ensureDeferred

        from lca_emulator.harness.network import Transport
        from lca_emulator.harness.runner import run_scenario
        from lca_emulator.harness.site import RunMode

        mode = RunMode(self.config.getoption("--lca-mode"))
        problem = self.scenario.wall_clock_error()
        if mode is RunMode.VIRTUAL and problem is not None:
            pytest.skip(str(problem))
        scale = float(self.config.getoption("--lca-time-scale"))
        transport = Transport(self.config.getoption("--lca-transport"))
        result = pytest_twisted.blockon(
            ensureDeferred(
                run_scenario(
                    self.scenario, reactor, mode=mode, time_scale=scale, transport=transport
                )
            )
        )
        for note in result.notes:
            self.user_properties.append(("lca_note", f"{self.scenario.name}: {note}"))
        result = self._golden(result)
        if not result.passed:
            raise ScenarioFailedError(result)

    def _golden(self, result: ScenarioResult) -> ScenarioResult:
        folder = self.config.getoption("--lca-golden")
        if not folder:
            return result
        import dataclasses

        from lca_emulator.harness import golden

        path = Path(folder)
        if not path.is_absolute():
            path = self.config.rootpath / path
        journal, scenario_path = result.journal, self.scenario.path
        if self.config.getoption("--lca-update-golden"):
            golden.record(scenario_path, journal, path, base=self.config.rootpath)
            return result
        difference = golden.compare(scenario_path, journal, path, base=self.config.rootpath)
        return dataclasses.replace(result, golden=difference)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        if isinstance(excinfo.value, ScenarioFailedError):
            from lca_emulator.cli.run import print_result

            out = io.StringIO()
            print_result(excinfo.value.result, out)
            return out.getvalue()
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario: {self.name}"


SiteFactory = Callable[..., Awaitable["Site"]]


@pytest.fixture
def lca_site_factory() -> Iterator[SiteFactory]:
    """Open emulated sites (virtual clock, loopback port 0); closed after the test.

    ``site = await lca_site_factory(applications=[...], pairs=[HaPair(...)])``; the
    keyword arguments are those of :class:`lca_emulator.harness.site.Site`.
    """
    from twisted.internet import reactor

    from lca_emulator.harness.site import Site

    sites: list[Site] = []

    async def open_site(**kwargs: Any) -> Site:
        site = Site(reactor, **kwargs)
        sites.append(site)
        await site.open()
        return site

    yield open_site

    import pytest_twisted
    from twisted.internet.defer import ensureDeferred

    for site in sites:
        pytest_twisted.blockon(ensureDeferred(site.close()))


@pytest.fixture
def lca_site(lca_site_factory: SiteFactory) -> Site:
    """One open emulated site with no configured applications (virtual clock)."""
    import pytest_twisted
    from twisted.internet.defer import ensureDeferred

    site: Site = pytest_twisted.blockon(ensureDeferred(_as_coroutine(lca_site_factory())))
    return site


async def _as_coroutine(awaitable: Awaitable[Site]) -> Site:
    return await awaitable
