"""Bad or unusual input found in review: each once crashed, hung or misjudged."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import pytest
import yaml
from twisted.internet.testing import StringTransport

from lca_common import yamlsource
from lca_common.protocol.codec import FramingError, decode
from lca_common.protocol.framing import JsonLinesProtocol
from lca_common.protocol.messages import (
    APPLICATION_TO_LCA,
    CLIENT_TO_SCS,
    SCS_TO_CLIENT,
    ApplicationStatus,
    ErrorCode,
    EventError,
    Message,
    RequestSubscribe,
)
from lca_common.yamlsource import ConfigError, parse_yaml
from lca_emulator.cli.run import load_all
from lca_emulator.scs.ha import HaPairMachine, InputKind, MemberView, PairInput, Refusal
from sipserver_stub.options import parse_tserver_options
from sipserver_stub.sip_port import SipPortProbe

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_probe_frees_the_port_at_once() -> None:
    """Two probes of one free port in a row both succeed (the first closed it at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    probe = SipPortProbe()
    assert probe.probe(port) is None
    assert probe.probe(port) is None


def test_probe_reports_a_taken_port() -> None:
    """A port another socket listens on cannot be opened, and the reason says so."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        reason = SipPortProbe().probe(s.getsockname()[1])
    assert reason is not None
    assert "cannot open SIP port" in reason


def test_deeply_nested_json_is_a_framing_error() -> None:
    """30,000 unclosed brackets are answered as invalid JSON, not a crash."""
    with pytest.raises(FramingError) as caught:
        decode(b"[" * 30000, APPLICATION_TO_LCA)
    assert caught.value.code is ErrorCode.INVALID_JSON


def _scs_connection() -> tuple[JsonLinesProtocol, StringTransport, list[Message]]:
    received: list[Message] = []
    controller = Mock(message_received=received.append)
    protocol = JsonLinesProtocol(controller, CLIENT_TO_SCS, answer_errors=True)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport, received


@pytest.mark.parametrize(
    "value",
    [b"[" * 20000 + b"]" * 20000, b"9" * 20000, b'{"a":' * 10000 + b"0" + b"}" * 10000],
    ids=["deep-array", "huge-int", "deep-object"],
)
def test_deep_or_huge_unknown_member_keeps_the_connection(value: bytes) -> None:
    """Valid JSON nested 20,000 deep or a 20,000-digit integer in an unknown member is
    ignored: the message is forwarded, nothing is answered, the connection stays open."""
    protocol, transport, received = _scs_connection()
    protocol.dataReceived(b'{"message":"RequestSubscribe","ref":1,"future":' + value + b"}\n")
    assert received == [RequestSubscribe(ref=1)]
    assert transport.value() == b""
    assert not transport.disconnecting


def test_deep_known_member_is_answered_and_the_connection_stays_open() -> None:
    """A known member holding a 20,000-deep value is invalid-field with the ref; the
    connection stays open and the next line is forwarded."""
    protocol, transport, received = _scs_connection()
    deep = b"[" * 20000 + b"]" * 20000
    protocol.dataReceived(b'{"message":"RequestGetApplicationInfo","ref":7,"application":')
    protocol.dataReceived(deep + b'}\n{"message":"RequestSubscribe","ref":8}\n')
    (reply,) = transport.value().splitlines()
    error = decode(reply, SCS_TO_CLIENT)
    assert isinstance(error, EventError)
    assert (error.code, error.ref) == (ErrorCode.INVALID_FIELD, 7)
    assert "'application' must be a non-empty string, got [[[" in error.text
    assert not transport.disconnecting
    assert received == [RequestSubscribe(ref=8)]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("duration: !!int abc\n", "duration: invalid value"),
        ("duration: !!float abc\n", "duration: invalid value"),
        ("duration: 1" + "0" * 400 + "\n", "duration: expected a number"),
        ("a: " + "[" * 3000 + "\n", "invalid YAML: nested too deeply"),
        # PyYAML reads the escape and the check refuses it; libyaml refuses the escape
        ('application: "\\ud800"\n', "expected valid Unicode text|invalid Unicode character"),
    ],
    ids=["int-tag", "float-tag", "huge-int", "deep", "surrogate"],
)
def test_bad_yaml_values_are_config_errors(tmp_path: Path, text: str, problem: str) -> None:
    """Explicit tags, huge numbers, deep nesting and bad text are errors with a place."""
    path = tmp_path / "scenario_bad.yaml"
    path.write_text("name: x\n" + text if "application" not in text else text)
    if "application" in text:
        with pytest.raises(ConfigError) as caught:
            parse_yaml(text, str(path)).mapping().get_str("application")
        assert re.search(problem, str(caught.value))
        assert caught.value.line == 1
        return
    _, problems = load_all([str(path)])
    assert [problem in str(p) for p in problems] == [True]


def test_huge_option_value_falls_back() -> None:
    """A timeout of thousands of digits is an invalid value: default 60, logged."""
    options, log = parse_tserver_options({"backup-init-check-timeout": "9" * 5000})
    assert options.backup_init_check_timeout == 60
    assert "using the default 60" in log[0]


def test_mistyped_scenario_in_a_folder_is_reported(tmp_path: Path) -> None:
    """A scenario whose marker keys are misspelt is loaded (and rejected), not skipped."""
    (tmp_path / "stub.yaml").write_text("application: X\n")
    (tmp_path / "typo.yaml").write_text("durration: 10\napplications: []\n")
    scenarios, problems = load_all([str(tmp_path)])
    assert scenarios == []
    assert ["durration" in str(p) for p in problems] == [True]


def test_refusal_names_a_hung_backup() -> None:
    """A backup that is connected but silent is refused as hung, not as disconnected."""
    machine = HaPairMachine("A", "B")
    running = ApplicationStatus.RUNNING
    members = {"A": MemberView("A", up=True, status=running)}
    machine.handle(PairInput(InputKind.REGISTERED, "A"), members)
    members["B"] = MemberView("B", up=False, status=running, hung=True)
    decision = machine.handle(PairInput(InputKind.LOST, "A", "exited"), members)
    [refusal] = decision.actions
    assert isinstance(refusal, Refusal)
    assert refusal.reason.endswith("backup B is not answering (hung)")


@pytest.mark.parametrize("kind", ["tcp4", "tcp6", "unix"])
def test_stubs_reach_the_lca_whatever_its_endpoint(kind: str, tmp_path: Path) -> None:
    """serve tells its stubs a client endpoint that reaches the LCA's listening address."""
    from twisted.internet import reactor
    from twisted.internet.endpoints import clientFromString
    from twisted.internet.protocol import Protocol, ServerFactory

    from lca_emulator.layer import ListeningAddresses

    factory: Any = ServerFactory.forProtocol(Protocol)
    r: Any = reactor
    if kind == "tcp4":
        port = r.listenTCP(0, factory, interface="0.0.0.0")
        expected = f"tcp:127.0.0.1:{port.getHost().port}"
    elif kind == "tcp6":
        port = r.listenTCP(0, factory, interface="::1")
        expected = f"tcp:host=\\:\\:1:port={port.getHost().port}"
    else:
        path = str(tmp_path / "lca.sock")
        port = r.listenUNIX(path, factory)
        expected = f"unix:path={path}"
    try:
        endpoint = ListeningAddresses.client_endpoint(port)
        assert endpoint == expected
        clientFromString(reactor, endpoint)  # a valid client endpoint string
    finally:
        port.stopListening()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize(
    "command",
    [
        ["lca-emulator", "run", "{fifo}"],
        ["lca-emulator", "serve", "--config", "{fifo}", "--lca", "tcp:0", "--scs", "tcp:0"],
        ["sipserver-stub", "{fifo}"],
    ],
    ids=["run", "serve", "sipserver-stub"],
)
def test_fifo_as_input_exits_2_at_once(command: list[str], tmp_path: Path) -> None:
    """A FIFO given as a file is refused with exit 2, not read (which would hang)."""
    fifo = tmp_path / "scenario_pipe.yaml"
    os.mkfifo(fifo)
    argv = [str(Path(sys.executable).parent / command[0])]
    argv += [arg.format(fifo=fifo) for arg in command[1:]]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert f"{fifo}: cannot read the file: it is a FIFO (named pipe)" in result.stderr


def test_run_parses_each_file_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the reference suite composes each YAML file once, though discovery, the
    scenarios and the stub fixtures they share all read them."""
    monkeypatch.setattr(yamlsource, "_parsed", yamlsource._ParsedFiles())
    composed: list[bytes] = []
    real = yaml.compose

    def counting(stream: bytes, Loader: Any) -> Any:
        composed.append(stream)
        return real(stream, Loader=Loader)

    monkeypatch.setattr(yaml, "compose", counting)
    scenarios, problems = load_all([str(FIXTURES)])
    files = sorted(FIXTURES.rglob("*.yaml"))
    assert problems == []
    assert len(scenarios) < len(files)
    assert len(composed) == len(files)


@pytest.mark.parametrize("epoch", ["nan", "inf", "-5", "0", "soon"])
def test_stub_refuses_an_epoch_that_is_no_time(
    epoch: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sipserver-stub --epoch`` takes a finite positive Unix time; anything else is a
    usage error (exit 2) naming the argument, not a traceback at start-up."""
    from sipserver_stub.cli import parser

    with pytest.raises(SystemExit) as exited:
        parser().parse_args(["fixtures/stubs/primary.yaml", "--epoch", epoch])
    assert exited.value.code == 2
    assert "argument --epoch" in capsys.readouterr().err
