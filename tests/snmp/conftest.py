"""Fixtures for the SNMP engine tests: fake views, engines and daemons in threads, real tools.

The engine runs on its own asyncio loop in a thread so that the net-snmp
command-line tools (run with argv lists, blocking) can talk to it from the
test. Every process a test starts is stopped by PID in a finaliser. A missing
tool skips its test, except in CI (``CI=true``) where it fails.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from loopthread import DaemonThread, LoopThread
from toolcheck import need_tool

from hvmon.plugins.snmp.engine import SnmpEngine
from hvmon.plugins.snmp.table import OidTable
from hvmon.plugins.snmp.types import OID, ErrorStatus, SetFailure, Value, VarBind

#: the Debian packages of the net-snmp tools these tests run
NET_SNMP = "Debian packages snmp, snmpd, snmptrapd"

REPO_ROOT = Path(__file__).resolve().parents[2]
MIB_DIR = REPO_ROOT / "hvmon" / "plugins" / "snmp" / "mibs"
COMPAT_MIBS = (REPO_ROOT.parent / "shared" / "compat" / "mibs").resolve()


def free_udp_port(hosts: Sequence[str] = ("127.0.0.1", "::1")) -> int:
    """A UDP port free on every host in ``hosts`` right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            for host in hosts:
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                with socket.socket(family, socket.SOCK_DGRAM) as sock:
                    sock.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free UDP port")


def mib_args() -> list[str]:
    """``-m +HVMON-MIB:LIBVIRT-MIB -M +<our mibs>:<compat mibs>`` for net-snmp tools."""
    return ["-m", "+HVMON-MIB:LIBVIRT-MIB", "-M", f"+{MIB_DIR}:{COMPAT_MIBS}"]


def run_tool(argv: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, capturing text output (no shell)."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL)


def snmp(tool: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run net-snmp ``tool`` with our MIBs (``-Le``: errors only; 2 s timeout, 1 retry)."""
    return run_tool([need_tool(tool, NET_SNMP), *mib_args(), "-t", "2", "-r", "1", *args],
                    timeout=timeout)


# --- a fake view over a fixed table ------------------------------------------------

class FakePlan:
    def __init__(self, view: FakeView, varbinds: Sequence[VarBind]) -> None:
        self.view, self.varbinds = view, list(varbinds)

    def commit(self) -> None:
        self.view.commit_threads.append(threading.current_thread().name)
        if self.view.commit_delay:
            time.sleep(self.view.commit_delay)
        for oid, value in self.varbinds:
            self.view.values[oid] = value
        self.view.rebuild()


class FakeView:
    """An SnmpView over a dict; writable OIDs take INTEGERs."""

    def __init__(self, entries: Sequence[VarBind], objects: Sequence[OID] = (),
                 roots: Sequence[OID] = ((1, 3, 6, 1, 4, 1, 32473),),
                 writable: Sequence[OID] = ()) -> None:
        self.values: dict[OID, Value] = dict(entries)
        self.objects = list(objects)
        self.roots = list(roots)
        self.writable = set(writable)
        self.commit_threads: list[str] = []
        self.commit_delay = 0.0
        self.planned: list[tuple[list[VarBind], bool]] = []
        self.generation = 0
        self._table = OidTable(())
        self.rebuild()

    def rebuild(self) -> None:
        self.generation += 1
        self._table = OidTable(self.values.items(), self.objects, self.generation)

    def table(self) -> OidTable:
        return self._table

    def plan_set(self, varbinds: Sequence[VarBind], *, writable: bool) -> FakePlan:
        self.planned.append((list(varbinds), writable))
        for i, (oid, value) in enumerate(varbinds):
            if not writable or oid not in self.writable:
                raise SetFailure(ErrorStatus.NOT_WRITABLE, i)
            if value.tag != self.values[oid].tag:
                raise SetFailure(ErrorStatus.WRONG_TYPE, i)
        return FakePlan(self, varbinds)

    def notifications(self, event: Any) -> list[tuple[OID, list[VarBind]]]:
        return []


EngineFactory = Callable[..., SnmpEngine]


@pytest.fixture
def start_engine(loop_thread: LoopThread) -> Iterator[EngineFactory]:
    """``start_engine(view, **kwargs)``: an SnmpEngine on 127.0.0.1 and ::1 (free port)."""
    engines: list[SnmpEngine] = []

    def start(view: Any, *, hosts: Sequence[str] = ("127.0.0.1", "::1"),
              **kwargs: Any) -> SnmpEngine:
        async def make() -> SnmpEngine:
            engine = SnmpEngine(view, **kwargs)
            port = free_udp_port(hosts)
            await engine.start([(host, port) for host in hosts])
            return engine

        engine = loop_thread.call(make())
        engines.append(engine)
        return engine

    try:
        yield start
    finally:
        for engine in engines:
            loop_thread.call(engine.stop())


class Client:
    """A blocking UDP client for hand-made packets."""

    def __init__(self, host: str, port: int, timeout: float = 3.0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))

    def send(self, data: bytes) -> None:
        self.sock.send(data)

    def ask(self, data: bytes) -> bytes | None:
        self.sock.send(data)
        try:
            return self.sock.recv(65535)
        except TimeoutError:
            return None

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def client_for() -> Iterator[Callable[[SnmpEngine], Client]]:
    clients: list[Client] = []

    def make(engine: SnmpEngine, timeout: float = 3.0) -> Client:
        host, port = engine.addresses[0]
        client = Client(host, port, timeout)
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            client.close()


@pytest.fixture
def processes() -> Iterator[Callable[[list[str], Path], subprocess.Popen[bytes]]]:
    """``spawn(argv, log)`` starts a program; each is stopped by PID at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as sink:
            proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        started.append(proc)
        return proc

    try:
        yield spawn
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)


# --- a daemon with the snmp plugin, in a thread -----------------------------------------

def snmp_daemon_config(port: int, *, allow_control: bool = True, control: bool = True,
                       **options: Any) -> dict[str, Any]:
    """A config for test:///default with the snmp agent on 127.0.0.1 and ::1 at ``port``."""
    return {"daemon": {"uri": "test:///default", "allow_control": allow_control,
                       "snapshot_interval": 0, "restart_delay": 0.05, "restart_delay_max": 0.2,
                       "health_interval": 0.05},
            "agents": {"snmp": {"enabled": True, "control": control,
                                "listen": [f"127.0.0.1:{port}", f"[::1]:{port}"], **options}}}


DaemonFactory = Callable[..., DaemonThread]


@pytest.fixture
def start_daemon(loop_thread: LoopThread, tmp_path: Path) -> Iterator[DaemonFactory]:
    daemons: list[DaemonThread] = []

    def start(data: dict[str, Any], path: Path | None = None) -> DaemonThread:
        daemon = DaemonThread(loop_thread, path or tmp_path, data, "snmp")
        daemons.append(daemon)
        return daemon

    try:
        yield start
    finally:
        for daemon in daemons:
            daemon.stop()
