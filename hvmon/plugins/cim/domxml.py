"""libvirt XML from CIM settings: a domain from a VSSD and RASDs, devices, volumes."""

from __future__ import annotations

from lxml import etree

from hvmon.core.xml.parser import to_string
from hvmon.plugins.cim.embedded import Settings
from hvmon.plugins.cim.errors import CIMError, Status

DEFAULT_MEMORY_KIB = 524288


def _sub(parent: etree._Element, tag: str, text: str | None = None,
         **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, {k: v for k, v in attrs.items() if v})
    if text is not None:
        el.text = text
    return el


def kind(rasd: Settings) -> str:
    """``proc``, ``mem``, ``disk`` or ``net`` from the class (or ResourceType)."""
    for suffix, name in (("ProcResourceAllocationSettingData", "proc"),
                         ("MemResourceAllocationSettingData", "mem"),
                         ("DiskResourceAllocationSettingData", "disk"),
                         ("NetResourceAllocationSettingData", "net")):
        if rasd.is_class(suffix):
            return name
    rtype = rasd.number("ResourceType", "uint16")
    found = {3: "proc", 4: "mem", 17: "disk", 16: "disk", 14: "disk", 10: "net"}.get(rtype or 0)
    if found is None:
        raise CIMError(Status.INVALID_PARAMETER, f"{rasd.where}: unsupported resource "
                                                 f"{rasd.classname} (ResourceType {rtype})")
    return found


def disk_element(rasd: Settings) -> etree._Element:
    target = rasd.text("VirtualDevice")
    if not target:
        raise CIMError(Status.INVALID_PARAMETER, f"{rasd.where}: VirtualDevice (the target, "
                                                 "e.g. vdb) is required")
    path = rasd.text("Address") or ""
    emulated = rasd.number("EmulatedType", "uint16") or 0
    device = {1: "cdrom", 2: "floppy"}.get(emulated, "disk")
    block = path.startswith("/dev/")
    disk = etree.Element("disk", type="block" if block else "file", device=device)
    driver_type = rasd.text("DriverType")
    if driver_type:
        _sub(disk, "driver", name=rasd.text("DriverName") or "qemu", type=driver_type)
    if path:
        _sub(disk, "source", **{"dev" if block else "file": path})
    bus = rasd.text("BusType") or ("ide" if device != "disk" and not target.startswith("vd")
                                   else "virtio" if target.startswith("vd") else "")
    _sub(disk, "target", dev=target, bus=bus)
    if device == "cdrom":
        _sub(disk, "readonly")
    return disk


def net_element(rasd: Settings) -> etree._Element:
    net_type = rasd.text("NetworkType") or "network"
    if net_type not in ("network", "bridge", "user"):
        raise CIMError(Status.INVALID_PARAMETER, f"{rasd.where}: NetworkType must be network, "
                                                 f"bridge or user, got {net_type!r:.30}")
    source = rasd.text("NetworkName") or ""
    pool = rasd.text("PoolID") or ""
    if not source and pool.startswith("NetworkPool/"):
        source = pool.split("/", 1)[1]
    nic = etree.Element("interface", type=net_type)
    mac = rasd.text("Address")
    if mac:
        _sub(nic, "mac", address=mac.lower())
    if net_type != "user":
        if not source:
            raise CIMError(Status.INVALID_PARAMETER, f"{rasd.where}: NetworkName or PoolID "
                                                     "(NetworkPool/<name>) is required")
        _sub(nic, "source", **{net_type: source})
    model = rasd.text("ResourceSubType")
    if model:
        _sub(nic, "model", type=model)
    return nic


def device_xml(rasd: Settings) -> str:
    """Device XML for AddResourceSettings (disks and interfaces)."""
    what = kind(rasd)
    if what == "disk":
        return to_string(disk_element(rasd))
    if what == "net":
        return to_string(net_element(rasd))
    raise CIMError(Status.INVALID_PARAMETER, f"{rasd.where}: {what} settings are changed with "
                                             "ModifyResourceSettings, not added")


def domain_xml(vssd: Settings, rasds: list[Settings], domain_type: str) -> str:
    """A ``<domain>`` document from DefineSystem's settings."""
    name = vssd.text("VirtualSystemIdentifier") or vssd.text("ElementName")
    if not name:
        raise CIMError(Status.INVALID_PARAMETER, f"{vssd.where}: VirtualSystemIdentifier (the "
                                                 "domain name) is required")
    root = etree.Element("domain", type=domain_type)
    _sub(root, "name", name)
    uuid = vssd.text("UUID")
    if uuid:
        _sub(root, "uuid", uuid)
    memory, current, vcpus, max_vcpus = DEFAULT_MEMORY_KIB, None, 1, None
    devices = etree.Element("devices")
    for rasd in rasds:
        what = kind(rasd)
        if what == "mem":
            current = rasd.number("VirtualQuantity") or DEFAULT_MEMORY_KIB
            memory = rasd.number("Limit") or current
        elif what == "proc":
            vcpus = rasd.number("VirtualQuantity") or 1
            max_vcpus = rasd.number("Limit")
        elif what == "disk":
            devices.append(disk_element(rasd))
        else:
            devices.append(net_element(rasd))
    if current is not None and current > memory:
        raise CIMError(Status.INVALID_PARAMETER, "memory VirtualQuantity exceeds its Limit")
    _sub(root, "memory", str(memory), unit="KiB")
    _sub(root, "currentMemory", str(current if current is not None else memory), unit="KiB")
    if max_vcpus and max_vcpus > vcpus:
        _sub(root, "vcpu", str(max_vcpus), current=str(vcpus))
    else:
        _sub(root, "vcpu", str(vcpus))
    os_el = _sub(root, "os")
    _sub(os_el, "type", vssd.text("OSType") or "hvm", arch=vssd.text("Arch") or "",
         machine=vssd.text("Machine") or "")
    root.append(devices)
    return to_string(root)


def volume_xml(settings: Settings) -> str:
    """A ``<volume>`` document for CreateResourceInPool."""
    name = settings.text("VolumeName") or settings.text("ElementName")
    if not name:
        raise CIMError(Status.INVALID_PARAMETER, f"{settings.where}: VolumeName is required")
    capacity = settings.number("Capacity")
    if capacity is None:
        raise CIMError(Status.INVALID_PARAMETER, f"{settings.where}: Capacity (bytes) is "
                                                 "required")
    root = etree.Element("volume")
    _sub(root, "name", name)
    _sub(root, "capacity", str(capacity), unit="bytes")
    allocation = settings.number("AllocationQuantity")
    if allocation is not None:
        _sub(root, "allocation", str(allocation), unit="bytes")
    fmt = settings.text("Format")
    if fmt:
        target = _sub(root, "target")
        _sub(target, "format", type=fmt)
    return to_string(root)
