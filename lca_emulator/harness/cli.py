"""``lca-emulator run``: run scenario files and print a verdict per scenario."""

from __future__ import annotations

import argparse
from typing import Any


def add_run_arguments(sub: Any) -> None:
    """Add the ``run`` subcommand to ``sub`` (an argparse subparsers object)."""
    run = sub.add_parser("run", help="run scenario files and report expected vs observed")
    run.add_argument("paths", nargs="+", metavar="PATH")


def run_command(args: argparse.Namespace) -> int:
    """Run ``lca-emulator run``; returns the exit code."""
    raise NotImplementedError
