"""Instance providers: one per served class, built from the snapshot (and domain XML).

A provider yields :class:`Instance` objects; per-domain providers also answer
for one domain (``for_domain``) so that GetInstance and association traversal
from one object stay cheap on hosts with thousands of domains.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hvmon.plugins.cim.objects import Instance, InstancePath
from hvmon.plugins.cim.schema import INTEROP, VIRT

if TYPE_CHECKING:
    from hvmon.core.snapshot.model import DomainSnapshot
    from hvmon.plugins.cim.model import View

#: RASD ResourceType values (DSP1041)
RT_PROCESSOR, RT_MEMORY, RT_ETHERNET, RT_DISK, RT_DVD, RT_FLOPPY, RT_LOGICAL_DISK = (
    3, 4, 10, 17, 16, 14, 31)
EMULATED = {"disk": 0, "cdrom": 1, "floppy": 2}
DISK_TYPES = {"disk": RT_DISK, "cdrom": RT_DVD, "floppy": RT_FLOPPY}

#: (InstanceID, organization, name, version) of the profiles served (DMTF = 2)
PROFILES = (
    ("CIM:DSP1033-ProfileRegistration-1.0.0", "Profile Registration", "1.0.0"),
    ("CIM:DSP1042-SystemVirtualization-1.0.0", "System Virtualization", "1.0.0"),
    ("CIM:DSP1057-VirtualSystem-1.0.0", "Virtual System", "1.0.0"),
    ("CIM:DSP1041-ResourceAllocation-1.1.0", "Resource Allocation", "1.1.0"),
    ("CIM:DSP1044-ProcessorResourceVirtualization-1.0.0", "Processor Resource Virtualization",
     "1.0.0"),
    ("CIM:DSP1045-MemoryResourceVirtualization-1.0.0", "Memory Resource Virtualization",
     "1.0.0"),
)
SYSTEM_VIRTUALIZATION = PROFILES[1][0]
VIRTUAL_SYSTEM = PROFILES[2][0]

SERVICES = (("VirtualSystemManagementService", "Management Service"),
            ("ResourcePoolConfigurationService", "RPCS"),
            ("VirtualSystemMigrationService", "MigrationService"))


def domain_of(path: InstancePath, view: View) -> str | None:
    """The domain a per-domain object's path names (None: not a per-domain path)."""
    name = path.key("SystemName")
    if isinstance(name, str) and path.key("DeviceID") is not None:
        return name
    if path.key("CreationClassName") == view.model.cls("ComputerSystem"):
        found = path.key("Name")
        return found if isinstance(found, str) else None
    instance_id = path.key("InstanceID")
    if isinstance(instance_id, str):
        head = f"{view.model.system_type}:"
        if instance_id.startswith(head):
            return instance_id[len(head):]
        if "/" in instance_id and not instance_id.split("/", 1)[0].endswith("Pool"):
            return instance_id.rsplit("/", 1)[0]
    return None


@dataclass
class Provider:
    """Instances of one concrete class in some namespaces."""

    name: str  # without the prefix
    build: Callable[[View], Iterator[Instance]]
    namespaces: tuple[str, ...] = (VIRT,)
    per_domain: Callable[[View, DomainSnapshot], Iterator[Instance]] | None = None

    def instances(self, view: View) -> Iterator[Instance]:
        return self.build(view)

    def candidates(self, view: View, path: InstancePath) -> Iterator[Instance]:
        """Instances that may be ``path`` or refer to it (all, unless one domain is named)."""
        if self.per_domain is not None:
            name = domain_of(path, view)
            if name is not None:
                dom = view.domain(name)
                if dom is None or dom.name != name:
                    return iter(())
                return self.per_domain(view, dom)
        return self.build(view)

    def get(self, view: View, path: InstancePath) -> Instance | None:
        wanted = path.identity()
        return next((i for i in self.candidates(view, path) if i.path.identity() == wanted),
                    None)


def _domains(fn: Callable[[View, DomainSnapshot], Iterator[Instance]]
             ) -> Callable[[View], Iterator[Instance]]:
    def build(view: View) -> Iterator[Instance]:
        for dom in view.snap.domains:
            yield from fn(view, dom)
    return build


def _inst(path: InstancePath, values: dict[str, Any]) -> Instance:
    values.update(path.keys)
    return Instance(path.classname, path, values)


# --- systems and settings ------------------------------------------------------

def computer_system(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    health = 0 if dom.stale else 5
    yield _inst(view.cs_path(dom.name), {
        "ElementName": dom.name, "Caption": "Virtual System", "UUID": dom.uuid,
        "Description": f"Virtual System ({dom.state_label})",
        "EnabledState": view.enabled_state(dom), "RequestedState": view.requested_state(dom),
        "EnabledDefault": 2, "HealthState": health, "OperationalStatus": [2 if health else 0],
        "StatusDescriptions": [dom.error] if dom.error else None, "Dedicated": [0],
        "NameFormat": "VMNAME"})


def host_system(view: View) -> Iterator[Instance]:
    host = view.snap.host
    yield _inst(view.host_path(), {
        "ElementName": host.hostname, "Caption": "Host System",
        "Description": f"Virtualization host ({host.driver}, {host.uri})",
        "EnabledState": 2, "RequestedState": 12, "EnabledDefault": 2, "HealthState": 5,
        "OperationalStatus": [2], "Dedicated": [0], "NameFormat": "IP"})


def vssd(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    yield _inst(view.setting_path("VirtualSystemSettingData", view.vssd_id(dom.name)), {
        "ElementName": dom.name, "Caption": "Virtual System", "VirtualSystemIdentifier": dom.name,
        "VirtualSystemType": view.model.system_type, "UUID": dom.uuid,
        "AutoStart": 1 if dom.autostart else 0,
        "AutomaticStartupAction": 3 if dom.autostart else 2,
        "OSType": dom.os_type, "Arch": dom.arch or None, "Machine": dom.machine or None})


def proc_rasd(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    yield _inst(view.setting_path("ProcResourceAllocationSettingData", f"{dom.name}/proc"), {
        "ElementName": "proc", "ResourceType": RT_PROCESSOR, "VirtualQuantity": dom.vcpus,
        "Limit": dom.max_vcpus, "AllocationUnits": "Processors",
        "PoolID": "ProcessorPool/0"})


def mem_rasd(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    yield _inst(view.setting_path("MemResourceAllocationSettingData", f"{dom.name}/mem"), {
        "ElementName": "mem", "ResourceType": RT_MEMORY, "VirtualQuantity": dom.memory_kib,
        "Limit": dom.max_memory_kib, "AllocationUnits": "KiloBytes", "PoolID": "MemoryPool/0"})


def disk_rasd(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    for disk in view.devices(dom).disks:
        pool = view.disk_pool(disk)
        yield _inst(view.setting_path("DiskResourceAllocationSettingData",
                                      f"{dom.name}/{disk.target}"), {
            "ElementName": disk.target, "ResourceType": DISK_TYPES.get(disk.device, RT_DISK),
            "VirtualDevice": disk.target, "Address": disk.path or None,
            "HostResource": [disk.path] if disk.path else None, "BusType": disk.bus or None,
            "EmulatedType": EMULATED.get(disk.device, 0), "DriverName": disk.driver_name or None,
            "DriverType": disk.driver_type or None, "readonly": disk.readonly,
            "PoolID": f"DiskPool/{pool}" if pool else None, "AllocationUnits": "Bytes"})


def net_rasd(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    for nic in view.devices(dom).nics:
        pool = f"NetworkPool/{nic.source}" if nic.type == "network" and nic.source else None
        yield _inst(view.setting_path("NetResourceAllocationSettingData",
                                      f"{dom.name}/{nic.mac}"), {
            "ElementName": nic.mac, "ResourceType": RT_ETHERNET, "Address": nic.mac,
            "NetworkType": nic.type or None, "NetworkName": nic.source or None,
            "ResourceSubType": nic.model or None, "VirtualDevice": nic.target or None,
            "PoolID": pool})


def rasds(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    """Every RASD of a domain (for VSSDComponent)."""
    yield from proc_rasd(view, dom)
    yield from mem_rasd(view, dom)
    yield from disk_rasd(view, dom)
    yield from net_rasd(view, dom)


# --- logical devices ------------------------------------------------------------

def _device(view: View, dom: DomainSnapshot, cls: str, device_id: str,
            values: dict[str, Any]) -> Instance:
    values.setdefault("ElementName", device_id.rsplit("/", 1)[-1])
    values.update({"EnabledState": view.enabled_state(dom), "HealthState": 5,
                   "OperationalStatus": [2]})
    return _inst(view.device_path(cls, dom.name, device_id), values)


def processors(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    for index in range(max(dom.vcpus, 0)):
        yield _device(view, dom, "Processor", f"{dom.name}/{index}",
                      {"CurrentClockSpeed": view.snap.host.mhz})


def memory(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    yield _device(view, dom, "Memory", f"{dom.name}/mem",
                  {"BlockSize": 1024, "NumberOfBlocks": dom.memory_kib})


def logical_disks(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    for disk in view.devices(dom).disks:
        yield _device(view, dom, "LogicalDisk", f"{dom.name}/{disk.target}",
                      {"Name": disk.path or disk.target, "BlockSize": 512})


def network_ports(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    for nic in view.devices(dom).nics:
        yield _device(view, dom, "NetworkPort", f"{dom.name}/{nic.mac}",
                      {"PermanentAddress": nic.mac.replace(":", "").upper(),
                       "NetworkAddresses": [nic.mac]})


def devices(view: View, dom: DomainSnapshot) -> Iterator[tuple[Instance, str, str]]:
    """(device, RASD InstanceID, pool InstanceID or "") for every device of a domain."""
    for dev in processors(view, dom):
        yield dev, f"{dom.name}/proc", "ProcessorPool/0"
    for dev in memory(view, dom):
        yield dev, f"{dom.name}/mem", "MemoryPool/0"
    for disk, dev in zip(view.devices(dom).disks, logical_disks(view, dom), strict=True):
        pool = view.disk_pool(disk)
        yield dev, f"{dom.name}/{disk.target}", f"DiskPool/{pool}" if pool else ""
    for nic, dev in zip(view.devices(dom).nics, network_ports(view, dom), strict=True):
        pool = f"NetworkPool/{nic.source}" if nic.type == "network" and nic.source else ""
        yield dev, f"{dom.name}/{nic.mac}", pool


RASD_CLASS = {"proc": "ProcResourceAllocationSettingData",
              "mem": "MemResourceAllocationSettingData"}


def rasd_class(instance_id: str, dev_cls: str) -> str:
    tail = instance_id.rsplit("/", 1)[-1]
    if tail in RASD_CLASS:
        return RASD_CLASS[tail]
    return ("DiskResourceAllocationSettingData" if dev_cls.endswith("LogicalDisk")
            else "NetResourceAllocationSettingData")


# --- host: services, pools, profiles ------------------------------------------

def services(view: View) -> Iterator[Instance]:
    for cls, name in SERVICES:
        yield _inst(view.service_path(cls, name), {
            "ElementName": name, "Caption": name, "Started": True, "EnabledState": 2,
            "RequestedState": 12, "EnabledDefault": 2, "HealthState": 5,
            "OperationalStatus": [2]})


def _service(cls: str) -> Callable[[View], Iterator[Instance]]:
    def build(view: View) -> Iterator[Instance]:
        return (i for i in services(view) if i.classname == view.model.cls(cls))
    return build


def disk_pools(view: View) -> Iterator[Instance]:
    for pool in view.snap.pools:
        iid = f"DiskPool/{pool.name}"
        yield _inst(view.pool_path("DiskPool", iid), {
            "PoolID": iid, "ElementName": pool.name, "Primordial": False,
            "Capacity": pool.capacity, "Reserved": pool.allocation, "ResourceType": RT_DISK,
            "AllocationUnits": "Bytes", "Path": view.model.pool_path(pool.name) or None,
            "EnabledState": 2 if pool.active else 3, "OperationalStatus": [2],
            "HealthState": 5})


def network_pools(view: View) -> Iterator[Instance]:
    for net in view.snap.networks:
        iid = f"NetworkPool/{net.name}"
        yield _inst(view.pool_path("NetworkPool", iid), {
            "PoolID": iid, "ElementName": net.name, "Primordial": False,
            "ResourceType": RT_ETHERNET, "Bridge": net.bridge or None,
            "ForwardMode": net.forward_mode or None, "EnabledState": 2 if net.active else 3,
            "OperationalStatus": [2], "HealthState": 5})


def processor_pool(view: View) -> Iterator[Instance]:
    used = sum(d.vcpus for d in view.snap.domains if d.active)
    yield _inst(view.pool_path("ProcessorPool", "ProcessorPool/0"), {
        "PoolID": "ProcessorPool/0", "ElementName": "ProcessorPool", "Primordial": True,
        "Capacity": view.snap.host.cpus, "Reserved": used, "ResourceType": RT_PROCESSOR,
        "AllocationUnits": "Processors", "EnabledState": 2})


def memory_pool(view: View) -> Iterator[Instance]:
    used = sum(d.memory_kib for d in view.snap.domains if d.active)
    yield _inst(view.pool_path("MemoryPool", "MemoryPool/0"), {
        "PoolID": "MemoryPool/0", "ElementName": "MemoryPool", "Primordial": True,
        "Capacity": view.snap.host.memory_kib, "Reserved": used, "ResourceType": RT_MEMORY,
        "AllocationUnits": "KiloBytes", "EnabledState": 2})


def pools(view: View) -> Iterator[Instance]:
    yield from processor_pool(view)
    yield from memory_pool(view)
    yield from disk_pools(view)
    yield from network_pools(view)


def volumes(view: View) -> Iterator[Instance]:
    for vol in view.snap.volumes:
        yield _inst(view.setting_path("StorageVolumeResourceAllocationSettingData",
                                      f"{vol.pool}/{vol.name}"), {
            "ElementName": vol.name, "VolumeName": vol.name, "Path": vol.path,
            "Capacity": vol.capacity, "AllocationQuantity": vol.allocation,
            "ResourceType": RT_LOGICAL_DISK, "AllocationUnits": "Bytes",
            "PoolID": f"DiskPool/{vol.pool}", "Address": vol.path})


def profiles(view: View) -> Iterator[Instance]:
    for instance_id, name, version in PROFILES:
        yield _inst(view.profile_path(instance_id), {
            "ElementName": name, "RegisteredOrganization": 2, "RegisteredName": name,
            "RegisteredVersion": version, "AdvertiseTypes": [3]})


def object_manager_path(view: View) -> InstancePath:
    return InstancePath("CIM_ObjectManager", (
        ("SystemCreationClassName", view.model.cls("HostSystem")), ("SystemName", view.hostname),
        ("CreationClassName", "CIM_ObjectManager"), ("Name", "hvmon")), INTEROP)


def object_manager(view: View) -> Iterator[Instance]:
    """This server, for clients that look for the CIMOM (pywbem's WBEMServer)."""
    from hvmon import __version__

    yield _inst(object_manager_path(view), {
        "ElementName": "hvmon", "Description": f"hvmon CIM agent {__version__}",
        "Version": __version__, "Started": True, "EnabledState": 2, "OperationalStatus": [2]})


def namespaces(view: View) -> Iterator[Instance]:
    for name in (INTEROP, VIRT):
        path = InstancePath("CIM_Namespace", (
            ("SystemCreationClassName", view.model.cls("HostSystem")),
            ("SystemName", view.hostname), ("ObjectManagerCreationClassName", "CIM_ObjectManager"),
            ("ObjectManagerName", "hvmon"), ("CreationClassName", "CIM_Namespace"),
            ("Name", name)), INTEROP)
        yield _inst(path, {"ElementName": name})


#: RequestStateChange values served (methods.STATE_ACTIONS)
STATES_SUPPORTED = [2, 3, 4, 9, 10, 11]
#: DefineSystem, DestroySystem, AddResourceSettings, ModifySystemSettings,
#: ModifyResourceSettings, RemoveResourceSettings
SYNC_METHODS = [0, 1, 2, 3, 4, 5]
MANAGEMENT_CAPABILITIES = "ManagementCapabilities"


def state_capabilities(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    yield _inst(view.setting_path("EnabledLogicalElementCapabilities", dom.name), {
        "ElementName": dom.name, "RequestedStatesSupported": list(STATES_SUPPORTED)})


def management_capabilities(view: View) -> Iterator[Instance]:
    yield _inst(view.setting_path("VirtualSystemManagementCapabilities",
                                  MANAGEMENT_CAPABILITIES), {
        "ElementName": MANAGEMENT_CAPABILITIES,
        "VirtualSystemTypesSupported": [view.model.system_type],
        "SynchronousMethodsSupported": list(SYNC_METHODS), "AsynchronousMethodsSupported": []})


def model_providers() -> list[Provider]:
    """The providers of every non-association class hvmon serves."""
    return [
        Provider("ComputerSystem", _domains(computer_system), per_domain=computer_system),
        Provider("HostSystem", host_system),
        Provider("VirtualSystemSettingData", _domains(vssd), per_domain=vssd),
        Provider("ProcResourceAllocationSettingData", _domains(proc_rasd),
                 per_domain=proc_rasd),
        Provider("MemResourceAllocationSettingData", _domains(mem_rasd), per_domain=mem_rasd),
        Provider("DiskResourceAllocationSettingData", _domains(disk_rasd),
                 per_domain=disk_rasd),
        Provider("NetResourceAllocationSettingData", _domains(net_rasd), per_domain=net_rasd),
        Provider("Processor", _domains(processors), per_domain=processors),
        Provider("Memory", _domains(memory), per_domain=memory),
        Provider("LogicalDisk", _domains(logical_disks), per_domain=logical_disks),
        Provider("NetworkPort", _domains(network_ports), per_domain=network_ports),
        Provider("VirtualSystemManagementService", _service("VirtualSystemManagementService")),
        Provider("ResourcePoolConfigurationService",
                 _service("ResourcePoolConfigurationService")),
        Provider("VirtualSystemMigrationService", _service("VirtualSystemMigrationService")),
        Provider("DiskPool", disk_pools),
        Provider("NetworkPool", network_pools),
        Provider("ProcessorPool", processor_pool),
        Provider("MemoryPool", memory_pool),
        Provider("StorageVolumeResourceAllocationSettingData", volumes),
        Provider("EnabledLogicalElementCapabilities", _domains(state_capabilities),
                 per_domain=state_capabilities),
        Provider("VirtualSystemManagementCapabilities", management_capabilities),
        Provider("RegisteredProfile", profiles, namespaces=(INTEROP,)),
        Provider("CIM_ObjectManager", object_manager, namespaces=(INTEROP,)),
        Provider("CIM_Namespace", namespaces, namespaces=(INTEROP,)),
    ]
