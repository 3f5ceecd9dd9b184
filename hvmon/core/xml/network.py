"""``<network>`` documents (virtual networks)."""

from __future__ import annotations

from hvmon.core.xml.base import XmlChildren, XmlObject, XmlProperty, to_int


class DhcpHost(XmlObject):
    ROOT = "host"
    mac = XmlProperty[str]("@mac")
    name = XmlProperty[str]("@name")
    ip = XmlProperty[str]("@ip")


class DhcpRange(XmlObject):
    ROOT = "range"
    start = XmlProperty[str]("@start")
    end = XmlProperty[str]("@end")


class IP(XmlObject):
    ROOT = "ip"
    family = XmlProperty[str]("@family", default="ipv4")
    address = XmlProperty[str]("@address")
    netmask = XmlProperty[str]("@netmask")
    prefix = XmlProperty[int]("@prefix", read=to_int)
    dhcp_ranges = XmlChildren(DhcpRange, "dhcp/range")
    dhcp_hosts = XmlChildren(DhcpHost, "dhcp/host")


class Network(XmlObject):
    """A virtual network definition."""

    ROOT = "network"
    name = XmlProperty[str]("name")
    uuid = XmlProperty[str]("uuid")
    bridge = XmlProperty[str]("bridge/@name")
    forward_mode = XmlProperty[str]("forward/@mode")
    mac = XmlProperty[str]("mac/@address")
    domain_name = XmlProperty[str]("domain/@name")
    ips = XmlChildren(IP, "ip")
