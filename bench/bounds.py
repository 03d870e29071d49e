"""Issue 12's acceptance run: ``serve`` under hostile traffic, the commands under bad files.

    .venv/bin/python bench/bounds.py [--only serve|files] [--frames N] [--changes N]
                                     [--idle N] [--jobs N] [--seed N]

Plain Python and the project (no pytest).  Two parts, each figure printed beside its
limit; the exit code is 1 when a limit is broken.

**serve**: ``lca-emulator serve`` as a process on loopback port 0, its open-file limit
lowered to 1,024 (``RLIMIT_NOFILE``, set in the child), then three phases:

1. fuzz: 100,000 random frames, valid and invalid, over many connections to both ports;
2. a subscriber that never reads while an application makes 100,000 status changes;
3. 2,000 idle connections (half on each port) that never send a byte, held open.

All along a normal client, a process of its own, connects to the LCA port and registers
(``RequestRegisterApplication`` -> ``EventApplicationRegistered``) and makes a
request/reply round trip on the SCS port (``RequestGetApplicationInfo``), each on a new
connection, every 50 ms.  Limits: no crash, no traceback in serve's log, serve's resident
memory (RSS) grows less than 30 MB, and the normal client is served within 100 ms
throughout (max and p99 per phase).

**files**: 86 malformed files, made in a temporary folder from the table :data:`BAD_FILES`
(alias bombs, FIFOs, device files, directories, control characters, huge files, bad
UTF-8, wrong types, deep nesting...), each given to ``lca-emulator run FILE``,
``lca-emulator serve --config FILE`` and ``sipserver-stub FILE``.  Limit: every one exits
2 within 2 s, naming the file and the line (where the fault has a line), no traceback.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import multiprocessing
import os
import queue
import random
import re
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

BIN: Final = Path(sys.executable).parent
LCA_EMULATOR: Final = str(BIN / "lca-emulator")
SIPSERVER_STUB: Final = str(BIN / "sipserver-stub")

# -- the limits (issue 12, "Done when") ---------------------------------------------------

FRAMES: Final = 100_000
CHANGES: Final = 100_000
IDLE: Final = 2_000
NOFILE: Final = 1_024
RSS_GROWTH_MB: Final = 30.0
LATENCY_S: Final = 0.100
FILE_EXIT_S: Final = 2.0
BAD_FILE_COUNT: Final = 86


# == part 1: malformed files ===================================================================

ANY_LINE: Final = -1
"""A row's ``line`` when the file has a line but which one depends on the command."""

RUN, SERVE, STUB = "run", "serve --config", "sipserver-stub"
COMMANDS: Final = (RUN, SERVE, STUB)

SCENARIO: Final = """\
name: bounds
duration: 60
applications:
  - application: SIPS_A
    host: host-a
    mode: primary
expect:
  - {application: SIPS_A, status: RUNNING, within: 5}
"""
"""A valid scenario (lines 1-8), the base of rows that break one thing in it."""

FIXTURE: Final = """\
application: SIPS_A
host: host-a
mode: primary
sip-port: 0
"""
"""A valid stub fixture (lines 1-4)."""

SITE: Final = """\
name: site
applications:
  - application: SIPS_A
    host: host-a
    mode: primary
"""
"""A valid ``serve --config`` file (lines 1-5)."""

Build = Callable[[Path], Path]
"""Makes a row's file in a folder and returns the path to give the commands."""


@dataclass(frozen=True)
class BadFile:
    """One malformed file: how it is made, what is wrong, and the line of the fault.

    ``line``: the line every command (or those in ``exact``) must name; :data:`ANY_LINE`
    when the line depends on the command; ``None`` when the fault has no line (a FIFO).
    The commands not in ``exact`` must name some line when ``line`` is not ``None``.
    """

    name: str
    what: str
    build: Build
    line: int | None
    exact: frozenset[str] = frozenset(COMMANDS)


def text(name: str, content: str | bytes) -> Build:
    """A regular file holding ``content`` (str: UTF-8)."""

    def build(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return build


def special(name: str, make: Callable[[Path], object]) -> Build:
    """A file made by ``make(path)`` (a FIFO, a symlink, a socket...)."""

    def build(folder: Path) -> Path:
        path = folder / name
        make(path)
        return path

    return build


def with_extra(main: Build, *others: Build) -> Build:
    """``main``'s file, with ``others`` made beside it (files it refers to)."""

    def build(folder: Path) -> Path:
        for other in others:
            other(folder)
        return main(folder)

    return build


KEEP_OPEN: list[Any] = []
"""What a row holds open while the commands run (a FIFO's writer, a listening socket)."""


def fifo_with_writer(path: Path) -> None:
    os.mkfifo(path)
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)  # a writer that never closes
    os.write(fd, b"name: fed through a pipe\n")
    KEEP_OPEN.append(fd)


def folder_with_fifo(path: Path) -> None:
    path.mkdir()
    os.mkfifo(path / "scenario.yaml")


def unix_socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.listen(1)
    KEEP_OPEN.append(sock)


def symlink_to(target: str) -> Callable[[Path], None]:
    return lambda path: path.symlink_to(target)


def sparse(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with path.open("wb") as f:
            f.truncate(size)

    return make


def scenario_with(line: int, replacement: str) -> str:
    """:data:`SCENARIO` with its line ``line`` replaced (or, past its end, appended)."""
    lines = SCENARIO.splitlines()
    if line <= len(lines):
        lines[line - 1] = replacement
    else:
        lines.append(replacement)
    return "\n".join(lines) + "\n"


def nested_flow(depth: int, opening: str, closing: str) -> str:
    return "name: deep\nduration: 60\nexpect: " + opening * depth + closing * depth + "\n"


def billion_laughs(mapping: bool) -> str:
    lines = ["name: lol", "duration: 60"]
    lines.append('a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]')
    for level in range(1, 10):
        refs = ",".join(f"*a{level - 1}" for _ in range(10))
        if mapping:
            refs = ",".join(f"k{n}: *a{level - 1}" for n in range(10))
            lines.append(f"a{level}: &a{level} {{{refs}}}")
        else:
            lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


REF: Final = "duration: 60\napplications:\n  - fixture: "
"""A scenario whose one application is a fixture file (the path follows, on line 3)."""


def wide_fixture(options: int) -> str:
    """A fixture with ``options`` [TServer] options, then a component with a bad time."""
    lines = [FIXTURE.rstrip("\n"), "options:", "  TServer:"]
    lines += [f"    o{n}: {n}" for n in range(options)]
    lines += ["components:", "  t-controller: {result: fail, after: -1}"]
    return "\n".join(lines) + "\n"


def many_applications(count: int) -> str:
    """A scenario with ``count`` applications whose last one repeats the first's name."""
    lines = ["duration: 60", "applications:"]
    lines += [f"  - {{application: A{n}}}" for n in range(count - 1)]
    lines.append("  - {application: A0}")
    return "\n".join(lines) + "\n"


MIB: Final = 1 << 20

ONLY_RUN: Final = frozenset({RUN})
ONLY_SERVE: Final = frozenset({SERVE})
ONLY_STUB: Final = frozenset({STUB})
S = scenario_with

BAD_FILES: Final[tuple[BadFile, ...]] = (
    # -- not a regular file, or not there: no line --------------------------------------
    BadFile("missing", "a path that does not exist", lambda f: f / "missing.yaml", None),
    BadFile("directory", "a directory", special("dir.yaml", Path.mkdir), None),
    BadFile(
        "folder-with-fifo",
        "a folder holding a FIFO named scenario.yaml",
        special("folder", folder_with_fifo),
        None,
    ),
    BadFile("fifo", "a FIFO with no writer", special("pipe.yaml", os.mkfifo), None),
    BadFile(
        "fifo-writer", "a FIFO whose writer stays", special("fed.yaml", fifo_with_writer), None
    ),
    BadFile(
        "dev-zero", "a symlink to /dev/zero", special("zero.yaml", symlink_to("/dev/zero")), None
    ),
    BadFile(
        "dev-null", "a symlink to /dev/null", special("null.yaml", symlink_to("/dev/null")), None
    ),
    BadFile("socket", "a listening UNIX socket", special("sock.yaml", unix_socket), None),
    BadFile(
        "symlink-loop",
        "a symlink loop",
        with_extra(
            special("loop-a.yaml", symlink_to("loop-b.yaml")),
            special("loop-b.yaml", symlink_to("loop-a.yaml")),
        ),
        None,
    ),
    BadFile("dangling", "a symlink to nothing", special("gone.yaml", symlink_to("no.yaml")), None),
    BadFile(
        "through-a-file",
        "a path through a regular file",
        with_extra(lambda f: f / "plain.yaml" / "inner.yaml", text("plain.yaml", SCENARIO)),
        None,
    ),
    BadFile("name-too-long", "a file name of 300 bytes", lambda f: f / ("n" * 295 + ".yaml"), None),
    BadFile("huge", "1 MiB and 1 byte of comments", text("huge.yaml", b"#" * MIB + b"\n"), None),
    BadFile("sparse", "a sparse file of 4 GiB", special("sparse.yaml", sparse(4 << 30)), None),
    BadFile("empty", "an empty file", text("empty.yaml", b""), None),
    # -- not UTF-8 -------------------------------------------------------------------------
    BadFile(
        "bad-utf8",
        "a 0xff byte",
        text("ff.yaml", S(5, "    host: host-a").encode() + b"#\xff\n"),
        9,
    ),
    BadFile(
        "latin-1",
        "Latin-1 text (0xe9)",
        text("latin1.yaml", S(1, "name: caf\xe9").encode("latin-1")),
        1,
    ),
    BadFile(
        "truncated-utf8",
        "a character cut at the end",
        text("cut.yaml", SCENARIO.encode() + b"# \xe2\x82"),
        9,
    ),
    BadFile(
        "overlong-utf8",
        "an overlong encoding",
        text("long.yaml", S(3, "applications: # \xc0\xaf").encode("latin-1")),
        3,
    ),
    BadFile(
        "surrogate-utf8",
        "a surrogate in UTF-8",
        text("sur.yaml", S(6, "    mode: primary").encode().replace(b"primary", b"pr\xed\xa0\x80")),
        6,
    ),
    BadFile(
        "utf-16", "UTF-16 with a byte-order mark", text("utf16.yaml", SCENARIO.encode("utf-16")), 1
    ),
    BadFile(
        "surrogate-escape",
        'a "\\ud800" escape',
        text("esc.yaml", S(4, '  - application: "S\\ud800"')),
        4,
        ONLY_RUN,
    ),
    # -- control characters ------------------------------------------------------------
    BadFile("nul", "a NUL", text("nul.yaml", S(5, "    host: host\0a")), 5),
    BadFile("bel", "a BEL", text("bel.yaml", S(2, "duration: 6\a0")), 2),
    BadFile(
        "ansi-escape",
        "an ANSI colour escape",
        text("ansi.yaml", S(4, "  - application: \x1b[31mA")),
        4,
    ),
    BadFile("backspace", "a backspace in a key", text("bs.yaml", S(6, "    mo\bde: primary")), 6),
    BadFile("form-feed", "a form feed", text("ff2.yaml", S(3, "applications:\f")), 3),
    BadFile("c1", "a C1 control (U+0080)", text("c1.yaml", S(5, "    host: host\x80a")), 5),
    BadFile("noncharacter", "a noncharacter (U+FFFE)", text("fffe.yaml", S(1, "name: \ufffe")), 1),
    BadFile(
        "cr-lines",
        "CR line ends, a NUL on line 3",
        text("cr.yaml", "name: a\rduration: 6\rx: \0\r"),
        3,
    ),
    BadFile(
        "ls-lines",
        "LS and NEL line ends, a NUL on line 3",
        text("ls.yaml", "name: a\u2028b: 1\x85c: \0\n"),
        3,
    ),
    # -- YAML syntax -------------------------------------------------------------------
    BadFile(
        "unclosed-flow",
        "an unclosed flow mapping",
        text("flow.yaml", S(8, "  - {application: SIPS_A")),
        9,
    ),
    BadFile(
        "unclosed-quote", "an unclosed quote", text("quote.yaml", S(5, '    host: "host-a')), 9
    ),
    BadFile(
        "indentation",
        "a value indented wrongly",
        text("indent.yaml", S(5, "      host: host-a")),
        5,
    ),
    BadFile("tab-indent", "a tab used to indent", text("tab.yaml", S(5, "\thost: host-a")), 5),
    BadFile(
        "duplicate-key",
        "a key given twice",
        text("dup.yaml", S(5, "    mode: primary")),
        6,
        ONLY_RUN,
    ),
    BadFile(
        "two-documents", "two YAML documents", text("docs.yaml", SCENARIO + "---\nname: two\n"), 9
    ),
    BadFile(
        "undefined-alias",
        "an alias to no anchor",
        text("alias.yaml", S(5, "    host: *nowhere")),
        5,
    ),
    BadFile(
        "recursive-alias",
        "an alias inside its anchor",
        text("rec.yaml", S(9, "loop: &l [1, *l]")),
        9,
    ),
    BadFile(
        "merge-key",
        "a merge key (<<)",
        text("merge.yaml", "a: &a {x: 1}\nb: {<<: *a}\n"),
        1,
        ONLY_STUB,
    ),
    BadFile(
        "python-tag",
        "a !!python/object tag",
        text("py.yaml", S(5, '    host: !!python/object/apply:os.system ["id"]')),
        5,
        ONLY_RUN,
    ),
    BadFile(
        "local-tag",
        "an unknown tag (!include)",
        text("include.yaml", S(5, "    host: !include x.yaml")),
        5,
        ONLY_RUN,
    ),
    BadFile(
        "bad-binary",
        "!!binary that is not base64",
        text("binary.yaml", S(1, 'name: !!binary "@@@"')),
        1,
        frozenset({RUN, STUB}),
    ),
    BadFile("bad-int-tag", "!!int abc", text("int.yaml", S(2, "duration: !!int abc")), 2, ONLY_RUN),
    BadFile(
        "complex-key", "a list as a key", text("cplx.yaml", S(9, "? [a, b]\n: c")), 9, ONLY_RUN
    ),
    BadFile("null-key", "a null key", text("nullkey.yaml", SCENARIO + "~: nothing\n"), 9, ONLY_RUN),
    BadFile("yaml-2", "a %YAML 2.0 directive", text("v2.yaml", "%YAML 2.0\n---\n" + SCENARIO), 1),
    BadFile(
        "scalar-document", "a document that is a string", text("scalar.yaml", "just a line\n"), 1
    ),
    BadFile(
        "list-document", "a document that is a list", text("list.yaml", "- SIPS_A\n- SIPS_B\n"), 1
    ),
    BadFile(
        "long-line",
        "a 900 KB line, then a bad key",
        text("ll.yaml", "name: " + "x" * 900_000 + "\nduration: 6\nbogus: 1\n"),
        3,
        ONLY_RUN,
    ),
    BadFile(
        "many-lines",
        "100,000 comment lines, then a tab",
        text("lines.yaml", SCENARIO + "#\n" * 100_000 + "\tx: 1\n"),
        100_009,
    ),
    # -- nesting, aliases and size -------------------------------------------------------
    BadFile(
        "deep-flow-list",
        "lists nested 100,000 deep",
        text("dl.yaml", nested_flow(100_000, "[", "]")),
        3,
    ),
    BadFile(
        "deep-flow-map",
        "mappings nested 100,000 deep",
        text("dm.yaml", nested_flow(100_000, "{a: ", "}")),
        3,
    ),
    BadFile(
        "deep-block-map",
        "block mappings nested 1,000 deep",
        text("db.yaml", "".join(" " * n + f"k{n}:\n" for n in range(1000)) + " " * 1000 + "x\n"),
        101,  # the 101st level
    ),
    BadFile(
        "deep-block-list",
        "block lists nested 10,000 deep",
        text("ds.yaml", "- " * 10_000 + "x\n"),
        1,
    ),
    BadFile(
        "billion-laughs",
        "a billion laughs (lists)",
        text("lol.yaml", billion_laughs(mapping=False)),
        6,
    ),
    BadFile(
        "billion-laughs-map",
        "a billion laughs (mappings)",
        text("lolmap.yaml", billion_laughs(mapping=True)),
        6,
    ),
    BadFile(
        "alias-fan",
        "an 11-node anchor aliased 1,000 times",
        text("fan.yaml", "a: &b [1,2,3,4,5,6,7,8,9,10]\nfan: [" + ",*b" * 1000 + "]\n"),
        2,
    ),
    BadFile(
        "wide-options",
        "30,000 options (60,000 nodes)",
        text("wide.yaml", wide_fixture(30_000)),
        5_000,  # the 10,001st node
        ONLY_STUB,
    ),
    BadFile(
        "many-applications",
        "3,000 applications (9,003 nodes), the last a duplicate",
        text("many.yaml", many_applications(3_000)),
        3_002,
        ONLY_RUN,
    ),
    BadFile(
        "flat-list",
        "a list of 500,000 numbers (1 MB on one line)",
        text("flat.yaml", "expect: [" + ",".join(["1"] * 500_000) + "]\n"),
        1,
    ),
    BadFile(
        "escape-key",
        'a key that is an ANSI escape ("\\e[2J")',
        text("esckey.yaml", '"\\e[2Jx": 1\n' + FIXTURE),
        1,
    ),
    # -- values of the wrong type or out of range ---------------------------------------
    BadFile(
        "huge-integer",
        "a 5,000-digit duration",
        text("bigint.yaml", S(2, "duration: " + "9" * 5000)),
        2,
        ONLY_RUN,
    ),
    BadFile(
        "float-overflow",
        "duration: 1.0e+400",
        text("inf.yaml", S(2, "duration: 1.0e+400")),
        2,
        ONLY_RUN,
    ),
    BadFile("nan", "duration: .nan", text("nan.yaml", S(2, "duration: .nan")), 2, ONLY_RUN),
    BadFile(
        "string-duration",
        "duration: 1e9 (a string in YAML 1.1)",
        text("str.yaml", S(2, "duration: 1e9")),
        2,
        ONLY_RUN,
    ),
    BadFile(
        "tiny-heartbeat",
        "heartbeat: 1.0e-300",
        text("hb.yaml", S(3, "heartbeat: 1.0e-300\napplications:")),
        3,
        ONLY_RUN,
    ),
    BadFile(
        "endless",
        "duration: 1.0e+9 with heartbeat: 10",
        text("endless.yaml", S(2, "duration: 1.0e+9\nheartbeat: 10")),
        2,
        ONLY_RUN,
    ),
    BadFile(
        "applications-int",
        "applications: 5",
        text("apps.yaml", "duration: 60\napplications: 5\n"),
        2,
        ONLY_RUN,
    ),
    BadFile(
        "event-after-end",
        "an event after the end",
        text("late.yaml", S(7, "events:\n  - {at: 61, kill: SIPS_A}")),
        8,
        ONLY_RUN,
    ),
    BadFile(
        "unknown-expected",
        "an expectation about no one",
        text("who.yaml", S(8, "  - {application: X, status: RUNNING, within: 5}")),
        8,
        ONLY_RUN,
    ),
    BadFile(
        "mode-int",
        "mode: 7",
        text("mode7.yaml", FIXTURE.replace("mode: primary", "mode: 7")),
        3,
        ONLY_STUB,
    ),
    BadFile(
        "options-list",
        "options: [a, b]",
        text("optlist.yaml", FIXTURE + "options: [a, b]\n"),
        5,
        ONLY_STUB,
    ),
    BadFile(
        "option-value-list",
        "an option whose value is a list",
        text("optval.yaml", FIXTURE + "options:\n  TServer:\n    backup-init-check: [1]\n"),
        7,
        ONLY_STUB,
    ),
    BadFile(
        "long-name",
        "an application name of 300 bytes",
        text("longname.yaml", FIXTURE.replace("SIPS_A", "S" * 300)),
        1,
        ONLY_STUB,
    ),
    BadFile(
        "unknown-key",
        "a misspelt key (hots)",
        text("hots.yaml", FIXTURE.replace("host:", "hots:")),
        2,
        ONLY_STUB,
    ),
    BadFile(
        "site-unknown-pair",
        "an HA pair of an unknown application",
        text("pair.yaml", SITE + "ha-pairs:\n  - {primary: SIPS_A, backup: X}\n"),
        7,
        ONLY_SERVE,
    ),
    BadFile(
        "site-bad-boolean",
        "scs: {promote-unavailable-backup: maybe}",
        text("scs.yaml", SITE + "scs: {promote-unavailable-backup: maybe}\n"),
        6,
        ONLY_SERVE,
    ),
    BadFile(
        "site-long-host",
        "a host of 300 bytes in a site",
        text("host.yaml", SITE.replace("host-a", "h" * 300)),
        4,
        ONLY_SERVE,
    ),
    # -- files that a file refers to: the error is at the reference ---------------------
    BadFile(
        "fixture-fifo",
        "a fixture that is a FIFO",
        with_extra(text("rf.yaml", REF + "r.fifo\n"), special("r.fifo", os.mkfifo)),
        3,
        ONLY_RUN,
    ),
    BadFile(
        "fixture-dev-zero",
        "a fixture that is /dev/zero",
        text("rz.yaml", REF + "/dev/zero\n"),
        3,
        ONLY_RUN,
    ),
    BadFile(
        "fixture-directory",
        "a fixture that is a directory",
        text("rd.yaml", REF + ".\n"),
        3,
        ONLY_RUN,
    ),
    BadFile(
        "fixture-huge",
        "a fixture over 1 MiB",
        with_extra(text("rh.yaml", REF + "big.fixture\n"), text("big.fixture", b"#" * MIB + b"\n")),
        3,
        ONLY_RUN,
    ),
    BadFile(
        "fixture-name-too-long",
        "a fixture name of 300 bytes",
        text("rn.yaml", REF + "n" * 300 + "\n"),
        3,
        ONLY_RUN,
    ),
    BadFile(
        "fixture-nul",
        'a fixture name with a NUL ("\\0")',
        text("r0.yaml", REF + '"a\\0b.yaml"\n'),
        3,
        ONLY_RUN,
    ),
    BadFile(
        "fixture-itself",
        "a site whose fixture is itself",
        text("self.yaml", "applications:\n  - fixture: self.yaml\n"),
        1,
        ONLY_SERVE,
    ),
)
"""The malformed files: every one is given to each of :data:`COMMANDS`."""


def command_line(command: str, path: Path) -> list[str]:
    """How ``command`` is given the file ``path`` (port 0: a file accepted by mistake
    starts a server that listens nowhere in particular, and is stopped at the deadline)."""
    if command == RUN:
        return [LCA_EMULATOR, "run", "-q", str(path)]
    if command == SERVE:
        return [
            LCA_EMULATOR,
            "serve",
            "--config",
            str(path),
            "--lca",
            "tcp:0:interface=127.0.0.1",
            "--scs",
            "tcp:0:interface=127.0.0.1",
        ]
    return [SIPSERVER_STUB, str(path), "--lca", "tcp:127.0.0.1:1"]


@dataclass(frozen=True)
class FileOutcome:
    """What one command did with one bad file."""

    row: BadFile
    command: str
    path: Path
    code: int | None
    seconds: float
    stderr: str

    @property
    def named_line(self) -> int | None:
        """The line the error names after the file (``FILE:LINE:``), if any."""
        found = re.search(re.escape(str(self.path)) + r":(\d+):", self.stderr)
        return int(found.group(1)) if found else None

    def problems(self) -> list[str]:
        """What is wrong with the outcome (empty: it met every limit)."""
        found = []
        if self.code != 2:
            found.append("killed at the deadline" if self.code is None else f"exit {self.code}")
        if "Traceback" in self.stderr:
            found.append("traceback")
        if str(self.path) not in self.stderr:
            found.append("file not named")
        line, wanted = self.named_line, self.row.line
        if wanted is not None:
            if line is None:
                found.append("no line")
            elif wanted != ANY_LINE and self.command in self.row.exact and line != wanted:
                found.append(f"line {line}, not {wanted}")
        if re.search(r"[\x00-\x08\x0b-\x1f\x7f]", self.stderr):
            found.append("raw control characters in its output")
        return found


def run_bad_file(row: BadFile, command: str, path: Path, deadline: float) -> FileOutcome:
    started = time.monotonic()
    proc = subprocess.Popen(
        command_line(command, path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=deadline)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        code = None
    seconds = time.monotonic() - started
    return FileOutcome(row, command, path, code, seconds, err.decode(errors="replace"))


def make_bad_files(folder: Path, rows: Sequence[BadFile]) -> list[tuple[BadFile, Path]]:
    """Each row's file, in a folder of its own under ``folder``."""
    made = []
    for index, row in enumerate(rows):
        home = folder / f"{index:02d}"
        home.mkdir()
        made.append((row, row.build(home)))
    return made


def check_files(jobs: int, deadline: float) -> list[FileOutcome]:
    with tempfile.TemporaryDirectory(prefix="lca-bounds-") as tmp:
        try:
            made = make_bad_files(Path(tmp), BAD_FILES)
            work = [(row, command, path) for row, path in made for command in COMMANDS]

            def one(job: tuple[BadFile, str, Path]) -> FileOutcome:
                row, command, path = job
                return run_bad_file(row, command, path, deadline)

            with ThreadPoolExecutor(jobs) as pool:
                return list(pool.map(one, work))
        finally:
            release_held()


def release_held() -> None:
    """Close what the rows hold open (a FIFO's writer, a listening socket)."""
    for held in KEEP_OPEN:
        if isinstance(held, int):
            os.close(held)
        else:
            held.close()
    KEEP_OPEN.clear()


# == part 2: serve under hostile traffic ==========================================================

Json = dict[str, Any]

PROBE_EVERY: Final = 0.05
"""Seconds between two of the normal client's visits."""
HOLD_IDLE: Final = 5.0
"""Seconds the idle connections are held open while the normal client keeps visiting."""
TIMEOUT: Final = 20.0
"""Seconds any single wait of this script may take."""

MESSAGES: Final = [
    "RequestRegisterApplication",
    "RequestUpdateStatus",
    "ResponseExecutionModeChanged",
    "RequestHeartbeat",
    "RequestGetApplicationInfo",
    "RequestSubscribe",
    "RequestStartApplication",
    "RequestStopApplication",
    "RequestRestartApplication",
    "RequestSwitchover",
    "RequestEvent",
    "EventOk",
    "RequestKillApplication",
]
STATUSES: Final = ["UNKNOWN", "STOPPED", "INITIALIZING", "RUNNING", "SERVICE_UNAVAILABLE", "READY"]
MODES: Final = ["PRIMARY", "BACKUP", "EXITING", "UNKNOWN", "primary"]


def line(message: Json) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def _limit_files() -> None:
    """In serve's process, before it runs: the open-file limit of a default Linux login."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = NOFILE if hard == resource.RLIM_INFINITY else min(NOFILE, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (cap, cap))
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Serve:
    """``lca-emulator serve`` as a process: its addresses, its log, its memory."""

    proc: subprocess.Popen[bytes]
    log: Path
    lca: tuple[str, int]
    scs: tuple[str, int]

    @classmethod
    def start(cls, workdir: Path) -> Serve:
        log = workdir / "serve.log"
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [
                    LCA_EMULATOR,
                    "serve",
                    "--lca",
                    "tcp:0:interface=127.0.0.1",
                    "--scs",
                    "tcp:0:interface=127.0.0.1",
                    "--journal",
                    str(workdir / "journal.jsonl"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                preexec_fn=_limit_files,
                start_new_session=True,
            )
        assert proc.stdout is not None
        addresses = []
        for _ in range(2):
            printed = proc.stdout.readline().decode()
            if not printed:
                raise SystemExit(f"serve did not start:\n{log.read_text()}")
            host, port = printed.rsplit(" ", 1)[1].strip().rsplit(":", 1)
            addresses.append((host, int(port)))
        return cls(proc, log, addresses[0], addresses[1])

    def rss_mb(self) -> float:
        """Resident memory now (VmRSS), in MB; 0 once the process is gone."""
        with contextlib.suppress(OSError):
            for field_line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                key, _, value = field_line.partition(":")
                if key == "VmRSS":
                    return int(value.split()[0]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        """CPU time serve has used so far (user and system)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def open_files(self) -> int:
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        except OSError:
            return -1

    def stop(self) -> int:
        """Ctrl-C; its exit code (-9 if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()


class Lines:
    """Blocking JSON Lines over one socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.stream = sock.makefile("rb")

    @classmethod
    def connect(cls, address: tuple[str, int], timeout: float = TIMEOUT) -> Lines:
        return cls(socket.create_connection(address, timeout=timeout))

    def send(self, message: Json) -> None:
        self.sock.sendall(line(message))

    def read(self) -> Json | None:
        try:
            text = self.stream.readline()
        except OSError:
            return None
        return json.loads(text) if text else None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.close()
            self.sock.close()


# -- the normal client, a process of its own ----------------------------------------------------


@dataclass(frozen=True)
class Visit:
    """One visit of the normal client: when, each step's latency, what went wrong."""

    started: float
    register: float | None
    round_trip: float | None
    failure: str = ""


def visit(serve_lca: tuple[str, int], serve_scs: tuple[str, int], ref: int) -> Visit:
    """Register on a new LCA connection (connect to ``EventApplicationRegistered``), report
    RUNNING, then ask for the record on a new SCS connection (connect to the reply)."""
    started = time.monotonic()
    app = scs = None
    try:
        app = Lines.connect(serve_lca, timeout=5)
        app.send({"message": "RequestRegisterApplication", "ref": ref, "application": "PROBE"})
        reply = app.read()
        registered = time.monotonic()
        if reply is None or reply.get("message") != "EventApplicationRegistered":
            return Visit(started, None, None, f"register: {reply or 'closed'}")
        app.send({"message": "RequestUpdateStatus", "status": "RUNNING", "mode": "PRIMARY"})
        asked = time.monotonic()
        scs = Lines.connect(serve_scs, timeout=5)
        scs.send({"message": "RequestGetApplicationInfo", "ref": ref, "application": "PROBE"})
        answer = scs.read()
        answered = time.monotonic()
        if answer is None or answer.get("message") != "EventApplicationInfo":
            return Visit(started, registered - started, None, f"request: {answer or 'closed'}")
        return Visit(started, registered - started, answered - asked)
    except OSError as e:
        return Visit(started, None, None, f"{type(e).__name__}: {e}")
    finally:
        for client in (app, scs):
            if client is not None:
                client.close()


def probe(lca: tuple[str, int], scs: tuple[str, int], stop: Any, results: Any, parent: int) -> None:
    """In a child process, so that this script's own work cannot delay it: visit every
    PROBE_EVERY seconds until ``stop`` is set (or the script is gone); put the visits on
    ``results``."""
    visits = []
    ref = 0
    while not stop.wait(PROBE_EVERY) and os.getppid() == parent:
        ref += 1
        visits.append(visit(lca, scs, ref))
    results.put(visits)


@dataclass
class Watch:
    """The normal client's visits and serve's memory, all along the run, by phase."""

    serve: Serve
    phases: list[tuple[float, str]] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    def sample_memory(self) -> None:
        while not self.stopped.wait(0.05):
            self.rss.append(self.serve.rss_mb())

    def phase_of(self, when: float) -> str:
        names = [name for start, name in self.phases if start <= when]
        return names[-1] if names else "start"

    def by_phase(self) -> dict[str, list[Visit]]:
        found: dict[str, list[Visit]] = {name: [] for _, name in self.phases}
        for one in self.visits:
            found.setdefault(self.phase_of(one.started), []).append(one)
        return found


@contextlib.contextmanager
def watching(serve: Serve) -> Iterator[Watch]:
    watch = Watch(serve)
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    results: Any = context.Queue()
    child = context.Process(target=probe, args=(serve.lca, serve.scs, stop, results, os.getpid()))
    child.start()
    memory = threading.Thread(target=watch.sample_memory, daemon=True)
    memory.start()
    try:
        yield watch
    finally:
        stop.set()
        watch.stopped.set()
        with contextlib.suppress(queue.Empty):  # none if the probe was killed
            watch.visits = results.get(timeout=TIMEOUT)
        child.join(TIMEOUT)
        memory.join(TIMEOUT)


def phase(watch: Watch, name: str, action: Callable[[], Any]) -> Any:
    """Run one phase; print its time, and serve's share of a CPU in it (against the
    machine's load: a latency over the limit with serve far from a whole CPU is the
    machine's doing, not serve's work)."""
    watch.phases.append((time.monotonic(), name))
    started = time.monotonic()
    cpu = watch.serve.cpu_seconds()
    print(f"... {name}", flush=True)
    result = action()
    wall = time.monotonic() - started
    used = watch.serve.cpu_seconds() - cpu
    print(
        f"    {wall:.1f} s; serve used {used:.1f} s of CPU ({used / wall:.0%} of one); "
        f"load average {os.getloadavg()[0]:.2f}; serve has {watch.serve.open_files()} files "
        f"open, RSS {watch.serve.rss_mb():.1f} MB",
        flush=True,
    )
    return result


# -- phase: fuzz -------------------------------------------------------------------------------


def fuzz_name(rng: random.Random) -> Any:
    pick = rng.random()
    if pick < 0.5:
        return rng.choice(["SIPS_A", "SIPS_B", "MONITOR", "PROBE", "X", ""])
    if pick < 0.7:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(1, 40)))
    if pick < 0.85:
        return rng.choice('a"\\\x01é😀') * rng.choice([255, 256, 9000])
    return rng.choice([None, 7, -1, True, [], {"a": 1}, 1.5])


def fuzz_value(rng: random.Random, good: Sequence[Any]) -> Any:
    if rng.random() < 0.7:
        return rng.choice(good)
    return rng.choice([None, 0, -5, 2**70, "x" * rng.randrange(1, 3000), [], {}, 1e308, False])


def fuzz_frame(rng: random.Random, objects_only: bool) -> bytes:
    """One random line: mostly plausible JSON objects, some broken on purpose (with
    ``objects_only``, always a JSON object, so that the connection stays open)."""
    pick = 0.0 if objects_only else rng.random()
    if pick < 0.7:
        message: Json = {"message": fuzz_value(rng, MESSAGES)}
        for key, good in (
            ("ref", list(range(1, 10))),
            ("application", None),
            ("host", ["host-a", "h" * 300]),
            ("pid", [1, 4711, 2**31, 2**40]),
            ("status", STATUSES),
            ("mode", MODES),
            ("extra", [{"deep": [[[[1]]]]}, "x" * 100, 10**5000 if rng.random() < 0.01 else 1]),
        ):
            if rng.random() < 0.6:
                message[key] = fuzz_name(rng) if good is None else fuzz_value(rng, good)
        with contextlib.suppress(ValueError):  # an integer too long for str()
            text = json.dumps(message, ensure_ascii=rng.random() < 0.5).encode()
            if not objects_only and rng.random() < 0.1:
                text = text[: rng.randrange(len(text))]  # cut short: not JSON
            return text
        return b'{"message":"RequestHeartbeat"}'
    if pick < 0.85:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(60))).replace(b"\n", b"")
    return rng.choice([b"x" * 70_000, b"[" * 10_000, b"", b"\r", b"null", b"\xff\xfe{}"])


@dataclass
class FuzzStats:
    connections: int = 0
    frames: int = 0
    bytes_sent: int = 0
    lines_received: int = 0
    too_long: int = 0
    not_json: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    closed_by_serve: int = 0
    stuck: int = 0
    """Connections still not done (unsent frames, or no end to the replies) after 60 s."""


def fuzz(
    serve: Serve, rng: random.Random, frames: int, per_connection: int, batch: int
) -> FuzzStats:
    """``frames`` random frames, ``per_connection`` on each connection (pipelined, replies
    read as they come), ``batch`` connections open at all times, to either port at random:
    each one done is replaced at once."""
    stats = FuzzStats()
    socks: dict[socket.socket, tuple[bytearray, bytearray]] = {}
    quiet_since: dict[socket.socket, float] = {}
    sent_at: dict[socket.socket, float] = {}
    while socks or stats.frames < frames:
        while len(socks) < batch and stats.frames < frames:
            count = min(per_connection, frames - stats.frames)
            sock = socket.create_connection(rng.choice([serve.lca, serve.scs]), timeout=TIMEOUT)
            sock.setblocking(False)
            objects_only = rng.random() < 0.7
            payload = b"\n".join(fuzz_frame(rng, objects_only) for _ in range(count)) + b"\n"
            socks[sock] = (bytearray(payload), bytearray())
            quiet_since[sock] = time.monotonic()
            stats.connections += 1
            stats.frames += count
            stats.bytes_sent += len(payload)
        readable, writable = wait_for(socks, [s for s, (out, _) in socks.items() if out])
        now = time.monotonic()
        for sock in writable:
            out = socks[sock][0]
            with contextlib.suppress(BlockingIOError, ConnectionError):
                del out[: sock.send(out[:65536])]
                quiet_since[sock] = now
            if not out:
                sent_at.setdefault(sock, now)
        for sock in readable:
            try:
                chunk = sock.recv(1 << 16)
            except BlockingIOError:
                continue
            except ConnectionError:
                chunk = b""
            if not chunk:
                stats.closed_by_serve += 1
                finish(sock, socks, stats)
                continue
            socks[sock][1].extend(chunk)
            quiet_since[sock] = now
        # done once all is sent and the replies stopped (a subscriber keeps hearing of the
        # normal client's changes: it is done 1 s after its last frame went out); stuck
        # when serve stopped reading it or answering for 60 s
        for sock in list(socks):
            sent = sent_at.get(sock)
            if sent is not None and (now - quiet_since[sock] > 0.2 or now - sent > 1.0):
                finish(sock, socks, stats)
            elif now - quiet_since[sock] > 3 * TIMEOUT:
                stats.stuck += 1
                finish(sock, socks, stats)
        for gone in [sock for sock in quiet_since if sock not in socks]:
            quiet_since.pop(gone)
            sent_at.pop(gone, None)
    return stats


def wait_for(
    readers: Iterable[socket.socket], writers: Iterable[socket.socket], timeout: float = 0.05
) -> tuple[list[socket.socket], list[socket.socket]]:
    """Which sockets can be read and written (poll: any descriptor number)."""
    poller = select.poll()
    by_fd: dict[int, socket.socket] = {}
    events: dict[int, int] = collections.defaultdict(int)
    for sock in readers:
        by_fd[sock.fileno()] = sock
        events[sock.fileno()] |= select.POLLIN
    for sock in writers:
        by_fd[sock.fileno()] = sock
        events[sock.fileno()] |= select.POLLOUT
    for fd, mask in events.items():
        poller.register(fd, mask)
    readable, writable = [], []
    for fd, happened in poller.poll(timeout * 1000):
        if happened & (select.POLLIN | select.POLLHUP | select.POLLERR):
            readable.append(by_fd[fd])
        if happened & select.POLLOUT:
            writable.append(by_fd[fd])
    return readable, writable


def finish(
    sock: socket.socket, socks: dict[socket.socket, tuple[bytearray, bytearray]], stats: FuzzStats
) -> None:
    """Count what ``sock`` received (every line must be a JSON object within the limit)."""
    received = bytes(socks.pop(sock)[1])
    for text in received.splitlines():
        stats.lines_received += 1
        if len(text) > 65536:
            stats.too_long += 1
        try:
            message = json.loads(text)
        except ValueError:
            stats.not_json += 1
            continue
        if message.get("message") == "EventError":
            stats.errors[message["code"]] += 1
    sock.close()


# -- phase: a subscriber that never reads ------------------------------------------------------


def flood(serve: Serve, changes: int) -> Json:
    """``changes`` status changes of one application while a subscriber reads nothing."""
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(serve.scs)
    slow.sendall(line({"message": "RequestSubscribe", "ref": 1}))
    slow.settimeout(TIMEOUT)
    subscribed = b""
    while b'"EventOk"' not in subscribed:  # its last read: the changes come after it
        chunk = slow.recv(4096)
        assert chunk, "serve closed the subscriber"
        subscribed += chunk
    app = Lines.connect(serve.lca)
    app.send({"message": "RequestRegisterApplication", "ref": 1, "application": "FLAPPING"})
    assert app.read() == {"message": "EventApplicationRegistered", "ref": 1}
    reports = [
        b'{"message":"RequestUpdateStatus","status":"%s","mode":"PRIMARY"}\n' % status
        for status in (b"RUNNING", b"SERVICE_UNAVAILABLE")
    ]
    started = time.monotonic()
    for start in range(0, changes, 1000):
        app.sock.sendall(b"".join(reports[n % 2] for n in range(start, min(changes, start + 1000))))
    app.send({"message": "RequestUpdateStatus", "status": "SUSPENDED", "mode": "PRIMARY"})
    checker = Lines.connect(serve.scs)
    ref = 0
    while True:  # until serve has handled every report
        ref += 1
        checker.send(
            {"message": "RequestGetApplicationInfo", "ref": ref, "application": "FLAPPING"}
        )
        reply = checker.read()
        if reply is not None and reply.get("status") == "SUSPENDED":
            break
        assert time.monotonic() - started < 300, "serve did not get through the changes"
    handled = time.monotonic() - started
    # what it was sent, until serve closes it (it still hears of the normal client's visits)
    slow.settimeout(1.0)
    received = b""
    deadline = time.monotonic() + TIMEOUT
    with contextlib.suppress(OSError):
        while time.monotonic() < deadline and (chunk := slow.recv(1 << 20)):
            received += chunk
    for closing in (slow, checker, app):
        closing.close()
    last = received.splitlines()[-1] if received else b""
    return {"seconds": handled, "lines": received.count(b"\n"), "too_slow": b'"too-slow"' in last}


# -- phase: idle connections -------------------------------------------------------------------


def open_idle(address: tuple[str, int], count: int) -> list[socket.socket]:
    """``count`` connections opened all at once (non-blocking) that never send a byte."""
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(address)
        socks.append(sock)
    pending = list(socks)
    deadline = time.monotonic() + TIMEOUT
    while pending and time.monotonic() < deadline:
        _, writable = wait_for([], pending)
        for sock in writable:
            pending.remove(sock)
    return socks


def fates(socks: list[socket.socket]) -> collections.Counter[str]:
    """What became of each idle connection: still open, closed, or the code of the first
    line serve sent it."""
    found: collections.Counter[str] = collections.Counter()
    readable, _ = wait_for(socks, [], timeout=0)
    for sock in socks:
        if sock not in readable:
            found["open"] += 1
            continue
        try:
            text = sock.recv(4096).split(b"\n", 1)[0]
        except OSError:
            text = b""
        found[json.loads(text).get("code", "?") if text else "closed"] += 1
    return found


def idle(serve: Serve, count: int, hold: float) -> Json:
    """``count`` idle connections, half to each port, held ``hold`` seconds."""
    lca = open_idle(serve.lca, count // 2)
    scs = open_idle(serve.scs, count - count // 2)
    opened = time.monotonic()
    files = serve.open_files()
    time.sleep(hold)  # the normal client visits meanwhile
    result = {
        "lca": fates(lca),
        "scs": fates(scs),
        "files": files,
        "held": time.monotonic() - opened,
    }
    for sock in lca + scs:
        sock.close()
    return result


# == the run ===================================================================================


@dataclass(frozen=True)
class Figure:
    """One row of the summary: a figure, its limit, and whether it is met."""

    what: str
    value: str
    limit: str
    met: bool | None  # None: no limit, shown for context
    timed: bool = False
    """A limit on time: it measures the machine too (``--times-advisory`` reports it)."""


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def serve_part(args: argparse.Namespace) -> list[Figure]:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="lca-bounds-serve-") as tmp:
        serve = Serve.start(Path(tmp))
        try:
            with watching(serve) as watch:
                phase(watch, "quiet", lambda: time.sleep(2.0))
                start_rss = serve.rss_mb()
                stats = phase(
                    watch,
                    "fuzz",
                    lambda: fuzz(serve, rng, args.frames, args.per_connection, args.batch),
                )
                flooded = phase(
                    watch,
                    "never-reading subscriber",
                    lambda: flood(serve, args.changes),
                )
                idled = phase(watch, "idle connections", lambda: idle(serve, args.idle, HOLD_IDLE))
                phase(watch, "after", lambda: time.sleep(2.0))
            alive = serve.proc.poll() is None
            final = visit(serve.lca, serve.scs, 1)
            code = serve.stop()
        finally:
            if serve.proc.poll() is None:
                os.killpg(serve.proc.pid, signal.SIGKILL)
        log = serve.log.read_text(errors="replace")
    peak_rss = max(watch.rss, default=0.0)
    emfile = log.count("EMFILE") + log.count("Too many open files")
    print()
    print(
        f"fuzz: {stats.connections:,} connections, {stats.frames:,} frames "
        f"({stats.bytes_sent / 1e6:.1f} MB); {stats.lines_received:,} lines back, "
        f"{sum(stats.errors.values()):,} EventError "
        f"({', '.join(f'{k} {v}' for k, v in stats.errors.most_common())}); "
        f"{stats.closed_by_serve:,} connections closed by serve"
    )
    print(
        f"never-reading subscriber: {args.changes:,} changes handled in "
        f"{flooded['seconds']:.1f} s; it was sent {flooded['lines']:,} lines, then "
        f"{'too-slow and closed' if flooded['too_slow'] else 'closed without too-slow'}"
    )
    print(
        f"idle: {args.idle:,} connections opened; after {idled['held']:.1f} s: LCA "
        f"{dict(idled['lca'])}, SCS {dict(idled['scs'])}; serve had {idled['files']} files "
        "open with them"
    )
    print(f"serve's log: {log.count(chr(10)):,} lines; last: {log.strip().splitlines()[-1:]}")
    figures = [
        Figure(
            "fuzzed frames sent",
            f"{stats.frames:,}",
            f">= {args.frames:,}",
            stats.frames >= args.frames,
        ),
        Figure("fuzzing connections left stuck for 60 s", f"{stats.stuck}", "0", stats.stuck == 0),
        Figure(
            "lines serve sent that are not JSON, or over 65,536 bytes",
            f"{stats.not_json + stats.too_long}",
            "0",
            stats.not_json + stats.too_long == 0,
        ),
        Figure(
            "never-reading subscriber: changes made, then told too-slow",
            f"{args.changes:,}, {'yes' if flooded['too_slow'] else 'no'}",
            f">= {args.changes:,}, yes",
            flooded["too_slow"],
        ),
        Figure("idle connections opened at once", f"{args.idle:,}", f">= {args.idle:,}", True),
        Figure(
            "serve alive at the end, then its exit code after Ctrl-C",
            f"{'alive' if alive else 'GONE'}, {code}",
            "alive, 0",
            alive and code == 0,
        ),
        Figure(
            "tracebacks in serve's log", f"{log.count('Traceback')}", "0", "Traceback" not in log
        ),
        Figure(
            "out-of-files errors (EMFILE) in serve's log",
            f"{emfile}",
            "0",
            emfile == 0,
        ),
        Figure(
            "unhandled errors in serve's log",
            f"{log.count('Unhandled')}",
            "0",
            "Unhandled" not in log,
        ),
        Figure(
            f"serve's RSS growth (from {start_rss:.1f} MB to a peak of {peak_rss:.1f} MB)",
            f"{peak_rss - start_rss:.1f} MB",
            f"< {RSS_GROWTH_MB:g} MB",
            peak_rss - start_rss < RSS_GROWTH_MB,
        ),
    ]
    failures = [one for one in watch.visits if one.failure]
    figures.append(
        Figure(
            f"normal client: visits that failed (of {len(watch.visits):,})",
            f"{len(failures)}",
            "0",
            not failures and final.failure == "",
        )
    )
    for name, visits in watch.by_phase().items():
        for step in ("register", "round_trip"):
            values = [getattr(one, step) for one in visits if getattr(one, step) is not None]
            if not values:
                figures.append(Figure(f"{name}: {step.replace('_', ' ')}", "none", "", False))
                continue
            worst = max(values)
            figures.append(
                Figure(
                    f"{name}: normal client's {step.replace('_', ' ')}, max / p99 ({len(values)})",
                    f"{ms(worst)} / {ms(percentile(values, 0.99))}",
                    f"<= {ms(LATENCY_S)}",
                    worst <= LATENCY_S,
                    timed=True,
                )
            )
    for one in failures[:5]:
        print(f"  normal client failed at {watch.phase_of(one.started)}: {one.failure}")
    return figures


def files_part(args: argparse.Namespace) -> list[Figure]:
    started = time.monotonic()
    outcomes = check_files(args.jobs, deadline=max(10.0, 2 * FILE_EXIT_S))
    bad = [outcome for outcome in outcomes if outcome.problems()]
    for outcome in bad:
        first = outcome.stderr.strip().splitlines()[:1]
        print(f"  {outcome.row.name} / {outcome.command}: {', '.join(outcome.problems())}: {first}")
    print(
        f"files: {len(BAD_FILES)} files x {len(COMMANDS)} commands in "
        f"{time.monotonic() - started:.1f} s, {args.jobs} at a time"
    )
    slowest = max(outcomes, key=lambda outcome: outcome.seconds)
    with_line = [o for o in outcomes if o.row.line is not None]
    clean = [o for o in outcomes if o.code == 2 and str(o.path) in o.stderr]
    clean = [o for o in clean if "Traceback" not in o.stderr]
    return [
        Figure(
            "malformed files",
            f"{len(BAD_FILES)}",
            f">= {BAD_FILE_COUNT}",
            len(BAD_FILES) >= BAD_FILE_COUNT,
        ),
        Figure(
            "commands that exited 2 naming the file, no traceback",
            f"{len(clean)} of {len(outcomes)}",
            f"{len(outcomes)}",
            len(clean) == len(outcomes),
        ),
        Figure(
            "... and the fault's line, where it has one",
            f"{sum(not o.problems() for o in with_line)} of {len(with_line)}",
            f"{len(with_line)}",
            all(not o.problems() for o in with_line),
        ),
        Figure(
            f"slowest exit ({slowest.row.name}, {slowest.command})",
            f"{slowest.seconds:.2f} s",
            f"<= {FILE_EXIT_S:g} s",
            slowest.seconds <= FILE_EXIT_S,
            timed=True,
        ),
        Figure(
            "median exit",
            f"{statistics.median(o.seconds for o in outcomes):.2f} s",
            "",
            None,
        ),
    ]


def print_table(figures: Sequence[Figure]) -> None:
    print()
    print("| figure | value | limit | met |")
    print("|---|---|---|---|")
    for figure in figures:
        met = "-" if figure.met is None else ("met" if figure.met else "NOT MET")
        print(f"| {figure.what} | {figure.value} | {figure.limit or '-'} | {met} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--only", choices=["serve", "files"], help="run one part only")
    parser.add_argument(
        "--times-advisory",
        action="store_true",
        help="report the limits on time (latency, exit time) without failing on them: "
        "for a machine whose speed you do not control, such as a CI runner",
    )
    parser.add_argument("--frames", type=int, default=FRAMES, help="fuzzed frames in all")
    parser.add_argument("--per-connection", type=int, default=50, help="frames per connection")
    parser.add_argument("--batch", type=int, default=50, help="fuzzing connections at once")
    parser.add_argument("--changes", type=int, default=CHANGES)
    parser.add_argument("--idle", type=int, default=IDLE, help="idle connections in all")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="bad files at once")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    # SIGTERM (a CI timeout) unwinds like Ctrl-C, so that serve is stopped on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # this side holds thousands
    load = os.getloadavg()
    print(
        f"CPython {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; serve's RLIMIT_NOFILE {NOFILE}",
        flush=True,
    )
    figures: list[Figure] = []
    if args.only in (None, "serve"):
        figures += serve_part(args)
    if args.only in (None, "files"):
        figures += files_part(args)
    load = os.getloadavg()
    print_table(figures)
    print(f"\nload average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    broken = [
        figure
        for figure in figures
        if figure.met is False and not (figure.timed and args.times_advisory)
    ]
    print("every limit met" if not broken else f"{len(broken)} limit(s) broken")
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
