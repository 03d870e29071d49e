"""The decision table, as data: written from the documents, never from the stub's code.

Sources: the vendor page (``/work/shared/seed/sip-server-ha-backup-init-check.txt``,
"Verifying Initialization Status in Backup SIP Servers", SIP Server 8.1.103.64+) and
``docs/sipserver-stub.md`` (sections "The options", "When the stub reports what",
"What the LCA sees" and "The decision table"), plus ``docs/protocol.md`` section 3
for the statuses the Management Layer shows of its own (``START_PENDING``).

Each entry says where it comes from: ``vendor`` (the vendor page says so) or ``doc``
(``docs/sipserver-stub.md`` chose it where the vendor page is silent).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from .model import OptionScalar

# -- statuses (docs/protocol.md section 3) ------------------------------------------

START_PENDING: Final = "START_PENDING"
INITIALIZING: Final = "INITIALIZING"
RUNNING: Final = "RUNNING"
SERVICE_UNAVAILABLE: Final = "SERVICE_UNAVAILABLE"

LAUNCH_STATUS: Final = START_PENDING
"""What the Management Layer shows from the moment the LCA starts the application until
the application's first report arrives (protocol.md: ``START_PENDING`` "being started")."""

# -- the options (vendor page; docs/sipserver-stub.md "The options") -----------------

SECTION: Final = "TServer"
"""All four options live in ``[TServer]``, read once at start (vendor: "After restart")."""


@dataclass(frozen=True)
class BoolOption:
    """A true/false option: ``default`` when absent or invalid."""

    name: str
    default: bool
    any_letter_case: bool
    """True where the doc's table says the values may be in any letter case."""
    source: str


@dataclass(frozen=True)
class IntOption:
    """An integer option valid from ``minimum`` to ``maximum`` inclusive."""

    name: str
    default: int
    minimum: int
    maximum: int
    source: str


BACKUP_INIT_CHECK: Final = BoolOption(
    "backup-init-check",
    default=False,
    any_letter_case=True,
    source="vendor: Default Value: false, Valid Values: true, false; "
    "doc 'The options': true, false (any letter case); invalid: logged, false used",
)
BACKUP_INIT_CHECK_TIMEOUT: Final = IntOption(
    "backup-init-check-timeout",
    default=60,
    minimum=15,
    maximum=3600,
    source="vendor: Default Value: 60, Valid Values: 15-3600 (seconds); doc 'The options': "
    "both ends valid; 14, 3601, 10, 4000, abc, 1.5 and '' are not; invalid: logged, 60 used",
)
BACKUP_SIP_PORT_CHECK: Final = BoolOption(
    "backup-sip-port-check",
    default=True,
    any_letter_case=True,
    source="vendor: Default Value: true, Valid Values: true, false; "
    "doc 'The options': any letter case; invalid: logged, true used",
)
CONTROL_VIP_SCRIPTS: Final = BoolOption(
    "control-vip-scripts",
    default=False,
    any_letter_case=True,
    source="vendor: names the option only (IP Address Takeover when true); "
    "doc 'The options': default false, valid true, false, any letter case; "
    "invalid: logged, false used",
)

OPTIONS: Final[tuple[BoolOption | IntOption, ...]] = (
    BACKUP_INIT_CHECK,
    BACKUP_INIT_CHECK_TIMEOUT,
    BACKUP_SIP_PORT_CHECK,
    CONTROL_VIP_SCRIPTS,
)

INTEGER_SYNTAX: Final = r"-?[0-9]+"
"""What "an integer" means for the timeout: optional minus and decimal digits (the doc
names ``abc``, ``1.5`` and the empty string as not integers)."""


def configuration_string(value: OptionScalar) -> str:
    """A YAML scalar as the server reads it (doc 'The fixture': ``true`` is "true", ``60``
    is "60")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- the components (vendor page; doc 'The fixture') ---------------------------------

COMPONENTS: Final = ("t-controller", "smart-proxy", "interaction-proxy", "operational-info")
"""T-Controller, Smart Proxy, Interaction Proxy, Operational Information thread."""

OK: Final = "ok"
FAIL: Final = "fail"
HANG: Final = "hang"
RESULTS: Final = (OK, FAIL, HANG)

UNLISTED_COMPONENT: Final = (OK, 0.0)
"""doc 'The fixture': an unlisted component completes at once."""

# -- the hosts of the pair (doc 'The fixture': peer-host) ----------------------------

SEPARATE_HOSTS: Final = "separate-hosts"
SAME_HOST: Final = "same-host"
TOPOLOGIES: Final = (SEPARATE_HOSTS, SAME_HOST)

FREE: Final = "free"
IN_USE: Final = "in-use"
PORT_STATES: Final = (FREE, IN_USE)

PRIMARY: Final = "primary"
BACKUP: Final = "backup"
MODES: Final = (PRIMARY, BACKUP)

# -- what the stub reports, and when (doc 'When the stub reports what') --------------


class Situation(enum.StrEnum):
    """Every way a start can end, in the order the doc's list decides them."""

    PRIMARY = "primary"
    CHECK_OFF = "check-off"
    PORT_BUSY = "port-busy"
    COMPONENT_FAILED = "component-failed"
    ALL_COMPLETED = "all-completed"
    TIMED_OUT = "timed-out"
    PROMOTED = "promoted-while-checking"


@dataclass(frozen=True)
class Verdict:
    """The status reported in a situation, when, and what says so."""

    status: str
    when: str
    doc: str


VERDICTS: Final[Mapping[Situation, Verdict]] = MappingProxyType(
    {
        Situation.PRIMARY: Verdict(
            RUNNING,
            "at start (0)",
            "doc 'When' 1; row A1 (vendor: the check is defined for a server in backup mode)",
        ),
        Situation.CHECK_OFF: Verdict(
            RUNNING,
            "at start (0)",
            "doc 'When' 2; rows B1, B2, B3 (vendor: check off = no verification)",
        ),
        Situation.PORT_BUSY: Verdict(
            SERVICE_UNAVAILABLE,
            "at start (0)",
            "doc 'When' 3.1; rows E1, E5, E7 (vendor: fails to open a SIP port -> SU)",
        ),
        Situation.COMPONENT_FAILED: Verdict(
            SERVICE_UNAVAILABLE,
            "at the first failure (at or before the timeout)",
            "doc 'When' 3.2; rows C3-C7, E6 (vendor: a component fails -> SU)",
        ),
        Situation.ALL_COMPLETED: Verdict(
            RUNNING,
            "when the last of the four completes (at or before the timeout)",
            "doc 'When' 3.2; rows C1, C2, C10, D2",
        ),
        Situation.TIMED_OUT: Verdict(
            SERVICE_UNAVAILABLE,
            "at the timeout, with a component still pending",
            "doc 'When' 3.2; rows C8, C9, D1, D3-D7 (vendor: timeout option)",
        ),
        Situation.PROMOTED: Verdict(
            RUNNING,
            "at registration (0): SCS gives the configured primary PRIMARY",
            "doc 'When' 4; row A2 (our choice); ha-rules R1",
        ),
    }
)

TIE_AT_TIMEOUT_IS_IN_TIME: Final = True
"""doc 'When' 3.2 and row C10: a component completing at the very instant of the timeout
is in time."""

FIRST_VERDICT_IS_FINAL: Final = True
"""doc 'When' 3.3 and row C9: nothing later changes the first verdict."""

PORT_PROBE_NEEDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "mode backup": "doc 'When' 1 / row A1: the check is a backup's affair",
        "backup-init-check true": "vendor: port check works only with backup-init-check true; B2",
        "backup-sip-port-check true": "vendor; row E2",
        "control-vip-scripts false": "vendor: disabled under IP Address Takeover; row E3",
        "hosts differ (host != peer-host)": "vendor: does not work on the same host; row E4",
    }
)
"""doc 'When' 3.1: the SIP port is probed at t=0 only when all of these hold."""

INITIALIZING_SEEN_ONLY_IF_VERDICT_AFTER_START: Final = True
"""doc 'What the LCA sees': until registered only the latest status is kept, so a verdict
at t=0 hides the INITIALIZING before it; a later verdict shows INITIALIZING at 0 first."""

# -- the rows of the doc's decision table that start once (no events) ----------------


@dataclass(frozen=True)
class DocRow:
    """One row of the doc's table, with the inputs that matter and its "reports" column.

    ``at`` lists (time, status) the row says are reported; ``never`` the statuses it says
    never appear.  Components absent from ``components`` complete at once.
    """

    row: str
    mode: str
    role: str
    options: tuple[tuple[str, OptionScalar], ...]
    topology: str
    sip_port_state: str
    components: tuple[tuple[str, str, float | None], ...]
    at: tuple[tuple[float, str], ...]
    never: tuple[str, ...]


_CHECK_ON: Final = (("backup-init-check", True),)
_SU: Final = SERVICE_UNAVAILABLE

DOC_ROWS: Final[tuple[DocRow, ...]] = (
    DocRow(
        "A1", PRIMARY, PRIMARY,
        (("backup-init-check", True), ("backup-sip-port-check", True),
         ("control-vip-scripts", False)),
        SEPARATE_HOSTS, IN_USE,
        (("t-controller", FAIL, 5.0), ("smart-proxy", HANG, None)),
        ((0.0, RUNNING),), (_SU,),
    ),
    DocRow(
        "A2", BACKUP, PRIMARY, _CHECK_ON, SEPARATE_HOSTS, FREE,
        (("operational-info", HANG, None),),
        ((0.0, RUNNING),), (_SU,),
    ),
    DocRow(
        "B1", BACKUP, BACKUP, (), SEPARATE_HOSTS, FREE,
        (("t-controller", FAIL, 5.0), ("smart-proxy", HANG, None)),
        ((0.0, RUNNING),), (_SU,),
    ),
    DocRow(
        "B2", BACKUP, BACKUP,
        (("backup-init-check", False), ("backup-sip-port-check", True),
         ("control-vip-scripts", False)),
        SEPARATE_HOSTS, IN_USE, (),
        ((0.0, RUNNING),), (_SU,),
    ),
    DocRow(
        "B3", BACKUP, BACKUP, (("backup-init-check", "yes"),), SEPARATE_HOSTS, FREE,
        (("interaction-proxy", HANG, None),),
        ((0.0, RUNNING),), (_SU,),
    ),
    DocRow(
        "C1", BACKUP, BACKUP,
        (("backup-init-check", True), ("backup-sip-port-check", True),
         ("control-vip-scripts", False)),
        SEPARATE_HOSTS, FREE, (),
        ((0.0, RUNNING),), (_SU,),
    ),
    DocRow(
        "C2", BACKUP, BACKUP, _CHECK_ON, SEPARATE_HOSTS, FREE,
        (("t-controller", OK, 3.0), ("smart-proxy", OK, 7.0),
         ("interaction-proxy", OK, 12.0), ("operational-info", OK, 20.0)),
        ((0.0, INITIALIZING), (20.0, RUNNING)), (_SU,),
    ),
    DocRow(
        "C3", BACKUP, BACKUP, _CHECK_ON, SEPARATE_HOSTS, FREE,
        (("t-controller", FAIL, 5.0),),
        ((0.0, INITIALIZING), (5.0, _SU)), (RUNNING,),
    ),
    DocRow(
        "C4", BACKUP, BACKUP, _CHECK_ON, SEPARATE_HOSTS, FREE,
        (("smart-proxy", FAIL, 8.0),),
        ((0.0, INITIALIZING), (8.0, _SU)), (RUNNING,),
    ),
    DocRow(
        "C5", BACKUP, BACKUP, _CHECK_ON, SEPARATE_HOSTS, FREE,
        (("interaction-proxy", FAIL, 11.0),),
        ((0.0, INITIALIZING), (11.0, _SU)), (RUNNING,),
    ),
    DocRow(
        "C6", BACKUP, BACKUP, _CHECK_ON, SEPARATE_HOSTS, FREE,
        (("operational-info", FAIL, 14.0),),
        ((0.0, INITIALIZING), (14.0, _SU)), (RUNNING,),
    ),
    DocRow(
        "C7", BACKUP, BACKUP, _CHECK_ON, SEPARATE_HOSTS, FREE,
        (("t-controller", FAIL, 5.0), ("smart-proxy", HANG, None)),
        ((5.0, _SU),), (RUNNING,),
    ),
    DocRow(
        "C8", BACKUP, BACKUP, _CHECK_ON, SEPARATE_HOSTS, FREE,
        (("operational-info", HANG, None),),
        ((0.0, INITIALIZING), (60.0, _SU)), (RUNNING,),
    ),
    DocRow(
        "C9", BACKUP, BACKUP, (*_CHECK_ON, ("backup-init-check-timeout", 60)),
        SEPARATE_HOSTS, FREE, (("smart-proxy", OK, 90.0),),
        ((60.0, _SU),), (RUNNING,),
    ),
    DocRow(
        "C10", BACKUP, BACKUP, (*_CHECK_ON, ("backup-init-check-timeout", 60)),
        SEPARATE_HOSTS, FREE, (("interaction-proxy", OK, 60.0),),
        ((60.0, RUNNING),), (_SU,),
    ),
    DocRow(
        "D1", BACKUP, BACKUP, (*_CHECK_ON, ("backup-init-check-timeout", 3600)),
        SEPARATE_HOSTS, FREE, (("t-controller", HANG, None),),
        ((3600.0, _SU),), (RUNNING,),
    ),
    DocRow(
        "D2", BACKUP, BACKUP, (*_CHECK_ON, ("backup-init-check-timeout", 3600)),
        SEPARATE_HOSTS, FREE, (("operational-info", OK, 3000.0),),
        ((3000.0, RUNNING),), (_SU,),
    ),
    DocRow(
        "D3", BACKUP, BACKUP, (*_CHECK_ON, ("backup-init-check-timeout", 15)),
        SEPARATE_HOSTS, FREE, (("t-controller", HANG, None),),
        ((15.0, _SU),), (RUNNING,),
    ),
    DocRow(
        "D4", BACKUP, BACKUP, (*_CHECK_ON, ("backup-init-check-timeout", "10")),
        SEPARATE_HOSTS, FREE, (("t-controller", HANG, None),),
        ((60.0, _SU),), (RUNNING,),
    ),
    DocRow(
        "D5", BACKUP, BACKUP, (*_CHECK_ON, ("backup-init-check-timeout", 4000)),
        SEPARATE_HOSTS, FREE, (("t-controller", HANG, None),),
        ((60.0, _SU),), (RUNNING,),
    ),
    DocRow(
        "D6", BACKUP, BACKUP, (*_CHECK_ON, ("backup-init-check-timeout", "abc")),
        SEPARATE_HOSTS, FREE, (("t-controller", HANG, None),),
        ((60.0, _SU),), (RUNNING,),
    ),
    DocRow(
        "D7 (14)", BACKUP, BACKUP, (*_CHECK_ON, ("backup-init-check-timeout", 14)),
        SEPARATE_HOSTS, FREE, (("t-controller", HANG, None),),
        ((60.0, _SU),), (RUNNING,),
    ),
    DocRow(
        "D7 (3601)", BACKUP, BACKUP, (*_CHECK_ON, ("backup-init-check-timeout", 3601)),
        SEPARATE_HOSTS, FREE, (("t-controller", HANG, None),),
        ((60.0, _SU),), (RUNNING,),
    ),
    DocRow(
        "E1", BACKUP, BACKUP, _CHECK_ON, SEPARATE_HOSTS, IN_USE, (),
        ((0.0, _SU),), (RUNNING,),
    ),
    DocRow(
        "E2", BACKUP, BACKUP,
        (*_CHECK_ON, ("backup-sip-port-check", False), ("control-vip-scripts", False)),
        SEPARATE_HOSTS, IN_USE, (),
        ((0.0, RUNNING),), (_SU,),
    ),
    DocRow(
        "E3", BACKUP, BACKUP,
        (*_CHECK_ON, ("backup-sip-port-check", True), ("control-vip-scripts", True)),
        SEPARATE_HOSTS, IN_USE, (),
        ((0.0, RUNNING),), (_SU,),
    ),
    DocRow(
        "E4", BACKUP, BACKUP,
        (*_CHECK_ON, ("backup-sip-port-check", True), ("control-vip-scripts", False)),
        SAME_HOST, IN_USE, (),
        ((0.0, RUNNING),), (_SU,),
    ),
    DocRow(
        "E5", BACKUP, BACKUP,
        (*_CHECK_ON, ("backup-sip-port-check", True), ("control-vip-scripts", False)),
        SEPARATE_HOSTS, IN_USE, (("smart-proxy", FAIL, 5.0),),
        ((0.0, _SU),), (RUNNING,),
    ),
    DocRow(
        "E6", BACKUP, BACKUP,
        (*_CHECK_ON, ("backup-sip-port-check", False), ("control-vip-scripts", False)),
        SEPARATE_HOSTS, IN_USE, (("t-controller", FAIL, 5.0),),
        ((0.0, INITIALIZING), (5.0, _SU)), (RUNNING,),
    ),
    DocRow(
        "E7 (port-check)", BACKUP, BACKUP,
        (*_CHECK_ON, ("backup-sip-port-check", "disabled")),
        SEPARATE_HOSTS, IN_USE, (),
        ((0.0, _SU),), (RUNNING,),
    ),
    DocRow(
        "E7 (vip-scripts)", BACKUP, BACKUP,
        (*_CHECK_ON, ("control-vip-scripts", "enabled")),
        SEPARATE_HOSTS, IN_USE, (),
        ((0.0, _SU),), (RUNNING,),
    ),
)  # fmt: skip
"""Rows A3 and F1-F4 need events (kill, restart, set-option) and are not startup inputs;
they stay with their scenario files under ``fixtures/decision-table/``."""
