"""``<filter>`` (network filters) and ``<filterbinding>`` documents, libvirt's format."""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from hvmon.core.xml.base import XmlChildren, XmlObject, XmlProperty, to_int

#: the protocol elements a rule may hold
PROTOCOLS = ("mac", "vlan", "stp", "arp", "rarp", "ip", "ipv6", "tcp", "udp", "sctp", "icmp",
             "igmp", "esp", "ah", "udplite", "all", "tcp-ipv6", "udp-ipv6", "sctp-ipv6",
             "icmpv6", "esp-ipv6", "ah-ipv6", "udplite-ipv6", "all-ipv6")
#: libvirt's default priorities of the chains (by the prefix of the chain name)
CHAIN_PRIORITIES = {"root": 0, "stp": -810, "mac": -800, "vlan": -750, "ipv4": -700,
                    "ipv6": -600, "arp": -500, "rarp": -400}
DEFAULT_RULE_PRIORITY = 500


class Parameter(XmlObject):
    ROOT = "parameter"
    name = XmlProperty[str]("@name")
    value = XmlProperty[str]("@value")


class FilterRef(XmlObject):
    """A reference to another filter, with parameters (a name may repeat: a list)."""

    ROOT = "filterref"
    filter = XmlProperty[str]("@filter")
    parameters = XmlChildren(Parameter, "parameter")

    def variables(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for param in self.parameters:
            out.setdefault(param.name or "", []).append(param.value or "")
        return out


class Rule(XmlObject):
    """One rule: action, direction, priority and at most one protocol match."""

    ROOT = "rule"
    action = XmlProperty[str]("@action")
    direction = XmlProperty[str]("@direction")
    priority = XmlProperty[int]("@priority", read=to_int, default=DEFAULT_RULE_PRIORITY)
    statematch = XmlProperty[str]("@statematch")

    @property
    def protocol(self) -> etree._Element | None:
        """The protocol element (``<mac>``, ``<ip>``, ``<tcp>`` ...), None for 'any frame'."""
        return next((c for c in self.element if isinstance(c.tag, str)), None)


class Filter(XmlObject):
    """A network filter: rules and references to other filters, in one chain."""

    ROOT = "filter"
    name = XmlProperty[str]("@name")
    chain = XmlProperty[str]("@chain", default="root")
    uuid = XmlProperty[str]("uuid")
    rules = XmlChildren(Rule, "rule")
    filterrefs = XmlChildren(FilterRef, "filterref")

    @property
    def priority(self) -> int:
        """The chain's priority: the attribute, else libvirt's default for the chain."""
        value = self.element.get("priority")
        if value is not None:
            return to_int(value)
        return CHAIN_PRIORITIES.get((self.chain or "root").split("-", 1)[0], 0)

    def entries(self) -> Iterator[Rule | FilterRef]:
        """Rules and references in document order."""
        for child in self.element:
            if child.tag == "rule":
                yield Rule(child)
            elif child.tag == "filterref":
                yield FilterRef(child)


class FilterBinding(XmlObject):
    """A filter bound to a port (libvirt's ``<filterbinding>``)."""

    ROOT = "filterbinding"
    owner_name = XmlProperty[str]("owner/name")
    owner_uuid = XmlProperty[str]("owner/uuid")
    portdev = XmlProperty[str]("portdev/@name")
    linkdev = XmlProperty[str]("linkdev/@name")
    mac = XmlProperty[str]("mac/@address")
    filterref = XmlProperty[str]("filterref/@filter")

    def ref(self) -> FilterRef | None:
        node = self.find("filterref")
        return FilterRef(node) if node is not None else None
