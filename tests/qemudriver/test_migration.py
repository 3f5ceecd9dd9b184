"""Live migration between two QEMU drivers on this machine (two roots: host A, host B)."""

from __future__ import annotations

import queue
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lxml import etree

import hvmon
from hvmon.core.drivers.qemu import process
from hvmon.core.events import LifecycleEvent, StartedDetail, StoppedDetail, SuspendedDetail
from hvmon.core.types import DomainState, RunningReason, ShutoffReason

from .conftest import QEMU_PACKAGES, guest_xml, remove_root
from .test_lifecycle import pci_slots


@pytest.fixture
def hosts() -> Iterator[Callable[..., hvmon.Connection]]:
    """``host(name, **options)``: an embedded QEMU driver under its own root."""
    roots: list[Path] = []
    conns: list[hvmon.Connection] = []

    def host(name: str, **options: str) -> hvmon.Connection:
        root = Path(tempfile.mkdtemp(prefix=f"hvm{name}-"))
        roots.append(root)
        query = "".join(f"&{k}={v}" for k, v in options.items())
        conn = hvmon.open(f"qemu:///embed?root={root}{query}")
        conns.append(conn)
        return conn

    try:
        yield host
    finally:
        for conn in conns:
            conn.close()
        for root in roots:
            remove_root(root)


@pytest.fixture
def shared_disk(tmp_path: Path) -> Path:
    """A qcow2 both hosts reach (the shared storage a migration needs)."""
    from toolcheck import need_tool

    path = tmp_path / "shared.qcow2"
    subprocess.run([need_tool("qemu-img", QEMU_PACKAGES), "create", "-q", "-f", "qcow2",
                    str(path), "16M"], check=True, timeout=60)
    return path


def events(conn: hvmon.Connection) -> queue.Queue[tuple[LifecycleEvent, int]]:
    seen: queue.Queue[tuple[LifecycleEvent, int]] = queue.Queue()
    conn.domain_event_register(lambda ev: seen.put((ev.event, ev.detail)))
    return seen


def test_live_migration_there_and_back_keeps_the_machine(
        hosts: Callable[..., hvmon.Connection], shared_disk: Path, domain_type: str) -> None:
    a, b = hosts("a"), hosts("b")
    dom = a.define_domain_xml(guest_xml("traveller", domain_type, shared_disk))
    dom.create()
    slots = pci_slots(dom.xml_desc())
    machine = etree.fromstring(dom.xml_desc().encode()).find("os/type").get("machine")
    seen_a, seen_b = events(a), events(b)
    reports: list[tuple[int, int]] = []

    moved = dom.migrate(b, live=True, persistent=True, undefine_source=True,
                        progress=lambda done, total: reports.append((done, total)))
    assert moved.state() == (DomainState.RUNNING, RunningReason.MIGRATED)
    assert pci_slots(moved.xml_desc()) == slots
    assert etree.fromstring(moved.xml_desc().encode()).find("os/type").get(
        "machine") == machine
    assert moved.is_persistent() and b.lookup_domain_by_name("traveller").uuid == dom.uuid
    with pytest.raises(hvmon.NoSuchDomain):  # undefined on the source after success
        a.lookup_domain_by_name("traveller")
    first = seen_a.get(timeout=5)  # the pause of the last round may or may not be seen
    if first == (LifecycleEvent.SUSPENDED, SuspendedDetail.MIGRATED):
        first = seen_a.get(timeout=5)
    assert first == (LifecycleEvent.STOPPED, StoppedDetail.MIGRATED)
    assert seen_b.get(timeout=5) == (LifecycleEvent.STARTED, StartedDetail.MIGRATED)
    assert reports and all(0 <= done <= max(total, done) for done, total in reports)
    moved.suspend()  # the destination's monitor drives the guest now
    moved.resume()

    back = moved.migrate(a, live=True)  # transient on A, still defined on B
    assert back.state()[0] == DomainState.RUNNING and not back.is_persistent()
    assert moved.state() == (DomainState.SHUTOFF, ShutoffReason.MIGRATED)
    assert pci_slots(back.xml_desc()) == slots


def test_checks_refuse_before_anything_starts(hosts: Callable[..., hvmon.Connection],
                                              shared_disk: Path, domain_type: str) -> None:
    a = hosts("a")
    b = hosts("b", cpu_models="qemu64")  # this "host" offers one CPU model only
    cpu = "<cpu mode='custom' match='exact'><model>Haswell-noTSX</model></cpu>"
    xml = guest_xml("picky", domain_type, shared_disk).replace("<devices>", cpu + "<devices>")
    dom = a.define_domain_xml(xml)
    dom.create()
    with pytest.raises(hvmon.OperationInvalid, match="CPU model 'Haswell-noTSX' is not "
                                                     "available on the destination"):
        dom.migrate(b, live=True)
    assert dom.state()[0] == DomainState.RUNNING and b.list_all_domains() == []
    # a disk the destination cannot see (Prepare straight away: one machine shares files)
    begun = dom.migrate_begin({"live": True})
    missing = begun["xml"].replace(str(shared_disk), "/nonexistent/elsewhere.qcow2")
    with pytest.raises(hvmon.OperationInvalid, match="disk vda .* does not exist on the "
                                                     "destination"):
        hosts("c").migrate_prepare(re.sub(r"<cpu.*?</cpu>", "", missing, flags=re.S),
                                   begun["cookie"], {"live": True})
    dom.migrate_confirm({}, {"live": True}, False)  # end the migration begun above
    assert dom.state()[0] == DomainState.RUNNING


def test_a_dead_destination_leaves_the_guest_running_on_the_source(
        hosts: Callable[..., hvmon.Connection], shared_disk: Path, domain_type: str) -> None:
    a, b = hosts("a"), hosts("b")
    dom = a.define_domain_xml(guest_xml("resilient", domain_type, shared_disk))
    dom.create()
    pid = a.driver.running_pids()["resilient"]

    def kill_destination(done: int, total: int) -> None:
        for victim in b.driver.running_pids().values():
            process.terminate(victim, dom.uuid, grace=0)

    with pytest.raises(hvmon.HvmonError):
        dom.migrate(b, live=True, bandwidth=1, progress=kill_destination)
    assert dom.state()[0] == DomainState.RUNNING
    assert a.driver.running_pids()["resilient"] == pid
    assert b.list_all_domains() == []  # nothing left over on the destination
    dom.suspend()
    dom.resume()


def test_bad_flags_are_one_line(hosts: Callable[..., hvmon.Connection],
                                domain_type: str) -> None:
    a, b = hosts("a"), hosts("b")
    dom = a.define_domain_xml(guest_xml("flags", domain_type))
    with pytest.raises(hvmon.InvalidArgument, match="offline migration needs persistent"):
        dom.migrate(b, offline=True)
    with pytest.raises(hvmon.OperationInvalid, match="is not running"):
        dom.migrate(b, live=True)
    moved = dom.migrate(b, offline=True, persistent=True)  # only the definition moves
    assert moved.is_persistent() and moved.state()[0] == DomainState.SHUTOFF


def test_hvmon_migrate_shows_progress_and_says_where(
        hosts: Callable[..., hvmon.Connection], shared_disk: Path, domain_type: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    from hvmon.cli.main import main

    a, b = hosts("a"), hosts("b")
    a.define_domain_xml(guest_xml("cli", domain_type, shared_disk)).create()
    assert main(["-c", a.get_uri(), "migrate", "--live", "--persistent", "--progress",
                 "--dname", "cli2", "cli", b.get_uri()]) == 0
    out, err = capsys.readouterr()
    assert f"Domain 'cli' migrated to {b.get_uri()} as 'cli2'" in out
    assert "Migration of cli [" in err and "100%" in err
    assert b.lookup_domain_by_name("cli2").state()[0] == DomainState.RUNNING
    assert main(["-c", b.get_uri(), "migrate", "--tunnelled", "cli2", a.get_uri()]) == 1
    assert capsys.readouterr().err.startswith("error: tunnelled migration needs --p2p")
    # back home, peer to peer, under its old name (A still holds its definition)
    assert main(["-c", b.get_uri(), "migrate", "--p2p", "--live", "--dname", "cli", "cli2",
                 a.get_uri()]) == 0
    assert a.lookup_domain_by_name("cli").state()[0] == DomainState.RUNNING


def test_cpu_compare_against_this_host(hosts: Callable[..., hvmon.Connection],
                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    from hvmon.cli.main import main
    from hvmon.core.types import CpuCompareResult

    conn = hosts("a")
    caps = conn.driver.caps()
    assert conn.compare_cpu("<cpu mode='host-passthrough'/>") == CpuCompareResult.IDENTICAL
    tcg = "<domain type='qemu'><cpu><model>qemu64</model></cpu></domain>"
    assert conn.compare_cpu(tcg) == CpuCompareResult.SUPERSET  # TCG emulates every model
    usable = sorted(set(caps.cpu_models) - caps.unusable_cpu_models - {"host", "max", "base"})
    if caps.kvm:  # a model whose every feature this host's CPU has (QEMU says which)
        assert conn.compare_cpu(f"<cpu><model>{usable[0]}</model></cpu>") == \
            CpuCompareResult.SUPERSET
    assert conn.compare_cpu("<cpu><model>Nonsense-CPU</model></cpu>") == \
        CpuCompareResult.INCOMPATIBLE
    for model in sorted(caps.unusable_cpu_models)[:1]:  # a model this host lacks features for
        assert conn.compare_cpu(f"<cpu><model>{model}</model></cpu>") == \
            CpuCompareResult.INCOMPATIBLE
    restricted = hosts("b", cpu_models="qemu64")
    assert restricted.compare_cpu("<cpu><model>Haswell-noTSX</model></cpu>") == \
        CpuCompareResult.INCOMPATIBLE
    with pytest.raises(hvmon.HvmonError, match="no <cpu> element"):
        conn.compare_cpu("<domain/>")
    cpu_file = tmp_path / "cpu.xml"
    cpu_file.write_text(tcg)
    assert main(["-c", conn.get_uri(), "cpu-compare", str(cpu_file)]) == 0
    assert f"Host CPU is a superset of CPU described in {cpu_file}" in capsys.readouterr().out
    cpu_file.write_text("<cpu><model>Nonsense-CPU</model></cpu>")
    assert main(["-c", conn.get_uri(), "cpu-compare", str(cpu_file)]) == 1
    assert "is incompatible with host CPU" in capsys.readouterr().out


def test_disk_locks_are_handed_over(tmp_path: Path, domain_type: str) -> None:
    """Two hosts sharing a lockspace: the lock moves with the guest, never held twice."""
    from .test_locks import _holders, configure

    space = tmp_path / "lockspace"
    roots = [Path(tempfile.mkdtemp(prefix=f"hvml{h}-")) for h in "ab"]
    disk = tmp_path / "guest.raw"
    with open(disk, "wb") as out:
        out.truncate(8 * 1024 * 1024)
    for root in roots:
        configure(root, space)
    conns = [hvmon.open(f"qemu:///embed?root={root}") for root in roots]
    try:
        a, b = conns
        xml = guest_xml("locked", domain_type).replace(
            "<devices>", f"<devices><disk type='file' device='disk'><driver name='qemu' "
                         f"type='raw'/><source file='{disk}'/><target dev='vda' "
                         "bus='virtio'/></disk>")
        dom = a.define_domain_xml(xml)
        dom.create()
        assert _holders(space) == [dom.uuid]
        moved = dom.migrate(b, live=True)
        assert moved is not None and moved.state()[0] == DomainState.RUNNING
        assert _holders(space) == [dom.uuid]  # held once, now by B's holder
        intruder = a.define_domain_xml(xml.replace("<name>locked</name>",
                                                   "<name>intruder</name>"))
        with pytest.raises(hvmon.OperationInvalid, match="in use by running domain 'locked'"):
            intruder.create()
        back = moved.migrate(a, live=True)
        assert back is not None and back.state()[0] == DomainState.RUNNING
        back.destroy()
        assert _holders(space) == []
    finally:
        for conn in conns:
            conn.close()
        for root in roots:
            remove_root(root)


def test_cpu_baseline_is_usable_on_every_host(hosts: Callable[..., hvmon.Connection],
                                              tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from hvmon.cli.main import main
    from hvmon.core.cpubaseline import GENERATIONS, usable_models
    from hvmon.core.types import CpuCompareResult

    conn = hosts("a")
    here = conn.domain_capabilities()
    older = ("<domainCapabilities><cpu><mode name='custom'>"
             "<model usable='yes'>Westmere</model><model usable='yes'>Nehalem</model>"
             "<model usable='yes'>qemu64</model><model usable='yes'>pentium3</model>"
             "<model usable='yes'>486</model><model usable='no'>Haswell</model>"
             "</mode></cpu></domainCapabilities>")
    guest_cpu = conn.baseline_cpu([here])
    model = etree.fromstring(guest_cpu.encode()).findtext("model")
    assert conn.compare_cpu(guest_cpu) != CpuCompareResult.INCOMPATIBLE, model
    common = usable_models(here) & usable_models(older)
    both = etree.fromstring(conn.baseline_cpu([here, older]).encode()).findtext("model")
    assert both in common  # usable everywhere, and the newest of them
    assert GENERATIONS.index(both) == max(GENERATIONS.index(m) for m in common
                                          if m in GENERATIONS)
    with pytest.raises(hvmon.HvmonError, match="no named CPU model is usable on every host"):
        conn.baseline_cpu([older, older.replace("usable='yes'", "usable='no'")])
    other = tmp_path / "older.xml"
    other.write_text(older)
    assert main(["-c", conn.get_uri(), "hypervisor-cpu-baseline", str(other)]) == 0
    assert "<model fallback=\"forbid\">Westmere</model>" in capsys.readouterr().out


def test_confirm_leaves_the_source_qemu_exiting_in_the_background(
        hosts: Callable[..., hvmon.Connection], shared_disk: Path, domain_type: str) -> None:
    import time

    a, b = hosts("a"), hosts("b")
    dom = a.define_domain_xml(guest_xml("quick", domain_type, shared_disk))
    dom.create()
    pid = a.driver.running_pids()["quick"]
    moved = dom.migrate(b, live=True)
    assert dom.state() == (DomainState.SHUTOFF, ShutoffReason.MIGRATED)  # at once
    assert "quick" not in a.driver.running_pids()
    end = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < end:  # exited and reaped
        time.sleep(0.01)
    assert not Path(f"/proc/{pid}").exists()
    moved.destroy()
    dom.create()  # straight away: the old QEMU's host resources were released first
    assert dom.state()[0] == DomainState.RUNNING
    back = b.define_domain_xml(guest_xml("quick2", domain_type))
    back.create()
    back.migrate(a, live=True)
    back.create()  # the same on B, before its reaper could run: start finishes it
    assert back.state()[0] == DomainState.RUNNING
