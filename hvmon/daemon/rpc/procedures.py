"""The procedure table: every procedure a client may call and the API rule governing it.

Procedures are named exactly like the :class:`~hvmon.core.drivers.base.Driver`
methods they run. Each maps to the :class:`~hvmon.core.access.ApiSpec` of the
public API method that makes the same driver call, so the daemon enforces
read-only mode and access policy with the core's own
:meth:`AccessGate.check` — no second rule set. A procedure that picks its
behaviour from an argument (``domain_lifecycle(uuid, action)``) maps each
accepted value to its spec; any other value, and any procedure not in the
table, is refused.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hvmon.core.access import ApiSpec
from hvmon.core.errors import InvalidArgument, Unsupported


@dataclass(frozen=True)
class Procedure:
    """One callable procedure.

    ``spec`` names the governing ApiSpec (``Class.method``); when ``by`` is
    set, the value of that argument picks the spec from ``choices`` instead.
    ``kind`` says who answers: ``driver`` (the daemon's driver), ``session``
    (the connection itself), ``snapshot`` / ``info`` (the daemon), or
    ``download`` / ``upload`` (a byte stream).
    """

    name: str
    spec: str | None = None
    by: str | None = None
    choices: Mapping[str, str] = field(default_factory=dict)
    kind: str = "driver"

    def resolve(self, arguments: Mapping[str, Any], registry: Mapping[str, ApiSpec]) -> ApiSpec:
        """The ApiSpec governing a call with these (bound) arguments."""
        if self.by is None:
            assert self.spec is not None
            return registry[self.spec]
        value = arguments.get(self.by)
        if not isinstance(value, str) or value not in self.choices:
            allowed = ", ".join(sorted(self.choices))
            raise InvalidArgument(f"{self.name}: {self.by} must be one of {allowed}, "
                                  f"not {value!r:.40}")
        return registry[self.choices[value]]


def secure_call(spec: ApiSpec, arguments: Mapping[str, Any]) -> bool:
    """Whether the call reveals secrets: always for secure specs, else by its flag."""
    if spec.secure:
        return True
    return bool(spec.secure_flag and arguments.get(spec.secure_flag))


_DOMAIN_ACTIONS = {
    "start": "Domain.create", "start_paused": "Domain.create_with_flags",
    "shutdown": "Domain.shutdown", "destroy": "Domain.destroy",
    "suspend": "Domain.suspend", "resume": "Domain.resume", "reboot": "Domain.reboot",
    "undefine": "Domain.undefine",
}
_POOL_ACTIONS = {
    "build": "StoragePool.build", "start": "StoragePool.create",
    "stop": "StoragePool.destroy", "delete": "StoragePool.delete",
    "undefine": "StoragePool.undefine", "refresh": "StoragePool.refresh",
}
_NETWORK_ACTIONS = {
    "start": "Network.create", "stop": "Network.destroy", "undefine": "Network.undefine",
}


def _entries() -> list[Procedure]:
    P = Procedure  # noqa: N806 - a table reads better short
    return [
        # the session itself (not driver calls)
        P("open", kind="session"),
        P("close", kind="session"),
        P("events_start", "Connection.domain_event_register", kind="session"),
        P("events_stop", "Connection.domain_event_deregister", kind="session"),
        # host
        P("uri", "Connection.get_uri"),
        P("hostname", "Connection.get_hostname"),
        P("node_info", "Connection.node_info"),
        P("node_free_memory", "Connection.get_free_memory"),
        P("hypervisor_version", "Connection.get_version"),
        P("capabilities_xml", "Connection.capabilities"),
        P("domain_capabilities_xml", "Connection.domain_capabilities"),
        P("compare_cpu", "Connection.compare_cpu"),
        P("find_pool_sources", "Connection.find_storage_pool_sources"),
        # network filters
        P("nwfilter_list", "Connection.list_all_nwfilters"),
        P("nwfilter_xml", "NWFilter.xml_desc"),
        P("nwfilter_define", "Connection.define_nwfilter_xml"),
        P("nwfilter_undefine", "NWFilter.undefine"),
        P("nwfilter_binding_list", "Connection.list_all_nwfilter_bindings"),
        P("nwfilter_binding_xml", "NWFilterBinding.xml_desc"),
        P("nwfilter_binding_create", "Connection.create_nwfilter_binding"),
        P("nwfilter_binding_delete", "NWFilterBinding.delete"),
        P("get_snapshot", "Connection.get_snapshot", kind="snapshot"),
        P("daemon_info", "Connection.daemon_info", kind="info"),
        # domains
        P("list_domains", "Connection.list_all_domains"),
        P("lookup_domain", by="by", choices={
            "name": "Connection.lookup_domain_by_name", "uuid": "Connection.lookup_domain_by_uuid",
            "id": "Connection.lookup_domain_by_id"}),
        P("define_domain", "Connection.define_domain_xml"),
        P("create_domain", "Connection.create_domain_xml"),
        P("domain_ref", "Domain.get_id"),
        P("domain_lifecycle", by="action", choices=_DOMAIN_ACTIONS),
        P("domain_xml", "Domain.xml_desc"),
        P("domain_info", "Domain.info"),
        P("domain_state", "Domain.state"),
        P("domain_flags", "Domain.is_active"),
        P("domain_set_autostart", "Domain.set_autostart"),
        P("domain_set_memory", "Domain.set_memory"),
        P("domain_core_dump", "Domain.core_dump"),
        P("migrate_begin", "Domain.migrate_begin"),
        P("migrate_prepare", "Connection.migrate_prepare"),
        P("migrate_perform", "Domain.migrate_perform"),
        P("migrate_finish", "Connection.migrate_finish"),
        P("migrate_confirm", "Domain.migrate_confirm"),
        P("migrate_p2p", "Domain.migrate_peer_to_peer"),
        P("migrate_tunnel_in", "Connection.migrate_tunnel_in", kind="upload"),
        P("domain_set_vcpus", "Domain.set_vcpus"),
        P("domain_attach_device", "Domain.attach_device"),
        P("domain_detach_device", "Domain.detach_device"),
        P("domain_job_info", "Domain.job_info"),
        P("domain_vcpu_info", "Domain.vcpu_info"),
        P("domain_pin_vcpu", "Domain.pin_vcpu"),
        P("domain_stats", "Connection.get_all_domain_stats"),
        P("all_domain_stats", "Connection.get_all_domain_stats"),
        # storage
        P("list_pools", "Connection.list_all_storage_pools"),
        P("lookup_pool", by="by", choices={
            "name": "Connection.lookup_pool_by_name", "uuid": "Connection.lookup_pool_by_uuid"}),
        P("define_pool", "Connection.define_pool_xml"),
        P("create_pool", "Connection.create_pool_xml"),
        P("pool_action", by="action", choices=_POOL_ACTIONS),
        P("pool_info", "StoragePool.info"),
        P("pool_xml", "StoragePool.xml_desc"),
        P("pool_flags", "StoragePool.is_active"),
        P("pool_set_autostart", "StoragePool.set_autostart"),
        P("pool_list_volumes", "StoragePool.list_volumes"),
        P("pool_create_volume", "StoragePool.create_volume_xml"),
        P("pool_clone_volume", "StoragePool.clone_volume"),
        P("lookup_volume", by="by", choices={
            "name": "StoragePool.lookup_volume_by_name", "key": "Connection.lookup_volume_by_key",
            "path": "Connection.lookup_volume_by_path"}),
        P("volume_info", "StorageVolume.info"),
        P("volume_xml", "StorageVolume.xml_desc"),
        P("volume_delete", "StorageVolume.delete"),
        P("volume_wipe", "StorageVolume.wipe"),
        P("volume_download", "StorageVolume.download", kind="download"),
        P("volume_upload", "StorageVolume.upload", kind="upload"),
        P("volume_resize", "StorageVolume.resize"),
        # networks
        P("list_networks", "Connection.list_all_networks"),
        P("lookup_network", by="by", choices={
            "name": "Connection.lookup_network_by_name",
            "uuid": "Connection.lookup_network_by_uuid"}),
        P("define_network", "Connection.define_network_xml"),
        P("create_network", "Connection.create_network_xml"),
        P("network_action", by="action", choices=_NETWORK_ACTIONS),
        P("network_xml", "Network.xml_desc"),
        P("network_flags", "Network.is_active"),
        P("network_set_autostart", "Network.set_autostart"),
        P("network_dhcp_leases", "Network.dhcp_leases"),
        # secrets
        P("list_secrets", "Connection.list_all_secrets"),
        P("lookup_secret", by="by", choices={
            "uuid": "Connection.lookup_secret_by_uuid",
            "usage": "Connection.lookup_secret_by_usage"}),
        P("define_secret", "Connection.define_secret_xml"),
        P("secret_xml", "Secret.xml_desc"),
        P("secret_set_value", "Secret.set_value"),
        P("secret_get_value", "Secret.get_value"),
        P("secret_undefine", "Secret.undefine"),
    ]


@functools.cache
def procedure_table() -> Mapping[str, Procedure]:
    """Every procedure by name (built once, read-only)."""
    return types.MappingProxyType({p.name: p for p in _entries()})


def lookup(name: Any) -> Procedure:
    """The procedure called ``name``; anything else is refused (default deny)."""
    if not isinstance(name, str):
        raise InvalidArgument("a call needs a procedure name")
    proc = procedure_table().get(name)
    if proc is None:
        raise Unsupported(f"unknown procedure '{name:.60}'")
    return proc
