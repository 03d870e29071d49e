"""``python -m lca_emulator``: the same as ``lca-emulator``."""

from lca_emulator.cli import entry_point

entry_point()
