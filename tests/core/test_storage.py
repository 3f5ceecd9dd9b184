"""Storage pools and volumes on the test driver."""

from __future__ import annotations

from pathlib import Path

import pytest

import hvmon
from hvmon.core.types import PoolState, VolumeType

SEED = Path(__file__).resolve().parents[2].parent / "shared" / "seeds" / "000_51ba4dd6a7709185.txt"
GiB = 1024**3


@pytest.fixture()
def conn():
    with hvmon.open("test:///default") as c:
        yield c


def seed_iscsi_pool_xml() -> str:
    """The iSCSI pool definition exactly as the seed text gives it."""
    text = SEED.read_text()
    start = text.index("<pool type='iscsi'>")
    return text[start:text.index("</pool>", start) + len("</pool>")]


def test_dir_pool_accounting(conn):
    pool = conn.lookup_pool_by_name("default-pool")
    vol = pool.create_volume_xml(
        "<volume><name>a.img</name><capacity unit='G'>10</capacity>"
        "<allocation unit='G'>2</allocation><target><format type='qcow2'/></target></volume>")
    assert vol.path == vol.key == "/default-pool/a.img"
    info = pool.info()
    assert (info.state, info.capacity, info.allocation, info.available) == (
        PoolState.RUNNING, 100 * GiB, 2 * GiB, 98 * GiB)
    assert vol.info() == hvmon.core.types.VolumeInfo(VolumeType.FILE, 10 * GiB, 2 * GiB)
    assert "<path>/default-pool/a.img</path>" in vol.xml_desc()
    assert "qcow2" in vol.xml_desc()
    with pytest.raises(hvmon.OperationFailed, match="not enough free space"):
        pool.create_volume_xml("<volume><name>huge</name><capacity unit='T'>1</capacity></volume>")
    with pytest.raises(hvmon.AlreadyExists):
        pool.create_volume_xml("<volume><name>a.img</name><capacity>1</capacity></volume>")
    vol.resize(20 * GiB)
    assert vol.info().capacity == 20 * GiB
    with pytest.raises(hvmon.InvalidArgument, match="shrink"):
        vol.resize(1024)
    progress = []
    clone = pool.clone_volume("<volume><name>b.img</name><capacity unit='G'>20</capacity>"
                              "</volume>", vol, progress=lambda d, t: progress.append((d, t)))
    assert progress[-1] == (2 * GiB, 2 * GiB) and len(progress) > 2
    assert [p[0] for p in progress] == sorted(p[0] for p in progress)
    assert conn.lookup_volume_by_path(clone.path).name == "b.img"
    assert pool.info().allocation == 2 * GiB + 20 * GiB
    vol.wipe()
    vol.delete()
    assert [v.name for v in pool.list_volumes()] == ["b.img"]
    assert pool.info().allocation == 20 * GiB


def test_pool_lifecycle_rules(conn):
    pool = conn.define_pool_xml("<pool type='dir'><name>p2</name>"
                                "<target><path>/srv/p2</path></target></pool>")
    assert not pool.is_active() and pool.is_persistent()
    with pytest.raises(hvmon.OperationInvalid, match="not active"):
        pool.list_volumes()
    with pytest.raises(hvmon.OperationInvalid, match="not active"):
        pool.refresh()
    pool.build()
    pool.create()
    with pytest.raises(hvmon.OperationInvalid, match="still active"):
        pool.undefine()
    with pytest.raises(hvmon.OperationInvalid, match="already active"):
        pool.start()
    pool.set_autostart(True)
    assert pool.get_autostart()
    pool.refresh()
    pool.destroy()
    pool.delete()
    pool.undefine()
    assert [p.name for p in conn.list_all_storage_pools()] == ["default-pool"]
    transient = conn.create_pool_xml("<pool type='dir'><name>t</name>"
                                     "<target><path>/t</path></target></pool>")
    assert transient.is_active() and not transient.is_persistent()
    transient.destroy()
    with pytest.raises(hvmon.NoSuchPool):
        conn.lookup_pool_by_name("t")


def test_seed_iscsi_pool_defines_starts_and_lists_luns(conn):
    pool = conn.define_pool_xml(seed_iscsi_pool_xml())
    assert pool.name == "kvmguests"
    pool.start()
    vols = pool.list_volumes()
    assert [v.name for v in vols] == ["unit:0:0:1", "unit:0:0:2"]
    iqn = "iqn.2004-04.fedora:fedora13:iscsi.kvmguests"
    assert vols[0].path == f"/dev/disk/by-path/ip-myiscsi.server.com:3260-iscsi-{iqn}-lun-1"
    assert vols[0].info().type == VolumeType.BLOCK
    assert vols[0].info().capacity == 10 * GiB
    with pytest.raises(hvmon.Unsupported, match="volume creation"):
        pool.create_volume_xml("<volume><name>x</name><capacity>1</capacity></volume>")
    with pytest.raises(hvmon.Unsupported):
        vols[0].delete()
    assert conn.lookup_volume_by_path(vols[1].path).name == "unit:0:0:2"


def test_compat_iscsi_direct_pool_lists_network_luns(conn, compat_dir):
    xml = (compat_dir / "libvirt-xml" / "pool" / "pool-iscsi-direct.xml").read_text()
    pool = conn.define_pool_xml(xml)
    pool.create()
    vols = pool.list_volumes()
    assert len(vols) == 2
    assert vols[0].path.startswith("iscsi://") and vols[0].path.endswith("/1")
    assert vols[0].key.startswith("ip-")
    assert vols[0].info().type == VolumeType.NETWORK


def test_iscsi_pool_without_host_is_refused(conn):
    with pytest.raises(hvmon.InvalidXML, match="source host"):
        conn.define_pool_xml("<pool type='iscsi'><name>x</name><source>"
                             "<device path='iqn.x'/></source></pool>")
    assert len(conn.list_all_storage_pools()) == 1
