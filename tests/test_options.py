"""The ``[TServer]`` options of the backup startup check, as the stub's server reads them."""

from __future__ import annotations

import datetime

import pytest

from sipserver_stub.options import (
    OPTION_SPECS,
    OptionKind,
    TServerOptions,
    parse_tserver_options,
    scalar_to_option_string,
)


def test_documented_options_names_defaults_and_ranges() -> None:
    """The four options carry their documented defaults and valid values."""
    assert list(OPTION_SPECS) == [
        "backup-init-check",
        "backup-init-check-timeout",
        "backup-sip-port-check",
        "control-vip-scripts",
    ]
    specs = {
        name: (spec.kind, spec.default, spec.valid_values) for name, spec in OPTION_SPECS.items()
    }
    assert specs == {
        "backup-init-check": (OptionKind.BOOLEAN, False, "true or false"),
        "backup-init-check-timeout": (OptionKind.INTEGER, 60, "an integer from 15 to 3600"),
        "backup-sip-port-check": (OptionKind.BOOLEAN, True, "true or false"),
        "control-vip-scripts": (OptionKind.BOOLEAN, False, "true or false"),
    }
    assert all(spec.section == "TServer" for spec in OPTION_SPECS.values())
    assert [spec.default_text for spec in OPTION_SPECS.values()] == ["false", "60", "true", "false"]


def test_empty_section_gives_every_default_and_no_log() -> None:
    """With no options set, each takes its documented default."""
    options, log = parse_tserver_options({})
    assert options == TServerOptions(
        backup_init_check=False,
        backup_init_check_timeout=60,
        backup_sip_port_check=True,
        control_vip_scripts=False,
    )
    assert options == TServerOptions()
    assert log == ()


def test_all_options_set_to_valid_values() -> None:
    """Valid values of every option are taken as given."""
    options, log = parse_tserver_options(
        {
            "backup-init-check": "true",
            "backup-init-check-timeout": "120",
            "backup-sip-port-check": "false",
            "control-vip-scripts": "true",
        }
    )
    assert options == TServerOptions(True, 120, False, True)
    assert log == ()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("false", False),
        ("TRUE", True),
        ("False", False),
        (" true ", True),
        ("\tfalse\n", False),
    ],
)
@pytest.mark.parametrize(
    "name", ["backup-init-check", "backup-sip-port-check", "control-vip-scripts"]
)
def test_boolean_options_accept_true_and_false_in_any_case(
    name: str, text: str, value: bool
) -> None:
    """Booleans are ``true``/``false``, case-insensitive, surrounding blanks ignored."""
    spec = OPTION_SPECS[name]
    assert spec.parse(text) is value
    options, log = parse_tserver_options({name: text})
    assert getattr(options, name.replace("-", "_")) is value
    assert log == ()


@pytest.mark.parametrize("text", ["maybe", "yes", "1", "on", "", "tru e"])
@pytest.mark.parametrize(
    ("name", "default"),
    [
        ("backup-init-check", "false"),
        ("backup-sip-port-check", "true"),
        ("control-vip-scripts", "false"),
    ],
)
def test_invalid_boolean_takes_the_default_and_logs(name: str, default: str, text: str) -> None:
    """An invalid boolean falls back to the documented default, with a log line."""
    options, log = parse_tserver_options({name: text})
    assert getattr(options, name.replace("-", "_")) is (default == "true")
    assert log == (
        f"[TServer] {name}: invalid value {text!r} (valid: true or false); "
        f"using the default {default}",
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [("15", 15), ("60", 60), ("3600", 3600), (" 120 ", 120), ("+30", 30), ("0030", 30)],
)
def test_timeout_accepts_integers_from_15_to_3600(text: str, value: int) -> None:
    """The timeout is a decimal integer within the documented range."""
    options, log = parse_tserver_options({"backup-init-check-timeout": text})
    assert options.backup_init_check_timeout == value
    assert log == ()


@pytest.mark.parametrize("text", ["10", "14", "3601", "-60", "abc", "60.0", "6_0", "", "1e2"])
def test_invalid_timeout_takes_the_default_and_logs(text: str) -> None:
    """A timeout out of range or not an integer falls back to 60, with a log line."""
    options, log = parse_tserver_options({"backup-init-check-timeout": text})
    assert options.backup_init_check_timeout == 60
    assert log == (
        f"[TServer] backup-init-check-timeout: invalid value {text!r} "
        "(valid: an integer from 15 to 3600); using the default 60",
    )


def test_documented_log_line_for_a_short_timeout() -> None:
    """The log line for ``10`` reads as documented in the brief."""
    _, log = parse_tserver_options({"backup-init-check-timeout": "10"})
    assert log == (
        "[TServer] backup-init-check-timeout: invalid value '10' "
        "(valid: an integer from 15 to 3600); using the default 60",
    )


def test_unknown_options_are_ignored_with_a_log_line() -> None:
    """Unknown names are logged and ignored; a near miss gets a did-you-mean."""
    options, log = parse_tserver_options(
        {"backup-init-chek": "true", "sip-port": "5060", "backup-init-check": "true"}
    )
    assert options == TServerOptions(backup_init_check=True)
    assert log == (
        "[TServer] unknown option 'backup-init-chek' ignored; did you mean 'backup-init-check'?",
        "[TServer] unknown option 'sip-port' ignored",
    )


def test_invalid_values_do_not_hide_valid_ones() -> None:
    """Each option falls back on its own; log lines follow the section's order."""
    options, log = parse_tserver_options(
        {
            "control-vip-scripts": "true",
            "backup-init-check-timeout": "5",
            "backup-init-check": "nope",
        }
    )
    assert options == TServerOptions(control_vip_scripts=True)
    assert [line.split(":")[0] for line in log] == [
        "[TServer] backup-init-check-timeout",
        "[TServer] backup-init-check",
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (60, "60"),
        ("60", "60"),
        (1.5, "1.5"),
        ("maybe", "maybe"),
        (None, ""),
        (datetime.date(2024, 1, 2), "2024-01-02"),
    ],
)
def test_scalar_to_option_string(value: object, text: str) -> None:
    """YAML scalars become the configuration strings the server reads."""
    assert scalar_to_option_string(value) == text


def test_options_are_frozen() -> None:
    """TServerOptions is immutable."""
    options = TServerOptions()
    with pytest.raises(AttributeError):
        options.backup_init_check = True  # type: ignore[misc]
