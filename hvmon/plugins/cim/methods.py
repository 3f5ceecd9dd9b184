"""Extrinsic methods: lifecycle and configuration through the agent's connection.

Every change goes through ``model.connection``, the daemon's central gate: a
read-only agent's connection refuses it (OperationDenied), which becomes
CIM_ERR_ACCESS_DENIED. No method checks read-only itself. Core errors map
to CIM status codes in :func:`hvmon.plugins.cim.errors.from_core`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hvmon.core.errors import HvmonError
from hvmon.plugins.cim import domxml
from hvmon.plugins.cim.embedded import parse_settings, parse_settings_list
from hvmon.plugins.cim.errors import CIMError, Status, from_core
from hvmon.plugins.cim.objects import ClassDecl, InstancePath, QualifierDecl
from hvmon.plugins.cim.xmlparse import Request

if TYPE_CHECKING:
    from hvmon.core.api import Domain
    from hvmon.plugins.cim.model import View

OK = 0
#: RequestStateChange values -> what is done
STATE_ACTIONS = {2: "enable", 3: "destroy", 4: "shutdown", 9: "suspend", 10: "reboot",
                 11: "reset"}

Outputs = dict[str, Any]
Handler = Callable[["Methods", "View", Any, dict[str, Any]], tuple[int, Outputs]]


class Methods:
    """The method table; ``refresh()`` is called after every change (a new snapshot)."""

    def __init__(self, qualifiers: Mapping[str, QualifierDecl],
                 refresh: Callable[[], object]) -> None:
        self.qualifiers = qualifiers
        self.refresh = refresh

    def __call__(self, view: View, req: Request, cls: ClassDecl, target: Any,
                 params: dict[str, Any]) -> tuple[int, Outputs]:
        prefix = view.model.prefix
        short = cls.name[len(prefix):] if cls.name.startswith(prefix) else cls.name
        handler = _TABLE.get((short.lower(), req.name.lower()))
        if handler is None:
            raise CIMError(Status.METHOD_NOT_AVAILABLE,
                           f"{cls.name}.{req.name} is not available in this version")
        try:
            result = handler(self, view, target, params)
        except HvmonError as exc:
            raise from_core(exc) from None
        self.refresh()
        return result

    # --- helpers ------------------------------------------------------------------
    def domain(self, view: View, name: Any, what: str) -> Domain:
        if not isinstance(name, str) or not name:
            raise CIMError(Status.INVALID_PARAMETER, f"{what}: no domain named")
        try:
            return view.model.connection.lookup_domain_by_name(name)
        except HvmonError as exc:
            raise CIMError(Status.NOT_FOUND, f"{what}: {exc}") from None


def _system_name(view: View, ref: Any, what: str) -> str:
    if not isinstance(ref, InstancePath) or \
            ref.classname.lower() != view.model.cls("ComputerSystem").lower():
        raise CIMError(Status.INVALID_PARAMETER,
                       f"{what} must name a {view.model.cls('ComputerSystem')}")
    return str(ref.key("Name") or "")


def _vssd_domain(view: View, ref: Any, what: str) -> str:
    instance_id = ref.key("InstanceID") if isinstance(ref, InstancePath) else ref
    head = f"{view.model.system_type}:"
    if not isinstance(instance_id, str) or not instance_id.startswith(head):
        raise CIMError(Status.INVALID_PARAMETER, f"{what}: InstanceID must be '{head}<name>'")
    return instance_id[len(head):]


# --- ComputerSystem ---------------------------------------------------------------

def request_state_change(m: Methods, view: View, target: Any,
                         params: dict[str, Any]) -> tuple[int, Outputs]:
    if not isinstance(target, InstancePath):
        raise CIMError(Status.INVALID_PARAMETER, "RequestStateChange is called on an instance")
    requested = params.get("RequestedState")
    if requested is None:
        raise CIMError(Status.INVALID_PARAMETER, "RequestedState is required")
    action = STATE_ACTIONS.get(requested)
    if action is None:
        raise CIMError(Status.NOT_SUPPORTED, f"RequestedState {requested} is not supported "
                                             "(2, 3, 4, 9, 10, 11 are)")
    dom = m.domain(view, target.key("Name"), "RequestStateChange")
    if action == "enable":
        state, _reason = dom.state()
        if state.name == "PAUSED":
            dom.resume()
        else:
            dom.create()
    elif action == "destroy":
        dom.destroy()
    elif action == "shutdown":
        dom.shutdown()
    elif action == "suspend":
        dom.suspend()
    elif action == "reboot":
        dom.reboot()
    else:  # reset: a hard power cycle, keeping a persistent definition
        if dom.is_persistent():
            dom.destroy()
            dom.create()
        else:
            dom.reboot()
    view.model.requested[dom.uuid] = requested
    return OK, {}


# --- VirtualSystemManagementService ------------------------------------------------

def define_system(m: Methods, view: View, target: Any,
                  params: dict[str, Any]) -> tuple[int, Outputs]:
    vssd = parse_settings(params.get("SystemSettings"), "SystemSettings", m.qualifiers)
    rasds = parse_settings_list(params.get("ResourceSettings"), "ResourceSettings",
                                m.qualifiers)
    domain_type = "test" if view.snap.host.driver == "test" else "kvm"
    xml = domxml.domain_xml(vssd, rasds, domain_type)
    name = vssd.text("VirtualSystemIdentifier") or vssd.text("ElementName")
    if view.snap.domain(name or "") is not None or _exists(view, name or ""):
        raise CIMError(Status.ALREADY_EXISTS, f"a virtual system named {name!r:.60} exists "
                                              "already (DefineSystem defines new systems)")
    dom = view.model.connection.define_domain_xml(xml)
    return OK, {"ResultingSystem": view.cs_path(dom.name)}


def _exists(view: View, name: str) -> bool:
    try:
        view.model.connection.lookup_domain_by_name(name)
    except HvmonError:
        return False
    return True


def destroy_system(m: Methods, view: View, target: Any,
                   params: dict[str, Any]) -> tuple[int, Outputs]:
    name = _system_name(view, params.get("AffectedSystem"), "AffectedSystem")
    dom = m.domain(view, name, "DestroySystem")
    if dom.is_active():
        dom.destroy()
    if dom.is_persistent():
        dom.undefine()
    view.model.forget(dom.uuid)
    return OK, {}


def modify_system_settings(m: Methods, view: View, target: Any,
                           params: dict[str, Any]) -> tuple[int, Outputs]:
    vssd = parse_settings(params.get("SystemSettings"), "SystemSettings", m.qualifiers)
    name = _vssd_domain(view, vssd.text("InstanceID"), "SystemSettings")
    dom = m.domain(view, name, "ModifySystemSettings")
    autostart = vssd.number("AutoStart", "uint16")
    action = vssd.number("AutomaticStartupAction", "uint16")
    if autostart is None and action is None:
        raise CIMError(Status.INVALID_PARAMETER, "SystemSettings: nothing to modify (AutoStart "
                                                 "or AutomaticStartupAction)")
    enable = bool(autostart) if autostart is not None else action in (3, 4)
    dom.set_autostart(enable)
    return OK, {}


def add_resource_settings(m: Methods, view: View, target: Any,
                          params: dict[str, Any]) -> tuple[int, Outputs]:
    name = _vssd_domain(view, params.get("AffectedConfiguration"), "AffectedConfiguration")
    dom = m.domain(view, name, "AddResourceSettings")
    rasds = parse_settings_list(params.get("ResourceSettings"), "ResourceSettings",
                                m.qualifiers)
    if not rasds:
        raise CIMError(Status.INVALID_PARAMETER, "ResourceSettings: nothing to add")
    xmls = [(r, domxml.device_xml(r)) for r in rasds]  # every one checked before any change
    results = []
    for rasd, xml in xmls:
        dom.attach_device(xml)
        if domxml.kind(rasd) == "disk":
            results.append(view.setting_path("DiskResourceAllocationSettingData",
                                             f"{name}/{rasd.text('VirtualDevice')}"))
        else:
            mac = rasd.text("Address")
            results.append(view.setting_path("NetResourceAllocationSettingData",
                                             f"{name}/{(mac or '').lower()}"))
    view.model.forget(dom.uuid)
    return OK, {"ResultingResourceSettings": results}


def modify_resource_settings(m: Methods, view: View, target: Any,
                             params: dict[str, Any]) -> tuple[int, Outputs]:
    rasds = parse_settings_list(params.get("ResourceSettings"), "ResourceSettings",
                                m.qualifiers)
    plans = []
    for rasd in rasds:
        instance_id = rasd.text("InstanceID") or ""
        name, _, dev = instance_id.rpartition("/")
        quantity = rasd.number("VirtualQuantity")
        if dev not in ("proc", "mem") or quantity is None:
            raise CIMError(Status.NOT_SUPPORTED, f"{rasd.where}: only the VirtualQuantity of "
                                                 "<name>/proc and <name>/mem can be modified")
        plans.append((m.domain(view, name, "ModifyResourceSettings"), dev, quantity, rasd))
    results = []
    for dom, dev, quantity, rasd in plans:
        if dev == "proc":
            dom.set_vcpus(quantity)
            cls = "ProcResourceAllocationSettingData"
        else:
            dom.set_memory(quantity)
            cls = "MemResourceAllocationSettingData"
        results.append(view.setting_path(cls, rasd.text("InstanceID") or ""))
    return OK, {"ResultingResourceSettings": results}


def remove_resource_settings(m: Methods, view: View, target: Any,
                             params: dict[str, Any]) -> tuple[int, Outputs]:
    refs = params.get("ResourceSettings") or []
    plans = []
    for ref in refs:
        instance_id = ref.key("InstanceID") if isinstance(ref, InstancePath) else None
        if not isinstance(instance_id, str) or "/" not in instance_id:
            raise CIMError(Status.INVALID_PARAMETER, "ResourceSettings must name RASDs "
                                                     "(InstanceID <name>/<device>)")
        name, _, dev = instance_id.rpartition("/")
        cls = ref.classname.lower()
        if cls.endswith("diskresourceallocationsettingdata"):
            xml = f"<disk><target dev='{_attr(dev)}'/></disk>"
        elif cls.endswith("netresourceallocationsettingdata"):
            xml = f"<interface><mac address='{_attr(dev)}'/></interface>"
        else:
            raise CIMError(Status.INVALID_PARAMETER, f"{ref.classname} settings cannot be "
                                                     "removed (only disks and interfaces)")
        plans.append((m.domain(view, name, "RemoveResourceSettings"), xml))
    if not plans:
        raise CIMError(Status.INVALID_PARAMETER, "ResourceSettings: nothing to remove")
    for dom, xml in plans:
        dom.detach_device(xml)
        view.model.forget(dom.uuid)
    return OK, {}


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace("'", "&apos;").replace("<", "&lt;")


# --- ResourcePoolConfigurationService ----------------------------------------------

def _pool_name(ref: Any) -> str:
    instance_id = ref.key("InstanceID") if isinstance(ref, InstancePath) else None
    if not isinstance(instance_id, str) or not instance_id.startswith("DiskPool/"):
        raise CIMError(Status.INVALID_PARAMETER, "Pool must name a DiskPool "
                                                 "(InstanceID DiskPool/<pool>)")
    return instance_id.split("/", 1)[1]


def create_resource_in_pool(m: Methods, view: View, target: Any,
                            params: dict[str, Any]) -> tuple[int, Outputs]:
    pool_name = _pool_name(params.get("Pool"))
    settings = parse_settings(params.get("Settings"), "Settings", m.qualifiers)
    xml = domxml.volume_xml(settings)
    pool = view.model.connection.lookup_pool_by_name(pool_name)
    vol = pool.create_volume_xml(xml)
    return OK, {"Resource": view.setting_path("StorageVolumeResourceAllocationSettingData",
                                              f"{pool_name}/{vol.name}")}


def delete_resource_in_pool(m: Methods, view: View, target: Any,
                            params: dict[str, Any]) -> tuple[int, Outputs]:
    pool_name = _pool_name(params.get("Pool"))
    ref = params.get("Resource")
    instance_id = ref.key("InstanceID") if isinstance(ref, InstancePath) else None
    if not isinstance(instance_id, str) or not instance_id.startswith(pool_name + "/"):
        raise CIMError(Status.INVALID_PARAMETER, f"Resource must name a volume of {pool_name} "
                                                 f"(InstanceID {pool_name}/<volume>)")
    pool = view.model.connection.lookup_pool_by_name(pool_name)
    pool.lookup_volume_by_name(instance_id.split("/", 1)[1]).delete()
    return OK, {}


# --- VirtualSystemMigrationService ------------------------------------------------

#: CIM_VirtualSystemMigrationSettingData.MigrationType -> live?
MIGRATION_TYPES = {2: True, 3: False}


def migrate_virtual_system_to_host(m: Methods, view: View, target: Any,
                                   params: dict[str, Any]) -> tuple[int, Outputs]:
    """Migrate synchronously: 0 when the system runs on ``DestinationHost`` (a URI)."""
    name = _system_name(view, params.get("ComputerSystem"), "ComputerSystem")
    dest = params.get("DestinationHost")
    if not isinstance(dest, str) or "://" not in dest:
        raise CIMError(Status.INVALID_PARAMETER, "DestinationHost: expected the destination's "
                                                 "connection URI (e.g. qemu+unix:///system"
                                                 "?socket=...)")
    live = True
    if params.get("MigrationSettingData") is not None:
        settings = parse_settings(params["MigrationSettingData"], "MigrationSettingData",
                                  m.qualifiers)
        kind = settings.number("MigrationType", "uint16")
        if kind is not None and kind not in MIGRATION_TYPES:
            raise CIMError(Status.NOT_SUPPORTED, f"MigrationType {kind} is not supported "
                                                 "(2 live, 3 paused copy)")
        live = MIGRATION_TYPES.get(kind, True) if kind is not None else True
    dom = m.domain(view, name, "MigrateVirtualSystemToHost")
    dom.migrate(dest, live=live, persistent=dom.is_persistent(),
                undefine_source=dom.is_persistent())
    view.model.forget(dom.uuid)
    return OK, {}


_TABLE: dict[tuple[str, str], Handler] = {
    ("computersystem", "requeststatechange"): request_state_change,
    ("virtualsystemmanagementservice", "definesystem"): define_system,
    ("virtualsystemmanagementservice", "destroysystem"): destroy_system,
    ("virtualsystemmanagementservice", "modifysystemsettings"): modify_system_settings,
    ("virtualsystemmanagementservice", "addresourcesettings"): add_resource_settings,
    ("virtualsystemmanagementservice", "modifyresourcesettings"): modify_resource_settings,
    ("virtualsystemmanagementservice", "removeresourcesettings"): remove_resource_settings,
    ("resourcepoolconfigurationservice", "createresourceinpool"): create_resource_in_pool,
    ("resourcepoolconfigurationservice", "deleteresourceinpool"): delete_resource_in_pool,
    ("virtualsystemmigrationservice", "migratevirtualsystemtohost"):
        migrate_virtual_system_to_host,
}
