#!/usr/bin/env python3
"""A vendor's own program under the emulated LCA, written from docs/protocol.md only.

It uses nothing but the Python standard library (no project import), as a program in
any language could.  Run by the LCA as an application's ``command``, it reads:

- ``LCA_ENDPOINT``: where the LCA listens, ``tcp:HOST:PORT``;
- ``LCA_APPLICATION``: its name; ``LCA_HOST``: its host (may be empty).

It registers, reports ``RUNNING`` in the mode it is given (``--mode``, default
``backup``), acknowledges every ``EventChangeExecutionMode`` (and exits on
``EXITING``), stops on ``EventSuspendApplication`` after reporting ``SUSPENDING``,
and sends ``RequestHeartbeat`` when the registration asks for a heartbeat period.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any


def parse_endpoint(text: str) -> tuple[str, int]:
    """``tcp:HOST:PORT`` (or ``tcp:host=HOST:port=PORT``) -> ``(HOST, PORT)``."""
    kind, _, rest = text.partition(":")
    if kind != "tcp":
        raise SystemExit(f"vendor_app: LCA_ENDPOINT must be tcp:HOST:PORT, got {text!r}")
    fields = rest.split(":")
    named = dict(field.split("=", 1) for field in fields if "=" in field)
    if named:
        return named["host"], int(named["port"])
    return fields[0], int(fields[1])


class Application:
    """One connection to the LCA: send lines, read lines, keep quiet no longer than asked."""

    def __init__(self, sock: socket.socket, mode: str) -> None:
        self.sock = sock
        self.mode = mode
        self.status = "RUNNING"
        self.buffer = b""
        self.heartbeat: float | None = None
        self.last_sent = time.monotonic()

    def send(self, message: dict[str, object]) -> None:
        """One JSON object on one line."""
        self.sock.sendall(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        self.last_sent = time.monotonic()

    def lines(self) -> Iterator[dict[str, Any]]:
        """Every line the LCA sends; heartbeats go out while waiting for one."""
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                if line.strip():
                    yield json.loads(line)
            if self.heartbeat is not None:
                # speak three times a period: a late wake-up never makes it look hung
                due = self.last_sent + self.heartbeat / 3 - time.monotonic()
                if due <= 0:
                    self.send({"message": "RequestHeartbeat"})
                    continue
                self.sock.settimeout(due)
            else:
                self.sock.settimeout(None)
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                return
            self.buffer += chunk

    def report(self) -> None:
        self.send({"message": "RequestUpdateStatus", "status": self.status, "mode": self.mode})

    def run(self, name: str, host: str) -> int:
        """Register, report, obey; returns the exit code."""
        register: dict[str, object] = {
            "message": "RequestRegisterApplication",
            "ref": 1,
            "application": name,
            "pid": os.getpid(),
        }
        if host:
            register["host"] = host
        self.send(register)
        for event in self.lines():
            kind = event.get("message")
            if kind == "EventApplicationRegistered":
                self.heartbeat = event.get("heartbeat")
                self.report()
                log(f"registered as {name}; RUNNING {self.mode}")
            elif kind == "EventChangeExecutionMode":
                self.mode = event["mode"]
                self.send(
                    {
                        "message": "ResponseExecutionModeChanged",
                        "ref": event["ref"],
                        "mode": self.mode,
                    }
                )
                log(f"now {self.mode}")
                if self.mode == "EXITING":
                    return 0
            elif kind == "EventSuspendApplication":
                self.status = "SUSPENDING"
                self.report()
                log("suspending, then exiting")
                return 0
            elif kind == "EventError":
                log(f"error from the LCA: {event.get('code')}: {event.get('text')}")
        log("the LCA closed the connection")
        return 1


def log(text: str) -> None:
    print(f"vendor_app: {text}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["primary", "backup"], default="backup")
    args = parser.parse_args()
    try:
        endpoint = os.environ["LCA_ENDPOINT"]
        name = os.environ["LCA_APPLICATION"]
    except KeyError as e:
        raise SystemExit(f"vendor_app: {e.args[0]} is not set (the LCA sets it)") from None
    with socket.create_connection(parse_endpoint(endpoint)) as sock:
        return Application(sock, args.mode.upper()).run(name, os.environ.get("LCA_HOST", ""))


if __name__ == "__main__":
    sys.exit(main())
