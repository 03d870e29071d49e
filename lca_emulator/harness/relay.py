"""A relay between an application process and its LCA, where link faults are real.

A stub or program that runs as its own process (``--processes``, ``serve``) is given
its relay's address instead of its LCA's.  The relay listens on 127.0.0.1, port 0,
and for each connection from the application opens one to the LCA and copies bytes
both ways; the application's end goes through the application's
:class:`~lca_emulator.harness.faults.AppLink`, so a cut, a stall or latency there is
what the application and the LCA see on their sockets.

An application started through its relay (:class:`RelayingLauncher`) has ended, for
the LCA, once its process has ended and its connections through the relay have closed
on both ends: so the LCA reads what it wrote before it exited first, as a real LCA has
it in its socket already (and as an in-process stub's end waits for its connection).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
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
from lca_emulator.lca.processes import ProcessExit

log = Logger()

QUIET_LIMIT = 5.0
"""Wall-clock seconds an ended application's connections may take to close through its
relay before its end is told anyway."""


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
        self.lca_closed = False

    def connectionMade(self) -> None:
        d = clientFromString(self.relay.reactor, self.relay.lca).connect(
            Factory.forProtocol(lambda: _LcaSide(self))
        )
        d.addCallbacks(self._lca_connected, self._lca_failed)

    def _lca_connected(self, lca: _LcaSide) -> None:
        self.lca = lca
        pending, self.pending = self.pending, []
        for data in pending:
            lca.transport.write(data)  # type: ignore[union-attr]
        if self.closed:  # it wrote its last lines and closed before the LCA answered:
            # pass them on, then the close (ended once the LCA's end has closed too)
            lca.transport.loseConnection()  # type: ignore[union-attr]

    def _lca_failed(self, failure: Failure) -> None:
        log.info("relay of {app}: LCA unreachable: {why}", app=self.relay.name, why=failure)
        self.lca_closed = True
        self.transport.loseConnection()  # type: ignore[union-attr]
        if self.closed:
            self.relay.ended(self)

    def lca_gone(self, *, clean: bool) -> None:
        self.lca_closed = True
        if not self.closed:
            _close(self.transport, clean=clean)
        else:
            self.relay.ended(self)

    def dataReceived(self, data: bytes) -> None:
        if self.lca is None:
            self.pending.append(data)
        else:
            self.lca.transport.write(data)  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.closed = True
        if self.lca is not None and not self.lca_closed:
            # A reset is passed on as a reset, a close as a close: half a close, so that
            # the connection ends (and the relay is quiet) once the LCA has read the
            # last lines and closed its end too.
            if reason.check(ConnectionDone) is not None:
                self.lca.transport.loseWriteConnection()  # type: ignore[union-attr]
            else:
                self.lca.transport.abortConnection()  # type: ignore[union-attr]
        elif self.lca_closed:
            self.relay.ended(self)


class _RelayFactory(Factory):
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    def buildProtocol(self, addr: Any) -> Protocol:
        app_side = _AppSide(self.relay)
        self.relay.open.add(app_side)
        return app_side


class Relay:
    """Listens for ``name``'s connections and relays each to the LCA at ``lca``."""

    def __init__(self, reactor: Any, name: str, lca: str, link: AppLink) -> None:
        self.reactor = reactor
        self.name = name
        self.lca = lca
        self.link = link
        self.open: set[_AppSide] = set()
        """Connections not yet closed on both ends."""
        self._quiet: list[Deferred[None]] = []
        self.port: IListeningPort = reactor.listenTCP(
            0, link.wrap(_RelayFactory(self)), interface="127.0.0.1"
        )

    def ended(self, connection: _AppSide) -> None:
        """``connection`` has closed on both ends."""
        self.open.discard(connection)
        if not self.open:
            waiting, self._quiet = self._quiet, []
            for d in waiting:
                if not d.called:  # not timed out
                    d.callback(None)

    def quiet(self) -> Deferred[None]:
        """Fires once no connection through the relay is open on either end (at once if
        none is), or after :data:`QUIET_LIMIT` seconds."""
        d: Deferred[None] = Deferred()
        if not self.open:
            d.callback(None)
            return d
        self._quiet.append(d)

        def timed_out(result: object, timeout: float) -> None:
            log.warn(
                "relay of {app}: still {n} connection(s) open {limit:g} s after its "
                "process ended; taking it as ended",
                app=self.name,
                n=len(self.open),
                limit=timeout,
            )

        return d.addTimeout(QUIET_LIMIT, self.reactor, onTimeoutCancel=timed_out)

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
        return self.relay_for(application, lca).endpoint

    def relay_for(self, application: str, lca: str) -> Relay:
        """``application``'s relay to the LCA at ``lca``."""
        key = (application, lca)
        relay = self._relays.get(key)
        if relay is None:
            relay = Relay(self.reactor, application, lca, self.faults.link(application))
            self._relays[key] = relay
        return relay

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
        relay = self.relays.relay_for(spec.name, lca)
        return RelayedApplication(self.launcher.launch(spec, relay.endpoint), relay)


class RelayedApplication:
    """An application started through ``relay``: it has ended (``exited``, and what
    ``stop`` and ``kill`` return) once its process has and ``relay`` is quiet."""

    def __init__(self, app: RunningApplication, relay: Relay) -> None:
        self.app = app
        self.relay = relay
        self.exited = self._after_relay(app.exited)

    @property
    def pid(self) -> int | None:
        return self.app.pid

    def stop(self, grace: float, ask: Callable[[], bool]) -> Deferred[ProcessExit]:
        return self._after_relay(self.app.stop(grace, ask))

    def kill(self) -> Deferred[ProcessExit]:
        return self._after_relay(self.app.kill())

    def hang(self) -> None:
        self.app.hang()

    def _after_relay(self, ended: Deferred[ProcessExit]) -> Deferred[ProcessExit]:
        told: Deferred[ProcessExit] = Deferred()

        def quiet_then_tell(outcome: ProcessExit) -> ProcessExit:
            self.relay.quiet().addCallback(lambda _: told.callback(outcome))
            return outcome

        def failed(failure: Failure) -> None:
            told.errback(failure)

        ended.addCallbacks(quiet_then_tell, failed)
        return told
