"""direct_init: the cheaper __init__ of the frozen dataclasses built at every report."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from dataclasses import InitVar, dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lca_common.protocol.messages import ApplicationStatus, ExecutionMode
from lca_emulator.frozen import direct_init
from lca_emulator.journal import JournalEntry, JournalEvent
from lca_emulator.registry import ApplicationRecord, RecordChange

DECORATED = (ApplicationRecord, JournalEntry, RecordChange)


@dataclass(frozen=True, slots=True)
class Reference:
    """Built by the dataclass's own __init__."""

    name: str
    count: int = 0
    note: str | None = None


@direct_init
@dataclass(frozen=True, slots=True)
class Direct:
    """The same fields, built by direct_init's."""

    name: str
    count: int = 0
    note: str | None = None


def values_of(obj: object) -> tuple[Any, ...]:
    return tuple(getattr(obj, f.name) for f in dataclasses.fields(obj))  # type: ignore[arg-type]


@given(st.text(), st.integers(), st.none() | st.text(), st.integers(0, 3))
def test_direct_init_builds_what_the_dataclass_init_builds(
    name: str, count: int, note: str | None, given_args: int
) -> None:
    """Any mix of positional, keyword and default arguments gives the same fields."""
    args: tuple[Any, ...] = (name, count, note)[: max(1, given_args)]
    assert values_of(Direct(*args)) == values_of(Reference(*args))
    keywords: dict[str, Any] = dict(zip(("name", "count", "note"), args, strict=False))
    assert values_of(Direct(**keywords)) == values_of(Reference(**keywords))


def test_direct_init_keeps_the_signature_and_the_errors() -> None:
    """Same parameters, annotations and argument errors as the dataclass's __init__."""
    assert inspect.signature(Direct) == inspect.signature(Reference)
    bad: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((), {}),
        (("a", 1, None, 2), {}),
        (("a",), {"nam": 1}),
    ]
    for bad_args, bad_kwargs in bad:
        with pytest.raises(TypeError):
            Reference(*bad_args, **bad_kwargs)
        with pytest.raises(TypeError):
            Direct(*bad_args, **bad_kwargs)


@pytest.mark.parametrize("cls", DECORATED, ids=lambda cls: cls.__name__)
def test_the_per_report_classes_stay_frozen_dataclasses(cls: type[Any]) -> None:
    """Every field is set, the instance is frozen, equal, hashable, shown, replaced and
    pickled as a dataclass's."""
    record = ApplicationRecord("a", ApplicationStatus.RUNNING, ExecutionMode.PRIMARY, "h", 7)
    samples: dict[type[Any], tuple[Any, ...]] = {
        ApplicationRecord: (
            "APP",
            ApplicationStatus.RUNNING,
            ExecutionMode.BACKUP,
            "host",
            42,
            1.5,
            True,
            True,
            False,
            True,
            ApplicationStatus.SERVICE_UNAVAILABLE,
        ),
        JournalEntry: (
            2.5,
            "APP",
            JournalEvent.STATUS,
            ApplicationStatus.RUNNING,
            ExecutionMode.PRIMARY,
            "why",
            5150,
        ),
        RecordChange: (record, record, JournalEvent.MODE, "detail"),
    }
    values = samples[cls]
    assert len(values) == len(dataclasses.fields(cls))
    built = cls(*values)
    assert values_of(built) == values
    assert built == cls(*values)
    assert hash(built) == hash(cls(*values))
    assert repr(built).startswith(f"{cls.__name__}(")
    assert pickle.loads(pickle.dumps(built)) == built
    first = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, first, values[1])
    assert values_of(dataclasses.replace(built)) == values


def test_direct_init_refuses_what_it_cannot_do_alike() -> None:
    """A class whose __init__ does more than set its fields, or that is not frozen with
    slots, keeps its own: direct_init raises TypeError."""

    @dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclass(frozen=True, slots=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class WithInitVar:
        a: int
        b: InitVar[int]

    @dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = field(default_factory=list)

    @dataclass(frozen=True, slots=True)
    class KeywordOnly:
        a: int = field(kw_only=True)

    @dataclass(frozen=True, slots=True)
    class NotInInit:
        a: int = field(init=False, default=0)

    for cls in (NoSlots, NotFrozen, PostInit, WithInitVar, Factory, KeywordOnly, NotInInit):
        with pytest.raises(TypeError):
            direct_init(cls)
