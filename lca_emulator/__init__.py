"""An emulated Genesys Management Layer (LCA + SCS) and a scenario harness around it.

The public names are here; everything else is internal and may change.  They are
imported on first use, so that importing a submodule (or ``lca_emulator.testing``,
or the pytest plugin) does not load the whole emulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
    from lca_emulator.applications import ApplicationSpec
    from lca_emulator.journal import JournalEntry, JournalEvent, StatusJournal
    from lca_emulator.layer import ManagementLayer
    from lca_emulator.registry import ApplicationRecord, RecordChange
    from lca_emulator.scs.ha import HaPairMachine, PairState
    from lca_emulator.scs.server import HaPair

_WHERE = {
    "ApplicationRecord": "lca_emulator.registry",
    "ApplicationSpec": "lca_emulator.applications",
    "ApplicationStatus": "lca_common.protocol.messages",
    "ExecutionMode": "lca_common.protocol.messages",
    "HaPair": "lca_emulator.scs.server",
    "HaPairMachine": "lca_emulator.scs.ha",
    "JournalEntry": "lca_emulator.journal",
    "JournalEvent": "lca_emulator.journal",
    "ManagementLayer": "lca_emulator.layer",
    "PairState": "lca_emulator.scs.ha",
    "RecordChange": "lca_emulator.registry",
    "StatusJournal": "lca_emulator.journal",
}

__all__ = [
    "ApplicationRecord",
    "ApplicationSpec",
    "ApplicationStatus",
    "ExecutionMode",
    "HaPair",
    "HaPairMachine",
    "JournalEntry",
    "JournalEvent",
    "ManagementLayer",
    "PairState",
    "RecordChange",
    "StatusJournal",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'lca_emulator' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
