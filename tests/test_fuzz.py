"""Fuzzing live connections of a whole Management Layer (LCA + SCS + control, on fake
transports and a task.Clock) with random frames, valid and invalid, cut into random
chunks: nothing raises or logs a failure, every line sent is within the limit and valid
on the wire, and a bystander application's record and connection are untouched."""

from __future__ import annotations

import json
from typing import Any

import pytest
from boundsfakes import FakeLauncher, Layer, Wire
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.error import ConnectionDone
from twisted.logger import capturedLogs
from twisted.python.failure import Failure

from lca_common.protocol.messages import (
    ApplicationStatus,
    ExecutionMode,
    RequestRegisterApplication,
    RequestSubscribe,
    RequestUpdateStatus,
)
from lca_emulator.applications import ApplicationSpec
from lca_emulator.scs.server import HaPair

BYSTANDER = "BYSTANDER"
NAMES = ["SIPS_A", "SIPS_B", "MONITOR", "", "sips_a", "SIPS_A" * 50]

_scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
_junk = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


_name = st.sampled_from(NAMES) | st.text(max_size=300)
_ref = st.integers(min_value=1, max_value=20)
_status = st.sampled_from([s.value for s in ApplicationStatus])
_mode = st.sampled_from([m.value for m in ExecutionMode])


def _message(name: str, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"message": st.just(name), **fields})


_lca_object = st.one_of(
    _message("RequestRegisterApplication", ref=_ref, application=_name).flatmap(
        lambda obj: st.fixed_dictionaries(
            {key: st.just(value) for key, value in obj.items()},
            optional={"host": st.text(min_size=1, max_size=300), "pid": st.integers(1, 2**40)},
        )
    ),
    _message("RequestUpdateStatus", status=_status, mode=_mode),
    _message("RequestHeartbeat"),
    _message("ResponseExecutionModeChanged", ref=_ref, mode=_mode),
)
_scs_object = st.one_of(
    *(
        _message(name, ref=_ref, application=_name)
        for name in (
            "RequestGetApplicationInfo",
            "RequestStartApplication",
            "RequestStopApplication",
            "RequestRestartApplication",
            "RequestSwitchover",
        )
    ),
    _message("RequestSubscribe", ref=_ref),
)


@st.composite
def _mutated(draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A valid message with one member replaced by anything, or removed."""
    obj = dict(draw(valid))
    key = draw(st.sampled_from([*obj, "ref", "extra"]))
    if draw(st.booleans()):
        obj[key] = draw(_junk)
    else:
        obj.pop(key, None)
    return obj


def _frames(own: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    """Lines for one endpoint: mostly its own valid messages, then mutated ones, the
    other endpoint's, and lines that are no JSON object at all."""
    objects = st.one_of(own, own, own, _mutated(own), st.one_of(_lca_object, _scs_object)).filter(
        lambda obj: obj.get("application") != BYSTANDER
    )
    return st.one_of(
        objects.map(lambda obj: json.dumps(obj).encode()),
        objects.map(lambda obj: json.dumps(obj).encode()),
        objects.map(lambda obj: json.dumps(obj).encode()),
        st.binary(max_size=80).map(lambda data: data.replace(b"\n", b"")),
        st.sampled_from(
            [b"", b"\r", b"[]", b"null", b"{", b"\xff\xfe", b"[" * 5000, b"x" * 70_000]
        ),
    )


_step = st.one_of(
    *(
        st.tuples(
            st.just(endpoint),
            st.lists(_frames(own), min_size=1, max_size=6),
            st.integers(min_value=1, max_value=200),  # chunk size
            st.floats(min_value=0, max_value=40),  # clock advance afterwards
            st.booleans(),  # the fuzzing peer drains what it was sent
            st.booleans(),  # then it disconnects
        )
        for endpoint, own in (("lca", _lca_object), ("scs", _scs_object))
    )
)


def _deliver(wire: Wire, frames: list[bytes], chunk: int) -> None:
    data = b"\n".join(frames) + b"\n"
    chunk = max(chunk, len(data) // 40)  # at most about 40 pieces
    for start in range(0, len(data), chunk):
        wire.feed(data[start : start + chunk])


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(_step, min_size=1, max_size=8))
def test_random_frames_on_live_connections(
    steps: list[tuple[str, list[bytes], int, float, bool, bool]],
) -> None:
    """Random frames on an LCA and an SCS connection (new ones after a close) never crash
    the layer, never produce a line over the limit, and leave the bystander alone."""
    layer = Layer(
        applications=[ApplicationSpec("SIPS_A"), ApplicationSpec("SIPS_B")],
        pairs=[HaPair("SIPS_A", "SIPS_B")],
        launcher=FakeLauncher(),
        heartbeat=None,
    )
    with capturedLogs() as logs:
        bystander = layer.lca()
        bystander.send(RequestRegisterApplication(ref=1, application=BYSTANDER, host="h", pid=9))
        bystander.send(
            RequestUpdateStatus(status=ApplicationStatus.RUNNING, mode=ExecutionMode.PRIMARY)
        )
        before = layer.layer.registry.get(BYSTANDER)
        watcher = layer.scs()
        watcher.send(RequestSubscribe(ref=1))
        wires = {"lca": layer.lca(), "scs": layer.scs()}
        used = [bystander, watcher, *wires.values()]
        for endpoint, frames, chunk, advance, drain, leave in steps:
            wire = wires[endpoint]
            if wire.closing:
                wire.protocol.connectionLost(Failure(ConnectionDone()))
                wire = wires[endpoint] = layer.lca() if endpoint == "lca" else layer.scs()
                used.append(wire)
            _deliver(wire, frames, chunk)
            if drain:
                wire.transport.drain()
            if leave:
                wire.transport.loseConnection()
            watcher.transport.drain()
            bystander.transport.drain()
            layer.clock.advance(advance)
        for wire in used:
            wire.lines()  # within the limit, valid JSON, valid against the schema
    assert [e for e in logs if e.get("log_failure") is not None] == []
    assert layer.layer.registry.get(BYSTANDER) == before
    assert layer.layer.lca.connected(BYSTANDER)
    assert not bystander.closing
    assert not watcher.closing
