"""The emulated Management Layer as one object: LCA, SCS, process control, listeners."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IListeningPort, IReactorTime, IStreamServerEndpoint

from lca_common.configuration import parse_boolean
from lca_common.protocol.framing import DEFAULT_MAX_CONNECTIONS, ConnectionLimits
from lca_common.protocol.limits import (
    MAX_HOST_BYTES,
    MAX_NAME_BYTES,
    MAX_SERVICE_BYTES,
    length_problem,
)
from lca_common.protocol.messages import ErrorCode
from lca_emulator.applications import ApplicationSpec
from lca_emulator.hosts import Host, Hosts, ScriptRunner, VipScripts
from lca_emulator.journal import JournalEvent, StatusJournal
from lca_emulator.lca.agent import REGISTER_TIMEOUT
from lca_emulator.lca.control import (
    DEFAULT_GRACE,
    ApplicationControl,
    ApplicationLauncher,
    ControlError,
)
from lca_emulator.registry import FORGET_DEPARTED_AFTER, ApplicationRegistry
from lca_emulator.scs.management import ManagementEndpoint
from lca_emulator.scs.server import HaPair, ScsOptions, SolutionControlServer


@dataclass(frozen=True)
class ListeningAddresses:
    """Where the endpoints ended up listening: the default LCA, the SCS, and the LCA
    of each host."""

    lca: IListeningPort
    scs: IListeningPort
    hosts: Mapping[str, IListeningPort] = field(default_factory=dict)

    @staticmethod
    def describe(port: IListeningPort) -> str:
        """``HOST:PORT`` of a listening port (the path of a UNIX socket)."""
        address = port.getHost()
        if isinstance(address, UNIXAddress):
            return (
                str(address.name, "utf-8") if isinstance(address.name, bytes) else str(address.name)
            )
        return f"{address.host}:{address.port}"  # type: ignore[attr-defined]

    @staticmethod
    def client_endpoint(port: IListeningPort) -> str:
        """A client endpoint string that reaches ``port`` from this host."""
        address = port.getHost()
        if isinstance(address, UNIXAddress):
            return f"unix:path={ListeningAddresses.describe(port)}"
        if isinstance(address, IPv6Address):
            host = "::1" if address.host in ("::", "") else address.host
            return "tcp:host=" + host.replace(":", "\\:") + f":port={address.port}"
        assert isinstance(address, IPv4Address)
        host = "127.0.0.1" if address.host in ("0.0.0.0", "") else address.host
        return f"tcp:{host}:{address.port}"


def configuration_problems(
    applications: Iterable[ApplicationSpec], pairs: Iterable[HaPair]
) -> list[str]:
    """What in a configuration is over the limits of ``docs/protocol.md`` (section 7),
    one line each: a name the LCA would refuse to register, or too long to announce."""
    problems = []
    for spec in applications:
        problems.append(length_problem("application", spec.name, MAX_NAME_BYTES))
        if spec.host is not None:
            problems.append(length_problem("host", spec.host, MAX_HOST_BYTES))
    for pair in pairs:
        problems.append(length_problem("name", pair.name, MAX_SERVICE_BYTES))
    return [f"{problem} (docs/protocol.md, section 7)" for problem in problems if problem]


class ManagementLayer:
    """LCA + SCS wired together around one registry and one injected clock.

    :param applications: the configured applications (started and stopped by it).
    :param pairs: the HA pairs the SCS decides for.
    :param hosts: hosts besides those the applications name (each host has an LCA).
    :param launcher: what starts applications; ``None`` starts nothing.  It is told
        where the LCA listens with each start.
    :param heartbeat: the LCA's heartbeat period (at least 0.1 s), or ``None``.
    :param journal: where transitions are journaled; by default a journal that keeps
        every entry (scenario runs judge the whole of it).
    :param max_connections: connections each endpoint keeps open at once.
    :param register_timeout: seconds a new LCA connection has to register.
    :param vip_scripts: each host's IP Address Takeover scripts, run by ``scripts``
        (``None``: a switchover only journals ``vip-disabled`` and ``vip-enabled``).
    :param forget_departed_after: seconds after which an application that registered
        by itself, and is in no HA pair, is forgotten once its connection closed.

    The limits are described in ``docs/protocol.md``, section 7.
    """

    def __init__(
        self,
        clock: IReactorTime,
        *,
        applications: Iterable[ApplicationSpec] = (),
        pairs: Iterable[HaPair] = (),
        hosts: Iterable[str] = (),
        launcher: ApplicationLauncher | None = None,
        heartbeat: float | None = None,
        grace: float = DEFAULT_GRACE,
        scs_options: ScsOptions | None = None,
        journal: StatusJournal | None = None,
        max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
        register_timeout: float | None = REGISTER_TIMEOUT,
        forget_departed_after: float | None = FORGET_DEPARTED_AFTER,
        vip_scripts: Mapping[str, VipScripts] | None = None,
        scripts: ScriptRunner | None = None,
    ) -> None:
        self.clock = clock
        pairs = tuple(pairs)
        applications = tuple(applications)
        scs_options = scs_options if scs_options is not None else ScsOptions()
        limits = ConnectionLimits(max_connections=max_connections)
        self.journal = journal if journal is not None else StatusJournal()
        self.registry = ApplicationRegistry(
            clock, self.journal, forget_departed_after=forget_departed_after
        )
        for pair in pairs:
            self.registry.keep(pair.primary)
            self.registry.keep(pair.backup)
        host_names = [*hosts, *(spec.host for spec in applications if spec.host is not None)]
        self.hosts = Hosts(
            clock,
            self.registry,
            host_names,
            heartbeat=heartbeat,
            register_timeout=register_timeout,
            limits=limits,
            disconnect_switchover_timeout=scs_options.disconnect_switchover_timeout,
            vip_scripts=vip_scripts,
            scripts=scripts,
        )
        self.lca = self.hosts.default.lca
        """The default LCA: applications configured without a host."""
        self.scs = SolutionControlServer(self.registry, self.hosts, pairs, scs_options)
        self.control = ApplicationControl(
            self.registry, self.hosts, launcher, applications, grace=grace
        )
        for spec in self.control.applications.values():
            vip = spec.options.get("TServer", {}).get("control-vip-scripts", "")
            if parse_boolean(vip):
                self.scs.uses_ip_takeover(spec.name)
        for host in self.hosts:  # SCS starts what the LCA does not report started
            host.link.when_restored = lambda host=host: self.control.autostart(host)
        self.management = ManagementEndpoint(self.registry, self.scs, self.control, limits=limits)
        self._ports: list[IListeningPort] = []

    async def listen(
        self,
        lca: IStreamServerEndpoint,
        scs: IStreamServerEndpoint,
        hosts: Mapping[str, IStreamServerEndpoint] | None = None,
    ) -> ListeningAddresses:
        """Listen for applications on ``lca`` (the default LCA), for management clients on
        ``scs``, and for each host's applications on its endpoint in ``hosts``.

        :raises ValueError: a host has no endpoint.
        """
        endpoints = dict(hosts or {})
        missing = [h.label for h in self.hosts if h.name is not None and h.name not in endpoints]
        if missing:
            raise ValueError(f"no endpoint for the LCA of host {', '.join(missing)}")
        lca_port = await self._listen_for(self.hosts.default, lca)
        host_ports = {}
        for host in self.hosts:
            if host.name is not None:
                host_ports[host.name] = await self._listen_for(host, endpoints[host.name])
        scs_port = await scs.listen(self.management.factory())
        self._ports.append(scs_port)
        return ListeningAddresses(lca_port, scs_port, host_ports)

    async def _listen_for(self, host: Host, endpoint: IStreamServerEndpoint) -> IListeningPort:
        port = await endpoint.listen(host.lca.factory())
        self._ports.append(port)
        host.lca.endpoint = ListeningAddresses.client_endpoint(port)
        return port

    # -- host faults (scenario events; RequestEvent) ------------------------------------

    def _host(self, name: str) -> Host:
        if name not in self.hosts:
            raise ControlError(ErrorCode.HOST_UNREACHABLE, f"no host named {name!r}")
        return self.hosts.named(name)

    def host_down(self, name: str) -> None:
        """Host ``name`` is gone: the SCS loses its link to the host's LCA, and the LCA and
        every application on the host vanish at once.

        :raises ControlError: no such host, or it is down already.
        """
        host = self._host(name)
        if host.lca.down:
            raise ControlError(ErrorCode.HOST_UNREACHABLE, f"host {name} is down already")
        host.link.lose(JournalEvent.HOST_DOWN, f"host {name} went down")
        host.lca.crash()
        self.control.host_down(host)

    def host_up(self, name: str) -> None:
        """Host ``name`` is back: a new LCA, which knows every application there as
        stopped, and the SCS's link to it; applications with ``[sml] autostart`` start.

        :raises ControlError: no such host, or it is not down.
        """
        host = self._host(name)
        if not host.lca.down:
            raise ControlError(ErrorCode.HOST_UNREACHABLE, f"host {name} is not down")
        host.lca.revive()
        host.link.restore(JournalEvent.HOST_UP, f"host {name} is up again")

    def cut_lca_link(self, name: str, seconds: float | None) -> None:
        """The SCS loses its link to the LCA of host ``name`` (for ``seconds``; ``None``:
        until restored).  The LCA and its applications run on.

        :raises ControlError: no such host, it is down, or the link is lost already.
        """
        host = self._host(name)
        if host.lca.down:
            raise ControlError(ErrorCode.HOST_UNREACHABLE, f"host {name} is down")
        if not host.link.up:
            raise ControlError(
                ErrorCode.HOST_UNREACHABLE, f"the link to the LCA of host {name} is lost already"
            )
        host.link.lose(JournalEvent.LCA_LINK_LOST, f"SCS lost its link to the LCA of host {name}")
        if seconds is not None:
            host.link.restore_later(seconds, f"SCS has its link to the LCA of host {name} again")

    def start_all(self) -> list[str]:
        """Start every configured application; returns the errors, one line each."""
        errors = []
        for name in self.control.applications:
            try:
                self.control.start(name)
            except ControlError as e:
                errors.append(e.text)
        return errors

    def shutdown(self) -> Deferred[object]:
        """Stop every application (the SCS no longer fails over), then stop listening."""
        self.scs.suspend()
        d: Deferred[object] = self.control.stop_all()  # type: ignore[assignment]
        return d.addBoth(self._close_ports)

    def abort(self) -> Deferred[object]:
        """Kill every application at once (the SCS no longer fails over), then stop
        listening: the end of a run whose journal has been taken, where a graceful stop
        of each application would be work nobody reads."""
        self.scs.suspend()
        d: Deferred[object] = self.control.kill_all()  # type: ignore[assignment]
        return d.addBoth(self._close_ports)

    def _close_ports(self, _: object) -> Deferred[object]:
        ports, self._ports = self._ports, []
        return DeferredList(  # type: ignore[return-value]
            [d for p in ports if (d := p.stopListening()) is not None]
        )
