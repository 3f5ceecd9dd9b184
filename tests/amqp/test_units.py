"""The pieces without a broker: options, request decoding, the method table and its gates,
the request log, message bodies, the console's argument parsing and views."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import hvmon
from hvmon.core.errors import AccessDenied, InvalidArgument
from hvmon.core.types import ShutoffReason
from hvmon.daemon.context import shared_connection
from hvmon.plugins.amqp.agent import next_epoch
from hvmon.plugins.amqp.broker import connection_url
from hvmon.plugins.amqp.config import OPTIONS, Names, broker_settings, validate_options
from hvmon.plugins.amqp.console.cli import call_args, object_args
from hvmon.plugins.amqp.console.client import HostView
from hvmon.plugins.amqp.console.views import domains_table, host_rows, hosts_table
from hvmon.plugins.amqp.dedup import RequestLog
from hvmon.plugins.amqp.dispatcher import Dispatcher
from hvmon.plugins.amqp.methods import authorize, build_methods
from hvmon.plugins.amqp.publisher import Publisher
from hvmon.plugins.amqp.schema import (
    Request,
    RequestError,
    data_body,
    decode_request,
    event_severity,
    heartbeat_body,
)

from .schemas import validate


# --- options -------------------------------------------------------------------------------
def test_default_options_are_valid_and_bad_ones_are_each_named() -> None:
    assert validate_options(OPTIONS) == []
    bad = {**OPTIONS, "url": "http://x/", "prefix": "a b", "host": "x/y", "prefetch": 0,
           "heartbeat_interval": -1, "allowed_users": ["", 3], "password": "s3cret",
           "tls_ca_file": "/nonexistent/ca.pem", "username": ""}
    problems = validate_options(bad)
    assert [p.split(":")[0] for p in problems] == [
        "url", "tls_ca_file", "username", "prefix", "host", "heartbeat_interval", "prefetch",
        "allowed_users"]
    assert not any("s3cret" in p for p in problems)
    assert validate_options({**OPTIONS, "url": "amqp://guest:pw@localhost/"}) == [
        "url: put credentials in username/password(_file), not the URL"]


def test_password_file_and_secrets_stay_out_of_reprs(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("t0p s3cret\n")
    settings = broker_settings({**OPTIONS, "password_file": str(secret), "username": "hv1"})
    assert settings.password == "t0p s3cret"
    assert "s3cret" not in repr(settings)
    url = connection_url(settings, "hvmon-agent hvmon hv1")
    assert url.startswith("amqp://hv1:t0p%20s3cret@127.0.0.1:5672/?")
    assert "name=hvmon-agent+hvmon+hv1" in url and "heartbeat=30" in url
    assert settings.ssl_context() is None


def test_names_replace_dots_in_routing_keys_only() -> None:
    names = Names("dc1")
    assert names.agent_queue("hv1.example.com") == "dc1.agent.hv1_example_com"
    assert names.heartbeat_key("hv1.example.com") == "agent.ind.heartbeat.hv1_example_com"
    assert names.data_key("hv1.x", "domain") == "agent.ind.data.hv1_x.domain"
    assert names.event_key("hv1.x", "domain") == "agent.ind.event.hv1_x.domain"


def test_epoch_counts_starts(tmp_path: Path) -> None:
    assert [next_epoch(tmp_path / "state", "hv1.x") for _ in range(3)] == [1, 2, 3]
    assert next_epoch(tmp_path / "state", "hv2.x") == 1


# --- requests ------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "text"), [
    (b"{", "request is not JSON"),
    (b"null", "request must be a JSON object"),
    (b'{"id": "", "method": "a.b"}', "request 'id' must be a string of 1 to 128"),
    (json.dumps({"id": "x" * 129, "method": "a.b"}).encode(), "1 to 128 characters"),
    (b'{"id": "1", "method": 3}', "request 'method' must be a string"),
    (b'{"id": "1", "method": "a.b", "args": 3}', "request 'args' must be an object"),
    (b" " * 300, "request too large: 300 bytes (limit 256)"),
])
def test_decode_request_refuses_with_code_8(body: bytes, text: str) -> None:
    with pytest.raises(RequestError) as info:
        decode_request(body, 256)
    assert info.value.code == 8 and text in str(info.value)


def test_decode_request_keeps_the_id_for_the_error_reply() -> None:
    with pytest.raises(RequestError) as info:
        decode_request(b'{"id": "r1", "method": "a.b", "args": [], "schema": "x"}', 1024)
    assert info.value.request_id == "r1"
    assert decode_request(b'{"id": "r1", "method": "domain.list"}', 1024) == Request(
        "r1", "domain.list", {})


# --- the method table and its gates ------------------------------------------------------
METHODS = build_methods()
MUTATING = sorted(name for name, m in METHODS.items() if m.mutates)


def test_the_table_covers_libvirt_qpid_and_networks() -> None:
    expected = {
        "node.domainDefineXML", "node.storagePoolDefineXML", "node.storagePoolCreateXML",
        "node.networkDefineXML", *(f"domain.{m}" for m in (
            "create", "destroy", "shutdown", "suspend", "resume", "reboot", "undefine",
            "getXMLDesc", "migrate", "list", "info", "stats")),
        *(f"pool.{m}" for m in ("create", "build", "destroy", "delete", "undefine", "refresh",
                                "createVolumeXML", "getXMLDesc", "list", "info")),
        "volume.getXMLDesc", "volume.delete", "volume.list", "volume.info",
        *(f"network.{m}" for m in ("create", "destroy", "undefine", "getXMLDesc", "list",
                                   "info")), "node.info", "node.list", "node.stats"}
    assert set(METHODS) == expected
    # "mutates" comes from the API registry: the control calls and nothing else
    assert not any(METHODS[n].mutates for n in METHODS if n.endswith(
        (".getXMLDesc", ".list", ".info", ".stats")))
    assert METHODS["domain.getXMLDesc"].privileged({"secure": True})


def _args(name: str) -> dict[str, Any]:
    cls = name.split(".")[0]
    if name.startswith("node."):
        return {"xml": "<x/>"}
    if cls == "volume":
        return {"pool": "default-pool", "name": "v1"}
    args: dict[str, Any] = {"name": {"domain": "test", "pool": "default-pool",
                                     "network": "default"}[cls]}
    if name == "pool.createVolumeXML":
        args["xml"] = "<volume><name>v2</name><capacity>1024</capacity></volume>"
    if name == "domain.migrate":
        args["destination_uri"] = "test:///other"
    return args


@pytest.mark.parametrize("name", MUTATING)
def test_every_mutating_method_is_refused_by_the_central_gate_when_read_only(
        name: str) -> None:
    rw = hvmon.open("test:///default")
    try:
        rw.lookup_pool_by_name("default-pool").create_volume_xml(
            "<volume><name>v1</name><capacity>1024</capacity></volume>")
        ro = shared_connection(rw.driver, readonly=True)
        dispatcher = Dispatcher(ro, lambda: ro.get_snapshot(0), host="hv1",
                                allowed_users=["ops"], timeout=5)
        reply = asyncio.run(dispatcher.execute(Request("1", name, _args(name)), "ops"))
        assert reply["ok"] is False
        assert reply["error"] == {
            "code": 29, "name": "operation-denied",
            "text": reply["error"]["text"]}, reply
        assert "read-only connection" in reply["error"]["text"]
        validate("reply", reply)
        # and nothing changed
        assert rw.lookup_domain_by_name("test").state()[0] == hvmon.DomainState.RUNNING
        assert [v.name for v in rw.lookup_pool_by_name("default-pool").list_volumes()] == ["v1"]
    finally:
        rw.close()


def test_allow_list_applies_to_mutating_and_secure_calls_only() -> None:
    allowed = frozenset({"ops"})
    suspend, xml = METHODS["domain.suspend"], METHODS["domain.getXMLDesc"]
    authorize(suspend, {}, "ops", allowed)
    authorize(xml, {"name": "test"}, None, allowed)
    with pytest.raises(AccessDenied, match="user 'eve' may not call domain.suspend"):
        authorize(suspend, {}, "eve", allowed)
    with pytest.raises(AccessDenied, match="a request without user_id"):
        authorize(xml, {"secure": True}, None, allowed)
    with pytest.raises(InvalidArgument, match="argument 'inactive' has the wrong type"):
        xml.check_args({"name": "test", "inactive": "yes"})
    with pytest.raises(InvalidArgument, match="missing argument 'xml'"):
        METHODS["node.domainDefineXML"].check_args({})


def test_control_works_with_control_and_reads_come_from_the_snapshot() -> None:
    conn = hvmon.open("test:///default")
    try:
        dispatcher = Dispatcher(conn, lambda: conn.get_snapshot(0), host="hv1",
                                allowed_users=["ops"], timeout=5)

        def run(method: str, **args: Any) -> Any:
            return asyncio.run(dispatcher.execute(Request("1", method, args), "ops"))

        assert run("domain.suspend", name="test")["result"]["name"] == "test"
        assert run("domain.info", name="test")["result"]["state_label"] == "paused"
        again = run("domain.suspend", name="test")
        assert again["error"]["code"] == 55  # already paused: operation-invalid
        assert run("domain.info", name="nosuch")["error"]["code"] == 42
        assert run("node.list", **{"class": "network"})["result"][0]["name"] == "default"
        assert "cpu.time" in run("domain.stats", name="test")["result"]
    finally:
        conn.close()


# --- the request log ----------------------------------------------------------------------
def test_request_log_runs_each_key_once_and_stays_bounded() -> None:
    async def scenario() -> None:
        log = RequestLog(2)
        runs: list[str] = []
        gate = asyncio.Event()

        async def work(key: str) -> bytes:
            runs.append(key)
            await gate.wait()
            return key.encode()

        first = asyncio.create_task(log.once(("u", "a"), lambda: work("a")))
        await asyncio.sleep(0)
        dup = asyncio.create_task(log.once(("u", "a"), lambda: work("a")))
        await asyncio.sleep(0)
        gate.set()
        assert await first == await dup == b"a"
        assert await log.once(("u", "a"), lambda: work("a")) == b"a"
        assert runs == ["a"] and log.duplicates == 2
        await log.once(("u", "b"), lambda: work("b"))
        await log.once(("u", "c"), lambda: work("c"))
        assert len(log) == 2
        await log.once(("u", "a"), lambda: work("a"))  # forgotten: runs again
        assert runs == ["a", "b", "c", "a"]

    asyncio.run(scenario())


# --- bodies ---------------------------------------------------------------------------------
def test_bodies_match_the_documented_schemas_and_only_changes_are_republished() -> None:
    conn = hvmon.open("test:///default")
    try:
        snap = conn.get_snapshot(0)
        for cls in ("node", "domain", "pool", "volume", "network"):
            validate("data", data_body(snap, cls, "hv1.example", 1))
        validate("heartbeat", heartbeat_body("hv1", agent="a:b:hv1", version="1", epoch=1,
                                             interval=5, queue="q", control=False, snap=snap))
        publisher = Publisher(None, conn._snapshots, host="hv1",  # type: ignore[arg-type]
                              epoch=1, heartbeat_info={}, heartbeat_interval=1,
                              data_interval=1, snapshot_max_age=None)
        assert len(publisher.data_messages(snap, full=True)) == 5
        assert publisher.data_messages(conn.get_snapshot(0), full=False) == []  # stats only
        conn.lookup_domain_by_name("test").suspend()
        changed = publisher.data_messages(conn.get_snapshot(0), full=False)
        assert [key for key, _ in changed] == ["agent.ind.data.hv1.domain"]
    finally:
        conn.close()


def test_event_severity() -> None:
    assert event_severity("started", "booted") == "info"
    assert event_severity("stopped", "destroyed") == "notice"
    assert event_severity("stopped", "crashed") == "error"
    assert event_severity("crashed", "panicked") == "error"
    assert event_severity("suspended", "ioerror") == "warning"


# --- the console's pieces ------------------------------------------------------------------
def test_call_arguments(tmp_path: Path) -> None:
    xml = tmp_path / "d.xml"
    xml.write_text("<domain/>")
    assert call_args(["web1", "live:=false", f"xml=@{xml}", "uri=a=b"]) == {
        "name": "web1", "live": False, "xml": "<domain/>", "uri": "a=b"}
    assert object_args("volume", "pool1/v1") == {"pool": "pool1", "name": "v1"}
    assert object_args("volume", "/var/lib/v1") == {"path": "/var/lib/v1"}
    with pytest.raises(InvalidArgument, match="use key=value"):
        call_args(["a", "b"])


def test_views() -> None:
    up = HostView("hv1")
    up.update({"epoch": 2, "interval": 5, "control": True,
               "facts": {"uri": "test:///default", "statistics": {"domains": 3}}}, now=100)
    stale = HostView.from_dict({**up.to_dict(), "host": "hv2"})
    rows = host_rows([stale, up], now=104)
    assert [(r["host"], r["status"], r["last_seen_ago"]) for r in rows] == [
        ("hv1", "up", 4.0), ("hv2", "stale", 4.0)]
    assert hosts_table(rows).splitlines()[2].split()[:4] == ["hv1", "up", "4s", "ago"]
    text = domains_table([{"host": "hv1", "id": -1, "name": "web", "state_label": "shut off"}])
    assert text.splitlines()[2].split() == ["hv1", "-", "web", "shut", "off"]


# --- failures a user sees ------------------------------------------------------------------
def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _console(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from hvmon.cli.main import collect_commands, main
    from hvmon.plugins.amqp.plugin import hvmon_add_cli_commands

    code = main(["console", "--state", "", *argv],
                commands=collect_commands([hvmon_add_cli_commands()]))
    out, err = capsys.readouterr()
    return code, out, err


def test_console_errors_are_one_line(capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    code, _, err = _console(capsys, "--url", "http://x/", "hosts")
    assert code == 2 and err == "error: console: --url: must start with amqp:// or " \
                                "amqps://, got 'http://x/'\n"
    secret = tmp_path / "pw"
    secret.write_text("s3cret")
    port = _closed_port()
    code, _, err = _console(capsys, "--url", f"amqp://127.0.0.1:{port}/",
                            "--password-file", str(secret), "--timeout", "5", "list")
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith(f"error: cannot connect to the broker at amqp://127.0.0.1:{port}/: ")
    assert "s3cret" not in err
    code, _, err = _console(capsys, "call")
    assert code == 2


def test_agent_without_a_broker_fails_in_one_line_and_is_retried(tmp_path: Path) -> None:
    from .conftest import amqp_options, make_daemon, running

    port = _closed_port()
    daemon = make_daemon(tmp_path, "test:///default",
                         amqp_options("hvmon", "hv1.example", url=f"amqp://127.0.0.1:{port}/",
                                      password="s3cret"))

    async def scenario() -> None:
        async with running(daemon):
            assert daemon.supervisor is not None
            view = daemon.supervisor.status()["amqp"]
            assert view["status"] == "failed"
            assert view["message"].startswith(
                f"ConnectionError: cannot connect to the broker at amqp://127.0.0.1:{port}/")
            assert "s3cret" not in view["message"]

    asyncio.run(scenario())


def test_tls_context_from_the_options(tmp_path: Path) -> None:
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hvmon test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "c.pem", tmp_path / "k.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    options = {**OPTIONS, "url": "amqps://broker.example:5671/", "tls_ca_file": str(cert_file),
               "tls_cert_file": str(cert_file), "tls_key_file": str(key_file)}
    assert validate_options(options) == []
    context = broker_settings(options).ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert connection_url(broker_settings(options)).startswith(
        "amqps://guest:guest@broker.example:5671/?")


def test_watch_turns_heartbeats_into_status_changes() -> None:
    from hvmon.plugins.amqp.console.cli import HostTracker

    hv1 = HostView("hv1")
    hv1.update({"epoch": 1, "interval": 1.0}, now=100)
    hosts = {"hv1": hv1}
    tracker = HostTracker(hosts, stale_after=3)
    assert tracker.changes(101) == []
    assert tracker.changes(104) == [("hv1", "stale")]
    hv1.update({"epoch": 1, "interval": 1.0}, now=105)
    hosts["hv2"] = HostView("hv2")
    hosts["hv2"].update({"epoch": 4, "interval": 1.0}, now=105)
    assert tracker.changes(105) == [("hv1", "up"), ("hv2", "up")]
    hv1.update({"epoch": 2, "interval": 1.0}, now=106)
    assert tracker.changes(106) == [("hv1", "restarted")]
    assert tracker.changes(106.5) == []


def test_domain_migrate_is_driven_by_the_agents_daemon(tmp_path: Path) -> None:
    """Peer to peer: the source side opens the destination URI itself."""
    node = tmp_path / "empty-host.xml"
    node.write_text("<node/>")
    rw = hvmon.open("test:///default")
    try:
        dispatcher = Dispatcher(rw, lambda: rw.get_snapshot(0), host="hv1",
                                allowed_users=["ops"], timeout=5)
        reply = asyncio.run(dispatcher.execute(Request("1", "domain.migrate", {
            "name": "test", "destination_uri": f"test://{node}", "live": True}), "ops"))
        assert reply["ok"] is True, reply
        assert reply["result"]["name"] == "test"
        validate("reply", reply)
        assert rw.lookup_domain_by_name("test").state() == (
            hvmon.DomainState.SHUTOFF, ShutoffReason.MIGRATED)
        bad = asyncio.run(dispatcher.execute(Request("2", "domain.migrate", {
            "name": "test", "destination_uri": "nonsense"}), "ops"))
        assert bad["ok"] is False and "\n" not in bad["error"]["text"]
    finally:
        rw.close()
