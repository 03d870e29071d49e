"""The test doubles shipped to users never wait for ever: clear errors instead."""

from __future__ import annotations

import pytest
from reactortest import reactor_test
from twisted.internet import reactor as global_reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.protocol import Factory, Protocol

from lca_common.protocol.messages import RequestGetApplicationInfo
from lca_emulator.harness.network import LoopbackNetwork
from lca_emulator.testing import ConnectionClosedError, ManagementClient, PeerTimeoutError


async def silent_server() -> tuple[int, list[Protocol]]:
    """A loopback server that accepts and never answers; its port number and connections."""
    accepted: list[Protocol] = []

    def build() -> Protocol:
        accepted.append(Protocol())
        return accepted[-1]

    port = (
        await LoopbackNetwork(global_reactor).server_endpoint().listen(Factory.forProtocol(build))
    )
    return port.getHost().port, accepted  # type: ignore[attr-defined]


@reactor_test
async def test_a_request_without_reply_times_out_clearly() -> None:
    """No reply within the timeout: PeerTimeoutError naming the request and its ref."""
    port, _ = await silent_server()
    client = ManagementClient(global_reactor, port)
    await client.connect()
    with pytest.raises(
        PeerTimeoutError, match=r"no reply to RequestGetApplicationInfo \(ref 1\) within 0.05 s"
    ):
        await client.request(RequestGetApplicationInfo(ref=1, application="X"), timeout=0.05)
    client.disconnect()


@reactor_test
async def test_a_request_fails_when_the_connection_closes() -> None:
    """The server closing the connection fails the pending request at once."""
    port, accepted = await silent_server()
    client = ManagementClient(global_reactor, port)
    await client.connect()
    pending = client.request(RequestGetApplicationInfo(ref=1, application="X"), timeout=5)
    while not accepted or accepted[0].transport is None:
        d: Deferred[None] = Deferred()
        global_reactor.callLater(0.01, d.callback, None)
        await d
    accepted[0].transport.loseConnection()
    with pytest.raises(ConnectionClosedError, match="before the reply to ref 1"):
        await pending


@reactor_test
async def test_connecting_to_nothing_is_refused_not_hung() -> None:
    """A connection to a port nobody listens on fails at once instead of waiting."""
    endpoint = LoopbackNetwork(global_reactor).server_endpoint()
    listening = await endpoint.listen(Factory.forProtocol(Protocol))
    number = listening.getHost().port  # type: ignore[attr-defined]
    stopped = listening.stopListening()
    if stopped is not None:
        await stopped
    with pytest.raises(ConnectionRefusedError):
        await ManagementClient(global_reactor, number).connect(timeout=2)
