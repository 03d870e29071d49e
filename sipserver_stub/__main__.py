"""``python -m sipserver_stub``: the same as ``sipserver-stub``."""

from .cli import main

main()
