"""A relay between an application process and its LCA, where link faults are real.

A stub or program that runs as its own process (``--processes``, ``serve``) is given
its relay's address instead of its LCA's.  The relay listens on 127.0.0.1, port 0,
and for each connection from the application opens one to the LCA and copies bytes
both ways; the application's end goes through the application's
:class:`~lca_emulator.harness.faults.AppLink`, so a cut, a stall or latency there is
what the application and the LCA see on their sockets.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.endpoints import clientFromString
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from lca_emulator.applications import ApplicationSpec
from lca_emulator.harness.faults import AppLink, LinkFaults
from lca_emulator.layer import ListeningAddresses
from lca_emulator.lca.control import ApplicationLauncher, RunningApplication

log = Logger()


def _close(transport: Any, *, clean: bool) -> None:
    if clean:
        transport.loseConnection()
    else:
        transport.abortConnection()


class _LcaSide(Protocol):
    """The relay's connection to the LCA."""

    def __init__(self, app_side: _AppSide) -> None:
        self.app_side = app_side

    def dataReceived(self, data: bytes) -> None:
        self.app_side.transport.write(data)  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.app_side.lca_gone(clean=reason.check(ConnectionDone) is not None)


class _AppSide(Protocol):
    """The relay's connection from the application (behind the link's faults)."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.lca: _LcaSide | None = None
        self.pending: list[bytes] = []
        self.closed = False

    def connectionMade(self) -> None:
        d = clientFromString(self.relay.reactor, self.relay.lca).connect(
            Factory.forProtocol(lambda: _LcaSide(self))
        )
        d.addCallbacks(self._lca_connected, self._lca_failed)

    def _lca_connected(self, lca: _LcaSide) -> None:
        if self.closed:
            lca.transport.loseConnection()  # type: ignore[union-attr]
            return
        self.lca = lca
        pending, self.pending = self.pending, []
        for data in pending:
            lca.transport.write(data)  # type: ignore[union-attr]

    def _lca_failed(self, failure: Failure) -> None:
        log.info("relay of {app}: LCA unreachable: {why}", app=self.relay.name, why=failure)
        self.transport.loseConnection()  # type: ignore[union-attr]

    def lca_gone(self, *, clean: bool) -> None:
        if not self.closed:
            _close(self.transport, clean=clean)

    def dataReceived(self, data: bytes) -> None:
        if self.lca is None:
            self.pending.append(data)
        else:
            self.lca.transport.write(data)  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.closed = True
        if self.lca is not None:  # a reset is passed on as a reset, a close as a close
            _close(self.lca.transport, clean=reason.check(ConnectionDone) is not None)


class _RelayFactory(Factory):
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    def buildProtocol(self, addr: Any) -> Protocol:
        return _AppSide(self.relay)


class Relay:
    """Listens for ``name``'s connections and relays each to the LCA at ``lca``."""

    def __init__(self, reactor: Any, name: str, lca: str, link: AppLink) -> None:
        self.reactor = reactor
        self.name = name
        self.lca = lca
        self.link = link
        self.port: IListeningPort = reactor.listenTCP(
            0, link.wrap(_RelayFactory(self)), interface="127.0.0.1"
        )

    @property
    def endpoint(self) -> str:
        """Where the application connects: a client endpoint string."""
        return ListeningAddresses.client_endpoint(self.port)

    def close(self) -> None:
        self.port.stopListening()


class Relays:
    """One relay per application and LCA, made on first use, on ``faults``' links."""

    def __init__(self, faults: LinkFaults, reactor: Any) -> None:
        self.faults = faults
        self.reactor = reactor
        self._relays: dict[tuple[str, str], Relay] = {}

    def endpoint_for(self, application: str, lca: str) -> str:
        """Where ``application`` connects to reach the LCA at ``lca`` through its link."""
        key = (application, lca)
        relay = self._relays.get(key)
        if relay is None:
            relay = Relay(self.reactor, application, lca, self.faults.link(application))
            self._relays[key] = relay
        return relay.endpoint

    def close(self) -> None:
        """Stop listening for every application."""
        for relay in self._relays.values():
            relay.close()
        self._relays.clear()


class RelayingLauncher:
    """Starts applications through ``launcher``, each reaching its LCA through its relay."""

    def __init__(self, launcher: ApplicationLauncher, relays: Relays) -> None:
        self.launcher = launcher
        self.relays = relays

    def launch(self, spec: ApplicationSpec, lca: str) -> RunningApplication:
        return self.launcher.launch(spec, self.relays.endpoint_for(spec.name, lca))
