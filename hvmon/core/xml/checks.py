"""Targeted value checks: fast structural checks and readable schema errors.

Each :class:`Rule` checks one value (an element's text or an attribute) at a
path. ``quick`` rules form :func:`hvmon.core.xml.schema.quick_check`; all rules
together explain *why* RelaxNG refused a document, because libxml2's own
messages for interleaved content ("Extra element devices in interleave") do not
say which value was wrong. The rules mirror the strict parts of ``schemas/``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lxml import etree

from hvmon.core.xml.patterns import is_mac, is_name, is_uint, is_unit, is_uuid

Check = Callable[[str], bool]

#: kind -> tag of its root element
ROOT_TAGS: dict[str, str] = {
    "domain": "domain",
    "network": "network",
    "pool": "pool",
    "volume": "volume",
    "secret": "secret",
    "nwfilter": "filter",
    "node": "node",
    "capabilities": "capabilities",
}


@dataclass(frozen=True)
class Rule:
    """One checked value: ``path`` from the root (ElementPath), ``attr`` or text."""

    path: str
    attr: str | None
    check: Check
    problem: str
    quick: bool = False
    required: bool = False
    hint: str = ""


def one_of(*values: str) -> tuple[Check, tuple[str, ...]]:
    """A check accepting exactly ``values``, and the values for the message."""
    allowed = frozenset(values)
    return (lambda v: v.strip() in allowed), values


def _posint(value: str) -> bool:
    return is_uint(value) and int(value) > 0


def _pci(bits: int) -> Check:
    def check(value: str) -> bool:
        text = value.strip().lower()
        number = int(text, 16) if text.startswith("0x") and len(text) > 2 else None
        if number is None and text.isdigit():
            number = int(text)
        return number is not None and number < (1 << bits)

    return check


def _int_range(low: int, high: int) -> Check:
    def check(value: str) -> bool:
        try:
            return low <= int(value.strip()) <= high
        except ValueError:
            return False

    return check


def _enum(path: str, attr: str | None, values: tuple[str, ...], what: str,
          required: bool = False, quick: bool = False) -> Rule:
    check, expected = one_of(*values)
    return Rule(path, attr, check, f"invalid {what}", quick=quick, required=required,
                hint=f"expected one of: {', '.join(expected)}")


def _size(path: str, quick: bool = True) -> tuple[Rule, ...]:
    return (
        Rule(path, None, is_uint, "invalid size", quick=quick, hint="expected an unsigned integer"),
        Rule(path, "unit", is_unit, "unknown unit", quick=quick),
        Rule(path, "units", is_unit, "unknown unit", quick=quick),
    )


HYPERVISORS = ("qemu", "kqemu", "kvm", "xen", "lxc", "uml", "openvz", "test", "vmware",
               "hyperv", "vbox", "phyp", "vz", "bhyve", "parallels", "ch", "hvf")
OS_TYPES = ("hvm", "linux", "xen", "xenpvh", "exe", "uml")
LIFECYCLE = ("destroy", "restart", "preserve", "rename-restart", "coredump-destroy",
             "coredump-restart")
DISK_TYPES = ("file", "block", "dir", "network", "volume", "nvme", "vhostuser")
DISK_DEVICES = ("disk", "cdrom", "floppy", "lun")
DISK_BUSES = ("ide", "scsi", "virtio", "xen", "usb", "sata", "sd", "fdc", "none")
NET_TYPES = ("network", "bridge", "user", "ethernet", "direct", "hostdev", "vhostuser",
             "server", "client", "mcast", "udp", "internal", "vdpa", "null", "vds")
FORWARD_MODES = ("nat", "route", "open", "bridge", "private", "vepa", "passthrough", "hostdev")
POOL_TYPES = ("dir", "fs", "netfs", "logical", "disk", "iscsi", "iscsi-direct", "scsi",
              "mpath", "rbd", "gluster", "zfs", "vstorage")
VOLUME_TYPES = ("file", "block", "dir", "network", "netdir", "ploop")
SECRET_USAGES = ("volume", "ceph", "iscsi", "tls", "vtpm", "passphrase")


def _pci_rules(device: str) -> tuple[Rule, ...]:
    path = f"devices/{device}/address[@type='pci']"
    return (
        Rule(path, "domain", _pci(16), "invalid PCI domain"),
        Rule(path, "bus", _pci(8), "invalid PCI bus"),
        Rule(path, "slot", _pci(8), "invalid PCI slot"),
        Rule(path, "function", _pci(8), "invalid PCI function"),
    )


_NAME = Rule("name", None, is_name, "invalid name", quick=True, required=True)
_UUID = Rule("uuid", None, is_uuid, "invalid UUID", quick=True)

RULES: dict[str, tuple[Rule, ...]] = {
    "domain": (
        _enum(".", "type", HYPERVISORS, "domain type", required=True, quick=True),
        _NAME,
        _UUID,
        *_size("memory"),
        *_size("currentMemory"),
        Rule("vcpu", None, _posint, "invalid vCPU count"),
        Rule("vcpu", "current", _posint, "invalid vCPU count"),
        _enum("os/type", None, OS_TYPES, "OS type"),
        _enum("on_poweroff", None, LIFECYCLE, "lifecycle action"),
        _enum("on_reboot", None, LIFECYCLE, "lifecycle action"),
        _enum("on_crash", None, LIFECYCLE, "lifecycle action"),
        _enum("devices/disk", "type", DISK_TYPES, "disk type"),
        _enum("devices/disk", "device", DISK_DEVICES, "disk device"),
        _enum("devices/disk/target", "bus", DISK_BUSES, "disk bus"),
        _enum("devices/interface", "type", NET_TYPES, "interface type", required=True),
        Rule("devices/interface/mac", "address", is_mac, "invalid MAC address", quick=True,
             required=True),
        *_pci_rules("disk"),
        *_pci_rules("interface"),
    ),
    "network": (
        _NAME,
        _UUID,
        Rule("mac", "address", is_mac, "invalid MAC address", quick=True, required=True),
        _enum("forward", "mode", FORWARD_MODES, "forward mode"),
        Rule("ip", "prefix", _int_range(0, 128), "invalid prefix"),
        Rule("ip/dhcp/host", "mac", is_mac, "invalid MAC address"),
    ),
    "pool": (
        _enum(".", "type", POOL_TYPES, "pool type", required=True, quick=True),
        _NAME,
        _UUID,
        *_size("capacity"),
        *_size("allocation"),
        *_size("available"),
        Rule("source/host", "name", lambda v: bool(v.strip()), "empty host name",
             required=True),
        Rule("source/host", "port", _int_range(0, 65535), "invalid port"),
    ),
    "volume": (
        _enum(".", "type", VOLUME_TYPES, "volume type"),
        _NAME,
        *_size("capacity"),
        *_size("allocation"),
        *_size("physical"),
    ),
    "secret": (
        _enum(".", "ephemeral", ("yes", "no"), "value"),
        _enum(".", "private", ("yes", "no"), "value"),
        _UUID,
        _enum("usage", "type", SECRET_USAGES, "usage type", required=True, quick=True),
    ),
    "nwfilter": (
        Rule(".", "name", lambda v: bool(v.strip()) and "/" not in v, "invalid filter name",
             quick=True, required=True),
        Rule(".", "priority", _int_range(-1000, 1000), "invalid priority"),
        _UUID,
        _enum("rule", "action", ("drop", "accept", "reject", "return", "continue"),
              "rule action", required=True),
        _enum("rule", "direction", ("in", "out", "inout"), "rule direction", required=True),
        Rule("rule", "priority", _int_range(-1000, 1000), "invalid priority"),
    ),
    "node": (
        *(Rule(f"cpu/{tag}", None, _posint, f"invalid <{tag}> value", quick=True)
          for tag in ("mhz", "active", "nodes", "sockets", "cores", "threads")),
        *_size("memory"),
    ),
    "capabilities": (
        Rule("host/cpu/arch", None, lambda v: bool(v.strip()), "missing arch", required=True),
        _enum("guest/os_type", None, OS_TYPES, "OS type"),
    ),
}

#: children of ``<node>`` that are checked as documents of their own
_NODE_CHILDREN = {"domain": "domain", "network": "network", "pool": "pool", "secret": "secret"}

Problem = tuple[int | None, str]


def _show(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= 40 else value[:37] + "..."


def _check(node: etree._Element, rule: Rule) -> Problem | None:
    """The problem ``rule`` finds on ``node`` (an element its path matched), if any."""
    if rule.attr is None:
        value = node.text or ""
        where = f"<{node.tag}>"
    else:
        raw = node.get(rule.attr)
        if raw is None:
            if rule.required:
                return node.sourceline, f"missing attribute '{rule.attr}' on <{node.tag}>"
            return None
        value = raw
        where = f"<{node.tag} {rule.attr}>"
    if rule.check(value):
        return None
    hint = f" ({rule.hint})" if rule.hint else ""
    return node.sourceline, f"{rule.problem} '{_show(value)}' in {where}{hint}"


@dataclass(frozen=True)
class _Plan:
    """Rules of one kind arranged for a single pass over the root's children."""

    on_root: tuple[Rule, ...]
    by_child: dict[str, tuple[Rule, ...]]
    deep: tuple[Rule, ...]
    required_children: tuple[str, ...]


@functools.cache
def _plan(kind: str, quick: bool) -> _Plan:
    rules = [r for r in RULES[kind] if r.quick or not quick]
    by_child: dict[str, list[Rule]] = {}
    for rule in rules:
        if rule.path != "." and "/" not in rule.path and "[" not in rule.path:
            by_child.setdefault(rule.path, []).append(rule)
    return _Plan(
        on_root=tuple(r for r in rules if r.path == "."),
        by_child={tag: tuple(group) for tag, group in by_child.items()},
        deep=tuple(r for r in rules if r.path != "." and r.path not in by_child),
        required_children=tuple(r.path for r in rules
                                if r.required and r.attr is None and r.path in by_child),
    )


def _own_problems(root: etree._Element, kind: str, quick: bool) -> Iterator[Problem]:
    plan = _plan(kind, quick)
    for rule in plan.on_root:
        problem = _check(root, rule)
        if problem:
            yield problem
    seen: set[str] = set()
    for child in root:
        group = plan.by_child.get(child.tag) if isinstance(child.tag, str) else None
        if not group:
            continue
        seen.add(child.tag)
        for rule in group:
            problem = _check(child, rule)
            if problem:
                yield problem
    for tag in plan.required_children:
        if tag not in seen:
            yield root.sourceline, f"missing <{tag}> element in <{root.tag}>"
    for rule in plan.deep:
        found = False
        for node in root.iterfind(rule.path):
            found = True
            problem = _check(node, rule)
            if problem:
                yield problem
        if not found and rule.required and rule.attr is None:
            yield root.sourceline, f"missing <{rule.path}> element in <{root.tag}>"


def iter_problems(root: etree._Element, kind: str, quick: bool = False) -> Iterator[Problem]:
    """Yield ``(line, problem)`` for every failed rule of ``kind`` under ``root``.

    The root tag is checked first; for ``node`` the inline objects it holds are
    checked too (``file=`` references are not followed).
    """
    expected = ROOT_TAGS[kind]
    if root.tag != expected:
        found = root.tag if isinstance(root.tag, str) else "non-element node"
        yield root.sourceline, f"expected <{expected}> root element, found <{found}>"
        return
    yield from _own_problems(root, kind, quick)
    if kind != "node":
        return
    for child in root:
        sub = _NODE_CHILDREN.get(child.tag) if isinstance(child.tag, str) else None
        if sub is None:
            continue
        if child.get("file") is None:
            yield from iter_problems(child, sub, quick)
        if sub == "pool":
            for volume in child.iterfind("volume"):
                if volume.get("file") is None:
                    yield from iter_problems(volume, "volume", quick)
