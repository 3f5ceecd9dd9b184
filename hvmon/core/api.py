"""The public surface of hvmon: connections and the objects they hold.

Every public method is declared with :func:`hvmon.core.access.api`; the
declaration is what enforces read-only mode, so no body below checks it. The
classes are thin: they name an object and hand the call to the driver.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hvmon.core.access import AccessGate, AccessPolicy, ApiSpec, api, collect_specs
from hvmon.core.drivers import open_driver
from hvmon.core.drivers.base import (
    DomainRef,
    Driver,
    Listing,
    NetworkRef,
    PoolRef,
    Progress,
    SecretRef,
    VolumeRef,
)
from hvmon.core.errors import InvalidArgument
from hvmon.core.events import DomainEventRecord, LifecycleEvent
from hvmon.core.gcpause import paused_gc
from hvmon.core.stats import DEFAULT_DEADLINE, normalize_groups
from hvmon.core.types import (
    CpuCompareResult,
    DhcpLease,
    DomainInfo,
    DomainState,
    DomainStats,
    JobInfo,
    NodeInfo,
    PoolInfo,
    VcpuInfo,
    VolumeInfo,
)

if TYPE_CHECKING:
    from hvmon.core.snapshot.cache import SnapshotCache
    from hvmon.core.snapshot.model import Snapshot

DEFAULT_URI = "test:///default"


def default_uri() -> str:
    """``HVMON_DEFAULT_URI`` or ``test:///default``."""
    return os.environ.get("HVMON_DEFAULT_URI") or DEFAULT_URI


def open(  # noqa: A001 - mirrors libvirt.open
    uri: str | None = None, readonly: bool = False, policy: AccessPolicy | None = None
) -> Connection:
    """Open a connection to the driver named by ``uri``."""
    return Connection(open_driver(uri or default_uri(), readonly=readonly),
                      AccessGate(readonly, policy))


def open_readonly(uri: str | None = None) -> Connection:
    """Open a read-only connection: every mutating or secure call is refused."""
    return open(uri, readonly=True)


def _filter(listings: list[Listing], active: bool | None, persistent: bool | None,
            autostart: bool | None) -> list[Listing]:
    return [
        item for item in listings
        if (active is None or item.active == active)
        and (persistent is None or item.persistent == persistent)
        and (autostart is None or item.autostart == autostart)
    ]


@dataclass(frozen=True)
class DomainEvent:
    """A lifecycle event as delivered to a connection's callbacks."""

    domain: Domain
    event: LifecycleEvent
    detail: int
    timestamp: float

    def describe(self) -> str:
        return DomainEventRecord(
            self.domain.uuid, self.domain.name, -1, self.event, self.detail
        ).describe()


class Connection:
    """An open connection to one driver."""

    def __init__(self, driver: Driver, gate: AccessGate | None = None) -> None:
        self._driver = driver
        self._access = gate or AccessGate()
        self._callbacks: dict[int, int] = {}
        self._snapshots: SnapshotCache | None = None
        self._closed = False

    # plumbing shared with the object classes
    @property
    def _gate(self) -> AccessGate:
        return self._access

    @property
    def readonly(self) -> bool:
        return self._access.readonly

    @property
    def driver(self) -> Driver:
        return self._driver

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @api("connect:getattr")
    def close(self) -> None:
        """Deregister callbacks and release the driver."""
        if self._closed:
            return
        for bus_id in self._callbacks.values():
            self._driver.events.deregister(bus_id)
        self._callbacks.clear()
        if self._snapshots is not None:
            self._snapshots.stop()
        self._driver.close()
        self._closed = True

    # --- host -------------------------------------------------------------
    @api("connect:getattr")
    def get_uri(self) -> str:
        return self._driver.uri()

    @api("connect:getattr")
    def get_hostname(self) -> str:
        return self._driver.hostname()

    @api("connect:read")
    def node_info(self) -> NodeInfo:
        return self._driver.node_info()

    @api("connect:read")
    def get_free_memory(self) -> int:
        """Free host memory in bytes (libvirt's ``getFreeMemory``)."""
        return self._driver.node_free_memory()

    @api("connect:read")
    def get_version(self) -> int:
        """The hypervisor's version, major * 1,000,000 + minor * 1,000 + release
        (libvirt's ``getVersion``); see :func:`hvmon.core.types.format_version`."""
        return self._driver.hypervisor_version()

    @api("connect:read")
    def capabilities(self) -> str:
        """The host capabilities document (``<capabilities>``)."""
        return self._driver.capabilities_xml()

    @api("connect:detect_storage_pools")
    def find_storage_pool_sources(self, kind: str, spec: str | None = None) -> str:
        """The pool sources a host offers (``<sources>``): iSCSI targets on a portal, NFS
        exports (``kind`` iscsi or netfs; ``spec`` a ``<source>`` naming the host)."""
        return self._driver.find_pool_sources(kind, spec)

    @api("connect:read")
    def baseline_cpu(self, domain_capabilities: list[str]) -> str:
        """The newest CPU model usable on every host whose ``domain_capabilities()``
        XML is given (virsh hypervisor-cpu-baseline), as a guest ``<cpu>``."""
        from hvmon.core.cpubaseline import baseline

        return baseline(list(domain_capabilities))

    @api("connect:read")
    def compare_cpu(self, xml: str) -> CpuCompareResult:
        """Whether a guest CPU definition (``<cpu>``) can run here (virsh cpu-compare)."""
        return CpuCompareResult(self._driver.compare_cpu(xml))

    @api("connect:read")
    def domain_capabilities(self, machine: str | None = None,
                            virt_type: str | None = None) -> str:
        """What a guest of ``machine``/``virt_type`` can use (``<domainCapabilities>``)."""
        return self._driver.domain_capabilities_xml(machine, virt_type)

    # --- domains ----------------------------------------------------------
    @api("connect:search_domains")
    def list_all_domains(
        self,
        active: bool | None = None,
        persistent: bool | None = None,
        autostart: bool | None = None,
    ) -> list[Domain]:
        """Domains, optionally filtered (``active=False`` gives inactive ones)."""
        listings = _filter(self._driver.list_domains(), active, persistent, autostart)
        return [Domain(self, item.ref) for item in listings]

    @api("domain:getattr")
    def lookup_domain_by_name(self, name: str) -> Domain:
        return Domain(self, self._driver.lookup_domain("name", name))

    @api("domain:getattr")
    def lookup_domain_by_uuid(self, uuid: str) -> Domain:
        return Domain(self, self._driver.lookup_domain("uuid", uuid))

    @api("domain:getattr")
    def lookup_domain_by_id(self, id: int) -> Domain:  # noqa: A002 - libvirt's name
        return Domain(self, self._driver.lookup_domain("id", int(id)))

    @api("domain:write", mutates=True)
    def define_domain_xml(self, xml: str) -> Domain:
        """Define (or update) a persistent domain."""
        return Domain(self, self._driver.define_domain(xml))

    @api("domain:migrate", mutates=True)
    def migrate_prepare(self, xml: str, cookie: dict[str, Any],
                        flags: dict[str, Any]) -> dict[str, Any]:
        """Migration, destination side: check and start the incoming guest (phase 2 of 5).

        Returns ``{"uri": where the source sends the stream, "cookie": {...}}``.
        Called by :meth:`Domain.migrate`; exposed so another daemon can drive it.
        """
        return self._driver.migrate_prepare(xml, cookie, flags)

    @api("domain:migrate", mutates=True)
    def migrate_tunnel_in(self, name: str, data: Iterable[bytes]) -> int:
        """Migration, destination side of a tunnelled migration: the guest's state as a
        byte stream over this connection, into the incoming guest; bytes written."""
        chunks: Iterable[bytes] = [bytes(data)] if isinstance(data, bytes | bytearray) else data
        return self._driver.migrate_tunnel_in(name, chunks)

    @api("domain:migrate", mutates=True)
    def migrate_finish(self, name: str, cookie: dict[str, Any], flags: dict[str, Any],
                       success: bool) -> Domain | None:
        """Migration, destination side: resume (and define) the guest, or clean up (phase 4)."""
        ref = self._driver.migrate_finish(name, cookie, flags, bool(success))
        return Domain(self, ref) if ref is not None else None

    @api("domain:start", mutates=True)
    def create_domain_xml(self, xml: str) -> Domain:
        """Start a transient domain from XML."""
        return Domain(self, self._driver.create_domain(xml))

    @api("domain:read")
    def get_all_domain_stats(
        self,
        groups: Sequence[str] | None = None,
        domains: Sequence[Domain] | None = None,
        deadline: float = DEFAULT_DEADLINE,
        active: bool | None = None,
    ) -> list[DomainStats]:
        """Bulk statistics with libvirt's key names.

        ``groups`` picks stats groups (all when None); ``domains`` limits the
        call to those domains; a domain that fails or takes longer than
        ``deadline`` seconds gets ``error`` set and no stats, the others are
        returned all the same.
        """
        wanted = normalize_groups(groups)
        if deadline <= 0:
            raise InvalidArgument("deadline must be positive")
        if domains is None:
            refs = [item.ref for item in _filter(self._driver.list_domains(), active, None, None)]
        else:
            refs = [d._ref for d in domains]
        with paused_gc():  # thousands of acyclic results: no collector walks meanwhile
            results = self._driver.all_domain_stats(refs, wanted, deadline)
            return [
                DomainStats(Domain(self, ref), {}, result) if isinstance(result, Exception)
                else DomainStats(Domain(self, ref), result, None)
                for ref, result in zip(refs, results, strict=True)
            ]

    @api("connect:search_domains")
    def domain_event_register(self, callback: Callable[[DomainEvent], None]) -> int:
        """Call ``callback`` for every lifecycle event; returns an id to deregister."""

        def relay(record: DomainEventRecord) -> None:
            ref = DomainRef(record.uuid, record.name, record.id)
            callback(DomainEvent(Domain(self, ref), record.event, record.detail,
                                 record.timestamp))

        bus_id = self._driver.events.register(relay)
        self._callbacks[bus_id] = bus_id
        return bus_id

    @api("connect:search_domains")
    def domain_event_deregister(self, callback_id: int) -> None:
        if self._callbacks.pop(callback_id, None) is None:
            raise InvalidArgument(f"no event callback with id {callback_id}")
        self._driver.events.deregister(callback_id)

    @api("connect:read")
    def get_snapshot(self, max_age: float | None = None) -> Snapshot:
        """The host's state in one immutable :class:`Snapshot` (see docs/snapshot.md).

        Served by the daemon's shared cache on a remote connection; built and
        cached per connection otherwise. ``max_age`` seconds (None: the
        cache's default) is how old an answer may be.
        """
        served = self._driver.get_snapshot(max_age)
        if served is not None:
            return served
        if self._snapshots is None:
            from hvmon.core.snapshot.cache import SnapshotCache

            self._snapshots = SnapshotCache(self)
        return self._snapshots.get(max_age)

    @api("connect:read")
    def daemon_info(self) -> dict[str, Any]:
        """Version, driver, agent health and snapshot age of the daemon serving us."""
        return self._driver.daemon_info()

    # --- storage ------------------------------------------------------------
    @api("connect:search_storage_pools")
    def list_all_storage_pools(
        self, active: bool | None = None, persistent: bool | None = None,
        autostart: bool | None = None,
    ) -> list[StoragePool]:
        listings = _filter(self._driver.list_pools(), active, persistent, autostart)
        return [StoragePool(self, item.ref) for item in listings]

    @api("pool:getattr")
    def lookup_pool_by_name(self, name: str) -> StoragePool:
        return StoragePool(self, self._driver.lookup_pool("name", name))

    @api("pool:getattr")
    def lookup_pool_by_uuid(self, uuid: str) -> StoragePool:
        return StoragePool(self, self._driver.lookup_pool("uuid", uuid))

    @api("pool:write", mutates=True)
    def define_pool_xml(self, xml: str) -> StoragePool:
        return StoragePool(self, self._driver.define_pool(xml))

    @api("pool:start", mutates=True)
    def create_pool_xml(self, xml: str) -> StoragePool:
        """Create and start a transient pool."""
        return StoragePool(self, self._driver.create_pool(xml))

    @api("volume:getattr")
    def lookup_volume_by_key(self, key: str) -> StorageVolume:
        return StorageVolume(self, self._driver.lookup_volume("key", key))

    @api("volume:getattr")
    def lookup_volume_by_path(self, path: str) -> StorageVolume:
        return StorageVolume(self, self._driver.lookup_volume("path", path))

    # --- networks ---------------------------------------------------------
    @api("connect:search_networks")
    def list_all_networks(
        self, active: bool | None = None, persistent: bool | None = None,
        autostart: bool | None = None,
    ) -> list[Network]:
        listings = _filter(self._driver.list_networks(), active, persistent, autostart)
        return [Network(self, item.ref) for item in listings]

    @api("network:getattr")
    def lookup_network_by_name(self, name: str) -> Network:
        return Network(self, self._driver.lookup_network("name", name))

    @api("network:getattr")
    def lookup_network_by_uuid(self, uuid: str) -> Network:
        return Network(self, self._driver.lookup_network("uuid", uuid))

    @api("network:write", mutates=True)
    def define_network_xml(self, xml: str) -> Network:
        return Network(self, self._driver.define_network(xml))

    @api("network:start", mutates=True)
    def create_network_xml(self, xml: str) -> Network:
        """Create and start a transient network."""
        return Network(self, self._driver.create_network(xml))

    # --- secrets ----------------------------------------------------------
    @api("connect:search_secrets")
    def list_all_secrets(self) -> list[Secret]:
        return [Secret(self, ref) for ref in self._driver.list_secrets()]

    @api("secret:getattr")
    def lookup_secret_by_uuid(self, uuid: str) -> Secret:
        return Secret(self, self._driver.lookup_secret("uuid", uuid))

    @api("secret:getattr")
    def lookup_secret_by_usage(self, usage_type: str, usage_id: str) -> Secret:
        return Secret(self, self._driver.lookup_secret("usage", usage_id, usage_type))

    @api("secret:write", mutates=True)
    def define_secret_xml(self, xml: str) -> Secret:
        return Secret(self, self._driver.define_secret(xml))

    # --- network filters ------------------------------------------------------
    @api("connect:search_nwfilters")
    def list_all_nwfilters(self) -> list[NWFilter]:
        """Every network filter: shipped ones (``clean-traffic`` ...) and defined ones."""
        return [NWFilter(self, name) for name in self._driver.nwfilter_list()]

    @api("nwfilter:getattr")
    def lookup_nwfilter_by_name(self, name: str) -> NWFilter:
        self._driver.nwfilter_xml(name)  # NoSuchNWFilter when there is none
        return NWFilter(self, name)

    @api("nwfilter:write", mutates=True)
    def define_nwfilter_xml(self, xml: str) -> NWFilter:
        """Define (or update) a filter in libvirt's ``<filter>`` format."""
        return NWFilter(self, self._driver.nwfilter_define(xml))

    @api("connect:search_nwfilter_bindings")
    def list_all_nwfilter_bindings(self) -> list[NWFilterBinding]:
        """The ports a filter is bound to (a guest's tap, or one bound by hand)."""
        return [NWFilterBinding(self, port) for port in self._driver.nwfilter_binding_list()]

    @api("nwfilter_binding:getattr")
    def lookup_nwfilter_binding_by_port_dev(self, port_dev: str) -> NWFilterBinding:
        self._driver.nwfilter_binding_xml(port_dev)  # NoSuchNWFilter-style error if none
        return NWFilterBinding(self, port_dev)

    @api("nwfilter_binding:create", mutates=True)
    def create_nwfilter_binding(self, xml: str) -> NWFilterBinding:
        """Bind a filter to a port (``<filterbinding>``: portdev, MAC, filterref)."""
        return NWFilterBinding(self, self._driver.nwfilter_binding_create(xml))


def _counted(
    chunks: Iterable[bytes], total: int, progress: Progress | None
) -> Iterator[bytes]:
    """Pass ``chunks`` through, reporting (done, total) to ``progress``."""
    done = 0
    for chunk in chunks:
        done += len(chunk)
        yield chunk
        if progress is not None:
            progress(done, max(total, done))


class _Handle:
    """Common plumbing of the object classes: the connection and its gate."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @property
    def _gate(self) -> AccessGate:
        return self._conn._gate

    @property
    def _driver(self) -> Driver:
        return self._conn._driver

    @property
    def connection(self) -> Connection:
        return self._conn

    @property
    def _key(self) -> object:
        return self._ref.uuid  # type: ignore[attr-defined]

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._key == self._key  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key))


class Domain(_Handle):
    """A domain (guest), named by UUID."""

    def __init__(self, conn: Connection, ref: DomainRef) -> None:
        super().__init__(conn)
        self._ref = ref

    @property
    def name(self) -> str:
        return self._ref.name

    @property
    def uuid(self) -> str:
        return self._ref.uuid

    def __repr__(self) -> str:
        return f"<Domain {self.name} {self.uuid}>"

    def _act(self, action: str) -> None:
        self._driver.domain_lifecycle(self.uuid, action)

    @api("domain:getattr")
    def get_id(self) -> int:
        """The running id, or -1 when inactive."""
        return self._driver.domain_ref(self.uuid).id

    @api("domain:start", mutates=True)
    def create(self) -> None:
        """Start a defined domain (virsh start)."""
        self._act("start")

    @api("domain:start", mutates=True)
    def start(self) -> None:
        """Same as :meth:`create`."""
        self._act("start")

    @api("domain:start", mutates=True)
    def create_with_flags(self, paused: bool = False) -> None:
        """Start a defined domain; ``paused`` leaves its vCPUs stopped (virsh start --paused)."""
        self._act("start_paused" if paused else "start")

    @api("domain:init_control", mutates=True)
    def shutdown(self) -> None:
        self._act("shutdown")

    @api("domain:stop", mutates=True)
    def destroy(self) -> None:
        self._act("destroy")

    @api("domain:suspend", mutates=True)
    def suspend(self) -> None:
        self._act("suspend")

    @api("domain:suspend", mutates=True)
    def resume(self) -> None:
        self._act("resume")

    @api("domain:init_control", mutates=True)
    def reboot(self) -> None:
        self._act("reboot")

    @api("domain:delete", mutates=True)
    def undefine(self) -> None:
        self._act("undefine")

    @api("domain:read", secure_flag="secure", secure_permission="domain:read_secure")
    def xml_desc(self, secure: bool = False, inactive: bool = False) -> str:
        """The domain XML; ``secure=True`` includes passwords and needs rw access."""
        return self._driver.domain_xml(self.uuid, secure=secure, inactive=inactive)

    @api("domain:read")
    def info(self) -> DomainInfo:
        return self._driver.domain_info(self.uuid)

    @api("domain:read")
    def state(self) -> tuple[DomainState, int]:
        """(state, reason) as in virDomainGetState."""
        return self._driver.domain_state(self.uuid)

    @api("domain:read")
    def is_active(self) -> bool:
        return self._driver.domain_flags(self.uuid).active

    @api("domain:read")
    def is_persistent(self) -> bool:
        return self._driver.domain_flags(self.uuid).persistent

    @api("domain:read")
    def get_autostart(self) -> bool:
        return self._driver.domain_flags(self.uuid).autostart

    @api("domain:write", mutates=True)
    def set_autostart(self, autostart: bool) -> None:
        self._driver.domain_set_autostart(self.uuid, bool(autostart))

    @api("domain:write", mutates=True)
    def set_memory(self, kib: int) -> None:
        """Set the current (balloon) memory in KiB."""
        self._driver.domain_set_memory(self.uuid, int(kib))

    @api("domain:write", mutates=True)
    def set_vcpus(self, count: int) -> None:
        self._driver.domain_set_vcpus(self.uuid, int(count))

    @api("domain:write", mutates=True)
    def pin_vcpu(self, vcpu: int, cpuset: str, live: bool = False,
                 config: bool = False) -> None:
        """Pin ``vcpu`` to the host CPUs ``cpuset`` names (libvirt syntax, ``0-3,^2``):
        on the running guest (``live``), in its definition (``config``), or, with
        neither, wherever the domain is now (virsh vcpupin's ``--current``)."""
        self._driver.domain_pin_vcpu(self.uuid, int(vcpu), str(cpuset), live, config)

    @api("domain:write", mutates=True)
    def attach_device(self, xml: str) -> None:
        self._driver.domain_attach_device(self.uuid, xml)

    @api("domain:write", mutates=True)
    def detach_device(self, xml: str) -> None:
        self._driver.domain_detach_device(self.uuid, xml)

    @api("domain:core_dump", mutates=True)
    def core_dump(self, path: str) -> None:
        """Write the guest's memory as an ELF core to ``path`` on the host (for ``crash``)."""
        self._driver.domain_core_dump(self.uuid, str(path))

    @api("domain:read")
    def job_info(self) -> JobInfo:
        return self._driver.domain_job_info(self.uuid)

    @api("domain:read")
    def vcpu_info(self) -> list[VcpuInfo]:
        """Each vCPU of the running domain: state, CPU time, host CPU, affinity
        (virDomainGetVcpus; ``<vcpupin>`` shows here as the affinity)."""
        return self._driver.domain_vcpu_info(self.uuid)

    @api("domain:migrate", mutates=True)
    def migrate(self, dest: Connection | str, live: bool = False, persistent: bool = False,
                undefine_source: bool = False, suspend: bool = False, offline: bool = False,
                bandwidth: int | None = None, dest_name: str | None = None,
                timeout: float | None = None,
                progress: Callable[[int, int], None] | None = None,
                p2p: bool = False, tunnelled: bool = False,
                copy_storage_all: bool = False) -> Domain | None:
        """Move this domain to the host ``dest`` is connected to (virsh migrate).

        The client drives the five phases (Begin, Prepare, Perform, Finish,
        Confirm) on both connections; on any failure the guest keeps running
        here and the destination is cleaned up. ``bandwidth`` is in MiB/s,
        ``timeout`` suspends a live migration that has not converged after so
        many seconds, ``progress(done, total)`` reports the guest memory handled.
        ``dest`` may be a URI instead (libvirt's migrateToURI): the connection is
        opened here and closed afterwards, and the result is then bound to a
        closed connection: read its name and UUID only. Returns the domain on
        ``dest``. With ``p2p`` (``dest`` a URI as the source host reaches it) the
        source's daemon drives the phases itself, and the migration goes on if
        this client goes away; it returns None. ``tunnelled`` (needs ``p2p``)
        carries QEMU's stream over the daemons' own connection instead of a
        separate TCP port (so over TLS when the destination URI is ``+tls``).
        ``copy_storage_all`` (non-shared storage): the destination creates each
        missing disk (a pool volume of the same name in its pool of the same name,
        or a file at the same path) and the disks are copied over NBD while the
        guest runs; ``progress`` then counts disk bytes too.
        """
        from hvmon.core.migration import MigrateFlags, migrate_managed, progress_reporter

        flags = MigrateFlags(live=live, persistent=persistent, undefine_source=undefine_source,
                             suspend=suspend, offline=offline, bandwidth=bandwidth,
                             dest_name=dest_name, timeout=timeout, tunnelled=tunnelled,
                             copy_storage_all=copy_storage_all)
        if tunnelled and not p2p:
            raise InvalidArgument("tunnelled migration needs p2p (the source's daemon "
                                  "carries the stream)")
        if p2p:
            if not isinstance(dest, str):
                raise InvalidArgument("peer-to-peer migration takes the destination's URI")
            with progress_reporter(self, progress):
                self.migrate_peer_to_peer(dest, flags.to_dict())
            return None
        if isinstance(dest, str):
            with open(dest) as opened:
                return migrate_managed(self, opened, flags, progress)
        return migrate_managed(self, dest, flags, progress)

    @api("domain:migrate", mutates=True)
    def migrate_peer_to_peer(self, dest_uri: str, flags: dict[str, Any]) -> dict[str, Any]:
        """Migration driven by the source's daemon towards ``dest_uri`` (as it reaches it);
        ``{"name", "uuid"}`` of the domain there."""
        return self._driver.migrate_p2p(self.uuid, dest_uri, flags)

    @api("domain:migrate", mutates=True)
    def migrate_begin(self, flags: dict[str, Any]) -> dict[str, Any]:
        """Migration, source side: the definition to send and a cookie (phase 1 of 5)."""
        return self._driver.migrate_begin(self.uuid, flags)

    @api("domain:migrate", mutates=True)
    def migrate_perform(self, uri: str, cookie: dict[str, Any],
                        flags: dict[str, Any]) -> dict[str, Any]:
        """Migration, source side: send the guest to ``uri`` and wait for it (phase 3)."""
        return self._driver.migrate_perform(self.uuid, uri, cookie, flags)

    @api("domain:migrate", mutates=True)
    def migrate_confirm(self, cookie: dict[str, Any], flags: dict[str, Any],
                        success: bool) -> None:
        """Migration, source side: stop (and undefine) the guest, or resume it (phase 5)."""
        self._driver.migrate_confirm(self.uuid, cookie, flags, bool(success))


class StoragePool(_Handle):
    """A storage pool, named by UUID."""

    def __init__(self, conn: Connection, ref: PoolRef) -> None:
        super().__init__(conn)
        self._ref = ref

    @property
    def name(self) -> str:
        return self._ref.name

    @property
    def uuid(self) -> str:
        return self._ref.uuid

    def __repr__(self) -> str:
        return f"<StoragePool {self.name}>"

    @api("pool:format", mutates=True)
    def build(self) -> None:
        self._driver.pool_action(self.uuid, "build")

    @api("pool:start", mutates=True)
    def create(self) -> None:
        """Start the pool (virsh pool-start)."""
        self._driver.pool_action(self.uuid, "start")

    @api("pool:start", mutates=True)
    def start(self) -> None:
        self._driver.pool_action(self.uuid, "start")

    @api("pool:stop", mutates=True)
    def destroy(self) -> None:
        """Stop the pool (virsh pool-destroy); its data is kept."""
        self._driver.pool_action(self.uuid, "stop")

    @api("pool:stop", mutates=True)
    def stop(self) -> None:
        self._driver.pool_action(self.uuid, "stop")

    @api("pool:format", mutates=True)
    def delete(self) -> None:
        """Delete the pool's underlying storage (virsh pool-delete)."""
        self._driver.pool_action(self.uuid, "delete")

    @api("pool:delete", mutates=True)
    def undefine(self) -> None:
        self._driver.pool_action(self.uuid, "undefine")

    @api("pool:refresh", mutates=True)
    def refresh(self) -> None:
        self._driver.pool_action(self.uuid, "refresh")

    @api("pool:read")
    def info(self) -> PoolInfo:
        return self._driver.pool_info(self.uuid)

    @api("pool:read")
    def xml_desc(self, inactive: bool = False) -> str:
        return self._driver.pool_xml(self.uuid, inactive=inactive)

    @api("pool:read")
    def is_active(self) -> bool:
        return self._driver.pool_flags(self.uuid).active

    @api("pool:read")
    def is_persistent(self) -> bool:
        return self._driver.pool_flags(self.uuid).persistent

    @api("pool:read")
    def get_autostart(self) -> bool:
        return self._driver.pool_flags(self.uuid).autostart

    @api("pool:write", mutates=True)
    def set_autostart(self, autostart: bool) -> None:
        self._driver.pool_set_autostart(self.uuid, bool(autostart))

    @api("pool:search_volumes")
    def list_volumes(self) -> builtins.list[StorageVolume]:
        return [StorageVolume(self._conn, ref) for ref in self._driver.pool_list_volumes(self.uuid)]

    @api("volume:getattr")
    def lookup_volume_by_name(self, name: str) -> StorageVolume:
        ref = self._driver.lookup_volume("name", name, pool_uuid=self.uuid)
        return StorageVolume(self._conn, ref)

    @api("volume:create", mutates=True)
    def create_volume_xml(self, xml: str) -> StorageVolume:
        return StorageVolume(self._conn, self._driver.pool_create_volume(self.uuid, xml))

    @api("volume:create", mutates=True)
    def clone_volume(
        self, xml: str, source: StorageVolume, progress: Progress | None = None
    ) -> StorageVolume:
        """Create a volume from ``xml`` holding a copy of ``source``."""
        ref = self._driver.pool_clone_volume(self.uuid, xml, source._ref, progress)
        return StorageVolume(self._conn, ref)


class StorageVolume(_Handle):
    """A storage volume, named by its pool and name."""

    def __init__(self, conn: Connection, ref: VolumeRef) -> None:
        super().__init__(conn)
        self._ref = ref

    @property
    def name(self) -> str:
        return self._ref.name

    @property
    def key(self) -> str:
        return self._ref.key

    @property
    def path(self) -> str:
        return self._ref.path

    @property
    def pool_name(self) -> str:
        return self._ref.pool

    @property
    def _key(self) -> object:
        return (self._ref.pool, self._ref.name)

    def __repr__(self) -> str:
        return f"<StorageVolume {self.pool_name}/{self.name}>"

    @api("volume:read")
    def info(self) -> VolumeInfo:
        return self._driver.volume_info(self._ref)

    @api("volume:read")
    def xml_desc(self) -> str:
        return self._driver.volume_xml(self._ref)

    @api("volume:delete", mutates=True)
    def delete(self) -> None:
        self._driver.volume_delete(self._ref)

    @api("volume:format", mutates=True)
    def wipe(self) -> None:
        self._driver.volume_wipe(self._ref)

    @api("volume:data_read", secure=True)
    def download(
        self, offset: int = 0, length: int = 0, progress: Progress | None = None
    ) -> Iterator[bytes]:
        """The volume's content from ``offset`` (``length`` 0: to the end), in chunks.

        Raw disk content may hold anything, so like libvirt a read-only
        connection may not download.
        """
        total = length or max(self.info().capacity - offset, 0)
        return _counted(self._driver.volume_download(self._ref, int(offset), int(length)),
                        total, progress)

    @api("volume:data_write", mutates=True)
    def upload(
        self, data: bytes | Iterable[bytes], offset: int = 0, length: int = 0,
        progress: Progress | None = None,
    ) -> int:
        """Write ``data`` (bytes or an iterable of chunks) at ``offset``; bytes written."""
        chunks: Iterable[bytes] = [bytes(data)] if isinstance(data, bytes | bytearray) else data
        return self._driver.volume_upload(
            self._ref, int(offset), int(length), _counted(chunks, length, progress)
        )

    @api("volume:resize", mutates=True)
    def resize(self, capacity: int) -> None:
        """Set the capacity in bytes."""
        self._driver.volume_resize(self._ref, int(capacity))


class Network(_Handle):
    """A virtual network, named by UUID."""

    def __init__(self, conn: Connection, ref: NetworkRef) -> None:
        super().__init__(conn)
        self._ref = ref

    @property
    def name(self) -> str:
        return self._ref.name

    @property
    def uuid(self) -> str:
        return self._ref.uuid

    def __repr__(self) -> str:
        return f"<Network {self.name}>"

    @api("network:start", mutates=True)
    def create(self) -> None:
        self._driver.network_action(self.uuid, "start")

    @api("network:start", mutates=True)
    def start(self) -> None:
        self._driver.network_action(self.uuid, "start")

    @api("network:stop", mutates=True)
    def destroy(self) -> None:
        self._driver.network_action(self.uuid, "stop")

    @api("network:stop", mutates=True)
    def stop(self) -> None:
        self._driver.network_action(self.uuid, "stop")

    @api("network:delete", mutates=True)
    def undefine(self) -> None:
        self._driver.network_action(self.uuid, "undefine")

    @api("network:read")
    def xml_desc(self, inactive: bool = False) -> str:
        return self._driver.network_xml(self.uuid, inactive=inactive)

    @api("network:read")
    def is_active(self) -> bool:
        return self._driver.network_flags(self.uuid).active

    @api("network:read")
    def is_persistent(self) -> bool:
        return self._driver.network_flags(self.uuid).persistent

    @api("network:read")
    def get_autostart(self) -> bool:
        return self._driver.network_flags(self.uuid).autostart

    @api("network:write", mutates=True)
    def set_autostart(self, autostart: bool) -> None:
        self._driver.network_set_autostart(self.uuid, bool(autostart))

    @api("network:read")
    def dhcp_leases(self, mac: str | None = None) -> builtins.list[DhcpLease]:
        return self._driver.network_dhcp_leases(self.uuid, mac)


class Secret(_Handle):
    """A secret, named by UUID. Its value is never part of any XML."""

    def __init__(self, conn: Connection, ref: SecretRef) -> None:
        super().__init__(conn)
        self._ref = ref

    @property
    def uuid(self) -> str:
        return self._ref.uuid

    @property
    def usage_type(self) -> str:
        return self._ref.usage_type

    @property
    def usage_id(self) -> str:
        return self._ref.usage_id

    def __repr__(self) -> str:
        return f"<Secret {self.uuid}>"

    @api("secret:read")
    def xml_desc(self) -> str:
        return self._driver.secret_xml(self.uuid)

    @api("secret:write", mutates=True)
    def set_value(self, value: bytes | str) -> None:
        data = value.encode() if isinstance(value, str) else bytes(value)
        self._driver.secret_set_value(self.uuid, data)

    @api("secret:read_secure", secure=True)
    def get_value(self) -> bytes:
        return self._driver.secret_get_value(self.uuid)

    @api("secret:delete", mutates=True)
    def undefine(self) -> None:
        self._driver.secret_undefine(self.uuid)


class NWFilter(_Handle):
    """A network filter, named by its name (``clean-traffic``)."""

    def __init__(self, conn: Connection, name: str) -> None:
        super().__init__(conn)
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def _key(self) -> object:
        return self._name

    def __repr__(self) -> str:
        return f"<NWFilter {self.name}>"

    @api("nwfilter:read")
    def xml_desc(self) -> str:
        return self._driver.nwfilter_xml(self._name)

    @api("nwfilter:delete", mutates=True)
    def undefine(self) -> None:
        self._driver.nwfilter_undefine(self._name)


class NWFilterBinding(_Handle):
    """A filter bound to a port (a tap or veth device), named by that port."""

    def __init__(self, conn: Connection, port_dev: str) -> None:
        super().__init__(conn)
        self._port = port_dev

    @property
    def port_dev(self) -> str:
        return self._port

    @property
    def _key(self) -> object:
        return self._port

    def __repr__(self) -> str:
        return f"<NWFilterBinding {self.port_dev}>"

    @api("nwfilter_binding:read")
    def xml_desc(self) -> str:
        return self._driver.nwfilter_binding_xml(self._port)

    @api("nwfilter_binding:delete", mutates=True)
    def delete(self) -> None:
        self._driver.nwfilter_binding_delete(self._port)


PUBLIC_CLASSES: tuple[type, ...] = (
    Connection, Domain, StoragePool, StorageVolume, Network, Secret, NWFilter, NWFilterBinding,
)


def api_registry() -> dict[str, ApiSpec]:
    """Every declared public method, keyed by ``Class.method``."""
    return collect_specs(PUBLIC_CLASSES)


