"""``<domain>`` documents (libvirt's domain XML format)."""

from __future__ import annotations

from lxml import etree

from hvmon.core.xml.base import (
    XmlChild,
    XmlChildren,
    XmlObject,
    XmlProperty,
    read_size,
    to_int,
    write_size,
)


class DiskSource(XmlObject):
    ROOT = "source"
    file = XmlProperty[str]("@file")
    dev = XmlProperty[str]("@dev")
    dir = XmlProperty[str]("@dir")
    protocol = XmlProperty[str]("@protocol")
    name = XmlProperty[str]("@name")
    pool = XmlProperty[str]("@pool")
    volume = XmlProperty[str]("@volume")


class Disk(XmlObject):
    ROOT = "disk"
    type = XmlProperty[str]("@type", default="file")
    device = XmlProperty[str]("@device", default="disk")
    driver_name = XmlProperty[str]("driver/@name")
    driver_type = XmlProperty[str]("driver/@type")
    source = XmlChild(DiskSource, "source")
    target_dev = XmlProperty[str]("target/@dev")
    target_bus = XmlProperty[str]("target/@bus")

    @property
    def readonly(self) -> bool:
        return self.find("readonly") is not None

    @property
    def source_path(self) -> str:
        """File, device, directory or ``protocol://name`` the disk reads from."""
        src = self.source
        if src is None:
            return ""
        if src.protocol:
            return f"{src.protocol}://{src.name or ''}"
        if src.pool:
            return f"{src.pool}/{src.volume or ''}"
        return src.file or src.dev or src.dir or ""


class InterfaceSource(XmlObject):
    ROOT = "source"
    network = XmlProperty[str]("@network")
    bridge = XmlProperty[str]("@bridge")
    dev = XmlProperty[str]("@dev")


class Interface(XmlObject):
    ROOT = "interface"
    type = XmlProperty[str]("@type")
    mac = XmlProperty[str]("mac/@address")
    source = XmlChild(InterfaceSource, "source")
    target_dev = XmlProperty[str]("target/@dev")
    model = XmlProperty[str]("model/@type")
    filterref = XmlProperty[str]("filterref/@filter")


class SecLabel(XmlObject):
    """``<seclabel>``: a security driver's label for the domain (libvirt's format).

    hvmon's QEMU driver reads ``model='dac'`` (``<label>+UID:+GID</label>``); labels
    of other models are kept as written.
    """

    ROOT = "seclabel"
    type = XmlProperty[str]("@type", default="dynamic")
    model = XmlProperty[str]("@model")
    relabel = XmlProperty[str]("@relabel")
    label = XmlProperty[str]("label")
    imagelabel = XmlProperty[str]("imagelabel")

    @property
    def relabels(self) -> bool:
        """Whether resources are relabelled (``relabel``; default yes unless type='none')."""
        default = "no" if self.type == "none" else "yes"
        return (self.relabel or default) == "yes"


class Domain(XmlObject):
    """A domain definition."""

    ROOT = "domain"
    type = XmlProperty[str]("@type")
    id = XmlProperty[int]("@id", read=to_int)
    name = XmlProperty[str]("name")
    uuid = XmlProperty[str]("uuid")
    title = XmlProperty[str]("title")
    description = XmlProperty[str]("description")
    vcpus = XmlProperty[int]("vcpu", read=to_int, default=1)
    vcpus_current = XmlProperty[int]("vcpu/@current", read=to_int)
    os_type = XmlProperty[str]("os/type", default="hvm")
    arch = XmlProperty[str]("os/type/@arch")
    machine = XmlProperty[str]("os/type/@machine")
    emulator = XmlProperty[str]("devices/emulator")
    on_poweroff = XmlProperty[str]("on_poweroff")
    on_reboot = XmlProperty[str]("on_reboot")
    on_crash = XmlProperty[str]("on_crash")
    disks = XmlChildren(Disk, "devices/disk")
    interfaces = XmlChildren(Interface, "devices/interface")
    seclabels = XmlChildren(SecLabel, "seclabel")

    @property
    def memory_kib(self) -> int:
        """Maximum memory (``<memory>``) in KiB."""
        return read_size(self.find("memory"), "KiB", "KiB") or 0

    @memory_kib.setter
    def memory_kib(self, value: int) -> None:
        write_size(self.ensure("memory"), value, "KiB")

    @property
    def current_memory_kib(self) -> int:
        """Current memory (``<currentMemory>``, defaults to ``<memory>``) in KiB."""
        current = read_size(self.find("currentMemory"), "KiB", "KiB")
        return current if current is not None else self.memory_kib

    @current_memory_kib.setter
    def current_memory_kib(self, value: int) -> None:
        element = self.find("currentMemory")
        if element is None:
            element = etree.Element("currentMemory")
            memory = self.find("memory")
            if memory is not None:
                memory.addnext(element)
            else:
                self.element.append(element)
        write_size(element, value, "KiB")

    @property
    def active_vcpus(self) -> int:
        """vCPUs online at boot (``vcpu/@current`` or ``<vcpu>``)."""
        return self.vcpus_current or self.vcpus
