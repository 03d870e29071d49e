"""Pure tests of application records: how a change makes the next record."""

from __future__ import annotations

import dataclasses
from typing import get_type_hints

import pytest

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_emulator.registry import ApplicationRecord, RecordFields

BEFORE = ApplicationRecord(
    name="SIPS_A",
    status=ApplicationStatus.RUNNING,
    mode=ExecutionMode.PRIMARY,
    host="host-a",
    pid=10,
    since=5.0,
    managed=True,
    connected=True,
    registered=True,
    hung=False,
    reported_status=ApplicationStatus.RUNNING,
)
OTHER: RecordFields = {
    "status": ApplicationStatus.SERVICE_UNAVAILABLE,
    "mode": ExecutionMode.BACKUP,
    "host": None,
    "pid": None,
    "managed": False,
    "connected": False,
    "registered": False,
    "hung": True,
    "reported_status": ApplicationStatus.SERVICE_UNAVAILABLE,
}


def test_record_fields_are_every_field_but_name_and_since() -> None:
    """A change may set every field of a record except its name and ``since``."""
    fields = {f.name for f in dataclasses.fields(ApplicationRecord)}
    assert set(get_type_hints(RecordFields)) == fields - {"name", "since"} == set(OTHER)


@pytest.mark.parametrize("key", sorted(OTHER))
def test_updated_changes_only_the_field_given(key: str) -> None:
    """Each field given is set (``None`` and ``False`` included); the others stay."""
    fields: RecordFields = {key: OTHER[key]}  # type: ignore[misc]
    after = BEFORE.updated(9.0, fields)
    since = 9.0 if key in ("status", "mode") else BEFORE.since
    assert after == dataclasses.replace(BEFORE, since=since, **fields)


def test_since_moves_only_when_status_or_mode_changes() -> None:
    """The same status and mode written again keep ``since``; no fields: the record itself."""
    same = BEFORE.updated(9.0, {"status": BEFORE.status, "mode": BEFORE.mode, "pid": 11})
    assert (same.since, same.pid) == (5.0, 11)
    assert BEFORE.updated(9.0, {}) is BEFORE
