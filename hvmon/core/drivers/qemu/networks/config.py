"""What a ``<network>`` document asks for, checked: the plan the backends carry out.

:func:`plan` turns a parsed network into a :class:`NetPlan` (mode, bridge,
addresses, DHCP, DNS) or raises one InvalidArgument / Unsupported line;
:func:`check_conflicts` refuses a network whose bridge or subnets collide with
another network's.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from hvmon.core.errors import InvalidArgument, Unsupported
from hvmon.core.xml.network import Network as NetworkXML

#: forward modes served: hvmon's own bridge (nat, route, open, isolated) or a host bridge
MODES = ("nat", "route", "open", "isolated", "bridge")
_IFNAME = re.compile(r"[A-Za-z0-9_.:-]{1,15}")
_MAC = re.compile(r"([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}")
_DUID = re.compile(r"[0-9A-Fa-f]{1,2}(:[0-9A-Fa-f]{1,2}){1,127}")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})?")
IPNet = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True)
class DhcpHostPlan:
    mac: str
    ip: str
    name: str
    duid: str = ""


@dataclass(frozen=True)
class IPPlan:
    """One ``<ip>``: the bridge's address and subnet, DHCP range and static hosts."""

    interface: IPNet
    ranges: tuple[tuple[str, str], ...] = ()
    hosts: tuple[DhcpHostPlan, ...] = ()

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return self.interface.network

    @property
    def family(self) -> str:
        return "ipv6" if self.interface.version == 6 else "ipv4"

    def range_size(self) -> int:
        return sum(int(ipaddress.ip_address(end)) - int(ipaddress.ip_address(start)) + 1
                   for start, end in self.ranges)


@dataclass(frozen=True)
class NetPlan:
    """A network's checked settings."""

    name: str
    uuid: str
    mode: str
    bridge: str
    mac: str = ""
    stp: bool = True
    delay: int = 0
    ips: tuple[IPPlan, ...] = ()
    domain: str = ""
    dns_enabled: bool = True
    dns_hosts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    dns_txt: tuple[tuple[str, str], ...] = ()
    dns_forwarders: tuple[str, ...] = ()
    forward_dev: str = ""

    @property
    def own_bridge(self) -> bool:
        """hvmon creates (and removes) the bridge: every mode but ``bridge``."""
        return self.mode != "bridge"

    @property
    def needs_dnsmasq(self) -> bool:
        return self.own_bridge and bool(self.ips) and (
            self.dns_enabled or any(ip.ranges or ip.hosts for ip in self.ips))

    @property
    def forwards(self) -> bool:
        return self.mode in ("nat", "route", "open")


def _fail(name: str, problem: str) -> InvalidArgument:
    return InvalidArgument(f"network '{name}': {problem}")


def _interface(name: str, address: str | None, netmask: str | None, prefix: int | None,
               family: str) -> IPNet:
    if not address:
        raise _fail(name, "<ip> needs an address")
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        raise _fail(name, f"invalid IP address '{address}'") from None
    if (addr.version == 6) != (family == "ipv6"):
        raise _fail(name, f"address '{address}' does not match family '{family}'")
    if netmask and prefix is not None:
        raise _fail(name, f"<ip address='{address}'> has both netmask and prefix")
    if netmask:
        if addr.version == 6:
            raise _fail(name, "an IPv6 <ip> takes a prefix, not a netmask")
        try:
            bits = ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
        except ValueError:
            raise _fail(name, f"invalid netmask '{netmask}'") from None
    elif prefix is not None:
        bits = prefix
    else:
        bits = 64 if addr.version == 6 else {"A": 8, "B": 16}.get(_ip_class(addr), 24)
    try:
        iface = ipaddress.ip_interface(f"{address}/{bits}")
    except ValueError:
        raise _fail(name, f"invalid prefix {bits} for '{address}'") from None
    if iface.ip in (iface.network.network_address, iface.network.broadcast_address) and \
            iface.version == 4 and iface.network.prefixlen < 31:
        raise _fail(name, f"'{address}' is the network or broadcast address of "
                          f"{iface.network}")
    return iface


def _ip_class(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    first = int(addr) >> 24 if addr.version == 4 else 255
    return "A" if first < 128 else "B" if first < 192 else "C"


def _ip_plan(name: str, ip_el: object, iface: IPNet) -> IPPlan:
    ranges = []
    for rng in ip_el.dhcp_ranges:  # type: ignore[attr-defined]
        try:
            start, end = ipaddress.ip_address(rng.start or ""), ipaddress.ip_address(rng.end or "")
        except ValueError:
            raise _fail(name, f"invalid DHCP range '{rng.start}'-'{rng.end}'") from None
        if start not in iface.network or end not in iface.network:
            raise _fail(name, f"DHCP range {start}-{end} is not inside {iface.network}")
        if int(start) > int(end):
            raise _fail(name, f"DHCP range {start}-{end} ends before it starts")
        ranges.append((str(start), str(end)))
    hosts = []
    for host in ip_el.dhcp_hosts:  # type: ignore[attr-defined]
        mac = (host.mac or "").lower()
        if mac and not _MAC.fullmatch(mac):
            raise _fail(name, f"invalid MAC address '{host.mac}' in a DHCP host")
        if not host.ip:
            raise _fail(name, "a DHCP <host> needs an ip")
        try:
            addr = ipaddress.ip_address(host.ip)
        except ValueError:
            raise _fail(name, f"invalid DHCP host address '{host.ip}'") from None
        if addr not in iface.network:
            raise _fail(name, f"DHCP host address {addr} is not inside {iface.network}")
        hostname = host.name or ""
        if hostname and not _HOSTNAME.fullmatch(hostname):
            raise _fail(name, f"invalid DHCP host name '{hostname}'")
        duid = host.element.get("id", "")
        if duid and not _DUID.fullmatch(duid):
            raise _fail(name, f"invalid DHCP host id '{duid}'")
        if not mac and iface.version == 4:
            raise _fail(name, f"the IPv4 DHCP host {addr} needs a mac")
        if not (mac or duid or hostname):
            raise _fail(name, f"the DHCP host {addr} needs a mac, an id or a name")
        hosts.append(DhcpHostPlan(mac, str(addr), hostname, duid))
    return IPPlan(iface, tuple(ranges), tuple(hosts))


def plan(net: NetworkXML) -> NetPlan:
    """Check ``net`` (UUID and bridge already filled) and return what to build."""
    name = net.name or ""
    if not name or "/" in name or not name.isprintable() or len(name) > 200:
        raise InvalidArgument(f"invalid network name {name!r}")
    forward = net.find("forward")
    mode = "isolated" if forward is None else (forward.get("mode") or "nat")
    if mode not in MODES:
        raise Unsupported(f"network '{name}': forward mode '{mode}' is not supported "
                          f"(nat, route, open, bridge, or none for isolated)")
    if net.find("virtualport") is not None:
        raise Unsupported(f"network '{name}': <virtualport> (Open vSwitch) is not supported")
    bridge_el = net.find("bridge")
    bridge = (bridge_el.get("name") if bridge_el is not None else None) or ""
    if not bridge or not _IFNAME.fullmatch(bridge):
        raise _fail(name, f"invalid or missing bridge name '{bridge}' (1-15 characters "
                          "of letters, digits, _ . : -)")
    ips = []
    for ip_el in net.ips:
        iface = _interface(name, ip_el.address, ip_el.netmask, ip_el.prefix,
                           ip_el.family or "ipv4")
        ips.append(_ip_plan(name, ip_el, iface))
    if mode == "bridge" and ips:
        raise _fail(name, "a network in mode 'bridge' uses a host bridge and takes no <ip>")
    if sum(1 for ip in ips if ip.ranges and ip.family == "ipv4") > 1:
        raise _fail(name, "only one IPv4 <ip> may have a DHCP range")
    mac = (net.mac or "").lower()
    if mac and not _MAC.fullmatch(mac):
        raise _fail(name, f"invalid bridge MAC address '{net.mac}'")
    stp = bridge_el is None or bridge_el.get("stp", "on") != "off"
    try:
        delay = int(bridge_el.get("delay", "0")) if bridge_el is not None else 0
    except ValueError:
        raise _fail(name, "bridge delay must be a number of seconds") from None
    dns = net.find("dns")
    dns_enabled = dns is None or dns.get("enable", "yes") != "no"
    dns_hosts = tuple((host.get("ip", ""), tuple(h.text or "" for h in host.findall("hostname")))
                      for host in (dns.findall("host") if dns is not None else ()))
    for addr, names in dns_hosts:
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            raise _fail(name, f"invalid DNS host address '{addr}'") from None
        for hostname in names:
            if not _HOSTNAME.fullmatch(hostname):
                raise _fail(name, f"invalid DNS host name '{hostname}'")
    txt = tuple((t.get("name", ""), t.get("value", ""))
                for t in (dns.findall("txt") if dns is not None else ()))
    for key, value in txt:
        if not _HOSTNAME.fullmatch(key) or "\n" in value or "," in key:
            raise _fail(name, f"invalid DNS TXT record '{key}'")
    forwarders = []
    for fwd in dns.findall("forwarder") if dns is not None else ():
        addr = fwd.get("addr")
        if addr:
            try:
                ipaddress.ip_address(addr)
            except ValueError:
                raise _fail(name, f"invalid DNS forwarder address '{addr}'") from None
            forwarders.append(addr)
    domain = net.domain_name or ""
    if domain and not _HOSTNAME.fullmatch(domain):
        raise _fail(name, f"invalid domain name '{domain}'")
    forward_dev = (forward.get("dev") or "") if forward is not None else ""
    if forward_dev and not _IFNAME.fullmatch(forward_dev):
        raise _fail(name, f"invalid forward device '{forward_dev}'")
    return NetPlan(name, net.uuid or "", mode, bridge, mac, stp, delay, tuple(ips), domain,
                   dns_enabled, dns_hosts, txt, tuple(forwarders), forward_dev)


def check_conflicts(new: NetPlan, others: Iterable[NetPlan]) -> None:
    """InvalidArgument when ``new`` shares a bridge or overlaps a subnet of another network."""
    for other in others:
        if other.uuid == new.uuid:
            continue
        if other.bridge == new.bridge and (new.own_bridge or other.own_bridge):
            raise InvalidArgument(f"network '{new.name}': bridge name '{new.bridge}' is "
                                  f"already used by network '{other.name}'")
        for mine in new.ips:
            for theirs in other.ips:
                if mine.interface.version == theirs.interface.version and \
                        mine.network.overlaps(theirs.network):
                    raise InvalidArgument(f"network '{new.name}': subnet {mine.network} "
                                          f"overlaps {theirs.network} of network "
                                          f"'{other.name}'")


def check_routes(new: NetPlan, routes: Iterable[tuple[str, str]]) -> None:
    """InvalidArgument when a subnet of ``new`` collides with a route on the host.

    ``routes`` are ``(destination, device)`` pairs, as ``ip route`` lists them.
    """
    for dest, dev in routes:
        try:
            net = ipaddress.ip_network(dest, strict=False)
        except ValueError:
            continue
        if net.prefixlen == 0:
            continue  # the default route collides with nothing
        for mine in new.ips:
            if mine.interface.version == net.version and mine.network.overlaps(net):
                raise InvalidArgument(f"network '{new.name}': subnet {mine.network} is "
                                      f"already in use by interface {dev} ({net})")
