"""The snmp agent in an in-process hvmond over test:///default, queried by net-snmp's tools.

Names resolve through HVMON-MIB (``-m +HVMON-MIB -M +<mibs>``), so these tests
also prove that the MIB text and the agent agree. Values are compared with
the daemon's snapshot; SETs change the test-driver domain only with control
and a read-write principal.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from loopthread import DaemonThread

from hvmon.plugins.snmp import oids
from hvmon.plugins.snmp.types import format_oid

from .conftest import DaemonFactory, free_udp_port, snmp

TEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"
INDEX = ".".join(str(b) for b in uuid.UUID(TEST_UUID).bytes)
V3_USER = {"name": "ops", "auth": "SHA-256", "auth_password": "ops-auth-pass",
           "priv": "AES", "priv_password": "ops-priv-pass", "access": "rw"}
V3_ARGS = ["-v3", "-l", "authPriv", "-u", "ops", "-a", "SHA-256", "-A", "ops-auth-pass",
           "-x", "AES", "-X", "ops-priv-pass"]


def start(start_daemon: DaemonFactory, **options: object) -> tuple[DaemonThread, str]:
    port = free_udp_port()
    allow = bool(options.pop("allow_control", True))
    from .conftest import snmp_daemon_config

    daemon = start_daemon(snmp_daemon_config(port, allow_control=allow, **options))
    return daemon, f"127.0.0.1:{port}"


@pytest.fixture
def agent(start_daemon: DaemonFactory) -> tuple[DaemonThread, str]:
    return start(start_daemon, rw_community="private", users=[V3_USER], libvirt_compat=True)


def state_of(daemon: DaemonThread, name: str = "test") -> int:
    snapshots = daemon.daemon.snapshots
    assert snapshots is not None
    dom = snapshots.get(0).domain(name)
    assert dom is not None
    return dom.state


@pytest.mark.parametrize("auth", ["v2c", "v3"])
def test_walk_get_and_table_match_the_snapshot(agent: tuple[DaemonThread, str],
                                               auth: str) -> None:
    daemon, address = agent
    creds = ["-v2c", "-c", "public"] if auth == "v2c" else V3_ARGS
    snap = daemon.daemon.snapshots.get()  # type: ignore[union-attr]
    got = snmp("snmpget", *creds, address, "hvmonHostCpus.0", "hvmonHostDomains.0",
               "hvmonHostName.0", "sysUpTime.0")
    assert got.returncode == 0, got.stderr
    assert f"HVMON-MIB::hvmonHostCpus.0 = Gauge32: {snap.host.cpus}" in got.stdout
    assert f"HVMON-MIB::hvmonHostDomains.0 = Gauge32: {len(snap.domains)}" in got.stdout
    assert f"HVMON-MIB::hvmonHostName.0 = STRING: {snap.host.hostname}" in got.stdout
    # the MIB's MacAddress display hint and the NIC facts from the domain XML
    nic = snmp("snmpwalk", *creds, address, "hvmonGuestIfMac")
    assert "= STRING: aa:bb:cc:dd:ee:ff" in nic.stdout, nic.stdout + nic.stderr
    nic = snmp("snmpwalk", *creds, address, "hvmonGuestIfNetwork")
    assert '= STRING: default' in nic.stdout, nic.stdout + nic.stderr
    version = snmp("snmpget", *creds, address, "hvmonHostHypervisorVersion.0")
    assert "hvmonHostHypervisorVersion.0 = STRING: 0.0.2" in version.stdout, version.stdout
    walk = snmp("snmpwalk", *creds, address, "hvmonMIB")
    bulk = snmp("snmpbulkwalk", "-Cr40", *creds, address, "hvmonMIB")
    assert walk.returncode == 0 and bulk.returncode == 0, walk.stderr + bulk.stderr
    assert "HVMON-MIB::hvmonGuestName." in walk.stdout
    assert "= STRING: test" in walk.stdout
    strip = re.compile(r"^HVMON-MIB::(hvmonHostAgentUptime|hvmonHostSnapshotAge|"
                       r"hvmonGuestCpuTime|hvmonHostSnapshotGeneration|hvmonGuestStatsAge"
                       r"|hvmonGuestDisk|hvmonGuestIf|hvmonHostMemoryFree).*$", re.M)
    assert strip.sub("", walk.stdout) == strip.sub("", bulk.stdout)
    assert "No Such" not in walk.stdout
    dom = snap.domain("test")
    assert dom is not None
    table = snmp("snmptable", *creds, "-Cf", "|", "-Cl", address, "hvmonGuestTable")
    assert table.returncode == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if "|test|" in f"|{line}|"]
    assert len(rows) == 1
    assert f"|{dom.vcpus}|" in rows[0] and "running" in rows[0]
    assert len([line for line in table.stdout.splitlines() if "|" in line]) == \
        len(snap.domains) + 1  # the header


def test_set_changes_the_domain_and_read_only_cannot(agent: tuple[DaemonThread, str]) -> None:
    daemon, address = agent
    state = f"{format_oid(oids.GUEST_STATE)}.{INDEX}"
    assert state_of(daemon) == 1
    refused = snmp("snmpset", "-v2c", "-c", "public", address, state, "i", "3")
    assert refused.returncode != 0
    assert "notWritable" in refused.stderr or "noAccess" in refused.stderr
    assert state_of(daemon) == 1
    done = snmp("snmpset", "-v2c", "-c", "private", address, state, "i", "3")
    assert done.returncode == 0, done.stderr
    assert "paused(3)" in done.stdout
    assert state_of(daemon) == 3
    check = snmp("snmpget", "-v2c", "-c", "public", address, state)
    assert "paused(3)" in check.stdout
    bad = snmp("snmpset", "-v2c", "-c", "private", address, state, "i", "5")
    assert bad.returncode != 0
    assert "inconsistentValue" in bad.stderr or "wrongValue" in bad.stderr
    assert state_of(daemon) == 3
    back = snmp("snmpset", *V3_ARGS, address, state, "i", "1")
    assert back.returncode == 0, back.stderr
    assert state_of(daemon) == 1


def test_no_control_refuses_set_for_every_principal(start_daemon: DaemonFactory) -> None:
    daemon, address = start(start_daemon, rw_community="private", allow_control=False)
    state = f"{format_oid(oids.GUEST_STATE)}.{INDEX}"
    refused = snmp("snmpset", "-v2c", "-c", "private", address, state, "i", "3")
    assert refused.returncode != 0 and "notWritable" in refused.stderr
    assert state_of(daemon) == 1


def test_libvirt_mib_view_answers_walk(agent: tuple[DaemonThread, str]) -> None:
    _, address = agent
    walk = snmp("snmpwalk", "-v2c", "-c", "public", address, "1.3.6.1.4.1.36957")
    assert walk.returncode == 0, walk.stderr
    assert 'LIBVIRT-MIB::libvirtGuestName.' in walk.stdout
    assert '= STRING: "test"' in walk.stdout
    assert "libvirtGuestState" in walk.stdout and "running(1)" in walk.stdout


def test_ipv6_and_compat_off(start_daemon: DaemonFactory) -> None:
    daemon, address = start(start_daemon)
    port = address.rsplit(":", 1)[1]
    got = snmp("snmpget", "-v2c", "-c", "public", f"udp6:[::1]:{port}", "hvmonHostDomains.0")
    assert got.returncode == 0 and "Gauge32: 1" in got.stdout, got.stderr
    walk = snmp("snmpwalk", "-v2c", "-c", "public", address, "1.3.6.1.4.1.36957")
    assert "libvirtGuest" not in walk.stdout


def test_engine_id_survives_a_daemon_restart(start_daemon: DaemonFactory, tmp_path: Path) -> None:
    ids = []
    for _ in range(2):
        daemon, address = start(start_daemon, users=[V3_USER])
        got = snmp("snmpget", *V3_ARGS, "-On", address, ".1.3.6.1.6.3.10.2.1.1.0",
                   ".1.3.6.1.6.3.10.2.1.2.0")
        assert got.returncode == 0, got.stderr
        ids.append(got.stdout)
        daemon.stop()
    first, second = ids
    assert first.split("10.2.1.2.0")[0] == second.split("10.2.1.2.0")[0]
    assert first.rstrip().endswith("INTEGER: 1") and second.rstrip().endswith("INTEGER: 2")
    assert (tmp_path / "state" / "snmp-engine.json").is_file()
