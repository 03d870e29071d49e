"""Fixtures shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest
from logwatch import LogWatcher
from twisted.logger import ILogObserver, globalLogPublisher


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
