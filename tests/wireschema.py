"""Check wire objects against the protocol's published JSON Schema (shipped in the package)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator

from lca_common.protocol import json_schema

DOCS = Path(__file__).resolve().parent.parent / "docs"
"""The project's documentation folder."""


@cache
def _schema() -> dict[str, Any]:
    schema = json_schema()
    Draft202012Validator.check_schema(schema)
    return schema


@cache
def _validator() -> Validator:
    return Draft202012Validator(_schema())


def assert_valid_wire(obj: dict[str, object]) -> None:
    """Raise ``AssertionError`` with the schema's complaint unless ``obj`` is a valid line."""
    instance: Any = obj  # any JSON value; the stubs want their own JSON type
    validator = _validator()
    if validator.is_valid(instance):
        return
    # ``oneOf`` only says "not valid under any of the given schemas"; when the
    # ``message`` names a known definition, that definition's errors say more.
    name = obj.get("message") if isinstance(obj, dict) else None
    definitions = _schema()["$defs"]
    if isinstance(name, str) and name in definitions:
        validator = validator.evolve(schema=definitions[name])
    error = best_match(validator.iter_errors(instance))
    assert error is not None
    path = "/".join(str(part) for part in error.absolute_path) or "(the object)"
    raise AssertionError(f"not a valid wire message at {path}: {error.message}: {obj!r}")
