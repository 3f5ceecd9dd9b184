"""dir pools of the QEMU driver, for real: qemu-img volumes, clones, transfers, refresh."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import hvmon
from hvmon.core.errors import AlreadyExists, InvalidArgument, InvalidXML, OperationInvalid
from hvmon.core.types import PoolState, VolumeType

MiB = 1024 * 1024


def pool_xml(name: str, path: Path) -> str:
    return f"<pool type='dir'><name>{name}</name><target><path>{path}</path></target></pool>"


def vol_xml(name: str, mib: int, fmt: str = "raw", allocation: int | None = None,
            extra: str = "") -> str:
    alloc = "" if allocation is None else f"<allocation unit='bytes'>{allocation}</allocation>"
    return (f"<volume><name>{name}</name><capacity unit='MiB'>{mib}</capacity>{alloc}"
            f"<target><format type='{fmt}'/></target>{extra}</volume>")


@pytest.fixture
def dir_pool(open_qemu: Callable[..., hvmon.Connection], qemu_root: Path):
    conn = open_qemu()
    pool = conn.define_pool_xml(pool_xml("images", qemu_root / "images"))
    pool.build()
    pool.start()
    return conn, pool, qemu_root / "images"


def test_pool_life_cycle_and_persistence(open_qemu, qemu_root: Path) -> None:
    conn = open_qemu()
    pool = conn.define_pool_xml(pool_xml("p1", qemu_root / "p1"))
    assert not pool.is_active() and pool.info().state == PoolState.INACTIVE
    with pytest.raises(Exception, match="build the pool first"):
        pool.start()
    pool.build()
    pool.start()
    info = pool.info()
    assert info.state == PoolState.RUNNING and info.capacity > 0
    assert info.capacity >= info.allocation and info.available > 0
    pool.set_autostart(True)
    assert (qemu_root / "etc/storage/p1.xml").exists()
    same = conn.define_pool_xml(pool_xml("p1", qemu_root / "p1"))  # redefinition by name
    assert same.uuid == pool.uuid
    with pytest.raises(OperationInvalid, match="already active"):
        pool.start()
    conn.close()
    again = open_qemu()  # a new driver finds it active (run/storage) and autostarted
    pool2 = again.lookup_pool_by_name("p1")
    assert pool2.is_active() and pool2.get_autostart() and pool2.uuid == pool.uuid
    pool2.destroy()
    with pytest.raises(OperationInvalid, match="still active|not active"):
        pool2.refresh()
    pool2.delete()
    assert not (qemu_root / "p1").exists()
    pool2.undefine()
    assert [p.name for p in again.list_all_storage_pools()] == []


def test_autostart_pool_starts_when_the_driver_opens(open_qemu, qemu_root: Path) -> None:
    conn = open_qemu()
    pool = conn.define_pool_xml(pool_xml("auto", qemu_root / "auto"))
    pool.build()
    pool.set_autostart(True)
    assert not pool.is_active()
    conn.close()
    assert open_qemu().lookup_pool_by_name("auto").is_active()


def test_sparse_and_preallocated_raw(dir_pool) -> None:
    _, pool, path = dir_pool
    sparse = pool.create_volume_xml(vol_xml("sparse.img", 64, allocation=0))
    full = pool.create_volume_xml(vol_xml("full.img", 64))  # allocation = capacity
    s_info, f_info = sparse.info(), full.info()
    assert s_info.type == VolumeType.FILE
    assert s_info.capacity == f_info.capacity == 64 * MiB
    assert s_info.allocation < 1 * MiB
    assert f_info.allocation >= 64 * MiB
    assert os.stat(path / "sparse.img").st_blocks * 512 == s_info.allocation
    assert sparse.path == str(path / "sparse.img") == sparse.key
    with pytest.raises(AlreadyExists):
        pool.create_volume_xml(vol_xml("sparse.img", 1))
    with pytest.raises(InvalidArgument, match="format 'vmdk'"):
        pool.create_volume_xml(vol_xml("x.vmdk", 1, fmt="vmdk"))
    with pytest.raises((InvalidArgument, InvalidXML), match="invalid .*name"):
        pool.create_volume_xml(vol_xml("../evil", 1))
    assert not (path / "x.vmdk").exists()


def test_qcow2_backing_clone_and_full_clone(dir_pool) -> None:
    _, pool, path = dir_pool
    base = pool.create_volume_xml(vol_xml("base.qcow2", 32, fmt="qcow2"))
    overlay = pool.create_volume_xml(vol_xml(
        "overlay.qcow2", 32, fmt="qcow2",
        extra=f"<backingStore><path>{base.path}</path><format type='qcow2'/></backingStore>"))
    xml = overlay.xml_desc()
    assert f"<path>{base.path}</path>" in xml and "<format type=\"qcow2\"/>" in xml
    info = subprocess.run(["qemu-img", "info", "-U", overlay.path], capture_output=True,
                          text=True, check=True).stdout
    assert f"backing file: {base.path}" in info
    raw = pool.create_volume_xml(vol_xml("data.raw", 8, allocation=0))
    raw.upload([b"hvmon" * 1000], 0, 0)
    seen: list[tuple[int, int]] = []
    clone = pool.clone_volume(vol_xml("copy.raw", 8), raw, lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1]
    assert b"".join(clone.download(0, 5000)) == b"hvmon" * 1000
    assert clone.info().capacity == 8 * MiB
    with pytest.raises(InvalidArgument, match="smaller"):
        pool.clone_volume(vol_xml("small.raw", 1), raw)
    assert "small.raw" not in [v.name for v in pool.list_volumes()]


def test_resize_wipe_delete_upload_download(dir_pool, tmp_path: Path) -> None:
    _, pool, path = dir_pool
    vol = pool.create_volume_xml(vol_xml("disk.qcow2", 16, fmt="qcow2"))
    vol.resize(32 * MiB)
    assert vol.info().capacity == 32 * MiB
    raw = pool.create_volume_xml(vol_xml("disk.raw", 4, allocation=0))
    payload = os.urandom(MiB + 123)
    assert raw.upload([payload[:MiB], payload[MiB:]], 4096, 0) == len(payload)
    back = b"".join(raw.download(4096, len(payload)))
    assert back == payload
    with pytest.raises(InvalidArgument, match="past the end"):
        raw.download(4 * MiB, 1)
    raw.wipe()
    assert b"".join(raw.download(0, 0)) == bytes(4 * MiB)
    assert raw.info().capacity == 4 * MiB
    raw.delete()
    assert not (path / "disk.raw").exists()
    assert "disk.raw" not in [v.name for v in pool.list_volumes()]


def test_refresh_finds_files_added_behind_its_back(dir_pool) -> None:
    _, pool, path = dir_pool
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path / "outside.qcow2"),
                    "48M"], check=True)
    (path / "blob.bin").write_bytes(b"x" * 10000)
    assert "outside.qcow2" not in [v.name for v in pool.list_volumes()]
    pool.refresh()
    vols = {v.name: v for v in pool.list_volumes()}
    assert vols["outside.qcow2"].info().capacity == 48 * MiB
    assert '<format type="qcow2"/>' in vols["outside.qcow2"].xml_desc()
    assert vols["blob.bin"].info().capacity == 10000
    (path / "blob.bin").unlink()
    pool.refresh()
    assert "blob.bin" not in [v.name for v in pool.list_volumes()]


def test_volume_disk_resolved_at_start(dir_pool, domain_type: str) -> None:
    conn, pool, _ = dir_pool
    base = pool.create_volume_xml(vol_xml("root.qcow2", 16, fmt="qcow2"))
    xml = f"""<domain type='{domain_type}'><name>onvol</name><memory unit='MiB'>64</memory>
      <vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
      <disk type='volume' device='disk'><source pool='images' volume='root.qcow2'/>
        <target dev='vda' bus='virtio'/></disk></devices></domain>"""
    dom = conn.define_domain_xml(xml)
    dom.create()
    try:
        live = dom.xml_desc()
        assert f'<source file="{base.path}"/>' in live and 'type="qcow2"' in live
        assert "type='volume'" in dom.xml_desc(inactive=True) or \
            'type="volume"' in dom.xml_desc(inactive=True)
    finally:
        dom.destroy()
    pool.destroy()
    with pytest.raises(OperationInvalid, match="not active"):
        dom.create()


def test_cli_volume_commands_with_progress(dir_pool, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from hvmon.cli.main import main

    conn, pool, path = dir_pool

    def cli(*argv: str) -> tuple[str, str]:
        capsys.readouterr()
        assert main(list(argv), connect=lambda uri, ro: conn) == 0
        captured = capsys.readouterr()
        return captured.out, captured.err

    cli("vol-create-as", "images", "src.raw", "8M", "--allocation", "0")
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(3 * MiB))
    out, err = cli("vol-upload", "--pool", "images", "src.raw", str(payload), "--progress")
    assert f"Uploaded {3 * MiB} bytes" in out and "100%" in err
    out, err = cli("vol-clone", "--pool", "images", "src.raw", "dst.raw", "--progress")
    assert "Vol dst.raw cloned from src.raw" in out and "Cloning src.raw" in err and \
        "100%" in err
    back = tmp_path / "back.bin"
    out, err = cli("vol-download", "--pool", "images", "dst.raw", str(back), "--length",
                   str(3 * MiB), "--progress")
    assert back.read_bytes() == payload.read_bytes() and "100%" in err
    out, _ = cli("vol-info", "--pool", "images", "dst.raw")
    assert "8.00 MiB" in out
    cli("vol-resize", "--pool", "images", "dst.raw", "16M")
    assert (path / "dst.raw").stat().st_size == 16 * MiB
    cli("vol-delete", "--pool", "images", "dst.raw")
    assert not (path / "dst.raw").exists()


def test_autostart_pool_starts_with_the_daemon(open_qemu, qemu_root: Path) -> None:
    from .test_daemon import Hvmond

    conn = open_qemu()
    pool = conn.define_pool_xml(pool_xml("boot", qemu_root / "boot"))
    pool.build()
    pool.set_autostart(True)
    conn.close()
    daemon = Hvmond(qemu_root)
    try:
        assert (qemu_root / "run/storage/boot.xml").exists()  # before any client call
        with hvmon.open(daemon.uri) as remote:
            boot = remote.lookup_pool_by_name("boot")
            assert boot.is_active() and boot.get_autostart()
            vol = boot.create_volume_xml(vol_xml("via-daemon.qcow2", 4, fmt="qcow2"))
            assert vol.path == str(qemu_root / "boot/via-daemon.qcow2")
            assert vol.info().capacity == 4 * MiB
    finally:
        assert daemon.stop() == 0
