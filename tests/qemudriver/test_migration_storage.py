"""Storage migration (copy-storage-all): host A and host B each have a dir pool 'P' of their
own directory; the guest's volume is created on B and copied over NBD while it runs."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

import hvmon
from hvmon.core.drivers.qemu import process
from hvmon.core.types import DomainState, JobInfo, RunningReason, ShutoffReason

from .conftest import QEMU_PACKAGES, guest_xml, remove_root
from .test_daemon import Hvmond, daemons  # noqa: F401 - the fixture
from .test_migration import hosts  # noqa: F401 - the fixture

MiB = 1024 * 1024
#: (offset, bytes) written into the source volume before the guest starts
PATTERN = [(0, b"hvmon copy-storage-all: first MiB" * 100),
           (5 * MiB + 4096, b"\x5a" * 65536),
           (15 * MiB, b"the end of the disk" * 50)]


def with_pool(conn: hvmon.Connection, path: Path) -> hvmon.StoragePool:
    path.mkdir()
    pool = conn.define_pool_xml(f"<pool type='dir'><name>P</name><target><path>{path}"
                                "</path></target></pool>")
    pool.start()
    return pool


def volume_guest(name: str, kind: str, fmt: str) -> str:
    disk = (f"<disk type='volume' device='disk'><driver name='qemu' type='{fmt}'/>"
            f"<source pool='P' volume='v.{fmt}'/><target dev='vda' bus='virtio'/></disk>")
    return guest_xml(name, kind).replace("<devices>", "<devices>" + disk)


def write_pattern(path: Path, fmt: str, pattern: list[tuple[int, bytes]]) -> None:
    from toolcheck import need_tool

    if fmt == "raw":
        with open(path, "r+b") as out:
            for offset, data in pattern:
                out.seek(offset)
                out.write(data)
        return
    staged = path.with_suffix(".chunk")
    for offset, data in pattern:  # qemu-io writes a file's bytes at an offset
        staged.write_bytes(data)
        subprocess.run([need_tool("qemu-io", QEMU_PACKAGES), "-f", "qcow2", "-c",
                        f"write -s {staged} {offset} {len(data)}", str(path)],
                       check=True, timeout=60, capture_output=True)
    staged.unlink()


def read_back(path: Path, fmt: str, offset: int, length: int) -> bytes:
    """What the guest sees at ``offset`` (a running QEMU may hold the image: share it)."""
    from toolcheck import need_tool

    if fmt == "raw":
        with open(path, "rb") as image:
            image.seek(offset)
            return image.read(length)
    flat = path.with_name(path.name + ".flat")
    subprocess.run([need_tool("qemu-img", QEMU_PACKAGES), "convert", "-U", "-f", "qcow2",
                    "-O", "raw", str(path), str(flat)], check=True, timeout=60)
    try:
        return read_back(flat, "raw", offset, length)
    finally:
        flat.unlink()


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_copy_storage_all_moves_the_disk_with_the_guest(
        hosts: Callable[..., hvmon.Connection], tmp_path: Path,  # noqa: F811
        domain_type: str, fmt: str) -> None:
    a, b = hosts("a"), hosts("b")
    pool_a, pool_b = with_pool(a, tmp_path / "a-images"), with_pool(b, tmp_path / "b-images")
    vol = pool_a.create_volume_xml(f"<volume><name>v.{fmt}</name><capacity unit='MiB'>16"
                                   f"</capacity><target><format type='{fmt}'/></target>"
                                   "</volume>")
    write_pattern(Path(vol.path), fmt, PATTERN)
    dom = a.define_domain_xml(volume_guest("mover", domain_type, fmt))
    dom.create()
    reports: list[tuple[int, int]] = []
    jobs: list[JobInfo] = []

    def progress(done: int, total: int) -> None:
        reports.append((done, total))
        jobs.append(dom.job_info())

    moved = dom.migrate(b, live=True, copy_storage_all=True, progress=progress)
    assert moved.state() == (DomainState.RUNNING, RunningReason.MIGRATED)
    assert dom.state() == (DomainState.SHUTOFF, ShutoffReason.MIGRATED)
    inner = b.driver.registry.get(moved.uuid)  # Finish ended the NBD server and its exports
    assert b.driver.lifecycle.execute(inner, "query-block-exports") == []
    copy = Path(pool_b.lookup_volume_by_name(f"v.{fmt}").path)
    assert copy.parent == tmp_path / "b-images"
    assert f"<source file='{copy}'" in moved.xml_desc().replace('"', "'")
    for offset, data in PATTERN:  # B's volume holds what the guest wrote on A
        assert read_back(copy, fmt, offset, len(data)) == data
    assert vol.info().capacity == pool_b.lookup_volume_by_name(f"v.{fmt}").info().capacity
    assert Path(vol.path).exists()  # the source's disk is left as it was
    # the last report is all of it: 64 MiB of memory and the 16 MiB disk
    assert reports and reports[-1][0] == reports[-1][1] >= (64 + 16) * MiB
    assert all(j.data_total == j.mem_total + j.disk_total for j in jobs)
    moved.suspend()  # B's QEMU drives the guest and its copied disk
    moved.resume()
    moved.destroy()
    assert read_back(copy, fmt, PATTERN[0][0], len(PATTERN[0][1])) == PATTERN[0][1]


@pytest.mark.parametrize("phase", ["disks", "memory"])
def test_a_failed_storage_migration_removes_only_what_it_created(
        hosts: Callable[..., hvmon.Connection], tmp_path: Path,  # noqa: F811
        domain_type: str, phase: str) -> None:
    a, b = hosts("a"), hosts("b")
    pool_a, pool_b = with_pool(a, tmp_path / "a-images"), with_pool(b, tmp_path / "b-images")
    # QEMU's mirror copies up to its 16 MiB buffer in one burst, then sleeps off the rate
    # limit and sees the destination gone on its next write: 64 MiB, nothing sparse, at
    # 8 MiB/s is 6 s of copying that fails 2 s in (an OS-less guest may stop with a KVM
    # internal error some 30 s after it starts on nested KVM: stay well inside that)
    size, bandwidth = (64, 8) if phase == "disks" else (16, 1)
    vol = pool_a.create_volume_xml(f"<volume><name>v.raw</name><capacity unit='MiB'>{size}"
                                   "</capacity><target><format type='raw'/></target></volume>")
    if phase == "disks":
        write_pattern(Path(vol.path), "raw", [(0, os.urandom(size * MiB))])
    kept = pool_b.create_volume_xml("<volume><name>other.raw</name><capacity unit='MiB'>1"
                                    "</capacity></volume>")
    dom = a.define_domain_xml(volume_guest("fragile", domain_type, "raw"))
    dom.create()
    pid = a.driver.running_pids()["fragile"]
    seen: list[JobInfo] = []

    def kill_destination(done: int, total: int) -> None:  # mid-copy
        job = dom.job_info()
        if phase == "memory" and not job.mem_total:
            return
        seen.append(job)
        for victim in b.driver.running_pids().values():
            process.terminate(victim, dom.uuid, grace=0)

    with pytest.raises(hvmon.HvmonError):
        dom.migrate(b, live=True, copy_storage_all=True, bandwidth=bandwidth,
                    progress=kill_destination)
    assert seen and seen[0].disk_total > 0
    if phase == "disks":
        assert seen[0].disk_processed < seen[0].disk_total
    else:  # the disks were in sync, the memory on its way
        assert seen[0].disk_processed == seen[0].disk_total and seen[0].mem_total
    assert dom.state()[0] == DomainState.RUNNING
    assert a.driver.running_pids()["fragile"] == pid
    assert b.list_all_domains() == []
    pool_b.refresh()
    assert [v.name for v in pool_b.list_volumes()] == [kept.name]  # v.raw went again
    assert sorted(os.listdir(tmp_path / "b-images")) == ["other.raw"]
    assert Path(vol.path).stat().st_size == size * MiB
    dom.suspend()  # the source's QEMU and its disk are fine
    dom.resume()
    # no pool 'P' on a third host: refused before anything starts
    with pytest.raises(hvmon.OperationInvalid, match="storage pool 'P' does not exist on the "
                                                     "destination"):
        dom.migrate(hosts("c"), live=True, copy_storage_all=True)
    assert dom.state()[0] == DomainState.RUNNING
    with pytest.raises(hvmon.InvalidArgument, match="copy-storage-all cannot be tunnelled"):
        dom.migrate(b.get_uri(), p2p=True, tunnelled=True, copy_storage_all=True)


def test_hvmon_migrate_copy_storage_all(hosts: Callable[..., hvmon.Connection],  # noqa: F811
                                        tmp_path: Path, domain_type: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from hvmon.cli.main import main

    a, b = hosts("a"), hosts("b")
    pool_a, pool_b = with_pool(a, tmp_path / "a-images"), with_pool(b, tmp_path / "b-images")
    pool_a.create_volume_xml("<volume><name>v.qcow2</name><capacity unit='MiB'>8</capacity>"
                             "<target><format type='qcow2'/></target></volume>")
    a.define_domain_xml(volume_guest("clidisk", domain_type, "qcow2")).create()
    assert main(["-c", a.get_uri(), "migrate", "--p2p", "--tunnelled", "--copy-storage-all",
                 "clidisk", b.get_uri()]) == 1
    assert capsys.readouterr().err.startswith("error: --copy-storage-all cannot be tunnelled")
    assert main(["-c", a.get_uri(), "migrate", "--live", "--copy-storage-all", "--progress",
                 "clidisk", b.get_uri()]) == 0
    out, err = capsys.readouterr()
    assert f"Domain 'clidisk' migrated to {b.get_uri()} as 'clidisk'" in out
    assert "Migration of clidisk [" in err and "100%" in err
    assert b.lookup_domain_by_name("clidisk").state()[0] == DomainState.RUNNING
    assert pool_b.lookup_volume_by_name("v.qcow2").path.startswith(str(tmp_path / "b-images"))
    # back home peer to peer: A's volume is still there, so the copy goes into it
    assert main(["-c", b.get_uri(), "migrate", "--p2p", "--live", "--copy-storage-all",
                 "clidisk", a.get_uri()]) == 0
    assert a.lookup_domain_by_name("clidisk").state()[0] == DomainState.RUNNING
    assert [v.name for v in pool_a.list_volumes()] == ["v.qcow2"]


def test_copy_storage_all_between_two_daemons(daemons: list[Hvmond],  # noqa: F811
                                              tmp_path: Path, domain_type: str) -> None:
    roots = [Path(tempfile.mkdtemp(prefix=f"hvs{n}-")) for n in "ab"]
    try:
        daemons.extend(Hvmond(root) for root in roots)
        with hvmon.open(daemons[0].uri) as a, hvmon.open(daemons[1].uri) as b:
            pool_a = with_pool(a, tmp_path / "a-images")
            pool_b = with_pool(b, tmp_path / "b-images")
            vol = pool_a.create_volume_xml("<volume><name>v.raw</name><capacity unit='MiB'>"
                                           "16</capacity></volume>")
            write_pattern(Path(vol.path), "raw", PATTERN)
            dom = a.define_domain_xml(volume_guest("roamer", domain_type, "raw"))
            dom.create()
            moved = dom.migrate(b, live=True, persistent=True, copy_storage_all=True)
            assert moved.state()[0] == DomainState.RUNNING and moved.is_persistent()
            copy = Path(pool_b.lookup_volume_by_name("v.raw").path)
            for offset, data in PATTERN:
                assert read_back(copy, "raw", offset, len(data)) == data
            # back peer to peer: B's daemon drives, A's volume is there already
            assert moved.migrate(daemons[0].uri, live=True, p2p=True,
                                 copy_storage_all=True) is None
            assert dom.state()[0] == DomainState.RUNNING
            dom.destroy()
    finally:
        for daemon in daemons:
            daemon.stop()
        for root in roots:
            remove_root(root)


def test_prepare_creates_a_missing_file_disk_and_a_failure_removes_it(
        hosts: Callable[..., hvmon.Connection], tmp_path: Path,  # noqa: F811
        domain_type: str) -> None:
    """A plain file disk (no pool): created at its path by qemu-img, same format and size.

    One machine shares every path, so the destination's path is moved by hand here.
    """
    import json

    from toolcheck import need_tool

    a, c = hosts("a"), hosts("c")
    disk = tmp_path / "plain.qcow2"
    subprocess.run([need_tool("qemu-img", QEMU_PACKAGES), "create", "-q", "-f", "qcow2",
                    str(disk), "24M"], check=True, timeout=60)
    dom = a.define_domain_xml(guest_xml("filer", domain_type, disk))
    dom.create()
    flags = {"live": True, "copy_storage_all": True}
    begun = dom.migrate_begin(flags)
    (entry,) = begun["cookie"]["storage"]
    assert (entry["path"], entry["pool"], entry["format"], entry["capacity"]) == \
        (str(disk), "", "qcow2", 24 * MiB)
    target = tmp_path / "elsewhere" / "plain.qcow2"
    moved = {**begun["cookie"], "storage": [{**entry, "path": str(target)}]}
    with pytest.raises(hvmon.OperationInvalid, match="directory .*elsewhere does not exist on "
                                                     "the destination"):
        c.migrate_prepare(begun["xml"].replace(str(disk), str(target)), moved, flags)
    target.parent.mkdir()
    prepared = c.migrate_prepare(begun["xml"].replace(str(disk), str(target)), moved, flags)
    assert prepared["cookie"]["nbd"]["exports"] == {"vda": "vda"}
    info = json.loads(subprocess.run([need_tool("qemu-img", QEMU_PACKAGES), "info", "-U",
                                      "--output=json", str(target)], check=True, timeout=60,
                                     capture_output=True).stdout)
    assert (info["format"], info["virtual-size"]) == ("qcow2", 24 * MiB)
    c.migrate_finish("filer", {}, flags, False)  # a later phase failed
    assert not target.exists() and disk.exists()  # only what Prepare created
    assert c.list_all_domains() == []
    dom.migrate_confirm({}, flags, False)
    assert dom.state()[0] == DomainState.RUNNING
