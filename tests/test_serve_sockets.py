"""``lca-emulator serve`` as a real process, driven by clients written with nothing but
``socket`` and ``json``: the exchanges of ``docs/protocol.md``, bad input on the wire,
Ctrl-C, and a ``--config`` pair of real stub processes.

Every wait has a deadline (socket timeouts, process waits); nothing sleeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from wireschema import assert_valid_wire

LCA_EMULATOR = str(Path(sys.executable).parent / "lca-emulator")
"""The console script installed next to this Python."""

TIMEOUT = 20.0
"""Seconds any single wait may take before the test fails."""

STUB_TIMEOUT = 30.0
"""Seconds real stub processes get to start, register and report."""

Json = dict[str, Any]


# -- the serve process ------------------------------------------------------------------


def _wait_exited(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait for ``proc`` to exit without reaping it (its process group stays valid)."""
    fd = os.pidfd_open(proc.pid)
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        return bool(readable)
    finally:
        os.close(fd)


@dataclass
class Serve:
    """A running ``lca-emulator serve`` and the addresses it printed."""

    proc: subprocess.Popen[bytes]
    log: Path
    lca: tuple[str, int] = ("", 0)
    scs: tuple[str, int] = ("", 0)
    clients: list[LineClient] = field(default_factory=list)

    def read_addresses(self) -> None:
        """Read the two ``... listening on HOST:PORT`` lines from its stdout."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buffer = b""
        deadline = time.monotonic() + TIMEOUT
        while buffer.count(b"\n") < 2:
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([fd], [], [], max(0.0, remaining))
            chunk = os.read(fd, 4096) if readable else b""
            if not chunk:
                raise AssertionError(f"serve printed {buffer!r}; log:\n{self.log_text()}")
            buffer += chunk
        lines = buffer.decode().splitlines()
        assert lines[0].startswith("LCA listening on "), lines
        assert lines[1].startswith("SCS listening on "), lines
        self.lca = _address(lines[0])
        self.scs = _address(lines[1])

    def connect(self, endpoint: str) -> LineClient:
        """A new plain-socket client of the ``lca`` or ``scs`` endpoint."""
        client = LineClient(socket.create_connection(getattr(self, endpoint), timeout=TIMEOUT))
        self.clients.append(client)
        return client

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> int | None:
        """Ctrl-C, then make sure nothing of it (or its stubs) is left; returns the exit code."""
        for client in self.clients:
            client.close()
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGINT)
            _wait_exited(self.proc, 3 * TIMEOUT)
            # the group is ours until the leader is reaped: end any stub left behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        code = self.proc.wait(timeout=TIMEOUT)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code


def _address(line: str) -> tuple[str, int]:
    host, port = line.rsplit(" ", 1)[1].rsplit(":", 1)
    return host, int(port)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Serve]]:
    """Start ``lca-emulator serve`` on free loopback ports (extra arguments allowed)."""
    started: list[Serve] = []

    def start(*extra: str) -> Serve:
        log = tmp_path / f"serve-{len(started)}.log"
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [
                    LCA_EMULATOR,
                    "serve",
                    "--lca",
                    "tcp:0:interface=127.0.0.1",
                    "--scs",
                    "tcp:0:interface=127.0.0.1",
                    *extra,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                bufsize=0,
                start_new_session=True,  # its own process group, stubs included
                # Ctrl-C as from a terminal, even if our own runner ignores SIGINT
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
        server = Serve(proc, log)
        started.append(server)
        server.read_addresses()
        return server

    yield start
    for server in started:
        server.stop()


# -- a client made of socket + json -----------------------------------------------------


class LineClient:
    """JSON Lines over a blocking socket; every line received is checked against the schema."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.stream = sock.makefile("rb")
        self.received: list[Json] = []

    def send(self, message: Json) -> None:
        self.send_raw(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self) -> bytes:
        """One raw line, checked against the schema (b"" when the server closed)."""
        try:
            line = self.stream.readline()
        except ConnectionResetError:
            return b""
        if line:
            assert_valid_wire(json.loads(line))
        return line

    def read(self) -> Json:
        """The next message; fails if the connection closes or nothing comes in time."""
        line = self.read_line()
        assert line, "the server closed the connection"
        assert line.endswith(b"\n")
        message: Json = json.loads(line)
        self.received.append(message)
        return message

    def request(self, message: Json) -> Json:
        """Send a request and read the next line, which must be its reply."""
        self.send(message)
        reply = self.read()
        assert reply.get("ref") == message["ref"], reply
        return reply

    def read_until(self, wanted: Callable[[Json], bool], timeout: float = TIMEOUT) -> Json:
        """Read messages until one satisfies ``wanted``; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                message = self.read()
            finally:
                self.sock.settimeout(TIMEOUT)
            if wanted(message):
                return message
        raise AssertionError(f"not seen in {timeout:g} s; received: {self.received}")

    def assert_closed(self) -> None:
        """The server closed the connection (EOF, or a reset) without sending more."""
        assert self.read_line() == b""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.close()
            self.sock.close()


def register(client: LineClient, application: str, ref: int = 1, **extra: Any) -> None:
    """Register ``application`` and check the reply (no heartbeat by default)."""
    reply = client.request(
        {"message": "RequestRegisterApplication", "ref": ref, "application": application, **extra}
    )
    assert reply == {"message": "EventApplicationRegistered", "ref": ref}


def report(client: LineClient, status: str, mode: str) -> None:
    client.send({"message": "RequestUpdateStatus", "status": status, "mode": mode})


def info(client: LineClient, application: str, ref: int) -> Json:
    """RequestGetApplicationInfo, returning the reply without ``time``."""
    reply = client.request(
        {"message": "RequestGetApplicationInfo", "ref": ref, "application": application}
    )
    reply.pop("time", None)
    return reply


def notification(application: str, status: str, mode: str) -> Callable[[Json], bool]:
    """A predicate: the subscription line saying ``application`` is now ``status``/``mode``."""

    def matches(message: Json) -> bool:
        return (
            message.get("message") == "EventApplicationInfo"
            and "ref" not in message
            and message.get("application") == application
            and message.get("status") == status
            and message.get("mode") == mode
        )

    return matches


# == the documented exchange ==============================================================


def test_register_report_and_subscribe_as_documented(serve: Callable[..., Serve]) -> None:
    """An application registers and reports; a subscriber sees the lines docs/protocol.md shows."""
    server = serve()
    watcher = server.connect("scs")
    assert watcher.request({"message": "RequestSubscribe", "ref": 3}) == {
        "message": "EventOk",
        "ref": 3,
    }
    app = server.connect("lca")
    app.send_raw(
        b'{"message":"RequestRegisterApplication","ref":1,"application":"SIPS_B",'
        b'"host":"host-b","pid":4712}\n'
    )
    assert app.read_line() == b'{"message":"EventApplicationRegistered","ref":1}\n'
    app.send_raw(b'{"message":"RequestUpdateStatus","status":"INITIALIZING","mode":"BACKUP"}\n')
    app.send_raw(b'{"message":"RequestUpdateStatus","status":"RUNNING","mode":"BACKUP"}\n')

    first = watcher.read()
    second = watcher.read()
    for message, status in ((first, "INITIALIZING"), (second, "RUNNING")):
        assert isinstance(message.pop("time"), float)
        assert message == {
            "message": "EventApplicationInfo",
            "application": "SIPS_B",
            "status": status,
            "mode": "BACKUP",
            "host": "host-b",
            "pid": 4712,
        }
    asker = server.connect("scs")
    assert info(asker, "SIPS_B", 1) == {
        "message": "EventApplicationInfo",
        "application": "SIPS_B",
        "status": "RUNNING",
        "mode": "BACKUP",
        "host": "host-b",
        "pid": 4712,
        "ref": 1,
    }
    assert asker.request(
        {"message": "RequestGetApplicationInfo", "ref": 2, "application": "SIPS_C"}
    ) == {
        "message": "EventError",
        "code": "unknown-application",
        "text": "no application named 'SIPS_C'",
        "ref": 2,
    }
    # A late subscriber gets the snapshot.
    late = server.connect("scs")
    assert late.request({"message": "RequestSubscribe", "ref": 1})["message"] == "EventOk"
    snapshot = late.read()
    assert (snapshot["application"], snapshot["status"], "ref" in snapshot) == (
        "SIPS_B",
        "RUNNING",
        False,
    )
    # The connection closing makes it UNKNOWN, and subscribers hear of it.
    app.close()
    assert watcher.read_until(notification("SIPS_B", "UNKNOWN", "BACKUP"))


def test_lca_errors_as_documented(serve: Callable[..., Serve]) -> None:
    """not-registered, already-registered and unknown-ref, line for line as in the docs."""
    server = serve()
    app = server.connect("lca")
    app.send_raw(b'{"message":"RequestUpdateStatus","status":"INITIALIZING","mode":"BACKUP"}\n')
    assert app.read() == {
        "message": "EventError",
        "code": "not-registered",
        "text": "RequestUpdateStatus before RequestRegisterApplication",
    }
    register(app, "SIPS_B", host="host-b", pid=4712)
    app.send_raw(b'{"message":"RequestRegisterApplication","ref":2,"application":"SIPS_B"}\n')
    assert app.read() == {
        "message": "EventError",
        "code": "already-registered",
        "text": "this connection is already registered as 'SIPS_B'",
        "ref": 2,
    }
    app.send_raw(b'{"message":"ResponseExecutionModeChanged","ref":9,"mode":"BACKUP"}\n')
    assert app.read() == {
        "message": "EventError",
        "code": "unknown-ref",
        "text": "no EventChangeExecutionMode with ref 9 is pending",
        "ref": 9,
    }


def test_heartbeat_is_announced(serve: Callable[..., Serve]) -> None:
    """With --heartbeat, the registration reply carries the period."""
    server = serve("--heartbeat", "10")
    app = server.connect("lca")
    reply = app.request({"message": "RequestRegisterApplication", "ref": 1, "application": "X"})
    assert reply == {"message": "EventApplicationRegistered", "ref": 1, "heartbeat": 10.0}


# == bad input on the wire =================================================================


@dataclass(frozen=True)
class BadInput:
    """One bad line: where it goes, and the EventError (and fate of the connection) it gets."""

    endpoint: str
    line: bytes
    code: str
    closes: bool
    ref: int | None = None
    text: str | None = None


def _line(message: Json) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


_HEAD, _TAIL = b'{"message":"RequestHeartbeat","pad":"', b'"}'
OVERSIZE = _HEAD + b"x" * (70_000 - len(_HEAD) - len(_TAIL)) + _TAIL + b"\n"
"""A valid JSON object on one line of 70,000 bytes (plus its newline): over the limit."""

BAD_INPUTS = {
    "lca-invalid-json": BadInput(
        "lca", b'{"message":"RequestRegisterApplication","ref":1,\n', "invalid-json", True
    ),
    "lca-not-an-object": BadInput(
        "lca",
        b'["RequestHeartbeat"]\n',
        "invalid-json",
        True,
        text="line is JSON but not an object: list",
    ),
    "lca-not-utf8": BadInput("lca", b'{"message":"\xff\xfe"}\n', "invalid-json", True),
    "lca-empty-line": BadInput("lca", b"\n", "invalid-json", True),
    "lca-nan": BadInput("lca", b'{"message":"RequestHeartbeat","x":NaN}\n', "invalid-json", True),
    "lca-oversize": BadInput("lca", OVERSIZE, "line-too-long", True),
    "lca-unknown-message": BadInput(
        "lca",
        b'{"message":"RequestSubscribe","ref":3}\n',
        "unknown-message",
        False,
        ref=3,
        text="unknown message 'RequestSubscribe' on this endpoint; expected one of: "
        "RequestHeartbeat, RequestRegisterApplication, RequestUpdateStatus, "
        "ResponseExecutionModeChanged",
    ),
    "lca-wrong-type": BadInput(
        "lca",
        _line({"message": "RequestRegisterApplication", "ref": 4, "application": 17}),
        "invalid-field",
        False,
        ref=4,
        text="RequestRegisterApplication: field 'application' must be a non-empty string, got 17",
    ),
    "lca-ref-as-string": BadInput(
        "lca",
        _line({"message": "RequestRegisterApplication", "ref": "4", "application": "X"}),
        "invalid-field",
        False,
    ),
    "lca-bad-enum": BadInput(
        "lca",
        b'{"message":"RequestUpdateStatus","status":"READY","mode":"BACKUP"}\n',
        "invalid-field",
        False,
        text="RequestUpdateStatus: field 'status' must be one of UNKNOWN, STOPPED, "
        "START_PENDING, START_TRANSITION, INITIALIZING, RUNNING, SERVICE_UNAVAILABLE, "
        'SUSPENDING, SUSPENDED, STOP_PENDING, STOP_TRANSITION, got "READY"',
    ),
    "lca-no-message-member": BadInput("lca", b'{"ref":5}\n', "invalid-field", False, ref=5),
    "lca-out-of-order": BadInput(
        "lca",
        b'{"message":"RequestUpdateStatus","status":"RUNNING","mode":"PRIMARY"}\n',
        "not-registered",
        False,
        text="RequestUpdateStatus before RequestRegisterApplication",
    ),
    "lca-out-of-order-with-ref": BadInput(
        "lca",
        b'{"message":"ResponseExecutionModeChanged","ref":6,"mode":"PRIMARY"}\n',
        "not-registered",
        False,
        ref=6,
    ),
    "scs-invalid-json": BadInput(
        "scs",
        b'{"message":"RequestSubscribe","ref":11,\n',
        "invalid-json",
        True,
        text="line is not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 40 (char 39)",
    ),
    "scs-oversize": BadInput("scs", OVERSIZE, "line-too-long", True),
    "scs-unknown-message": BadInput(
        "scs",
        b'{"message":"RequestKillApplication","ref":9,"application":"SIPS_A"}\n',
        "unknown-message",
        False,
        ref=9,
        text="unknown message 'RequestKillApplication' on this endpoint; expected one of: "
        "RequestEvent, RequestGetApplicationInfo, RequestRestartApplication, "
        "RequestStartApplication, "
        "RequestStopApplication, "
        "RequestSubscribe, RequestSwitchover",
    ),
    "scs-ref-as-string": BadInput(
        "scs",
        b'{"message":"RequestSubscribe","ref":"7"}\n',
        "invalid-field",
        False,
        text="RequestSubscribe: field 'ref' must be an integer, got \"7\"",
    ),
    "scs-missing-member": BadInput(
        "scs",
        b'{"message":"RequestGetApplicationInfo","ref":8}\n',
        "invalid-field",
        False,
        ref=8,
        text="RequestGetApplicationInfo: required field 'application' is missing",
    ),
    "scs-negative-ref": BadInput(
        "scs",
        b'{"message":"RequestGetApplicationInfo","ref":-1,"application":"SIPS_A"}\n',
        "invalid-field",
        False,
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_bad_input(serve: Callable[..., Serve], case: BadInput) -> None:
    """A bad line gets the documented EventError; a line that is not a JSON object closes
    the connection, anything else leaves it usable; other connections see no change."""
    server = serve()
    watcher = server.connect("scs")
    watcher.request({"message": "RequestSubscribe", "ref": 1})
    other = server.connect("lca")
    register(other, "SIPS_A", host="host-a", pid=4711)
    report(other, "RUNNING", "PRIMARY")
    watcher.read_until(notification("SIPS_A", "RUNNING", "PRIMARY"))

    victim = server.connect(case.endpoint)
    victim.send_raw(case.line)
    error = victim.read()
    assert error["message"] == "EventError"
    assert error["code"] == case.code
    assert error.get("ref") == case.ref
    if case.text is not None:
        assert error["text"] == case.text
    if case.closes:
        victim.assert_closed()
    elif case.endpoint == "lca":  # still usable: it can register and report
        register(victim, "SIPS_C", ref=20)
        report(victim, "RUNNING", "BACKUP")
        seen = watcher.read()
        assert (seen["application"], seen["status"], seen["mode"]) == (
            "SIPS_C",
            "RUNNING",
            "BACKUP",
        )
    else:  # still usable: it can ask
        assert info(victim, "SIPS_A", 21)["status"] == "RUNNING"

    # Nothing else changed: the other application still talks, the stream goes on.
    report(other, "SERVICE_UNAVAILABLE", "PRIMARY")
    changed = watcher.read()
    changed.pop("time")
    assert changed == {
        "message": "EventApplicationInfo",
        "application": "SIPS_A",
        "status": "SERVICE_UNAVAILABLE",
        "mode": "PRIMARY",
        "host": "host-a",
        "pid": 4711,
    }
    asker = server.connect("scs")
    assert info(asker, "SIPS_A", 1) == {**changed, "ref": 1}
    assert [m["application"] for m in watcher.received[1:]] in (
        ["SIPS_A", "SIPS_A"],
        ["SIPS_A", "SIPS_C", "SIPS_A"],
    )


def test_many_bad_lines_in_a_row_keep_one_connection_open(serve: Callable[..., Serve]) -> None:
    """Well-formed but invalid objects are answered one by one, in order, on one connection."""
    server = serve()
    app = server.connect("lca")
    for ref in range(1, 6):
        app.send({"message": "RequestBogus", "ref": ref})
    assert [app.read()["ref"] for _ in range(5)] == [1, 2, 3, 4, 5]
    register(app, "SIPS_A", ref=6)


# == stopping =============================================================================


def test_ctrl_c_stops_serve_cleanly(serve: Callable[..., Serve]) -> None:
    """SIGINT stops serve within a few seconds with exit code 0, closing its clients."""
    server = serve()
    app = server.connect("lca")
    register(app, "SIPS_A")
    started = time.monotonic()
    os.kill(server.proc.pid, signal.SIGINT)
    assert _wait_exited(server.proc, TIMEOUT), "serve did not stop"
    assert server.proc.wait(timeout=TIMEOUT) == 0, server.log_text()
    assert time.monotonic() - started < TIMEOUT
    app.assert_closed()
    assert "stopping" in server.log_text()


# == --config: two real stub processes in a pair ========================================

PRIMARY_STUB = """\
  - application: SIPS_A
    host: host-a
    mode: primary
    sip-port: 0
"""

HEALTHY_BACKUP = """\
  - application: SIPS_B
    host: host-b
    mode: backup
    sip-port: 0
    options:
      TServer:
        backup-init-check: true
"""

PAIR = """\
ha-pairs:
  - {primary: SIPS_A, backup: SIPS_B}
"""


def backup_with(components: str) -> str:
    """The backup of the pair, checking its components, with ``components`` scripted."""
    return HEALTHY_BACKUP + "    components:\n" + textwrap.indent(components, "      ")


class StubSite:
    """A ``serve --config`` site of real stubs, watched by a subscriber and a requester."""

    def __init__(self, server: Serve) -> None:
        self.server = server
        self.watcher = server.connect("scs")
        self.watcher.request({"message": "RequestSubscribe", "ref": 1})
        self.asker = server.connect("scs")
        self.refs = iter(range(1, 1000))
        self.state: dict[str, tuple[str, str]] = {}

    def ask(self, message: str, application: str) -> Json:
        return self.asker.request(
            {"message": message, "ref": next(self.refs), "application": application}
        )

    def until(self, wanted: dict[str, tuple[str, str]], timeout: float = STUB_TIMEOUT) -> None:
        """Read the stream until every application in ``wanted`` shows (status, mode)."""

        def reached(message: Json) -> bool:
            if message.get("message") == "EventApplicationInfo":
                self.state[message["application"]] = (message["status"], message["mode"])
            return all(self.state.get(name) == value for name, value in wanted.items())

        if not all(self.state.get(name) == value for name, value in wanted.items()):
            self.watcher.read_until(reached, timeout)

    def next_of(self, kind: str, timeout: float = STUB_TIMEOUT) -> Json:
        """The next ``EventSwitchover`` or ``EventSwitchoverRefused`` on the stream."""

        def seen(message: Json) -> bool:
            if message.get("message") == "EventApplicationInfo":
                self.state[message["application"]] = (message["status"], message["mode"])
            return bool(message["message"] == kind)

        return self.watcher.read_until(seen, timeout)


def start_site(
    serve: Callable[..., Serve], tmp_path: Path, *apps: str, extra: tuple[str, ...] = ()
) -> StubSite:
    config = tmp_path / "site.yaml"
    config.write_text("applications:\n" + "".join(apps) + PAIR, encoding="utf-8")
    return StubSite(serve("--config", str(config), "--grace", "2", *extra))


def lost_reason(name: str, reason: str) -> bool:
    """Whether ``reason`` says ``name`` left: its connection or its process, whichever
    the LCA noticed first."""
    return reason in (f"primary {name} disconnected", f"primary {name} exited")


def test_config_pair_of_real_stubs(serve: Callable[..., Serve], tmp_path: Path) -> None:
    """R1, R6, R4 with real stub processes: they start PRIMARY/BACKUP and RUNNING; a manual
    switchover swaps them; stopping the new primary hands the service back."""
    site = start_site(serve, tmp_path, PRIMARY_STUB, HEALTHY_BACKUP)
    site.until({"SIPS_A": ("RUNNING", "PRIMARY"), "SIPS_B": ("RUNNING", "BACKUP")})
    a = site.ask("RequestGetApplicationInfo", "SIPS_A")
    assert (a["host"], a["status"], a["mode"]) == ("host-a", "RUNNING", "PRIMARY")
    assert isinstance(a["pid"], int)

    assert site.ask("RequestSwitchover", "SIPS_A")["message"] == "EventOk"
    switchover = site.next_of("EventSwitchover")
    assert (switchover["service"], switchover["from"], switchover["to"]) == (
        "SIPS_A/SIPS_B",
        "SIPS_A",
        "SIPS_B",
    )
    assert switchover["reason"] == "manual switchover"
    site.until({"SIPS_A": ("RUNNING", "BACKUP"), "SIPS_B": ("RUNNING", "PRIMARY")})

    assert site.ask("RequestStopApplication", "SIPS_B")["message"] == "EventOk"
    back = site.next_of("EventSwitchover")
    assert (back["from"], back["to"]) == ("SIPS_B", "SIPS_A")
    assert lost_reason("SIPS_B", back["reason"]), back
    site.until({"SIPS_A": ("RUNNING", "PRIMARY"), "SIPS_B": ("STOPPED", "EXITING")})
    assert not [m for m in site.watcher.received if m["message"] == "EventSwitchoverRefused"]
    assert site.server.stop() == 0, site.server.log_text()
    log = site.server.log_text()
    assert "stub fork server | serving" in log  # the stubs were forked
    assert "stub fork server | forked from this process" in log  # early, not spawned


@pytest.mark.slow
def test_config_refusals_then_late_backup_takes_over(
    serve: Callable[..., Serve], tmp_path: Path
) -> None:
    """R6 refused, R5, R8 with real stubs: while the backup is still checking its components,
    a manual switchover and the primary's stop are both refused; once it is RUNNING it takes
    the service."""
    backup = backup_with("smart-proxy: {result: ok, after: 40}\n")  # 4 s at time scale 0.1
    site = start_site(serve, tmp_path, PRIMARY_STUB, backup, extra=("--time-scale", "0.1"))
    site.until({"SIPS_A": ("RUNNING", "PRIMARY"), "SIPS_B": ("INITIALIZING", "BACKUP")})

    refused = site.ask("RequestSwitchover", "SIPS_B")
    reason = "manual switchover; backup SIPS_B is INITIALIZING, not RUNNING"
    assert (refused["code"], refused["text"]) == ("switchover-refused", reason)
    announced = site.next_of("EventSwitchoverRefused")
    assert (announced["from"], announced["to"], announced["reason"]) == ("SIPS_A", "SIPS_B", reason)

    assert site.ask("RequestStopApplication", "SIPS_A")["message"] == "EventOk"
    refusal = site.next_of("EventSwitchoverRefused")
    cause, why = refusal["reason"].split("; ")
    assert lost_reason("SIPS_A", cause), refusal
    assert why == "backup SIPS_B is INITIALIZING, not RUNNING"

    late = site.next_of("EventSwitchover")
    assert (late["from"], late["to"], late["reason"]) == (
        "SIPS_A",
        "SIPS_B",
        "primary SIPS_A failed earlier",
    )
    site.until({"SIPS_B": ("RUNNING", "PRIMARY"), "SIPS_A": ("STOPPED", "EXITING")})


def test_config_restarted_primary_takes_the_service_back(
    serve: Callable[..., Serve], tmp_path: Path
) -> None:
    """R5, R7 with real stubs: the primary stops while the backup is SERVICE_UNAVAILABLE
    (refused, announced); started again, the primary is PRIMARY and RUNNING again."""
    backup = backup_with("t-controller: fail\n")
    site = start_site(serve, tmp_path, PRIMARY_STUB, backup)
    site.until({"SIPS_A": ("RUNNING", "PRIMARY"), "SIPS_B": ("SERVICE_UNAVAILABLE", "BACKUP")})

    assert site.ask("RequestStopApplication", "SIPS_A")["message"] == "EventOk"
    refusal = site.next_of("EventSwitchoverRefused")
    assert refusal["reason"].endswith("; backup SIPS_B is SERVICE_UNAVAILABLE, not RUNNING")
    site.until({"SIPS_A": ("STOPPED", "EXITING")})

    assert site.ask("RequestStartApplication", "SIPS_A")["message"] == "EventOk"
    site.until({"SIPS_A": ("RUNNING", "PRIMARY"), "SIPS_B": ("SERVICE_UNAVAILABLE", "BACKUP")})
    assert not [m for m in site.watcher.received if m["message"] == "EventSwitchover"]


VENDOR_APP = Path(__file__).resolve().parent.parent / "examples" / "vendor_app.py"


def test_config_pair_with_a_vendor_program_as_backup(
    serve: Callable[..., Serve], tmp_path: Path
) -> None:
    """A ``command`` backup (examples/vendor_app.py, run by serve as a process) is BACKUP,
    a RequestSwitchover reaches it (it acknowledges PRIMARY), and it exits on stop."""
    vendor = (
        "  - application: SIPS_B\n"
        "    host: host-b\n"
        f"    command: [{sys.executable}, {VENDOR_APP}, --mode, backup]\n"
    )
    site = start_site(serve, tmp_path, PRIMARY_STUB, vendor)
    site.until({"SIPS_A": ("RUNNING", "PRIMARY"), "SIPS_B": ("RUNNING", "BACKUP")})
    b = site.ask("RequestGetApplicationInfo", "SIPS_B")
    assert (b["host"], isinstance(b["pid"], int)) == ("host-b", True)

    assert site.ask("RequestSwitchover", "SIPS_A")["message"] == "EventOk"
    switchover = site.next_of("EventSwitchover")
    assert (switchover["from"], switchover["to"]) == ("SIPS_A", "SIPS_B")
    site.until({"SIPS_A": ("RUNNING", "BACKUP"), "SIPS_B": ("RUNNING", "PRIMARY")})

    assert site.ask("RequestStopApplication", "SIPS_B")["message"] == "EventOk"
    site.watcher.read_until(lambda m: m.get("application") == "SIPS_B" and m["status"] == "STOPPED")
    assert site.server.stop() == 0, site.server.log_text()
    assert "vendor_app: now PRIMARY" in site.server.log_text()


# == limits (docs/protocol.md, section 7) ================================================


def _serve_usage_error(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``serve`` with arguments it must refuse before listening."""
    return subprocess.run(
        [LCA_EMULATOR, "serve", "--lca", "tcp:0", "--scs", "tcp:0", *extra],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=tmp_path,
        check=False,
    )


@pytest.mark.parametrize("period", ["0.05", "1e-300", "0"])
def test_heartbeat_under_a_tenth_of_a_second_is_refused(tmp_path: Path, period: str) -> None:
    """serve --heartbeat below 0.1 is a usage error (exit 2), not an LCA that spins."""
    result = _serve_usage_error(tmp_path, "--heartbeat", period)
    assert result.returncode == 2
    assert "--heartbeat" in result.stderr


def test_configured_name_over_the_limit_is_refused(tmp_path: Path) -> None:
    """serve --config with a 256-byte application name exits 2 saying why, at its line."""
    config = tmp_path / "site.yaml"
    config.write_text(f"applications:\n  - {{application: {'A' * 256}, mode: primary}}\n")
    result = _serve_usage_error(tmp_path, "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(
        f"lca-emulator: {config}:2: applications[0].application: expected at most 255 bytes "
        "of UTF-8, got 256: "
    )


def test_unwritable_journal_is_refused_at_start(tmp_path: Path) -> None:
    """A --journal path that cannot be written is an error at start, not at exit."""
    result = _serve_usage_error(tmp_path, "--journal", str(tmp_path / "no" / "such" / "dir"))
    assert result.returncode == 2
    assert "cannot write the journal" in result.stderr


def test_journal_is_streamed_as_it_happens(serve: Callable[..., Serve], tmp_path: Path) -> None:
    """serve --journal FILE has each entry in the file while serve still runs."""
    path = tmp_path / "journal.jsonl"
    server = serve("--journal", str(path))
    app = server.connect("lca")
    register(app, "SIPS_A")
    report(app, "RUNNING", "PRIMARY")
    watcher = server.connect("scs")
    watcher.request({"message": "RequestSubscribe", "ref": 1})
    watcher.read_until(notification("SIPS_A", "RUNNING", "PRIMARY"))
    events = [json.loads(line)["event"] for line in path.read_text().splitlines()]
    assert events == ["registered", "status"]
    assert server.proc.poll() is None


def test_a_65_kb_name_gets_a_short_error(serve: Callable[..., Serve]) -> None:
    """The B1 case: a registration with a 65 KB name is refused with a short line, and no
    subscriber hears of it."""
    server = serve()
    watcher = server.connect("scs")
    watcher.request({"message": "RequestSubscribe", "ref": 1})
    app = server.connect("lca")
    name = "\x01" * 10_000  # 60 KB once escaped
    app.send({"message": "RequestRegisterApplication", "ref": 1, "application": name})
    line = app.read_line()
    assert len(line) < 500
    assert json.loads(line)["code"] == "invalid-field"
    register(app, "SIPS_A", ref=2)
    report(app, "RUNNING", "PRIMARY")
    assert watcher.read_until(notification("SIPS_A", "RUNNING", "PRIMARY"))


def test_connections_over_the_cap_are_refused(serve: Callable[..., Serve]) -> None:
    """With --max-connections 2, a third client gets too-many-connections and EOF; once
    one leaves, a new client is served."""
    server = serve("--max-connections", "2")
    first, second = server.connect("scs"), server.connect("scs")
    for client in (first, second):
        client.request({"message": "RequestSubscribe", "ref": 1})
    third = server.connect("scs")
    assert third.read() == {
        "message": "EventError",
        "code": "too-many-connections",
        "text": "the SCS endpoint has 2 connections open, the most it accepts; try again later",
    }
    third.assert_closed()
    app = server.connect("lca")
    register(app, "SIPS_A")  # the LCA endpoint counts its own connections
    first.close()
    deadline = time.monotonic() + TIMEOUT
    while True:  # until serve has seen the close: a bounded retry, not a sleep
        fourth = server.connect("scs")
        fourth.send({"message": "RequestSubscribe", "ref": 5})
        reply = fourth.read()
        if reply == {"message": "EventOk", "ref": 5}:
            break
        assert reply["code"] == "too-many-connections"
        assert time.monotonic() < deadline
    assert "SCS: refused a connection: 2 are open, the most it accepts" in server.log_text()


def test_unregistered_connection_is_closed_at_the_deadline(serve: Callable[..., Serve]) -> None:
    """With --register-timeout 0.5, an idle LCA connection gets registration-timeout, then
    EOF; a registered one stays."""
    server = serve("--register-timeout", "0.5")
    registered = server.connect("lca")
    register(registered, "SIPS_A")
    report(registered, "RUNNING", "PRIMARY")
    idle = server.connect("lca")
    assert idle.read() == {
        "message": "EventError",
        "code": "registration-timeout",
        "text": "no RequestRegisterApplication within 0.5 s; closing the connection",
    }
    idle.assert_closed()
    assert info(server.connect("scs"), "SIPS_A", 2)["status"] == "RUNNING"  # still connected


def test_request_event_plays_events_on_a_running_serve(
    serve: Callable[..., Serve], tmp_path: Path
) -> None:
    """RequestEvent over a real socket: a bad event is refused naming the key and changes
    nothing; set-option and kill play at once (the kill makes the backup take over)."""
    site = start_site(serve, tmp_path, PRIMARY_STUB, HEALTHY_BACKUP)
    site.until({"SIPS_A": ("RUNNING", "PRIMARY"), "SIPS_B": ("RUNNING", "BACKUP")})

    def event(body: dict[str, object]) -> Json:
        return site.asker.request(
            {"message": "RequestEvent", "ref": next(site.refs), "event": body}
        )

    bad = event({"kill": "SIPS_X"})
    assert bad["message"] == "EventError"
    assert bad["code"] == "invalid-field"
    assert bad["text"].startswith("event.kill: unknown application 'SIPS_X'"), bad
    assert (
        event({"kill": "SIPS_A", "at": 5})["text"] == "event.at: an event requested now has no 'at'"
    )
    assert event({"explode": "SIPS_A"})["text"].startswith("event.explode: unknown key 'explode'")
    assert site.ask("RequestGetApplicationInfo", "SIPS_A")["status"] == "RUNNING"

    option = {"application": "SIPS_B", "section": "TServer", "option": "x", "value": 1}
    assert event({"set-option": option})["message"] == "EventOk"
    assert event({"kill": "SIPS_A"})["message"] == "EventOk"
    switchover = site.next_of("EventSwitchover")
    assert (switchover["from"], switchover["to"]) == ("SIPS_A", "SIPS_B")
    assert site.server.stop() == 0, site.server.log_text()


def test_serve_starts_a_fork_server_only_for_stubs(
    serve: Callable[..., Serve], tmp_path: Path
) -> None:
    """With external programs alone there is nothing to fork: serve starts no fork
    server (no process, no nice -10 session) and stops cleanly."""
    config = tmp_path / "site.yaml"
    config.write_text("applications:\n  - {application: APP_X, external: true}\n", encoding="utf-8")
    server = serve("--config", str(config))
    assert server.stop() == 0
    assert "fork server" not in server.log_text()
