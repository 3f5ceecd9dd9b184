"""The CIM model of a host: names, paths and the facts instances are built from.

:class:`Model` lives as long as the agent (prefix, host name, caches, the
states clients asked for); :class:`View` is one request's look at it over one
snapshot. Device lists come from each domain's XML (read-only calls through
the agent's connection), parsed once per snapshot generation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hvmon.core.errors import HvmonError
from hvmon.core.xml.domain import Domain as DomainXML
from hvmon.core.xml.pool import Pool as PoolXML
from hvmon.plugins.cim.objects import InstancePath
from hvmon.plugins.cim.schema import INTEROP, VIRT

if TYPE_CHECKING:
    from hvmon.core.api import Connection
    from hvmon.core.snapshot.model import DomainSnapshot, Snapshot

#: virDomainState -> CIM EnabledState (libvirt-cim's mapping)
ENABLED_STATE = {0: 0, 1: 2, 2: 2, 3: 9, 4: 4, 5: 3, 6: 3, 7: 6}
#: EnabledState "Not Applicable" for RequestedState before any request
NOT_APPLICABLE = 12


@dataclass(frozen=True)
class DiskFacts:
    target: str
    device: str
    bus: str
    path: str
    driver_name: str
    driver_type: str
    readonly: bool
    source_pool: str


@dataclass(frozen=True)
class NicFacts:
    mac: str
    type: str
    source: str
    model: str
    target: str


@dataclass(frozen=True)
class Devices:
    disks: tuple[DiskFacts, ...]
    nics: tuple[NicFacts, ...]


def parse_devices(xml: str) -> Devices:
    """The disks and interfaces of a domain's XML."""
    dom = DomainXML.from_xml(xml)
    disks = []
    for disk in dom.disks:
        if not disk.target_dev:
            continue
        src = disk.source
        disks.append(DiskFacts(disk.target_dev, disk.device or "disk", disk.target_bus or "",
                               disk.source_path, disk.driver_name or "", disk.driver_type or "",
                               disk.readonly, (src.pool or "") if src is not None else ""))
    nics = []
    for nic in dom.interfaces:
        if not nic.mac:
            continue
        src = nic.source
        source = ""
        if src is not None:
            source = src.network or src.bridge or src.dev or ""
        nics.append(NicFacts(nic.mac.lower(), nic.type or "", source, nic.model or "",
                             nic.target_dev or ""))
    return Devices(tuple(disks), tuple(nics))


class Model:
    """Long-lived model state shared by every request of one agent."""

    def __init__(self, connection: Connection, snapshot: Callable[[], Snapshot],
                 prefix: str = "KVM_") -> None:
        self.connection = connection
        self.snapshot = snapshot
        self.prefix = prefix
        self.system_type = prefix.rstrip("_")
        self.requested: dict[str, int] = {}
        self._lock = threading.Lock()
        self._devices: dict[str, Devices] = {}
        self._pool_paths: dict[str, str] = {}
        self._generation = -1

    def cls(self, name: str) -> str:
        """A prefixed class name (``ComputerSystem`` -> ``KVM_ComputerSystem``)."""
        return self.prefix + name

    def view(self, snap: Snapshot | None = None) -> View:
        snap = snap if snap is not None else self.snapshot()
        with self._lock:
            if snap.generation != self._generation:
                self._devices.clear()
                self._pool_paths.clear()
                self._generation = snap.generation
        return View(self, snap)

    def devices(self, dom: DomainSnapshot) -> Devices:
        """The domain's disks and NICs (empty when its XML cannot be read)."""
        with self._lock:
            found = self._devices.get(dom.uuid)
        if found is not None:
            return found
        try:
            xml = self.connection.lookup_domain_by_uuid(dom.uuid).xml_desc()
            found = parse_devices(xml)
        except HvmonError:
            found = Devices((), ())
        with self._lock:
            self._devices[dom.uuid] = found
        return found

    def pool_path(self, name: str) -> str:
        """A pool's target path ("" when unknown)."""
        with self._lock:
            found = self._pool_paths.get(name)
        if found is not None:
            return found
        try:
            xml = self.connection.lookup_pool_by_name(name).xml_desc()
            found = PoolXML.from_xml(xml).target_path or ""
        except HvmonError:
            found = ""
        with self._lock:
            self._pool_paths[name] = found
        return found

    def forget(self, uuid: str | None = None) -> None:
        """Drop cached device lists (after a change made through a method)."""
        with self._lock:
            if uuid is None:
                self._devices.clear()
            else:
                self._devices.pop(uuid, None)


class View:
    """One request's model: a snapshot plus the path builders."""

    def __init__(self, model: Model, snap: Snapshot) -> None:
        self.model = model
        self.snap = snap
        self.prefix = model.prefix
        self.hostname = snap.host.hostname
        self._volume_pools: dict[str, str] | None = None

    # --- paths --------------------------------------------------------------
    def cs_path(self, name: str) -> InstancePath:
        cls = self.model.cls("ComputerSystem")
        return InstancePath(cls, (("CreationClassName", cls), ("Name", name)), VIRT)

    def host_path(self) -> InstancePath:
        cls = self.model.cls("HostSystem")
        return InstancePath(cls, (("CreationClassName", cls), ("Name", self.hostname)), VIRT)

    def vssd_id(self, name: str) -> str:
        return f"{self.model.system_type}:{name}"

    def setting_path(self, cls: str, instance_id: str) -> InstancePath:
        return InstancePath(self.model.cls(cls), (("InstanceID", instance_id),), VIRT)

    def device_path(self, cls: str, domain: str, device_id: str) -> InstancePath:
        full = self.model.cls(cls)
        return InstancePath(full, (("SystemCreationClassName", self.model.cls("ComputerSystem")),
                                   ("SystemName", domain), ("CreationClassName", full),
                                   ("DeviceID", device_id)), VIRT)

    def service_path(self, cls: str, name: str) -> InstancePath:
        full = self.model.cls(cls)
        return InstancePath(full, (("SystemCreationClassName", self.model.cls("HostSystem")),
                                   ("SystemName", self.hostname), ("CreationClassName", full),
                                   ("Name", name)), VIRT)

    def pool_path(self, cls: str, instance_id: str) -> InstancePath:
        return InstancePath(self.model.cls(cls), (("InstanceID", instance_id),), VIRT)

    def profile_path(self, instance_id: str) -> InstancePath:
        return InstancePath(self.model.cls("RegisteredProfile"), (("InstanceID", instance_id),),
                            INTEROP)

    # --- facts ----------------------------------------------------------------
    def devices(self, dom: DomainSnapshot) -> Devices:
        return self.model.devices(dom)

    def enabled_state(self, dom: DomainSnapshot) -> int:
        return ENABLED_STATE.get(dom.state, 0)

    def requested_state(self, dom: DomainSnapshot) -> int:
        return self.model.requested.get(dom.uuid, NOT_APPLICABLE)

    def disk_pool(self, disk: DiskFacts) -> str:
        """The storage pool a disk's source belongs to ("" if none)."""
        if disk.source_pool:
            return disk.source_pool
        if self._volume_pools is None:
            self._volume_pools = {v.path: v.pool for v in self.snap.volumes if v.path}
        found = self._volume_pools.get(disk.path)
        if found:
            return found
        if disk.path:
            for pool in self.snap.pools:
                root = self.model.pool_path(pool.name)
                if root and disk.path.startswith(root.rstrip("/") + "/"):
                    return pool.name
        return ""

    def domain(self, name: Any) -> DomainSnapshot | None:
        return self.snap.domain(name) if isinstance(name, str) else None
