"""``sipserver-stub FIXTURE``: run one SIP Server stub against an LCA."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lca_common.entrypoints import (
    add_version,
    collect_garbage_from_now,
    exit_without_teardown,
    ignore_interrupt_if_managed,
    positive_float,
)

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred
    from twisted.internet.interfaces import IReactorTime

# Everything else is imported once the arguments are read, so that ``--help`` and a
# wrong argument answer without loading Twisted, YAML or the protocol.


def parser() -> argparse.ArgumentParser:
    """The command line of ``sipserver-stub``."""
    p = argparse.ArgumentParser(
        prog="sipserver-stub",
        description="Run one SIP Server stub from a fixture file against an LCA.",
    )
    add_version(p)
    p.add_argument("fixture", help="stub fixture file (YAML)")
    p.add_argument(
        "--lca",
        default="tcp:127.0.0.1:4999",
        metavar="ENDPOINT",
        help="Twisted client endpoint of the LCA (default: %(default)s)",
    )
    p.add_argument(
        "--time-scale",
        type=positive_float,
        default=1.0,
        metavar="F",
        help="multiply every delay and timeout by F (0.01: a 60 s timeout takes 0.6 s)",
    )
    p.add_argument(
        "--epoch",
        type=positive_float,
        metavar="SECONDS",
        help="wall-clock time (Unix seconds) the start was asked for: scenario time and the "
        "startup delays count from it, however long this process took to come up",
    )
    return p


def entry_point() -> None:
    """The ``sipserver-stub`` console script: :func:`main`, then the process ends without
    the interpreter's teardown.  The garbage collector is off until the stub has
    imported and read its fixture (:func:`collect_garbage_from_now`)."""
    gc.disable()
    exit_without_teardown(main)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``sipserver-stub`` console script."""
    args = parser().parse_args(argv)

    from lca_common.yamlsource import ConfigError
    from sipserver_stub.fixture import SipPortState, load_fixture

    try:
        fixture = load_fixture(args.fixture)
    except ConfigError as e:
        print(f"sipserver-stub: {e}", file=sys.stderr)
        raise SystemExit(2) from None

    from twisted.internet import reactor
    from twisted.internet.endpoints import clientFromString
    from twisted.internet.task import react
    from twisted.logger import Logger, globalLogBeginner, textFileLogObserver

    from lca_common.clock import ScaledClock
    from sipserver_stub.sip_port import OccupiedPort, SipPortProbe
    from sipserver_stub.stub import SipServerStub

    log = Logger(namespace=__name__)

    try:
        lca = clientFromString(reactor, args.lca)
    except (ValueError, KeyError, TypeError) as e:
        print(f"sipserver-stub: --lca {args.lca!r} is not a client endpoint: {e}", file=sys.stderr)
        raise SystemExit(2) from None

    occupied: OccupiedPort | None = None
    if fixture.sip_port_state is SipPortState.IN_USE:
        try:
            occupied = OccupiedPort(fixture.sip_port)
        except OSError as e:
            print(
                f"sipserver-stub: SIP port {fixture.sip_port} is already taken ({e}); "
                "it stays in use as the fixture asks",
                file=sys.stderr,
            )
        else:
            fixture = dataclasses.replace(fixture, sip_port=occupied.port)

    managed = ignore_interrupt_if_managed()
    collect_garbage_from_now()

    def run(_reactor: object) -> Deferred[None]:
        globalLogBeginner.beginLoggingTo(
            [textFileLogObserver(sys.stderr)], redirectStandardIO=False
        )
        if managed:
            log.info("started by the LCA: Ctrl-C is left to it (EXITING or SIGTERM stop me)")
        if occupied is not None:
            log.info(
                "SIP port {port} is taken before start (sip-port-state: in-use)", port=occupied.port
            )
        if args.epoch is not None:
            clock: IReactorTime = ScaledClock(reactor, args.time_scale, origin=args.epoch)
        elif args.time_scale != 1.0:
            clock = ScaledClock(reactor, args.time_scale)
        else:
            clock = reactor
        stub = SipServerStub(
            fixture,
            clock=clock,
            lca=lca,
            probe=SipPortProbe(),
            pid=os.getpid(),
            lca_name=args.lca,
        )
        stub.start(since=None if args.epoch is None else 0.0)
        return stub.stopped.addCallback(lambda _: stub.closed)

    try:
        react(run)
    finally:
        if occupied is not None:
            occupied.release()
