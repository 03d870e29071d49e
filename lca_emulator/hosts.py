"""Hosts: one LCA on each, reached by the SCS through its link.

As in the vendor's Management Layer, every host runs its own LCA beside the
applications it watches, "so that an application failure is never confused with a
connection failure" (vendor: *Management Layer User's Guide*, "Faults"; *System
Deployment Guide*, application redundancy).  An application configured with a
``host`` belongs to that host's LCA; applications without one share the default LCA
(host ``None``).  An application that registers by itself belongs to the LCA it
connected to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from lca_common.protocol.framing import ConnectionLimits
from lca_common.protocol.messages import ExecutionMode
from lca_emulator.applications import CommandProgram
from lca_emulator.lca.agent import REGISTER_TIMEOUT, LocalControlAgent
from lca_emulator.lca.processes import ProcessExit
from lca_emulator.registry import ApplicationRegistry
from lca_emulator.scs.links import LcaLink


@dataclass(frozen=True)
class VipScripts:
    """A host's IP Address Takeover scripts, run by its LCA in a switchover: ``disable``
    takes the virtual IP down on the old primary's host, ``enable`` brings it up on the
    new one's (vendor: *SIP Server HA Deployment Guide*, IP Address Takeover)."""

    enable: CommandProgram | None = None
    disable: CommandProgram | None = None


class ScriptRunner(Protocol):
    """Runs a host's script (only on the wall clock: a script is a process)."""

    def run(self, host: str | None, program: CommandProgram) -> Deferred[ProcessExit]:
        """Run ``program`` on ``host``; fires with how it ended (fails if it cannot run)."""


@dataclass(frozen=True)
class Host:
    """A host: its LCA, the SCS's link to it, and its VIP scripts."""

    name: str | None
    lca: LocalControlAgent
    link: LcaLink
    vip: VipScripts = field(default_factory=VipScripts)

    @property
    def label(self) -> str:
        """Its name for messages (``-``: the default LCA's)."""
        return self.link.label


class Hosts:
    """Every host's LCA, and which application is on which host.

    :param names: the hosts besides the default one (``None``), in order.
    :param vip_scripts: each host's VIP scripts, run with ``scripts``.
    The other parameters are each LCA's (see :class:`LocalControlAgent`) and each
    link's (see :class:`LcaLink`).
    """

    def __init__(
        self,
        clock: IReactorTime,
        registry: ApplicationRegistry,
        names: Iterable[str] = (),
        *,
        heartbeat: float | None = None,
        register_timeout: float | None = REGISTER_TIMEOUT,
        limits: ConnectionLimits | None = None,
        disconnect_switchover_timeout: float = 0.0,
        vip_scripts: Mapping[str, VipScripts] | None = None,
        scripts: ScriptRunner | None = None,
    ) -> None:
        self.scripts = scripts
        """What runs the hosts' VIP scripts (``None``: they are only journaled)."""
        vip_scripts = vip_scripts or {}
        self._hosts: dict[str | None, Host] = {}
        self._placed: dict[str, str | None] = {}
        for name in (None, *names):
            if name in self._hosts:
                continue
            link = LcaLink(
                name, registry, disconnect_switchover_timeout=disconnect_switchover_timeout
            )
            lca = LocalControlAgent(
                clock,
                link,
                host=name,
                heartbeat=heartbeat,
                register_timeout=register_timeout,
                limits=limits,
            )
            vip = vip_scripts.get(name, VipScripts()) if name is not None else VipScripts()
            self._hosts[name] = Host(name, lca, link, vip)

    def __iter__(self) -> Iterator[Host]:
        return iter(self._hosts.values())

    def __contains__(self, name: object) -> bool:
        return name in self._hosts

    @property
    def default(self) -> Host:
        """The default LCA's host (``name`` None)."""
        return self._hosts[None]

    def named(self, name: str | None) -> Host:
        """The host called ``name``; ``KeyError`` if there is none."""
        return self._hosts[name]

    def place(self, application: str, host: str | None) -> None:
        """``application`` is configured on ``host`` (which must be known)."""
        self._placed[application] = host
        self._hosts[host].link.adopt(application)

    def of(self, application: str) -> Host:
        """The host ``application`` runs on: the one whose LCA it is registered with
        (normally its configured host's); else its configured one; else the one it was
        last seen on; else the default."""
        placed = self._hosts[self._placed[application]] if application in self._placed else None
        if placed is not None and placed.lca.connected(application):
            return placed
        for host in self._hosts.values():
            if host.lca.connected(application):
                return host
        if placed is not None:
            return placed
        for host in self._hosts.values():
            if application in host.link.members():
                return host
        return self.default

    # -- what the SCS and the process control reach through the links -------------

    def change_mode(self, application: str, mode: ExecutionMode) -> bool:
        """Send ``EventChangeExecutionMode`` through its host's LCA; False when the
        application is not connected or the SCS cannot reach that LCA."""
        host = self.of(application)
        return host.link.up and host.lca.change_mode(application, mode)

    def suspend(self, application: str) -> bool:
        """Send ``EventSuspendApplication`` through its host's LCA; False as above."""
        host = self.of(application)
        return host.link.up and host.lca.suspend(application)
