"""Stable PCI addresses, assigned once at define time and stored in the XML.

A guest sees its devices at fixed PCI slots; if a restart, an upgrade or a
hot-plug moved a NIC to another slot the guest's network names would change.
So, as libvirt does, every PCI device gets an ``<address type='pci'>`` when
the domain is defined, and an address once written is never changed:
:func:`assign_addresses` only fills devices that have none.

i440fx (``pc``): slot 0 is the host bridge, slot 1 the PIIX3 (ISA 1.0, IDE
1.1, USB 1.2, ACPI 1.3), the primary video card takes slot 2, everything else
the next free slot on bus 0 in libvirt's order (NICs, sound, controllers,
virtio disks, host devices, balloon, RNG, watchdog, other video, inputs).

q35: 00:01.0 is the primary video card, 00:1f.2 the built-in SATA
controller, 00:1b.0 an ICH9 sound card; every other endpoint sits alone
behind a ``pcie-root-port`` (ports packed eight per slot on pcie.0 from slot
2), because PCIe hot-plug works per port. Define time also keeps
``spare_ports`` empty ports so that devices can be hot-plugged later (a root
port itself cannot be hot-plugged).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from hvmon.core.drivers.qemu.machine import machine_family
from hvmon.core.errors import InvalidArgument, OperationFailed, Unsupported
from hvmon.core.xml.domain import Domain

#: empty root ports a q35 domain keeps for hot-plug (libvirt's virt-install keeps some too)
DEFAULT_SPARE_PORTS = 4
#: root-port models whose one slot (0) takes one endpoint
ROOT_PORT = "pcie-root-port"
#: bus models with 31 usable slots (1..31)
_BRIDGES = ("pci-bridge", "pcie-to-pci-bridge")


@dataclass(frozen=True, order=True)
class PciAddress:
    """A PCI address ``domain:bus:slot.function``."""

    domain: int
    bus: int
    slot: int
    function: int

    def __str__(self) -> str:
        return f"{self.domain:04x}:{self.bus:02x}:{self.slot:02x}.{self.function:x}"

    @property
    def slot_key(self) -> tuple[int, int, int]:
        return (self.domain, self.bus, self.slot)

    def write(self, device: etree._Element, multifunction: bool = False) -> etree._Element:
        """Add ``<address type='pci' ...>`` (libvirt's formatting) as the last child."""
        attrs = {"type": "pci", "domain": f"0x{self.domain:04x}", "bus": f"0x{self.bus:02x}",
                 "slot": f"0x{self.slot:02x}", "function": f"0x{self.function:x}"}
        if multifunction:
            attrs["multifunction"] = "on"
        element = etree.Element("address", attrs)
        append_indented(device, element)
        return element


def _number(text: str | None, what: str, device: str) -> int:
    raw = (text or "0").strip().lower()
    try:
        return int(raw, 16) if raw.startswith("0x") else int(raw)
    except ValueError:
        raise InvalidArgument(f"invalid PCI {what} '{text}' in the address of {device}") from None


def describe(device: etree._Element) -> str:
    """``<interface type='user'>``-style label used in error messages."""
    attrs = " ".join(f"{k}='{device.get(k)}'" for k in ("type", "model", "index", "device")
                     if device.get(k) is not None)
    target = device.find("target")
    if device.tag == "disk" and target is not None and target.get("dev"):
        attrs += f" dev='{target.get('dev')}'"
    return f"<{device.tag}{' ' + attrs if attrs else ''}>"


def pci_address_of(device: etree._Element) -> PciAddress | None:
    """The ``<address type='pci'>`` of ``device``, or None; InvalidArgument when malformed."""
    element = device.find("address")
    if element is None or element.get("type") != "pci":
        return None
    label = describe(device)
    address = PciAddress(
        _number(element.get("domain"), "domain", label), _number(element.get("bus"), "bus", label),
        _number(element.get("slot"), "slot", label),
        _number(element.get("function"), "function", label),
    )
    if address.domain != 0:
        raise InvalidArgument(f"PCI domain {address.domain:#x} of {label} is not supported "
                              "(only domain 0)")
    if not 0 <= address.function <= 7 or not 0 <= address.slot <= 31:
        raise InvalidArgument(f"PCI address {address} of {label} is out of range "
                              "(slot 0-31, function 0-7)")
    return address


def append_indented(parent: etree._Element, child: etree._Element) -> None:
    """Append ``child`` to ``parent`` copying the document's indentation, if any."""
    kids = [c for c in parent if isinstance(c.tag, str)]
    if kids:
        last = kids[-1]
        child.tail = last.tail
        last.tail = parent.text
    else:
        outer = _indent_before(parent)
        if outer is not None:
            parent.text = outer + "  "
            child.tail = outer
    parent.append(child)


def _indent_before(element: etree._Element) -> str | None:
    """The whitespace (newline + indent) written before ``element``."""
    prev = element.getprevious()
    text = prev.tail if prev is not None else (
        element.getparent().text if element.getparent() is not None else None)
    if text is not None and not text.strip() and "\n" in text:
        return text
    return None


# --- which devices are PCI devices ------------------------------------------------

_SOUND_PCI = {"ich6", "ich7", "ich9", "ac97", "es1370"}
_CONTROLLERS_NOT_PCI = {"fdc", "ccid", "xenbus", "isa"}
_WATCHDOG_PCI = {"i6300esb"}


def primary_video(devices: etree._Element) -> etree._Element | None:
    """The primary ``<video>``: the one with ``primary='yes'``, else the first."""
    videos = [v for v in devices.findall("video") if _video_model(v) != "none"]
    for video in videos:
        model = video.find("model")
        if model is not None and model.get("primary") == "yes":
            return video
    return videos[0] if videos else None


def _video_model(video: etree._Element) -> str:
    model = video.find("model")
    return (model.get("type") if model is not None else None) or "vga"


def needs_pci(device: etree._Element) -> bool:
    """True when ``device`` (a child of ``<devices>``) is a PCI device on x86."""
    tag = device.tag
    model = device.get("model") or ""
    if tag == "disk":
        target = device.find("target")
        return target is not None and target.get("bus") == "virtio"
    if tag == "interface":
        return device.get("type") != "hostdev" or device.find("address") is not None
    if tag == "controller":
        ctype = device.get("type") or ""
        if ctype == "pci":
            return model not in ("pci-root", "pcie-root")
        if ctype in _CONTROLLERS_NOT_PCI or model == "none":
            return False
        return ctype in ("usb", "scsi", "virtio-serial", "sata", "ide")
    if tag == "sound":
        return model in _SOUND_PCI
    if tag == "memballoon":
        return model.startswith("virtio")
    if tag in ("rng", "vsock", "filesystem"):
        return True
    if tag == "watchdog":
        return model in _WATCHDOG_PCI
    if tag == "video":
        return _video_model(device) != "none"
    if tag == "hostdev":
        return device.get("type") == "pci"
    if tag == "input":
        return device.get("bus") == "virtio"
    return tag == "shmem"


#: libvirt's order of assignment (qemuDomainAssignDevicePCISlots)
_ORDER = ("controller-pci", "filesystem", "interface", "sound", "controller", "disk",
          "hostdev", "memballoon", "rng", "watchdog", "video", "shmem", "input", "vsock")


def _category(device: etree._Element) -> str:
    if device.tag == "controller" and device.get("type") == "pci":
        return "controller-pci"
    return device.tag


# --- the assignment ----------------------------------------------------------------


@dataclass
class _Bus:
    index: int
    model: str
    element: etree._Element | None

    @property
    def slots(self) -> range:
        if self.model == ROOT_PORT:
            return range(0, 1)
        return range(1, 32)  # slot 0 of a root bus is the host bridge; of a bridge, unused


class _Plan:
    """The domain's buses and used addresses while assigning."""

    def __init__(self, dom: Domain, family: str) -> None:
        self.dom = dom
        self.family = family
        self.devices = dom.ensure("devices")
        self.buses: dict[int, _Bus] = {}
        self.used: dict[PciAddress, etree._Element | str] = {}

    # buses --------------------------------------------------------------------

    def collect_buses(self) -> None:
        root_model = "pcie-root" if self.family == "q35" else "pci-root"
        for ctl in self.devices.findall("controller"):
            if ctl.get("type") != "pci":
                continue
            index = _number(ctl.get("index"), "controller index", describe(ctl))
            model = ctl.get("model") or ""
            if index in self.buses:
                raise InvalidArgument(f"two PCI controllers have index {index}")
            if index == 0 and model != root_model:
                raise InvalidArgument(f"PCI controller 0 of a {self.family} machine must be "
                                      f"'{root_model}', not '{model or 'unset'}'")
            if index != 0 and model in ("pci-root", "pcie-root"):
                raise InvalidArgument(f"PCI controller {index}: only index 0 can be '{model}'")
            self.buses[index] = _Bus(index, model, ctl)
        if 0 not in self.buses:
            element = etree.Element("controller", type="pci", index="0", model=root_model)
            insert_controller(self.devices, element)
            self.buses[0] = _Bus(0, root_model, element)

    # used addresses -------------------------------------------------------------

    def reserve_builtins(self) -> None:
        if self.family == "i440fx":
            for function, what in ((0, "the PIIX3 ISA bridge"), (1, "the PIIX3 IDE controller"),
                                   (3, "the PIIX3 ACPI controller")):
                self.used[PciAddress(0, 0, 1, function)] = what
        else:
            for function, what in ((0, "the ICH9 LPC bridge"), (3, "the ICH9 SMBus controller")):
                self.used[PciAddress(0, 0, 0x1F, function)] = what
        for function in range(8):
            self.used[PciAddress(0, 0, 0, function)] = "the host bridge"

    def builtin_for(self, device: etree._Element) -> PciAddress | None:
        """The fixed address QEMU gives a built-in device, or None."""
        kind, model = device.get("type"), device.get("model")
        index = device.get("index", "0")
        if device.tag != "controller" or index not in ("0", "0x0"):
            return None
        if self.family == "i440fx" and kind == "ide":
            return PciAddress(0, 0, 1, 1)
        if self.family == "i440fx" and kind == "usb" and (model or "piix3-uhci") == "piix3-uhci":
            return PciAddress(0, 0, 1, 2)
        if self.family == "q35" and kind == "sata":
            return PciAddress(0, 0, 0x1F, 2)
        return None

    def collect_used(self) -> None:
        for device in self.devices:
            if not isinstance(device.tag, str):
                continue
            address = pci_address_of(device)
            if address is None:
                continue
            label = describe(device)
            bus = self.buses.get(address.bus)
            if bus is None:
                raise InvalidArgument(f"PCI address {address} of {label} is on bus "
                                      f"{address.bus:#04x}, which has no PCI controller")
            if address.slot not in bus.slots:
                raise InvalidArgument(f"PCI address {address} of {label}: slot "
                                      f"{address.slot:#04x} is not usable on a {bus.model} bus")
            builtin = self.builtin_for(device)
            if builtin is not None and builtin != address:
                raise InvalidArgument(f"{label} is built into the machine at {builtin}, "
                                      f"not {address}")
            other = self.used.get(address)
            if builtin is not None and isinstance(other, str):
                other = None  # the built-in device itself, at its fixed place
            if other is not None:
                name = other if isinstance(other, str) else describe(other)
                raise InvalidArgument(f"PCI address {address} of {label} is already used by "
                                      f"{name}")
            self.used[address] = device

    def slot_users(self, key: tuple[int, int, int]) -> list[etree._Element | str]:
        return [who for addr, who in self.used.items() if addr.slot_key == key]

    def take(self, device: etree._Element, address: PciAddress,
             multifunction: bool = False) -> None:
        self.used[address] = device
        address.write(device, multifunction)

    # finding free places --------------------------------------------------------

    def free_slot(self, buses: list[_Bus]) -> PciAddress | None:
        """The first wholly unused slot (function 0) on ``buses``."""
        for bus in buses:
            for slot in bus.slots:
                if not self.slot_users((0, bus.index, slot)):
                    return PciAddress(0, bus.index, slot, 0)
        return None

    def endpoint_buses(self) -> list[_Bus]:
        """Buses an endpoint may be placed on (i440fx: root then bridges)."""
        if self.family == "q35":
            return [b for _, b in sorted(self.buses.items()) if b.model == ROOT_PORT]
        return [b for _, b in sorted(self.buses.items())
                if b.index == 0 or b.model in _BRIDGES]

    def free_ports(self) -> list[_Bus]:
        return [b for b in self.endpoint_buses() if not self.slot_users((0, b.index, 0))]

    def add_root_port(self) -> _Bus:
        """A new pcie-root-port on pcie.0 (functions of slots from 2, multifunction)."""
        address = self._port_address()
        if address is None:
            raise OperationFailed("no free slot on pcie.0 for another pcie-root-port")
        index = max(self.buses) + 1
        element = etree.Element("controller", type="pci", index=str(index), model=ROOT_PORT)
        insert_controller(self.devices, element)  # first: children copy its indentation
        append_indented(element, etree.Element("model", name=ROOT_PORT))
        append_indented(element, etree.Element(
            "target", chassis=str(index), port=f"0x{address.slot * 8 + address.function:x}"))
        self.take(element, address, multifunction=address.function == 0)
        bus = _Bus(index, ROOT_PORT, element)
        self.buses[index] = bus
        return bus

    def _port_address(self) -> PciAddress | None:
        for slot in range(2, 32):
            if slot == 0x1F:
                continue
            users = self.slot_users((0, 0, slot))
            if any(isinstance(u, str) or u.tag != "controller" or u.get("model") != ROOT_PORT
                   for u in users):
                continue
            taken = {a.function for a, who in self.used.items() if a.slot_key == (0, 0, slot)}
            for function in range(8):
                if function not in taken:
                    return PciAddress(0, 0, slot, function)
        return None


def insert_controller(devices: etree._Element, element: etree._Element) -> None:
    """Insert a controller after the last ``<controller>`` (else append), keeping indents."""
    controllers = devices.findall("controller")
    if not controllers:
        append_indented(devices, element)
        return
    anchor = controllers[-1]
    was_last = anchor.getnext() is None
    anchor.addnext(element)
    element.tail = anchor.tail
    if was_last and devices.text is not None and not devices.text.strip():
        anchor.tail = devices.text


def _iter_unaddressed(devices: etree._Element) -> Iterator[etree._Element]:
    """Devices needing an address, in libvirt's order (document order within a kind)."""
    pending = [d for d in devices if isinstance(d.tag, str) and needs_pci(d)
               and d.find("address") is None]
    rank = {name: i for i, name in enumerate(_ORDER)}
    yield from sorted(pending, key=lambda d: rank.get(_category(d), len(_ORDER)))


def assign_addresses(dom: Domain, machine: str, *, hotplug: bool = False,
                     spare_ports: int = DEFAULT_SPARE_PORTS) -> None:
    """Give every PCI device of ``dom`` without an address one, in place.

    Existing addresses are checked (bus exists, slot usable, no duplicates:
    :class:`InvalidArgument`) and never changed. ``hotplug=True`` is for a
    running domain after a new device was inserted: nothing but the new
    device's address is added (on q35 it needs a spare root port, else
    :class:`OperationFailed`). At define time (``hotplug=False``) q35 domains
    get root ports as needed plus ``spare_ports`` empty ones.
    """
    family = machine_family(machine)
    devices = dom.find("devices")
    if devices is None:
        if family == "other" or hotplug:
            return
        devices = dom.ensure("devices")
    backup = copy.deepcopy(devices)
    try:
        _assign(dom, devices, family, machine, hotplug, spare_ports)
    except BaseException:
        # never leave a half-assigned document behind
        backup.tail = devices.tail
        devices.getparent().replace(devices, backup)
        raise


def _assign(dom: Domain, devices: etree._Element, family: str, machine: str, hotplug: bool,
            spare_ports: int) -> None:
    plan = _Plan(dom, family)
    pending = list(_iter_unaddressed(devices))
    if family == "other":
        has_pci = any(pci_address_of(d) for d in devices if isinstance(d.tag, str))
        if pending or has_pci:
            raise Unsupported(f"PCI addresses can be assigned for i440fx and q35 machines "
                              f"only, not '{machine}'")
        return
    plan.collect_buses()
    plan.reserve_builtins()
    plan.collect_used()

    video = primary_video(devices)
    if video is not None and video.find("address") is None:
        fixed = PciAddress(0, 0, 1 if family == "q35" else 2, 0)
        if not plan.slot_users(fixed.slot_key):
            plan.take(video, fixed)
    for device in pending:
        if device.find("address") is not None:
            continue
        _assign_one(plan, device, hotplug)
    if family == "q35" and not hotplug:
        while len(plan.free_ports()) < spare_ports:
            plan.add_root_port()


def _assign_one(plan: _Plan, device: etree._Element, hotplug: bool) -> None:
    label = describe(device)
    builtin = plan.builtin_for(device)
    if builtin is not None:
        if not isinstance(plan.used.get(builtin, ""), str):
            raise InvalidArgument(f"PCI address {builtin} of built-in {label} is already used")
        plan.take(device, builtin)
        return
    if plan.family == "q35":
        if device.tag == "sound" and device.get("model") == "ich9":
            fixed = PciAddress(0, 0, 0x1B, 0)
            if not plan.slot_users(fixed.slot_key):
                plan.take(device, fixed)
                return
        if device.tag == "controller" and device.get("type") == "pci":
            _place_pci_controller(plan, device, hotplug)
            return
        ports = plan.free_ports()
        if not ports:
            if hotplug:
                raise OperationFailed(f"no free pcie-root-port to hot-plug {label} into; "
                                      "define the domain with more spare ports")
            ports = [plan.add_root_port()]
        plan.take(device, PciAddress(0, ports[0].index, 0, 0))
        return
    is_bus = device.tag == "controller" and device.get("type") == "pci"
    address = plan.free_slot([plan.buses[0]] if is_bus else plan.endpoint_buses())
    if address is None:
        raise OperationFailed(f"no free PCI slot for {label} (bus 0 and its bridges are full)")
    plan.take(device, address)


def _place_pci_controller(plan: _Plan, device: etree._Element, hotplug: bool) -> None:
    """A user-given q35 PCI controller without address: root ports pack on pcie.0."""
    if hotplug:
        raise OperationFailed(f"{describe(device)} cannot be hot-plugged")
    if device.get("model") == ROOT_PORT:
        address = plan._port_address()
        if address is None:
            raise OperationFailed("no free slot on pcie.0 for another pcie-root-port")
        index = device.get("index", "0")
        if device.find("model") is None:
            append_indented(device, etree.Element("model", name=ROOT_PORT))
        if device.find("target") is None:
            append_indented(device, etree.Element(
                "target", chassis=index, port=f"0x{address.slot * 8 + address.function:x}"))
        plan.take(device, address, multifunction=address.function == 0)
        return
    address = plan.free_slot([plan.buses[0]])
    if address is None:
        raise OperationFailed(f"no free slot on pcie.0 for {describe(device)}")
    plan.take(device, address)


def bus_id(address: PciAddress, family: str) -> str:
    """QEMU's id of the bus an address is on: ``pci.0``/``pcie.0`` or libvirt's ``pci.N``."""
    if address.bus == 0:
        return "pcie.0" if family == "q35" else "pci.0"
    return f"pci.{address.bus}"


def device_address_args(device: etree._Element, family: str) -> str:
    """``bus=pci.0,addr=0x3`` (plus ``multifunction=on``) for ``-device``, or ""."""
    address = pci_address_of(device)
    if address is None:
        return ""
    text = f"bus={bus_id(address, family)},addr=0x{address.slot:x}"
    if address.function:
        text += f".0x{address.function:x}"
    element = device.find("address")
    if element is not None and element.get("multifunction") == "on":
        text += ",multifunction=on"
    return text
