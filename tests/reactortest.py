"""One typed decorator for async tests that run on pytest-twisted's reactor."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec

import pytest_twisted

P = ParamSpec("P")


def reactor_test(
    test: Callable[P, Coroutine[Any, Any, None]],
) -> Callable[P, Coroutine[Any, Any, None]]:
    """Run an async test on the reactor pytest-twisted runs (a typed ensureDeferred)."""
    marked: Callable[P, Coroutine[Any, Any, None]] = pytest_twisted.ensureDeferred(test)
    return marked
