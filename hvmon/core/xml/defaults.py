"""Values filled in when an object is defined, as libvirt does on define.

Every function only *adds*: nothing the user wrote is changed, dropped or
reordered. New elements go where libvirt would write them, with the
surrounding indentation copied. Given a seeded :class:`random.Random` the
result is deterministic (the golden tests rely on it); without one, UUIDs and
MACs come from the system's random source.
"""

from __future__ import annotations

import random
import uuid as uuidlib
from collections.abc import Container, Iterable

from lxml import etree

from hvmon.core.xml.domain import Domain
from hvmon.core.xml.network import Network
from hvmon.core.xml.patterns import normalise_mac
from hvmon.core.xml.pool import Pool
from hvmon.core.xml.secret import Secret
from hvmon.core.xml.volume import Volume

MAC_PREFIX = "52:54:00"

#: disk bus -> device-name prefix
DISK_PREFIX = {"virtio": "vd", "scsi": "sd", "sata": "sd", "usb": "sd", "ide": "hd",
               "fdc": "fd", "xen": "xvd", "sd": "sd"}
#: disk device -> bus used when neither bus nor dev is given
DEVICE_BUS = {"disk": "virtio", "lun": "scsi", "cdrom": "sata", "floppy": "fdc"}
#: forward modes (None = isolated) for which libvirt creates the bridge itself
_OWN_BRIDGE_MODES = {None, "nat", "route", "open"}


def _rng(rng: random.Random | None) -> random.Random:
    return rng if rng is not None else random.SystemRandom()


def new_uuid(rng: random.Random | None = None) -> str:
    """A random (version 4) UUID drawn from ``rng``."""
    return str(uuidlib.UUID(int=_rng(rng).getrandbits(128), version=4))


def new_mac(rng: random.Random | None = None, used: Iterable[str | None] = ()) -> str:
    """A ``52:54:00:xx:xx:xx`` address not in ``used`` (compared case-insensitively)."""
    return _pick_mac(_rng(rng), {normalise_mac(m) for m in used if m})


def _pick_mac(source: random.Random, *taken: Container[str]) -> str:
    """A random ``52:54:00`` address in none of ``taken`` (lower-case sets)."""
    for _ in range(1 << 16):
        tail = source.getrandbits(24)
        mac = f"{MAC_PREFIX}:{tail >> 16:02x}:{(tail >> 8) & 0xFF:02x}:{tail & 0xFF:02x}"
        if not any(mac in group for group in taken):
            return mac
    raise RuntimeError("no free MAC address found")  # 16M addresses: not reachable in practice


def disk_name(prefix: str, index: int) -> str:
    """libvirt's disk naming: 0 -> ``vda``, 25 -> ``vdz``, 26 -> ``vdaa``."""
    letters = ""
    index += 1
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return prefix + letters


def _place(parent: etree._Element, new: etree._Element, after: Iterable[str]) -> None:
    """Insert ``new`` after the last child named in ``after`` (else first), keeping indents."""
    names = set(after)
    children = [c for c in parent if isinstance(c.tag, str)]
    anchor = next((c for c in reversed(children) if c.tag in names), None)
    indent = parent.text if parent.text is not None and not parent.text.strip() else None
    if anchor is None:
        parent.insert(0, new)
        if len(parent) > 1:
            new.tail = indent
        return
    was_last = anchor.getnext() is None
    anchor.addnext(new)
    new.tail = anchor.tail
    if was_last:
        anchor.tail = indent


def _element(tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.Element(tag, attrs)
    element.text = text
    return element


def _ensure_uuid(obj: Domain | Network | Pool, rng: random.Random | None) -> None:
    if obj.find("uuid") is None:
        _place(obj.element, _element("uuid", new_uuid(rng)), ("name",))


# --- domains ----------------------------------------------------------------


def fill_domain(dom: Domain, rng: random.Random | None = None,
                used_macs: set[str] | None = None) -> None:
    """Fill a domain's UUID, interface MACs, disk targets, currentMemory, OS type.

    MACs are unique against ``used_macs`` and the domain's own. ``used_macs``
    holds lower-case addresses; when given it is updated with the domain's
    addresses (its own and those assigned here), so a loader passing one set
    for thousands of domains does no per-domain copy of it.
    """
    _ensure_uuid(dom, rng)
    _fill_memory(dom)
    _fill_os(dom)
    _fill_disk_targets(dom)
    _fill_macs(dom, rng, used_macs)


def _fill_memory(dom: Domain) -> None:
    memory = dom.find("memory")
    if memory is None or dom.find("currentMemory") is not None:
        return
    current = _element("currentMemory", memory.text)
    for attr in ("unit", "units"):
        if memory.get(attr) is not None:
            current.set(attr, memory.get(attr))
    _place(dom.element, current, ("memory",))


def _fill_os(dom: Domain) -> None:
    os_el = dom.find("os")
    if os_el is None:
        os_el = _element("os")
        os_el.append(_element("type", "hvm"))
        _place(dom.element, os_el, ("name", "uuid", "title", "description", "metadata",
                                    "maxMemory", "memory", "currentMemory", "blkiotune",
                                    "memtune", "memoryBacking", "vcpu", "vcpus", "iothreads"))
    elif os_el.find("type") is None:
        _place(os_el, _element("type", "hvm"), ())


def _fill_disk_targets(dom: Domain) -> None:
    disks = dom.disks
    used = {d.target_dev for d in disks if d.target_dev}
    for disk in disks:
        if disk.target_dev:
            continue
        target = disk.find("target")
        if target is None:
            target = _element("target")
            _place(disk.element, target, ("driver", "source", "backingStore"))
        bus = target.get("bus") or DEVICE_BUS.get(disk.device, "virtio")
        prefix = DISK_PREFIX.get(bus, "sd")
        index = 0
        while disk_name(prefix, index) in used:
            index += 1
        name = disk_name(prefix, index)
        used.add(name)
        target.set("dev", name)
        if target.get("bus") is None:
            target.set("bus", bus)


def _fill_macs(dom: Domain, rng: random.Random | None, used_macs: set[str] | None) -> None:
    taken = used_macs if used_macs is not None else set()
    taken.update(normalise_mac(i.mac) for i in dom.interfaces if i.mac)
    source = _rng(rng)
    for iface in dom.interfaces:
        if iface.mac:
            continue
        mac = _pick_mac(source, taken)
        taken.add(mac)
        element = iface.find("mac")
        if element is None:
            element = _element("mac")
            _place(iface.element, element, ())
        element.set("address", mac)


# --- networks, pools, volumes, secrets ---------------------------------------


def fill_network(net: Network, rng: random.Random | None = None,
                 used_bridges: set[str] | None = None,
                 used_macs: set[str] | None = None) -> None:
    """Fill a network's UUID and, for networks hvmon bridges itself, bridge name and MAC.

    The bridge is the lowest ``virbrN`` not in ``used_bridges`` (which is
    updated); networks forwarding to an existing bridge or device get neither.
    """
    _ensure_uuid(net, rng)
    if net.forward_mode not in _OWN_BRIDGE_MODES:
        return
    if not net.bridge:
        taken = used_bridges if used_bridges is not None else set()
        index = 0
        while f"virbr{index}" in taken:
            index += 1
        name = f"virbr{index}"
        taken.add(name)
        bridge = net.find("bridge")
        if bridge is None:
            bridge = _element("bridge")
            _place(net.element, bridge, ("name", "uuid", "title", "description", "metadata",
                                         "forward"))
        bridge.set("name", name)
    if net.find("mac") is None:
        mac = new_mac(rng, used_macs or ())
        if used_macs is not None:
            used_macs.add(mac)
        _place(net.element, _element("mac", address=mac), ("bridge",))


def fill_pool(pool: Pool, rng: random.Random | None = None) -> None:
    """Fill a pool's UUID."""
    _ensure_uuid(pool, rng)


def fill_secret(secret: Secret, rng: random.Random | None = None) -> None:
    """Fill a secret's UUID."""
    if secret.find("uuid") is None:
        _place(secret.element, _element("uuid", new_uuid(rng)), ())


def fill_volume(vol: Volume, pool_target: str | None = None) -> None:
    """Fill a volume's allocation (= capacity), target path (in ``pool_target``) and key."""
    capacity = vol.find("capacity")
    if capacity is not None and vol.find("allocation") is None:
        allocation = _element("allocation", capacity.text)
        for attr in ("unit", "units"):
            if capacity.get(attr) is not None:
                allocation.set(attr, capacity.get(attr))
        _place(vol.element, allocation, ("capacity",))
    if not vol.target_path and pool_target and vol.name:
        target = vol.find("target")
        if target is None:
            target = _element("target")
            _place(vol.element, target, ("name", "key", "source", "capacity", "allocation",
                                         "physical"))
        _place(target, _element("path", f"{pool_target.rstrip('/')}/{vol.name}"), ())
    if vol.find("key") is None and vol.target_path:
        _place(vol.element, _element("key", vol.target_path), ("name",))
