"""A SIP Server stub that reports to the Management Layer what the real server would.

Its startup behaviour (backup initialization check, SIP port check) comes from a
YAML fixture; see ``docs/sipserver-stub.md`` for the decision table.
"""

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
