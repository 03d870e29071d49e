"""The layering the folder list promises, and each package's public names.

The shared leaf (``lca_common``) depends on neither the emulator nor the stub; the
stub depends only on the leaf; the emulator's core never imports the stub; only the
harness, the entry points and the pytest plugin know both.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KNOWS_BOTH = ("lca_emulator/harness/", "lca_emulator/cli/", "lca_emulator/pytest_plugin.py")


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports, at any depth (lazy imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.add(node.module)
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_importing_the_stub_loads_no_emulator_module() -> None:
    """``import sipserver_stub`` (and its command line) loads the shared leaf only."""
    code = (
        "import sys, sipserver_stub, sipserver_stub.cli; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('lca_emulator'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    script = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return set(result.stdout.splitlines()[-1].split())


def test_stub_help_loads_neither_twisted_nor_yaml() -> None:
    """``sipserver-stub --help`` answers from argparse alone: no Twisted, YAML or protocol."""
    loaded = loaded_after(
        "import contextlib, io\n"
        "from sipserver_stub.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])"
    )
    assert "sipserver_stub.cli" in loaded
    heavy = ("twisted", "yaml", "automat", "lca_common.protocol", "lca_common.yamlsource")
    assert not {m for m in loaded if m.startswith((*heavy, "importlib.metadata"))}


@pytest.mark.parametrize("module", ["sipserver_stub.cli", "lca_emulator.cli"])
def test_version_is_looked_up_only_when_asked(
    module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--version`` prints the command and the installed version on stdout, and exits 0;
    building the parser (at every start) does not look it up."""
    from importlib import metadata

    parser = importlib.import_module(module).parser()
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["--version"])
    assert exited.value.code in (0, None)
    assert capsys.readouterr().out == f"{parser.prog} {metadata.version('lca-emulator')}\n"
    loaded = loaded_after(f"import {module}\n{module}.parser()")
    assert not {m for m in loaded if m.startswith("importlib.metadata")}


def test_the_leaf_loads_nothing_for_its_rare_paths() -> None:
    """Speaking the protocol and reading YAML load neither importlib.resources (the schema)
    nor difflib (suggestions in errors): a stub start uses neither."""
    loaded = loaded_after("import lca_common.protocol.framing, lca_common.yamlsource")
    assert not {m for m in loaded if m.startswith(("importlib.resources", "difflib"))}


def test_a_virtual_time_run_loads_no_process_machinery() -> None:
    """``lca-emulator run`` in virtual time loads neither the fork servers, the relays nor
    the report page: only wall-clock runs and ``--html`` use them."""
    scenario = ROOT / "fixtures" / "ha" / "scenario_primary_fails_backup_unavailable.yaml"
    loaded = loaded_after(
        "import contextlib, io\n"
        "from lca_emulator.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    main(['run', '-q', {str(scenario)!r}])"
    )
    assert "lca_emulator.harness.runner" in loaded
    process_only = (
        "lca_common.forkserver",
        "lca_emulator.lca.forkserver",
        "sipserver_stub.forkserver",
        "lca_emulator.harness.relay",
        "lca_emulator.web",
    )
    assert not {m for m in loaded if m.startswith(process_only)}


@pytest.mark.parametrize("path", sources("sipserver_stub"), ids=relative)
def test_stub_imports_only_the_leaf(path: Path) -> None:
    """No stub module imports the emulator."""
    assert not {m for m in imported_modules(path) if m.startswith("lca_emulator")}


@pytest.mark.parametrize("path", sources("lca_common"), ids=relative)
def test_leaf_imports_neither_side(path: Path) -> None:
    """The shared leaf imports neither the emulator nor the stub."""
    assert not {
        m for m in imported_modules(path) if m.startswith(("lca_emulator", "sipserver_stub"))
    }


@pytest.mark.parametrize(
    "path",
    [p for p in sources("lca_emulator") if not relative(p).startswith(KNOWS_BOTH)],
    ids=relative,
)
def test_emulator_core_does_not_know_the_stub(path: Path) -> None:
    """Outside the harness, the entry points and the pytest plugin, nothing imports the stub."""
    assert not {m for m in imported_modules(path) if m.startswith("sipserver_stub")}


PUBLIC_NAMES = {
    "lca_common": [],
    "lca_common.protocol": [
        "APPLICATION_TO_LCA",
        "CLIENT_TO_SCS",
        "LCA_TO_APPLICATION",
        "MAX_LINE_LENGTH",
        "SCS_TO_CLIENT",
        "ApplicationStatus",
        "ErrorCode",
        "EventApplicationInfo",
        "EventApplicationRegistered",
        "EventChangeExecutionMode",
        "EventError",
        "EventOk",
        "EventSuspendApplication",
        "EventSwitchover",
        "EventSwitchoverRefused",
        "ExecutionMode",
        "FramingError",
        "Message",
        "MessageError",
        "ProtocolError",
        "RequestEvent",
        "RequestGetApplicationInfo",
        "RequestHeartbeat",
        "RequestRegisterApplication",
        "RequestRestartApplication",
        "RequestStartApplication",
        "RequestStopApplication",
        "RequestSubscribe",
        "RequestSwitchover",
        "RequestUpdateStatus",
        "ResponseExecutionModeChanged",
        "decode",
        "encode",
        "json_schema",
    ],
    "lca_emulator": [
        "ApplicationRecord",
        "ApplicationSpec",
        "ApplicationStatus",
        "ExecutionMode",
        "HaPair",
        "HaPairMachine",
        "JournalEntry",
        "JournalEvent",
        "ManagementLayer",
        "PairState",
        "RecordChange",
        "StatusJournal",
    ],
    "lca_emulator.testing": [
        "ConnectionClosedError",
        "ManagementClient",
        "PeerTimeoutError",
        "ScriptedApplication",
    ],
    "sipserver_stub": [
        "Component",
        "ComponentPlan",
        "ComponentResult",
        "SipServerStub",
        "StubFixture",
        "TServerOptions",
        "load_fixture",
        "parse_tserver_options",
    ],
}


@pytest.mark.parametrize("package", sorted(PUBLIC_NAMES))
def test_public_names_are_pinned(package: str) -> None:
    """Each package's ``__all__`` is exactly what this test names, and every name resolves."""
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(PUBLIC_NAMES[package])
    for name in module.__all__:
        assert getattr(module, name) is not None


def test_the_schema_ships_with_the_package() -> None:
    """The protocol's JSON Schema is read from the installed package, not from docs/."""
    from lca_common.protocol import json_schema

    assert json_schema()["$schema"].startswith("https://json-schema.org/")
