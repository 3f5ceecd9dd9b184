"""``[agents.snmp]`` options: defaults, one-line problems, secrets never shown or logged."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import hvmon.plugins.snmp.plugin as plugin_module
from hvmon.daemon.config import ConfigError, parse_config
from hvmon.daemon.plugins import build_plugin_host
from hvmon.plugins.snmp.config import OPTIONS, parse_settings, validate_options

from .conftest import DaemonFactory, free_udp_port, snmp, snmp_daemon_config

SECRET = "very-secret-password"


def problems(**options: Any) -> list[str]:
    return list(validate_options({**OPTIONS, **options}))


def test_defaults_are_valid_and_read_only() -> None:
    assert problems() == []
    settings = parse_settings(OPTIONS)
    assert list(settings.communities) == ["public"]
    assert not settings.communities["public"].writable
    assert settings.users == [] and settings.targets == []
    spec = plugin_module.hvmon_add_agents()[0]
    assert spec.name == "snmp" and spec.listen == ("127.0.0.1:1161", "[::1]:1161")


@pytest.mark.parametrize(("options", "expected"), [
    ({"mode": "proxy"}, ["mode: must be one of standalone, agentx, got 'proxy'"]),
    ({"mode": "agentx", "agentx_socket": "relative/path"}, ["agentx_socket: "]),
    ({"rw_community": "public"}, ["rw_community: must differ from community"]),
    ({"community": ""}, ["community: empty, and no rw_community or users"]),
    ({"users": [{"name": "a", "auth": "SHA-1", "auth_password": SECRET}]},
     ["users[0].auth: must be one of MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512"]),
    ({"users": [{"name": "a", "auth": "SHA-256", "auth_password": "short"}]},
     ["users[0].auth_password: must be a string of at least 8 characters"]),
    ({"users": [{"name": "a", "auth": "SHA-256", "auth_password": SECRET, "priv": "DES",
                 "priv_password": SECRET}]}, ["users[0].priv: must be one of AES"]),
    ({"users": [{"name": "a", "auth": "SHA-256", "auth_password": SECRET, "priv": "AES"}]},
     ["users[0].priv_password: must be a string of at least 8"]),
    ({"users": [{"name": "a", "auth": "SHA-256", "auth_password": SECRET, "access": "admin",
                 "colour": 1}]},
     ["users[0].colour: unknown key", "users[0].access: must be 'ro' or 'rw'"]),
    ({"users": [{"name": "a", "auth": "SHA-256", "auth_password": SECRET, "view": ["x.y"]}]},
     ["users[0].view: not a numeric OID"]),
    ({"trap_targets": [{"address": "nowhere", "version": "v4"}]},
     ["trap_targets[0].address: ", "trap_targets[0].version: must be 'v2c' or 'v3'"]),
    ({"trap_targets": [{"address": "127.0.0.1:162", "version": "v3", "user": "ghost"}]},
     ["trap_targets[0].user: must name one of the users"]),
    ({"snapshot_max_age": -1}, ["snapshot_max_age: must be a number of seconds >= 0"]),
    ({"max_message_size": 100}, ["max_message_size: must be from 484 to 65507"]),
])
def test_bad_options_one_line_each_no_secrets(options: dict[str, Any],
                                              expected: list[str]) -> None:
    found = problems(**options)
    assert len(found) == len(expected), found
    for problem, start in zip(found, expected, strict=True):
        assert start in problem
        assert "\n" not in problem and SECRET not in problem and "short" not in problem


def test_the_daemon_config_reports_every_problem_in_one_error() -> None:
    host = build_plugin_host(plugins=[(plugin_module, "snmp-test")], disabled=("snmp",))
    data = snmp_daemon_config(1161, mode="proxy", max_message_size=1,
                              users=[{"name": "x", "auth": "SHA-256", "auth_password": SECRET,
                                      "priv": "AES", "priv_password": "tiny"}])
    with pytest.raises(ConfigError) as info:
        parse_config(data, host.schema())
    assert len(info.value.problems) == 3
    assert all(p.startswith("agents.snmp: ") for p in info.value.problems)
    assert SECRET not in str(info.value) and "tiny" not in str(info.value)


def test_passwords_are_never_logged(start_daemon: DaemonFactory,
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_udp_port()
    user = {"name": "ops", "auth": "SHA-256", "auth_password": SECRET, "priv": "AES",
            "priv_password": SECRET + "2", "access": "rw"}
    start_daemon(snmp_daemon_config(port, users=[user], rw_community="private"))
    wrong = snmp("snmpget", "-v3", "-l", "authPriv", "-u", "ops", "-a", "SHA-256", "-A",
                 "wrong-password", "-x", "AES", "-X", SECRET, f"127.0.0.1:{port}", "sysUpTime.0")
    assert wrong.returncode != 0
    ok = snmp("snmpset", "-v2c", "-c", "private", f"127.0.0.1:{port}",
              "1.3.6.1.4.1.32473.1.1.1.0", "s", "x")
    assert ok.returncode != 0
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "listening on udp 127.0.0.1:" in text
    assert SECRET not in text and "wrong-password" not in text and "private" not in text
    assert repr(parse_settings({**OPTIONS, "users": [user]})).count(SECRET) == 0


def test_the_documented_configuration_is_valid_and_complete() -> None:
    import re
    import tomllib

    text = (Path(__file__).resolve().parents[2] / "docs" / "snmp.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block, "no ```toml block under '## Configuration'"
    data = tomllib.loads(block.group(1))
    host = build_plugin_host(plugins=[(plugin_module, "snmp-test")], disabled=("snmp",))
    config = parse_config(data, host.schema())
    assert config.agents["snmp"].enabled
    assert set(OPTIONS) <= set(data["agents"]["snmp"]), "an option is not documented"
