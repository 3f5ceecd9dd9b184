"""Hot-plug of disks and NICs: new devices get free PCI slots, the others never move."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import hvmon
from hvmon.core.types import DomainState

from .conftest import guest_xml
from .test_lifecycle import pci_slots

Opener = Callable[..., hvmon.Connection]


def disk_xml(path: Path, dev: str) -> str:
    return (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='{path}'/><target dev='{dev}' bus='virtio'/></disk>")


def qemu_slots(conn: hvmon.Connection, name: str) -> dict[str, int]:
    """QEMU's own view: device id (qdev) -> PCI slot, from query-pci."""
    driver = conn.driver
    buses = driver.lifecycle.execute(driver.registry.find("name", name), "query-pci")
    return {d["qdev_id"]: d["slot"] for bus in buses for d in bus["devices"] if d.get("qdev_id")}


def test_hotplugged_disk_and_nic_get_free_slots_and_nothing_moves(
        open_qemu: Opener, disk_image: Callable[[str], Path], domain_type: str) -> None:
    conn = open_qemu()
    dom = conn.define_domain_xml(guest_xml("plug", domain_type, disk_image("plug")))
    dom.create()
    before = pci_slots(dom.xml_desc())
    dom.attach_device(disk_xml(disk_image("extra"), "vdb"))
    dom.attach_device("<interface type='user'><model type='virtio'/></interface>")
    after = pci_slots(dom.xml_desc())
    assert {k: v for k, v in after.items() if k in before} == before  # nobody moved
    added = {k: v for k, v in after.items() if k not in before}
    assert len(added) == 2 and not set(added.values()) & set(before.values())
    # QEMU put the devices exactly where the XML says
    seen = qemu_slots(conn, "plug")
    assert seen["virtio-disk1"] == int(added["disk:vdb"].split(":")[1], 16)
    assert len(conn.get_all_domain_stats(groups=["block"])[0].stats) > 0
    stats = conn.get_all_domain_stats(groups=["block"])[0].stats
    assert stats["block.count"] == 2 and stats["block.1.name"] == "vdb"
    # the definition is untouched, and a restart keeps every address of the definition
    assert "vdb" not in dom.xml_desc(inactive=True)
    dom.destroy()
    dom.create()
    assert pci_slots(dom.xml_desc()) == before


def test_bad_hotplug_requests_change_nothing(open_qemu: Opener,
                                             disk_image: Callable[[str], Path],
                                             domain_type: str) -> None:
    conn = open_qemu()
    dom = conn.define_domain_xml(guest_xml("careful", domain_type, disk_image("careful")))
    dom.create()
    before = dom.xml_desc()
    with pytest.raises(hvmon.HvmonError, match="already has this <disk>"):
        dom.attach_device(disk_xml(disk_image("again"), "vda"))
    with pytest.raises(hvmon.HvmonError, match="hot-plug of <sound> is not supported"):
        dom.attach_device("<sound model='ich6'/>")
    with pytest.raises(hvmon.HvmonError, match="QEMU refused device_add|No such file"):
        dom.attach_device(disk_xml(Path("/nonexistent/disk.qcow2"), "vdc"))
    with pytest.raises(hvmon.HvmonError, match="XML"):
        dom.attach_device("<disk")
    assert dom.xml_desc() == before and dom.state()[0] == DomainState.RUNNING
    nodes = conn.driver.lifecycle.execute(conn.driver.registry.find("name", "careful"),
                                          "query-named-block-nodes")
    assert len(nodes) == 2  # the failed attach left no backend behind


def test_a_guest_without_an_os_never_releases_a_device_and_says_so(
        open_qemu: Opener, disk_image: Callable[[str], Path], domain_type: str) -> None:
    conn = open_qemu()
    dom = conn.define_domain_xml(guest_xml("stubborn", domain_type, disk_image("stubborn")))
    dom.create()
    conn.driver.hotplug.timeout = 0.5
    with pytest.raises(hvmon.OperationTimeout, match="has not released it within 0.5 s"):
        dom.detach_device("<disk><target dev='vda'/></disk>")
    assert "vda" in dom.xml_desc()  # still there until the guest lets go


def test_inactive_domains_change_their_definition(open_qemu: Opener,
                                                  disk_image: Callable[[str], Path],
                                                  domain_type: str) -> None:
    conn = open_qemu()
    dom = conn.define_domain_xml(guest_xml("cold", domain_type))
    before = pci_slots(dom.xml_desc())
    dom.attach_device(disk_xml(disk_image("cold"), "vdb"))
    after = pci_slots(dom.xml_desc())
    assert {k: v for k, v in after.items() if k in before} == before and "disk:vdb" in after
    dom.create()
    assert "virtio-disk" in str(qemu_slots(conn, "cold"))
    dom.destroy()
    dom.detach_device("<disk><target dev='vdb'/></disk>")
    assert pci_slots(dom.xml_desc()) == before
    with pytest.raises(hvmon.HvmonError, match="has no matching <disk>"):
        dom.detach_device("<disk><target dev='vdz'/></disk>")


def test_vcpus_are_hot_added_up_to_the_maximum(open_qemu: Opener, domain_type: str) -> None:
    conn = open_qemu()
    xml = guest_xml("cpus", domain_type).replace("<vcpu>1</vcpu>",
                                                 "<vcpu current='1'>3</vcpu>")
    dom = conn.define_domain_xml(xml)
    dom.create()
    dom.set_vcpus(3)
    stats = conn.get_all_domain_stats(groups=["vcpu"])[0].stats
    assert stats["vcpu.current"] == 3 and stats["vcpu.maximum"] == 3
    assert "current=\"3\"" in dom.xml_desc() and "current=\"1\"" in dom.xml_desc(inactive=True)
    with pytest.raises(hvmon.HvmonError, match="removing vCPUs from running domain"):
        dom.set_vcpus(2)
    with pytest.raises(hvmon.HvmonError, match="outside 1..3"):
        dom.set_vcpus(4)
    dom.destroy()
    dom.set_vcpus(2)  # the definition now boots with two
    dom.create()
    assert conn.get_all_domain_stats(groups=["vcpu"])[0].stats["vcpu.current"] == 2
