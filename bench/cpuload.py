"""A loaded machine for benchmarks: ``with busy_processes(n):`` keeps n CPU-bound
processes spinning at nice 0 for the duration (``--load N`` of the benchmarks)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from contextlib import contextmanager


def _spin() -> None:
    os.setpriority(os.PRIO_PROCESS, 0, 0)  # an ordinary busy process (lowering is allowed)
    while True:
        pass


@contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """``count`` CPU-bound processes for the duration, killed at its end."""
    context = multiprocessing.get_context("spawn")
    spinners = [context.Process(target=_spin, daemon=True) for _ in range(count)]
    for p in spinners:
        p.start()
    try:
        yield
    finally:
        for p in spinners:
            p.kill()
            p.join()
