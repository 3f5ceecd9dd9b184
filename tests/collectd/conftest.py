"""Fixtures for the collectd tests: a real collectd, a directory the Exec user can reach.

collectd (Debian's ``collectd-core``) is started by the test with a temporary
configuration (``collectd -t -C`` checks it first, ``collectd -f -C`` runs it)
and stopped by PID. A missing collectd skips, except in CI (``CI=true``) where
it fails.

collectd's Exec plugin refuses to run a program as root, so ``collectd-exec``
runs as ``nobody:nogroup``. The venv's interpreter links into ``/root`` (mode
700) and pytest's ``tmp_path`` is under a 700 directory too, so neither is
reachable by nobody. :func:`reachable_dir` is a 755 directory under the system
temp dir, and :func:`launcher` writes a 755 shell script there that runs the
system ``python3`` of the same version with ``PYTHONPATH`` = this checkout +
the venv's site-packages (both world-readable) — the
``python -m hvmon.plugins.collectd`` form documented in docs/collectd.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from toolcheck import need, stop_process, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
TYPES_DB = Path("/usr/share/collectd/types.db")
TEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"
T = TypeVar("T")


def need_collectd() -> str:
    """The collectd binary (``apt-get install collectd-core``)."""
    path = shutil.which("collectd") or ("/usr/sbin/collectd"
                                        if os.access("/usr/sbin/collectd", os.X_OK) else None)
    need(path is not None and TYPES_DB.is_file(),
         "collectd is not installed (Debian package collectd-core)")
    assert path is not None
    return path


def free_udp_port(host: str) -> int:
    """A UDP port on ``host`` that nothing uses right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def parse_types_db(path: Path = TYPES_DB) -> dict[str, list[tuple[str, str]]]:
    """types.db as ``{type: [(ds_name, KIND), ...]}`` (``name ds:KIND:min:max, ...``).

    Fields are split on white space with trailing commas dropped, as collectd's
    own parser does (Debian's file lacks a comma in two lines).
    """
    types: dict[str, list[tuple[str, str]]] = {}
    for line in path.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        sources = []
        for spec in words[1:]:
            ds_name, kind, _low, _high = spec.rstrip(",").split(":")
            sources.append((ds_name, kind))
        types[words[0]] = sources
    return types


class Collectd:
    """One collectd process with its own configuration, csv DataDir and log file."""

    def __init__(self, binary: str, workdir: Path, body: str, hostname: str = "hvtest",
                 interval: float = 1.0) -> None:
        self.binary = binary
        self.workdir = workdir
        self.csv_dir = workdir / "csv"
        self.log_path = workdir / "collectd.log"
        self.conf = workdir / "collectd.conf"
        self.hostname = hostname
        self.conf.write_text(f"""\
Hostname "{hostname}"
FQDNLookup false
Interval {interval}
BaseDir "{workdir}"
PIDFile "{workdir}/collectd.pid"
TypesDB "{TYPES_DB}"
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "{self.log_path}"
  Timestamp true
  PrintSeverity true
</Plugin>
LoadPlugin csv
<Plugin csv>
  DataDir "{self.csv_dir}"
  StoreRates false
</Plugin>
{body}
""")
        self.proc: subprocess.Popen[bytes] | None = None

    def check(self) -> subprocess.CompletedProcess[str]:
        """``collectd -t -C conf``: parse the configuration and exit."""
        return subprocess.run([self.binary, "-t", "-C", str(self.conf)], capture_output=True,
                              text=True, timeout=30, check=False)

    def start(self) -> Collectd:
        out = (self.workdir / "collectd.out").open("wb")
        with out:
            self.proc = subprocess.Popen([self.binary, "-f", "-C", str(self.conf)],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        wait_for(lambda: True if "Initialization complete" in self.log else
                 self._alive(), 15, "collectd to start")
        return self

    def _alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"collectd exited with {self.proc.returncode}: {self.log[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace=10)

    @property
    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def csv_rows(self, identifier: str, host: str | None = None) -> list[list[str]]:
        """Rows (header skipped) of ``plugin-inst/type-inst`` over every daily file."""
        pattern = f"{host or self.hostname}/{identifier}-*"
        rows: list[list[str]] = []
        for path in sorted(self.csv_dir.glob(pattern)):
            lines = path.read_text().splitlines()
            rows += [line.split(",") for line in lines[1:] if line]
        return rows

    def csv_files(self) -> list[str]:
        """Every csv file as ``host/plugin-inst/type-inst`` (date suffix removed)."""
        if not self.csv_dir.exists():
            return []
        return sorted(str(p.relative_to(self.csv_dir)).rsplit("-", 3)[0]
                      for p in self.csv_dir.glob("*/*/*"))


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A 755 temporary directory that the ``nobody`` user can traverse and read."""
    path = Path(tempfile.mkdtemp(prefix="hvmon-collectd-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def start_collectd(reachable_dir: Path) -> Iterator[Callable[..., Collectd]]:
    """``start_collectd(body, name=...)``: a collectd with that configuration, stopped by PID."""
    binary = need_collectd()
    started: list[Collectd] = []

    def start(body: str, name: str = "collectd", **kwargs: Any) -> Collectd:
        workdir = reachable_dir / name
        workdir.mkdir(mode=0o755)
        instance = Collectd(binary, workdir, body, **kwargs)
        checked = instance.check()
        assert checked.returncode == 0, checked.stdout + checked.stderr
        started.append(instance)
        return instance.start()

    try:
        yield start
    finally:
        for instance in reversed(started):
            with contextlib.suppress(OSError):
                instance.stop()


def system_python() -> str | None:
    """A python3 outside /root with this interpreter's version (the venv's links into /root)."""
    wanted = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (f"/usr/bin/{wanted}", f"/usr/local/bin/{wanted}"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def readable_by_nobody(path: Path) -> bool:
    """Every directory up to ``path`` is world-traversable and ``path`` world-readable."""
    path = path.resolve()
    for parent in [*reversed(path.parents), path]:
        mode = parent.stat().st_mode
        if parent.is_dir() and not mode & 0o001:
            return False
    return bool(path.stat().st_mode & 0o004)


@pytest.fixture
def launcher(reachable_dir: Path) -> Path:
    """A 755 script running ``python -m hvmon.plugins.collectd "$@"`` that nobody can use."""
    need(hasattr(os, "getuid") and os.getuid() == 0, "running collectd's Exec as nobody needs root")
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        need(False, "no 'nobody' user")
    python = system_python()
    need(python is not None, f"no system python{sys.version_info.major}."
                             f"{sys.version_info.minor} outside the venv for the Exec user")
    site = Path(sysconfig.get_paths()["purelib"])
    need(readable_by_nobody(REPO_ROOT / "hvmon" / "__init__.py") and readable_by_nobody(site),
         "this checkout or the venv's site-packages is not readable by nobody")
    script = reachable_dir / "hvmon-collectd-exec"
    script.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH='{REPO_ROOT}:{site}' PYTHONDONTWRITEBYTECODE=1 "
        f"exec '{python}' -m hvmon.plugins.collectd \"$@\"\n")
    os.chmod(script, 0o755)
    return script


# --- an in-process daemon running the collectd agent -----------------------------------
def make_daemon(tmp_path: Path, options: dict[str, Any], **daemon: Any) -> Any:
    """A Daemon (no sockets) with only the collectd plugin's agent, enabled with ``options``."""
    from hvmon.daemon.app import Daemon
    from hvmon.daemon.config import parse_config
    from hvmon.daemon.plugins import build_plugin_host
    from hvmon.plugins.collectd import plugin

    host = build_plugin_host(plugins=[(plugin, "collectd-test")], disabled=("collectd",))
    schema = host.schema()
    data = {"daemon": {"restart_delay": 0.05, "restart_delay_max": 0.2,
                       "health_interval": 0.05, "snapshot_interval": 0, **daemon},
            "agents": {"collectd": {"enabled": True, **options}}}
    config = parse_config(data, schema)
    return Daemon(host, schema, config, run_dir=tmp_path / "run", state_dir=tmp_path / "state",
                  rpc=False)


def run_daemon(daemon: Any, body: Callable[[], Any]) -> None:
    """Start ``daemon``, await ``body()``, stop it."""
    async def scenario() -> None:
        await daemon.start()
        try:
            await body()
        finally:
            await daemon.stop()

    asyncio.run(scenario())
