"""Virtual networks in the test driver, with simulated DHCP leases."""

from __future__ import annotations

import ipaddress
import time

from hvmon.core.drivers.base import Listing, NetworkRef
from hvmon.core.drivers.identity import check_identity, find_named
from hvmon.core.drivers.test.base import TestPart
from hvmon.core.drivers.test.state import NetworkObj
from hvmon.core.errors import (
    AlreadyExists,
    InvalidArgument,
    NoSuchNetwork,
    OperationInvalid,
)
from hvmon.core.types import DhcpLease
from hvmon.core.xml import defaults, schema
from hvmon.core.xml.network import Network as NetworkXML

LEASE_SECONDS = 3600


class NetworkOps(TestPart):
    """The network part of the Driver interface."""

    def _net(self, uuid: str) -> NetworkObj:
        obj = self.state.networks.get(uuid)
        if obj is None:
            raise NoSuchNetwork(f"network not found: no network with matching uuid '{uuid}'")
        return obj

    def list_networks(self) -> list[Listing]:
        with self._locked() as st:
            return [Listing(NetworkRef(n.uuid, n.name), n.active, n.persistent, n.autostart)
                    for n in st.networks.values()]

    def lookup_network(self, by: str, value: str) -> NetworkRef:
        with self._locked() as st:
            obj = find_named(st.networks.values(), by, value)
            if obj is not None:
                return NetworkRef(obj.uuid, obj.name)
        raise NoSuchNetwork(f"network not found: no network with matching {by} '{value}'")

    def network_flags(self, uuid: str) -> Listing:
        with self._locked():
            n = self._net(uuid)
            return Listing(NetworkRef(n.uuid, n.name), n.active, n.persistent, n.autostart)

    def _parse_network(self, xml: str) -> NetworkXML:
        net = NetworkXML.from_xml(xml)
        schema.validate(net.element, "network")
        bridges = {n.live.bridge for n in self.state.networks.values() if n.live.bridge}
        defaults.fill_network(net, rng=self.state.rng, used_bridges=bridges)
        return net

    def _claim(self, net: NetworkXML) -> NetworkObj | None:
        return check_identity(self.state.networks.values(), "network", net.name, net.uuid)

    def add_network(self, net: NetworkXML, persistent: bool, active: bool) -> NetworkObj:
        """Register a parsed network (also used by the node-file loader)."""
        obj = NetworkObj(net.uuid, net.name, net if persistent else None, net, active=active)
        self.state.networks[obj.uuid] = obj
        return obj

    def define_network(self, xml: str) -> NetworkRef:
        with self._locked():
            net = self._parse_network(xml)
            obj = self._claim(net)
            if obj is None:
                obj = self.add_network(net, persistent=True, active=False)
            else:
                obj.config = net
                if not obj.active:
                    obj.live = net
            return NetworkRef(obj.uuid, obj.name)

    def create_network(self, xml: str) -> NetworkRef:
        with self._locked():
            net = self._parse_network(xml)
            if self._claim(net) is not None:
                raise AlreadyExists(f"network '{net.name}' already exists")
            obj = self.add_network(net, persistent=False, active=True)
            return NetworkRef(obj.uuid, obj.name)

    def network_action(self, uuid: str, action: str) -> None:
        with self._locked() as st:
            obj = self._net(uuid)
            if action == "start":
                if obj.active:
                    raise OperationInvalid(f"network '{obj.name}' is already active")
                obj.active = True
            elif action == "stop":
                if not obj.active:
                    raise OperationInvalid(f"network '{obj.name}' is not active")
                obj.active = False
                if not obj.persistent:
                    st.networks.pop(obj.uuid)
                elif obj.config is not None:
                    obj.live = obj.config
            elif action == "undefine":
                if not obj.persistent:
                    raise OperationInvalid(f"cannot undefine transient network '{obj.name}'")
                obj.config = None
                obj.autostart = False
                if not obj.active:
                    st.networks.pop(obj.uuid)
            else:
                raise InvalidArgument(f"unknown network action '{action}'")

    def network_xml(self, uuid: str, inactive: bool = False) -> str:
        with self._locked():
            obj = self._net(uuid)
            source = obj.config if inactive and obj.config is not None else obj.live
            return source.to_xml()

    def network_set_autostart(self, uuid: str, autostart: bool) -> None:
        with self._locked():
            obj = self._net(uuid)
            if not obj.persistent:
                raise OperationInvalid(f"cannot set autostart for transient network '{obj.name}'")
            obj.autostart = autostart

    def network_dhcp_leases(self, uuid: str, mac: str | None = None) -> list[DhcpLease]:
        with self._locked() as st:
            obj = self._net(uuid)
            if not obj.active:
                raise OperationInvalid(f"network '{obj.name}' is not active")
            leases = self._simulated_leases(obj) + [
                DhcpLease(obj.live.bridge or "", spec.expiry or int(time.time()) + LEASE_SECONDS,
                          "ipv6" if ":" in spec.ip else "ipv4", spec.mac.lower(), spec.ip,
                          spec.prefix, spec.hostname, spec.clientid)
                for spec in st.controls.leases.get(obj.name, [])
            ]
        if mac:
            leases = [lease for lease in leases if lease.mac == mac.lower()]
        return leases

    def _simulated_leases(self, obj: NetworkObj) -> list[DhcpLease]:
        """One lease per interface of a running domain on this network."""
        ranges = [(ip, r) for ip in obj.live.ips if ip.family != "ipv6" for r in ip.dhcp_ranges]
        if not ranges:
            return []
        ip, dhcp = ranges[0]
        start, end = ipaddress.ip_address(dhcp.start), ipaddress.ip_address(dhcp.end)
        prefix = ip.prefix or ipaddress.ip_network(
            f"0.0.0.0/{ip.netmask or '255.255.255.0'}").prefixlen
        expiry = int(time.time()) + LEASE_SECONDS
        leases = []
        offset = 0
        for dom in sorted(self.state.domains.values(), key=lambda d: d.name):
            if not dom.active:
                continue
            for iface in dom.current().interfaces:
                if iface.type != "network" or iface.source is None or \
                        iface.source.network != obj.name or not iface.mac:
                    continue
                address = start + offset
                if address > end:
                    return leases
                offset += 1
                leases.append(DhcpLease(obj.live.bridge or "", expiry, "ipv4",
                                        iface.mac.lower(), str(address), prefix, dom.name))
        return leases
