"""The oracle: what the Management Layer should observe for one case.

Written from :mod:`.table` (the vendor page and ``docs/sipserver-stub.md``) alone: no
Twisted, no project import, no look at ``sipserver_stub``.  Pure functions.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from . import table
from .model import Case, Change, Outcome
from .table import BoolOption, IntOption, Situation


@dataclass(frozen=True)
class EffectiveOptions:
    """The four ``[TServer]`` options as the server uses them after its fallbacks."""

    init_check: bool
    timeout: int
    port_check: bool
    vip_scripts: bool


def effective_bool(option: BoolOption, case: Case) -> bool:
    """The option's value in ``case``: the default when absent or not a valid value."""
    written = case.option(option.name)
    if written is None:
        return option.default
    text = table.configuration_string(written)
    if option.any_letter_case:
        text = text.lower()
    if text == "true":
        return True
    if text == "false":
        return False
    return option.default


def effective_int(option: IntOption, case: Case) -> int:
    """The option's value in ``case``: the default when absent, not an integer or out of
    range (both ends are inside)."""
    written = case.option(option.name)
    if written is None:
        return option.default
    text = table.configuration_string(written)
    if not re.fullmatch(table.INTEGER_SYNTAX, text):
        return option.default
    value = int(text)
    if option.minimum <= value <= option.maximum:
        return value
    return option.default


def effective_options(case: Case) -> EffectiveOptions:
    return EffectiveOptions(
        init_check=effective_bool(table.BACKUP_INIT_CHECK, case),
        timeout=effective_int(table.BACKUP_INIT_CHECK_TIMEOUT, case),
        port_check=effective_bool(table.BACKUP_SIP_PORT_CHECK, case),
        vip_scripts=effective_bool(table.CONTROL_VIP_SCRIPTS, case),
    )


def port_probed(case: Case, options: EffectiveOptions) -> bool:
    """Whether the stub opens its SIP port at t=0 (every item of PORT_PROBE_NEEDS)."""
    return (
        case.mode == table.BACKUP
        and options.init_check
        and options.port_check
        and not options.vip_scripts
        and case.topology != table.SAME_HOST
    )


def _scripts(case: Case) -> list[tuple[str, float]]:
    """(result, time) of all four components; ``hang`` never ends (time = inf)."""
    listed = {c.component: c for c in case.components}
    scripts: list[tuple[str, float]] = []
    for name in table.COMPONENTS:
        script = listed.get(name)
        if script is None:
            scripts.append(table.UNLISTED_COMPONENT)
        elif script.result == table.HANG or script.after is None:
            scripts.append((table.HANG, math.inf))
        else:
            scripts.append((script.result, script.after))
    return scripts


def check_verdict(case: Case, options: EffectiveOptions) -> tuple[float, Situation]:
    """When and how the backup initialization check ends (it is on, mode backup)."""
    if port_probed(case, options) and case.sip_port_state == table.IN_USE:
        return 0.0, Situation.PORT_BUSY
    timeout = float(options.timeout)
    scripts = _scripts(case)
    failures = [time for result, time in scripts if result == table.FAIL and time <= timeout]
    if failures:
        return min(failures), Situation.COMPONENT_FAILED
    if all(result == table.OK for result, _ in scripts):
        last = max(time for _, time in scripts)
        if last <= timeout:  # TIE_AT_TIMEOUT_IS_IN_TIME
            return last, Situation.ALL_COMPLETED
    return timeout, Situation.TIMED_OUT


def stub_verdict(case: Case) -> tuple[float, Situation]:
    """The stub's one verdict for this start (FIRST_VERDICT_IS_FINAL), before SCS acts."""
    if case.mode == table.PRIMARY:
        return 0.0, Situation.PRIMARY
    options = effective_options(case)
    if not options.init_check:
        return 0.0, Situation.CHECK_OFF
    return check_verdict(case, options)


def expected(case: Case) -> Outcome:
    """The ordered (time, status) changes the Management Layer records for ``SIPS_B``."""
    time, situation = stub_verdict(case)
    changes: list[Change] = [(0.0, table.LAUNCH_STATUS)]
    if time > 0 and case.role == table.PRIMARY:
        # Still checking when it registers: SCS gives the configured primary PRIMARY
        # at registration, the check is abandoned, RUNNING as primary (doc 'When' 4).
        situation = Situation.PROMOTED
        changes.append((0.0, table.INITIALIZING))
        time = 0.0
    elif time > 0:
        changes.append((0.0, table.INITIALIZING))
    verdict = table.VERDICTS[situation]
    changes.append((time, verdict.status))
    deduplicated: list[Change] = []
    for change in changes:
        if not deduplicated or deduplicated[-1][1] != change[1]:
            deduplicated.append(change)
    return Outcome(tuple(deduplicated), f"{situation.value}: {verdict.doc}")
