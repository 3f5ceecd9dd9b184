"""iscsi (iscsiadm), logical (LVM), fs and netfs pools: the command lines they run.

This machine has no kernel iSCSI initiator, no device mapper (LVM) and no NFS
server, so those backends run against a recording runner here; an fs pool runs
for real on a loop device where loop devices and mounting work (probed, else
skipped with the reason). iscsi-direct and dir run for real in test_iscsi.py
and test_storage_dir.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from toolcheck import need_tool

from hvmon.core.drivers.qemu.paths import QemuPaths
from hvmon.core.drivers.qemu.secrets import SecretStore
from hvmon.core.drivers.qemu.storage.backends import Tools
from hvmon.core.drivers.qemu.storage.backends.fs import mounted
from hvmon.core.drivers.qemu.storage.backends.iscsi import iface_name
from hvmon.core.drivers.qemu.storage.discovery import find_sources
from hvmon.core.drivers.qemu.storage.pools import PoolTable
from hvmon.core.drivers.qemu.storage.run import RecordingRunner, Result, Runner
from hvmon.core.errors import InvalidArgument, InvalidXML, OperationFailed, Unsupported
from hvmon.core.types import VolumeType

IQN = "iqn.2004-04.fedora:fedora13:iscsi.kvmguests"


@pytest.fixture
def table(tmp_path: Path) -> tuple[PoolTable, RecordingRunner]:
    runner = RecordingRunner()
    paths = QemuPaths.under(tmp_path)
    paths.create()
    secrets = SecretStore(tmp_path / "etc/secrets")
    return PoolTable(paths, secrets, runner), runner


def test_iscsi_kernel_initiator_command_lines(table, tmp_path: Path) -> None:
    pools, runner = table
    by_path = tmp_path / "by-path"
    by_path.mkdir()
    for lun in (1, 2):  # what udev makes after the login
        with open(by_path / f"ip-10.0.0.5:3260-iscsi-{IQN}-lun-{lun}", "wb") as dev:
            dev.truncate(lun * 1024 * 1024)
    secret = pools.tools.secrets.define("<secret ephemeral='no' private='yes'><usage "
                                        "type='iscsi'><target>t1</target></usage></secret>")
    pools.tools.secrets.set_value(secret.uuid, b"chap-secret")
    obj = pools.define(f"""<pool type='iscsi'><name>k</name><source>
      <host name='10.0.0.5'/><device path='{IQN}'/>
      <initiator><iqn name='iqn.2013-01.org.hvmon:h1'/></initiator>
      <auth type='chap' username='u1'><secret usage='t1'/></auth></source>
      <target><path>{by_path}</path></target></pool>""")
    runner.replies["iscsiadm"] = lambda argv: Result(
        21 if argv[-2:] == ["--interface", iface_name("iqn.2013-01.org.hvmon:h1")] else 0,
        "", "")
    pools.start(obj)
    node = ["iscsiadm", "--mode", "node", "--targetname", IQN, "--portal", "10.0.0.5:3260"]
    iface = iface_name("iqn.2013-01.org.hvmon:h1")
    assert runner.calls == [
        ["iscsiadm", "--mode", "iface", "--interface", iface],
        ["iscsiadm", "--mode", "iface", "--interface", iface, "--op", "new"],
        ["iscsiadm", "--mode", "iface", "--interface", iface, "--op", "update", "--name",
         "iface.initiatorname", "--value", "iqn.2013-01.org.hvmon:h1"],
        ["iscsiadm", "--mode", "discovery", "--type", "sendtargets", "--portal",
         "10.0.0.5:3260", "--interface", iface, "--op", "nonpersistent"],
        [*node, "--op", "update", "--name", "node.session.auth.authmethod", "--value", "CHAP"],
        [*node, "--op", "update", "--name", "node.session.auth.username", "--value", "u1"],
        [*node, "--op", "update", "--name", "node.session.auth.password", "--value",
         "chap-secret"],
        [*node, "--interface", iface, "--login"],
    ]
    vols = obj.volumes
    assert sorted(vols) == ["unit:0:0:1", "unit:0:0:2"]
    assert vols["unit:0:0:2"].type == VolumeType.BLOCK and vols["unit:0:0:2"].capacity == 2 << 20
    assert vols["unit:0:0:1"].path == str(by_path / f"ip-10.0.0.5:3260-iscsi-{IQN}-lun-1")
    runner.calls.clear()
    pools.stop(obj)
    assert runner.calls == [[*node, "--logout"]]


def test_iscsi_login_failure_is_one_line(table) -> None:
    pools, runner = table
    runner.replies["iscsiadm"] = Result(8, "", "iscsiadm: cannot make connection to 10.0.0.9: "
                                              "Connection refused\n")
    obj = pools.define(f"<pool type='iscsi'><name>k</name><source><host name='10.0.0.9'/>"
                       f"<device path='{IQN}'/></source></pool>")
    with pytest.raises(OperationFailed, match="iscsiadm failed: .*Connection refused$"):
        pools.start(obj)
    assert not obj.active


def test_logical_command_lines(table) -> None:
    pools, runner = table
    runner.replies["vgs"] = Result(0, "  21474836480:10737418240\n", "")
    runner.replies["lvs"] = Result(0, "  lv1:/dev/vg0/lv1:1073741824:uuid-1\n"
                                      "  lv2:/dev/vg0/lv2:2147483648:uuid-2\n", "")
    obj = pools.define("<pool type='logical'><name>vg0</name><source>"
                       "<device path='/dev/sdx'/><device path='/dev/sdy'/></source>"
                       "<target><path>/dev/vg0</path></target></pool>")
    pools.action(obj, "build")
    pools.start(obj)
    assert runner.calls[:4] == [["pvcreate", "/dev/sdx"], ["pvcreate", "/dev/sdy"],
                                ["vgcreate", "vg0", "/dev/sdx", "/dev/sdy"],
                                ["vgchange", "-aay", "vg0"]]
    assert (obj.capacity, obj.allocation, obj.available) == (20 << 30, 10 << 30, 10 << 30)
    assert obj.volumes["lv2"].key == "uuid-2" and obj.volumes["lv2"].path == "/dev/vg0/lv2"
    runner.calls.clear()
    backend = pools.backend(obj.live)
    vol, explicit, secret = pools.parse_volume(
        obj, "<volume><name>lv3</name><capacity unit='G'>4</capacity></volume>")
    backend.create_volume(obj.live, vol, secret, explicit)
    backend.resize_volume(obj.live, obj.volumes["lv1"], 512 << 20)
    backend.delete_volume(obj.live, obj.volumes["lv2"])
    assert runner.calls == [
        ["lvcreate", "--yes", "--name", "lv3", "-L", f"{4 << 30}b", "vg0"],
        ["lvresize", "-f", "-L", f"{512 << 20}b", "vg0/lv1"],
        ["lvremove", "-f", "vg0/lv2"],
    ]
    with pytest.raises(InvalidArgument, match="raw and unencrypted"):
        backend.create_volume(obj.live, pools.parse_volume(obj, (
            "<volume><name>q</name><capacity>1</capacity><target><format type='qcow2'/>"
            "</target></volume>"))[0], None, False)
    runner.calls.clear()
    pools.stop(obj)
    pools.action(obj, "delete")
    assert runner.calls == [["vgchange", "-aan", "vg0"], ["vgremove", "-f", "vg0"],
                            ["pvremove", "/dev/sdx"], ["pvremove", "/dev/sdy"]]


def test_fs_and_netfs_mount_command_lines(table, tmp_path: Path) -> None:
    pools, runner = table
    target = tmp_path / "mnt"
    fs = pools.define(f"<pool type='fs'><name>f</name><source><device path='/dev/sdz1'/>"
                      f"<format type='ext4'/></source><target><path>{target}</path></target>"
                      "</pool>")
    pools.action(fs, "build")
    pools.start(fs)
    assert runner.calls == [["mkfs", "-t", "ext4", "/dev/sdz1"],
                            ["mount", "-t", "ext4", "/dev/sdz1", str(target)]]
    assert fs.active and fs.volumes == {}
    runner.calls.clear()
    pools.stop(fs)
    assert runner.calls == []  # nothing is really mounted here: nothing to unmount
    nfs = pools.define(f"<pool type='netfs'><name>n</name><source><host name='nas'/>"
                       f"<dir path='/export/vm'/></source><target><path>{target}</path>"
                       "</target></pool>")
    pools.start(nfs)
    assert runner.calls == [["mount", "-t", "nfs", "nas:/export/vm", str(target)]]
    with pytest.raises(InvalidXML, match="source path"):
        pools.define("<pool type='netfs'><name>m</name><source><host name='nas'/></source>"
                     f"<target><path>{target}</path></target></pool>")
    with pytest.raises(InvalidXML, match="source device"):
        pools.define(f"<pool type='fs'><name>m</name><target><path>{target}</path></target>"
                     "</pool>")
    with pytest.raises(Unsupported, match="storage pool type 'rbd'"):
        pools.define("<pool type='rbd'><name>r</name><source><name>x</name><host name='h'/>"
                     "</source></pool>")


def test_mounted_reads_proc_mounts(tmp_path: Path) -> None:
    table = tmp_path / "mounts"
    table.write_text("nas:/export /srv/my\\040pool nfs4 rw 0 0\n/dev/sda1 / ext4 rw 0 0\n")
    assert mounted("/srv/my pool", str(table)) and mounted("/", str(table))
    assert not mounted("/srv", str(table))


def test_netfs_and_iscsi_discovery_parsing(table) -> None:
    pools, runner = table
    runner.replies["showmount"] = Result(0, "/export/vm  10.0.0.0/24\n/srv/iso   *\n", "")
    xml = find_sources("netfs", "<source><host name='nas'/></source>", pools.tools)
    assert runner.calls[-1] == ["showmount", "--no-headers", "-e", "nas"]
    assert xml.count("<source>") == 2 and '<dir path="/srv/iso"/>' in xml
    assert '<format type="nfs"/>' in xml and '<host name="nas"/>' in xml
    runner.replies["iscsi-ls"] = Result(0, f"Target:{IQN} Portal:10.0.0.5:3260,1\n", "")
    xml = find_sources("iscsi", "<source><host name='10.0.0.5'/></source>", pools.tools)
    assert runner.calls[-1] == ["iscsi-ls", "-i", "iqn.2013-01.org.hvmon:discovery",
                                "iscsi://10.0.0.5:3260"]
    assert f'<device path="{IQN}"/>' in xml
    with pytest.raises(InvalidArgument, match="needs a source spec"):
        find_sources("netfs", None, pools.tools)
    with pytest.raises(Unsupported, match="'logical'"):
        find_sources("logical", "<source/>", pools.tools)


def test_real_netfs_discovery_without_a_server(table) -> None:
    """showmount for real against this host, which has no NFS server: one clear line."""
    need_tool("showmount", "Debian package nfs-common")
    tools = Tools(Runner(), table[0].tools.secrets)
    with pytest.raises(OperationFailed, match="^showmount failed: "):
        find_sources("netfs", "<source><host name='127.0.0.1'/></source>", tools)


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[str]:
    """A 32 MiB loop device over a sparse file (detached in the finaliser)."""
    losetup = need_tool("losetup", "Debian package mount")
    need_tool("mkfs.ext4", "Debian package e2fsprogs")
    image = tmp_path / "fs.img"
    with open(image, "wb") as out:
        out.truncate(32 * 1024 * 1024)
    attach = subprocess.run([losetup, "--show", "-f", str(image)], capture_output=True,
                            text=True, check=False)
    probe = attach.stderr.strip() or "no loop device"
    print(f"loop device probe: {attach.stdout.strip() or probe}")
    if attach.returncode:
        pytest.skip(f"missing KERNEL capability: loop devices ({probe})")
    device = attach.stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["umount", str(tmp_path / "mnt")], capture_output=True, check=False)
        subprocess.run([losetup, "-d", device], check=False)


def test_fs_pool_for_real_on_a_loop_device(open_qemu, loop_device: str, tmp_path: Path) -> None:
    conn = open_qemu()
    target = tmp_path / "mnt"
    pool = conn.define_pool_xml(f"<pool type='fs'><name>fs</name><source><device "
                                f"path='{loop_device}'/><format type='ext4'/></source><target>"
                                f"<path>{target}</path></target></pool>")
    pool.build()  # mkfs -t ext4
    try:
        pool.start()  # mount
    except OperationFailed as exc:
        pytest.skip(f"missing KERNEL capability: mounting ext4 ({exc})")
    assert mounted(str(target))
    info = pool.info()
    assert 20 * 1024 * 1024 < info.capacity <= 32 * 1024 * 1024
    vol = pool.create_volume_xml("<volume><name>a.qcow2</name><capacity unit='M'>8</capacity>"
                                 "<target><format type='qcow2'/></target></volume>")
    assert vol.path == str(target / "a.qcow2") and vol.info().capacity == 8 * 1024 * 1024
    pool.destroy()  # umount
    assert not mounted(str(target)) and not (target / "a.qcow2").exists()
    pool.start()  # the volume is on the filesystem, not in the directory
    assert [v.name for v in pool.list_volumes()] == ["a.qcow2"]  # lost+found is a directory
    pool.destroy()
