"""The QEMU driver's networks: definitions on disk, which are active, start and stop.

Files: ``etc/qemu/networks/NAME.xml`` (definitions), ``etc/qemu/networks/autostart/NAME``,
``run/qemu/networks/NAME.xml`` (the live definition of an active network) beside
dnsmasq's files. Opening the driver again finds active networks by their live
file and their bridge; a live file whose bridge is gone is cleaned up.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from hvmon.core.drivers.base import Listing, NetworkRef
from hvmon.core.drivers.identity import check_identity, find_named
from hvmon.core.drivers.qemu.networks.backend import Backend
from hvmon.core.drivers.qemu.networks.config import NetPlan, check_conflicts, plan
from hvmon.core.drivers.qemu.networks.runner import Runner
from hvmon.core.errors import (
    AlreadyExists,
    HvmonError,
    InvalidArgument,
    NoSuchNetwork,
    OperationInvalid,
)
from hvmon.core.types import DhcpLease
from hvmon.core.xml import defaults, schema
from hvmon.core.xml.network import Network as NetworkXML

log = logging.getLogger("hvmon.qemu.network")

#: the default network's first choice of subnet (libvirt's)
DEFAULT_SUBNET = ipaddress.IPv4Network("192.168.122.0/24")


@dataclass
class NetObj:
    uuid: str
    name: str
    config: NetworkXML | None
    live: NetworkXML
    active: bool = False
    autostart: bool = False

    @property
    def persistent(self) -> bool:
        return self.config is not None

    def listing(self) -> Listing:
        return Listing(NetworkRef(self.uuid, self.name), self.active, self.persistent,
                       self.autostart)


class NetworkStore:
    """Every network of one driver root, under one lock."""

    def __init__(self, etc: Path, run: Path, runner: Runner) -> None:
        self.etc, self.autostart_dir, self.run = etc, etc / "autostart", run
        self.runner = runner
        self.backend = Backend(runner, run)
        self.lock = threading.RLock()
        self.nets: dict[str, NetObj] = {}
        for path in (self.etc, self.autostart_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.run.mkdir(parents=True, exist_ok=True, mode=0o700)

    # --- loading ------------------------------------------------------------------
    def load(self) -> None:
        """Read definitions and live files; reattach active networks, clean up dead ones."""
        with self.lock:
            for path in sorted(self.etc.glob("*.xml")):
                try:
                    net = NetworkXML.from_xml(path.read_text())
                except (OSError, HvmonError) as exc:
                    log.error("ignoring network definition %s: %s", path, exc)
                    continue
                obj = NetObj(net.uuid or "", net.name or path.stem, net, net)
                obj.autostart = (self.autostart_dir / obj.name).exists()
                self.nets[obj.uuid] = obj
            for path in sorted(self.run.glob("*.xml")):
                try:
                    live = NetworkXML.from_xml(path.read_text())
                    live_plan = plan(live)
                except (OSError, HvmonError) as exc:
                    log.error("ignoring network status %s: %s", path, exc)
                    continue
                if not self.backend.running(live_plan):
                    log.warning("network '%s': its bridge is gone; cleaning up", live.name)
                    self.backend.stop(live_plan)
                    path.unlink(missing_ok=True)
                    continue
                obj = self.nets.get(live.uuid or "")
                if obj is None:
                    obj = NetObj(live.uuid or "", live.name or path.stem, None, live)
                    self.nets[obj.uuid] = obj
                obj.live, obj.active = live, True

    def autostart_all(self) -> list[str]:
        """Start every inactive autostart network; the errors (one line each), logged."""
        problems = []
        with self.lock:
            for obj in sorted(self.nets.values(), key=lambda n: n.name):
                if obj.autostart and not obj.active:
                    try:
                        self._start(obj)
                    except HvmonError as exc:
                        problems.append(f"network '{obj.name}': {exc}")
                        log.error("autostart of network '%s' failed: %s", obj.name, exc)
        return problems

    # --- lookups ------------------------------------------------------------------
    def get(self, uuid: str) -> NetObj:
        obj = self.nets.get(uuid)
        if obj is None:
            raise NoSuchNetwork(f"network not found: no network with matching uuid '{uuid}'")
        return obj

    def by_name(self, name: str) -> NetObj:
        obj = find_named(self.nets.values(), "name", name)
        if obj is None:
            raise NoSuchNetwork(f"network not found: no network with matching name '{name}'")
        return obj

    def listings(self) -> list[Listing]:
        with self.lock:
            return [obj.listing() for obj in self.nets.values()]

    def lookup(self, by: str, value: str) -> NetworkRef:
        if by not in ("name", "uuid"):
            raise InvalidArgument(f"cannot look up a network by {by}")
        with self.lock:
            obj = find_named(self.nets.values(), by, value)
            if obj is not None:
                return NetworkRef(obj.uuid, obj.name)
        raise NoSuchNetwork(f"network not found: no network with matching {by} '{value}'")

    # --- definitions --------------------------------------------------------------
    def parse(self, xml: str) -> tuple[NetworkXML, NetPlan]:
        """Parse, validate, fill defaults and check against the other networks."""
        net = NetworkXML.from_xml(xml)
        schema.validate(net.element, "network")
        existing = find_named(self.nets.values(), "name", net.name or "")
        if not net.uuid and existing is not None:
            net.uuid = existing.uuid  # a redefinition by name keeps its identity
        used = {bridge for obj in self.nets.values() if obj.uuid != existing_uuid(existing)
                for bridge in {obj.live.bridge, obj.config.bridge if obj.config else None}
                if bridge}
        if existing is not None and existing.live.bridge and not net.bridge and \
                net.forward_mode in (None, "nat", "route", "open"):
            net.ensure("bridge").set("name", existing.live.bridge)
        defaults.fill_network(net, used_bridges=used)
        checked = plan(net)
        check_conflicts(checked, self._plans(exclude=net.uuid or ""))
        return net, checked

    def _plans(self, exclude: str = "") -> list[NetPlan]:
        plans = []
        for obj in self.nets.values():
            if obj.uuid == exclude:
                continue
            for doc in {id(d): d for d in (obj.config, obj.live) if d is not None}.values():
                try:
                    plans.append(plan(doc))
                except HvmonError:
                    continue
        return plans

    def define(self, xml: str) -> NetworkRef:
        with self.lock:
            net, _ = self.parse(xml)
            obj = check_identity(self.nets.values(), "network", net.name or "", net.uuid or "")
            if obj is None:
                obj = NetObj(net.uuid or "", net.name or "", net, net)
                self.nets[obj.uuid] = obj
            else:
                obj.config = net
                if not obj.active:
                    obj.live = net
            (self.etc / f"{obj.name}.xml").write_text(net.to_xml())
            return NetworkRef(obj.uuid, obj.name)

    def create(self, xml: str) -> NetworkRef:
        with self.lock:
            net, _ = self.parse(xml)
            if check_identity(self.nets.values(), "network", net.name or "",
                              net.uuid or "") is not None:
                raise AlreadyExists(f"network '{net.name}' already exists")
            obj = NetObj(net.uuid or "", net.name or "", None, net)
            self._start(obj)
            self.nets[obj.uuid] = obj
            return NetworkRef(obj.uuid, obj.name)

    # --- actions ------------------------------------------------------------------
    def action(self, uuid: str, action: str) -> None:
        with self.lock:
            obj = self.get(uuid)
            if action == "start":
                if obj.active:
                    raise OperationInvalid(f"network '{obj.name}' is already active")
                self._start(obj)
            elif action == "stop":
                if not obj.active:
                    raise OperationInvalid(f"network '{obj.name}' is not active")
                self._stop(obj)
            elif action == "undefine":
                if not obj.persistent:
                    raise OperationInvalid(f"cannot undefine transient network '{obj.name}'")
                (self.etc / f"{obj.name}.xml").unlink(missing_ok=True)
                (self.autostart_dir / obj.name).unlink(missing_ok=True)
                obj.config, obj.autostart = None, False
                if not obj.active:
                    self.nets.pop(obj.uuid, None)
            else:
                raise InvalidArgument(f"unknown network action '{action}'")

    def _start(self, obj: NetObj) -> None:
        source = obj.config if obj.config is not None else obj.live
        live = source.copy()
        checked = plan(live)
        active = [plan(o.live) for o in self.nets.values() if o.active and o.uuid != obj.uuid]
        check_conflicts(checked, active)
        self.backend.start(checked, active)
        obj.live, obj.active = live, True
        (self.run / f"{obj.name}.xml").write_text(live.to_xml())

    def _stop(self, obj: NetObj) -> None:
        self.backend.stop(plan(obj.live))
        (self.run / f"{obj.name}.xml").unlink(missing_ok=True)
        obj.active = False
        if obj.config is None:
            self.nets.pop(obj.uuid, None)
        else:
            obj.live = obj.config

    def xml(self, uuid: str, inactive: bool = False) -> str:
        with self.lock:
            obj = self.get(uuid)
            source = obj.config if inactive and obj.config is not None else obj.live
            return source.to_xml()

    def set_autostart(self, uuid: str, autostart: bool) -> None:
        with self.lock:
            obj = self.get(uuid)
            if not obj.persistent:
                raise OperationInvalid(f"cannot set autostart for transient network "
                                       f"'{obj.name}'")
            marker = self.autostart_dir / obj.name
            if autostart:
                marker.touch()
            else:
                marker.unlink(missing_ok=True)
            obj.autostart = autostart

    def leases(self, uuid: str, mac: str | None = None) -> list[DhcpLease]:
        with self.lock:
            obj = self.get(uuid)
            if not obj.active:
                raise OperationInvalid(f"network '{obj.name}' is not active")
            live_plan = plan(obj.live)
        if not live_plan.needs_dnsmasq:
            return []
        found = self.backend.dnsmasq(obj.name).read_leases(live_plan.bridge, live_plan)
        if mac:
            found = [lease for lease in found if lease.mac == mac.lower()]
        return found

    def active_plan(self, name: str) -> NetPlan:
        """The live plan of active network ``name`` (for guest NICs)."""
        with self.lock:
            obj = self.by_name(name)
            if not obj.active:
                raise OperationInvalid(f"network '{name}' is not active")
            return plan(obj.live)

    def stop_all(self) -> None:
        """Stop every active network (tests and teardown; a daemon leaves them up)."""
        with self.lock:
            for obj in list(self.nets.values()):
                if obj.active:
                    self._stop(obj)

    # --- the default network --------------------------------------------------------
    def ensure_default(self) -> str | None:
        """Define (and mark autostart) network ``default`` unless there is one; its subnet.

        192.168.122.0/24 unless that collides with a route or another network, then
        the next free /24 (192.168.123.0/24, ...).
        """
        with self.lock:
            if find_named(self.nets.values(), "name", "default") is not None:
                return None
            routes = [ipaddress.ip_network(dst, strict=False)
                      for dst, _ in self.backend.links.routes() if ":" not in dst]
            taken = [net for net in routes if net.prefixlen > 0]
            taken += [ip.network for p in self._plans() for ip in p.ips
                      if ip.interface.version == 4]
            subnet = DEFAULT_SUBNET
            while any(subnet.overlaps(t) for t in taken):
                subnet = ipaddress.IPv4Network((int(subnet.network_address) + 256, 24))
                if not subnet.subnet_of(ipaddress.IPv4Network("192.168.0.0/16")):
                    raise InvalidArgument("no free /24 in 192.168.0.0/16 for the default "
                                          "network")
            hosts = list(subnet.hosts())
            ref = self.define(default_network_xml(str(hosts[0]), str(hosts[1]),
                                                  str(hosts[-1])))
            self.set_autostart(ref.uuid, True)
            return str(subnet)


def existing_uuid(obj: NetObj | None) -> str | None:
    return obj.uuid if obj is not None else None


def default_network_xml(gateway: str, start: str, end: str) -> str:
    """libvirt's ``default`` network on the given /24."""
    return (f"<network><name>default</name><forward mode='nat'/>"
            f"<bridge stp='on' delay='0'/>"
            f"<ip address='{gateway}' netmask='255.255.255.0'><dhcp>"
            f"<range start='{start}' end='{end}'/></dhcp></ip></network>")
