"""Finding the scenario files under the paths given to ``lca-emulator run``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from lca_common.yamlsource import ConfigError, load_yaml

__all__ = ["discover_scenarios"]

_SCENARIO_MARKERS: Final = frozenset({"duration", "expect"})


def discover_scenarios(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The scenario files named by ``paths``: a file as is, a folder searched recursively.

    In a folder only ``*.yaml``/``*.yml`` files with a top-level ``duration`` or
    ``expect`` key count (fixture files live beside scenarios); hidden ones are skipped.
    """
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            candidates = sorted(
                candidate
                for candidate in path.rglob("*")
                if candidate.suffix in (".yaml", ".yml")
                and candidate.is_file()
                and not any(part.startswith(".") for part in candidate.relative_to(path).parts)
            )
            found.update((candidate, None) for candidate in candidates if _is_scenario(candidate))
        elif path.exists():
            found[path] = None
        else:
            raise ConfigError(str(path), None, "", "no such file or directory")
    return list(found)


def _is_scenario(path: Path) -> bool:
    """Every YAML file in a folder is a scenario except stub fixtures (a top-level
    ``application`` key): a mistyped scenario is reported, never silently skipped.
    A file that cannot be read or parsed is kept too, so that running it says why."""
    try:
        root = load_yaml(path)
        if not root.is_mapping:
            return False
        keys = set(root.mapping())
    except ConfigError:
        return True
    return bool(keys & _SCENARIO_MARKERS) or "application" not in keys
