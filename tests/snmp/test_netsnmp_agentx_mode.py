"""The snmp agent in ``mode = "agentx"`` inside hvmond, behind a real snmpd master.

This checks the agent's wiring (options, control, events -> notify); the
AgentX protocol itself is tested in test_agentx_*.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from toolcheck import wait_for

from hvmon.daemon.context import shared_connection
from hvmon.plugins.snmp import oids
from hvmon.plugins.snmp.types import format_oid

from .conftest import NET_SNMP, DaemonFactory, free_udp_port, need_tool, snmp, snmp_daemon_config
from .test_netsnmp import INDEX, state_of
from .test_traps import start_snmptrapd, traps

Spawn = Callable[[list[str], Path], subprocess.Popen[bytes]]


def start_master(processes: Spawn, tmp_path: Path, trap_port: int) -> tuple[str, str]:
    """snmpd with ``master agentx`` on a UNIX socket in tmp_path: (udp target, socket)."""
    binary = need_tool("snmpd", NET_SNMP)
    home = tmp_path / "snmpd"
    (home / "persist").mkdir(parents=True)
    port = free_udp_port(("127.0.0.1",))
    sock = home / "agentx.sock"
    conf = home / "snmpd.conf"
    conf.write_text("\n".join([
        "master agentx", f"agentXSocket unix:{sock}", "agentXTimeout 5",
        "rocommunity public 127.0.0.1", "rwcommunity private 127.0.0.1",
        f"trap2sink 127.0.0.1:{trap_port} public"]) + "\n")
    argv = [binary, "-f", "-C", "-c", str(conf), "-m", "", "-Lf", str(home / "snmpd.log"),
            "-p", str(home / "snmpd.pid"), f"udp:127.0.0.1:{port}"]
    processes(argv, home / "snmpd.out")
    wait_for(lambda: True if sock.exists() else None, 15, "snmpd's AgentX socket")
    return f"127.0.0.1:{port}", str(sock)


def test_agentx_mode_walk_set_and_notifications(processes: Spawn, tmp_path: Path,
                                                start_daemon: DaemonFactory,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # snmpd and snmptrapd keep their state under SNMP_PERSISTENT_DIR: never /var/lib/snmp
    (tmp_path / "trapd-state").mkdir()
    monkeypatch.setenv("SNMP_PERSISTENT_DIR", str(tmp_path / "trapd-state"))
    trap_port, trap_log = start_snmptrapd(processes, tmp_path)
    target, sock = start_master(processes, tmp_path, trap_port)
    daemon = start_daemon(snmp_daemon_config(free_udp_port(), mode="agentx",
                                             agentx_socket=sock, libvirt_compat=True))

    def walked() -> str | None:
        got = snmp("snmpwalk", "-v2c", "-c", "public", target, "hvmonGuestName")
        return got.stdout if "STRING: test" in got.stdout else None

    wait_for(walked, 20, "the subagent's registration")
    compat = snmp("snmpwalk", "-v2c", "-c", "public", target, "1.3.6.1.4.1.36957")
    assert "libvirtGuestName" in compat.stdout
    state = f"{format_oid(oids.GUEST_STATE)}.{INDEX}"
    done = snmp("snmpset", "-v2c", "-c", "private", target, state, "i", "3")
    assert done.returncode == 0, done.stderr
    assert state_of(daemon) == 3
    assert daemon.daemon.driver is not None
    dom = shared_connection(daemon.daemon.driver, readonly=False).lookup_domain_by_name("test")
    dom.destroy()
    def stopped() -> list[str] | None:
        found = [line for line in traps(trap_log)
                 if ".1.3.6.1.4.1.32473.0." in line and "shutoff(5)" in line]
        return found or None

    wait_for(stopped, 20, "the 'stopped' trap through snmpd")
    paused = [line for line in traps(trap_log) if "paused(3)" in line]
    assert paused, "the SET's suspend was notified too"
