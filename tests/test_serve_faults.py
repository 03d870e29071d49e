"""``RequestEvent`` on a running ``lca-emulator serve --config`` with two hosts, over real
sockets: every event type plays, each with an effect a client can see (an
``EventApplicationInfo``, a switchover notice, a journal entry); a bad event gets an
``EventError`` naming its key, one that cannot be played now the code of what failed,
and neither changes anything.

One serve process runs the whole story (real stub processes, ``--time-scale 0.1``: a
scenario second is a tenth of a second).  Every wait is on a message, with a deadline;
the journal file is read only after a notification that the SCS announced after the
entries it needs (the journal is written before a change is announced).
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from serveproc import ServeProcess, address
from wireschema import assert_valid_wire

Json = dict[str, Any]

TIMEOUT = 30.0
"""Wall-clock seconds a wait may take (real stub processes start in it)."""

SCALE = 0.1
"""serve's --time-scale: each scenario second is this many real seconds."""

CONFIG = """\
hosts:
  - {name: host-a, lca: "tcp:0:interface=127.0.0.1"}
  - {name: host-b}
applications:
  - {application: SIPS_A, host: host-a, mode: primary, sip-port: 0}
  - {application: SIPS_B, host: host-b, mode: backup, sip-port: 0}
ha-pairs:
  - {primary: SIPS_A, backup: SIPS_B}
"""
"""Two hosts: host-a's LCA where the file says, host-b's on a free loopback port."""

A, B = "SIPS_A", "SIPS_B"


class Client:
    """JSON Lines over a blocking socket; every line received is checked against the schema."""

    def __init__(self, where: tuple[str, int]) -> None:
        self.sock = socket.create_connection(where, timeout=TIMEOUT)
        self.stream = self.sock.makefile("rb")
        self.received: list[Json] = []
        self.refs = iter(range(1, 10_000))

    def send(self, message: Json) -> None:
        self.sock.sendall(json.dumps(message).encode() + b"\n")

    def read(self, timeout: float = TIMEOUT) -> Json:
        self.sock.settimeout(max(0.01, timeout))
        try:
            line = self.stream.readline()
        finally:
            self.sock.settimeout(TIMEOUT)
        assert line, "the server closed the connection"
        message: Json = json.loads(line)
        assert_valid_wire(message)
        self.received.append(message)
        return message

    def request(self, message: Json) -> Json:
        """Send a request with a fresh ref and return its reply (the next line)."""
        ref = next(self.refs)
        self.send({**message, "ref": ref})
        reply = self.read()
        assert reply.get("ref") == ref, reply
        return reply

    def read_until(self, wanted: Callable[[Json], bool]) -> Json:
        deadline = time.monotonic() + TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"not seen in {TIMEOUT:g} s; received: {self.received[-20:]}"
            message = self.read(remaining)
            if wanted(message):
                return message

    def closed(self) -> bool:
        """Whether the other end has closed (EOF or reset) by now, waiting at most TIMEOUT."""
        self.sock.settimeout(TIMEOUT)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.close()
            self.sock.close()


class Story:
    """The running serve, a subscriber that tracks every application's (status, mode),
    a client that plays events, and the journal file."""

    def __init__(self, server: ServeProcess, journal: Path) -> None:
        self.server = server
        self.journal_path = journal
        self.watcher = Client(server.address("SCS"))
        assert self.watcher.request({"message": "RequestSubscribe"})["message"] == "EventOk"
        self.asker = Client(server.address("SCS"))
        self.state: dict[str, tuple[str, str]] = {}
        self.notices: list[Json] = []

    def _track(self, message: Json) -> None:
        if message["message"] == "EventApplicationInfo":
            self.state[message["application"]] = (message["status"], message["mode"])
        elif message["message"] in ("EventSwitchover", "EventSwitchoverRefused"):
            self.notices.append(message)

    def until(self, **wanted: tuple[str, str]) -> None:
        """Read the subscription until each named application shows (status, mode)."""

        def reached(message: Json) -> bool:
            self._track(message)
            return all(self.state.get(name) == value for name, value in wanted.items())

        if not all(self.state.get(name) == value for name, value in wanted.items()):
            self.watcher.read_until(reached)

    def until_status(self, name: str, status: str) -> None:
        """Read the subscription until ``name`` shows ``status`` (any mode)."""

        def reached(message: Json) -> bool:
            self._track(message)
            return self.state.get(name, ("", ""))[0] == status

        if self.state.get(name, ("", ""))[0] != status:
            self.watcher.read_until(reached)

    def switchover(self) -> Json:
        """The next switchover notice on the subscription."""
        seen = len(self.notices)

        def reached(message: Json) -> bool:
            self._track(message)
            return len(self.notices) > seen

        self.watcher.read_until(reached)
        notice = self.notices[seen]
        assert notice["message"] == "EventSwitchover", notice
        return notice

    def play(self, event: Json) -> Json:
        """RequestEvent; returns the reply."""
        return self.asker.request({"message": "RequestEvent", "event": event})

    def ok(self, event: Json) -> None:
        reply = self.play(event)
        assert reply["message"] == "EventOk", (event, reply)

    def journal(self, name: str, event: str | None = None) -> list[Json]:
        """The journal file's entries of ``name`` (of one event), so far."""
        lines = self.journal_path.read_text(encoding="utf-8").splitlines()
        entries = [json.loads(line) for line in lines]
        return [e for e in entries if e["application"] == name and event in (None, e["event"])]

    def last(self, name: str, event: str) -> Json:
        entries = self.journal(name, event)
        assert entries, f"no {event} of {name} in the journal"
        return entries[-1]

    def snapshot(self) -> list[Json]:
        """Every record as a new subscriber's snapshot gives it (times included)."""
        client = Client(self.server.address("SCS"))
        try:
            assert client.request({"message": "RequestSubscribe"})["message"] == "EventOk"
            return [client.read() for _ in self.state]  # SIPS_A, SIPS_B and the probe
        finally:
            client.close()


@pytest.fixture
def story(tmp_path: Path) -> Iterator[Story]:
    """serve --config with two hosts, started and watched; stopped afterwards."""
    config = tmp_path / "site.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    journal = tmp_path / "journal.jsonl"
    extra = ("--config", str(config), "--time-scale", str(SCALE), "--grace", "1")
    server = ServeProcess.start(tmp_path, *extra, "--journal", str(journal), lines=4)
    story = None
    try:
        story = Story(server, journal)
        yield story
    finally:
        if story is not None:
            story.watcher.close()
            story.asker.close()
        server.stop()


BAD_EVENTS: list[tuple[Json, str]] = [
    ({"explode": A}, "event.explode: unknown key 'explode'"),
    ({"host-down": "host-z"}, "event.host-down: unknown host 'host-z'"),
    ({"host-down": A}, "event.host-down: 'SIPS_A' is an application; 'host-down' takes a host"),
    ({"cut-link": "host-a", "how": "close"}, "event.cut-link: 'host-a' is a host"),
    ({"cut-link": A, "how": "explode"}, "event.how: expected one of close, reset, stall"),
    ({"cut-link": A}, "event: a cut-link event needs 'how'"),
    ({"cut-lca-link": "host-a"}, "event: a cut-lca-link event needs 'for'"),
    ({"host-up": "host-a", "for": 3}, "event.for: 'for' goes with a cut-lca-link or cut-link"),
    ({"kill": A, "for": 3}, "event.for: 'for' goes with"),
    ({"delay-link": A, "ms": 10, "how": "stall"}, "event.how: 'how' goes with a cut-link event"),
    ({"delay-link": A, "ms": -1}, "event.ms: expected a number of at least 0"),
    ({"cut-link": A, "how": "close", "for": 0}, "event.for: expected a number greater than 0"),
    ({"stop": A, "at": 3}, "event.at: an event requested now has no 'at'"),
]
REFUSED_EVENTS: list[tuple[Json, str, str]] = [
    ({"host-up": "host-a"}, "host-unreachable", "host-up host-a: host host-a is not down"),
    ({"start": A}, "already-running", "start SIPS_A: SIPS_A is already running"),
]
"""Valid events that cannot be played now: the code of what failed, as a request gets it."""


@pytest.mark.slow
def test_request_event_plays_every_event_type(story: Story, tmp_path: Path) -> None:
    """Bad events change nothing; then stop, kill, start, restart, set-option, switchover,
    hang, host-down, host-up, cut-lca-link, cut-link (close, reset, stall) and delay-link
    each play on the running serve, each with an effect a client sees."""
    server = story.server
    host_lines = [line for line in server.lines if line.startswith("LCA of ")]
    assert [line.split(" listening on ")[0] for line in host_lines] == [
        "LCA of host-a",
        "LCA of host-b",
    ]
    ports = {server.address("LCA")[1], *(address(line)[1] for line in host_lines)}
    assert len(ports) == 3
    assert 0 not in ports
    story.until(SIPS_A=("RUNNING", "PRIMARY"), SIPS_B=("RUNNING", "BACKUP"))

    # An application of its own on host-b's LCA: it goes down with that host.
    probe = Client(address(host_lines[1]))
    probe.send({"message": "RequestRegisterApplication", "ref": 1, "application": "PROBE"})
    assert probe.read()["message"] == "EventApplicationRegistered"
    probe.send({"message": "RequestUpdateStatus", "status": "RUNNING", "mode": "BACKUP"})
    story.until(PROBE=("RUNNING", "BACKUP"))

    # -- bad events: an EventError naming the key, and nothing changes ----------------
    before, journaled = story.snapshot(), len(story.journal(A)) + len(story.journal(B))
    for event, text in BAD_EVENTS:
        reply = story.play(event)
        assert reply["message"] == "EventError", (event, reply)
        assert reply["code"] == "invalid-field"
        assert reply["text"].startswith(text), (event, reply)
    for event, code, text in REFUSED_EVENTS:
        reply = story.play(event)
        assert (reply["message"], reply["code"], reply["text"]) == ("EventError", code, text)
    assert story.snapshot() == before
    assert len(story.journal(A)) + len(story.journal(B)) == journaled

    # -- set-option ([sml] is read at once: autostart acts at host-up below) ---------------
    option = {"application": B, "section": "sml", "option": "autostart", "value": True}
    story.ok({"set-option": option})

    # -- delay-link, then switchover: B's PRIMARY takes 2 s each way ----------------------
    story.ok({"delay-link": B, "ms": 2000})
    story.ok({"switchover": A})
    notice = story.switchover()
    assert (notice["from"], notice["to"], notice["reason"]) == (A, B, "manual switchover")
    story.until(SIPS_A=("RUNNING", "BACKUP"), SIPS_B=("RUNNING", "PRIMARY"))
    asked = story.last(B, "mode-requested")
    acknowledged = story.last(B, "mode")
    assert asked["detail"].startswith("PRIMARY")
    assert acknowledged["detail"] == "acknowledged PRIMARY"
    assert acknowledged["time"] - asked["time"] >= 3.99
    story.ok({"delay-link": B, "ms": 0})

    # -- cut-lca-link: the SCS loses host-b's LCA for 2 s; B is lost, A takes over --------
    story.ok({"cut-lca-link": "host-b", "for": 2})
    notice = story.switchover()
    assert notice["reason"] == "primary SIPS_B unreachable (SCS lost the link to its LCA)"
    story.until(SIPS_A=("RUNNING", "PRIMARY"), SIPS_B=("RUNNING", "BACKUP"))
    lost, restored = story.last(B, "lca-link-lost"), story.last(B, "lca-link-restored")
    assert restored["time"] - lost["time"] >= 1.99
    assert [e["log-id"] for e in story.journal(B, "split-brain")] == [10329, 10330]

    # -- cut-link reset: the LCA sees a reset; A reconnects after the 1 s --------------------
    story.ok({"cut-link": A, "how": "reset", "for": 1})
    notice = story.switchover()
    assert (notice["from"], notice["to"]) == (A, B)
    story.until(SIPS_A=("RUNNING", "BACKUP"), SIPS_B=("RUNNING", "PRIMARY"))
    disconnected = story.last(A, "disconnected")
    assert "non-clean" in disconnected["detail"], disconnected
    back = story.journal(A, "registered")[-1]
    assert back["time"] - disconnected["time"] >= 0.99

    # -- cut-link close: the LCA sees a clean close; B reconnects at once --------------------
    story.ok({"cut-link": B, "how": "close"})
    notice = story.switchover()
    assert (notice["from"], notice["to"]) == (B, A)
    story.until(SIPS_A=("RUNNING", "PRIMARY"), SIPS_B=("RUNNING", "BACKUP"))
    assert story.last(B, "disconnected")["detail"] == "Connection was closed cleanly."

    # -- cut-link stall: A's BACKUP acknowledgement, so B's promotion, waits for its end ------
    story.ok({"cut-link": A, "how": "stall", "for": 3})
    story.ok({"switchover": A})
    notice = story.switchover()
    assert (notice["from"], notice["to"]) == (A, B)
    story.until(SIPS_A=("RUNNING", "BACKUP"), SIPS_B=("RUNNING", "PRIMARY"))
    promoted = story.last(B, "mode-requested")
    assert promoted["detail"].startswith("PRIMARY")
    assert promoted["time"] - story.last(B, "switchover")["time"] >= 2.5

    # -- host-down host-b: B and the probe vanish with it; A takes over ----------------------
    story.ok({"host-down": "host-b"})
    notice = story.switchover()
    assert notice["reason"] == "primary SIPS_B lost with its host"
    story.until(SIPS_A=("RUNNING", "PRIMARY"))
    story.until_status(B, "UNKNOWN")
    assert probe.closed()
    probe.close()
    assert story.last(B, "host-down")["detail"] == "host host-b went down"
    refused = story.asker.request({"message": "RequestStartApplication", "application": B})
    assert (refused["code"], refused["text"]) == (
        "host-unreachable",
        "cannot start SIPS_B: host host-b is down",
    )

    # -- host-up host-b: a new LCA; B's [sml] autostart (set above) starts it ----------------
    story.ok({"host-up": "host-b"})
    story.until(SIPS_B=("RUNNING", "BACKUP"))
    host_up = story.last(B, "host-up")
    assert host_up["status"] == "STOPPED"
    assert story.last(B, "start-requested")["time"] >= host_up["time"]

    # -- stop, restart (of a stopped application: a start), kill, start ---------------------
    story.ok({"stop": B})
    story.until_status(B, "STOPPED")
    assert story.last(B, "stop-requested")
    option = {"application": B, "section": "sml", "option": "heartbeat-period", "value": 30}
    story.ok({"set-option": option})  # from its next registration on: hang is seen below
    story.ok({"restart": B})
    story.until(SIPS_B=("RUNNING", "BACKUP"))
    story.ok({"kill": B})
    story.until_status(B, "STOPPED")
    assert story.last(B, "killed")
    story.ok({"start": B})
    story.until(SIPS_B=("RUNNING", "BACKUP"))

    # -- hang: silent past its 30 s heartbeat period, B is found hung and restarted -----------
    story.ok({"hang": B})
    story.until_status(B, "UNKNOWN")
    story.until(SIPS_B=("RUNNING", "BACKUP"))
    assert story.last(B, "hung")["detail"] == "silent for 30 s"
    assert story.last(B, "restarted")["detail"] == "reason=hangup"
    assert not [n for n in story.notices if n["message"] == "EventSwitchoverRefused"]
    assert server.stop() == 0, server.log_text()
