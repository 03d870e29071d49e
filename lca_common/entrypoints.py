"""What the command-line entry points share: argument types, one clean stop however
often Ctrl-C is hit, and the scheduling priority of a wall-clock run."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
from collections.abc import Callable
from typing import Any, NoReturn


def positive_float(text: str) -> float:
    """An argparse type for ``--time-scale`` and other positive durations."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number greater than 0: {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type for counts such as ``--jobs``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {text!r}")
    return value


def installed_version() -> str:
    """The installed distribution's version (``unknown (not installed)`` from a source tree)."""
    from importlib import metadata  # tens of milliseconds: only when asked

    try:
        return metadata.version("lca-emulator")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """``--version`` that looks the version up when it is asked for, not at every start."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(
            option_strings,
            dest,
            default=argparse.SUPPRESS,
            nargs=0,
            help="show program's version number and exit",
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(f"{parser.prog} {installed_version()}")  # to stdout, as argparse's own does
        parser.exit()


def add_version(parser: argparse.ArgumentParser) -> None:
    """``--version``: the installed distribution's version."""
    parser.add_argument("--version", action=_VersionAction)


def exit_quietly_on_closed_pipe() -> None:
    """The reader of standard output went away (``| head``): no traceback, exit 1.

    Call from an ``except BrokenPipeError`` around the command's work."""
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # Python flushes stdout again at exit
    raise SystemExit(1)


def exit_without_teardown(main: Callable[[], object]) -> NoReturn:
    """Run a console script's ``main``, then end the process as the interpreter would
    (threads joined, output flushed, atexit handlers run) but without tearing it down:
    freeing every module and object one by one took 0.1 to 0.3 s after a run of the
    reference suite.  An exception other than SystemExit ends it the usual way."""
    import atexit
    import sys
    import threading

    try:
        main()
        code: object = 0
    except SystemExit as e:
        code = e.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        exit_quietly_on_closed_pipe()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # what an atexit handler printed, if it can
            stream.flush()
    os._exit(code)


def collect_garbage_from_now() -> None:
    """Turn the cyclic garbage collector back on, if a console script turned it off for
    its start (imports and reading files: about a tenth of ``run -q fixtures/``'s CPU),
    leaving what exists by now out of its rounds (``gc.freeze``): the modules and what
    was read live as long as the process.  Does nothing where it was left on (a test
    calling the command's ``main``)."""
    import gc

    if not gc.isenabled():
        gc.freeze()
        gc.enable()


MANAGED_ENV = "LCA_EMULATOR_MANAGED"
"""Set in the environment of applications the emulated LCA starts."""


def stop_reactor_on_interrupt(reactor: Any) -> None:
    """Ctrl-C stops the reactor once, from the first instant: a second Ctrl-C while the
    applications are being stopped is not an error, and none arrives before the reactor
    has installed a handler of its own."""
    stopping = False

    def stop() -> None:
        nonlocal stopping
        if not stopping and reactor.running:
            stopping = True
            reactor.stop()

    def on_interrupt(signum: int, frame: object) -> None:
        reactor.callFromThread(stop)

    signal.signal(signal.SIGINT, on_interrupt)


def ignore_interrupt_if_managed() -> bool:
    """In an application the LCA started, Ctrl-C on the terminal is for the LCA, which
    then stops its applications gracefully (``EXITING``); and if the LCA itself dies
    (``kill -9``), the application is terminated instead of reconnecting forever.
    Returns whether it applied."""
    if os.environ.get(MANAGED_ENV) != "1":
        return False
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    terminate_with_parent()
    return True


def terminate_with_parent() -> None:
    """Linux: SIGKILL when the parent process dies (prctl PR_SET_PDEATHSIG).

    SIGKILL, not SIGTERM: it ends a stopped (hung) child too, and nobody is left to
    hear a graceful end.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: orphans are reaped by hand
        pass


WALL_CLOCK_NICE = -10
"""The nice value a wall-clock run asks for (and the stub fork server, whose children
inherit it).  On a busy machine a process that wakes up waits for a CPU behind every
busy one; at a lower nice value it runs at once.  These processes mostly sleep, so
what the others lose is little (docs/architecture.md, "Wall-clock runs")."""

AUTOGROUP_SWITCH = "/proc/sys/kernel/sched_autogroup_enabled"
"""Linux: 1 when the CPU is shared between sessions first, then between the processes of
each (autogroups): a nice value then only counts against its own session's processes."""
AUTOGROUP = "/proc/self/autogroup"
"""Linux: this process's session's autogroup; writing a nice value sets the session's."""


def raise_priority(nice: int = WALL_CLOCK_NICE, *, own_session: bool = False) -> str | None:
    """Ask the OS to run this process (and the children it starts from now on) at
    ``nice``, unless it runs there already; returns None, or why it could not (an
    unprivileged user may only lower its priority, not raise it).

    ``own_session``: for a process that needs no terminal (the stub fork server).
    Where Linux shares the CPU between sessions first (autogroups), it also starts a
    session of its own (``setsid``) and gives that session ``nice``, so that its
    processes come first against other sessions' busy ones too.
    """
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) > nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError as e:
        return f"could not raise the scheduling priority to nice {nice}: {e.strerror or e}"
    if own_session and _autogroups():
        try:
            os.setsid()
            with open(AUTOGROUP, "w", encoding="ascii") as group:
                group.write(str(nice))
        except OSError as e:
            return f"could not give a session of its own nice {nice}: {e.strerror or e}"
    return None


def _autogroups() -> bool:
    try:
        with open(AUTOGROUP_SWITCH, encoding="ascii") as switch:
            return switch.read().strip() == "1"
    except OSError:
        return False
