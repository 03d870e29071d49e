"""``python -m sipserver_stub``: the same as ``sipserver-stub``."""

from sipserver_stub.cli import entry_point

entry_point()
