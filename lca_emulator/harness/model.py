"""Scenarios as frozen dataclasses: what runs, for how long, what happens and what
must hold; and the ``serve --config`` file (the applications and pairs only).

Files become these in :mod:`lca_emulator.harness.loader`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_common.yamlsource import ConfigError, format_number
from lca_emulator.applications import CommandProgram
from lca_emulator.hosts import VipScripts
from lca_emulator.journal import JournalEvent
from lca_emulator.scs.server import HaPair, ScsOptions
from sipserver_stub.fixture import StubFixture

__all__ = [
    "EXPECTABLE_EVENTS",
    "HOST_ACTIONS",
    "TIMED_KINDS",
    "EventAction",
    "Expectation",
    "ExpectationKind",
    "HaPair",
    "HostConfig",
    "LinkCut",
    "ManagementConfig",
    "OutsideApplication",
    "Scenario",
    "ScenarioEvent",
    "ScsOptions",
    "VipScripts",
]


class EventAction(enum.StrEnum):
    """What a scenario event does to an application."""

    STOP = "stop"
    KILL = "kill"
    START = "start"
    RESTART = "restart"
    SET_OPTION = "set-option"
    SWITCHOVER = "switchover"
    """A manual switchover of the application's HA pair (``RequestSwitchover``)."""
    HANG = "hang"
    """The application stops answering (SIGSTOP for a process): only a heartbeat sees it."""
    HOST_DOWN = "host-down"
    """A host is gone: its LCA and every application on it vanish at once."""
    HOST_UP = "host-up"
    """A host is back: its LCA starts, and so do its applications marked ``autostart``."""
    CUT_LCA_LINK = "cut-lca-link"
    """The SCS loses its link to a host's LCA ``for`` seconds; the host runs on."""
    CUT_LINK = "cut-link"
    """An application's own connection to its LCA fails (``how``), for ``for`` seconds."""
    DELAY_LINK = "delay-link"
    """``ms`` of latency each way on an application's connection to its LCA."""


HOST_ACTIONS: Final = frozenset(
    {EventAction.HOST_DOWN, EventAction.HOST_UP, EventAction.CUT_LCA_LINK}
)
"""The events whose subject is a host rather than an application."""


class LinkCut(enum.StrEnum):
    """How an application's connection to its LCA fails (``cut-link``)."""

    CLOSE = "close"
    """Closed cleanly at both ends (a FIN)."""
    RESET = "reset"
    """Reset (an RST): both ends see it at once, nothing in flight arrives."""
    STALL = "stall"
    """Open, but nothing moves either way; what was sent arrives once the stall ends."""


@dataclass(frozen=True)
class ScenarioEvent:
    """An action at ``at`` seconds on ``application`` (on a host, named in
    ``application``, for the :data:`HOST_ACTIONS`); ``set-option`` also carries section,
    option and value; ``stop`` may be ``graceful`` (``EventSuspendApplication``); the
    link faults carry ``seconds`` (``for``; None: until further notice), ``how``
    (``cut-link``) and ``latency_ms`` (``delay-link``)."""

    at: float
    action: EventAction
    application: str
    section: str | None = None
    option: str | None = None
    value: str | None = None
    line: int = 0
    graceful: bool = False
    seconds: float | None = None
    how: LinkCut | None = None
    latency_ms: float | None = None

    @property
    def on_host(self) -> bool:
        """Whether ``application`` names a host."""
        return self.action in HOST_ACTIONS


class ExpectationKind(enum.StrEnum):
    """When an expectation is checked."""

    WITHIN = "within"
    """First seen by then (no lower bound)."""
    AT = "at"
    """Seen (entered, or the event happened) at that time; earlier times are not ruled out."""
    FIRST_AT = "first-at"
    """First seen exactly then: nothing earlier."""
    BETWEEN = "between"
    """First seen no earlier than the first time and no later than the second."""
    AFTER = "after"
    """Seen, and first seen no earlier than that time."""
    NEVER = "never"
    AT_END = "at-end"


TIMED_KINDS: Final = frozenset(
    {
        ExpectationKind.WITHIN,
        ExpectationKind.AT,
        ExpectationKind.FIRST_AT,
        ExpectationKind.BETWEEN,
        ExpectationKind.AFTER,
    }
)
"""The expectation kinds that carry a time."""


@dataclass(frozen=True)
class Expectation:
    """Something the run must show about one application's status, mode or journal.

    Exactly one of ``status``, ``mode`` and ``event`` (a journal event such as
    ``switchover-refused``) is set; ``time`` is set for the timed kinds only, and
    ``until`` (the upper bound) for ``between`` only.  ``text`` is a short rendering
    for reports (filled in when empty).
    """

    application: str
    kind: ExpectationKind
    status: ApplicationStatus | None = None
    mode: ExecutionMode | None = None
    time: float | None = None
    line: int = 0
    text: str = ""
    event: JournalEvent | None = None
    until: float | None = None
    miss: bool = False
    """This expectation must not hold (a check of the judge itself: a judge that lets
    everything pass fails the scenario)."""

    def __post_init__(self) -> None:
        if [self.status, self.mode, self.event].count(None) != 2:
            raise ValueError("an expectation has exactly one of status, mode and event")
        if self.event is not None and self.kind is ExpectationKind.AT_END:
            raise ValueError("a journal event cannot be expected at-end")
        timed = self.kind in TIMED_KINDS
        if timed != (self.time is not None):
            raise ValueError(f"time is required for timed kinds and only for them: {self}")
        if (self.kind is ExpectationKind.BETWEEN) != (self.until is not None):
            raise ValueError(f"until is required for between and only for it: {self}")
        if self.until is not None and self.time is not None and self.until < self.time:
            raise ValueError(f"between needs its first time first: {self}")
        if not self.text:
            text = self._render()
            object.__setattr__(self, "text", f"{text} (must miss)" if self.miss else text)

    def _render(self) -> str:
        if self.kind is ExpectationKind.NEVER:
            if self.event is not None:
                return f"{self.application} never {self.event}"
            if self.status is not None:
                return f"{self.application} never {self.status}"
            word = "mode UNKNOWN" if self.mode is ExecutionMode.UNKNOWN else str(self.mode)
            return f"{self.application} never {word}"
        subject = f"status {self.status}" if self.status is not None else f"mode {self.mode}"
        if self.event is not None:
            subject = f"event {self.event}"
        if self.kind is ExpectationKind.AT_END:
            return f"{self.application} {subject} at end"
        assert self.time is not None
        when = format_number(self.time)
        if self.kind is ExpectationKind.WITHIN:
            return f"{self.application} {subject} within {when}s"
        if self.kind is ExpectationKind.FIRST_AT:
            return f"{self.application} {subject} first at t={when}"
        if self.kind is ExpectationKind.BETWEEN:
            assert self.until is not None
            return f"{self.application} {subject} first at t={when}..{format_number(self.until)}"
        if self.kind is ExpectationKind.AFTER:
            return f"{self.application} {subject} first at t>={when}"
        return f"{self.application} {subject} at t={when}"


WALL_CLOCK_REASONS: Final = {
    "command": "command needs --real-time: a program runs on the wall clock",
    "external": "external needs --real-time: an outside program runs on the wall clock",
}
"""Why a file with outside applications cannot run in virtual time, by key."""


@dataclass(frozen=True)
class OutsideApplication:
    """An application that is not a stub: a ``command`` the LCA runs, or an ``external``
    program (``command`` None) that the LCA never starts and only waits for.

    ``file``, ``line`` and ``key`` say where its ``command`` or ``external`` key is.
    """

    application: str
    host: str | None = None
    command: CommandProgram | None = None
    file: str = ""
    line: int = 0
    key: str = ""

    @property
    def external(self) -> bool:
        """Not started by the LCA: it registers by itself."""
        return self.command is None

    def wall_clock_error(self) -> ConfigError:
        """Why it cannot run in virtual time, at its key."""
        reason = WALL_CLOCK_REASONS["external" if self.external else "command"]
        return ConfigError(self.file, self.line or None, self.key, reason)


@dataclass(frozen=True)
class HostConfig:
    """A host of the ``hosts:`` list; ``lca`` (``serve`` only) is a server endpoint
    string for its LCA; ``vip_scripts``, its IP Address Takeover scripts (wall clock
    only), are at ``file``, ``line``, ``key``."""

    name: str
    lca: str | None = None
    vip_scripts: VipScripts = field(default_factory=VipScripts)
    file: str = ""
    line: int = 0
    key: str = ""

    def wall_clock_error(self) -> ConfigError | None:
        """Why it cannot be part of a virtual-time run: it has scripts to run."""
        if self.vip_scripts == VipScripts():
            return None
        reason = "vip-scripts needs --real-time: a script runs on the wall clock"
        return ConfigError(self.file, self.line or None, self.key, reason)


@dataclass(frozen=True)
class Scenario:
    """A validated scenario file: what runs, for how long, what happens and what must hold.

    ``events`` are sorted by time (ties keep file order).
    """

    name: str
    path: str
    duration: float
    applications: tuple[StubFixture, ...]
    ha_pairs: tuple[HaPair, ...] = ()
    events: tuple[ScenarioEvent, ...] = ()
    expectations: tuple[Expectation, ...] = ()
    heartbeat: float | None = None
    """The LCA's heartbeat period (our extension): an application silent longer is hung."""
    scs: ScsOptions = field(default_factory=ScsOptions)
    """The SCS's options (``scs:``)."""
    outside: tuple[OutsideApplication, ...] = ()
    """Applications that are not stubs (``command`` or ``external``): wall clock only."""
    hosts: tuple[HostConfig, ...] = ()
    """Every host, each with an LCA: those of ``hosts:``, then those only applications name."""

    def wall_clock_error(self) -> ConfigError | None:
        """Why this scenario cannot run in virtual time (its first outside application, or
        its first host with scripts)."""
        if self.outside:
            return self.outside[0].wall_clock_error()
        problems = [e for host in self.hosts if (e := host.wall_clock_error()) is not None]
        return problems[0] if problems else None


@dataclass(frozen=True)
class ManagementConfig:
    """The ``serve --config`` file: the applications the emulator starts and the HA pairs."""

    applications: tuple[StubFixture, ...]
    ha_pairs: tuple[HaPair, ...]
    path: str
    scs: ScsOptions = field(default_factory=ScsOptions)
    outside: tuple[OutsideApplication, ...] = ()
    hosts: tuple[HostConfig, ...] = ()


MAX_VIRTUAL_STEPS: Final = 1_000_000
"""The most moments a run in virtual time steps through (each a time when something is
due, a heartbeat most often): a few seconds to a minute of work.  A scenario that would
take more is refused when it is loaded, and a run that gets there stops."""


EXPECTABLE_EVENTS: Final = (
    JournalEvent.REGISTERED,
    JournalEvent.DISCONNECTED,
    JournalEvent.EXITED,
    JournalEvent.KILLED,
    JournalEvent.START_FAILED,
    JournalEvent.HUNG,
    JournalEvent.RECOVERED,
    JournalEvent.SWITCHOVER,
    JournalEvent.SWITCHOVER_REFUSED,
    JournalEvent.RESTARTED,
    JournalEvent.SUSPENDED,
    JournalEvent.SPLIT_BRAIN,
    JournalEvent.VIP_DISABLED,
    JournalEvent.VIP_ENABLED,
    JournalEvent.HOST_DOWN,
    JournalEvent.HOST_UP,
    JournalEvent.LCA_LINK_LOST,
    JournalEvent.LCA_LINK_RESTORED,
    JournalEvent.NO_BRAIN,
    JournalEvent.FLAPPING,
)
"""The journal events an expectation may name (``event:`` or ``never:``)."""
