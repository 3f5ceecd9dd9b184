"""Disk locks: one writer per disk, across domains and across daemons sharing a lockspace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from toolcheck import wait_for

import hvmon
from hvmon.core.drivers.qemu import process
from hvmon.core.drivers.qemu.locks import Resource, disk_resources, read_config
from hvmon.core.drivers.qemu.paths import QemuPaths
from hvmon.core.errors import InvalidArgument, OperationInvalid
from hvmon.core.xml.domain import Domain as DomainXML


def guest(name: str, kind: str, disk: Path, shareable: bool = False) -> str:
    share = "<shareable/>" if shareable else ""
    return f"""<domain type='{kind}'><name>{name}</name><memory unit='MiB'>64</memory>
      <vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
      <disk type='file' device='disk'><driver name='qemu' type='raw'/>
        <source file='{disk}'/><target dev='vda' bus='virtio'/>{share}</disk>
      </devices></domain>"""


@pytest.fixture
def lockspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hvl-") as space:
        yield Path(space)


def configure(root: Path, space: Path) -> None:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/lockd.conf").write_text(f'# shared\nfile_lockspace_dir = "{space}"\n')


@pytest.fixture
def raw_disk(qemu_root: Path) -> Path:
    path = qemu_root / "shared.raw"
    with open(path, "wb") as out:
        out.truncate(8 * 1024 * 1024)
    return path


def _holders(space: Path) -> list[str]:
    return sorted(p.name.rsplit(".", 1)[1] for p in space.glob("*.owner.*"))


def test_second_domain_refused_shareable_allowed(open_qemu, qemu_root, raw_disk, lockspace,
                                                 domain_type) -> None:
    configure(qemu_root, lockspace)
    conn = open_qemu()
    first = conn.define_domain_xml(guest("first", domain_type, raw_disk))
    second = conn.define_domain_xml(guest("second", domain_type, raw_disk))
    first.create()
    with pytest.raises(OperationInvalid, match=r"disk '.*shared.raw' of domain 'second' is in "
                                               r"use by running domain 'first'"):
        second.create()
    assert not second.is_active() and _holders(lockspace) == [first.uuid]
    first.destroy()
    assert _holders(lockspace) == []
    second.create()  # free again
    second.destroy()
    a = conn.define_domain_xml(guest("sha", domain_type, raw_disk, shareable=True))
    b = conn.define_domain_xml(guest("shb", domain_type, raw_disk, shareable=True))
    a.create()
    b.create()  # <shareable/> disks: several writers
    with pytest.raises(OperationInvalid, match="in use by running domain"):
        first.create()  # an exclusive user is refused while shared users run
    a.destroy()
    b.destroy()


SECOND_DAEMON = """
import sys, hvmon
conn = hvmon.open("qemu:///embed?root=" + sys.argv[1])
dom = conn.define_domain_xml(open(sys.argv[2]).read())
try:
    dom.create()
except Exception as exc:
    print("REFUSED", exc)
else:
    print("STARTED")
    dom.destroy()
conn.close()
"""


def run_second_daemon(root: Path, xml: str) -> str:
    spec = root.parent / (root.name + ".xml")
    spec.write_text(xml)
    out = subprocess.run([sys.executable, "-c", SECOND_DAEMON, str(root), str(spec)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_second_daemon_sharing_the_lockspace(open_qemu, qemu_root, raw_disk, lockspace,
                                             domain_type) -> None:
    configure(qemu_root, lockspace)
    other = Path(tempfile.mkdtemp(prefix="hvq2-"))
    try:
        configure(other, lockspace)
        conn = open_qemu()
        dom = conn.define_domain_xml(guest("holder", domain_type, raw_disk))
        dom.create()
        answer = run_second_daemon(other, guest("intruder", domain_type, raw_disk))
        assert answer.startswith("REFUSED") and "in use by running domain 'holder'" in answer
        # the lock outlives this driver (a daemon restart) ...
        pid = conn.driver.running_pids()["holder"]
        conn.close()
        assert run_second_daemon(other, guest("intruder", domain_type, raw_disk)) \
            .startswith("REFUSED")
        again = open_qemu()
        assert again.lookup_domain_by_name("holder").is_active()
        # ... and goes when the guest crashes, with or without a daemon watching
        again.close()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: True if _holders(lockspace) == [] else None, 30,
                 "the lock holder to notice the crash")
        assert run_second_daemon(other, guest("intruder", domain_type, raw_disk)) == "STARTED"
    finally:
        for status in (other / "run/qemu").glob("*.status.json"):
            found = process.read_status(status)
            if found is not None:
                process.terminate(found.pid, found.uuid)
        subprocess.run(["rm", "-rf", str(other), str(other) + ".xml"], check=False)


def test_crash_releases_the_lock_in_a_running_driver(open_qemu, qemu_root, raw_disk, lockspace,
                                                     domain_type) -> None:
    configure(qemu_root, lockspace)
    conn = open_qemu()
    dom = conn.define_domain_xml(guest("crashy", domain_type, raw_disk))
    other = conn.define_domain_xml(guest("next", domain_type, raw_disk))
    dom.create()
    os.kill(conn.driver.running_pids()["crashy"], signal.SIGKILL)
    wait_for(lambda: True if not dom.is_active() else None, 30, "the crash to be noticed")
    wait_for(lambda: True if _holders(lockspace) == [] else None, 30, "the lock release")
    other.create()
    other.destroy()


def test_resources_and_config(tmp_path: Path) -> None:
    live = DomainXML.from_xml("""<domain type='kvm'><name>x</name><devices>
      <disk type='file'><source file='/a/../b.img'/><target dev='vda'/></disk>
      <disk type='block'><source dev='/dev/sdz'/><target dev='vdb'/><readonly/></disk>
      <disk type='network'><source protocol='iscsi' name='iqn.x:y/1'><host name='h'/></source>
        <target dev='vdc'/><shareable/></disk>
      <disk type='file' device='cdrom'><target dev='hdc'/></disk></devices></domain>""")
    assert disk_resources(live) == [Resource("/b.img", False), Resource("/dev/sdz", True),
                                    Resource("iscsi://h:3260/iqn.x:y/1", True)]
    paths = QemuPaths.under(tmp_path)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/lockd.conf").write_text("lock_manager\n")
    with pytest.raises(InvalidArgument, match="lockd.conf:1"):
        read_config(paths)
    (tmp_path / "etc/lockd.conf").write_text("lock_manager = sanlock\n")
    with pytest.raises(InvalidArgument, match="unknown lock_manager"):
        hvmon.open(f"qemu:///embed?root={tmp_path}")


def test_a_hot_plugged_disk_is_locked_too(open_qemu, qemu_root, raw_disk, lockspace,
                                          domain_type) -> None:
    configure(qemu_root, lockspace)
    conn = open_qemu()
    first = conn.define_domain_xml(guest("holder", domain_type, raw_disk))
    first.create()
    plain = (f"<domain type='{domain_type}'><name>plugger</name><memory unit='MiB'>64</memory>"
             "<vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>"
             "<features><acpi/></features><devices/></domain>")
    second = conn.define_domain_xml(plain)
    second.create()
    disk = (f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
            f"<source file='{raw_disk}'/><target dev='vdb' bus='virtio'/></disk>")
    before = second.xml_desc()
    with pytest.raises(OperationInvalid, match="in use by running domain 'holder'"):
        second.attach_device(disk)
    assert second.xml_desc() == before and _holders(lockspace) == [first.uuid]
    first.destroy()
    second.attach_device(disk)  # free now: plugged, and locked for 'plugger'
    assert _holders(lockspace) == [second.uuid] and "vdb" in second.xml_desc()
    with pytest.raises(OperationInvalid, match="in use by running domain 'plugger'"):
        first.create()
    second.destroy()  # its hot-plug lock goes with it
    assert _holders(lockspace) == []
