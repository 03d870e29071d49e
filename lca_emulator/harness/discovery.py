"""Finding the scenario files under the paths given to ``lca-emulator run``."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Final

from lca_common.yamlsource import ConfigError, load_yaml

__all__ = [
    "Candidate",
    "discover_scenarios",
    "is_scenario",
    "scenario_candidates",
    "select_scenarios",
]

_SCENARIO_MARKERS: Final = frozenset({"duration", "expect"})


def discover_scenarios(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The scenario files named by ``paths``: a file as is, a folder searched recursively.

    In a folder only ``*.yaml``/``*.yml`` files with a top-level ``duration`` or
    ``expect`` key count (fixture files live beside scenarios); hidden ones are skipped.
    A path that does not exist or cannot be looked at is a :class:`ConfigError`.
    """
    return select_scenarios(scenario_candidates(paths), is_scenario)


Candidate = tuple[Path, bool]
"""A file that may be a scenario, and whether it was named as is (always a scenario)
rather than found in a folder (a scenario if :func:`is_scenario` says so)."""


def scenario_candidates(paths: Sequence[str | os.PathLike[str]]) -> list[Candidate]:
    """The files :func:`discover_scenarios` chooses from, in its order, without reading
    any: what ``--jobs`` workers share out, each reading its own."""
    candidates: list[Candidate] = []
    for raw in paths:
        path = Path(raw)
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise ConfigError(str(path), None, "", "no such file or directory") from None
        except OSError as e:  # a name too long, a symlink loop, a file on the way
            raise ConfigError(str(path), None, "", f"cannot read it: {e.strerror or e}") from None
        if stat.S_ISDIR(mode):
            candidates.extend(
                (candidate, False)
                for candidate in sorted(
                    candidate
                    for candidate in path.rglob("*")
                    if candidate.suffix in (".yaml", ".yml")
                    and not candidate.is_dir()  # a FIFO or a device is kept, to be refused
                    and not any(part.startswith(".") for part in candidate.relative_to(path).parts)
                )
            )
        else:
            candidates.append((path, True))  # read as a scenario: load_yaml refuses a FIFO
    return candidates


def select_scenarios(
    candidates: Iterable[Candidate], scenario: Callable[[Path], bool]
) -> list[Path]:
    """The scenario files among ``candidates``: each file once, where it first counts (a
    named file always does, a file found in a folder when ``scenario`` says so)."""
    found: dict[Path, None] = {}
    for path, named in candidates:
        if path not in found and (named or scenario(path)):
            found[path] = None
    return list(found)


def is_scenario(path: Path) -> bool:
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
