"""The command line: help, version, bad arguments (UNKNOWN + usage), defaults."""

from __future__ import annotations

import pytest

from hvmon.plugins.nagios.options import DEFAULT_STATES, MODES, build_parser, parse_args

from .conftest import Check


def test_help_lists_every_mode_and_option_and_exits_unknown(check: Check) -> None:
    result = check("--help")
    assert result.code == 3
    assert result.out.startswith("usage: check_hvmon")
    for mode in MODES:
        assert mode in result.out
    for action in build_parser()._actions:
        for flag in action.option_strings:
            assert flag in result.out, flag


def test_version_exits_unknown(check: Check) -> None:
    import nagiosplugin

    import hvmon

    result = check("-V")
    assert result.code == 3
    assert result.out == (f"check_hvmon v{hvmon.__version__} (hvmon {hvmon.__version__}, "
                          f"nagiosplugin {nagiosplugin.__version__})\n")
    assert check("host", "--version").code == 3


@pytest.mark.parametrize(("argv", "mode", "message"), [
    ([], "ARGUMENTS", "the following arguments are required: MODE"),
    (["bogus"], "ARGUMENTS", "invalid choice: 'bogus'"),
    (["host", "--bogus"], "ARGUMENTS", "unrecognized arguments: --bogus"),
    (["host", "-w", "abc"], "HOST", "argument -w/--warning: invalid range 'abc'"),
    (["pool", "--all", "-c", "20:10"], "POOL", "argument -c/--critical: invalid range '20:10'"),
    (["pool", "--all", "-c", "1:2:3"], "POOL", "invalid range '1:2:3'"),
    (["host", "-t", "0"], "HOST", "argument -t/--timeout: expected a positive number"),
    (["host", "-t", "soon"], "HOST", "expected a positive number of seconds, got 'soon'"),
    (["host", "--max-age", "-1"], "HOST", "argument --max-age: expected a number"),
    (["domain"], "DOMAIN", "mode domain needs a NAME"),
    (["pool"], "POOL", "mode pool needs a NAME or --all"),
    (["network", "default", "--all"], "NETWORK", "needs a NAME or --all (not both)"),
    (["host", "extra"], "HOST", "mode host takes no NAME (got 'extra')"),
    (["domain", "test", "--all"], "DOMAIN", "argument --all: applies only to modes pool, "
                                            "network"),
    (["host", "--include", "a*"], "HOST", "argument --include: applies only to mode domains"),
    (["domain", "test", "--state", "running"], "DOMAIN", "expected STATE=LEVEL"),
    (["domain", "test", "--state", "running=fine"], "DOMAIN", "got 'running=fine'"),
    (["domain", "test", "--state", "flying=ok"], "DOMAIN", "got 'flying=ok'"),
])
def test_bad_arguments_are_unknown_with_a_usage_line(check: Check, argv: list[str], mode: str,
                                                     message: str) -> None:
    result = check(*argv)
    assert result.code == 3
    status, usage = result.lines
    assert status.startswith(f"HVMON {mode} UNKNOWN - "), status
    assert message in status
    assert "|" not in result.out
    assert usage.startswith("Usage: check_hvmon ")


def test_options_may_follow_the_mode_and_name() -> None:
    options = parse_args(["domain", "-w", "50", "web1", "-c", "90", "-U", "test:///default"])
    assert (options.mode, options.name, options.uri) == ("domain", "web1", "test:///default")
    assert (str(options.warning), str(options.critical)) == ("50", "90")


def test_default_uri_is_the_local_daemon_unless_the_environment_says_otherwise() -> None:
    assert parse_args(["host"], environ={}).uri == "qemu:///system"
    env = {"HVMON_DEFAULT_URI": "test:///default"}
    assert parse_args(["host"], environ=env).uri == "test:///default"
    assert parse_args(["host", "-U", "test:///x.xml"], environ=env).uri == "test:///x.xml"


def test_default_uri_reaches_the_read_only_socket() -> None:
    from hvmon.core.drivers import remote_target
    from hvmon.core.paths import default_run_dir
    from hvmon.core.uri import parse_uri

    target = remote_target(parse_uri(parse_args(["host"], environ={}).uri), readonly=True)
    assert target is not None
    assert target[1] == default_run_dir() / "hvmon-sock-ro"


def test_default_ranges_per_mode() -> None:
    def ranges(*argv: str) -> tuple[str, str]:
        options = parse_args(list(argv), environ={})
        return str(options.warning), str(options.critical)

    assert ranges("pool", "--all") == ("80", "90")
    assert ranges("network", "--all") == ("80", "90")
    assert ranges("daemon") == ("60", "300")
    assert ranges("domains") == ("", "0")
    assert ranges("domain", "x") == ("", "")
    host = parse_args(["host"], environ={})
    assert (str(host.memory_warning), str(host.memory_critical)) == ("1", "1.5")
    assert (str(host.vcpu_warning), str(host.vcpu_critical)) == ("4", "8")
    both = parse_args(["host", "-w", "2", "-c", "3", "--vcpu-critical", "10"], environ={})
    assert (str(both.memory_warning), str(both.memory_critical)) == ("2", "3")
    assert (str(both.vcpu_warning), str(both.vcpu_critical)) == ("2", "10")


def test_state_overrides_merge_with_the_defaults() -> None:
    options = parse_args(["domain", "x", "--state", "paused=ok,shutoff=warning",
                          "--state", "MISSING=Unknown"], environ={})
    assert options.states == {**DEFAULT_STATES, "paused": "ok", "shutoff": "warning",
                              "missing": "unknown"}


def test_timeout_and_max_age_take_fractions() -> None:
    options = parse_args(["host", "-t", "2.5", "--max-age", "0"], environ={})
    assert (options.timeout, options.max_age) == (2.5, 0.0)
    assert parse_args(["host"], environ={}).timeout == 10.0
