"""An emulated Genesys Management Layer (LCA + SCS) and a scenario harness around it.

The public names are here; everything else is internal and may change.
"""

from .ha import HaPairMachine, PairState
from .protocol.messages import ApplicationStatus, ExecutionMode
from .registry import ApplicationRecord, JournalEntry, JournalEvent, StatusJournal
from .scs import HaPair
from .service import ManagementLayer

__all__ = [
    "ApplicationRecord",
    "ApplicationStatus",
    "ExecutionMode",
    "HaPair",
    "HaPairMachine",
    "JournalEntry",
    "JournalEvent",
    "ManagementLayer",
    "PairState",
    "StatusJournal",
]
