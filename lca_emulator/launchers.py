"""What starts a configured application: a ``sipserver-stub`` child process."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from .processes import ChildProcess, ProcessLauncher, ProcessSpec
from .signals import MANAGED_ENV

if TYPE_CHECKING:
    from sipserver_stub.fixture import StubFixture


class StubProcessLauncher:
    """Starts each application as ``python -m sipserver_stub FIXTURE --lca ...``.

    The fixture (with any option changed since) is written to ``workdir`` first.
    ``lca`` is the client endpoint the stubs connect to; set it once listening.
    """

    def __init__(
        self,
        processes: ProcessLauncher,
        workdir: Path,
        *,
        lca: str = "",
        time_scale: float = 1.0,
    ) -> None:
        self.processes = processes
        self.workdir = workdir
        self.lca = lca
        self.time_scale = time_scale
        self._count = 0

    def launch(self, fixture: StubFixture) -> ChildProcess:
        """Write the fixture and start its stub process."""
        self._count += 1  # the name is any text; the file name must not be taken from it
        path = self.workdir / f"application-{self._count}.yaml"
        path.write_text(yaml.safe_dump(fixture.to_document(), sort_keys=False), encoding="utf-8")
        argv: tuple[str, ...] = (sys.executable, "-m", "sipserver_stub", str(path))
        argv += ("--lca", self.lca, "--time-scale", repr(self.time_scale))
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{MANAGED_ENV: "1"})
        return self.processes.start(fixture.application, ProcessSpec(argv=argv, env=env))
