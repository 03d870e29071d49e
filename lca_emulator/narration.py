"""One human line per thing that happened, for people watching ``serve``."""

from __future__ import annotations

from lca_emulator.journal import JournalEvent
from lca_emulator.registry import RecordChange

_TOLD = {
    JournalEvent.REGISTERED: "registered",
    JournalEvent.HUNG: "is hung",
    JournalEvent.RECOVERED: "answers again",
    JournalEvent.DISCONNECTED: "disconnected",
    JournalEvent.EXITED: "exited",
    JournalEvent.RESTARTED: "is being restarted by its LCA",
    JournalEvent.SUSPENDED: "suspended",
    JournalEvent.SWITCHOVER: "takes over",
    JournalEvent.SWITCHOVER_REFUSED: "was not promoted",
    JournalEvent.SPLIT_BRAIN: "split brain",
    JournalEvent.KILLED: "killed",
    JournalEvent.START_FAILED: "could not be started",
    JournalEvent.HOST_DOWN: "is lost with its host",
    JournalEvent.HOST_UP: "is on a host that is up again",
    JournalEvent.LCA_LINK_LOST: "is behind a lost LCA link",
    JournalEvent.LCA_LINK_RESTORED: "is reachable again",
    JournalEvent.NO_BRAIN: "no brain",
    JournalEvent.FLAPPING: "flapping",
    JournalEvent.VIP_DISABLED: "VIP disabled",
    JournalEvent.VIP_ENABLED: "VIP enabled",
}


def narrate(change: RecordChange) -> str | None:
    """The line for ``change``, or None when it is not worth a line (bookkeeping)."""
    after, event = change.after, change.event
    name = after.name
    if event in (JournalEvent.STATUS, JournalEvent.MODE):
        if not change.shown_state_changed:
            return None
        return f"{name}: {after.status.value} ({after.mode.value})"
    told = _TOLD.get(event)
    if told is None:
        return None
    detail = change.detail
    return f"{name} {told}" + (f": {detail}" if detail else "")
