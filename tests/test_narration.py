"""serve's human log: one line per change worth telling, none for bookkeeping."""

from __future__ import annotations

import pytest

from lca_common.protocol.messages import ApplicationStatus as S
from lca_common.protocol.messages import ExecutionMode as M
from lca_emulator.journal import JournalEvent as E
from lca_emulator.narration import narrate
from lca_emulator.registry import ApplicationRecord, RecordChange

BEFORE = ApplicationRecord("SIPS_B", S.INITIALIZING, M.BACKUP)
RUNNING = ApplicationRecord("SIPS_B", S.RUNNING, M.BACKUP)


@pytest.mark.parametrize(
    ("after", "event", "detail", "line"),
    [
        (
            ApplicationRecord("SIPS_B", S.RUNNING, M.BACKUP),
            E.STATUS,
            "",
            "SIPS_B: RUNNING (BACKUP)",
        ),
        (BEFORE, E.REGISTERED, "host=host-b pid=7", "SIPS_B registered: host=host-b pid=7"),
        (BEFORE, E.HUNG, "silent for 6 s", "SIPS_B is hung: silent for 6 s"),
        (BEFORE, E.SWITCHOVER, "A/B: A -> B", "SIPS_B takes over: A/B: A -> B"),
        (BEFORE, E.SWITCHOVER_REFUSED, "why", "SIPS_B was not promoted: why"),
        (
            BEFORE,
            E.RESTARTED,
            "reason=hangup",
            "SIPS_B is being restarted by its LCA: reason=hangup",
        ),
        (BEFORE, E.MODE_REQUESTED, "PRIMARY (R4)", None),
        (BEFORE, E.STATUS, "", None),
    ],
)
def test_narrate(after: ApplicationRecord, event: E, detail: str, line: str | None) -> None:
    """Changes people care about get a line; requests and non-changes do not."""
    assert narrate(RecordChange(BEFORE, after, event, detail)) == line
