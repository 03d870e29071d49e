"""A fork server with small test programs, for tests/test_forkserver.py:

    python -c "import forktargets; forktargets.main()" --control-fd N

(with this folder on ``sys.path``).  Each target is a program's ``main``.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

from lca_common.forkserver import Target, serve


def exit_with(args: list[str]) -> None:
    """``exit N``: exit with code N."""
    raise SystemExit(int(args[0]))


def say(args: list[str]) -> None:
    """``say LINE...``: each line to stdout, or to stderr if it starts with ``err:``."""
    for line in args:
        stream = sys.stderr if line.startswith("err:") else sys.stdout
        print(line, file=stream, flush=True)


def show(args: list[str]) -> None:
    """``show``: print PROBE from the environment, the directory and sys.argv."""
    print(f"PROBE={os.environ.get('PROBE')}", flush=True)
    print(f"cwd={os.getcwd()}", flush=True)
    print(f"argv={sys.argv}", flush=True)


def wait(args: list[str]) -> None:
    """``wait [ignore-term]``: say ``ready``, then wait for signals (ignoring SIGTERM)."""
    if "ignore-term" in args:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ready", flush=True)
    while True:
        signal.pause()


def fail(args: list[str]) -> None:
    """``fail``: an uncaught exception."""
    raise RuntimeError("boom")


def complain(args: list[str]) -> None:
    """``complain``: SystemExit with a message."""
    raise SystemExit("bad input")


TARGETS: dict[str, Target] = {
    "exit": exit_with,
    "say": say,
    "show": show,
    "wait": wait,
    "fail": fail,
    "complain": complain,
}


def main() -> None:
    """Serve on the control socket given as ``--control-fd N``."""
    control = socket.socket(fileno=int(sys.argv[sys.argv.index("--control-fd") + 1]))
    raise SystemExit(serve(control, TARGETS))
