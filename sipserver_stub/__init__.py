"""A SIP Server stub that reports to the Management Layer what the real server would.

Its startup behaviour (backup initialization check, SIP port check) comes from a
YAML fixture; see ``docs/sipserver-stub.md`` for the decision table.

The public names are imported on first use, so that ``python -m sipserver_stub
--help`` (and any import of one submodule) loads only what it needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sipserver_stub.fixture import (
        Component,
        ComponentPlan,
        ComponentResult,
        StubFixture,
        load_fixture,
    )
    from sipserver_stub.options import TServerOptions, parse_tserver_options
    from sipserver_stub.stub import SipServerStub

__all__ = [
    "Component",
    "ComponentPlan",
    "ComponentResult",
    "SipServerStub",
    "StubFixture",
    "TServerOptions",
    "load_fixture",
    "parse_tserver_options",
]

_HOMES = {
    "Component": "sipserver_stub.fixture",
    "ComponentPlan": "sipserver_stub.fixture",
    "ComponentResult": "sipserver_stub.fixture",
    "StubFixture": "sipserver_stub.fixture",
    "load_fixture": "sipserver_stub.fixture",
    "TServerOptions": "sipserver_stub.options",
    "parse_tserver_options": "sipserver_stub.options",
    "SipServerStub": "sipserver_stub.stub",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
