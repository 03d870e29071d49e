"""Per-line cost of the wire codec. Not a test: it measures and prints.

    .venv/bin/python bench/bench_codec.py [--lines N] [--repeat N]

Prints microseconds per line (best of ``--repeat`` rounds of ``--lines`` lines) for:
decoding a ``RequestUpdateStatus`` on the LCA endpoint, ``json.loads`` of the same
line (the floor), and encoding an ``EventApplicationInfo``.
"""

from __future__ import annotations

import argparse
import json
import timeit

from lca_common.protocol.codec import decode, encode
from lca_common.protocol.messages import (
    APPLICATION_TO_LCA,
    ApplicationStatus,
    EventApplicationInfo,
    ExecutionMode,
)

STATUS_LINE = b'{"message":"RequestUpdateStatus","status":"RUNNING","mode":"PRIMARY"}'
INFO = EventApplicationInfo(
    application="SIPS_A",
    status=ApplicationStatus.RUNNING,
    mode=ExecutionMode.PRIMARY,
    time=12.5,
    host="host-a",
    pid=4242,
    ref=7,
)


def per_line(statement: str, lines: int, repeat: int) -> float:
    """Best microseconds per call over ``repeat`` rounds of ``lines`` calls."""
    names = {
        "decode": decode,
        "encode": encode,
        "json": json,
        "LINE": STATUS_LINE,
        "INFO": INFO,
        "ACCEPTED": APPLICATION_TO_LCA,
    }
    rounds = timeit.repeat(statement, globals=names, number=lines, repeat=repeat)
    return min(rounds) / lines * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    rows = [
        ("decode RequestUpdateStatus", "decode(LINE, ACCEPTED)"),
        ("json.loads of that line", "json.loads(LINE)"),
        ("encode EventApplicationInfo", "encode(INFO)"),
    ]
    for label, statement in rows:
        print(f"{label:30} {per_line(statement, args.lines, args.repeat):6.2f} us/line")


if __name__ == "__main__":
    main()
