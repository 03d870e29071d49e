"""A SIP Server stub that reports to the Management Layer what the real server would.

Its startup behaviour (backup initialization check, SIP port check) comes from a
YAML fixture; see ``docs/sipserver-stub.md`` for the decision table.
"""

from .fixture import Component, ComponentPlan, ComponentResult, StubFixture, load_fixture
from .options import TServerOptions, parse_tserver_options
from .stub import SipServerStub, StatusChange

__all__ = [
    "Component",
    "ComponentPlan",
    "ComponentResult",
    "SipServerStub",
    "StatusChange",
    "StubFixture",
    "TServerOptions",
    "load_fixture",
    "parse_tserver_options",
]
