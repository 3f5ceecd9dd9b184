"""Fixtures for the QEMU driver: an embedded driver under a temporary root, disk images.

Every QEMU a test starts is stopped by PID in the finaliser (the driver itself
never kills guests when it closes, like libvirtd restarting).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from toolcheck import need_tool

import hvmon
from hvmon.core.drivers.qemu import process
from hvmon.core.drivers.qemu.caps import QemuCaps

QEMU_PACKAGES = "Debian packages qemu-system-x86, qemu-utils"
FIXTURES = Path(__file__).with_name("fixtures")
#: capability fixtures: QEMU 2.12's shape (hand-written) and Debian 12's QEMU 7.2 (probed)
OLD_QEMU = "qemu-2.12.0-x86_64.json"
QEMU_72 = "qemu-7.2.0-x86_64.json"


def load_caps(name: str, **changes: object) -> QemuCaps:
    """A committed capability fixture, with ``changes`` applied to its fields."""
    data = json.loads((FIXTURES / name).read_text())
    data.update(changes)
    return QemuCaps.from_dict(data)


def kvm_usable() -> bool:
    """Whether /dev/kvm opens read-write here (CI machines may not have it)."""
    try:
        with open("/dev/kvm", "r+b"):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def domain_type() -> str:
    """``kvm`` when KVM works here, else ``qemu`` (TCG); printed so a run says which."""
    forced = os.environ.get("HVMON_TEST_QEMU_TCG") == "1"  # exercise CI's TCG path here
    kind = "kvm" if kvm_usable() and not forced else "qemu"
    print(f"\nQEMU tests run with domain type '{kind}' (/dev/kvm usable: {kind == 'kvm'})")
    return kind


def remove_root(root: Path) -> None:
    """Stop, by PID, every QEMU a driver root's status files name; delete the root."""
    for status in (root / "run/qemu").glob("*.status.json"):
        found = process.read_status(status)
        if found is not None:
            with contextlib.suppress(Exception):
                process.terminate(found.pid, found.uuid)
    subprocess.run(["rm", "-rf", str(root)], check=False)


@pytest.fixture
def qemu_root() -> Iterator[Path]:
    """A short root directory (QMP socket paths must stay under 108 bytes)."""
    need_tool("qemu-system-x86_64", QEMU_PACKAGES)
    root = Path(tempfile.mkdtemp(prefix="hvq-"))
    try:
        yield root
    finally:
        remove_root(root)


@pytest.fixture
def open_qemu(qemu_root: Path) -> Iterator[Callable[..., hvmon.Connection]]:
    """``open_qemu(readonly=False, **options)``: connections to one embedded driver root."""
    opened: list[hvmon.Connection] = []

    def open_(readonly: bool = False, **options: float) -> hvmon.Connection:
        query = "".join(f"&{k}={v}" for k, v in options.items())
        conn = hvmon.open(f"qemu:///embed?root={qemu_root}{query}", readonly=readonly)
        opened.append(conn)
        return conn

    try:
        yield open_
    finally:
        for conn in opened:
            conn.close()


@pytest.fixture
def disk_image(qemu_root: Path) -> Callable[[str], Path]:
    """``disk_image(name)``: a 16 MiB qcow2 made by qemu-img."""
    qemu_img = need_tool("qemu-img", QEMU_PACKAGES)

    def make(name: str) -> Path:
        path = qemu_root / f"{name}.qcow2"
        subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", str(path), "16M"], check=True,
                       timeout=60)
        return path

    return make


def guest_xml(name: str, kind: str, disk: Path | None = None, *, machine: str = "pc",
              extra: str = "") -> str:
    """A guest without an OS: 64 MiB, one vCPU, a virtio disk, a user-mode NIC."""
    disk_xml = "" if disk is None else f"""
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>"""
    return f"""<domain type='{kind}'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='{machine}'>hvm</type></os>
  <features><acpi/></features>
  <devices>{disk_xml}
    <interface type='user'><model type='virtio'/></interface>
    <memballoon model='virtio'/>{extra}
  </devices>
</domain>"""


class Cli:
    """``hvmon ARGS`` through ``main`` in this process, on one shared connection."""

    def __init__(self, conn: hvmon.Connection, capsys: pytest.CaptureFixture[str]) -> None:
        self.conn, self.capsys = conn, capsys

    def __call__(self, *argv: str, code: int = 0) -> str:
        """stdout + stderr of the command; it must exit with ``code``."""
        from hvmon.cli.main import main

        self.capsys.readouterr()
        got = main(list(argv), connect=lambda uri, ro: self.conn)
        captured = self.capsys.readouterr()
        assert got == code, f"{argv}: {got} {captured.err}"
        return captured.out + captured.err
