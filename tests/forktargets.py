"""A fork server with small test programs, for tests/test_forkserver.py:

    python -c "import forktargets; forktargets.main()" --control-fd N

(with this folder on ``sys.path``).  Each target is a program's ``main``.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

from lca_common.forkserver import (
    Exited,
    Ready,
    Reply,
    SpawnRequest,
    Target,
    decode_reply,
    fork_early_server,
    serve,
)


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


def collector(args: list[str]) -> None:
    """``gc``: print whether the garbage collector is on."""
    import gc

    print(f"gc={gc.isenabled()}", flush=True)


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
    "gc": collector,
}


def main() -> None:
    """Serve on the control socket given as ``--control-fd N``."""
    control = socket.socket(fileno=int(sys.argv[sys.argv.index("--control-fd") + 1]))
    raise SystemExit(serve(control, TARGETS))


def early_check() -> None:
    """Fork servers with ``fork_early_server`` (this process has no reactor), use one over
    blocking sockets, discard another; print ``before`` (written unflushed before the
    forks), then one JSON object saying what happened, for tests/test_forkserver.py."""
    import gc
    import json

    gc.disable()  # as the console scripts start
    sys.stdout.write("before\n")  # unflushed: the forks must not write it again

    def server(control: socket.socket) -> int:
        sys.stdout.write("server stdout\n")  # no flush: unbuffered all the same
        return serve(control, TARGETS, spares=0)

    early = fork_early_server(server, name="test-forks")
    control, out, err = early.take()
    report: dict[str, object] = {"pid": early.pid}
    try:
        early.take()
    except RuntimeError:
        report["taken twice"] = "refused"
    replies = Replies(control)
    report["ready"] = isinstance(replies.next(), Ready)
    for number, (target, args) in enumerate([("say", ("hello",)), ("gc", ())], start=1):
        theirs, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        request = SpawnRequest(number, target, args, {}, None)
        socket.send_fds(control, [request.encode()], [theirs.fileno(), theirs.fileno()])
        theirs.close()
        while not isinstance(reply := replies.next(), Exited):
            pass
        report[target] = [_read_all(ours).decode(), reply.code]
    control.close()
    _, status = os.waitpid(early.pid, 0)
    report["server exit"] = os.waitstatus_to_exitcode(status)
    report["server output"] = _read_all(out).decode()
    err.close()

    discarded = fork_early_server(server, name="test-forks")
    discarded.discard()
    discarded.discard()  # a second time: nothing
    try:
        os.waitpid(discarded.pid, os.WNOHANG)
        report["discarded"] = "not reaped"
    except ChildProcessError:
        report["discarded"] = "reaped"
    print(json.dumps(report), flush=True)


class Replies:
    """The replies on a blocking control socket, one at a time."""

    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.buffer = b""

    def next(self) -> Reply:
        while b"\n" not in self.buffer:
            data = self.control.recv(65536)
            if not data:
                raise EOFError("the fork server closed its control socket")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return decode_reply(line)


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    return data
