"""Network filters translated to nftables, bound to one bridge port.

A binding becomes one table ``bridge hvmon_nwf_<hash of the port>``, loaded
in one ``nft -f`` transaction and deleted at unbind. Like libvirt's ebtables
layout, each direction has a root chain and one sub-chain per filter chain
(``mac``, ``ipv4-ip``, ``arp-mac`` ...) jumped to by the chain's priority and
protocol; a rule's ``return`` goes back to the root chain.

- direction ``out`` (from the guest): base chain on ``prerouting``, frames
  entering the bridge from the port (``iifname``);
- direction ``in`` (to the guest): base chain on ``postrouting``, frames the
  bridge sends out of the port (``oifname``).

Variables (``$MAC``, ``$IP`` ...) come from the binding's parameters, MAC from the
binding's ``<mac>``; a variable with several values expands a rule once per value.
A rule naming a variable that has no value is left out (libvirt's state
before it learned the guest's IP: with clean-traffic only DHCP passes).
``reject`` drops (the bridge family has no reject for every hook).
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from lxml import etree

from hvmon.core.errors import InvalidArgument, Unsupported
from hvmon.core.xml.nwfilter import PROTOCOLS, Filter, FilterRef, Rule

_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)(?:\[@?(\d+)\])?")
_MAC = re.compile(r"([0-9A-Fa-f]{1,2}:){5}[0-9A-Fa-f]{1,2}")
#: the protocol attributes the translation honours; any other is refused, not dropped
_KNOWN = {"srcmacaddr", "srcmacmask", "dstmacaddr", "dstmacmask", "protocolid", "comment",
          "match", "srcipaddr", "srcipmask", "dstipaddr", "dstipmask", "protocol",
          "srcportstart", "srcportend", "dstportstart", "dstportend", "dscp", "state", "type",
          "code", "opcode", "arpsrcmacaddr", "arpdstmacaddr", "arpsrcipaddr", "arpdstipaddr",
          "arpsrcipmask", "arpdstipmask", "vlanid"}
_MAX_DEPTH = 20
_MAX_RULES = 5000
#: ether types of the sub-chains, by the prefix of the chain name
_CHAIN_ETHER = {"mac": None, "stp": None, "root": None, "vlan": "vlan", "arp": "arp",
                "rarp": "0x8035", "ipv4": "ip", "ipv6": "ip6"}
_PROTOCOL_IDS = {"ipv4": "ip", "ipv6": "ip6", "arp": "arp", "rarp": "0x8035", "vlan": "vlan",
                 "mac": None}
_VERDICTS = {"accept": "accept", "drop": "drop", "reject": "drop", "return": "return",
             "continue": "continue"}
_ARP_OPCODES = {"request": "1", "reply": "2", "request_reverse": "3", "reply_reverse": "4"}
_STATES = ("new", "established", "related", "invalid", "untracked")
_L4 = ("tcp", "udp", "sctp", "icmp", "igmp", "esp", "ah", "udplite", "all")


@dataclass
class _Chain:
    name: str  # libvirt's chain name
    priority: int
    rules: list[tuple[int, str]] = field(default_factory=list)  # (priority, nft rule)


def table_name(port: str) -> str:
    return "hvmon_nwf_" + hashlib.sha256(port.encode()).hexdigest()[:12]


class Translator:
    """Turns a filter reference into the nft script of one port's table."""

    def __init__(self, lookup: Callable[[str], Filter]) -> None:
        self.lookup = lookup

    def script(self, port: str, ref: FilterRef, variables: Mapping[str, list[str]]) -> str:
        """The complete ``nft -f`` script (the table is created fresh)."""
        out: dict[str, _Chain] = {"root": _Chain("root", 0)}
        inn: dict[str, _Chain] = {"root": _Chain("root", 0)}
        count = [0]
        self._walk(ref, dict(variables), out, inn, [], count)
        table = table_name(port)
        lines = [f"table bridge {table} {{"]
        for direction, chains, hook, match in (("out", out, "prerouting", "iifname"),
                                               ("in", inn, "postrouting", "oifname")):
            names = {name: f"{direction}_{index}" for index, name in
                     enumerate(sorted(n for n in chains if n != "root"))}
            root: list[tuple[int, str]] = list(chains["root"].rules)
            for name, nft_name in names.items():
                chain = chains[name]
                if not chain.rules:
                    continue
                ether = _CHAIN_ETHER.get(name.split("-", 1)[0])
                cond = f"ether type {ether} " if ether else ""
                root.append((chain.priority, f"{cond}jump {nft_name}"))
            root.sort(key=lambda item: item[0])  # stable: document order within a priority
            lines += [f"  chain {direction} {{",
                      f"    type filter hook {hook} priority -200; policy accept;",
                      f'    {match} != "{port}" return']
            lines += [f"    {rule}" for _, rule in root]
            lines.append("  }")
            for name, nft_name in names.items():
                chain = chains[name]
                if not chain.rules:
                    continue
                lines.append(f"  chain {nft_name} {{")
                lines += [f"    {rule}" for _, rule in sorted(chain.rules, key=lambda i: i[0])]
                lines.append("  }")
        lines.append("}")
        return "\n".join(lines) + "\n"

    # --- the filter tree ---------------------------------------------------------
    def _walk(self, ref: FilterRef, variables: dict[str, list[str]],
              out: dict[str, _Chain], inn: dict[str, _Chain], stack: list[str],
              count: list[int]) -> None:
        name = ref.filter or ""
        if name in stack:
            raise InvalidArgument(f"network filter '{name}' references itself "
                                  f"({' -> '.join([*stack, name])})")
        if len(stack) >= _MAX_DEPTH:
            raise InvalidArgument(f"network filter references nest deeper than {_MAX_DEPTH}")
        filt = self.lookup(name)
        scope = {**variables, **ref.variables()}
        chain = filt.chain or "root"
        for entry in filt.entries():
            if isinstance(entry, FilterRef):
                self._walk(entry, scope, out, inn, [*stack, name], count)
                continue
            for direction, chains in (("out", out), ("in", inn)):
                if entry.direction not in (direction, "inout"):
                    continue
                target = chains.setdefault(chain, _Chain(chain, filt.priority))
                for text in self._rules(entry, scope, direction):
                    count[0] += 1
                    if count[0] > _MAX_RULES:
                        raise InvalidArgument(f"network filter '{name}' expands to more "
                                              f"than {_MAX_RULES} rules")
                    target.rules.append((entry.priority, text))

    # --- one rule ----------------------------------------------------------------
    def _rules(self, rule: Rule, variables: Mapping[str, list[str]],
               direction: str) -> list[str]:
        verdict = _VERDICTS.get(rule.action or "")
        if verdict is None:
            raise InvalidArgument(f"invalid rule action '{rule.action}'")
        proto = rule.protocol
        if proto is None:
            return [verdict]
        names = sorted({m.group(1) for value in proto.attrib.values()
                        for m in _VAR.finditer(value)})
        if any(not variables.get(n) for n in names):
            return []  # a variable without a value: the rule waits (see the module doc)
        out = []
        for combo in itertools.product(*(variables[n] for n in names)):
            values = dict(zip(names, combo, strict=True))
            attrs = {k: _VAR.sub(lambda m, v=values: v[m.group(1)], val)
                     for k, val in proto.attrib.items()}
            out.append(" ".join([*_match(str(proto.tag), attrs), verdict]))
        return out


def _norm_mac(value: str) -> str:
    return ":".join(part.zfill(2) for part in value.lower().split(":"))


def _match(tag: str, attrs: Mapping[str, str]) -> list[str]:
    """The nft match expressions of one protocol element."""
    unknown = sorted(set(attrs) - _KNOWN)
    if unknown:
        raise Unsupported(f"network filter rule <{tag}>: attribute '{unknown[0]}' is not "
                          "supported by the nftables translation")
    negate = attrs.get("match", "yes") == "no"
    eq = "!= " if negate else ""
    parts: list[str] = []

    def mac(key: str, field_: str) -> None:
        value = attrs.get(key)
        if value is None:
            return
        if not _MAC.fullmatch(value):
            raise InvalidArgument(f"invalid MAC address '{value}' in <{tag} {key}>")
        mask = attrs.get(key.replace("addr", "mask"))
        if mask:
            if not _MAC.fullmatch(mask):
                raise InvalidArgument(f"invalid MAC mask '{mask}' in <{tag}>")
            parts.append(f"{field_} and {_norm_mac(mask)} {eq}{_norm_mac(value)}")
        else:
            parts.append(f"{field_} {eq}{_norm_mac(value)}")

    def addr(key: str, field_: str, version: int) -> None:
        value = attrs.get(key)
        if value is None:
            return
        try:
            ip = ipaddress.ip_address(value)
        except ValueError:
            raise InvalidArgument(f"invalid IP address '{value}' in <{tag} {key}>") from None
        if ip.version != version:
            raise InvalidArgument(f"<{tag} {key}='{value}'> is not an IPv{version} address")
        mask = attrs.get(key.replace("addr", "mask"))
        text = str(ip)
        if mask:
            try:
                bits = int(mask) if mask.isdigit() else \
                    ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen
                text = str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))
            except ValueError:
                raise InvalidArgument(f"invalid mask '{mask}' in <{tag}>") from None
        parts.append(f"{field_} {eq}{text}")

    def number(key: str, field_: str, limit: int) -> None:
        value = attrs.get(key)
        if value is None:
            return
        try:
            num = int(value, 0)
        except ValueError:
            raise InvalidArgument(f"invalid number '{value}' in <{tag} {key}>") from None
        if not 0 <= num <= limit:
            raise InvalidArgument(f"<{tag} {key}='{value}'> is out of range")
        parts.append(f"{field_} {eq}{num}")

    def ports(l4: str, base: str, field_: str) -> None:
        start, end = attrs.get(f"{base}start"), attrs.get(f"{base}end")
        if start is None:
            return
        try:
            low, high = int(start), int(end) if end is not None else int(start)
        except ValueError:
            raise InvalidArgument(f"invalid port in <{tag} {base}start>") from None
        if not 0 <= low <= high <= 65535:
            raise InvalidArgument(f"invalid port range {start}-{end} in <{tag}>")
        parts.append(f"{l4} {field_} {eq}{low if low == high else f'{low}-{high}'}")

    family = tag.split("-")[-1] if "-" in tag else ("ipv6" if tag in ("ipv6", "icmpv6")
                                                    else "ipv4")
    base = tag.split("-")[0]
    if base in ("mac", "vlan", "stp"):
        mac("srcmacaddr", "ether saddr")
        mac("dstmacaddr", "ether daddr")
        if base == "mac" and "protocolid" in attrs:
            pid = attrs["protocolid"].lower()
            ether = _PROTOCOL_IDS.get(pid)
            if ether is None:
                try:
                    ether = hex(int(pid, 16) if pid.startswith("0x") else int(pid))
                except ValueError:
                    raise InvalidArgument(f"invalid protocolid '{pid}'") from None
            parts.append(f"ether type {eq}{ether}")
        if base == "vlan":
            parts.insert(0, "ether type vlan")
            number("vlanid", "vlan id", 4095)
        return parts
    if base in ("arp", "rarp"):
        parts.append("ether type arp" if base == "arp" else "ether type 0x8035")
        mac("srcmacaddr", "ether saddr")
        mac("dstmacaddr", "ether daddr")
        if base == "rarp" and any(k.startswith("arp") or k == "opcode" for k in attrs):
            raise Unsupported("RARP header matches are not supported (only MAC addresses)")
        if "opcode" in attrs:
            code = _ARP_OPCODES.get(attrs["opcode"].lower(), attrs["opcode"])
            number_attrs = {"opcode": code}
            try:
                parts.append(f"arp operation {eq}{int(number_attrs['opcode'], 0)}")
            except ValueError:
                raise InvalidArgument(f"invalid ARP opcode '{attrs['opcode']}'") from None
        mac("arpsrcmacaddr", "arp saddr ether")
        mac("arpdstmacaddr", "arp daddr ether")
        addr("arpsrcipaddr", "arp saddr ip", 4)
        addr("arpdstipaddr", "arp daddr ip", 4)
        return parts
    version = 6 if family == "ipv6" else 4
    fam = "ip6" if version == 6 else "ip"
    parts.append(f"ether type {fam}")
    mac("srcmacaddr", "ether saddr")
    addr("srcipaddr", f"{fam} saddr", version)
    addr("dstipaddr", f"{fam} daddr", version)
    l4 = attrs.get("protocol") if base in ("ip", "ipv6") else base
    if base in ("icmpv6",):
        l4 = "icmpv6"
    if l4 and l4 != "all":
        key = "nexthdr" if version == 6 else "protocol"
        if l4 not in (*_L4, "icmpv6") and not l4.isdigit():
            raise InvalidArgument(f"unknown protocol '{l4}' in <{tag}>")
        if l4 == "icmp" and version == 6:
            l4 = "icmpv6"
        parts.append(f"{fam} {key} {eq}{l4}")
        if l4 in ("tcp", "udp", "sctp", "udplite"):
            ports("udplite" if l4 == "udplite" else l4, "srcport", "sport")
            ports("udplite" if l4 == "udplite" else l4, "dstport", "dport")
        if l4 in ("icmp", "icmpv6"):
            number("type", f"{l4} type", 255)
            number("code", f"{l4} code", 255)
    if "dscp" in attrs:
        number("dscp", f"{fam} dscp", 63)
    state = attrs.get("state")
    if state and state.upper() != "NONE":
        states = [item.strip().lower() for item in state.split(",")]
        bad = [item for item in states if item not in _STATES]
        if bad:
            raise InvalidArgument(f"invalid connection state '{bad[0]}' in <{tag} state> "
                                  f"({', '.join(s.upper() for s in _STATES)})")
        parts.append(f"ct state {eq}{{ {', '.join(states)} }}")
    return parts


def load_filter(text: str) -> Filter:
    """Parse one filter document (the caller validates it against the schema)."""
    filt = Filter.from_xml(text)
    for rule in filt.rules:
        proto = rule.protocol
        if proto is not None and isinstance(proto.tag, str):
            _check_protocol(proto, filt.name or "")
    return filt


def _check_protocol(proto: etree._Element, name: str) -> None:
    if proto.tag not in PROTOCOLS:
        raise InvalidArgument(f"network filter '{name}': unknown protocol <{proto.tag}>")
