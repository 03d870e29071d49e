"""The SCS's link to the LCA of each host.

The vendor's Management Layer runs one LCA per host; SCS keeps a connection to each
and treats losing it as losing every application on that host: it switches them over
(vendor: *Management Layer User's Guide*, "Faults"), unless ``[general]
disconnect-switchover-timeout`` tells it to wait and check again ("Avoiding
switchovers").  Behind a lost link the LCA goes on watching its applications; SCS
learns what became of them only when the link is back.

So an :class:`LcaLink` is where a host's LCA and the process control write their
application records.  While the link is up that is the registry itself (the SCS's
view, journaled and announced).  While it is lost the LCA's records are kept in the
link, unseen; when the link is back each application's record as the LCA knows it
then is written to the registry at once, journaled ``lca-link-restored`` (or
``host-up``), and the SCS decides on it as on any other change.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_emulator.journal import JournalEvent
from lca_emulator.registry import ApplicationRecord, ApplicationRegistry, RecordFields

if TYPE_CHECKING:
    from typing_extensions import Unpack

log = Logger()


class LinkState(enum.StrEnum):
    """Where a link to an LCA stands."""

    UP = "up"
    LOST = "lost"
    """Cut: the LCA and its applications run on, unreachable."""
    HOST_DOWN = "host-down"
    """The whole host is gone, its LCA and applications with it."""


_LOST_FIELDS: Final[RecordFields] = {
    "status": ApplicationStatus.UNKNOWN,
    "connected": False,
    "registered": False,
    "hung": False,
}
"""What the SCS knows of an application it can no longer reach."""

_REBOOTED_FIELDS: Final[RecordFields] = {
    "status": ApplicationStatus.STOPPED,
    "reported_status": ApplicationStatus.STOPPED,
    "mode": ExecutionMode.UNKNOWN,
    "pid": None,
    "connected": False,
    "registered": False,
    "hung": False,
}
"""What a host's new LCA knows of an application after the host came back up."""


def _running(record: ApplicationRecord) -> bool:
    """Whether the SCS believes ``record``'s application runs (or is starting)."""
    return record.connected or record.registered or record.status is ApplicationStatus.START_PENDING


def _is_running(record: ApplicationRecord | None) -> bool:
    return record is not None and _running(record)


def _fields_of(record: ApplicationRecord) -> RecordFields:
    """Everything the LCA knows of an application, as fields to write."""
    return {
        "status": record.status,
        "mode": record.mode,
        "host": record.host,
        "pid": record.pid,
        "connected": record.connected,
        "registered": record.registered,
        "hung": record.hung,
        "reported_status": record.reported_status,
    }


class LcaLink:
    """The SCS's link to the LCA of ``host`` (``None``: the default LCA).

    :param disconnect_switchover_timeout: seconds the SCS waits after losing the link
        before it counts the host's applications as lost (vendor ``[general]`` option;
        0: at once).
    """

    def __init__(
        self,
        host: str | None,
        registry: ApplicationRegistry,
        *,
        disconnect_switchover_timeout: float = 0.0,
    ) -> None:
        self.host = host
        self.registry = registry
        self.disconnect_switchover_timeout = disconnect_switchover_timeout
        self.state = LinkState.UP
        self._members: dict[str, None] = {}
        """The applications of this host, in the order they became known (a set)."""
        self._own: dict[str, ApplicationRecord] = {}
        """The LCA's records while the link is lost."""
        self._wait: IDelayedCall | None = None
        self._generation = 0
        self.when_restored: Callable[[], None] | None = None
        """Called each time the link is back (the SCS starts ``autostart`` applications)."""

    @property
    def clock(self) -> IReactorTime:
        return self.registry.clock

    @property
    def up(self) -> bool:
        """Whether the SCS can reach this LCA."""
        return self.state is LinkState.UP

    @property
    def label(self) -> str:
        """The host's name for messages (``-``: the default LCA)."""
        return self.host if self.host is not None else "-"

    def members(self) -> list[str]:
        """The applications on this host."""
        return list(self._members)

    def adopt(self, name: str) -> None:
        """``name`` runs on this host (a configured application)."""
        self._members.setdefault(name, None)

    # -- Records -------------------------------------------------------------------

    def get(self, name: str) -> ApplicationRecord | None:
        """The LCA's record of ``name``."""
        if self.state is LinkState.UP:  # not self.up: this runs for every report
            return self.registry.get(name)
        own = self._own.get(name)
        return own if own is not None else self.registry.get(name)

    def note(
        self,
        name: str,
        event: JournalEvent,
        detail: str = "",
        *,
        log_id: int | None = None,
        **fields: Unpack[RecordFields],
    ) -> ApplicationRecord:
        """Write ``name``'s record: to the registry while the link is up; kept here, unseen
        by the SCS, while it is lost."""
        self._members.setdefault(name, None)
        if self.state is LinkState.UP:
            return self.registry.note(name, event, detail, log_id=log_id, **fields)
        before = self.get(name) or ApplicationRecord(name=name, since=self.registry.now())
        after = before.updated(self.registry.now(), fields)
        self._own[name] = after
        log.debug(
            "{app} on lost host {host}: {event} {detail}",
            app=name,
            host=self.label,
            event=event.value,
            detail=detail,
        )
        return after

    # -- faults ----------------------------------------------------------------------

    def lose(self, event: JournalEvent, detail: str) -> bool:
        """The link is lost (``lca-link-lost``) or the host went down (``host-down``).

        Every application on the host is journaled with ``event``; with a
        ``disconnect-switchover-timeout`` the SCS counts them as lost only once that
        time has passed without the link coming back, except one that last reported
        SERVICE_UNAVAILABLE, lost at once: the timeout "has no effect on a switchover
        resulting from service unavailability at the primary server" (vendor:
        *Management Layer User's Guide*, "Avoiding switchovers").  False if it was lost
        already (a host that goes down behind a lost link changes nothing the SCS can
        see).
        """
        if not self.up:
            if event is JournalEvent.HOST_DOWN:
                self.state = LinkState.HOST_DOWN
            return False
        self.state = LinkState.HOST_DOWN if event is JournalEvent.HOST_DOWN else LinkState.LOST
        self._generation += 1
        known = [(name, self.registry.get(name)) for name in self._members]
        self._own = {name: record for name, record in known if record is not None}
        wait = self.disconnect_switchover_timeout
        lost: dict[str, RecordFields] = {}
        waiting: list[str] = []
        for name, record in self._own.items():
            if not _running(record):
                lost[name] = {}
            elif wait > 0 and record.status is not ApplicationStatus.SERVICE_UNAVAILABLE:
                waiting.append(name)
            else:
                lost[name] = _LOST_FIELDS
        if lost:
            self.registry.note_together(event, detail, lost)
        if waiting:
            note = f"{detail}; SCS waits {wait:g} s (disconnect-switchover-timeout)"
            self.registry.note_together(event, note, {name: {} for name in waiting})
            self._wait = self.clock.callLater(wait, self._still_lost, detail)
        return True

    def _still_lost(self, detail: str) -> None:
        """``disconnect-switchover-timeout`` passed and the link is still lost."""
        self._wait = None
        running = [name for name in self._members if _is_running(self.registry.get(name))]
        self.registry.note_together(
            JournalEvent.DISCONNECTED,
            f"{detail}; still lost after {self.disconnect_switchover_timeout:g} s "
            "(disconnect-switchover-timeout)",
            {name: _LOST_FIELDS for name in running},
        )

    def restore(self, event: JournalEvent, detail: str) -> bool:
        """The link is back (``lca-link-restored``), or the host is (``host-up``: its new
        LCA knows every application as stopped).  Each application's record becomes what
        the LCA knows now, journaled with ``event``.  False if there was nothing to
        restore (up already; or a cut ending on a host that is down)."""
        rebooted = event is JournalEvent.HOST_UP
        if self.up or (self.state is LinkState.HOST_DOWN) != rebooted:
            return False
        if self._wait is not None and self._wait.active():
            self._wait.cancel()
        self._wait = None
        self.state = LinkState.UP
        own, self._own = self._own, {}
        if rebooted:
            changes = {name: _REBOOTED_FIELDS for name in self._members}
        else:
            changes = {name: _fields_of(own[name]) for name in self._members if name in own}
        self.registry.note_together(event, detail, changes)
        if self.when_restored is not None:
            self.when_restored()
        return True

    def restore_later(self, seconds: float, detail: str) -> None:
        """Restore the link after ``seconds``, unless it was restored (and perhaps lost
        again) meanwhile."""
        generation = self._generation
        self.clock.callLater(seconds, self._restore_if, generation, detail)

    def _restore_if(self, generation: int, detail: str) -> None:
        if generation == self._generation:
            self.restore(JournalEvent.LCA_LINK_RESTORED, detail)
