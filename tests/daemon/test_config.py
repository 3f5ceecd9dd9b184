"""Configuration validation: every problem in one message, listen addresses, defaults."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from hvmon.daemon.addresses import format_address, parse_address
from hvmon.daemon.agent import AgentHealth, AgentSpec
from hvmon.daemon.config import (
    AGENT_KEYS,
    DAEMON_KEYS,
    ConfigError,
    ConfigSection,
    DaemonConfig,
    Schema,
    default_config,
    load_config,
    parse_config,
)


class Idle:
    async def start(self, ctx: object) -> None:
        pass

    async def stop(self) -> None:
        pass

    def health(self) -> AgentHealth:
        return AgentHealth()


def _compat(options: Mapping[str, Any]) -> list[str]:
    return [] if options["compat"] in ("hvmon", "libvirt") else \
        [f"compat: must be hvmon or libvirt, got {options['compat']!r}"]


def _tls(options: Mapping[str, Any]) -> list[str]:
    return ["cert and key go together"] if bool(options["cert"]) != bool(options["key"]) else []


@pytest.fixture
def schema() -> Schema:
    return Schema(
        agents={
            "web": AgentSpec("web", Idle, listen=("127.0.0.1:9177",),
                             options={"compat": "hvmon", "timeout": 2.0, "groups": ["a"]},
                             validate=_compat),
            "push": AgentSpec("push", Idle, options={"server": "127.0.0.1:25826"}),
        },
        sections=(ConfigSection("agents.web", {"timeout": 3.0}),
                  ConfigSection("tls", {"cert": "", "key": ""}, _tls)),
        in_tree=frozenset({"web"}),
    )


def test_a_valid_file_is_parsed_into_frozen_objects(schema: Schema, tmp_path: Path) -> None:
    path = tmp_path / "hvmon.toml"
    path.write_text("""
[daemon]
uri = "test:///default"
allow_control = true
log_format = "json"
log_level = "DEBUG"
rw_socket_mode = "0660"
ro_socket_mode = 0o644
snapshot_interval = 0

[agents.web]
enabled = true
control = true
listen = "[::1]:1161"
timeout = 5

[tls]
cert = "/etc/c.pem"
key = "/etc/k.pem"
""")
    config = load_config(path, schema)
    assert config.path == path
    assert config.daemon.allow_control and config.daemon.log_format == "json"
    assert config.daemon.log_level == "debug"
    assert (config.daemon.rw_socket_mode, config.daemon.ro_socket_mode) == (0o660, 0o644)
    web = config.agents["web"]
    assert web.enabled and web.control
    assert web.listen == ("[::1]:1161",)  # a single string is a one-element list
    assert web.options["timeout"] == 5.0 and isinstance(web.options["timeout"], float)
    assert web.options["compat"] == "hvmon" and web.options["groups"] == ["a"]
    assert config.agents["push"].enabled is False  # with a file, only enabled = true runs
    assert config.enabled == ("web",)
    assert config.tables["tls"]["cert"] == "/etc/c.pem"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.daemon.uri = "qemu:///system"  # type: ignore[misc]
    with pytest.raises(TypeError):
        web.options["timeout"] = 1  # type: ignore[index]


def test_every_problem_is_reported_in_one_message(schema: Schema) -> None:
    data = tomllib.loads("""
colour = "blue"
[daemon]
log_format = "xml"
uri = "nonsense"
restart_delay = 0
sockets = 1
[agents.web]
enabled = "yes"
listen = ["127.0.0.1:9177", "256.1.1.1:80", "::1:161"]
compat = "prom"
timeout = "soon"
shape = "round"
[agents.push]
listen = "127.0.0.1:1"
[agents.ghost]
enabled = true
[tls]
cert = "/c.pem"
""")
    with pytest.raises(ConfigError) as info:
        parse_config(data, schema, path=Path("/etc/hvmon/hvmon.toml"))
    error = info.value
    message = str(error)
    assert "\n" not in message
    assert message.startswith("invalid configuration /etc/hvmon/hvmon.toml: ")
    expected = [
        "daemon.log_format: must be one of text, json, got 'xml'",
        "daemon.uri: invalid connection URI 'nonsense'",
        "daemon.restart_delay: must be > 0, got 0",
        "daemon.sockets: unknown key",
        "agents.web.enabled: must be true or false, got 'yes'",
        "agents.web.listen: address '256.1.1.1:80': '256.1.1.1' is not an IPv4 address",
        "agents.web.timeout: must be a number, got 'soon'",
        "agents.web.shape: unknown key (known: enabled, control, log_level, listen, compat,",
        "agents.web: compat: must be hvmon or libvirt, got 'prom'",
        "agents.push.listen: agent 'push' does not listen",
        "agents.ghost: unknown agent (known: push, web)",
        "tls: cert and key go together",
        "colour: unknown key (known tables: daemon, agents, tls)",
    ]
    for part in expected:
        assert part in message, part
    assert len(error.problems) == len(expected)
    assert error.code == 8  # InvalidArgument


@pytest.mark.parametrize(("value", "reason"), [
    ("127.0.0.1", "must be HOST:PORT"),
    (":9177", "must be HOST:PORT"),
    ("127.0.0.1:http", "port must be a number from 0 to 65535"),
    ("127.0.0.1:65536", "port must be a number from 0 to 65535"),
    ("::1:161", "write IPv6 hosts in brackets"),
    ("[::g]:161", "'::g' is not an IPv6 address"),
    ("[::1:161", "unbalanced '['"),
    ("300.0.0.1:1", "'300.0.0.1' is not an IPv4 address"),
    ("bad_host!:80", "is not an IP address or host name"),
    (9177, "must be a string"),
])
def test_bad_addresses_are_refused_with_a_reason(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("[", r"\[").replace("(", r"\(")):
        parse_address(value)


@pytest.mark.parametrize(("value", "parsed"), [
    ("127.0.0.1:9177", ("127.0.0.1", 9177)),
    ("[::1]:1161", ("::1", 1161)),
    ("localhost:0", ("localhost", 0)),
    ("monitor.example.org:5988", ("monitor.example.org", 5988)),
])
def test_good_addresses(value: str, parsed: tuple[str, int]) -> None:
    assert parse_address(value) == parsed
    assert format_address(*parsed) == value


def test_listen_lists_are_validated_in_the_file(schema: Schema) -> None:
    config = parse_config({"agents": {"web": {"listen": ["127.0.0.1:1", "[::1]:2"]}}}, schema)
    assert config.agents["web"].listen == ("127.0.0.1:1", "[::1]:2")
    with pytest.raises(ConfigError, match="agents.web.listen: must name at least one address"):
        parse_config({"agents": {"web": {"listen": []}}}, schema)
    with pytest.raises(ConfigError, match="must be an address or a list of addresses"):
        parse_config({"agents": {"web": {"listen": 9177}}}, schema)


def test_defaults_without_a_file_enable_the_in_tree_agents(schema: Schema) -> None:
    config = default_config(schema)
    assert config.path is None
    assert config.daemon == DaemonConfig()
    assert config.daemon.uri == "test:///default"
    assert config.enabled == ("web",)
    web = config.agents["web"]
    assert web.listen == ("127.0.0.1:9177",)
    assert web.options["timeout"] == 3.0  # the config hook's default beats the spec's
    assert not web.control and not config.daemon.allow_control  # both default to off
    assert config.tables["tls"] == {"cert": "", "key": ""}


def test_unreadable_and_malformed_files_are_one_line_errors(schema: Schema,
                                                            tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it: No such file or directory"):
        load_config(tmp_path / "missing.toml", schema)
    bad = tmp_path / "bad.toml"
    bad.write_text("[daemon\nuri = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad, schema)
    assert "not valid TOML" in str(info.value) and "\n" not in str(info.value)


def test_the_daemon_key_list_matches_the_dataclass() -> None:
    assert list(DAEMON_KEYS) == [f.name for f in dataclasses.fields(DaemonConfig)]
    assert set(AGENT_KEYS) == {"enabled", "control", "log_level", "listen"}


def test_without_a_file_the_real_plugins_run_all_but_the_broker_agent() -> None:
    """amqp declares durable objects on a broker: it runs only when a config enables it."""
    from hvmon.daemon.plugins import build_plugin_host

    host = build_plugin_host(disabled=())
    config = default_config(host.schema())
    assert {"prometheus", "snmp", "collectd", "cim"} <= set(config.enabled)
    assert "amqp" in config.agents and "amqp" not in config.enabled
