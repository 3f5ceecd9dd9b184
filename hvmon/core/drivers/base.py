"""The interface every driver implements (test, qemu, remote).

The public facade in :mod:`hvmon.core.api` calls these methods after the access
gate has approved the call; drivers never check read-only themselves. Objects
are named by small frozen refs. Every method a driver does not implement raises
:class:`Unsupported` with the operation's name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from hvmon.core import stats as stats_mod
from hvmon.core.errors import HvmonError, Unsupported
from hvmon.core.events import EventBus
from hvmon.core.types import (
    DhcpLease,
    DomainInfo,
    DomainState,
    JobInfo,
    NodeInfo,
    PoolInfo,
    VcpuInfo,
    VolumeInfo,
)

if TYPE_CHECKING:
    from hvmon.core.snapshot.model import Snapshot

Progress = Callable[[int, int], None]


class DomainRef(NamedTuple):
    uuid: str
    name: str
    id: int = -1


class PoolRef(NamedTuple):
    uuid: str
    name: str


class VolumeRef(NamedTuple):
    pool: str
    name: str
    key: str
    path: str


class NetworkRef(NamedTuple):
    uuid: str
    name: str


class SecretRef(NamedTuple):
    uuid: str
    usage_type: str = "none"
    usage_id: str = ""


class Listing(NamedTuple):
    """One object in a list call, with the flags list filters need.

    Refs and listings are named tuples: a 10,000-domain list builds them fast.
    """

    ref: Any
    active: bool
    persistent: bool
    autostart: bool = False


class Driver:
    """Base class: every operation raises :class:`Unsupported` until overridden."""

    name = "base"
    #: threads :func:`hvmon.core.stats.collect` may use for this driver
    stats_workers = 2

    def __init__(self) -> None:
        self.events = EventBus()

    def _unsupported(self, what: str) -> HvmonError:
        return Unsupported(f"this function is not supported by the {self.name} driver: {what}")

    # --- connection -------------------------------------------------------
    def close(self) -> None:
        """Release resources; the driver is unusable afterwards."""

    def uri(self) -> str:
        raise self._unsupported("uri")

    def hostname(self) -> str:
        raise self._unsupported("hostname")

    def node_info(self) -> NodeInfo:
        raise self._unsupported("node_info")

    def node_free_memory(self) -> int:
        """Free host memory in bytes (virNodeGetFreeMemory)."""
        raise self._unsupported("node_free_memory")

    def hypervisor_version(self) -> int:
        """The hypervisor's version as major * 1,000,000 + minor * 1,000 + release."""
        raise self._unsupported("hypervisor_version")

    def find_pool_sources(self, kind: str, spec: str | None = None) -> str:
        """``<sources>`` XML of the pools of type ``kind`` a host offers."""
        raise self._unsupported("find_pool_sources")

    def compare_cpu(self, xml: str) -> int:
        """libvirt's virCPUCompareResult for a ``<cpu>`` definition on this host."""
        raise self._unsupported("compare_cpu")

    def domain_capabilities_xml(self, machine: str | None, virt_type: str | None) -> str:
        raise self._unsupported("domain_capabilities")

    def capabilities_xml(self) -> str:
        raise self._unsupported("capabilities")

    # --- domains ----------------------------------------------------------
    def list_domains(self) -> list[Listing]:
        raise self._unsupported("list_domains")

    def lookup_domain(self, by: str, value: str | int) -> DomainRef:
        raise self._unsupported("lookup_domain")

    def define_domain(self, xml: str) -> DomainRef:
        raise self._unsupported("define_domain")

    def create_domain(self, xml: str) -> DomainRef:
        raise self._unsupported("create_domain")

    def domain_ref(self, uuid: str) -> DomainRef:
        raise self._unsupported("domain_ref")

    def domain_lifecycle(self, uuid: str, action: str) -> None:
        """One of start, shutdown, destroy, suspend, resume, reboot, undefine."""
        raise self._unsupported(f"domain {action}")

    def domain_xml(self, uuid: str, secure: bool = False, inactive: bool = False) -> str:
        raise self._unsupported("domain_xml")

    def domain_info(self, uuid: str) -> DomainInfo:
        raise self._unsupported("domain_info")

    def domain_state(self, uuid: str) -> tuple[DomainState, int]:
        raise self._unsupported("domain_state")

    def domain_flags(self, uuid: str) -> Listing:
        raise self._unsupported("domain_flags")

    def domain_set_autostart(self, uuid: str, autostart: bool) -> None:
        raise self._unsupported("domain_set_autostart")

    def domain_set_memory(self, uuid: str, kib: int) -> None:
        raise self._unsupported("domain_set_memory")

    def domain_set_vcpus(self, uuid: str, count: int) -> None:
        raise self._unsupported("domain_set_vcpus")

    def domain_attach_device(self, uuid: str, xml: str) -> None:
        raise self._unsupported("domain_attach_device")

    def domain_detach_device(self, uuid: str, xml: str) -> None:
        raise self._unsupported("domain_detach_device")

    # --- migration (see hvmon.core.migration for the phases) -----------------------------
    def migrate_begin(self, uuid: str, flags: dict[str, Any]) -> dict[str, Any]:
        raise self._unsupported("migrate_begin")

    def migrate_prepare(self, xml: str, cookie: dict[str, Any],
                        flags: dict[str, Any]) -> dict[str, Any]:
        raise self._unsupported("migrate_prepare")

    def migrate_perform(self, uuid: str, uri: str, cookie: dict[str, Any],
                        flags: dict[str, Any]) -> dict[str, Any]:
        raise self._unsupported("migrate_perform")

    def migrate_finish(self, name: str, cookie: dict[str, Any], flags: dict[str, Any],
                       success: bool) -> DomainRef | None:
        raise self._unsupported("migrate_finish")

    def migrate_tunnel_in(self, name: str, chunks: Iterable[bytes]) -> int:
        """Feed a tunnelled migration's stream to the incoming guest ``name``."""
        raise self._unsupported("migrate_tunnel_in")

    def migrate_confirm(self, uuid: str, cookie: dict[str, Any], flags: dict[str, Any],
                        success: bool) -> None:
        raise self._unsupported("migrate_confirm")

    def migrate_p2p(self, uuid: str, dest_uri: str, flags: dict[str, Any]) -> dict[str, Any]:
        """Drive the five phases from here (the caller's access was checked already)."""
        from hvmon.core.migration import peer_to_peer

        return peer_to_peer(self, uuid, dest_uri, flags)

    def domain_core_dump(self, uuid: str, path: str) -> None:
        """Dump the guest's memory (ELF) to ``path``."""
        raise self._unsupported("domain_core_dump")

    def domain_job_info(self, uuid: str) -> JobInfo:
        raise self._unsupported("domain_job_info")

    def domain_pin_vcpu(self, uuid: str, vcpu: int, cpuset: str, live: bool,
                        config: bool) -> None:
        """Pin a vCPU (``<vcpupin>``) live and/or in the definition (neither: current)."""
        raise self._unsupported("domain_pin_vcpu")

    def domain_vcpu_info(self, uuid: str) -> list[VcpuInfo]:
        """Each running vCPU: state, CPU time, host CPU and affinity (its pinning)."""
        raise self._unsupported("domain_vcpu_info")

    def domain_stats(self, uuid: str, groups: tuple[str, ...]) -> dict[str, Any]:
        raise self._unsupported("domain_stats")

    def all_domain_stats(
        self, refs: Sequence[DomainRef], groups: tuple[str, ...], deadline: float
    ) -> list[dict[str, Any] | HvmonError]:
        """Stats for ``refs``; a failing or slow domain yields its error only."""
        return stats_mod.collect(
            refs,
            lambda ref: self.domain_stats(ref.uuid, groups),
            deadline=deadline,
            workers=self.stats_workers,
            describe=lambda ref: f"domain '{ref.name}'",
        )

    def get_snapshot(self, max_age: float | None) -> Snapshot | None:
        """A snapshot served by the driver itself (the daemon's), or None.

        None tells :meth:`hvmon.Connection.get_snapshot` to build one locally.
        """
        return None

    def daemon_info(self) -> dict[str, Any]:
        """Facts about the daemon serving this connection (remote drivers only)."""
        raise self._unsupported("daemon_info")

    # --- storage ------------------------------------------------------------
    def list_pools(self) -> list[Listing]:
        raise self._unsupported("list_pools")

    def lookup_pool(self, by: str, value: str) -> PoolRef:
        raise self._unsupported("lookup_pool")

    def define_pool(self, xml: str) -> PoolRef:
        raise self._unsupported("define_pool")

    def create_pool(self, xml: str) -> PoolRef:
        raise self._unsupported("create_pool")

    def pool_action(self, uuid: str, action: str) -> None:
        """``build``, ``start``, ``stop``, ``delete``, ``undefine``, ``refresh``."""
        raise self._unsupported(f"pool {action}")

    def pool_info(self, uuid: str) -> PoolInfo:
        raise self._unsupported("pool_info")

    def pool_xml(self, uuid: str, inactive: bool = False) -> str:
        raise self._unsupported("pool_xml")

    def pool_flags(self, uuid: str) -> Listing:
        raise self._unsupported("pool_flags")

    def pool_set_autostart(self, uuid: str, autostart: bool) -> None:
        raise self._unsupported("pool_set_autostart")

    def pool_list_volumes(self, uuid: str) -> list[VolumeRef]:
        raise self._unsupported("pool_list_volumes")

    def pool_create_volume(self, uuid: str, xml: str) -> VolumeRef:
        raise self._unsupported("pool_create_volume")

    def pool_clone_volume(
        self, uuid: str, xml: str, source: VolumeRef, progress: Progress | None = None
    ) -> VolumeRef:
        raise self._unsupported("pool_clone_volume")

    def lookup_volume(self, by: str, value: str, pool_uuid: str | None = None) -> VolumeRef:
        """``by`` is ``name`` (needs ``pool_uuid``), ``key`` or ``path``."""
        raise self._unsupported("lookup_volume")

    def volume_info(self, ref: VolumeRef) -> VolumeInfo:
        raise self._unsupported("volume_info")

    def volume_xml(self, ref: VolumeRef) -> str:
        raise self._unsupported("volume_xml")

    def volume_delete(self, ref: VolumeRef) -> None:
        raise self._unsupported("volume_delete")

    def volume_wipe(self, ref: VolumeRef) -> None:
        raise self._unsupported("volume_wipe")

    def volume_download(self, ref: VolumeRef, offset: int, length: int) -> Iterator[bytes]:
        """The volume's bytes from ``offset``, ``length`` of them (0: to the end), in chunks."""
        raise self._unsupported("volume_download")

    def volume_upload(
        self, ref: VolumeRef, offset: int, length: int, chunks: Iterable[bytes]
    ) -> int:
        """Write ``chunks`` at ``offset`` (at most ``length`` bytes, 0: no limit); bytes written."""
        raise self._unsupported("volume_upload")

    def volume_resize(self, ref: VolumeRef, capacity: int) -> None:
        raise self._unsupported("volume_resize")

    # --- networks ---------------------------------------------------------
    def list_networks(self) -> list[Listing]:
        raise self._unsupported("list_networks")

    def lookup_network(self, by: str, value: str) -> NetworkRef:
        raise self._unsupported("lookup_network")

    def define_network(self, xml: str) -> NetworkRef:
        raise self._unsupported("define_network")

    def create_network(self, xml: str) -> NetworkRef:
        raise self._unsupported("create_network")

    def network_action(self, uuid: str, action: str) -> None:
        """``start``, ``stop``, ``undefine``."""
        raise self._unsupported(f"network {action}")

    def network_xml(self, uuid: str, inactive: bool = False) -> str:
        raise self._unsupported("network_xml")

    def network_flags(self, uuid: str) -> Listing:
        raise self._unsupported("network_flags")

    def network_set_autostart(self, uuid: str, autostart: bool) -> None:
        raise self._unsupported("network_set_autostart")

    def network_dhcp_leases(self, uuid: str, mac: str | None = None) -> list[DhcpLease]:
        raise self._unsupported("network_dhcp_leases")

    # --- secrets ----------------------------------------------------------
    # --- network filters -------------------------------------------------------
    def nwfilter_list(self) -> list[str]:
        raise self._unsupported("nwfilter_list")

    def nwfilter_xml(self, name: str) -> str:
        raise self._unsupported("nwfilter_xml")

    def nwfilter_define(self, xml: str) -> str:
        raise self._unsupported("nwfilter_define")

    def nwfilter_undefine(self, name: str) -> None:
        raise self._unsupported("nwfilter_undefine")

    def nwfilter_binding_list(self) -> list[str]:
        raise self._unsupported("nwfilter_binding_list")

    def nwfilter_binding_xml(self, portdev: str) -> str:
        raise self._unsupported("nwfilter_binding_xml")

    def nwfilter_binding_create(self, xml: str) -> str:
        raise self._unsupported("nwfilter_binding_create")

    def nwfilter_binding_delete(self, portdev: str) -> None:
        raise self._unsupported("nwfilter_binding_delete")

    def list_secrets(self) -> list[SecretRef]:
        raise self._unsupported("list_secrets")

    def lookup_secret(self, by: str, value: str, usage_type: str | None = None) -> SecretRef:
        """``by`` is ``uuid`` or ``usage`` (with ``usage_type``)."""
        raise self._unsupported("lookup_secret")

    def define_secret(self, xml: str) -> SecretRef:
        raise self._unsupported("define_secret")

    def secret_xml(self, uuid: str) -> str:
        raise self._unsupported("secret_xml")

    def secret_set_value(self, uuid: str, value: bytes) -> None:
        raise self._unsupported("secret_set_value")

    def secret_get_value(self, uuid: str) -> bytes:
        raise self._unsupported("secret_get_value")

    def secret_undefine(self, uuid: str) -> None:
        raise self._unsupported("secret_undefine")
