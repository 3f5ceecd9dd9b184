"""Hot-plug and hot-unplug of disks and NICs on a running QEMU domain.

A new device is added to the live definition, gets a free PCI address (the
others never move) and an alias, then its backends (``blockdev-add`` /
``netdev_add``) and the device itself (``device_add``) are created; any
failure undoes what was done. Unplugging asks the guest (``device_del``) and
completes when QEMU reports ``DEVICE_DELETED``: the backends are removed and
the device leaves the live definition. A guest that does not release the
device within the timeout gets a clear error; the removal completes whenever
the event arrives.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable
from typing import Any

from lxml import etree

from hvmon.core.drivers.qemu.addresses import assign_addresses
from hvmon.core.drivers.qemu.aliases import alias_of, assign_aliases
from hvmon.core.drivers.qemu.caps import QemuCaps
from hvmon.core.drivers.qemu.cmdline import DeviceArgs, device_args_for_hotplug
from hvmon.core.drivers.qemu.state import QemuDomain
from hvmon.core.errors import HvmonError, InvalidArgument, OperationTimeout, Unsupported
from hvmon.core.xml import defaults
from hvmon.core.xml.domain import Domain as DomainXML
from hvmon.core.xml.parser import parse_xml

#: ``execute(dom, command, arguments)`` on the domain's monitor
Execute = Callable[[QemuDomain, str, dict[str, Any] | None], Any]

_NODE = re.compile(r"^libvirt-(\d+)-(?:storage|format)$")


def parse_device(xml: str) -> etree._Element:
    """A ``<disk>`` or ``<interface>`` element from ``xml`` (one-line errors)."""
    element = parse_xml(xml, what="device XML")
    if element.tag not in ("disk", "interface"):
        raise Unsupported(f"hot-plug of <{element.tag}> is not supported (disk, interface)")
    return element


def find_device(live: DomainXML, wanted: etree._Element) -> etree._Element | None:
    """The live device ``wanted`` names: by alias, disk target or NIC MAC."""
    devices = live.find("devices")
    if devices is None:
        return None
    alias = alias_of(wanted)
    for device in devices.iterfind(wanted.tag):
        if alias and alias_of(device) == alias:
            return device
        if wanted.tag == "disk":
            target, mine = wanted.find("target"), device.find("target")
            if target is not None and mine is not None and \
                    target.get("dev") and target.get("dev") == mine.get("dev"):
                return device
        else:
            mac, mine = wanted.find("mac"), device.find("mac")
            if mac is not None and mine is not None and \
                    (mac.get("address") or "").lower() == (mine.get("address") or "").lower():
                return device
    return None


class Hotplug:
    """Attach/detach on running domains; ``execute`` talks to the domain's monitor."""

    def __init__(self, execute: Execute, used_macs: set[str], timeout: float = 5.0) -> None:
        self._execute = execute
        self._macs = used_macs
        self.timeout = timeout
        self._deleted: dict[tuple[str, str], threading.Event] = {}
        self._pending: dict[tuple[str, str], Callable[[], None]] = {}

    # --- attach ---------------------------------------------------------------------
    def attach(self, dom: QemuDomain, element: etree._Element, caps: QemuCaps) -> None:
        """Plug ``element`` into the running ``dom`` (registry lock held)."""
        live = dom.live
        assert live is not None
        if find_device(live, element) is not None:
            raise InvalidArgument(f"domain '{dom.name}' already has this <{element.tag}>")
        devices = live.ensure("devices")
        devices.append(element)
        added: list[tuple[str, dict[str, Any]]] = []
        try:
            self._fill(live, element)
            assign_addresses(live, live.machine, hotplug=True)
            assign_aliases(live)
            args = device_args_for_hotplug(live, element, caps,
                                           node_index=self._next_node(dom))
            self._plug(dom, args, added)
        except BaseException:
            self._undo(dom, added)
            devices.remove(element)
            raise

    def _fill(self, live: DomainXML, element: etree._Element) -> None:
        """What a definition would get: a MAC for a NIC; a disk must name its target."""
        if element.tag == "interface":
            mac = element.find("mac")
            if mac is None:
                mac = etree.Element("mac")
                element.insert(0, mac)
            if not mac.get("address"):
                mac.set("address", defaults.new_mac(used=self._macs))
            self._macs.add(mac.get("address", "").lower())
            return
        target = element.find("target")
        dev = target.get("dev") if target is not None else None
        if not dev:
            raise InvalidArgument("a disk to hot-plug needs <target dev='...'>")
        if any(d.target_dev == dev for d in live.disks if d.element is not element):
            raise InvalidArgument(f"domain already has a disk with target '{dev}'")

    def _next_node(self, dom: QemuDomain) -> int:
        nodes = self._execute(dom, "query-named-block-nodes", None) or []
        used = [int(m.group(1)) for n in nodes if (m := _NODE.match(n.get("node-name", "")))]
        return max(used, default=0) + 1

    def _plug(self, dom: QemuDomain, args: DeviceArgs,
              added: list[tuple[str, dict[str, Any]]]) -> None:
        if args.drive or args.chardev or args.objects:
            raise Unsupported("hot-plug needs -blockdev (QEMU >= 4.2) and no extra objects")
        for node in args.blockdevs:
            self._execute(dom, "blockdev-add", node)
            added.append(("blockdev-del", {"node-name": node["node-name"]}))
        if args.netdev is not None:
            self._execute(dom, "netdev_add", args.netdev)
            added.append(("netdev_del", {"id": args.netdev["id"]}))
        assert args.device is not None
        self._execute(dom, "device_add", args.device)

    def _undo(self, dom: QemuDomain, added: list[tuple[str, dict[str, Any]]]) -> None:
        for command, arguments in reversed(added):
            with contextlib.suppress(HvmonError):  # best effort: the first error matters
                self._execute(dom, command, arguments)

    # --- vCPUs ---------------------------------------------------------------------
    def set_vcpus(self, dom: QemuDomain, count: int) -> None:
        """Add vCPUs to a running guest (``device_add`` of free CPU slots).

        Removing vCPUs needs the guest to release them and is refused with a
        one-line reason; lower the count in the definition and restart instead.
        """
        online = len(self._execute(dom, "query-cpus-fast", None) or [])
        if count < online:
            raise Unsupported(f"removing vCPUs from running domain '{dom.name}' is not "
                              "supported; lower the count in the definition and restart it")
        slots = [s for s in self._execute(dom, "query-hotpluggable-cpus", None) or []
                 if not s.get("qom-path")]
        slots.sort(key=lambda s: tuple(sorted(s.get("props", {}).items())))
        for n, slot in enumerate(slots[:count - online]):
            props = {"driver": slot["type"], "id": f"vcpu{online + n}",
                     **slot.get("props", {})}
            self._execute(dom, "device_add", props)

    # --- detach ---------------------------------------------------------------------
    def request_detach(self, dom: QemuDomain, element: etree._Element,
                       on_done: Callable[[], None]) -> threading.Event:
        """Ask the guest to release the device; ``on_done`` runs when QEMU says it did."""
        live = dom.live
        assert live is not None
        device = find_device(live, element)
        if device is None:
            raise InvalidArgument(f"domain '{dom.name}' has no matching <{element.tag}>")
        alias = alias_of(device)
        key = (dom.uuid, alias)
        backends = self._backends(dom, device)
        done = threading.Event()

        def finish() -> None:
            for command, arguments in backends:
                with contextlib.suppress(HvmonError):  # already gone with the device
                    self._execute(dom, command, arguments)
            parent = device.getparent()
            if parent is not None:
                parent.remove(device)
            on_done()

        self._deleted[key], self._pending[key] = done, finish
        try:
            self._execute(dom, "device_del", {"id": alias})
        except BaseException:
            self._deleted.pop(key, None)
            self._pending.pop(key, None)
            raise
        return done

    def _backends(self, dom: QemuDomain,
                  device: etree._Element) -> list[tuple[str, dict[str, Any]]]:
        """The commands that remove the device's backends once the device is gone."""
        alias = alias_of(device)
        if device.tag == "interface":
            return [("netdev_del", {"id": f"host{alias}"})]
        for block in self._execute(dom, "query-block", None) or []:
            if f"/{alias}/" not in block.get("qdev", "") + "/":
                continue
            node = (block.get("inserted") or {}).get("node-name", "")
            match = _NODE.match(node)
            if match:
                n = match.group(1)
                return [("blockdev-del", {"node-name": f"libvirt-{n}-format"}),
                        ("blockdev-del", {"node-name": f"libvirt-{n}-storage"})]
        return []

    def device_deleted(self, dom: QemuDomain, alias: str) -> None:
        """QEMU's DEVICE_DELETED for ``alias``: finish a pending detach (registry lock held)."""
        finish = self._pending.pop((dom.uuid, alias), None)
        if finish is not None:
            finish()
        event = self._deleted.pop((dom.uuid, alias), None)
        if event is not None:
            event.set()

    def wait(self, dom: QemuDomain, done: threading.Event, what: str) -> None:
        if not done.wait(self.timeout):
            raise OperationTimeout(f"detach request for {what} of domain '{dom.name}' sent; "
                                   f"the guest has not released it within {self.timeout:g} s "
                                   "(it is removed when the guest does)")
