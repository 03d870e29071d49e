"""``python -m lca_emulator``: the same as ``lca-emulator``."""

from .cli import main

main()
