"""``lca-emulator``: ``serve`` the emulated Management Layer, or ``run`` scenario files."""

from __future__ import annotations

import argparse
import gc
import resource
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver

from lca_common.clock import ScaledClock
from lca_common.entrypoints import (
    add_version,
    collect_garbage_from_now,
    exit_quietly_on_closed_pipe,
    exit_without_teardown,
    positive_float,
    positive_int,
    stop_reactor_on_interrupt,
)
from lca_common.protocol.framing import DEFAULT_MAX_CONNECTIONS
from lca_common.protocol.limits import MIN_HEARTBEAT
from lca_common.yamlsource import ConfigError

if TYPE_CHECKING:
    from lca_common.forkserver import EarlyServer

log = Logger()

FD_RESERVE: Final = 256
"""Open files ``serve`` keeps free beyond its two endpoints' connections: its stubs'
pipes, the journal, the log, and connections being refused."""


HOST_LCA_DEFAULT: Final = "tcp:0:interface=127.0.0.1"
"""Where a host's LCA listens when ``hosts:`` gives it no ``lca``: a free loopback port."""


def _then(action: Callable[[], None]) -> Callable[[object], object]:
    """A callback that does ``action`` and passes the result on."""

    def callback(result: object) -> object:
        action()
        return result

    return callback


LISTEN_BACKLOG: Final = socket.SOMAXCONN
"""The listen queue of serve's TCP endpoints (the system's maximum, 4,096 on Linux):
with Twisted's default of 50, a burst of connections overflowed it, and a client whose
connection was dropped waited a second to retry."""


def with_backlog(description: str, backlog: int = LISTEN_BACKLOG) -> str:
    """A TCP server endpoint description with ``backlog=`` added, unless it has one."""
    kind = description.split(":", 1)[0].strip().lower()
    if kind not in ("tcp", "tcp6") or "backlog=" in description:
        return description
    return f"{description}:backlog={backlog}"


def heartbeat_seconds(text: str) -> float:
    """An argparse type for ``--heartbeat``: a number of seconds, at least 0.1."""
    value = positive_float(text)
    if value < MIN_HEARTBEAT:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_HEARTBEAT:g} seconds: {text!r}")
    return value


def default_max_connections(endpoints: int = 2) -> int:
    """512 per endpoint, or fewer if the open-file limit would not allow ``endpoints``
    endpoints (the SCS, the default LCA and each host's) that many (and
    :data:`FD_RESERVE` more): accepting would then fail (EMFILE) for every client, on
    every endpoint."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return DEFAULT_MAX_CONNECTIONS
    return max(1, min(DEFAULT_MAX_CONNECTIONS, (soft - FD_RESERVE) // endpoints))


def parser() -> argparse.ArgumentParser:
    """The command line of ``lca-emulator``."""
    p = argparse.ArgumentParser(
        prog="lca-emulator",
        description="An emulated Genesys Management Layer (LCA + SCS) and scenario runner.",
    )
    add_version(p)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the emulated LCA + SCS until stopped")
    serve.add_argument(
        "--lca",
        default="tcp:4999:interface=127.0.0.1",
        metavar="ENDPOINT",
        help="where applications connect (default: %(default)s); a TCP endpoint "
        f"listens with backlog={LISTEN_BACKLOG} unless it says otherwise",
    )
    serve.add_argument(
        "--scs",
        default="tcp:4998:interface=127.0.0.1",
        metavar="ENDPOINT",
        help="where management clients connect (default: %(default)s); a TCP endpoint "
        f"listens with backlog={LISTEN_BACKLOG} unless it says otherwise",
    )
    serve.add_argument("--config", metavar="FILE", help="applications to start and HA pairs (YAML)")
    serve.add_argument(
        "--heartbeat",
        type=heartbeat_seconds,
        metavar="SECONDS",
        help="treat an application silent for this long as hung; at least 0.1 (default: off)",
    )
    serve.add_argument(
        "--grace",
        type=positive_float,
        default=5.0,
        metavar="SECONDS",
        help="time to exit after EXITING before a signal is sent (default: %(default)s)",
    )
    serve.add_argument(
        "--time-scale",
        type=positive_float,
        default=1.0,
        metavar="F",
        help="run the emulator and the stubs it starts F times as slow (0.1: ten times "
        "as fast); heartbeat and grace periods scale too, and times are then seconds "
        "since start",
    )
    serve.add_argument(
        "--journal",
        metavar="FILE",
        help="write the status journal here (JSON Lines), each entry as it happens",
    )
    serve.add_argument(
        "--max-connections",
        type=positive_int,
        metavar="N",
        help="connections each endpoint keeps open at once; past it, the oldest that has not "
        "registered or asked anything is closed to make room, or else the new one is told "
        f"too-many-connections (default: {DEFAULT_MAX_CONNECTIONS}, or fewer under a low "
        "open-file limit: (limit - 256) / endpoints, the SCS and an LCA per host counted)",
    )
    serve.add_argument(
        "--register-timeout",
        type=positive_float,
        default=30.0,
        metavar="SECONDS",
        help="close an LCA connection that has not registered after this long "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--http",
        metavar="ENDPOINT",
        help="also serve a live status page here (a bare port number: on 127.0.0.1 only)",
    )

    from lca_emulator.cli.run import add_run_arguments

    add_run_arguments(sub)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``lca-emulator`` console script."""
    args = parser().parse_args(argv)
    if args.command == "serve":
        serve(args)
        return
    from lca_emulator.cli.run import run_command

    try:
        code = run_command(args)
        sys.stdout.flush()
    except BrokenPipeError:
        exit_quietly_on_closed_pipe()
    raise SystemExit(code)


def entry_point() -> None:
    """The ``lca-emulator`` console script: :func:`main`, then the process ends without
    the interpreter's teardown.  The garbage collector is off until the command has
    imported and read what it needs (:func:`collect_garbage_from_now`)."""
    gc.disable()
    exit_without_teardown(main)


def _narrate(change: Any) -> None:
    """One human line in serve's log per registration, status or mode change, hang,
    restart, switchover or refusal."""
    from lca_emulator.narration import narrate

    line = narrate(change)
    if line is not None:
        log.info("{line}", line=line)


def serve(args: argparse.Namespace) -> None:
    """``lca-emulator serve``: listen, start the configured applications, run until stopped."""
    from lca_emulator.harness.loader import load_management_config

    applications: Sequence[Any] = ()
    outside: Sequence[Any] = ()
    pairs: Sequence[Any] = ()
    hosts: Sequence[Any] = ()
    scs_options: Any = None
    if args.config:
        try:
            config = load_management_config(args.config)
        except ConfigError as e:
            print(f"lca-emulator: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        applications, pairs, scs_options = config.applications, config.ha_pairs, config.scs
        outside, hosts = config.outside, config.hosts

    early: EarlyServer | None = None
    if applications:  # stubs to start: their fork server imports while we go on
        from lca_emulator.harness.launchers import fork_stub_fork_server

        early = fork_stub_fork_server()
    try:
        _serve(args, applications, outside, pairs, hosts, scs_options, early)
    finally:
        if early is not None:
            early.discard()  # unless serve took it


def _serve(
    args: argparse.Namespace,
    applications: Sequence[Any],
    outside: Sequence[Any],
    pairs: Sequence[Any],
    hosts: Sequence[Any],
    scs_options: Any,
    early: EarlyServer | None,
) -> None:
    """``serve`` once its configuration is read: ``early`` is the stub fork server
    forked already, if it has stubs to start."""
    from twisted.internet import reactor
    from twisted.internet.task import react

    from lca_emulator.harness.faults import LinkFaults
    from lca_emulator.harness.launchers import (
        StubProcessLauncher,
        application_spec,
        outside_spec,
        stub_fork_server,
    )
    from lca_emulator.harness.relay import RelayingLauncher, Relays
    from lca_emulator.harness.runner import play_requested_event
    from lca_emulator.journal import SERVE_JOURNAL_LIMIT, StatusJournal
    from lca_emulator.layer import ListeningAddresses, ManagementLayer, configuration_problems
    from lca_emulator.lca.processes import ProcessLauncher, ProcessScripts
    from lca_emulator.web.live import LiveServer, LiveSettings, http_endpoint_description

    specs = [application_spec(fixture) for fixture in applications]
    specs += [outside_spec(application) for application in outside]
    problems = configuration_problems(specs, pairs)
    for problem in problems:
        print(f"lca-emulator: {args.config}: {problem}", file=sys.stderr)
    if problems:
        raise SystemExit(2)

    try:
        lca_endpoint = serverFromString(reactor, with_backlog(args.lca))
        scs_endpoint = serverFromString(reactor, with_backlog(args.scs))
        http_endpoint = (
            serverFromString(reactor, http_endpoint_description(args.http)) if args.http else None
        )
    except (ValueError, KeyError, TypeError) as e:
        print(f"lca-emulator: --lca/--scs/--http must be server endpoints: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    host_endpoints = {}
    for host in hosts:
        try:
            host_endpoints[host.name] = serverFromString(
                reactor, with_backlog(host.lca or HOST_LCA_DEFAULT)
            )
        except (ValueError, KeyError, TypeError) as e:
            print(
                f"lca-emulator: {args.config}: hosts: {host.name}: 'lca' must be a server "
                f"endpoint: {e}",
                file=sys.stderr,
            )
            raise SystemExit(2) from None

    journal_file: IO[str] | None = None
    if args.journal:
        try:  # opened now: a path that cannot be written is an error at once, not at exit
            journal_file = open(args.journal, "w", encoding="utf-8", buffering=1)  # noqa: SIM115
        except OSError as e:
            print(f"lca-emulator: cannot write the journal: {e}", file=sys.stderr)
            raise SystemExit(2) from None
    journal = StatusJournal(limit=SERVE_JOURNAL_LIMIT, sink=journal_file)
    # the SCS, the default LCA, and an LCA for each host (those of the applications too)
    host_names = {host.name for host in hosts} | {s.host for s in specs if s.host is not None}
    max_connections = args.max_connections or default_max_connections(2 + len(host_names))

    workdir = tempfile.TemporaryDirectory(prefix="lca-emulator-")

    async def run(_reactor: object) -> None:
        globalLogBeginner.beginLoggingTo(
            [textFileLogObserver(sys.stderr)], redirectStandardIO=False
        )
        # one clock for the emulator and its stubs, or heartbeats would be misread
        clock = reactor if args.time_scale == 1.0 else ScaledClock(reactor, args.time_scale)
        processes = ProcessLauncher(reactor, clock)
        # a fork server only where there are stubs to start (not for commands or
        # external programs alone)
        forks = None
        if applications:
            forks = stub_fork_server(reactor, early)
            forks.start().addErrback(lambda _: None)  # logged; starts meanwhile wait, or spawn
        stubs = StubProcessLauncher(
            processes,
            Path(workdir.name),
            wall=reactor,
            time_scale=args.time_scale,
            forks=forks,
        )
        # each application reaches its LCA through a relay, where RequestEvent's link
        # faults act
        faults = LinkFaults(clock)
        relays = Relays(faults, reactor)
        layer = ManagementLayer(
            clock,
            applications=specs,
            pairs=pairs,
            hosts=[host.name for host in hosts],
            vip_scripts={host.name: host.vip_scripts for host in hosts},
            scripts=ProcessScripts(processes),
            launcher=RelayingLauncher(stubs, relays),
            heartbeat=args.heartbeat,
            grace=args.grace,
            scs_options=scs_options,
            journal=journal,
            max_connections=max_connections,
            register_timeout=args.register_timeout,
        )
        live: LiveServer | None = None

        def shutting_down() -> Deferred[object]:
            log.info("stopping: asking every application to exit")
            d = layer.shutdown()
            d.addBoth(_then(relays.close))
            if forks is not None:
                d.addBoth(lambda result: forks.stop().addCallback(lambda _: result))
            if live is not None:
                d.addBoth(live.stop)
            return d

        # from here on, Ctrl-C (even while still starting) stops what has started
        reactor.addSystemEventTrigger("before", "shutdown", shutting_down)
        stop_reactor_on_interrupt(reactor)
        try:
            ports = await layer.listen(lca_endpoint, scs_endpoint, host_endpoints)
        except Exception as e:
            print(f"lca-emulator: cannot listen: {e}", file=sys.stderr)
            raise SystemExit(1) from None
        lca_at = ListeningAddresses.describe(ports.lca)
        print(f"LCA listening on {lca_at}", flush=True)
        print(f"SCS listening on {ListeningAddresses.describe(ports.scs)}", flush=True)
        for name, port in ports.hosts.items():
            print(f"LCA of {name} listening on {ListeningAddresses.describe(port)}", flush=True)
        if http_endpoint is not None:
            settings = LiveSettings(rate=1 / args.time_scale, unix_time=args.time_scale == 1.0)
            try:
                live = await LiveServer.start(layer, http_endpoint, reactor, settings)
            except Exception as e:
                print(f"lca-emulator: cannot listen for --http: {e}", file=sys.stderr)
                raise SystemExit(1) from None
            print(f"HTTP listening on {live.address}", flush=True)
        layer.registry.changes.subscribe(_narrate)
        layer.management.play = lambda event: play_requested_event(layer, event, faults)
        for error in layer.start_all():
            log.error("{error}", error=error)
        await Deferred()  # until Ctrl-C / SIGTERM stops the reactor

    collect_garbage_from_now()
    try:
        react(lambda r: ensureDeferred(run(r)))
    finally:
        workdir.cleanup()
        if journal_file is not None:
            journal_file.close()
