"""Association providers: the links between systems, settings, devices, pools and profiles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from hvmon.plugins.cim import providers as p
from hvmon.plugins.cim.objects import Instance, InstancePath
from hvmon.plugins.cim.providers import Provider, _domains
from hvmon.plugins.cim.schema import INTEROP, VIRT

if TYPE_CHECKING:
    from hvmon.core.snapshot.model import DomainSnapshot
    from hvmon.plugins.cim.model import View


def _link(view: View, cls: str, first: tuple[str, InstancePath],
          second: tuple[str, InstancePath]) -> Instance:
    full = view.model.cls(cls)
    path = InstancePath(full, (first, second), VIRT)
    return Instance(full, path, dict(path.keys))


def system_device(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    system = view.cs_path(dom.name)
    for dev, _rasd, _pool in p.devices(view, dom):
        yield _link(view, "SystemDevice", ("GroupComponent", system),
                    ("PartComponent", dev.path))


def vssd_component(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    vssd = view.setting_path("VirtualSystemSettingData", view.vssd_id(dom.name))
    for rasd in p.rasds(view, dom):
        yield _link(view, "VirtualSystemSettingDataComponent", ("GroupComponent", vssd),
                    ("PartComponent", rasd.path))


def settings_define_state(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    yield _link(view, "SettingsDefineState", ("ManagedElement", view.cs_path(dom.name)),
                ("SettingData", view.setting_path("VirtualSystemSettingData",
                                                  view.vssd_id(dom.name))))
    for dev, rasd_id, _pool in p.devices(view, dom):
        rasd = view.setting_path(p.rasd_class(rasd_id, dev.classname), rasd_id)
        yield _link(view, "SettingsDefineState", ("ManagedElement", dev.path),
                    ("SettingData", rasd))


_POOL_CLASS = {"ProcessorPool": "ProcessorPool", "MemoryPool": "MemoryPool",
               "DiskPool": "DiskPool", "NetworkPool": "NetworkPool"}


def allocated_from_pool(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    for dev, _rasd, pool in p.devices(view, dom):
        if not pool:
            continue
        cls = _POOL_CLASS[pool.split("/", 1)[0]]
        yield _link(view, "ElementAllocatedFromPool",
                    ("Antecedent", view.pool_path(cls, pool)), ("Dependent", dev.path))


def hosted_dependency(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    yield _link(view, "HostedDependency", ("Antecedent", view.host_path()),
                ("Dependent", view.cs_path(dom.name)))


def hosted_resource_pool(view: View) -> Iterator[Instance]:
    host = view.host_path()
    for pool in p.pools(view):
        yield _link(view, "HostedResourcePool", ("GroupComponent", host),
                    ("PartComponent", pool.path))


def hosted_service(view: View) -> Iterator[Instance]:
    host = view.host_path()
    for service in p.services(view):
        yield _link(view, "HostedService", ("Antecedent", host), ("Dependent", service.path))


def conforms_domain(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    yield _link(view, "ElementConformsToProfile",
                ("ConformantStandard", view.profile_path(p.VIRTUAL_SYSTEM)),
                ("ManagedElement", view.cs_path(dom.name)))


def conforms(view: View) -> Iterator[Instance]:
    yield _link(view, "ElementConformsToProfile",
                ("ConformantStandard", view.profile_path(p.SYSTEM_VIRTUALIZATION)),
                ("ManagedElement", view.host_path()))
    for dom in view.snap.domains:
        yield from conforms_domain(view, dom)


def domain_capabilities(view: View, dom: DomainSnapshot) -> Iterator[Instance]:
    yield _link(view, "ElementCapabilities", ("ManagedElement", view.cs_path(dom.name)),
                ("Capabilities", view.setting_path("EnabledLogicalElementCapabilities",
                                                   dom.name)))


def capabilities(view: View) -> Iterator[Instance]:
    yield _link(view, "ElementCapabilities",
                ("ManagedElement", view.service_path(*p.SERVICES[0])),
                ("Capabilities", view.setting_path("VirtualSystemManagementCapabilities",
                                                   p.MANAGEMENT_CAPABILITIES)))
    for dom in view.snap.domains:
        yield from domain_capabilities(view, dom)


def association_providers() -> list[Provider]:
    """The providers of every association class hvmon serves."""
    return [
        Provider("SystemDevice", _domains(system_device), per_domain=system_device),
        Provider("VirtualSystemSettingDataComponent", _domains(vssd_component),
                 per_domain=vssd_component),
        Provider("SettingsDefineState", _domains(settings_define_state),
                 per_domain=settings_define_state),
        Provider("ElementAllocatedFromPool", _domains(allocated_from_pool),
                 per_domain=allocated_from_pool),
        Provider("HostedDependency", _domains(hosted_dependency), per_domain=hosted_dependency),
        Provider("HostedResourcePool", hosted_resource_pool),
        Provider("HostedService", hosted_service),
        Provider("ElementCapabilities", capabilities, per_domain=domain_capabilities),
        Provider("ElementConformsToProfile", conforms, namespaces=(VIRT, INTEROP),
                 per_domain=conforms_domain),
    ]
