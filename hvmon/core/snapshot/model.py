"""The snapshot data model: one immutable picture of a host, read by every agent.

A :class:`Snapshot` holds host facts, domains, pools, volumes, networks and
lifecycle event counters, stamped with a generation number and a timestamp.
Everything is frozen; mappings are read-only views over private dicts. The
schema is documented field by field in ``docs/snapshot.md``;
:meth:`Snapshot.to_dict` / :meth:`Snapshot.from_dict` give a JSON-safe form
that round-trips exactly (the daemon's remote protocol carries it).
"""

from __future__ import annotations

import functools
import time
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from hvmon.core.errors import InvalidArgument
from hvmon.core.types import DomainState, PoolState, VolumeType, reason_label

#: Major version of the schema: bumped only when a field changes meaning or goes away.
SCHEMA_VERSION: int = 1

StatValue = int | float | str

_EMPTY: Mapping[str, Any] = types.MappingProxyType({})


def frozen_map(data: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only view of ``data`` (taken over, not copied: callers hand it off)."""
    if not data:
        return _EMPTY
    if isinstance(data, types.MappingProxyType):
        return data
    return types.MappingProxyType(dict(data) if not isinstance(data, dict) else data)


@dataclass(frozen=True, slots=True)
class HostFacts:
    """The host: identity, ``node_info`` fields and facts from its capabilities."""

    hostname: str
    uri: str
    driver: str
    cpu_model: str
    memory_kib: int
    cpus: int
    mhz: int
    numa_nodes: int
    sockets: int
    cores: int
    threads: int
    host_uuid: str = ""
    arch: str = ""
    guest_os_types: tuple[str, ...] = ()
    guest_arches: tuple[str, ...] = ()
    free_memory_kib: int | None = None
    hypervisor_version: str = ""


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    """A domain's background job (virDomainJobInfo); ``type`` 0 means none."""

    type: int = 0
    operation: str = ""
    time_elapsed_ms: int = 0
    time_remaining_ms: int = 0
    data_total: int = 0
    data_processed: int = 0
    data_remaining: int = 0

    @property
    def active(self) -> bool:
        return self.type != 0


@dataclass(frozen=True, slots=True)
class NicSnapshot:
    """One network interface from the domain's XML (bulk stats carry only the counters).

    ``source`` is the network, bridge or device it is attached to, as ``source_type``
    (``network``, ``bridge``, ``direct``, ``user`` ...) says; ``target`` the host-side
    device name when the domain runs (``vnet0``), "" otherwise.
    """

    mac: str
    source_type: str = ""
    source: str = ""
    target: str = ""
    model: str = ""


@dataclass(frozen=True, slots=True)
class DomainSnapshot:
    """One domain. Values from stats carry ``collected_at``/``age``/``stale``."""

    uuid: str
    name: str
    id: int
    active: bool
    persistent: bool
    autostart: bool
    state: int
    reason: int
    os_type: str
    arch: str
    machine: str
    vcpus: int
    max_vcpus: int
    memory_kib: int
    max_memory_kib: int
    stats: Mapping[str, StatValue]
    job: JobSnapshot
    collected_at: float
    age: float
    stale: bool = False
    error: str | None = None
    error_code: int | None = None
    nics: tuple[NicSnapshot, ...] = ()

    def nic(self, target: str, index: int) -> NicSnapshot | None:
        """The interface with host-side name ``target``, else the ``index``-th one."""
        found = next((n for n in self.nics if target and n.target == target), None)
        if found is None and 0 <= index < len(self.nics) and not self.nics[index].target:
            found = self.nics[index]
        return found

    @property
    def state_label(self) -> str:
        """virsh's wording of :attr:`state` (``running``, ``shut off`` ...)."""
        try:
            return DomainState(self.state).label
        except ValueError:
            return "unknown"

    @property
    def reason_label(self) -> str:
        """virsh's wording of :attr:`reason` (``booted``, ``destroyed`` ...)."""
        try:
            return reason_label(DomainState(self.state), self.reason)
        except ValueError:
            return "unknown"


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """One storage pool; sizes in bytes."""

    uuid: str
    name: str
    state: int
    active: bool
    persistent: bool
    autostart: bool
    capacity: int
    allocation: int
    available: int
    volume_count: int

    @property
    def state_label(self) -> str:
        try:
            return PoolState(self.state).label
        except ValueError:
            return "unknown"


@dataclass(frozen=True, slots=True)
class VolumeSnapshot:
    """One volume of an active pool; sizes in bytes."""

    pool: str
    name: str
    key: str
    path: str
    type: int
    capacity: int
    allocation: int

    @property
    def type_label(self) -> str:
        try:
            return VolumeType(self.type).label
        except ValueError:
            return "unknown"


@dataclass(frozen=True, slots=True)
class NetworkSnapshot:
    """One virtual network."""

    uuid: str
    name: str
    active: bool
    persistent: bool
    autostart: bool
    bridge: str
    forward_mode: str
    dhcp_leases: int
    dhcp_range_size: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The host's state at one instant; immutable and safe to share between threads."""

    schema_version: int
    generation: int
    timestamp: float
    duration: float
    host: HostFacts
    domains: tuple[DomainSnapshot, ...]
    pools: tuple[PoolSnapshot, ...]
    volumes: tuple[VolumeSnapshot, ...]
    networks: tuple[NetworkSnapshot, ...]
    events: Mapping[str, int]
    _index: Mapping[str, DomainSnapshot] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, DomainSnapshot] = {}
        for dom in self.domains:
            index[dom.uuid] = dom
            index.setdefault(dom.name, dom)
        object.__setattr__(self, "_index", types.MappingProxyType(index))

    def age(self, now: float | None = None) -> float:
        """Seconds since collection started (never negative)."""
        return max(0.0, (time.time() if now is None else now) - self.timestamp)

    def domain(self, name_or_uuid: str) -> DomainSnapshot | None:
        """The domain with this UUID or name, or None."""
        return self._index.get(name_or_uuid)

    def pool(self, name_or_uuid: str) -> PoolSnapshot | None:
        return next((p for p in self.pools if name_or_uuid in (p.name, p.uuid)), None)

    def network(self, name_or_uuid: str) -> NetworkSnapshot | None:
        return next((n for n in self.networks if name_or_uuid in (n.name, n.uuid)), None)

    def pool_volumes(self, pool_name: str) -> tuple[VolumeSnapshot, ...]:
        return tuple(v for v in self.volumes if v.pool == pool_name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (str/int/float/bool/None/list/dict only)."""
        return _dump(self)

    @classmethod
    def from_dict(cls, data: Any) -> Snapshot:
        """Rebuild a snapshot from :meth:`to_dict` output.

        Unknown keys are ignored (a newer minor revision may add fields); a
        different major ``schema_version`` or a malformed document raises
        :class:`InvalidArgument`.
        """
        if not isinstance(data, Mapping):
            raise InvalidArgument("snapshot: expected an object")
        version = data.get("schema_version")
        if type(version) is not int:
            raise InvalidArgument("snapshot: schema_version missing or not an integer")
        if version != SCHEMA_VERSION:
            raise InvalidArgument(
                f"snapshot: unsupported schema version {version} (this reader knows "
                f"{SCHEMA_VERSION})"
            )
        return _load(cls, data, "snapshot")


# --- JSON-safe conversion -----------------------------------------------------

def _dump(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _dump(getattr(value, f.name)) for f in fields(value) if f.init}
    if isinstance(value, tuple | list):
        return [_dump(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _dump(v) for k, v in value.items()}
    return value


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _load(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise InvalidArgument(f"snapshot: {where} must be an object")
    hints = _hints(cls)
    kwargs = {}
    for f in fields(cls):
        if not f.init:
            continue
        if f.name not in data:
            if f.default is not MISSING:
                continue
            raise InvalidArgument(f"snapshot: {where} lacks '{f.name}'")
        kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{where}.{f.name}")
    return cls(**kwargs)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        for option in args:
            try:
                return _convert(option, value, where)
            except InvalidArgument:
                continue
        raise InvalidArgument(f"snapshot: {where} has an invalid value {value!r:.40}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise InvalidArgument(f"snapshot: {where} must be a list")
        return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, Mapping):
            raise InvalidArgument(f"snapshot: {where} must be an object")
        return frozen_map({str(k): _convert(args[1], v, f"{where}.{k}")
                           for k, v in value.items()})
    if hasattr(hint, "__dataclass_fields__"):
        return _load(hint, value, where)
    return _scalar(hint, value, where)


def _scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is type(None):
        if value is None:
            return None
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if type(value) is int:
            return value
    elif hint is bool or hint is str:
        if type(value) is hint:
            return value
    else:  # pragma: no cover - a field type this codec does not know
        raise InvalidArgument(f"snapshot: {where} has an unsupported type {hint!r}")
    raise InvalidArgument(f"snapshot: {where} must be {getattr(hint, '__name__', hint)}, "
                          f"got {type(value).__name__}")
