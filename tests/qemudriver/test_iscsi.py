"""The seed's iSCSI walkthrough, for real: a tgtd target on 127.0.0.1, an iscsi-direct pool,
the CLI (pool-define ... vol-dumpxml, pool-autostart, install) and a QEMU guest opening
``iscsi://`` itself; CHAP through the Secret API; target discovery; the kernel initiator
where this machine has one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from toolcheck import need_tool

from hvmon.core.drivers.qemu.storage.backends import Tools
from hvmon.core.drivers.qemu.storage.discovery import find_sources
from hvmon.core.drivers.qemu.storage.run import Runner
from hvmon.core.errors import OperationFailed

from .conftest import Cli

IQN = "iqn.2004-04.fedora:fedora13:iscsi.kvmguests"
INITIATOR = "iqn.2013-01.org.hvmon:kvmhost"
TGT = "Debian package tgt"
LIBISCSI = "Debian package libiscsi-bin"
LUN_SIZES = {1: 64 * 1024**2, 2: 32 * 1024**2}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Target:
    port: int
    control: int
    env: dict[str, str]

    def admin(self, *args: str) -> None:
        subprocess.run([need_tool("tgtadm", TGT), "-C", str(self.control), "--lld", "iscsi",
                        *args], env=self.env, check=True, capture_output=True, timeout=30)


def start_tgtd(tgtd: str, tmp: str,
               env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int, int]:
    """tgtd on a free portal port; a port taken meanwhile (tgtd exits) means another try."""
    problems = []
    for attempt in range(3):
        # -C names the IPC socket (socket.N), tgtd takes 0..32767
        port, control = free_port(), 1 + (os.getpid() * 3 + attempt) % 32000
        with open(f"{tmp}/tgtd.log", "wb") as log:
            proc = subprocess.Popen([tgtd, "-f", "--iscsi", f"portal=127.0.0.1:{port}", "-C",
                                     str(control)], env=env, stdout=subprocess.DEVNULL,
                                    stderr=log)
        end = time.monotonic() + 30
        while time.monotonic() < end and proc.poll() is None:
            if os.path.exists(f"{tmp}/socket.{control}"):
                return proc, port, control
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        problems.append(f"port {port}: exit {proc.returncode}: "
                        f"{Path(tmp, 'tgtd.log').read_text()[-300:]!r}")
    pytest.fail("tgtd did not start: " + "; ".join(problems))


@pytest.fixture
def target() -> Iterator[Target]:
    """tgtd on 127.0.0.1 and a free port, two LUNs backed by sparse files; stopped by PID."""
    tgtd = need_tool("tgtd", TGT)
    need_tool("iscsi-ls", LIBISCSI)
    with tempfile.TemporaryDirectory(prefix="hvt-") as tmp:
        env = {**os.environ, "TGT_IPC_SOCKET": f"{tmp}/socket"}
        proc, port, control = start_tgtd(tgtd, tmp, env)
        try:
            tgt = Target(port, control, env)
            tgt.admin("--op", "new", "--mode", "target", "--tid", "1", "--targetname", IQN)
            for lun, size in LUN_SIZES.items():
                backing = Path(tmp) / f"lun{lun}.img"
                with open(backing, "wb") as out:
                    out.truncate(size)  # sparse
                tgt.admin("--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun",
                          str(lun), "--backing-store", str(backing))
            tgt.admin("--op", "bind", "--mode", "target", "--tid", "1",
                      "--initiator-address", "ALL")
            yield tgt
        finally:
            proc.terminate()  # tgtd ignores SIGTERM while it has targets: then SIGKILL
            try:
                proc.wait(0.5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def pool_xml(port: int, kind: str = "iscsi-direct", auth: str = "") -> str:
    """The seed's pool, as iscsi-direct (user space) with an initiator IQN."""
    initiator = f"<initiator><iqn name='{INITIATOR}'/></initiator>" if kind == \
        "iscsi-direct" else ""
    return f"""<pool type='{kind}'>
<name>kvmguests</name>
<source>
<host name='127.0.0.1' port='{port}'/>
<device path='{IQN}
'/>{initiator}{auth}
</source>
<target>
<path>/dev/disk/by-path</path>
</target>
</pool>
"""



def test_seed_walkthrough(target: Target, open_qemu, qemu_root: Path, domain_type: str,
                          capsys: pytest.CaptureFixture[str]) -> None:
    conn = open_qemu()
    cli = Cli(conn, capsys)
    spec = qemu_root / "kvmguests.xml"
    spec.write_text(pool_xml(target.port))
    assert "Pool kvmguests defined from" in cli("pool-define", str(spec))
    listing = cli("pool-list", "--all")
    assert re.search(r"kvmguests\s+inactive\s+no", listing), listing
    assert "Pool kvmguests started" in cli("pool-start", "kvmguests")
    vols = cli("vol-list", "kvmguests")
    portal = f"127.0.0.1:{target.port}"
    for lun in LUN_SIZES:
        assert f"unit:0:0:{lun}" in vols and f"iscsi://{portal}/{IQN}/{lun}" in vols
    key = f"ip-{portal}-iscsi-{IQN}-lun-1"
    info = cli("vol-info", key)
    assert re.search(r"Type:\s+network", info) and re.search(r"Capacity:\s+64\.00 MiB", info)
    xml = cli("vol-dumpxml", key)
    assert "<name>unit:0:0:1</name>" in xml and f"<key>{key}</key>" in xml
    assert "<capacity unit=\"bytes\">67108864</capacity>" in xml
    assert "Pool kvmguests marked as autostarted" in cli("pool-autostart", "kvmguests")
    printed = cli("install", "--name", "rhel6x86_64", "--memory", "800", "--disk",
                  "vol=kvmguests/unit:0:0:1", "--disk", "vol=kvmguests/unit:0:0:2,perms=sh",
                  "--pxe", "--virt-type", domain_type, "--print-xml")
    assert "<source pool=\"kvmguests\" volume=\"unit:0:0:2\"/>" in printed
    assert conn.list_all_domains() == []
    cli("--connect", "x", "install", "--name", "rhel6x86_64", "--memory", "800", "--disk",
        "vol=kvmguests/unit:0:0:1", "--disk", "vol=kvmguests/unit:0:0:2,perms=sh", "--pxe",
        "--virt-type", domain_type, "--accelerate", "--hvm", "--vnc")
    try:
        dom = conn.lookup_domain_by_name("rhel6x86_64")
        assert dom.is_active()
        live = cli("dumpxml", "rhel6x86_64")
        for lun in LUN_SIZES:
            assert f'<source protocol="iscsi" name="{IQN}/{lun}">' in live
        assert f'<host name="127.0.0.1" port="{target.port}"/>' in live
        assert f'<iqn name="{INITIATOR}"/>' in live
        second = live.split(f'name="{IQN}/2"')[1].split("</disk>")[0]
        assert "<shareable/>" in second
        assert '<boot dev="network"/>' in live
        inactive = dom.xml_desc(inactive=True)
        assert 'type="volume"' in inactive and 'volume="unit:0:0:1"' in inactive
        pid = conn.driver.running_pids()["rhel6x86_64"]
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b'"driver":"iscsi"' in argv and b'"share-rw":"on"' not in argv
        assert b"share-rw=on" in argv  # the shareable LUN
        # a second guest on the exclusive LUN is refused, on the shared one it runs
        other = cli("install", "--name", "other", "--memory", "64", "--disk",
                    "vol=kvmguests/unit:0:0:1", "--virt-type", domain_type, code=1)
        assert "in use by running domain 'rhel6x86_64'" in other
        assert [d.name for d in conn.list_all_domains()] == ["rhel6x86_64"]
        cli("install", "--name", "other", "--memory", "64", "--disk",
            "vol=kvmguests/unit:0:0:2,perms=sh", "--virt-type", domain_type, "--boot", "hd")
        cli("destroy", "other")
    finally:
        with contextlib.suppress(Exception):
            dom.destroy()
    conn.close()
    again = open_qemu()  # autostart: the pool is active in a new driver
    assert again.lookup_pool_by_name("kvmguests").is_active()


def test_chap_through_the_secret_api(target: Target, open_qemu, qemu_root: Path,
                                     domain_type: str) -> None:
    target.admin("--op", "new", "--mode", "account", "--user", "hvuser", "--password",
                 "chap-pass-1234")
    target.admin("--op", "bind", "--mode", "account", "--tid", "1", "--user", "hvuser")
    conn = open_qemu()
    sec = conn.define_secret_xml("<secret ephemeral='no' private='yes'><usage type='iscsi'>"
                                 "<target>kvmguests</target></usage></secret>")
    sec.set_value(b"wrong-password")
    auth = ("<auth type='chap' username='hvuser'><secret usage='kvmguests'/></auth>")
    pool = conn.define_pool_xml(pool_xml(target.port, auth=auth))
    with pytest.raises(OperationFailed, match="iscsi-ls failed"):
        pool.start()
    assert not pool.is_active()
    sec.set_value(b"chap-pass-1234")
    pool.start()
    assert sorted(v.name for v in pool.list_volumes()) == ["unit:0:0:1", "unit:0:0:2"]
    dom = conn.define_domain_xml(f"""<domain type='{domain_type}'><name>chap</name>
      <memory unit='MiB'>64</memory><vcpu>1</vcpu>
      <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
      <disk type='volume' device='disk'><source pool='kvmguests' volume='unit:0:0:1'/>
        <target dev='vda' bus='virtio'/></disk></devices></domain>""")
    dom.create()
    try:
        pid = conn.driver.running_pids()["chap"]
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"chap-pass-1234" not in argv and b'"password-secret"' in argv
        assert "chap-pass-1234" not in dom.xml_desc(secure=True)
        assert '<auth username="hvuser"><secret type="iscsi" usage="kvmguests"/>' in \
            dom.xml_desc()
    finally:
        dom.destroy()


def test_find_iscsi_sources(target: Target, open_qemu, capsys) -> None:
    conn = open_qemu()
    spec = f"<source><host name='127.0.0.1' port='{target.port}'/></source>"
    xml = conn.find_storage_pool_sources("iscsi", spec)  # the public API
    assert f'<host name="127.0.0.1" port="{target.port}"/>' in xml
    assert f'<device path="{IQN}"/>' in xml
    out = Cli(conn, capsys)("find-storage-pool-sources-as", "iscsi", "127.0.0.1",
                            str(target.port))
    assert f'<device path="{IQN}"/>' in out
    tools = Tools(Runner(), conn.driver.secret_store)
    with pytest.raises(OperationFailed):
        find_sources("iscsi", f"<source><host name='127.0.0.1' port='{free_port()}'/></source>",
                     tools)


def kernel_iscsi_probe() -> str:
    """Why the kernel initiator cannot run here ('' when it can)."""
    modprobe = shutil.which("modprobe", path="/usr/sbin:/sbin:/usr/bin:/bin")
    if not os.path.isdir("/sys/module/iscsi_tcp") and (modprobe is None or subprocess.run(
            [modprobe, "-n", "iscsi_tcp"], capture_output=True, check=False).returncode):
        return "kernel module iscsi_tcp is not loaded and cannot be loaded"
    if not os.path.isdir("/sys/class/iscsi_transport"):
        return "/sys/class/iscsi_transport is missing (no kernel iSCSI transport)"
    return ""


def test_kernel_initiator_pool(target: Target, open_qemu, qemu_root: Path) -> None:
    need_tool("iscsiadm", "Debian package open-iscsi")
    reason = kernel_iscsi_probe()
    print(f"kernel iSCSI probe: {reason or 'usable'}")
    if reason:
        pytest.skip(f"missing KERNEL capability: {reason}")
    conn = open_qemu()
    pool = conn.define_pool_xml(pool_xml(target.port, kind="iscsi"))
    pool.start()
    try:
        deadline = time.monotonic() + 20
        while len(pool.list_volumes()) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            pool.refresh()
        assert sorted(v.name for v in pool.list_volumes()) == ["unit:0:0:1", "unit:0:0:2"]
    finally:
        pool.destroy()
