"""hvmond's [tls], [access] and [audit] tables, and agents' calls in the audit trail."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import hvmon
from hvmon.daemon.agent import AgentHealth, AgentSpec
from hvmon.daemon.app import Daemon
from hvmon.daemon.config import ConfigError, parse_config
from hvmon.daemon.context import AgentContext
from hvmon.daemon.plugins import build_plugin_host
from hvmon.hookspecs import hookimpl


class Boss:
    """An agent that remembers its context."""

    contexts: list[AgentContext] = []

    async def start(self, ctx: AgentContext) -> None:
        Boss.contexts.append(ctx)

    async def stop(self) -> None:
        pass

    def health(self) -> AgentHealth:
        return AgentHealth()


class Plugin:
    def __init__(self, specs: Sequence[AgentSpec]) -> None:
        self.specs = list(specs)

    @hookimpl
    def hvmon_add_agents(self) -> list[AgentSpec]:
        return self.specs


def make_daemon(tmp_path: Path, data: dict[str, Any]) -> Daemon:
    host = build_plugin_host(plugins=[(Plugin([AgentSpec("boss", Boss)]), "sec-agents")],
                             disabled=())
    schema = host.schema()
    config = parse_config(data, schema)
    return Daemon(host, schema, config, run_dir=tmp_path / "run", state_dir=tmp_path / "state",
                  rpc=True)


def schema_config(data: dict[str, Any]) -> Any:
    host = build_plugin_host(disabled=())
    return parse_config(data, host.schema())


def test_tls_is_off_by_default_and_audit_too() -> None:
    config = schema_config({})
    assert config.tables["tls"]["enabled"] is False
    assert config.tables["tls"]["port"] == 16514
    assert config.tables["audit"]["path"] == "" and config.tables["access"]["rules"] == ""


def test_bad_security_tables_name_every_problem() -> None:
    with pytest.raises(ConfigError) as info:
        schema_config({"tls": {"port": 70000, "cert": "relative.pem", "allowed_dns": "CN=x",
                               "listeners": [{"port": 1, "colour": 1}]},
                       "audit": {"path": "audit.log", "chain": "yes"},
                       "access": {"rules": "rules.toml"}})
    message = str(info.value)
    assert "\n" not in message
    for part in ("tls: port: must be a TCP port", "tls: cert: must be an absolute file path",
                 "tls.allowed_dns: must be a list", "tls: listeners[0].colour: unknown key",
                 "audit: path: must be an absolute path", "audit.chain: must be true or false",
                 "access: rules: must be an absolute path"):
        assert part in message


def test_the_daemon_serves_tls_applies_rules_and_audits_agents(
        tmp_path: Path, pki: dict[str, Path]) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(f'[[rule]]\nuid = {os.getuid()}\nallow = ["@read"]\n'
                     '[[rule]]\ndn = "O=Example,CN=admin"\nallow = ["*"]\n')
    audit = tmp_path / "log" / "audit.jsonl"
    data = {
        "daemon": {"allow_control": True, "snapshot_interval": 0},
        "agents": {"boss": {"enabled": True, "control": True}},
        "tls": {"enabled": True, "listen": ["127.0.0.1"], "port": 0, "cert": str(pki["cert"]),
                "key": str(pki["key"]), "ca": str(pki["ca"]),
                "allowed_dns": ["O=Example,CN=admin"]},
        "access": {"rules": str(rules)},
        "audit": {"path": str(audit), "chain": True},
    }
    daemon = make_daemon(tmp_path, data)
    Boss.contexts.clear()

    def clients() -> None:
        host, port = daemon.rpc.tls_addresses[0]
        with hvmon.open(f"test+tls://{host}:{port}/default?pkipath={pki['admin']}") as conn:
            conn.lookup_domain_by_name("test").suspend()
        with hvmon.open(daemon.client_uri()) as conn:
            dom = conn.lookup_domain_by_name("test")
            with pytest.raises(hvmon.core.errors.AccessDenied):
                dom.resume()

    async def scenario() -> None:
        await daemon.start()
        try:
            await asyncio.to_thread(clients)
            [ctx] = Boss.contexts
            await asyncio.to_thread(ctx.connection.lookup_domain_by_name("test").resume)
        finally:
            await daemon.stop()

    asyncio.run(scenario())
    recs = [json.loads(line) for line in audit.read_text().splitlines()]
    begins = [(r["identity"], r["operation"]) for r in recs if r["phase"] == "begin"]
    assert begins == [("dn=O=Example,CN=admin", "Domain.suspend"),
                      ("agent=boss", "Domain.resume")]
    assert all(r["result"] == "ok" for r in recs if r["phase"] == "end")
    from hvmon.daemon.rpc.audit import verify

    assert verify(audit) == []


def test_a_bad_rule_file_stops_the_start_with_one_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nuid = 0\nallow = ["domain:nope"]\n')
    daemon = make_daemon(tmp_path, {"access": {"rules": str(rules)},
                                    "daemon": {"snapshot_interval": 0}})
    with pytest.raises(hvmon.HvmonError, match="unknown permission 'domain:nope'"):
        asyncio.run(daemon.start())
