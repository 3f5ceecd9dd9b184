"""The QEMU driver with real QEMU processes: define, start, pause, stop, crash, reattach."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

import hvmon
from hvmon.core.errors import OperationDenied, OperationInvalid, OperationTimeout
from hvmon.core.events import LifecycleEvent, ShutdownDetail, StoppedDetail
from hvmon.core.types import DomainState, ShutoffReason

from .conftest import guest_xml

Opener = Callable[..., hvmon.Connection]


def wait_state(dom: hvmon.Domain, state: DomainState, timeout: float = 10.0) -> tuple[int, int]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = dom.state()
        if got[0] == state:
            return got
        time.sleep(0.05)
    pytest.fail(f"domain {dom.name} stayed {dom.state()}, expected {state.name}")


def events_of(conn: hvmon.Connection) -> queue.Queue[tuple[str, LifecycleEvent, int]]:
    seen: queue.Queue[tuple[str, LifecycleEvent, int]] = queue.Queue()
    conn.domain_event_register(lambda ev: seen.put((ev.domain.name, ev.event, ev.detail)))
    return seen


def drain(seen: queue.Queue[tuple[str, LifecycleEvent, int]], count: int,
          timeout: float = 10.0) -> list[tuple[str, LifecycleEvent, int]]:
    return [seen.get(timeout=timeout) for _ in range(count)]


def pci_slots(xml: str) -> dict[str, str]:
    """Device tag (+ target/mac) -> its PCI slot, from a domain XML."""
    root = etree.fromstring(xml.encode())
    slots = {}
    for device in root.find("devices"):
        address = device.find("address[@type='pci']")
        if address is None:
            continue
        key = device.tag
        if device.find("target") is not None and device.find("target").get("dev"):
            key += ":" + device.find("target").get("dev")
        if device.find("mac") is not None:
            key += ":" + device.find("mac").get("address")
        if device.tag == "controller":
            key += ":" + device.get("type", "") + device.get("index", "")
        slots[key] = f"{address.get('bus')}:{address.get('slot')}"
    return slots


def test_define_start_pause_resume_destroy_with_events(
        open_qemu: Opener, disk_image: Callable[[str], Path], domain_type: str) -> None:
    conn = open_qemu()
    seen = events_of(conn)
    dom = conn.define_domain_xml(guest_xml("alpha", domain_type, disk_image("alpha")))
    config = dom.xml_desc()
    # the machine alias is stored versioned and every PCI device has its address
    machine = etree.fromstring(config.encode()).find("os/type").get("machine")
    assert machine.startswith("pc-i440fx-"), machine
    assert {k.split(":")[0] for k in pci_slots(config)} >= {"disk", "interface", "memballoon"}
    assert dom.state() == (DomainState.SHUTOFF, 0) and dom.get_id() == -1

    dom.create()
    assert dom.state()[0] == DomainState.RUNNING and dom.get_id() >= 1
    live = etree.fromstring(dom.xml_desc().encode())
    assert live.get("id") == str(dom.get_id())
    assert live.find("devices/disk/alias").get("name") == "virtio-disk0"
    dom.suspend()
    assert dom.state()[0] == DomainState.PAUSED
    dom.resume()
    assert dom.state()[0] == DomainState.RUNNING
    dom.destroy()
    assert dom.state() == (DomainState.SHUTOFF, ShutoffReason.DESTROYED)
    assert drain(seen, 5) == [
        ("alpha", LifecycleEvent.DEFINED, 0), ("alpha", LifecycleEvent.STARTED, 0),
        ("alpha", LifecycleEvent.SUSPENDED, 0), ("alpha", LifecycleEvent.RESUMED, 0),
        ("alpha", LifecycleEvent.STOPPED, StoppedDetail.DESTROYED)]
    assert seen.empty()
    assert dom.xml_desc() == config  # nothing of the run leaks into the definition


def test_a_qemu_that_dies_is_a_crash_and_nothing_else_is_disturbed(
        open_qemu: Opener, domain_type: str) -> None:
    conn = open_qemu()
    seen = events_of(conn)
    victim = conn.define_domain_xml(guest_xml("victim", domain_type))
    bystander = conn.define_domain_xml(guest_xml("bystander", domain_type))
    victim.create()
    bystander.create()
    drain(seen, 4)
    pid = conn.driver.running_pids()["victim"]
    os.kill(pid, signal.SIGKILL)
    assert wait_state(victim, DomainState.SHUTOFF) == (DomainState.SHUTOFF,
                                                       ShutoffReason.CRASHED)
    assert drain(seen, 1) == [("victim", LifecycleEvent.STOPPED, StoppedDetail.FAILED)]
    assert bystander.state()[0] == DomainState.RUNNING
    bystander.suspend()  # its monitor still answers
    assert bystander.state()[0] == DomainState.PAUSED


def test_a_restarted_driver_reattaches_to_running_guests(
        open_qemu: Opener, domain_type: str) -> None:
    first = open_qemu()
    dom = first.define_domain_xml(guest_xml("steady", domain_type))
    dom.create()
    transient = first.create_domain_xml(guest_xml("passing", domain_type))
    ids = (dom.get_id(), transient.get_id())
    pids = first.driver.running_pids()
    first.close()  # the daemon goes away; the guests must not notice

    second = open_qemu()
    assert second.driver.running_pids() == pids
    again = second.lookup_domain_by_name("steady")
    gone = second.lookup_domain_by_name("passing")
    assert (again.get_id(), gone.get_id()) == ids
    assert again.state()[0] == DomainState.RUNNING and not gone.is_persistent()
    again.suspend()  # the new monitor connection really drives QEMU
    assert again.state()[0] == DomainState.PAUSED
    stats = second.get_all_domain_stats(groups=["state", "cpu-total"])
    assert {s.domain.name: s.stats["state.state"] for s in stats} == {
        "steady": DomainState.PAUSED, "passing": DomainState.RUNNING}
    gone.destroy()
    with pytest.raises(hvmon.NoSuchDomain):
        second.lookup_domain_by_name("passing")  # transient: forgotten once stopped


def test_pci_addresses_survive_restarts_and_match_what_qemu_shows(
        open_qemu: Opener, disk_image: Callable[[str], Path], domain_type: str) -> None:
    conn = open_qemu()
    dom = conn.define_domain_xml(guest_xml("stable", domain_type, disk_image("stable")))
    before = pci_slots(dom.xml_desc())
    for _ in range(2):
        dom.create()
        assert pci_slots(dom.xml_desc()) == before
        qemu_view = conn.driver.lifecycle.execute(conn.driver.registry.find("name", "stable"),
                                                  "query-pci")
        slots = {f"0x{d['slot']:02x}" for bus in qemu_view for d in bus["devices"]}
        assert {slot.split(":")[1] for slot in before.values()} <= slots
        dom.destroy()
    assert pci_slots(dom.xml_desc()) == before


def test_stats_grow_while_the_guest_runs(open_qemu: Opener, disk_image: Callable[[str], Path],
                                         domain_type: str) -> None:
    conn = open_qemu()
    dom = conn.define_domain_xml(guest_xml("busy", domain_type, disk_image("busy")))
    dom.create()
    first = conn.get_all_domain_stats()[0].stats
    time.sleep(0.5)
    second = conn.get_all_domain_stats()[0].stats
    assert second["cpu.time"] > first["cpu.time"] > 0
    assert second["vcpu.current"] == 1 and second["vcpu.0.time"] > 0
    assert second["balloon.current"] == 64 * 1024 and second["balloon.maximum"] == 64 * 1024
    assert second["block.count"] == 1 and second["block.0.name"] == "vda"
    assert second["block.0.capacity"] == 16 * 1024 * 1024
    assert "block.0.rd.reqs" in second and second["net.count"] == 1
    # libvirt's keys from /proc: vCPU run-queue delay and wait, the process's RSS
    assert second["vcpu.0.delay"] >= 0 and second["vcpu.0.wait"] >= 0
    assert 0 < second["balloon.rss"] < 1024 * 1024
    # the balloon size follows QEMU's BALLOON_CHANGE events (no query per stats call)
    qdom = conn.driver.registry.find("name", "busy")
    conn.driver.lifecycle.on_qmp_event(qdom, qdom.run, "BALLOON_CHANGE",
                                       {"actual": 48 * 1024 * 1024})
    assert conn.get_all_domain_stats()[0].stats["balloon.current"] == 48 * 1024


def test_paused_start_transient_and_undefine_while_running(
        open_qemu: Opener, domain_type: str) -> None:
    conn = open_qemu()
    dom = conn.define_domain_xml(guest_xml("sleepy", domain_type))
    dom.create_with_flags(paused=True)
    assert dom.state()[0] == DomainState.PAUSED
    dom.undefine()  # still running, now transient
    assert not dom.is_persistent() and dom.state()[0] == DomainState.PAUSED
    dom.destroy()
    with pytest.raises(hvmon.NoSuchDomain):
        conn.lookup_domain_by_name("sleepy")
    with pytest.raises(OperationInvalid, match="already running"):
        running = conn.create_domain_xml(guest_xml("once", domain_type))
        running.create()


def test_shutdown_without_acpi_in_the_guest_reports_after_the_timeout(
        open_qemu: Opener, domain_type: str) -> None:
    conn = open_qemu(shutdown_timeout=1)
    dom = conn.define_domain_xml(guest_xml("deaf", domain_type))
    dom.create()
    with pytest.raises(OperationTimeout, match="did not power off within 1 s"):
        dom.shutdown()
    assert dom.state()[0] == DomainState.RUNNING


def test_a_read_only_connection_refuses_every_change(open_qemu: Opener,
                                                      domain_type: str) -> None:
    conn = open_qemu()
    dom = conn.define_domain_xml(guest_xml("guarded", domain_type))
    ro = open_qemu(readonly=True)
    guarded = ro.lookup_domain_by_name("guarded")
    for call in (guarded.create, guarded.destroy, guarded.suspend, guarded.undefine,
                 lambda: ro.define_domain_xml(guest_xml("other", domain_type))):
        with pytest.raises(OperationDenied):
            call()
    assert dom.state()[0] == DomainState.SHUTOFF


def test_bad_input_is_one_line(open_qemu: Opener, domain_type: str) -> None:
    conn = open_qemu()
    with pytest.raises(hvmon.HvmonError, match="machine type 'pc-nonsense-1.0'") as info:
        conn.define_domain_xml(guest_xml("odd", domain_type, machine="pc-nonsense-1.0"))
    assert "\n" not in str(info.value)
    with pytest.raises(hvmon.HvmonError, match="not served by the qemu driver"):
        conn.define_domain_xml(guest_xml("xen", "xen"))
    with pytest.raises(hvmon.NoConnect, match="needs an absolute root"):
        hvmon.open("qemu:///embed?root=relative")
    with pytest.raises(hvmon.NoConnect, match="unknown qemu driver option 'colour'"):
        hvmon.open("qemu:///embed?root=/tmp&colour=blue")
    # one driver per root and process: another process would steal the QMP sockets
    other = subprocess.run([str(Path(sys.executable).parent / "hvmon"), "-c", conn.get_uri(),
                            "list"], capture_output=True, text=True, timeout=60)
    assert other.returncode == 1 and other.stderr.count("\n") == 1
    assert f"in use by another hvmon process (pid {os.getpid()})" in other.stderr


def test_memory_dump_for_crash_and_balloon(open_qemu: Opener, qemu_root: Path,
                                           domain_type: str) -> None:
    conn = open_qemu()
    dom = conn.define_domain_xml(guest_xml("dumped", domain_type))
    dom.create()
    target = qemu_root / "dumped.core"
    dom.core_dump(str(target))
    header = target.read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[16:18], "little") == 4  # ET_CORE
    assert target.stat().st_size >= 64 * 1024 * 1024
    assert dom.state()[0] == DomainState.RUNNING  # QEMU resumed the guest after the dump
    dom.set_memory(32 * 1024)
    stats = conn.get_all_domain_stats(groups=["balloon"])[0].stats
    assert stats["balloon.maximum"] == 64 * 1024
    with pytest.raises(hvmon.HvmonError, match="outside 1..65536 KiB"):
        dom.set_memory(128 * 1024)


def test_capabilities_say_which_accelerator_and_list_canonical_machines(
        open_qemu: Opener, domain_type: str) -> None:
    conn = open_qemu()
    caps = etree.fromstring(conn.capabilities().encode())
    kinds = {d.get("type") for d in caps.iterfind("guest/arch/domain")}
    assert "qemu" in kinds and (("kvm" in kinds) == (domain_type == "kvm") or
                                os.environ.get("HVMON_TEST_QEMU_TCG") == "1")
    machines = {m.text: m.get("canonical") for m in caps.iterfind("guest/arch/machine")}
    assert machines["pc"].startswith("pc-i440fx-") and machines["q35"].startswith("pc-q35-")
    assert conn.get_version() >= 7_000_000  # QEMU 7.x as libvirt encodes it
    dom_caps = etree.fromstring(conn.domain_capabilities("q35", "qemu").encode())
    assert dom_caps.findtext("machine").startswith("pc-q35-")
    assert dom_caps.findtext("domain") == "qemu"
    with pytest.raises(hvmon.HvmonError, match="virt type 'xen' is not served"):
        conn.domain_capabilities(None, "xen")


class Recorder:
    """A start hook that records its calls (and refuses when told to)."""

    def __init__(self, log: list[str], name: str, refuse: bool = False) -> None:
        self.log, self.name, self.refuse = log, name, refuse

    def prepare(self, dom: object, live: object) -> None:
        self.log.append(f"prepare {self.name}")
        if self.refuse:
            raise hvmon.OperationInvalid(f"{self.name} says no")

    def release(self, dom: object, live: object) -> None:
        self.log.append(f"release {self.name}")


def test_start_hooks_prepare_in_order_and_release_on_stop_crash_and_refusal(
        open_qemu: Opener, domain_type: str) -> None:
    conn = open_qemu()
    log: list[str] = []
    hooks = conn.driver.lifecycle.hooks
    hooks += [Recorder(log, "disks"), Recorder(log, "nics")]
    dom = conn.define_domain_xml(guest_xml("hooked", domain_type))
    dom.create()
    dom.destroy()
    dom.create()
    os.kill(conn.driver.running_pids()["hooked"], signal.SIGKILL)
    wait_state(dom, DomainState.SHUTOFF)
    assert log == ["prepare disks", "prepare nics", "release nics", "release disks"] * 2
    log.clear()
    hooks.append(Recorder(log, "locks", refuse=True))
    with pytest.raises(hvmon.OperationInvalid, match="locks says no"):
        dom.create()
    assert log == ["prepare disks", "prepare nics", "prepare locks", "release nics",
                   "release disks"]
    assert dom.state()[0] == DomainState.SHUTOFF and conn.driver.running_pids() == {}


def test_a_qemu_stopped_by_a_signal_from_outside_is_a_host_shutdown(
        open_qemu: Opener, domain_type: str) -> None:
    """SIGTERM from someone else: QEMU says SHUTDOWN (host-signal) first; not a crash."""
    conn = open_qemu()
    seen = events_of(conn)
    dom = conn.define_domain_xml(guest_xml("signalled", domain_type))
    dom.create()
    drain(seen, 2)
    os.kill(conn.driver.running_pids()["signalled"], signal.SIGTERM)
    assert wait_state(dom, DomainState.SHUTOFF) == (DomainState.SHUTOFF,
                                                    ShutoffReason.SHUTDOWN)
    assert drain(seen, 2) == [("signalled", LifecycleEvent.SHUTDOWN, ShutdownDetail.HOST),
                              ("signalled", LifecycleEvent.STOPPED, StoppedDetail.SHUTDOWN)]


def test_a_read_only_virtio_disk_starts_and_is_read_only_in_qemu(
        open_qemu: Opener, disk_image: Callable[[str], Path], domain_type: str) -> None:
    conn = open_qemu()
    xml = guest_xml("ro", domain_type, disk_image("ro")).replace(
        "<target dev='vda' bus='virtio'/>", "<target dev='vda' bus='virtio'/><readonly/>")
    dom = conn.define_domain_xml(xml)
    dom.create()
    blocks = conn.driver.lifecycle.execute(conn.driver.registry.find("name", "ro"),
                                           "query-block")
    disk = next(b for b in blocks if "virtio-disk0" in b.get("qdev", ""))
    assert disk["inserted"]["ro"] is True
