"""The ``collectd`` agent pushing to a real collectd's network plugin: plain, signed, encrypted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    Collectd,
    free_udp_port,
    has_ipv6_loopback,
    make_daemon,
    need,
    run_daemon,
)

PUSH_HOST = "hvpush"


def network_conf(host: str, port: int, level: str = "None", authfile: Path | None = None) -> str:
    auth = f'    AuthFile "{authfile}"\n' if authfile else ""
    return (f'LoadPlugin network\n<Plugin network>\n  <Listen "{host}" "{port}">\n'
            f"    SecurityLevel {level}\n{auth}  </Listen>\n</Plugin>\n")


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.1)


def cpu_rows(collectd: Collectd) -> list[list[str]] | None:
    rows = collectd.csv_rows("virt-test/virt_cpu_total", host=PUSH_HOST)
    return rows if len(rows) >= 3 else None


@pytest.mark.parametrize(("host", "level"), [
    ("127.0.0.1", "none"), ("::1", "none"), ("127.0.0.1", "sign"), ("::1", "encrypt")])
def test_collectd_receives_and_writes_what_the_daemon_snapshot_says(
        start_collectd: Callable[..., Collectd], tmp_path: Path, host: str,
        level: str) -> None:
    if ":" in host:
        need(has_ipv6_loopback(), "no IPv6 loopback on this machine")
    port = free_udp_port(host)
    authfile = None
    if level != "none":
        authfile = tmp_path / "passwd"
        authfile.write_text("hvmon: s3cret\nother: xyz\n")
    collectd = start_collectd(network_conf(host, port, level.title(), authfile))
    server = {"address": address(host, port), "security_level": level}
    if level != "none":
        server |= {"username": "hvmon", "password": "s3cret"}
    daemon = make_daemon(tmp_path, {"servers": [server], "interval": 0.3,
                                    "hostname": PUSH_HOST})

    async def body() -> None:
        rows = await until(lambda: cpu_rows(collectd), 20, "virt_cpu_total rows in the csv")
        cpu = [int(float(r[1])) for r in rows]
        assert cpu == sorted(cpu) and cpu[-1] > cpu[0]  # a live, growing DERIVE counter
        # the values collectd wrote are those of the daemon's snapshot at that time
        assert daemon.snapshots is not None
        snap = daemon.snapshots.current()
        stamp = f"{snap.timestamp:.3f}"

        def row_of(identifier: str) -> list[str] | None:
            found = [r for r in collectd.csv_rows(identifier, host=PUSH_HOST) if r[0] == stamp]
            return found[0] if found else None

        stats = snap.domain("test").stats
        row = await until(lambda: row_of("virt-test/virt_cpu_total"), 10, "the snapshot's row")
        assert int(float(row[1])) == stats["cpu.time"]
        row = await until(lambda: row_of("virt-test/if_octets-testnet0"), 10, "if_octets")
        assert [int(float(v)) for v in row[1:]] == [stats["net.0.rx.bytes"],
                                                    stats["net.0.tx.bytes"]]
        row = await until(lambda: row_of("virt-test/disk_ops-vda"), 10, "disk_ops")
        assert [int(float(v)) for v in row[1:]] == [stats["block.0.rd.reqs"],
                                                    stats["block.0.wr.reqs"]]
        row = await until(lambda: row_of("virt-test/domain_state"), 10, "domain_state")
        assert [float(v) for v in row[1:]] == [1.0, 1.0]
        row = await until(lambda: row_of("df-pool-default-pool/df_complex-free"), 10, "pool")
        assert float(row[1]) == snap.pool("default-pool").available
        status = daemon.info()["agents"]["collectd"]
        assert status["status"] == "ok", status

    run_daemon(daemon, body)
    # csv headers carry types.db's data-source names: collectd accepted our data sets
    header = next((collectd.csv_dir / PUSH_HOST / "virt-test").glob("if_octets-testnet0-*"))
    assert header.read_text().splitlines()[0] == "epoch,rx,tx"
    assert "s3cret" not in collectd.log
    assert "mismatch" not in collectd.log.lower()


@pytest.mark.parametrize("level", ["sign", "encrypt"])
def test_a_wrong_password_is_rejected_by_collectd(start_collectd: Callable[..., Collectd],
                                                  tmp_path: Path, level: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    port = free_udp_port("127.0.0.1")
    authfile = tmp_path / "passwd"
    authfile.write_text("hvmon: s3cret\n")
    collectd = start_collectd(network_conf("127.0.0.1", port, level.title(), authfile))
    daemon = make_daemon(tmp_path, {
        "servers": [{"address": f"127.0.0.1:{port}", "security_level": level,
                     "username": "hvmon", "password": "wrong-password"}],
        "interval": 0.2, "hostname": PUSH_HOST})
    complaint = "Hash mismatch" if level == "sign" else "Checksum mismatch"

    async def body() -> None:
        await until(lambda: collectd.log.count(complaint) >= 3, 20, f"collectd's {complaint!r}")

    run_daemon(daemon, body)
    assert not (collectd.csv_dir / PUSH_HOST).exists()  # nothing written
    assert "wrong-password" not in collectd.log
    assert not [r for r in caplog.records if "wrong-password" in r.getMessage()]


def test_unsigned_packets_are_ignored_by_a_signing_server(
        start_collectd: Callable[..., Collectd], tmp_path: Path) -> None:
    """SecurityLevel Sign: collectd drops plain packets (so sign mode really is in force)."""
    port = free_udp_port("127.0.0.1")
    authfile = tmp_path / "passwd"
    authfile.write_text("hvmon: s3cret\n")
    collectd = start_collectd(network_conf("127.0.0.1", port, "Sign", authfile))
    daemon = make_daemon(tmp_path, {"servers": [{"address": f"127.0.0.1:{port}"}],
                                    "interval": 0.2, "hostname": PUSH_HOST})

    async def body() -> None:
        await until(lambda: "Unsigned packet or part has been ignored" in collectd.log, 20,
                    "collectd to ignore the plain packets")

    run_daemon(daemon, body)
    assert not (collectd.csv_dir / PUSH_HOST).exists()


def test_two_servers_get_the_same_values(start_collectd: Callable[..., Collectd],
                                         tmp_path: Path) -> None:
    port_a, port_b = free_udp_port("127.0.0.1"), free_udp_port("127.0.0.1")
    authfile = tmp_path / "passwd"
    authfile.write_text("hvmon: s3cret\n")
    plain = start_collectd(network_conf("127.0.0.1", port_a), name="plain")
    sealed = start_collectd(network_conf("127.0.0.1", port_b, "Encrypt", authfile), name="sealed")
    daemon = make_daemon(tmp_path, {"servers": [
        {"address": f"127.0.0.1:{port_a}"},
        {"address": f"127.0.0.1:{port_b}", "security_level": "encrypt", "username": "hvmon",
         "password": "s3cret"}], "interval": 0.3, "hostname": PUSH_HOST})

    async def body() -> None:
        await until(lambda: cpu_rows(plain) and cpu_rows(sealed), 20, "both servers' rows")

    run_daemon(daemon, body)
    common = {r[0]: r[1] for r in plain.csv_rows("virt-test/virt_cpu_total", host=PUSH_HOST)}
    other = {r[0]: r[1] for r in sealed.csv_rows("virt-test/virt_cpu_total", host=PUSH_HOST)}
    shared = set(common) & set(other)
    assert shared and all(common[t] == other[t] for t in shared)
