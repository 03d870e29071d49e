"""How long a SIP Server stub process takes to start, against a bare Twisted start.

    python bench/bench_stub_start.py [--runs N] [--python PATH] [--stub PATH]

Plain Python, standing alone (no project import): run it with the interpreter of the
environment the stub is installed in (``.venv/bin/python bench/bench_stub_start.py``).
It prints the median wall time of ``--runs`` runs (10 by default) of:

- **bare**: ``python -c "import twisted.internet.reactor"``, from spawn to exit;
- **stub**: ``sipserver-stub FIXTURE --lca tcp:127.0.0.1:PORT``, from spawn until its
  first line (``RequestRegisterApplication``) arrives on a socket listening at PORT;
  the stub is then killed;

and the ratio stub / bare. Each command is printed as run. The two are run in turn,
so that a busy moment of the machine hits both alike.
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIXTURE = """\
application: SIPS_A
host: host-a
mode: primary
sip-port: 0
"""


def time_bare(python: str) -> float:
    """Seconds from spawn to exit of a Python that only imports the reactor."""
    started = time.perf_counter()
    subprocess.run([python, "-c", "import twisted.internet.reactor"], check=True)
    return time.perf_counter() - started


def time_stub(stub: str, fixture: str, timeout: float = 30.0) -> float:
    """Seconds from spawn of a stub until its first line reaches our listening socket."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        command = [stub, fixture, "--lca", f"tcp:127.0.0.1:{port}"]
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            connection, _ = _accept(server, process, timeout)
            with connection:
                data = b""
                while b"\n" not in data:
                    chunk = connection.recv(4096)
                    if not chunk:
                        raise RuntimeError(f"the stub closed the connection: {data!r}")
                    data += chunk
                elapsed = time.perf_counter() - started
            if b"RequestRegisterApplication" not in data:
                raise RuntimeError(f"unexpected first line from the stub: {data!r}")
            return elapsed
        finally:
            process.kill()
            process.wait()
            if process.stderr is not None:
                process.stderr.close()


def _accept(
    server: socket.socket, process: subprocess.Popen[bytes], timeout: float
) -> tuple[socket.socket, object]:
    with selectors.DefaultSelector() as selector:
        selector.register(server, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while not selector.select(timeout=0.05):
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"the stub exited with {process.returncode}: {error}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no connection from the stub in {timeout} s")
    return server.accept()


def main() -> None:
    bin_dir = Path(sys.executable).parent
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--python", default=sys.executable, help="default: this interpreter")
    p.add_argument("--stub", default=str(bin_dir / "sipserver-stub"), help="default: %(default)s")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        fixture = os.path.join(folder, "primary.yaml")
        Path(fixture).write_text(FIXTURE, encoding="utf-8")
        time_stub(args.stub, fixture)  # warm the file cache and the .pyc files once
        time_bare(args.python)
        bare: list[float] = []
        stub: list[float] = []
        for _ in range(args.runs):  # interleaved, so a busy moment hits both alike
            bare.append(time_bare(args.python))
            stub.append(time_stub(args.stub, fixture))
    bare_median = statistics.median(bare)
    stub_median = statistics.median(stub)
    print(f'bare:  {args.python} -c "import twisted.internet.reactor"')
    print(f"       median of {args.runs}: {bare_median * 1000:.1f} ms (spawn to exit)")
    print(f"stub:  {args.stub} FIXTURE --lca tcp:127.0.0.1:PORT")
    print(f"       median of {args.runs}: {stub_median * 1000:.1f} ms (spawn to its first line)")
    print(f"ratio: {stub_median / bare_median:.2f}x")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("note:  PYTHONDONTWRITEBYTECODE is set: modules without a cached .pyc (an")
        print("       editable install's) are compiled from source at every start")


if __name__ == "__main__":
    main()
