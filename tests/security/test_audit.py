"""The audit trail: records written (and fsync'd) before acting, results after, hash chain."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, cast

import pytest

import hvmon
from hvmon.cli.main import main as cli_main
from hvmon.core.access import AccessGate
from hvmon.core.api import Connection
from hvmon.core.drivers import SharedDriverRef
from hvmon.core.drivers.base import Driver
from hvmon.daemon.rpc.audit import AuditLog, verify

from .conftest import Server, ServerFactory, tls_settings

DISK = ("<disk type='file' device='disk'><source file='/guest/hotplug.img'/>"
        "<target dev='vdb' bus='virtio'/></disk>")
SECRET = ("<secret ephemeral='no' private='no'><usage type='volume'>"
          "<volume>/guest/luks.img</volume></usage></secret>")


def records(server: Server) -> list[dict[str, Any]]:
    assert server.security.audit is not None
    lines = server.security.audit.path.read_text().splitlines()
    return [json.loads(line) for line in lines]


def pairs(server: Server, operation: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(begin, end) records of ``operation``, in order."""
    recs = records(server)
    ends = {r["begin"]: r for r in recs if r["phase"] == "end"}
    return [(r, ends.get(r["seq"], {})) for r in recs
            if r["phase"] == "begin" and r["operation"] == operation]


def local(server: Server) -> Connection:
    return Connection(cast(Driver, SharedDriverRef(server.driver)), AccessGate())


@pytest.fixture
def audited(start_server: ServerFactory) -> Server:
    return start_server(audit=True)


def test_start_and_destroy_are_recorded_with_disks_and_nics(audited: Server) -> None:
    with hvmon.open(audited.unix_uri()) as conn:
        dom = conn.lookup_domain_by_name("test")
        dom.destroy()
        dom.create()
    [(begin, end)] = pairs(audited, "Domain.create")
    assert begin["identity"] == f"uid={os.getuid()},gid={os.getgid()}"
    assert begin["transport"] == "unix" and begin["procedure"] == "domain_lifecycle"
    assert begin["object"] == {"type": "domain", "uuid": dom.uuid, "name": "test",
                               "action": "start"}
    assert {"type": "disk", "device": "disk", "file": "/guest/diskimage1",
            "target": "vda"} in begin["resources"]
    assert {"type": "nic", "kind": "network", "mac": "aa:bb:cc:dd:ee:ff", "network": "default",
            "target": "testnet0"} in begin["resources"]
    assert end["result"] == "ok" and end["seq"] > begin["seq"]
    [(begin, end)] = pairs(audited, "Domain.destroy")
    assert begin["object"]["action"] == "destroy" and end["result"] == "ok"
    assert begin["time"].endswith("+00:00") and begin["permission"] == "domain:stop"
    assert verify(audited.security.audit.path) == []  # type: ignore[union-attr]


def test_reads_are_not_recorded(audited: Server) -> None:
    with hvmon.open(audited.unix_uri()) as conn:
        conn.lookup_domain_by_name("test").xml_desc()
        conn.list_all_domains()
    assert not audited.security.audit.path.exists() or records(audited) == []  # type: ignore


def test_the_record_is_on_disk_before_the_driver_acts(audited: Server) -> None:
    seen: list[list[dict[str, Any]]] = []
    original = audited.driver.domain_lifecycle

    def spy(uuid: str, action: str) -> None:
        seen.append(records(audited))
        original(uuid, action)

    audited.driver.domain_lifecycle = spy  # type: ignore[method-assign]
    with hvmon.open(audited.unix_uri()) as conn:
        conn.lookup_domain_by_name("test").suspend()
    [before] = seen
    assert before[-1]["phase"] == "begin" and before[-1]["operation"] == "Domain.suspend"
    assert records(audited)[-1]["phase"] == "end"


def test_a_failed_call_records_its_error(audited: Server) -> None:
    with hvmon.open(audited.unix_uri()) as conn:
        dom = conn.lookup_domain_by_name("test")
        with pytest.raises(hvmon.HvmonError):
            dom.create()  # already running
    [(begin, end)] = pairs(audited, "Domain.create")
    assert end["result"] == "error" and end["error"] == hvmon.OperationInvalid.code


def test_hot_plug_and_unplug_record_the_device(audited: Server) -> None:
    with hvmon.open(audited.unix_uri()) as conn:
        dom = conn.lookup_domain_by_name("test")
        dom.attach_device(DISK)
        dom.detach_device(DISK)
    for operation in ("Domain.attach_device", "Domain.detach_device"):
        [(begin, end)] = pairs(audited, operation)
        assert begin["resources"] == [{"type": "disk", "device": "disk",
                                       "file": "/guest/hotplug.img", "target": "vdb"}]
        assert end["result"] == "ok"


def test_secret_use_and_storage_are_recorded(audited: Server) -> None:
    with hvmon.open(audited.unix_uri()) as conn:
        secret = conn.define_secret_xml(SECRET)
        secret.set_value(b"hunter2")
        assert secret.get_value() == b"hunter2"
        pool = conn.lookup_pool_by_name("default-pool")
        vol = pool.create_volume_xml("<volume><name>a.img</name><capacity>4096</capacity>"
                                     "</volume>")
        vol.delete()
    [(begin, _)] = pairs(audited, "Secret.get_value")
    assert begin["object"] == {"type": "secret", "uuid": secret.uuid}
    assert pairs(audited, "Secret.set_value")
    [(begin, _)] = pairs(audited, "StoragePool.create_volume_xml")
    assert begin["resources"] == [{"type": "volume", "name": "a.img"}]
    [(begin, end)] = pairs(audited, "StorageVolume.delete")
    assert begin["object"]["name"] == "a.img" and end["result"] == "ok"
    assert "hunter2" not in audited.security.audit.path.read_text()  # type: ignore[union-attr]


def test_migration_phases_are_recorded_on_both_hosts(start_server: ServerFactory) -> None:
    a, b = start_server(audit=True), start_server(audit=True)
    local(b).lookup_domain_by_name("test").destroy()
    local(b).lookup_domain_by_name("test").undefine()
    with hvmon.open(a.unix_uri()) as src, hvmon.open(b.unix_uri()) as dst:
        src.lookup_domain_by_name("test").migrate(dst, live=True)
    source = {r["operation"] for r in records(a) if r["phase"] == "begin"}
    target = {r["operation"] for r in records(b) if r["phase"] == "begin"}
    assert {"Domain.migrate_begin", "Domain.migrate_perform",
            "Domain.migrate_confirm"} <= source
    assert {"Connection.migrate_prepare", "Connection.migrate_finish"} <= target
    [(begin, _)] = pairs(b, "Connection.migrate_prepare")
    assert any(r.get("file") == "/guest/diskimage1" for r in begin["resources"])


def test_tls_callers_are_recorded_by_dn(start_server: ServerFactory,
                                        pki: dict[str, Path]) -> None:
    server = start_server(audit=True, tls=tls_settings(pki))
    with hvmon.open(server.tls_uri(0, pki["admin"])) as conn:
        conn.lookup_domain_by_name("test").suspend()
    [(begin, _)] = pairs(server, "Domain.suspend")
    assert begin["identity"] == "dn=O=Example,CN=admin" and begin["transport"] == "tls"


# --- the hash chain -----------------------------------------------------------------------
def run_verify(path: Path) -> tuple[int, str]:
    from hvmon.cli.audit import commands

    out = io.StringIO()
    err = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["audit", "verify", str(path)], commands=commands())
    return code, out.getvalue() + err.getvalue()


def sample(tmp_path: Path, chain: bool = True) -> Path:
    log = AuditLog(tmp_path / "audit.log", chain=chain)
    log.open()
    for index in range(4):
        log.write({"phase": "begin", "operation": f"Domain.op{index}", "object": {"n": index}})
    log.close()
    return log.path


def test_verify_passes_an_intact_log(tmp_path: Path) -> None:
    code, text = run_verify(sample(tmp_path))
    assert code == 0 and "4 record(s), hash chain intact" in text


@pytest.mark.parametrize("how", ["edit", "delete", "insert", "reorder"])
def test_verify_fails_on_tampering(tmp_path: Path, how: str) -> None:
    path = sample(tmp_path)
    lines = path.read_text().splitlines()
    if how == "edit":
        lines[1] = lines[1].replace("Domain.op1", "Domain.op9")
    elif how == "delete":
        del lines[1]
    elif how == "insert":
        lines.insert(2, lines[2])
    else:
        lines[1], lines[2] = lines[2], lines[1]
    path.write_text("\n".join(lines) + "\n")
    code, text = run_verify(path)
    assert code == 1
    assert "chain broken" in text or "record altered" in text


def test_verify_catches_an_edited_last_record(tmp_path: Path) -> None:
    path = sample(tmp_path)
    text = path.read_text().replace("Domain.op3", "Domain.opX")
    path.write_text(text)
    code, out = run_verify(path)
    assert code == 1 and "line 4: record altered" in out


def test_an_unchained_log_does_not_verify(tmp_path: Path) -> None:
    code, text = run_verify(sample(tmp_path, chain=False))
    assert code == 1 and "not a chained record" in text


def test_the_chain_continues_after_a_restart(tmp_path: Path) -> None:
    path = sample(tmp_path)
    log = AuditLog(path)
    log.open()
    assert log.write({"phase": "begin", "operation": "after-restart"}) == 5
    log.close()
    assert verify(path) == []


def test_the_log_is_private(tmp_path: Path) -> None:
    assert (sample(tmp_path).stat().st_mode & 0o777) == 0o600


def test_daemon_records_tampering_end_to_end(audited: Server) -> None:
    with hvmon.open(audited.unix_uri()) as conn:
        dom = conn.lookup_domain_by_name("test")
        dom.destroy()
        dom.create()
    path = audited.security.audit.path  # type: ignore[union-attr]
    assert run_verify(path)[0] == 0
    path.write_text(path.read_text().replace("/guest/diskimage1", "/guest/other"))
    assert run_verify(path)[0] == 1


def test_an_unwritable_log_refuses_the_call(audited: Server) -> None:
    log = audited.security.audit
    assert log is not None
    log.close()
    log._fd = os.open("/dev/full", os.O_WRONLY)  # every write fails with ENOSPC
    try:
        with hvmon.open(audited.unix_uri()) as conn:
            dom = conn.lookup_domain_by_name("test")
            with pytest.raises(hvmon.OperationFailed, match="audit log .*cannot write"):
                dom.suspend()
            assert dom.state()[0] == hvmon.DomainState.RUNNING
    finally:
        log.close()
