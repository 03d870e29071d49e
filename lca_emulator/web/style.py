"""What both pages share: the colour of each status and mode, the marks of journal events,
and the base style sheet.  One source for both, so a status looks the same live and in a
report (the live page receives this as JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_emulator.journal import JournalEvent

STATUS_COLOURS: dict[ApplicationStatus, str] = {
    ApplicationStatus.UNKNOWN: "#b0b0b0",
    ApplicationStatus.STOPPED: "#5f6368",
    ApplicationStatus.START_PENDING: "#9ecae1",
    ApplicationStatus.INITIALIZING: "#4292c6",
    ApplicationStatus.RUNNING: "#2e9e48",
    ApplicationStatus.SERVICE_UNAVAILABLE: "#d93025",
    ApplicationStatus.SUSPENDING: "#f6bf26",
    ApplicationStatus.SUSPENDED: "#e8710a",
    ApplicationStatus.STOP_PENDING: "#8d6e63",
}
"""Fill colour of a status span: green is serving, red is not, blues are on the way up."""

MODE_COLOURS: dict[ExecutionMode, str] = {
    ExecutionMode.PRIMARY: "#1a237e",
    ExecutionMode.BACKUP: "#9fa8da",
    ExecutionMode.EXITING: "#6d4c41",
    ExecutionMode.UNKNOWN: "#e6e6e6",
}
"""Fill colour of the thin mode strip under each lane."""


@dataclass(frozen=True)
class EventMark:
    """How a journal event is marked on a timeline: a glyph in a colour."""

    glyph: str
    colour: str


EVENT_MARKS: dict[JournalEvent, EventMark] = {
    JournalEvent.SWITCHOVER: EventMark("\u25b2", "#137333"),  # ▲
    JournalEvent.SWITCHOVER_REFUSED: EventMark("\u2716", "#c5221f"),  # ✖
    JournalEvent.HUNG: EventMark("\u2016", "#7b1fa2"),  # ‖
    JournalEvent.RECOVERED: EventMark("\u25b6", "#7b1fa2"),  # ▶
    JournalEvent.KILLED: EventMark("\u2620", "#202124"),  # ☠
    JournalEvent.EXITED: EventMark("\u25a0", "#202124"),  # ■
    JournalEvent.STOP_REQUESTED: EventMark("\u25bc", "#6d4c41"),  # ▼
    JournalEvent.START_FAILED: EventMark("!", "#c5221f"),
    JournalEvent.DISCONNECTED: EventMark("\u25cb", "#5f6368"),  # ○
    JournalEvent.RESTARTED: EventMark("\u21bb", "#1a73e8"),  # ↻
    JournalEvent.SPLIT_BRAIN: EventMark("\u26a0", "#c5221f"),  # ⚠
    JournalEvent.NO_BRAIN: EventMark("\u2205", "#c5221f"),  # ∅
    JournalEvent.FLAPPING: EventMark("\u21c4", "#e37400"),  # ⇄
    JournalEvent.HOST_DOWN: EventMark("\u2193", "#202124"),  # ↓
    JournalEvent.HOST_UP: EventMark("\u2191", "#137333"),  # ↑
    JournalEvent.LCA_LINK_LOST: EventMark("\u2702", "#5f6368"),  # ✂
    JournalEvent.LCA_LINK_RESTORED: EventMark("\u2194", "#5f6368"),  # ↔
}
"""The journal events worth a mark; the others show as status and mode changes."""

PASS_COLOUR = "#137333"
FAIL_COLOUR = "#c5221f"


def palette() -> dict[str, Any]:
    """The colours and marks as one JSON-ready mapping (what the live page receives)."""
    return {
        "status": {s.value: c for s, c in STATUS_COLOURS.items()},
        "mode": {m.value: c for m, c in MODE_COLOURS.items()},
        "marks": {e.value: asdict(m) for e, m in EVENT_MARKS.items()},
        "pass": PASS_COLOUR,
        "fail": FAIL_COLOUR,
    }


def script_json(value: object) -> str:
    """``value`` as JSON that is safe inside an inline ``<script>``."""
    text = json.dumps(value, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


BASE_CSS = (
    f":root {{ --pass: {PASS_COLOUR}; --fail: {FAIL_COLOUR}; }}"
    """
:root { --fg: #202124; --muted: #5f6368; --line: #dadce0; --bg: #ffffff; --panel: #f8f9fa; }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 24px 48px; font: 14px/1.45 system-ui, -apple-system,
  "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg);
  background: var(--bg); }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 24px 0 8px; }
h3 { font-size: 14px; margin: 16px 0 6px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-weight: 600; color: var(--muted); background: var(--panel); }
code, .mono, td.num { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12.5px; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600;
  font-size: 12px; color: #fff; }
.badge.pass { background: var(--pass); }
.badge.fail { background: var(--fail); }
.chip { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 12px;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 6px 0; font-size: 12px; }
.legend span.sw { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
  vertical-align: -2px; margin-right: 4px; }
svg.timeline { width: 100%; height: auto; display: block; background: #fff; }
svg.timeline text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, Arial,
  sans-serif; }
svg.timeline text.lane-label { font-weight: 600; font-size: 12px; }
svg.timeline text.mark { font-size: 12px; }
svg.timeline .grid { stroke: #ececec; }
svg.timeline .axis { stroke: #9aa0a6; }
"""
)
"""The style sheet both pages start from."""


def status_chip_css() -> str:
    """One ``.chip.s-STATUS`` rule per status, so a status reads the same everywhere."""
    rules = []
    for status, colour in STATUS_COLOURS.items():
        text = "#202124" if status in _LIGHT_STATUSES else "#ffffff"
        rules.append(f".chip.s-{status.value} {{ background: {colour}; color: {text}; }}")
    for mode, colour in MODE_COLOURS.items():
        text = "#202124" if mode in _LIGHT_MODES else "#ffffff"
        rules.append(f".chip.m-{mode.value} {{ background: {colour}; color: {text}; }}")
    return "\n".join(rules)


_LIGHT_STATUSES = {
    ApplicationStatus.UNKNOWN,
    ApplicationStatus.START_PENDING,
    ApplicationStatus.SUSPENDING,
}
_LIGHT_MODES = {ExecutionMode.BACKUP, ExecutionMode.UNKNOWN}
