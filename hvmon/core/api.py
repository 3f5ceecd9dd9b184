"""The public surface of hvmon: connections and the objects they hold.

Every public method is declared with :func:`hvmon.core.access.api`; the
declaration is what enforces read-only mode, so no body below checks it. The
classes are thin: they name an object and hand the call to the driver.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
from hvmon.core.stats import DEFAULT_DEADLINE, normalize_groups
from hvmon.core.types import (
    DhcpLease,
    DomainInfo,
    DomainState,
    DomainStats,
    JobInfo,
    NodeInfo,
    PoolInfo,
    VolumeInfo,
)

DEFAULT_URI = "test:///default"


def default_uri() -> str:
    """``HVMON_DEFAULT_URI`` or ``test:///default``."""
    return os.environ.get("HVMON_DEFAULT_URI") or DEFAULT_URI


def open(  # noqa: A001 - mirrors libvirt.open
    uri: str | None = None, readonly: bool = False, policy: AccessPolicy | None = None
) -> Connection:
    """Open a connection to the driver named by ``uri``."""
    return Connection(open_driver(uri or default_uri()), AccessGate(readonly, policy))


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
    def capabilities(self) -> str:
        """The host capabilities document (``<capabilities>``)."""
        return self._driver.capabilities_xml()

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
    def attach_device(self, xml: str) -> None:
        self._driver.domain_attach_device(self.uuid, xml)

    @api("domain:write", mutates=True)
    def detach_device(self, xml: str) -> None:
        self._driver.domain_detach_device(self.uuid, xml)

    @api("domain:read")
    def job_info(self) -> JobInfo:
        return self._driver.domain_job_info(self.uuid)


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


PUBLIC_CLASSES: tuple[type, ...] = (
    Connection, Domain, StoragePool, StorageVolume, Network, Secret,
)


def api_registry() -> dict[str, ApiSpec]:
    """Every declared public method, keyed by ``Class.method``."""
    return collect_specs(PUBLIC_CLASSES)


