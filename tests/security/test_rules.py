"""Per-user access rules, enforced by the daemon's gate on every transport.

The matrix is generated from the API registry: a caller whose rules grant only
``@read`` gets AccessDenied for every mutating or secure method, over the UNIX
read-write socket (identity from SO_PEERCRED) and over TLS (identity from the
certificate DN), and nothing changes; the permissions it is granted work.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from registrytests import readonly_registry

import hvmon
from hvmon.core.access import AccessGate, Identity
from hvmon.core.api import Connection, api_registry
from hvmon.core.drivers import SharedDriverRef
from hvmon.core.drivers.base import Driver
from hvmon.daemon.rpc.rules import RulesError, load_rules, parse_rules, permission_groups

from .conftest import Server, ServerFactory, tls_settings

core = readonly_registry()
REGISTRY = api_registry()
TRANSPORTS = ["unix", "tls"]
MONITOR_DN = "O=Example,CN=monitor*"


def rules_for(transport: str, allow: list[str]) -> dict[str, Any]:
    who = {"uid": os.getuid()} if transport == "unix" else {"dn": MONITOR_DN}
    return {"rule": [{**who, "allow": allow}]}


def local(server: Server) -> Connection:
    """The daemon side's own read-write connection (setup and fingerprints)."""
    return Connection(cast(Driver, SharedDriverRef(server.driver)), AccessGate())


def remote(server: Server, transport: str, pki: dict[str, Path]) -> Connection:
    if transport == "unix":
        return hvmon.open(server.unix_uri())
    return hvmon.open(server.tls_uri(0, pki["monitor"]))


def start(start_server: ServerFactory, pki: dict[str, Path], transport: str,
          allow: list[str]) -> Server:
    return start_server(rules=rules_for(transport, allow), tls=tls_settings(pki))


@pytest.fixture(params=TRANSPORTS)
def reader(request: pytest.FixtureRequest, start_server: ServerFactory,
           pki: dict[str, Path]) -> Iterator[tuple[Connection, Connection]]:
    """(daemon-side rw connection, a remote connection whose rules grant only @read)."""
    server = start(start_server, pki, request.param, ["@read"])
    rw = local(server)
    core.populate(rw)
    conn = remote(server, request.param, pki)
    assert not conn.readonly and not conn.driver.server_readonly
    yield rw, conn
    conn.close()


@pytest.mark.parametrize("name", core.GUARDED)
def test_read_only_user_is_denied_every_mutating_or_secure_method(reader, name: str) -> None:
    rw, conn = reader
    cls_name, method = name.split(".")
    target = core.target_for(cls_name, conn)
    fn = getattr(type(target), method)
    before = core.fingerprint(rw)
    with pytest.raises(hvmon.core.errors.AccessDenied, match="access denied: .* needs '"):
        getattr(target, method)(**core.args_for(name, fn, conn))
    assert core.fingerprint(rw) == before


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_read_only_user_reads(start_server: ServerFactory, pki: dict[str, Path],
                              transport: str) -> None:
    server = start(start_server, pki, transport, ["@read"])
    with remote(server, transport, pki) as conn:
        dom = conn.lookup_domain_by_name("test")
        assert dom.is_active() and "<domain" in dom.xml_desc()
        assert conn.lookup_pool_by_name("default-pool").info()
        with pytest.raises(hvmon.core.errors.AccessDenied, match="domain:read_secure"):
            dom.xml_desc(secure=True)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_monitoring_user_may_read_and_start_only(start_server: ServerFactory,
                                                 pki: dict[str, Path], transport: str) -> None:
    server = start(start_server, pki, transport, ["@read", "domain:start"])
    local(server).lookup_domain_by_name("test").destroy()
    with remote(server, transport, pki) as conn:
        dom = conn.lookup_domain_by_name("test")
        assert not dom.is_active()
        dom.create()
        assert dom.is_active()
        with pytest.raises(hvmon.core.errors.AccessDenied, match="domain:stop"):
            dom.destroy()
        assert dom.is_active()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_caller_without_a_rule_gets_nothing(start_server: ServerFactory, pki: dict[str, Path],
                                            transport: str) -> None:
    other = {"rule": [{"uid": os.getuid() + 1, "dn": "O=Nobody,CN=x", "allow": ["*"]}]}
    server = start_server(rules=other, tls=tls_settings(pki))
    with remote(server, transport, pki) as conn, \
            pytest.raises(hvmon.core.errors.AccessDenied, match="connect:search_domains"):
        conn.list_all_domains()


def test_read_only_socket_stays_read_only_whatever_the_rules(start_server: ServerFactory,
                                                            pki: dict[str, Path]) -> None:
    server = start(start_server, pki, "unix", ["*"])
    with hvmon.open(server.unix_uri(readonly_socket=True)) as conn, \
            pytest.raises(hvmon.OperationDenied, match="read-only"):
        conn.lookup_domain_by_name("test").destroy()


# --- the rule file itself ------------------------------------------------------------
def test_read_group_holds_no_mutating_or_secure_permission() -> None:
    known, readonly = permission_groups(REGISTRY)
    writing = {s.permission for s in REGISTRY.values() if s.mutates or s.secure}
    writing |= {s.secure_permission for s in REGISTRY.values() if s.secure_permission}
    assert readonly and not readonly & writing
    assert "domain:start" in known and "domain:read_secure" in known


def test_rules_match_every_key_they_name() -> None:
    me = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    ruleset = parse_rules({"rule": [
        {"user": me, "group": group, "allow": ["domain:*"]},
        {"dn": "O=Example,CN=*", "transport": "tls", "allow": ["@read"]},
    ]}, REGISTRY)
    mine = ruleset.policy_for(Identity("unix", uid=os.getuid(), gid=os.getgid()))
    assert mine.allows("domain:start") and not mine.allows("pool:start")
    wrong_gid = ruleset.policy_for(Identity("unix", uid=os.getuid(), gid=os.getgid() + 1))
    assert not wrong_gid.allows("domain:start")
    tls = ruleset.policy_for(Identity("tls", dn="O=Example,CN=ops"))
    assert tls.allows("domain:read") and not tls.allows("domain:start")
    assert not ruleset.policy_for(Identity("tls", dn="O=Evil,CN=ops")).allows("domain:read")


def test_bad_rule_file_names_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[[rule]]\nuid = -1\nallow = ["domain:strat"]\n'
                    '[[rule]]\nallow = ["@read"]\ncolour = "red"\n'
                    '[[rule]]\nuser = "no-such-user-hvmon"\nallow = []\n')
    with pytest.raises(RulesError) as info:
        load_rules(path, REGISTRY)
    message = str(info.value)
    assert "\n" not in message
    for part in ("rule[0].uid", "unknown permission 'domain:strat'", "rule[1]: names no identity",
                 "rule[1].colour: unknown key", "rule[2].user: no such user"):
        assert part in message


def test_unreadable_rule_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read it"):
        load_rules(tmp_path / "missing.toml", REGISTRY)
