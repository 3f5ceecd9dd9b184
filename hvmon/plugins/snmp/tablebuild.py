"""The HVMON-MIB (and LIBVIRT-MIB view) table of one snapshot, built in OID order.

:class:`TableBuilder` turns a snapshot into an
:class:`~hvmon.plugins.snmp.table.OidTable` column by column, rows sorted by
index, so ``OidTable``'s sort has nothing to do; a stat the snapshot lacks
leaves its cell out (noSuchInstance), it is never replaced by 0. Values and
strings that recur are shared with the previous build.
"""

from __future__ import annotations

import functools
import logging
import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hvmon.core.gcpause import paused_gc
from hvmon.core.snapshot.model import DomainSnapshot, Snapshot, StatValue
from hvmon.plugins.snmp import libvirt_mib, oids
from hvmon.plugins.snmp.table import OidTable
from hvmon.plugins.snmp.types import (
    OID,
    Tag,
    Value,
    VarBind,
)

if TYPE_CHECKING:
    pass

#: ``source(max_age)`` returns a snapshot (the daemon's ``ctx.snapshot.get``)
Source = Callable[[float | None], Snapshot]
Index = tuple[int, ...]
Row = tuple[Index, list[Value | None]]

log = logging.getLogger("hvmon.agent.snmp")

_MAX32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF
ADMIN_STRING_MAX = 255  # SnmpAdminString
PATH_MAX = 1024  # HvmonPath

TRUE, FALSE = Value(Tag.INTEGER, 1), Value(Tag.INTEGER, 2)  # TruthValue
C64 = Tag.COUNTER64
ROW_ACTIVE, ROW_NOT_IN_SERVICE = 1, 2
ROW_CREATE_AND_GO, ROW_CREATE_AND_WAIT, ROW_DESTROY, ROW_NOT_READY = 4, 5, 6, 3

# virDomainState values used by the SET rules
RUNNING, PAUSED, SHUTDOWN, SHUTOFF = 1, 3, 4, 5
HVMON_STATE_VALUES = frozenset(range(0, 8))

# --- small value helpers ------------------------------------------------------

_new = object.__new__
_set_tag = Value.tag.__set__  # type: ignore[attr-defined]
_set_data = Value.data.__set__  # type: ignore[attr-defined]


def _value(tag: Tag, data: int | bytes) -> Value:
    """``Value(tag, data)`` without the frozen dataclass ``__init__``: twice as fast.

    Sets the same two slots ``__init__`` sets; the table build makes one per
    cell, hundreds of thousands per snapshot at 10,000 domains.
    """
    v = _new(Value)
    _set_tag(v, tag)
    _set_data(v, data)
    return v


_INTS: dict[int, Value] = {}


def _int(n: int) -> Value:
    """An INTEGER value, shared for the small numbers that repeat in every row."""
    v = _INTS.get(n)
    if v is None:
        v = Value(Tag.INTEGER, n)
        if -2 <= n <= 1024:
            _INTS[n] = v
    return v


def _truth(flag: bool) -> Value:
    return TRUE if flag else FALSE


def _mac(text: str) -> Value | None:
    """A MacAddress (6 octets) from ``aa:bb:cc:dd:ee:ff``; None when it is not one."""
    try:
        octets = bytes.fromhex(text.replace(":", ""))
    except ValueError:
        return None
    return Value(Tag.OCTET_STRING, octets) if len(octets) == 6 else None


def text_value(text: str, limit: int = ADMIN_STRING_MAX) -> Value:
    """UTF-8 octets, cut at the last whole character within ``limit`` octets."""
    data = text.encode("utf-8", "replace")
    if len(data) > limit:
        data = data[:limit].decode("utf-8", "ignore").encode("utf-8")
    return _value(Tag.OCTET_STRING, data)


def _stat(stats: Mapping[str, StatValue], key: str) -> int | None:
    """A numeric stat as int, or None when the snapshot lacks it."""
    v = stats.get(key)
    if v is None or isinstance(v, str):
        return None
    return int(v)


def uuid_index(text: str) -> Index | None:
    """A UUID string as a 16-sub-identifier index, or None if it is not a UUID."""
    try:
        return tuple(uuidlib.UUID(text).bytes)
    except (ValueError, AttributeError, TypeError):
        return None


# --- table layout -------------------------------------------------------------

GUEST_COLUMNS: tuple[OID, ...] = (
    oids.GUEST_NAME, oids.GUEST_STATE, oids.GUEST_STATE_REASON, oids.GUEST_VCPUS,
    oids.GUEST_MEMORY_CURRENT, oids.GUEST_MEMORY_LIMIT, oids.GUEST_CPU_TIME,
    oids.GUEST_AUTOSTART, oids.GUEST_PERSISTENT, oids.GUEST_ROW_STATUS, oids.GUEST_ID,
    oids.GUEST_STALE, oids.GUEST_STATS_AGE,
)
DISK_COLUMNS: tuple[OID, ...] = (
    oids.DISK_TARGET, oids.DISK_PATH, oids.DISK_CAPACITY, oids.DISK_READ_BYTES,
    oids.DISK_WRITE_BYTES, oids.DISK_READ_REQUESTS, oids.DISK_WRITE_REQUESTS,
)
#: ``block.N.<suffix>`` of the numeric disk columns, in column order
_DISK_STATS = ("capacity", "rd.bytes", "wr.bytes", "rd.reqs", "wr.reqs")
IF_COLUMNS: tuple[OID, ...] = (
    oids.IF_TARGET, oids.IF_MAC, oids.IF_NETWORK, oids.IF_RX_BYTES, oids.IF_RX_PACKETS,
    oids.IF_RX_ERRORS, oids.IF_RX_DROPS, oids.IF_TX_BYTES, oids.IF_TX_PACKETS,
    oids.IF_TX_ERRORS, oids.IF_TX_DROPS,
)
#: ``net.N.<suffix>`` of the counter columns, in column order
_IF_STATS = ("rx.bytes", "rx.pkts", "rx.errs", "rx.drop", "tx.bytes", "tx.pkts", "tx.errs",
             "tx.drop")
POOL_COLUMNS: tuple[OID, ...] = (
    oids.POOL_NAME, oids.POOL_STATE, oids.POOL_CAPACITY, oids.POOL_ALLOCATION,
    oids.POOL_AVAILABLE, oids.POOL_AUTOSTART, oids.POOL_PERSISTENT, oids.POOL_VOLUMES,
)
VOLUME_COLUMNS: tuple[OID, ...] = (
    oids.VOLUME_NAME, oids.VOLUME_POOL, oids.VOLUME_PATH, oids.VOLUME_TYPE,
    oids.VOLUME_CAPACITY, oids.VOLUME_ALLOCATION,
)
NETWORK_COLUMNS: tuple[OID, ...] = (
    oids.NETWORK_NAME, oids.NETWORK_ACTIVE, oids.NETWORK_PERSISTENT, oids.NETWORK_AUTOSTART,
    oids.NETWORK_BRIDGE, oids.NETWORK_FORWARD_MODE, oids.NETWORK_DHCP_LEASES,
    oids.NETWORK_DHCP_RANGE_SIZE,
)
LIBVIRT_COLUMNS: tuple[OID, ...] = tuple(oid for oid, _ in libvirt_mib.COLUMNS)

#: the objects (scalars and readable columns) of HVMON-MIB
HVMON_OBJECTS: frozenset[OID] = frozenset(
    (*oids.HOST_SCALARS, *GUEST_COLUMNS, *DISK_COLUMNS, *IF_COLUMNS, *POOL_COLUMNS,
     *VOLUME_COLUMNS, *NETWORK_COLUMNS))
LIBVIRT_OBJECTS: frozenset[OID] = frozenset(LIBVIRT_COLUMNS)


def _keys(prefix: str, n: int, suffixes: Sequence[str]) -> tuple[str, ...]:
    return tuple(f"{prefix}.{n}.{s}" for s in suffixes)


@functools.cache
def _block_keys(n: int) -> tuple[str, ...]:
    """``block.N.name``, ``block.N.path``, then the numeric disk stats."""
    return _keys("block", n, ("name", "path", *_DISK_STATS))


@functools.cache
def _net_keys(n: int) -> tuple[str, ...]:
    """``net.N.name``, then the interface counters."""
    return _keys("net", n, ("name", *_IF_STATS))


def _count(stats: Mapping[str, StatValue], key: str) -> int:
    n = _stat(stats, key)
    return min(max(n or 0, 0), 65536)


class VolumeIndexer:
    """Gives each (pool UUID, volume name) a number that stays its index while the agent runs."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}
        self._next: dict[str, int] = {}

    def index(self, pool_uuid: str, name: str) -> int:
        key = (pool_uuid, name)
        n = self._ids.get(key)
        if n is None:
            n = self._next.get(pool_uuid, 1)
            self._next[pool_uuid] = n + 1
            self._ids[key] = n
        return n


@dataclass(frozen=True)
class Built:
    """A table and what SET validation needs from the same snapshot."""

    table: OidTable
    snapshot: Snapshot | None
    domains: Mapping[Index, DomainSnapshot]


class TableBuilder:
    """Builds the OidTable of a snapshot, reusing what did not change since the last one.

    Rows are made per table, sorted by index, then emitted column by column,
    so the entries come out in OID order and ``OidTable.presorted`` only
    checks it. Across generations the builder keeps each column's instance
    OIDs (reused while a table's rows are the same), each UUID's index tuple
    and the Gauge32 values of recurring sizes. The cyclic garbage collector
    is paused while a table is built (hundreds of thousands of new objects,
    none in a cycle).
    """

    GAUGE_CACHE_MAX = 65536

    def __init__(self, *, libvirt_compat: bool = False) -> None:
        self.libvirt_compat = libvirt_compat
        self.volumes = VolumeIndexer()
        self._index: dict[str, Index] = {}
        self._gauges: dict[int, Value] = {}
        #: (text, limit) -> value, for the strings of the last build (names, targets, paths)
        self._texts: dict[tuple[str, int], Value] = {}
        self._new_texts: dict[tuple[str, int], Value] = {}
        #: table name -> (row indexes, {column: instance OIDs of every row})
        self._oid_cache: dict[str, tuple[list[Index], dict[OID, list[OID]]]] = {}

    def build(self, snap: Snapshot, *, uptime_ticks: int) -> Built:
        self._new_texts = {}
        try:
            with paused_gc():
                built = self._build(snap, uptime_ticks)
            self._texts = self._new_texts
            return built
        finally:
            self._new_texts = {}

    # -- values ------------------------------------------------------------------

    def _gauge(self, n: int) -> Value:
        """A Gauge32/Unsigned32 value clamped to 0..2^32-1; recurring ones shared."""
        v = self._gauges.get(n)
        if v is None:
            v = Value(Tag.GAUGE32, min(max(n, 0), _MAX32))
            if len(self._gauges) < self.GAUGE_CACHE_MAX:
                self._gauges[n] = v
        return v

    def _str(self, text: str, limit: int = ADMIN_STRING_MAX) -> Value:
        """:func:`_text`, shared with the previous build when the string is the same."""
        key = (text, limit)
        v = self._texts.get(key)
        if v is None:
            v = text_value(text, limit)
        self._new_texts[key] = v
        return v

    def _uuid(self, text: str, index: dict[str, Index]) -> Index | None:
        idx = self._index.get(text)
        if idx is None:
            idx = uuid_index(text)
            if idx is None:
                return None
        index[text] = idx
        return idx

    # -- the tables --------------------------------------------------------------

    def _build(self, snap: Snapshot, uptime_ticks: int) -> Built:
        out_oids: list[OID] = []
        out_values: list[Value] = []
        index: dict[str, Index] = {}
        for oid, value in self._host(snap, uptime_ticks):
            out_oids.append(oid)
            out_values.append(value)

        indexed: list[tuple[Index, DomainSnapshot]] = []
        for dom in snap.domains:
            idx = self._uuid(dom.uuid, index)
            if idx is None:
                log.warning("domain %s has no valid UUID; left out of the MIB", dom.name)
                continue
            indexed.append((idx, dom))
        indexed.sort(key=lambda pair: pair[0])

        guest_rows: list[Row] = []
        libvirt_rows: list[Row] = []
        disk_rows: list[Row] = []
        if_rows: list[Row] = []
        compat = self.libvirt_compat
        row_active = _int(libvirt_mib.ROW_ACTIVE)
        for idx, dom in indexed:
            values = self._guest(dom)
            guest_rows.append((idx, values))
            if compat:
                libvirt_rows.append((idx, libvirt_mib.guest_row(
                    dom, values[0], values[1], row_active, self._gauge, _c64)))
            stats = dom.stats
            if stats:
                if "block.count" in stats:
                    self._disks(disk_rows, idx, stats)
                if "net.count" in stats:
                    self._interfaces(if_rows, idx, dom)

        emit = functools.partial(self._emit, out_oids, out_values)
        emit("guest", GUEST_COLUMNS, guest_rows)
        emit("disk", DISK_COLUMNS, disk_rows)
        emit("if", IF_COLUMNS, if_rows)
        pool_rows, volume_rows = self._storage(snap, index)
        emit("pool", POOL_COLUMNS, pool_rows)
        emit("volume", VOLUME_COLUMNS, volume_rows)
        emit("network", NETWORK_COLUMNS, self._networks(snap, index))
        objects = HVMON_OBJECTS
        if compat:
            emit("libvirt", LIBVIRT_COLUMNS, libvirt_rows)
            objects = HVMON_OBJECTS | LIBVIRT_OBJECTS
        self._index = index
        table = OidTable.presorted(out_oids, out_values, objects, generation=snap.generation)
        return Built(table, snap, dict(indexed))

    def _emit(self, out_oids: list[OID], out_values: list[Value], name: str,
              columns: Sequence[OID], rows: list[Row]) -> None:
        """Append ``rows`` column by column; a None cell is left out."""
        if not rows:
            return
        indexes = [idx for idx, _ in rows]
        cached = self._oid_cache.get(name)
        if cached is None or cached[0] != indexes:
            cached = (indexes, {})
            self._oid_cache[name] = cached
        column_oids = cached[1]
        by_column = zip(*[row for _, row in rows], strict=True)
        for prefix, values in zip(columns, by_column, strict=True):
            present = [v for v in values if v is not None]
            if len(present) == len(values):
                instances = column_oids.get(prefix)
                if instances is None:
                    instances = column_oids[prefix] = [prefix + idx for idx in indexes]
                out_oids.extend(instances)
                out_values.extend(present)
            else:
                for idx, v in zip(indexes, values, strict=True):
                    if v is not None:
                        out_oids.append(prefix + idx)
                        out_values.append(v)

    def _host(self, snap: Snapshot, uptime_ticks: int) -> list[VarBind]:
        h = snap.host
        counts = [0] * 8
        stale = 0
        for dom in snap.domains:
            if 0 <= dom.state < 8:
                counts[dom.state] += 1
            stale += dom.stale
        gauge = self._gauge
        values: dict[OID, Value | None] = {
            oids.HOST_NAME: text_value(h.hostname),
            oids.HOST_HYPERVISOR_TYPE: text_value(h.driver),
            oids.HOST_HYPERVISOR_VERSION: (text_value(h.hypervisor_version)
                                           if h.hypervisor_version else None),
            oids.HOST_CPU_MODEL: text_value(h.cpu_model),
            oids.HOST_CPUS: gauge(h.cpus),
            oids.HOST_CPU_MHZ: gauge(h.mhz),
            oids.HOST_MEMORY_TOTAL: gauge(h.memory_kib),
            oids.HOST_MEMORY_FREE: (None if h.free_memory_kib is None
                                    else gauge(h.free_memory_kib)),
            oids.HOST_AGENT_UPTIME: Value(Tag.TIMETICKS, uptime_ticks & _MAX32),
            oids.HOST_SNAPSHOT_AGE: gauge(int(snap.age() * 1000)),
            oids.HOST_SNAPSHOT_GENERATION: Value(Tag.COUNTER32, snap.generation & _MAX32),
            oids.HOST_DOMAINS: gauge(len(snap.domains)),
            oids.HOST_DOMAINS_STALE: gauge(stale),
        }
        for state, oid in enumerate(oids.HOST_DOMAINS_BY_STATE):
            values[oid] = gauge(counts[state])
        return [(oid + (0,), v) for oid, v in sorted(values.items()) if v is not None]

    def _guest(self, dom: DomainSnapshot) -> list[Value | None]:
        cpu = dom.stats.get("cpu.time")
        gauge = self._gauge
        return [
            self._str(dom.name),
            _int(dom.state),
            _int(dom.reason),
            gauge(dom.vcpus),
            gauge(dom.memory_kib),
            gauge(dom.max_memory_kib),
            None if cpu is None or isinstance(cpu, str) else _value(C64, int(cpu) & _MASK64),
            TRUE if dom.autostart else FALSE,
            TRUE if dom.persistent else FALSE,
            _int(ROW_ACTIVE if dom.active else ROW_NOT_IN_SERVICE),
            _int(dom.id),
            TRUE if dom.stale else FALSE,
            gauge(int(dom.age * 1000)),
        ]

    def _disks(self, rows: list[Row], idx: Index, stats: Mapping[str, StatValue]) -> None:
        get, value = stats.get, _value
        for n in range(_count(stats, "block.count")):
            name_key, path_key, *keys = _block_keys(n)
            name, path = get(name_key), get(path_key)
            values: list[Value | None] = [
                self._str(name) if isinstance(name, str) else None,
                self._str(path, PATH_MAX) if isinstance(path, str) else None,
            ]
            for v in map(get, keys):
                values.append(None if v is None or isinstance(v, str)
                              else value(C64, int(v) & _MASK64))
            rows.append(((*idx, n), values))

    def _interfaces(self, rows: list[Row], idx: Index, dom: DomainSnapshot) -> None:
        stats = dom.stats
        get, value = stats.get, _value
        for n in range(_count(stats, "net.count")):
            name_key, *keys = _net_keys(n)
            name = get(name_key)
            nic = dom.nic(name if isinstance(name, str) else "", n)  # MAC, network: the XML
            mac = _mac(nic.mac) if nic is not None else None
            values: list[Value | None] = [
                self._str(name) if isinstance(name, str) else None, mac,
                self._str(nic.source) if nic is not None and nic.source else None]
            for v in map(get, keys):
                values.append(None if v is None or isinstance(v, str)
                              else value(C64, int(v) & _MASK64))
            rows.append(((*idx, n), values))

    def _storage(self, snap: Snapshot, index: dict[str, Index]) -> tuple[list[Row], list[Row]]:
        pool_rows: list[Row] = []
        pools: dict[str, tuple[str, Index]] = {}
        for pool in snap.pools:
            idx = self._uuid(pool.uuid, index)
            if idx is None:
                continue
            pools[pool.name] = (pool.uuid, idx)
            pool_rows.append((idx, [
                self._str(pool.name), _int(pool.state), _c64(pool.capacity),
                _c64(pool.allocation), _c64(pool.available), _truth(pool.autostart),
                _truth(pool.persistent), self._gauge(pool.volume_count),
            ]))
        volume_rows: list[Row] = []
        for vol in snap.volumes:
            owner = pools.get(vol.pool)
            if owner is None:
                continue
            pool_uuid, idx = owner
            volume_rows.append(((*idx, self.volumes.index(pool_uuid, vol.name)), [
                self._str(vol.name), self._str(vol.pool), self._str(vol.path, PATH_MAX),
                _int(vol.type), _c64(vol.capacity), _c64(vol.allocation),
            ]))
        pool_rows.sort(key=lambda row: row[0])
        volume_rows.sort(key=lambda row: row[0])
        return pool_rows, volume_rows

    def _networks(self, snap: Snapshot, index: dict[str, Index]) -> list[Row]:
        rows: list[Row] = []
        for net in snap.networks:
            idx = self._uuid(net.uuid, index)
            if idx is None:
                continue
            rows.append((idx, [
                self._str(net.name), _truth(net.active), _truth(net.persistent),
                _truth(net.autostart), self._str(net.bridge), self._str(net.forward_mode),
                self._gauge(net.dhcp_leases), self._gauge(net.dhcp_range_size),
            ]))
        rows.sort(key=lambda row: row[0])
        return rows


def _c64(n: int) -> Value:
    return _value(C64, n & _MASK64)


def build_table(snap: Snapshot, *, uptime_ticks: int = 0, libvirt_compat: bool = False) -> Built:
    """The table of one snapshot, built from scratch (benchmarks, tests)."""
    return TableBuilder(libvirt_compat=libvirt_compat).build(snap, uptime_ticks=uptime_ticks)
