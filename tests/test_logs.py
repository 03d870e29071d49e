"""lca_common.logs: loggers that drop events below a level before building them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest
from twisted.logger import ILogObserver, LogEvent, LogLevel

from lca_common.logs import DroppingLogger, drop_below


@pytest.fixture
def dropping() -> Iterator[None]:
    """drop_below is process-wide: put it back for the next test in this worker."""
    try:
        yield
    finally:
        drop_below(None)


def test_events_below_the_level_are_not_built(dropping: None) -> None:
    seen: list[LogEvent] = []
    log = DroppingLogger(namespace="test", observer=cast(ILogObserver, seen.append))
    log.info("kept {n}", n=1)
    drop_below(LogLevel.error)
    log.info("dropped")
    log.warn("dropped")
    log.error("kept {n}", n=2)
    log.critical("kept {n}", n=3)
    drop_below(None)
    log.debug("kept {n}", n=4)
    assert [event["n"] for event in seen] == [1, 2, 3, 4]


def test_dropping_nothing_below_debug(dropping: None) -> None:
    seen: list[LogEvent] = []
    log = DroppingLogger(namespace="test", observer=cast(ILogObserver, seen.append))
    drop_below(LogLevel.debug)
    log.debug("kept")
    assert len(seen) == 1
