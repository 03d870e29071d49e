"""``python -m sipserver_stub.forkserver --control-fd N``: starts stubs in a fraction of a
Python start (``lca_common.forkserver``).

It imports what a stub's start needs (Twisted, the stub, PyYAML) and builds the
codec's tables, but installs no reactor.  Its spares (children forked ahead, see
:func:`warm`) and the children it forks install their own, in :func:`warm` or in
``sipserver_stub.cli.main``.  Where the system allows it, it runs them at nice -10, in
a session of their own where sessions share the CPU first (Linux autogroups):
``lca_common.entrypoints.raise_priority``.
"""

from __future__ import annotations

import argparse
import importlib
import socket
import sys
from collections.abc import Sequence

from lca_common.entrypoints import raise_priority
from lca_common.forkserver import serve

TARGET = "sipserver-stub"
"""The name a spawn request gives to start a stub (``sipserver_stub.cli.main``)."""

PRELOAD = (
    "sipserver_stub.cli",
    "sipserver_stub.fixture",
    "sipserver_stub.sip_port",
    "sipserver_stub.stub",
    "lca_common.clock",
    "lca_common.yamlsource",
    "twisted.internet.epollreactor" if sys.platform.startswith("linux") else "",
    "twisted.internet.selectreactor",
    "twisted.internet.endpoints",
    "twisted.internet.task",
    "twisted.logger",
    "twisted.application.internet",
    "ctypes",
)
"""What a stub's start imports (``sipserver_stub.cli.main`` imports most of it only
once its arguments are read); none of it installs a reactor."""


WARM_FIXTURE = """\
application: WARM
mode: backup
sip-port: 0
options: {TServer: {backup-init-check: true}}
components: {t-controller: {result: ok, after: 1}}
"""


def warm() -> None:
    """In a spare, before it is asked for: do what every stub's start does first (read a
    command line and a fixture, install the reactor, parse an endpoint), so that the
    pages it touches are its own already and the start itself is short.  A spare never
    forks, so installing a reactor here is safe."""
    from twisted.internet import reactor
    from twisted.internet.endpoints import clientFromString

    from lca_common.yamlsource import parse_yaml
    from sipserver_stub import cli
    from sipserver_stub.fixture import fixture_from_node

    cli.parser().parse_args(["f.yaml", "--lca", "tcp:127.0.0.1:1", "--time-scale", "0.5"])
    fixture_from_node(parse_yaml(WARM_FIXTURE)).tserver_options()
    clientFromString(reactor, "tcp:127.0.0.1:1")


def main(argv: Sequence[str] | None = None) -> None:
    """Serve spawn requests on the inherited control socket until it closes."""
    p = argparse.ArgumentParser(prog="python -m sipserver_stub.forkserver")
    p.add_argument("--control-fd", type=int, required=True, metavar="N")
    p.add_argument(
        "--spares", type=int, default=2, metavar="N", help="stubs forked ahead (default: 2)"
    )
    args = p.parse_args(argv)
    raise SystemExit(serve_stubs(socket.socket(fileno=args.control_fd), spares=args.spares))


def serve_stubs(control: socket.socket, *, spares: int = 2) -> int:
    """Import what a stub needs, then serve spawn requests on ``control`` until it
    closes; returns the exit code.  Run by :func:`main`, or in a child forked from the
    LCA's command (``lca_common.forkserver.fork_early_server``)."""
    # A stub mostly sleeps; when it wakes (a start, a timer, a report), a busy machine
    # should not keep it waiting for a CPU: its times are judged to the millisecond.
    if (problem := raise_priority(own_session=True)) is not None:
        print(f"stub fork server: {problem}", file=sys.stderr, flush=True)
    for name in filter(None, PRELOAD):
        importlib.import_module(name)
    from lca_common.protocol import codec
    from lca_common.protocol.messages import APPLICATION_TO_LCA, LCA_TO_APPLICATION
    from sipserver_stub import cli

    codec.prepare(APPLICATION_TO_LCA, LCA_TO_APPLICATION)  # once, not in every stub
    return serve(control, {TARGET: cli.main}, warm=warm, spares=spares)


if __name__ == "__main__":
    main()
