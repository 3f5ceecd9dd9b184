"""Notifications received by a real snmptrapd: v2c traps and acknowledged v3 informs.

snmptrapd runs with a temp config (``-C -c conf``), logs to a file and keeps
its persistent state (its engine ID) in the test's directory.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from loopthread import LoopThread
from toolcheck import wait_for

from hvmon.daemon.context import shared_connection
from hvmon.plugins.snmp.notify import Notifier, TrapTarget
from hvmon.plugins.snmp.usm import UsmUser

from .conftest import (
    COMPAT_MIBS,
    MIB_DIR,
    NET_SNMP,
    DaemonFactory,
    free_udp_port,
    need_tool,
    snmp_daemon_config,
)

USER = {"name": "trapper", "auth": "SHA-256", "auth_password": "trap-auth-pass",
        "priv": "AES", "priv_password": "trap-priv-pass", "access": "ro"}
Spawn = Callable[[list[str], Path], subprocess.Popen[bytes]]


def start_snmptrapd(spawn: Spawn, tmp_path: Path) -> tuple[int, Path]:
    """snmptrapd on a free 127.0.0.1 port, logging ``%P|%v`` lines; (port, log)."""
    binary = need_tool("snmptrapd", NET_SNMP)
    port = free_udp_port(("127.0.0.1",))
    conf = tmp_path / "snmptrapd.conf"
    conf.write_text(
        "disableAuthorization yes\n"
        f"createUser {USER['name']} SHA-256 {USER['auth_password']} AES "
        f"{USER['priv_password']}\n"
        "format2 TRAP %P|%v\\n\n")
    (tmp_path / "trapd-state").mkdir(exist_ok=True)
    log = tmp_path / "snmptrapd.log"
    env_argv = [binary, "-f", "-Lf", str(log), "-C", "-c", str(conf), "-On",
                "-m", "+HVMON-MIB", "-M", f"+{MIB_DIR}:{COMPAT_MIBS}",
                f"udp:127.0.0.1:{port}"]
    proc = spawn(env_argv, tmp_path / "snmptrapd.out")
    wait_for(lambda: True if log.exists() and "NET-SNMP version" in log.read_text()
             else (pytest.fail(f"snmptrapd exited: {(tmp_path / 'snmptrapd.out').read_text()}")
                   if proc.poll() is not None else None), 15, "snmptrapd to start")
    return port, log


@pytest.fixture(autouse=True)
def _trapd_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # snmptrapd keeps its engine ID and boots under SNMP_PERSISTENT_DIR: never /var/lib/snmp
    monkeypatch.setenv("SNMP_PERSISTENT_DIR", str(tmp_path / "trapd-state"))


def traps(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith("TRAP ")]


def test_started_and_stopped_domains_reach_snmptrapd(processes: Spawn, tmp_path: Path,
                                                     start_daemon: DaemonFactory) -> None:
    trap_port, log = start_snmptrapd(processes, tmp_path)
    port = free_udp_port()
    targets = [{"address": f"127.0.0.1:{trap_port}", "version": "v2c", "community": "public"},
               {"address": f"127.0.0.1:{trap_port}", "version": "v3", "user": "trapper",
                "inform": True, "timeout": 1.0, "retries": 3}]
    daemon = start_daemon(snmp_daemon_config(port, users=[USER], trap_targets=targets))
    assert daemon.daemon.driver is not None
    conn = shared_connection(daemon.daemon.driver, readonly=False)
    dom = conn.lookup_domain_by_name("test")
    dom.destroy()
    wait_for(lambda: True if len(traps(log)) >= 2 else None, 20, "the two 'stopped' traps")
    dom.create()
    got = wait_for(lambda: traps(log) if len(traps(log)) >= 4 else None, 20,
                   "the two 'started' traps")
    v2c = [line for line in got if "SNMP v2c" in line]
    v3 = [line for line in got if "SNMP v3" in line]
    assert len(v2c) == 2 and len(v3) == 2, got
    assert all("TRAP2" in line for line in v2c)
    assert all("INFORM" in line and "trapper" in line for line in v3)
    for line in got:
        # sysUpTime.0 first, then snmpTrapOID.0, then the guest's name, UUID, state, reason
        fields = line.split("|", 1)[1].split("\t")
        assert fields[0].startswith(".1.3.6.1.2.1.1.3.0 = Timeticks:")
        assert fields[1].startswith(".1.3.6.1.6.3.1.1.4.1.0 = OID: .1.3.6.1.4.1.32473.0.")
        assert "= STRING: test\t" in line and "6695eb01-f6a4-8304-79aa-97f2502e193f" in line
    assert all("INTEGER: shutoff(5)" in line and "stopped(5)" in line for line in got[:2])
    assert all("INTEGER: running(1)" in line and "started(2)" in line for line in got[2:])


def test_inform_to_nobody_gives_up_after_the_retries(tmp_path: Path) -> None:
    runner = LoopThread()
    try:
        port = free_udp_port(("127.0.0.1",))  # nothing listens there
        user = UsmUser.create("u", "SHA-256", "12345678", "AES", "12345678")
        notifier = Notifier([TrapTarget("127.0.0.1", port, "v3", user=user, inform=True,
                                        timeout=0.2, retries=2),
                             TrapTarget("127.0.0.1", port, "v2c", inform=True, timeout=0.2,
                                        retries=1)],
                            uptime=lambda: 0)
        results = runner.call(notifier.send((1, 3, 6, 1, 4, 1, 32473, 0, 1), []))
        assert results == [False, False] and notifier.failed == 2
        sent = runner.call(asyncio.wait_for(Notifier(
            [TrapTarget("127.0.0.1", port, "v2c")], uptime=lambda: 0).send(
                (1, 3, 6, 1, 4, 1, 32473, 0, 1), []), 5))
        assert sent == [True]  # a trap is fire-and-forget
    finally:
        runner.close()
