"""A cheaper ``__init__`` for the frozen, slotted dataclasses written at every report.

A frozen dataclass's own ``__init__`` sets each field with
``object.__setattr__(self, name, value)``, which looks the name up on the type every
time: building an :class:`~lca_emulator.registry.ApplicationRecord` cost more than a
microsecond, and every status report builds a record, a journal entry and a change.
:func:`direct_init` gives such a class an ``__init__`` with the same parameters that
sets each slot through its descriptor, found once: about twice as fast, and the same
object in the end (still frozen, equal, hashed and shown as before).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar

T = TypeVar("T")


def direct_init(cls: type[T]) -> type[T]:
    """Replace the ``__init__`` of ``cls``, a frozen dataclass with slots, by one that
    takes the same arguments and sets each slot directly.

    :raises TypeError: ``cls`` is not such a dataclass, or its ``__init__`` does more
        than set its fields (``__post_init__``, ``InitVar``, a default factory,
        keyword-only or non-init fields).
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or not params.init or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__name__} is not a frozen dataclass with slots and an __init__")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    original = vars(cls)["__init__"]
    if list(inspect.signature(original).parameters)[1:] != [f.name for f in fields]:
        raise TypeError(f"{cls.__name__}.__init__ takes more than its fields (an InitVar?)")
    namespace: dict[str, Any] = {}
    parameters = []
    lines = []
    for f in fields:
        if not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: not a plain positional field")
        namespace[f"_set_{f.name}"] = vars(cls)[f.name].__set__
        if f.default is dataclasses.MISSING:
            parameters.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            parameters.append(f"{f.name}=_default_{f.name}")
        lines.append(f"    _set_{f.name}(self, {f.name})\n")
    source = f"def __init__(self, {', '.join(parameters)}):\n{''.join(lines) or '    pass'}\n"
    exec(source, namespace)  # our own text, from the field names, as dataclasses does
    init = namespace["__init__"]
    init.__qualname__ = original.__qualname__
    init.__annotations__ = original.__annotations__
    init.__doc__ = original.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
