"""Guest NICs on virtual networks and host bridges: taps and filters around a guest's life.

At start (:meth:`NetworkHook.prepare`) every ``<interface type='network'>`` or
``type='bridge'`` gets a tap device (``vnetN``, or its ``<target dev>`` unless that
is a ``vnet`` name) plugged into the network's bridge, named in the live XML's
``<target dev>`` where the command line takes it (``-netdev tap,ifname=...``).
A ``<filterref>`` is bound to the tap; the filter's ``IP`` comes from its
parameters, else the network's static DHCP host for the NIC's MAC, else a lease
of that MAC, else it is learned later from the DHCP lease (``BindingStore.learn``,
run whenever the network's leases are read: the daemon's snapshot does it).
At stop (:meth:`release`) the bindings and taps go.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from lxml import etree

from hvmon.core.drivers.qemu.state import QemuDomain
from hvmon.core.errors import HvmonError, InvalidArgument, OperationInvalid, Unsupported
from hvmon.core.xml.domain import Domain as DomainXML
from hvmon.core.xml.nwfilter import FilterBinding

if TYPE_CHECKING:
    from hvmon.core.drivers.qemu.networks.part import NetworkPart

log = logging.getLogger("hvmon.qemu.network")
_KINDS = ("network", "bridge")
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")


class NetworkHook:
    """The start hook of guest NICs (see :class:`~..lifecycle.StartHook`)."""

    def __init__(self, driver: NetworkPart) -> None:
        self.driver = driver

    def prepare(self, dom: QemuDomain, live: DomainXML) -> None:
        nics = [i for i in live.element.iterfind("devices/interface") if i.get("type") in _KINDS]
        if not nics:
            return
        runner = self.driver.network_runner()
        if runner.netns is not None:
            raise Unsupported(f"domain '{dom.name}': guest NICs on networks need QEMU in the "
                              f"network namespace '{runner.netns}': run the driver inside it "
                              f"(ip netns exec {runner.netns} ...) instead of netns=")
        owner = self.driver.tap_owner(dom, live) if self.driver.tap_owner else None
        done: list[etree._Element] = []
        try:
            for nic in nics:
                self._plug(dom, nic, owner)
                done.append(nic)
        except BaseException:
            for nic in done:
                self._unplug(dom, nic)
            raise

    def _bridge_of(self, dom: QemuDomain, nic: etree._Element) -> tuple[str, str]:
        """(bridge, network name or '') of one NIC."""
        source = nic.find("source")
        if nic.get("type") == "network":
            name = source.get("network", "") if source is not None else ""
            if not name:
                raise InvalidArgument(f"domain '{dom.name}': an <interface type='network'> "
                                      "needs <source network='NAME'/>")
            plan = self.driver.networks().active_plan(name)
            return plan.bridge, name
        bridge = source.get("bridge", "") if source is not None else ""
        if not bridge:
            raise InvalidArgument(f"domain '{dom.name}': an <interface type='bridge'> needs "
                                  "<source bridge='NAME'/>")
        if not self.driver.networks().backend.links.is_bridge(bridge):
            raise OperationInvalid(f"domain '{dom.name}': bridge '{bridge}' does not exist")
        return bridge, ""

    def _plug(self, dom: QemuDomain, nic: etree._Element,
              owner: tuple[int, int] | None = None) -> None:
        """A tap for ``nic`` (owned by ``owner``, uid and gid, when QEMU is not root)."""
        bridge, network = self._bridge_of(dom, nic)
        mac_el = nic.find("mac")
        mac = (mac_el.get("address", "") if mac_el is not None else "").lower()
        if not mac:
            raise InvalidArgument(f"domain '{dom.name}': a NIC has no MAC address")
        links = self.driver.networks().backend.links
        target = nic.find("target")
        wanted = target.get("dev", "") if target is not None else ""
        name = wanted if wanted and not wanted.startswith("vnet") else links.free_tap_name()
        if not _IFNAME.fullmatch(name):
            raise InvalidArgument(f"domain '{dom.name}': invalid tap name '{name}' in <target "
                                  "dev> (1-15 letters, digits, _ . -)")
        if links.exists(name):
            raise OperationInvalid(f"domain '{dom.name}': a device named '{name}' already "
                                   "exists")
        links.create_tap(name, mac, bridge, owner)
        if target is None:
            target = etree.SubElement(nic, "target")
        target.set("dev", name)
        try:
            self._bind(dom, nic, name, mac, network)
        except BaseException:
            links.delete(name)
            raise

    def _bind(self, dom: QemuDomain, nic: etree._Element, port: str, mac: str,
              network: str) -> None:
        ref = nic.find("filterref")
        if ref is None:
            return
        binding = FilterBinding()
        binding.owner_name, binding.owner_uuid = dom.name, dom.uuid
        binding.portdev, binding.mac = port, mac
        binding.element.append(etree.fromstring(etree.tostring(ref)))
        has_ip = ref.find("parameter[@name='IP']") is not None
        if not has_ip and network:
            address = self._known_ip(network, mac)
            if address:  # else learned from the lease (BindingStore.learn)
                bref = binding.find("filterref")
                assert bref is not None
                etree.SubElement(bref, "parameter", name="IP", value=address)
        self.driver.nwfilters().bind(binding)

    def _known_ip(self, network: str, mac: str) -> str:
        plan = self.driver.networks().active_plan(network)
        for ip in plan.ips:
            for host in ip.hosts:
                if host.mac == mac:
                    return host.ip
        store = self.driver.networks()
        leases = store.leases(store.by_name(network).uuid, mac)
        return next((lease.ipaddr for lease in leases if lease.type == "ipv4"), "")

    def release(self, dom: QemuDomain, live: DomainXML) -> None:
        for nic in live.element.iterfind("devices/interface"):
            if nic.get("type") in _KINDS:
                self._unplug(dom, nic)

    def _unplug(self, dom: QemuDomain, nic: etree._Element) -> None:
        target = nic.find("target")
        port = target.get("dev", "") if target is not None else ""
        if not port:
            return
        try:
            filters = self.driver.nwfilters()
            if port in filters.bindings:
                filters.unbind(port)
        except HvmonError as exc:
            log.error("domain '%s': removing the filter of '%s' failed: %s", dom.name, port,
                      exc)
        try:
            self.driver.networks().backend.links.delete(port)
        except HvmonError as exc:
            log.error("domain '%s': removing tap '%s' failed: %s", dom.name, port, exc)
