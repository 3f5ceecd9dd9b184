"""Device aliases (QEMU ids) in libvirt's naming, recorded in the live XML.

libvirt names every device of a running domain (``<alias name='virtio-disk0'/>``)
and passes that name to QEMU as the device id; statistics, hot-unplug and
``DEVICE_DELETED`` events are matched through it. Aliases are assigned at start
(and for a hot-plugged device) and never reused while the domain runs.
"""

from __future__ import annotations

from lxml import etree

from hvmon.core.xml.domain import Domain as DomainXML

_PREFIX = {"interface": "net", "memballoon": "balloon", "serial": "serial",
           "console": "console", "video": "video", "rng": "rng", "input": "input",
           "sound": "sound", "watchdog": "watchdog", "channel": "channel",
           "redirdev": "redir", "hostdev": "hostdev", "tpm": "tpm", "filesystem": "fs",
           "smartcard": "smartcard", "panic": "panic", "shmem": "shmem", "vsock": "vsock"}


def alias_of(device: etree._Element) -> str:
    """The device's ``<alias name>``, "" when it has none."""
    alias = device.find("alias")
    return alias.get("name", "") if alias is not None else ""


def disk_alias(disk: etree._Element) -> str:
    """``virtio-disk0`` (vda), ``sata0-0-1``, ``ide0-1-0``, ``scsi0-0-0-2`` ..."""
    target = disk.find("target")
    dev = target.get("dev", "") if target is not None else ""
    bus = target.get("bus", "virtio") if target is not None else "virtio"
    index = _disk_index(dev)
    if bus == "virtio":
        return f"virtio-disk{index}"
    if bus == "ide":
        return f"ide0-{index // 2}-{index % 2}"
    if bus == "sata":
        return f"sata0-0-{index}"
    if bus == "scsi":
        return f"scsi0-0-0-{index}"
    if bus == "fdc":
        return f"fdc0-0-{index}"
    return f"{bus}-disk{index}"


def _disk_index(dev: str) -> int:
    """``vda`` -> 0, ``sdb`` -> 1, ``hdaa`` -> 26 (libvirt's virDiskNameToIndex)."""
    letters = dev.lstrip("hsvx").removeprefix("d") if dev[:2] != "fd" else dev[2:]
    index = 0
    for char in letters:
        if not char.isalpha():
            break
        index = index * 26 + (ord(char) - ord("a") + 1)
    return max(index - 1, 0)


def assign_aliases(live: DomainXML) -> None:
    """Give every device without an alias one; existing aliases are kept."""
    devices = live.find("devices")
    if devices is None:
        return
    used = {alias_of(d) for d in devices if isinstance(d.tag, str)} - {""}
    counters: dict[str, int] = {}
    for device in devices:
        if not isinstance(device.tag, str) or device.tag == "emulator" or alias_of(device):
            continue
        name = _new_alias(device, counters, used)
        if name:
            used.add(name)
            etree.SubElement(device, "alias").set("name", name)


def _new_alias(device: etree._Element, counters: dict[str, int], used: set[str]) -> str:
    if device.tag == "disk":
        name = disk_alias(device)
        return name if name not in used else ""
    if device.tag == "controller":
        kind, index = device.get("type", ""), device.get("index", "0")
        return {"pci": f"pci.{index}", "usb": "usb" if index == "0" else f"usb{index}",
                "virtio-serial": f"virtio-serial{index}", "scsi": f"scsi{index}",
                "ide": "ide", "sata": f"ide{index}" if index != "0" else "ide"}.get(kind, "")
    prefix = _PREFIX.get(device.tag, "")
    if not prefix:
        return ""
    n = counters.get(prefix, 0)
    while f"{prefix}{n}" in used:
        n += 1
    counters[prefix] = n + 1
    return f"{prefix}{n}"
