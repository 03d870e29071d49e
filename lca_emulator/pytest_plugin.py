"""pytest plugin of lca-emulator (registered through the ``pytest11`` entry point)."""
