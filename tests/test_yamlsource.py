"""YAML loading with line numbers, and the validation API of ``lca_common.yamlsource``."""

from __future__ import annotations

import enum
import os
import pickle
import textwrap
from pathlib import Path

import pytest
import yaml

from lca_common import yamlsource
from lca_common.yamlsource import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    MAX_FILE_SIZE,
    MAX_NODES,
    ConfigError,
    MappingNode,
    Node,
    format_number,
    load_yaml,
    parse_yaml,
    suggestion,
)

LOADERS = {"pyyaml": yaml.SafeLoader, "libyaml": getattr(yaml, "CSafeLoader", None)}


@pytest.fixture(autouse=True, params=sorted(LOADERS))
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs with PyYAML's own loader and with libyaml's, from an empty
    cache of parsed files."""
    chosen = LOADERS[request.param]
    if chosen is None:
        pytest.skip("PyYAML was built without libyaml")
    monkeypatch.setattr(yamlsource, "_LOADER", chosen)
    monkeypatch.setattr(yamlsource, "_parsed", yamlsource._ParsedFiles())
    return str(request.param)


class Colour(enum.StrEnum):
    RED = "red"
    LIGHT_BLUE = "light-blue"


def write(tmp_path: Path, text: str, name: str = "doc.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def parse(text: str) -> Node:
    return parse_yaml(textwrap.dedent(text).lstrip("\n"), "doc.yaml")


def error_of(excinfo: pytest.ExceptionInfo[ConfigError]) -> tuple[str, int | None, str]:
    err = excinfo.value
    return err.file, err.line, err.key_path


# -- ConfigError -----------------------------------------------------------------


def test_config_error_str_has_file_line_path_and_problem() -> None:
    """``str(err)`` reads ``file:line: key.path: problem``."""
    err = ConfigError("a.yaml", 3, "components.smart-proxy", "bad")
    assert str(err) == "a.yaml:3: components.smart-proxy: bad"
    assert (err.file, err.line, err.key_path, err.problem) == (
        "a.yaml",
        3,
        "components.smart-proxy",
        "bad",
    )


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("a.yaml", None, "", "file is empty"), "a.yaml: file is empty"),
        (("a.yaml", 1, "", "missing"), "a.yaml:1: missing"),
        (("a.yaml", None, "x.y", "bad"), "a.yaml: x.y: bad"),
        (("", 4, "x", "bad"), "line 4: x: bad"),
        (("", None, "", "bad"), "bad"),
    ],
)
def test_config_error_str_leaves_out_missing_parts(
    args: tuple[str, int | None, str, str], text: str
) -> None:
    """Missing file, line or key path are left out of the message."""
    assert str(ConfigError(*args)) == text


def test_config_error_str_escapes_control_characters() -> None:
    """A key or a path holding control characters (an ANSI escape from ``"\\e[2J"``, a
    NUL from ``"\\0"``) is printed escaped: the message cannot act on a terminal."""
    err = ConfigError("a\x00b.yaml", 3, "\x1b[2Jx", "bad\nthing\x85\u2028é")
    assert str(err) == "a\\x00b.yaml:3: \\x1b[2Jx: bad\\nthing\\x85\\u2028é"
    assert err.key_path == "\x1b[2Jx"  # the fields keep what the file said


def test_config_error_pickles() -> None:
    """A ConfigError survives pickling (it may cross a process boundary)."""
    err = pickle.loads(pickle.dumps(ConfigError("a.yaml", 2, "k", "bad")))
    assert str(err) == "a.yaml:2: k: bad"
    assert err.line == 2


# -- suggestion -----------------------------------------------------------------


def test_suggestion_names_the_closest_known_word() -> None:
    """A near miss gets a did-you-mean."""
    known = ["backup-init-check", "control-vip-scripts"]
    assert suggestion("backup-init-chek", known) == "did you mean 'backup-init-check'?"


def test_suggestion_lists_known_words_when_nothing_is_close() -> None:
    """With no close match, every known word is listed."""
    assert suggestion("zzz", ["a-key", "b-key"]) == "known keys: a-key, b-key"
    assert suggestion("zzz", ["x1"], what="options") == "known options: x1"
    assert suggestion("zzz", []) == "no keys are allowed here"


def test_format_number_drops_a_useless_fraction() -> None:
    """Whole numbers print without ``.0``; others print as they are."""
    assert format_number(60.0) == "60"
    assert format_number(60) == "60"
    assert format_number(2.5) == "2.5"
    assert format_number(1000000.0) == "1000000"


# -- loading --------------------------------------------------------------------


def test_load_yaml_keeps_lines_and_paths(tmp_path: Path) -> None:
    """Nodes know their 1-based line and key path in the file."""
    path = write(
        tmp_path,
        """
        # a comment
        applications:
          - application: A
          - application: B
            components:
              smart-proxy:
                after: -1
        """,
    )
    root = load_yaml(path).mapping()
    second = root.get_list("applications")[1].mapping()
    after = second.get_mapping("components").get_mapping("smart-proxy").require("after")
    assert after.path == "applications[1].components.smart-proxy.after"
    assert after.line == 7
    assert after.file == str(path)
    with pytest.raises(ConfigError) as excinfo:
        after.as_number(minimum=0)
    assert str(excinfo.value) == (
        f"{path}:7: applications[1].components.smart-proxy.after: "
        "expected a number of at least 0, got -1"
    )


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """An unreadable file is a ConfigError naming the file, with no line."""
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="cannot read the file") as excinfo:
        load_yaml(path)
    assert error_of(excinfo) == (str(path), None, "")


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    """A file that is not UTF-8 text is a ConfigError."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"application: caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_yaml(path)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    """A YAML syntax error is a ConfigError at the line of the YAML mark."""
    path = write(
        tmp_path,
        """
        application: A
        components: {smart-proxy: ok
        host: h
        """,
    )
    with pytest.raises(ConfigError, match="invalid YAML") as excinfo:
        load_yaml(path)
    assert excinfo.value.file == str(path)
    assert excinfo.value.line == 3
    assert excinfo.value.key_path == ""


def test_tab_indentation_error_names_the_line() -> None:
    """A scanner error (a tab) points at its own line."""
    with pytest.raises(ConfigError, match="invalid YAML") as excinfo:
        parse_yaml("a: 1\nb:\n\t- 2\n", "t.yaml")
    assert excinfo.value.line == 3


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file_is_an_error(tmp_path: Path, text: str) -> None:
    """A file with no document says so."""
    path = tmp_path / "empty.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as excinfo:
        load_yaml(path)
    assert str(excinfo.value) == f"{path}: file is empty"


def test_several_documents_are_refused() -> None:
    """Only one YAML document per file."""
    with pytest.raises(ConfigError, match="single document") as excinfo:
        parse_yaml("a: 1\n---\nb: 2\n", "two.yaml")
    assert excinfo.value.line == 2


def test_unknown_tags_are_refused_as_values() -> None:
    """Only the safe loader's tags construct; ``!!python/object`` is refused."""
    root = parse("value: !!python/name:os.system x\n").mapping()
    with pytest.raises(ConfigError, match="invalid value") as excinfo:
        root.get_str("value")
    assert error_of(excinfo) == ("doc.yaml", 1, "value")


def test_tagged_mapping_is_not_a_plain_mapping() -> None:
    """A mapping with a non-standard tag (``!!set``) is not accepted as a mapping."""
    root = parse("things: !!set {a, b}\n").mapping()
    with pytest.raises(ConfigError, match=r"expected a mapping, got a value tagged"):
        root.get_mapping("things")


# -- every YAML error has its line -------------------------------------------------


def _lol(levels: int, width: int = 10) -> str:
    """A "billion laughs": each level a list of ``width`` aliases of the level before."""
    lines = ["l0: &l0 [" + ", ".join(["x"] * width) + "]"]
    for level in range(1, levels + 1):
        items = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"l{level}: &l{level} [{items}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "line", "key_path", "problem"),
    [
        pytest.param("a: 1\nb: x\x00y\n", 2, "", "character #x0000 is not allowed", id="nul"),
        pytest.param("a: é\nb: é\x07\n", 2, "", "character #x0007 is not allowed", id="bel"),
        pytest.param("a: 1\nb: \ud800\n", 2, "", "lone surrogate", id="surrogate"),
        pytest.param("a: 1\rb: 2\rc: x\x00\r", 3, "", "#x0000", id="nul-after-cr-lines"),
        pytest.param("a: 1\r\nb: 2\r\nc: x\x07\r\n", 3, "", "#x0007", id="bel-after-crlf"),
        pytest.param("a: 1\u2028b: 2\x85c: x\x00\n", 3, "", "#x0000", id="nul-after-ls-nel"),
        pytest.param("a: 1\nb: " + "[" * 1200 + "\n", 2, "", "nested too deeply", id="deep"),
        pytest.param("a: 1\nb: *x\n", 2, "", "undefined alias", id="undefined-alias"),
        pytest.param("a: 1\nb: &b [1, *b]\n", 2, "b[1]", "inside the node it names", id="cycle"),
        pytest.param("a: 1\nb: &b {c: *b}\n", 2, "b.c", "inside the node it names", id="cycle-map"),
        pytest.param(_lol(9), 4, "l3[7]", "too many nodes", id="billion-laughs"),
        pytest.param(
            "base: &b {x: 1, y: [1, 2]}\nuse:\n  - one: *b\n" + "  - more: *b\n" * 3000,
            1431,
            "use[1428].more",
            f"YAML aliases repeat more than {MAX_ALIAS_NODES} nodes",
            id="many-aliases",
        ),
    ],
)
def test_every_yaml_error_has_a_line(text: str, line: int, key_path: str, problem: str) -> None:
    """Control characters, deep nesting, bad aliases and alias bombs are errors at a line
    (and key path, for aliases), with either loader."""
    with pytest.raises(ConfigError) as excinfo:
        parse_yaml(text, "doc.yaml")
    assert (excinfo.value.file, excinfo.value.line, excinfo.value.key_path) == (
        "doc.yaml",
        line,
        key_path,
    )
    assert problem in excinfo.value.problem


def test_node_budget_is_exact() -> None:
    """A document holds at most MAX_NODES nodes (here a mapping, a key, a list and its
    items); one more is refused at its line, before it is composed."""
    items = MAX_NODES - 3
    root = parse_yaml("a:\n  [" + ",".join(["1"] * items) + "]\n").mapping()
    assert len(root["a"].as_list()) == items
    with pytest.raises(ConfigError, match=f"more than {MAX_NODES:,} values") as excinfo:
        parse_yaml("a:\n  [" + ",".join(["1"] * items) + "]\nb: 2\n")
    assert excinfo.value.line == 3
    with pytest.raises(ConfigError, match=f"more than {MAX_NODES:,} values") as excinfo:
        parse_yaml("a: x\nb:\n" + "  - 1\n" * MAX_NODES)
    assert excinfo.value.line == MAX_NODES - 2  # 5 nodes before the first item, on line 3


def test_depth_limit_is_exact() -> None:
    """Lists and mappings nest at most MAX_DEPTH deep, with either loader."""
    parse_yaml("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n")
    with pytest.raises(ConfigError, match="nested too deeply") as excinfo:
        parse_yaml("a: 1\nb: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n")
    assert excinfo.value.line == 2


def test_alias_budget_is_exact() -> None:
    """Aliases may repeat MAX_ALIAS_NODES nodes in all; one node more is refused."""
    anchor = "a: &a [" + ", ".join(["0"] * 99) + "]\n"  # 100 nodes
    uses = MAX_ALIAS_NODES // 100
    root = parse_yaml(anchor + f"b: [{', '.join(['*a'] * uses)}]\n").mapping()
    assert len(root["b"].as_list()) == uses
    with pytest.raises(ConfigError, match="too many nodes") as excinfo:
        parse_yaml(anchor + f"b: [{', '.join(['*a'] * uses)}]\nc: *a\n")
    assert (excinfo.value.line, excinfo.value.key_path) == (3, "c")


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_non_utf8_byte_is_reported_at_its_line(tmp_path: Path, newline: bytes) -> None:
    """A byte that is not UTF-8 is reported at its line, whatever the file's line ends."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes(newline.join([b"a: 1", b"b: 2", b"application: caf\xe9", b""]))
    with pytest.raises(ConfigError, match="not UTF-8 text") as excinfo:
        load_yaml(path)
    assert excinfo.value.line == 3


# -- which files are read ----------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO is refused at once (opening it to read would wait for a writer)."""
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    with pytest.raises(ConfigError) as excinfo:
        load_yaml(path)
    assert str(excinfo.value) == (
        f"{path}: cannot read the file: it is a FIFO (named pipe); only regular files are read"
    )


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_endless_device_is_refused() -> None:
    """/dev/zero is refused as a device, not read until memory runs out."""
    with pytest.raises(ConfigError, match="it is a character device") as excinfo:
        load_yaml("/dev/zero")
    assert (excinfo.value.file, excinfo.value.line) == ("/dev/zero", None)


def test_directory_is_refused(tmp_path: Path) -> None:
    """A directory is not a file to read."""
    with pytest.raises(ConfigError, match="it is a directory"):
        load_yaml(tmp_path)


def test_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    """A file over MAX_FILE_SIZE (1 MiB) is refused; one of exactly that size is read."""
    assert MAX_FILE_SIZE == 1024 * 1024
    path = tmp_path / "big.yaml"
    head = b"a: 1\n#"
    path.write_bytes(head + b"x" * (MAX_FILE_SIZE - len(head)))
    assert load_yaml(path).mapping().get_int("a") == 1
    path.write_bytes(head + b"x" * (MAX_FILE_SIZE - len(head) + 1))
    with pytest.raises(ConfigError) as excinfo:
        load_yaml(path)
    assert str(excinfo.value) == f"{path}: file is larger than 1048576 bytes (1 MiB), the limit"


# -- each file parsed once -----------------------------------------------------------


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    parsed: list[object] = []
    real = yaml.parse

    def counting(stream: object, Loader: object) -> object:
        parsed.append(stream)
        return real(stream, Loader=Loader)  # type: ignore[arg-type]

    monkeypatch.setattr(yaml, "parse", counting)
    return parsed


def test_a_file_is_parsed_once_per_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a file again parses nothing; a changed file is parsed again, never stale."""
    composed = _count_parses(monkeypatch)
    path = write(tmp_path, "a: 1\n")
    assert load_yaml(path).mapping().get_int("a") == 1
    assert load_yaml(path).mapping().get_int("a") == 1
    assert len(composed) == 1
    path.write_text("a: 2\n")  # same size, maybe the same mtime: the content decides
    assert load_yaml(path).mapping().get_int("a") == 2
    assert len(composed) == 2


def test_an_error_is_found_once_and_raised_each_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that does not parse is parsed once; each later read raises the same error."""
    composed = _count_parses(monkeypatch)
    path = write(tmp_path, "a: [1\n")
    errors = []
    for _ in range(2):
        with pytest.raises(ConfigError) as excinfo:
            load_yaml(path)
        errors.append(str(excinfo.value))
    assert errors[0] == errors[1]
    assert errors[0].startswith(f"{path}:2: invalid YAML")
    assert len(composed) == 1


def test_same_content_by_two_paths_is_parsed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file reached by two paths (``a/../b``) is parsed once; each error names the path
    it was read by."""
    composed = _count_parses(monkeypatch)
    (tmp_path / "sub").mkdir()
    path = write(tmp_path, "a: 1\nb: [\n")
    detour = tmp_path / "sub" / ".." / path.name
    messages = []
    for name in (path, detour):
        with pytest.raises(ConfigError) as excinfo:
            load_yaml(name)
        messages.append(str(excinfo.value))
    assert messages[0].startswith(f"{path}:3: invalid YAML")
    assert messages[1].startswith(f"{detour}:3: invalid YAML")
    assert len(composed) == 1


# -- mappings -------------------------------------------------------------------


def test_duplicate_key_is_an_error_at_the_second_key() -> None:
    """A key given twice is an error naming both lines."""
    root = parse(
        """
        top:
          host: a
          mode: backup
          host: b
        """
    ).mapping()
    with pytest.raises(ConfigError) as excinfo:
        root.get_mapping("top")
    assert str(excinfo.value) == "doc.yaml:4: top.host: duplicate key 'host' (first at line 2)"


def test_duplicate_key_at_the_root_is_an_error() -> None:
    """Duplicates are found at the document root too."""
    with pytest.raises(ConfigError, match="duplicate key 'a'") as excinfo:
        parse("a: 1\nb: 2\na: 3\n").mapping()
    assert error_of(excinfo) == ("doc.yaml", 3, "a")


def test_unknown_key_suggests_the_nearest_known_key() -> None:
    """A misspelt key is an error with a did-you-mean."""
    root = parse("applicaton: A\n")
    with pytest.raises(ConfigError) as excinfo:
        root.mapping(["application", "host"])
    assert str(excinfo.value) == (
        "doc.yaml:1: applicaton: unknown key 'applicaton'; did you mean 'application'?"
    )


def test_unknown_key_lists_known_keys_when_nothing_is_close() -> None:
    """An unrelated key lists the known keys (a set sorted, a sequence in order)."""
    with pytest.raises(ConfigError) as excinfo:
        parse("x: 1\nzebra: 2\n").mapping(frozenset({"x", "b-key", "a-key"}))
    assert excinfo.value.problem == "unknown key 'zebra'; known keys: a-key, b-key, x"
    assert excinfo.value.line == 2
    with pytest.raises(ConfigError) as excinfo:
        parse("zebra: 2\n").mapping(["x", "b-key"], what="component")
    assert excinfo.value.problem == "unknown component 'zebra'; known components: x, b-key"


def test_missing_required_key_is_reported_at_the_mapping() -> None:
    """A missing key names the mapping's line and path."""
    root = parse(
        """
        name: x
        pair:
          primary: A
        """
    ).mapping()
    with pytest.raises(ConfigError) as excinfo:
        root.get_mapping("pair", required=["primary", "backup"])
    assert str(excinfo.value) == "doc.yaml:3: pair: missing required key 'backup'"


def test_missing_required_key_at_the_root_has_no_path() -> None:
    """At the document root the key path is empty."""
    with pytest.raises(ConfigError) as excinfo:
        parse("name: x\n").mapping(required=["duration"])
    assert str(excinfo.value) == "doc.yaml:1: missing required key 'duration'"


def test_non_string_keys_are_refused() -> None:
    """Keys must be strings (not ints, booleans or null)."""
    with pytest.raises(ConfigError, match=r"expected a string key, got an integer \(1\)"):
        parse("1: a\n").mapping()
    with pytest.raises(ConfigError, match=r"got a boolean \(true\)"):
        parse("yes: a\n").mapping()


def test_merge_keys_are_refused_but_aliases_work() -> None:
    """``<<`` merges are refused with a clear error; plain anchors and aliases work
    (within MAX_ALIAS_NODES)."""
    with pytest.raises(ConfigError, match=r"merge keys \(<<\) are not supported") as excinfo:
        parse("base: &b {x: 1}\nother:\n  <<: *b\n").mapping()["other"].mapping()
    assert excinfo.value.line == 3
    root = parse("base: &b {x: 1}\nother: *b\n").mapping()
    assert root["other"].mapping().get_int("x") == 1


def test_not_a_mapping_is_an_error() -> None:
    """A list where a mapping is expected names what was found."""
    with pytest.raises(ConfigError) as excinfo:
        parse("- a\n- b\n").mapping()
    assert str(excinfo.value) == "doc.yaml:1: expected a mapping, got a list"


def test_mapping_is_iterable_in_file_order() -> None:
    """Keys, items, ``in`` and ``len`` follow the file."""
    root = parse("b: 1\na: 2\n").mapping()
    assert list(root) == ["b", "a"]
    assert root.keys() == ("b", "a")
    assert [key for key, _ in root.items()] == ["b", "a"]
    assert "a" in root
    assert "c" not in root
    assert len(root) == 2
    assert root.get("c") is None


def test_get_mapping_and_get_list_treat_absent_and_null_as_empty() -> None:
    """An absent key or an empty value is an empty mapping or list."""
    root = parse("opts:\nitems: ~\n").mapping()
    assert len(root.get_mapping("opts")) == 0
    assert len(root.get_mapping("absent")) == 0
    assert root.get_list("items") == ()
    assert root.get_list("absent") == ()
    with pytest.raises(ConfigError, match="missing required key 'x'") as excinfo:
        root.get_mapping("opts", required=["x"])
    assert excinfo.value.key_path == "opts"


def test_as_list_gives_indexed_paths() -> None:
    """List items carry ``key[index]`` paths and their own lines."""
    items = parse("events:\n  - 1\n  - 2\n").mapping().get_list("events")
    assert [(item.path, item.line) for item in items] == [("events[0]", 2), ("events[1]", 3)]
    with pytest.raises(ConfigError, match="expected a list, got a mapping"):
        parse("events: {a: 1}\n").mapping().get_list("events")


def test_without_and_layered_over_keep_each_value_s_origin(tmp_path: Path) -> None:
    """A shallow merge keeps each value's file and line; missing keys point at the overlay."""
    base = load_yaml(write(tmp_path, "host: h\nmode: backup\n", "base.yaml")).mapping()
    top = load_yaml(write(tmp_path, "fixture: x\nmode: primary\n", "top.yaml")).mapping()
    merged = top.without("fixture").layered_over(base)
    assert isinstance(merged, MappingNode)
    assert set(merged) == {"host", "mode"}
    assert merged["host"].file == str(tmp_path / "base.yaml")
    assert merged.get_str("mode") == "primary"
    assert merged["mode"].file == str(tmp_path / "top.yaml")
    assert merged["mode"].line == 2
    with pytest.raises(ConfigError) as excinfo:
        merged.require("application")
    assert error_of(excinfo) == (str(tmp_path / "top.yaml"), 1, "")


# -- typed getters ----------------------------------------------------------------


def test_get_str_required_default_and_errors() -> None:
    """Strings: required unless defaulted; numbers, null and empty strings are refused."""
    root = parse('name: SIPS_A\nnumber: 5\nempty: ""\nnothing:\n').mapping()
    assert root.get_str("name") == "SIPS_A"
    assert root.get_str("absent", None) is None
    assert root.get_str("absent", "dflt") == "dflt"
    with pytest.raises(ConfigError) as excinfo:
        root.get_str("number")
    assert str(excinfo.value) == "doc.yaml:2: number: expected a string, got an integer (5)"
    with pytest.raises(ConfigError, match="expected a non-empty string"):
        root.get_str("empty")
    assert root["empty"].as_str(allow_empty=True) == ""
    with pytest.raises(ConfigError, match=r"expected a string, got nothing \(null\)"):
        root.get_str("nothing")
    with pytest.raises(ConfigError, match="missing required key 'absent'"):
        root.get_str("absent")


def test_get_bool_accepts_yaml_booleans_only() -> None:
    """``true``/``false`` are booleans; the string ``"true"`` and ``1`` are not."""
    root = parse('a: true\nb: False\nc: "true"\nd: 1\n').mapping()
    assert root.get_bool("a") is True
    assert root.get_bool("b") is False
    assert root.get_bool("absent", False) is False
    with pytest.raises(ConfigError, match=r"expected true or false, got a string \('true'\)"):
        root.get_bool("c")
    with pytest.raises(ConfigError, match=r"expected true or false, got an integer \(1\)"):
        root.get_bool("d")


def test_get_int_checks_type_and_bounds() -> None:
    """Integers: booleans and floats are refused; bounds are inclusive."""
    root = parse("a: 5060\nb: true\nc: 1.5\nd: 70000\ne: -1\n").mapping()
    assert root.get_int("a", minimum=0, maximum=65535) == 5060
    assert root.get_int("absent", 0) == 0
    with pytest.raises(ConfigError, match=r"expected an integer, got a boolean \(true\)"):
        root.get_int("b")
    with pytest.raises(ConfigError, match=r"got a number \(1.5\)"):
        root.get_int("c")
    with pytest.raises(ConfigError) as excinfo:
        root.get_int("d", minimum=0, maximum=65535)
    assert excinfo.value.problem == "expected an integer from 0 to 65535, got 70000"
    with pytest.raises(ConfigError, match="expected an integer of at least 0, got -1"):
        root.get_int("e", minimum=0)
    with pytest.raises(ConfigError, match="expected an integer of at most 10, got 5060"):
        root.get_int("a", maximum=10)


def test_get_number_accepts_ints_and_floats_not_booleans() -> None:
    """Numbers: ints and floats as float; booleans, NaN and infinity are refused."""
    root = parse("a: 3\nb: 2.5\nc: false\nd: .nan\ne: .inf\nf: 0\ng: '3'\n").mapping()
    assert root.get_number("a") == 3.0
    assert isinstance(root.get_number("a"), float)
    assert root.get_number("b", maximum=2.5) == 2.5
    assert root.get_number("absent", 0.0) == 0.0
    with pytest.raises(ConfigError, match=r"expected a number, got a boolean \(false\)"):
        root.get_number("c")
    with pytest.raises(ConfigError, match="expected a finite number"):
        root.get_number("d")
    with pytest.raises(ConfigError, match="expected a finite number"):
        root.get_number("e")
    with pytest.raises(ConfigError, match="expected a number greater than 0, got 0"):
        root.get_number("f", positive=True)
    with pytest.raises(ConfigError, match=r"got a string \('3'\)"):
        root.get_number("g")


def test_get_enum_is_case_insensitive_and_suggests() -> None:
    """Enum values match in any case; a near miss gets a did-you-mean."""
    root = parse("a: RED\nb: Light-Blue\nc: light-bleu\nd: 5\n").mapping()
    assert root.get_enum("a", Colour) is Colour.RED
    assert root.get_enum("b", Colour) is Colour.LIGHT_BLUE
    assert root.get_enum("absent", Colour, None) is None
    with pytest.raises(ConfigError) as excinfo:
        root.get_enum("c", Colour)
    assert excinfo.value.problem == (
        "expected one of red, light-blue, got 'light-bleu'; did you mean 'light-blue'?"
    )
    assert excinfo.value.line == 3
    with pytest.raises(ConfigError, match=r"expected one of red, light-blue, got an integer"):
        root.get_enum("d", Colour)


def test_get_enum_choices_restrict_the_members() -> None:
    """``choices`` limits the accepted members."""
    root = parse("a: light-blue\n").mapping()
    with pytest.raises(ConfigError, match="expected one of red, got 'light-blue'"):
        root.get_enum("a", Colour, choices=[Colour.RED])


def test_as_scalar_accepts_any_scalar_only() -> None:
    """Any scalar is a value; a mapping or list is not."""
    root = parse("a: 1.5\nb: [1]\nc: 2024-01-02\n").mapping()
    assert root["a"].as_scalar() == 1.5
    assert str(root["c"].as_scalar()) == "2024-01-02"
    assert root["c"].describe() == "a date (2024-01-02)"
    with pytest.raises(ConfigError, match="expected a single value, got a list"):
        root["b"].as_scalar()


def test_describe_shortens_long_strings() -> None:
    """Long strings are cut in messages."""
    node = parse("a: " + "x" * 100 + "\n").mapping()["a"]
    assert node.describe() == "a string ('" + "x" * 37 + "...')"
