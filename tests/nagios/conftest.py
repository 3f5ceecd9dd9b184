"""Fixtures for check_hvmon: in-process runs, a node file, hvmond and the command itself.

* ``check(*argv)`` runs ``main`` in this process (``test:///...`` URIs, or a
  shared driver through ``connect=``) with a temporary cookie directory;
* ``node_file`` holds domains in every state, one named with spaces, quotes,
  ``;``, ``|`` and ``=``, a pool at 85 % and a network whose DHCP range is 90 %
  used;
* ``start_daemon()`` starts hvmond (a config file, sockets in a short temporary
  directory) as a subprocess; it is stopped by PID at teardown;
* ``launcher`` is an executable ``check_hvmon`` script for subprocess runs (the
  console script is not installed by the tests).

A missing external program skips its test, except in CI (``CI=true``) where it
fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hvmon.plugins.nagios.main import main

BIN = Path(sys.executable).parent
HVMOND = BIN / "hvmond"
REPO_ROOT = Path(__file__).resolve().parents[2]
STATUS_RE = re.compile(r"^HVMON \S+ (OK|WARNING|CRITICAL|UNKNOWN) - .* \| ")
PERF_RE = re.compile(r"^(?:'(?:[^'=]|'')+'|[^'=\s]+)=-?[0-9.]+(?:[a-zA-Z%]*)"
                     r"(?:;[^;\s]*){0,4}$")
SPECIAL = "web 1's \"db\"; rm -rf ~ | x=y"
LIBVIRT_TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"


def wait_for(probe: Callable[[], object], timeout: float, what: str,
             interval: float = 0.1) -> object:
    """Call ``probe`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Outcome:
    """One check run: exit code and output."""

    code: int
    out: str

    @property
    def status(self) -> str:
        return self.out.splitlines()[0]

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    @property
    def perfdata(self) -> dict[str, str]:
        """Label (unquoted) -> the rest of the perfdata item (``value[uom];w;c;min;max``)."""
        return parse_perfdata(self.status.split(" | ", 1)[1]) if " | " in self.status else {}


def parse_perfdata(text: str) -> dict[str, str]:
    """Split perfdata the way a Nagios perfdata reader does (quoted labels, ``''``)."""
    items: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        if text[pos] == " ":
            pos += 1
            continue
        if text[pos] == "'":
            end = pos + 1
            label = []
            while True:
                quote = text.index("'", end)
                label.append(text[end:quote])
                if text[quote + 1:quote + 2] == "'":
                    label.append("'")
                    end = quote + 2
                    continue
                break
            name, pos = "".join(label), quote + 1
        else:
            eq = text.index("=", pos)
            name, pos = text[pos:eq], eq
        assert text[pos] == "=", text[pos:]
        space = text.find(" ", pos)
        space = len(text) if space < 0 else space
        items[name] = text[pos + 1:space]
        pos = space
    return items


Check = Callable[..., Outcome]


@pytest.fixture
def cookie_dir(tmp_path: Path) -> Path:
    return tmp_path / "cookies"


@pytest.fixture
def check(cookie_dir: Path) -> Check:
    """``check(*argv, connect=None)``: run check_hvmon in this process."""

    def run(*argv: str, connect: Callable[[str], object] | None = None,
            env: dict[str, str] | None = None) -> Outcome:
        environ = {"HVMON_NAGIOS_STATE_DIR": str(cookie_dir), **(env or {})}
        code, out = main(list(argv), connect=connect, environ=environ)  # type: ignore[arg-type]
        return Outcome(code, out)

    return run


def _domain(name: str, uuid: str, state: int | None = None, memory_mib: int = 1024,
            vcpus: int = 2) -> str:
    meta = ""
    if state is not None:
        meta = (f"<metadata><test:runstate xmlns:test='{LIBVIRT_TEST_NS}'>{state}"
                "</test:runstate></metadata>")
    escaped = (name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
               .replace("'", "&apos;").replace('"', "&quot;"))
    return f"""
  <domain type='test'>
    <name>{escaped}</name>
    <uuid>{uuid}</uuid>
    <memory unit='MiB'>{memory_mib * 2}</memory>
    <currentMemory unit='MiB'>{memory_mib}</currentMemory>
    <vcpu>{vcpus}</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
    <on_crash>preserve</on_crash>{meta}
  </domain>"""


NODE = """<node xmlns:hvmon='urn:hvmon:test:1'>
  <cpu><mhz>2000</mhz><model>x86_64</model><active>4</active><nodes>1</nodes>
       <sockets>1</sockets><cores>2</cores><threads>2</threads></cpu>
  <memory>4194304</memory>
  <hvmon:controls>
{leases}
  </hvmon:controls>
{domains}
  <network>
    <name>tiny</name>
    <uuid>7b1f2d0e-8d39-4b8e-9a59-0c1c2d3e4f50</uuid>
    <bridge name='virbr7'/>
    <ip address='10.7.0.1' netmask='255.255.255.0'>
      <dhcp><range start='10.7.0.2' end='10.7.0.11'/></dhcp>
    </ip>
  </network>
  <pool type='dir'>
    <name>small-pool</name>
    <uuid>3c0a6b8e-52a4-4c6e-8c8f-1d2e3f4a5b6c</uuid>
    <capacity unit='GiB'>10</capacity>
    <target><path>/small-pool</path></target>
    <volume type='file'>
      <name>disk.img</name>
      <capacity unit='bytes'>9126805504</capacity>
      <allocation unit='bytes'>9126805504</allocation>
      <target><path>/small-pool/disk.img</path></target>
    </volume>
  </pool>
</node>
"""


@pytest.fixture(scope="session")
def node_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node file: running ``alpha`` and SPECIAL, ``paused``, ``off``; pool 85 % used."""
    domains = "".join([
        _domain("alpha", "00000000-0000-4000-8000-000000000001"),
        _domain(SPECIAL, "00000000-0000-4000-8000-000000000002", vcpus=4, memory_mib=2048),
        _domain("paused", "00000000-0000-4000-8000-000000000003", state=3),
        _domain("off", "00000000-0000-4000-8000-000000000004", state=5),
    ])
    leases = "\n".join(
        f"    <hvmon:lease network='tiny' mac='52:54:00:00:07:{i:02x}' ip='10.7.0.{i}'/>"
        for i in range(2, 11))
    path = tmp_path_factory.mktemp("node") / "node.xml"
    path.write_text(NODE.format(domains=domains, leases=leases))
    return path


@pytest.fixture(scope="session")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An executable ``check_hvmon`` (the console script's code, this venv's Python)."""
    path = tmp_path_factory.mktemp("bin") / "check_hvmon"
    path.write_text(f"#!{sys.executable}\n"
                    "from hvmon.plugins.nagios.main import run\n"
                    "run()\n")
    path.chmod(0o755)
    return path


def run_launcher(launcher: Path, *argv: str, timeout: float = 30.0,
                 env: dict[str, str] | None = None) -> Outcome:
    """Run the launcher as a subprocess (argv list, no shell); cookies next to it."""
    environ = {k: v for k, v in os.environ.items() if k not in ("HVMON_DEFAULT_URI",)}
    environ["HVMON_NAGIOS_STATE_DIR"] = str(launcher.parent / "cookies")
    environ.update(env or {})
    done = subprocess.run([str(launcher), *argv], capture_output=True, text=True,
                          timeout=timeout, env=environ, check=False)
    assert done.stderr == "", done.stderr
    return Outcome(done.returncode, done.stdout)


@dataclass
class Daemon:
    """A running hvmond: its process and sockets."""

    proc: subprocess.Popen[bytes]
    root: Path

    @property
    def ro_socket(self) -> Path:
        return self.root / "run" / "hvmon-sock-ro"

    @property
    def rw_socket(self) -> Path:
        return self.root / "run" / "hvmon-sock"

    def uri(self, readonly: bool = True, served: str = "test:///default") -> str:
        driver, _, path = served.partition(":///")
        sock = self.ro_socket if readonly else self.rw_socket
        return f"{driver}+unix:///{path}?socket={sock}"

    @property
    def stderr(self) -> str:
        return (self.root / "hvmond.err").read_text()


def _start(root: Path, served: str, extra: str = "") -> Daemon:
    config = root / "hvmon.toml"
    config.write_text(
        "[daemon]\n"
        f'uri = "{served}"\n'
        f'run_dir = "{root / "run"}"\n'
        f'state_dir = "{root / "state"}"\n'
        "snapshot_interval = 1\n" + extra)
    env = {k: v for k, v in os.environ.items()
           if k not in ("HVMON_DISABLE_PLUGINS", "PYTHONPATH", "HVMON_DEBUG")}
    out, err = (root / "hvmond.out").open("wb"), (root / "hvmond.err").open("wb")
    with out, err:
        proc = subprocess.Popen([str(HVMOND), "--config", str(config)], stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, env=env, cwd=root)
    daemon = Daemon(proc, root)

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"hvmond exited with {proc.returncode}: {daemon.stderr[-2000:]}")
        return "\nready " in "\n" + (root / "hvmond.out").read_text()

    wait_for(ready, 20, "hvmond to be ready", 0.05)
    return daemon


def _stop(daemon: Daemon) -> None:
    if daemon.proc.poll() is None:
        daemon.proc.terminate()
        try:
            daemon.proc.wait(10)
        except subprocess.TimeoutExpired:
            daemon.proc.kill()
            daemon.proc.wait(10)


def short_dir() -> Path:
    """A short temporary directory (UNIX socket paths must stay under 108 bytes)."""
    return Path(tempfile.mkdtemp(prefix="hvn-", dir="/tmp"))


@pytest.fixture
def start_daemon() -> Iterator[Callable[..., Daemon]]:
    """``start_daemon(served="test:///default", extra="")``; stopped by PID afterwards."""
    started: list[Daemon] = []

    def start(served: str = "test:///default", extra: str = "") -> Daemon:
        daemon = _start(short_dir(), served, extra)
        started.append(daemon)
        return daemon

    try:
        yield start
    finally:
        for daemon in started:
            _stop(daemon)
            shutil.rmtree(daemon.root, ignore_errors=True)


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    """One hvmond serving test:///default for a module's read-only tests."""
    started = _start(short_dir(), "test:///default")
    try:
        yield started
    finally:
        _stop(started)
        shutil.rmtree(started.root, ignore_errors=True)
