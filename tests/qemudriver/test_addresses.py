"""Stable PCI addresses: libvirt's layout, stability, hot-plug room, conflicts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from hvmon.core.drivers.qemu.addresses import (
    DEFAULT_SPARE_PORTS,
    assign_addresses,
    device_address_args,
    pci_address_of,
)
from hvmon.core.errors import InvalidArgument, OperationFailed, Unsupported
from hvmon.core.xml.domain import Domain

ADDRESS = re.compile(r"\s*<address type='pci'[^>]*/>")
ROOT_PORTS = re.compile(r"\s*<controller type='pci' index='[1-9]\d*'.*?</controller>", re.S)


def addresses(dom: Domain) -> dict[str, str]:
    """label -> 'bus:slot.function' for every device with a PCI address."""
    out: dict[str, str] = {}
    counts: dict[str, int] = {}
    for device in dom.find("devices"):
        if not isinstance(device.tag, str):
            continue
        address = pci_address_of(device)
        if address is None:
            continue
        key = device.tag + (f"[{device.get('index')}]" if device.get("index") else "")
        n = counts.get(key, 0)
        counts[key] = n + 1
        out[f"{key}#{n}"] = f"{address.bus:02x}:{address.slot:02x}.{address.function}"
    return out


def libvirt_case(compat_dir: Path, name: str) -> tuple[Domain, Domain]:
    """(libvirt's output, the same document with its PCI addresses and ports removed)."""
    text = (compat_dir / "libvirt-xml" / "domain" / f"{name}.x86_64-latest.xml").read_text()
    stripped = ROOT_PORTS.sub("", ADDRESS.sub("", text))
    assert stripped != text
    return Domain.from_xml(text), Domain.from_xml(stripped)


MINIMAL = """<domain type='qemu'>
  <name>a</name>
  <memory unit='MiB'>64</memory>
  <os>
    <type machine='{machine}'>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <source file='/x.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='user'>
      <mac address='52:54:00:00:00:01'/>
      <model type='virtio'/>
    </interface>
    <memballoon model='virtio'/>
  </devices>
</domain>
"""


def minimal(machine: str) -> Domain:
    return Domain.from_xml(MINIMAL.format(machine=machine))


def new_interface(dom: Domain, mac: str) -> etree._Element:
    iface = etree.SubElement(dom.find("devices"), "interface", type="user")
    etree.SubElement(iface, "mac", address=mac)
    etree.SubElement(iface, "model", type="virtio")
    return iface


# --- libvirt's layout ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x86_64-pc-graphics", "x86_64-pc-minimal"])
def test_i440fx_matches_libvirt(compat_dir: Path, name: str) -> None:
    expected, dom = libvirt_case(compat_dir, name)
    assign_addresses(dom, "pc")
    assert addresses(dom) == addresses(expected)


def test_q35_matches_libvirt(compat_dir: Path) -> None:
    expected, dom = libvirt_case(compat_dir, "q35-virt-manager-basic")
    assign_addresses(dom, "q35")
    got, want = addresses(dom), addresses(expected)
    # libvirt's document has one spare port; hvmon keeps DEFAULT_SPARE_PORTS
    assert {k: v for k, v in got.items() if k in want} == want
    ports = dom.element.findall("devices/controller[@model='pcie-root-port']")
    used = {pci_address_of(d).bus for d in dom.find("devices")
            if pci_address_of(d) is not None} - {0}
    assert len(ports) - len(used) == DEFAULT_SPARE_PORTS
    first = ports[0]
    assert first.find("target").get("port") == "0x10"
    assert first.find("address").get("multifunction") == "on"
    assert first.find("model").get("name") == "pcie-root-port"


def test_i440fx_slots() -> None:
    dom = minimal("pc")
    video = etree.SubElement(dom.find("devices"), "video")
    etree.SubElement(video, "model", type="vga")
    assign_addresses(dom, "pc-i440fx-7.2")
    assert addresses(dom) == {"video#0": "00:02.0", "interface#0": "00:03.0",
                              "disk#0": "00:04.0", "memballoon#0": "00:05.0"}
    root = dom.element.find("devices/controller[@type='pci']")
    assert root.get("model") == "pci-root" and root.get("index") == "0"
    assert device_address_args(dom.find("devices/disk"), "i440fx") == "bus=pci.0,addr=0x4"


def test_q35_endpoints_behind_root_ports() -> None:
    dom = minimal("q35")
    assign_addresses(dom, "q35")
    got = addresses(dom)
    for endpoint in ("disk#0", "interface#0", "memballoon#0"):
        bus, slotfn = got[endpoint].split(":")
        assert bus != "00" and slotfn == "00.0"
    assert len({got["disk#0"], got["interface#0"], got["memballoon#0"]}) == 3
    disk = dom.find("devices/disk")
    assert device_address_args(disk, "q35").startswith("bus=pci.")


def test_indentation_kept() -> None:
    dom = minimal("pc")
    assign_addresses(dom, "pc")
    text = dom.to_xml()
    assert "\n      <address type=\"pci\"" in text
    assert "\n    </memballoon>" in text


# --- stability ----------------------------------------------------------------------


@pytest.mark.parametrize("machine", ["pc", "q35"])
def test_rerun_changes_nothing(machine: str) -> None:
    dom = minimal(machine)
    assign_addresses(dom, machine)
    once = dom.to_xml()
    again = Domain.from_xml(once)
    assign_addresses(again, machine)
    assert again.to_xml() == once


def test_i440fx_added_device_gets_free_slot_others_unchanged() -> None:
    dom = minimal("pc")
    assign_addresses(dom, "pc")
    before = addresses(dom)
    new_interface(dom, "52:54:00:00:00:02")
    assign_addresses(dom, "pc", hotplug=True)
    after = addresses(dom)
    assert {k: after[k] for k in before} == before
    assert after["interface#1"] not in before.values()


def test_removed_device_frees_nothing_else() -> None:
    dom = minimal("pc")
    assign_addresses(dom, "pc")
    before = addresses(dom)
    devices = dom.find("devices")
    devices.remove(devices.find("interface"))
    assign_addresses(dom, "pc")
    after = addresses(dom)
    assert after == {k: v for k, v in before.items() if k != "interface#0"}
    # a device added later takes the freed slot, still without moving the others
    new_interface(dom, "52:54:00:00:00:03")
    assign_addresses(dom, "pc", hotplug=True)
    assert addresses(dom)["interface#0"] == before["interface#0"]


def test_q35_hotplug_uses_spare_port_and_adds_no_controller() -> None:
    dom = minimal("q35")
    assign_addresses(dom, "q35", spare_ports=1)
    before = addresses(dom)
    controllers = len(dom.element.findall("devices/controller"))
    iface = new_interface(dom, "52:54:00:00:00:04")
    assign_addresses(dom, "q35", hotplug=True)
    assert len(dom.element.findall("devices/controller")) == controllers
    assert {k: v for k, v in addresses(dom).items() if k in before} == before
    assert pci_address_of(iface).bus != 0
    # no spare port left: hot-plug is refused and the document is unchanged
    new_interface(dom, "52:54:00:00:00:05")
    text = dom.to_xml()
    with pytest.raises(OperationFailed, match="no free pcie-root-port"):
        assign_addresses(dom, "q35", hotplug=True)
    assert dom.to_xml() == text
    # at define time (a cold change) a port is added instead
    assign_addresses(dom, "q35", spare_ports=0)
    assert len(dom.element.findall("devices/controller")) == controllers + 1


# --- conflicts -------------------------------------------------------------------------


def _with_address(machine: str, where: str, **attrs: str) -> Domain:
    dom = minimal(machine)
    device = dom.element.find(f"devices/{where}")
    values = {"type": "pci", "domain": "0x0000", "bus": "0x00", "slot": "0x03",
              "function": "0x0", **attrs}
    etree.SubElement(device, "address", values)
    return dom


def test_duplicate_address_rejected_without_change() -> None:
    dom = _with_address("pc", "disk")
    etree.SubElement(dom.element.find("devices/interface"), "address", type="pci",
                     domain="0x0000", bus="0x00", slot="0x03", function="0x0")
    text = dom.to_xml()
    with pytest.raises(InvalidArgument) as info:
        assign_addresses(dom, "pc")
    assert "0000:00:03.0" in str(info.value) and "already used by <disk" in str(info.value)
    assert "\n" not in str(info.value)
    assert dom.to_xml() == text  # the root controller added on the way was rolled back


@pytest.mark.parametrize("attrs, message", [
    ({"bus": "0x05"}, "has no PCI controller"),
    ({"slot": "0x00"}, "slot 0x00 is not usable on a pci-root bus"),
    ({"slot": "0x01", "function": "0x1"}, "PIIX3 IDE"),
    ({"slot": "0x20"}, "out of range"),
    ({"slot": "zz"}, "invalid PCI slot"),
    ({"domain": "0x0001"}, "only domain 0"),
])
def test_bad_addresses_rejected(attrs: dict[str, str], message: str) -> None:
    dom = _with_address("pc", "interface", **attrs)
    with pytest.raises(InvalidArgument, match=message):
        assign_addresses(dom, "pc")


def test_builtin_controller_elsewhere_rejected() -> None:
    dom = minimal("q35")
    etree.SubElement(dom.find("devices"), "controller", type="sata", index="0")
    assign_addresses(dom, "q35")
    sata = dom.element.find("devices/controller[@type='sata']")
    assert sata.find("address").get("slot") == "0x1f"
    sata.find("address").set("slot", "0x05")
    with pytest.raises(InvalidArgument, match="built into the machine at 0000:00:1f.2"):
        assign_addresses(dom, "q35")


def test_wrong_root_controller_rejected() -> None:
    dom = minimal("q35")
    etree.SubElement(dom.find("devices"), "controller", type="pci", index="0", model="pci-root")
    with pytest.raises(InvalidArgument, match="must be 'pcie-root'"):
        assign_addresses(dom, "q35")


def test_endpoint_on_root_port_slot_1_rejected() -> None:
    dom = minimal("q35")
    assign_addresses(dom, "q35")
    dom.find("devices/disk/address").set("slot", "0x01")
    with pytest.raises(InvalidArgument, match="not usable on a pcie-root-port bus"):
        assign_addresses(dom, "q35")


def test_other_machine_types() -> None:
    with pytest.raises(Unsupported, match="i440fx and q35 machines only"):
        assign_addresses(minimal("microvm"), "microvm")
    dom = Domain.from_xml("<domain><name>n</name><devices><serial type='pty'/></devices>"
                          "</domain>")
    assign_addresses(dom, "isapc")  # nothing PCI: nothing to do
    assert dom.find("devices/serial/address") is None


def test_full_bus_reported() -> None:
    dom = minimal("pc")
    for n in range(40):
        new_interface(dom, f"52:54:00:00:01:{n:02x}")
    with pytest.raises(OperationFailed, match="no free PCI slot"):
        assign_addresses(dom, "pc")
    assert all(d.find("address") is None for d in dom.find("devices"))


def test_default_usb_controller_is_the_piix3s() -> None:
    dom = minimal("pc")
    etree.SubElement(dom.find("devices"), "controller", type="usb", index="0")
    assign_addresses(dom, "pc")
    assert addresses(dom)["controller[0]#0"] == "00:01.2"
