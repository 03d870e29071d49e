"""``lca-emulator serve --http`` as a real process, for the live page's tests: start it on
free loopback ports, read the lines it prints, register an application with a plain
socket, stop it with Ctrl-C.  Every wait has a deadline; nothing sleeps."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lca_common.protocol.codec import encode
from lca_common.protocol.messages import (
    ApplicationStatus,
    ExecutionMode,
    RequestRegisterApplication,
    RequestUpdateStatus,
)

LCA_EMULATOR = str(Path(sys.executable).parent / "lca-emulator")
"""The console script installed next to this Python."""

TIMEOUT = 20.0
"""Seconds any single wait may take before the test fails."""


def address(line: str) -> tuple[str, int]:
    """``(host, port)`` of a ``... listening on HOST:PORT`` line."""
    host, port = line.rsplit(" ", 1)[1].rsplit(":", 1)
    return host, int(port)


@dataclass
class ServeProcess:
    """A running ``lca-emulator serve``, the lines it printed first, and its clients."""

    proc: subprocess.Popen[bytes]
    log: Path
    lines: list[str] = field(default_factory=list)
    sockets: list[socket.socket] = field(default_factory=list)

    @classmethod
    def start(cls, folder: Path, *extra: str, lines: int = 3) -> ServeProcess:
        """Start serve on free loopback ports and read its first ``lines`` lines."""
        log = folder / f"serve-{time.monotonic_ns()}.log"
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [*cls.command(), *extra],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                bufsize=0,
                start_new_session=True,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
        server = cls(proc, log)
        try:
            server.lines = server._read_lines(lines)
        except BaseException:
            server.stop()
            raise
        return server

    @staticmethod
    def command() -> list[str]:
        """``lca-emulator serve`` on free loopback ports."""
        return [
            LCA_EMULATOR,
            "serve",
            "--lca",
            "tcp:0:interface=127.0.0.1",
            "--scs",
            "tcp:0:interface=127.0.0.1",
        ]

    def _read_lines(self, count: int) -> list[str]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buffer = b""
        deadline = time.monotonic() + TIMEOUT
        while buffer.count(b"\n") < count:
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([fd], [], [], max(0.0, remaining))
            chunk = os.read(fd, 4096) if readable else b""
            if not chunk:
                raise AssertionError(f"serve printed {buffer!r}; log:\n{self.log_text()}")
            buffer += chunk
        return buffer.decode().splitlines()[:count]

    def address(self, prefix: str) -> tuple[str, int]:
        """Where the ``LCA``, ``SCS`` or ``HTTP`` endpoint listens."""
        line = next(line for line in self.lines if line.startswith(prefix + " listening on "))
        return address(line)

    @property
    def http_url(self) -> str:
        host, port = self.address("HTTP")
        return f"http://{host}:{port}/"

    def register(self, name: str, host: str = "host-a") -> socket.socket:
        """Register ``name`` on the LCA port with a plain socket; returns it (kept open)."""
        sock = socket.create_connection(self.address("LCA"), timeout=TIMEOUT)
        self.sockets.append(sock)
        sock.sendall(encode(RequestRegisterApplication(ref=1, application=name, host=host)) + b"\n")
        reply = json.loads(sock.makefile("rb").readline())
        assert reply["message"] == "EventApplicationRegistered", reply
        return sock

    @staticmethod
    def report(sock: socket.socket, status: ApplicationStatus, mode: ExecutionMode) -> None:
        """Send ``RequestUpdateStatus`` on a registered application's socket."""
        sock.sendall(encode(RequestUpdateStatus(status=status, mode=mode)) + b"\n")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> int:
        """Ctrl-C, and make sure nothing of it is left; returns its exit code."""
        for sock in self.sockets:
            sock.close()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=3 * TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
        code = self.proc.wait(timeout=TIMEOUT)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code
