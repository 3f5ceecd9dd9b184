"""The AgentX subagent behind a real Debian ``snmpd`` (``master agentx``), end to end.

snmpd and snmptrapd run from temp dirs (``-C -c conf``, persistent state in
the temp dir too) on free loopback ports and are stopped by PID. The subagent
runs in an event loop of its own thread while net-snmp's command-line tools
talk to snmpd. A missing tool skips locally and fails when ``CI=true``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from loopthread import LoopThread
from toolcheck import need_tool, stop_process

import hvmon
from hvmon.core.snapshot.cache import SnapshotCache
from hvmon.core.types import DomainState
from hvmon.plugins.snmp import oids
from hvmon.plugins.snmp.agentx.subagent import AgentxSubagent
from hvmon.plugins.snmp.mibview import HvmonView
from hvmon.plugins.snmp.table import OidTable
from hvmon.plugins.snmp.tablebuild import uuid_index
from hvmon.plugins.snmp.types import OID, Value, VarBind, format_oid

NET_SNMP = "Debian packages snmp, snmpd, snmptrapd"

REPO_ROOT = Path(__file__).resolve().parents[2]
MIB_DIR = REPO_ROOT / "hvmon" / "plugins" / "snmp" / "mibs"
COMPAT_MIBS = (REPO_ROOT.parent / "shared" / "compat" / "mibs").resolve()
TEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"
FAKE_ROOT = (1, 3, 6, 1, 4, 1, 32473, 99)
T = TypeVar("T")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Snmpd:
    """One running snmpd master: its UDP port, AgentX socket and log."""

    proc: subprocess.Popen[bytes]
    port: int
    agentx: str
    log: Path
    conf: Path
    argv: list[str]
    env: dict[str, str]

    @property
    def target(self) -> str:
        return f"udp:127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Net:
    """net-snmp's command-line tools against one snmpd."""

    def __init__(self, snmpd: Snmpd, mibs: bool = True) -> None:
        self.snmpd = snmpd
        self.options = ["-v2c", "-t", "5", "-r", "1"]
        if mibs:
            self.options += ["-m", "HVMON-MIB:LIBVIRT-MIB", "-M", f"+{MIB_DIR}:{COMPAT_MIBS}"]
        else:
            self.options += ["-m", "", "-On"]

    def run(self, tool: str, *args: str, community: str = "public",
            extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        argv = [need_tool(tool, NET_SNMP), *self.options, *extra, "-c", community,
                self.snmpd.target, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


# --- fixtures -----------------------------------------------------------------------

SnmpdFactory = Callable[..., Snmpd]


@pytest.fixture
def start_snmpd(tmp_path: Path) -> Iterator[SnmpdFactory]:
    """``start_snmpd(agentx="unix"|"tcp", trap_port=None)``: a master agent, stopped by PID."""
    running: list[subprocess.Popen[bytes]] = []
    count = iter(range(100))

    def start(agentx: str = "unix", trap_port: int | None = None,
              restart: Snmpd | None = None) -> Snmpd:
        if restart is not None:
            proc = subprocess.Popen(restart.argv, env=restart.env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            running.append(proc)
            snmpd = Snmpd(proc, restart.port, restart.agentx, restart.log, restart.conf,
                          restart.argv, restart.env)
            _wait_ready(snmpd)
            return snmpd
        binary = need_tool("snmpd", NET_SNMP)
        n = next(count)
        home = tmp_path / f"snmpd{n}"
        (home / "persist").mkdir(parents=True)
        port = free_udp_port()
        address = (f"unix:{home / 'agentx.sock'}" if agentx == "unix"
                   else f"tcp:127.0.0.1:{free_tcp_port()}")
        lines = ["master agentx", f"agentXSocket {address}", "agentXTimeout 5",
                 f"agentaddress udp:127.0.0.1:{port}", "rocommunity public 127.0.0.1",
                 "rwcommunity private 127.0.0.1", "dontLogTCPWrappersConnects yes"]
        if trap_port is not None:
            lines.append(f"trap2sink 127.0.0.1:{trap_port} public")
        conf = home / "snmpd.conf"
        conf.write_text("\n".join(lines) + "\n")
        log = home / "snmpd.log"
        argv = [binary, "-f", "-C", "-c", str(conf), "-m", "", "-Lf", str(log),
                "-p", str(home / "snmpd.pid")]
        env = dict(os.environ, SNMP_PERSISTENT_DIR=str(home / "persist"))
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        running.append(proc)
        snmpd = Snmpd(proc, port, address.removeprefix("unix:"), log, conf, argv, env)
        _wait_ready(snmpd)
        return snmpd

    try:
        yield start
    finally:
        for proc in reversed(running):
            with contextlib.suppress(OSError):
                stop_process(proc)


def _wait_ready(snmpd: Snmpd) -> None:
    def ready() -> bool:
        if snmpd.proc.poll() is not None:
            pytest.fail(f"snmpd exited with {snmpd.proc.returncode}: {snmpd.log_text()[-500:]}")
        if snmpd.agentx.startswith("tcp:"):
            host, port = snmpd.agentx[4:].rsplit(":", 1)
            with socket.socket() as probe:
                return probe.connect_ex((host, int(port))) == 0
        return Path(snmpd.agentx).exists()

    wait_for(ready, 15, "snmpd's AgentX socket")


@pytest.fixture
def snmptrapd(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A snmptrapd on a free port logging every trap (numeric OIDs): (port, log)."""
    binary = need_tool("snmptrapd", NET_SNMP)
    home = tmp_path / "trapd"
    (home / "persist").mkdir(parents=True)
    port = free_udp_port()
    conf = home / "snmptrapd.conf"
    conf.write_text("disableAuthorization yes\n")
    log = home / "traps.log"
    env = dict(os.environ, SNMP_PERSISTENT_DIR=str(home / "persist"))
    proc = subprocess.Popen([binary, "-f", "-C", "-c", str(conf), "-m", "", "-On", "-Lf",
                             str(log), f"udp:127.0.0.1:{port}"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: log.exists() and "NET-SNMP version" in log.read_text(), 15,
                 "snmptrapd to start")
        yield port, log
    finally:
        stop_process(proc)


@pytest.fixture
def cache(conn: hvmon.Connection) -> Iterator[SnapshotCache]:
    snapshots = SnapshotCache(conn, deadline=0.3)
    try:
        yield snapshots
    finally:
        snapshots.stop()


class FakeView:
    """A fixed table under FAKE_ROOT (no SET)."""

    roots = (FAKE_ROOT,)

    def __init__(self) -> None:
        entries: list[VarBind] = [(FAKE_ROOT + (1, 0), Value.octets("fake host")),
                                  (FAKE_ROOT + (2, 0), Value.counter64(1 << 40))]
        entries += [(FAKE_ROOT + (3, 1, i), Value.gauge32(i * 10)) for i in range(1, 6)]
        self._table = OidTable(entries, objects=[FAKE_ROOT + (1,), FAKE_ROOT + (2,),
                                                 FAKE_ROOT + (3, 1)])

    def table(self) -> OidTable:
        return self._table

    def plan_set(self, varbinds: Any, *, writable: bool) -> Any:
        from hvmon.plugins.snmp.types import ErrorStatus, SetFailure

        raise SetFailure(ErrorStatus.NOT_WRITABLE, 0)

    def notifications(self, event: Any) -> list[tuple[OID, list[VarBind]]]:
        return []


def attach(loop_thread: LoopThread, view: Any, snmpd: Snmpd, **options: Any) -> AgentxSubagent:
    """Start a subagent for ``view`` in the loop thread and wait until it is registered."""
    options.setdefault("timeout", 5.0)
    sub = loop_thread.call(_make(view, snmpd.agentx, options))
    loop_thread.call(sub.start())
    wait_for(lambda: sub.health()[0], 10, f"the subagent to register: {sub.health()[1]}")
    return sub


async def _make(view: Any, address: str, options: dict[str, Any]) -> AgentxSubagent:
    return AgentxSubagent(view, address, logger=logging.getLogger("hvmon.test.agentx"),
                          **options)


@pytest.fixture
def subagents(loop_thread: LoopThread) -> Iterator[list[AgentxSubagent]]:
    """Subagents to stop at teardown (before the loop thread ends)."""
    started: list[AgentxSubagent] = []
    try:
        yield started
    finally:
        for sub in started:
            loop_thread.call(sub.stop())


def guest_index() -> str:
    index = uuid_index(TEST_UUID)
    assert index is not None
    return format_oid(index)


# --- tests ---------------------------------------------------------------------------

def test_snmpwalk_through_snmpd_serves_a_fake_view(start_snmpd: SnmpdFactory,
                                                   loop_thread: LoopThread,
                                                   subagents: list[AgentxSubagent]) -> None:
    snmpd = start_snmpd()
    subagents.append(attach(loop_thread, FakeView(), snmpd))
    net = Net(snmpd, mibs=False)
    walk = net.run("snmpwalk", format_oid(FAKE_ROOT))
    assert walk.returncode == 0, walk.stderr
    lines = walk.stdout.splitlines()
    assert lines[0] == '.1.3.6.1.4.1.32473.99.1.0 = STRING: "fake host"'
    assert lines[1] == ".1.3.6.1.4.1.32473.99.2.0 = Counter64: 1099511627776"
    assert lines[2:] == [f".1.3.6.1.4.1.32473.99.3.1.{i} = Gauge32: {i * 10}"
                         for i in range(1, 6)]
    get = net.run("snmpget", format_oid(FAKE_ROOT + (1, 0)), format_oid(FAKE_ROOT + (1, 1)),
                  format_oid(FAKE_ROOT + (9, 0)))
    assert get.stdout.splitlines() == [
        '.1.3.6.1.4.1.32473.99.1.0 = STRING: "fake host"',
        ".1.3.6.1.4.1.32473.99.1.1 = No Such Instance currently exists at this OID",
        ".1.3.6.1.4.1.32473.99.9.0 = No Such Object available on this agent at this OID"]
    bulk = net.run("snmpbulkwalk", format_oid(FAKE_ROOT), extra=("-Cr3",))
    assert bulk.stdout == walk.stdout


def test_hvmon_and_libvirt_mib_through_snmpd(start_snmpd: SnmpdFactory, loop_thread: LoopThread,
                                             subagents: list[AgentxSubagent],
                                             cache: SnapshotCache) -> None:
    snmpd = start_snmpd()
    view = HvmonView(cache.get, libvirt_compat=True)
    subagents.append(attach(loop_thread, view, snmpd))
    net = Net(snmpd)
    walk = net.run("snmpwalk", "HVMON-MIB::hvmonGuestTable")
    assert walk.returncode == 0, walk.stderr
    names = [line for line in walk.stdout.splitlines()
             if line.startswith("HVMON-MIB::hvmonGuestName.")]
    assert len(names) == 1 and names[0].endswith("= STRING: test"), walk.stdout[:2000]
    assert any(line.startswith("HVMON-MIB::hvmonGuestState.") and
               line.endswith("INTEGER: running(1)") for line in walk.stdout.splitlines())
    host = net.run("snmpget", "HVMON-MIB::hvmonHostName.0")
    assert host.returncode == 0 and "HVMON-MIB::hvmonHostName.0 = STRING:" in host.stdout
    libvirt = net.run("snmpwalk", "1.3.6.1.4.1.36957")
    assert libvirt.returncode == 0, libvirt.stderr
    assert "LIBVIRT-MIB::libvirtGuestName" in libvirt.stdout and '"test"' in libvirt.stdout
    assert "LIBVIRT-MIB::libvirtGuestState" in libvirt.stdout
    # the bulk walk of the whole HVMON-MIB agrees with the plain walk, varbind for varbind
    plain = net.run("snmpwalk", "-On", format_oid(oids.HVMON_MIB))
    bulk = net.run("snmpbulkwalk", "-On", "-Cr25", format_oid(oids.HVMON_MIB))
    assert bulk.returncode == 0 and plain.returncode == 0
    strip = [line for line in plain.stdout.splitlines() if "Timeticks" not in line
             and "32473.1.1.1" not in line]  # uptime/snapshot age move between walks
    bulk_lines = set(bulk.stdout.splitlines())
    assert len(plain.stdout.splitlines()) == len(bulk.stdout.splitlines())
    assert sum(line in bulk_lines for line in strip) >= len(strip) * 0.9


def test_snmpset_through_snmpd_changes_the_domain(start_snmpd: SnmpdFactory,
                                                  loop_thread: LoopThread,
                                                  subagents: list[AgentxSubagent],
                                                  conn: hvmon.Connection,
                                                  cache: SnapshotCache) -> None:
    snmpd = start_snmpd()
    view = HvmonView(cache.get, control=conn, libvirt_compat=True)
    subagents.append(attach(loop_thread, view, snmpd))
    net = Net(snmpd)
    state = f"{format_oid(oids.GUEST_STATE)}.{guest_index()}"
    domain = conn.lookup_domain_by_name("test")
    # the read-only community: snmpd itself refuses, nothing changes
    refused = net.run("snmpset", state, "i", "3")
    assert refused.returncode != 0
    assert "noAccess" in refused.stderr or "notWritable" in refused.stderr, refused.stderr
    assert domain.state()[0] == DomainState.RUNNING
    # a forbidden transition: inconsistentValue from the view through the subagent
    bad = net.run("snmpset", state, "i", "5", community="private")
    assert bad.returncode != 0 and "inconsistentValue" in bad.stderr, bad.stderr
    assert domain.state()[0] == DomainState.RUNNING
    # wrong type (without the MIB, or snmpset itself would refuse to send it)
    wrong = Net(snmpd, mibs=False).run("snmpset", state, "s", "paused", community="private")
    assert wrong.returncode != 0 and "wrongType" in wrong.stderr, wrong.stderr
    # running -> paused, then back, with the read-write community
    done = net.run("snmpset", state, "i", "3", community="private")
    assert done.returncode == 0, done.stderr
    assert domain.state()[0] == DomainState.PAUSED
    libvirt_state = f"{format_oid(oids.LIBVIRT_GUEST_STATE)}.{guest_index()}"
    done = net.run("snmpset", libvirt_state, "i", "1", community="private")
    assert done.returncode == 0, done.stderr
    assert domain.state()[0] == DomainState.RUNNING
    read = net.run("snmpget", "-On", state)
    assert read.stdout.strip().endswith("INTEGER: running(1)") or \
        read.stdout.strip().endswith("INTEGER: 1"), read.stdout


def test_snmpset_fails_when_the_control_connection_is_read_only(
        start_snmpd: SnmpdFactory, loop_thread: LoopThread, subagents: list[AgentxSubagent],
        conn: hvmon.Connection, cache: SnapshotCache) -> None:
    snmpd = start_snmpd()
    readonly = hvmon.open("test:///default", readonly=True)
    try:
        view = HvmonView(cache.get, control=readonly)
        subagents.append(attach(loop_thread, view, snmpd))
        state = f"{format_oid(oids.GUEST_STATE)}.{guest_index()}"
        result = Net(snmpd).run("snmpset", state, "i", "3", community="private")
        assert result.returncode != 0
        assert "commitFailed" in result.stderr or "notWritable" in result.stderr, result.stderr
        assert conn.lookup_domain_by_name("test").state()[0] == DomainState.RUNNING
        assert readonly.lookup_domain_by_name("test").state()[0] == DomainState.RUNNING
    finally:
        readonly.close()


def test_snmpset_is_refused_by_a_view_without_control(
        start_snmpd: SnmpdFactory, loop_thread: LoopThread, subagents: list[AgentxSubagent],
        conn: hvmon.Connection, cache: SnapshotCache) -> None:
    snmpd = start_snmpd()
    subagents.append(attach(loop_thread, HvmonView(cache.get), snmpd))
    state = f"{format_oid(oids.GUEST_STATE)}.{guest_index()}"
    result = Net(snmpd).run("snmpset", state, "i", "3", community="private")
    assert result.returncode != 0 and "notWritable" in result.stderr, result.stderr
    assert conn.lookup_domain_by_name("test").state()[0] == DomainState.RUNNING


def test_notify_reaches_snmptrapd_through_snmpd(start_snmpd: SnmpdFactory,
                                                loop_thread: LoopThread,
                                                subagents: list[AgentxSubagent],
                                                conn: hvmon.Connection, cache: SnapshotCache,
                                                snmptrapd: tuple[int, Path]) -> None:
    trap_port, trap_log = snmptrapd
    snmpd = start_snmpd(trap_port=trap_port)
    view = HvmonView(cache.get, libvirt_compat=True)
    sub = attach(loop_thread, view, snmpd)
    subagents.append(sub)
    view.table()
    event = hvmon.DomainEvent(conn.lookup_domain_by_name("test"), hvmon.LifecycleEvent.SUSPENDED,
                              0, time.time())
    notifications = view.notifications(event)
    assert {trap for trap, _ in notifications} == {oids.GUEST_NOTIF, oids.LIBVIRT_GUEST_NOTIF}
    for trap_oid, varbinds in notifications:
        assert loop_thread.call(sub.notify(trap_oid, varbinds)) is True

    def arrived() -> str | None:
        text = trap_log.read_text()
        if (f"OID: .{format_oid(oids.GUEST_NOTIF)}" in text
                and f"OID: .{format_oid(oids.LIBVIRT_GUEST_NOTIF)}" in text):
            return text
        return None

    text = wait_for(arrived, 15, "both traps in snmptrapd's log")
    assert ".1.3.6.1.2.1.1.3.0 = Timeticks:" in text  # sysUpTime.0 first
    assert f'.{format_oid(oids.GUEST_NAME)}.{guest_index()} = STRING: "test"' in text


def test_subagent_reconnects_when_snmpd_restarts(start_snmpd: SnmpdFactory,
                                                 loop_thread: LoopThread,
                                                 subagents: list[AgentxSubagent]) -> None:
    snmpd = start_snmpd()
    sub = attach(loop_thread, FakeView(), snmpd, retry_min=0.1, retry_max=0.5)
    subagents.append(sub)
    stop_process(snmpd.proc)
    wait_for(lambda: not sub.health()[0], 10, "the subagent to notice snmpd is gone")
    assert "not connected to the agentx master" in sub.health()[1]
    again = start_snmpd(restart=snmpd)
    wait_for(lambda: sub.health()[0], 15, "the subagent to register again")
    walk = Net(again, mibs=False).run("snmpget", format_oid(FAKE_ROOT + (1, 0)))
    assert walk.returncode == 0 and '"fake host"' in walk.stdout, walk.stderr


def test_tcp_agentx_socket(start_snmpd: SnmpdFactory, loop_thread: LoopThread,
                           subagents: list[AgentxSubagent]) -> None:
    snmpd = start_snmpd(agentx="tcp")
    assert snmpd.agentx.startswith("tcp:127.0.0.1:")
    subagents.append(attach(loop_thread, FakeView(), snmpd))
    walk = Net(snmpd, mibs=False).run("snmpwalk", format_oid(FAKE_ROOT))
    assert walk.returncode == 0 and len(walk.stdout.splitlines()) == 7, walk.stderr
