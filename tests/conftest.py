"""Fixtures shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest
from logwatch import LogWatcher
from twisted.logger import ILogObserver, globalLogPublisher


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (seconds of wall clock each: real processes, real time) run
    first, in their own order: under ``pytest -n``, the workers then share them out at
    the start instead of one worker finishing the last of them while the others wait."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def logs() -> Iterator[LogWatcher]:
    """What Twisted logs during the test (output lines of child processes included)."""
    watcher = LogWatcher()
    observer = cast(ILogObserver, watcher)
    globalLogPublisher.addObserver(observer)
    try:
        yield watcher
    finally:
        globalLogPublisher.removeObserver(observer)
