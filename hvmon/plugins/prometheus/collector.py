"""Metric families from a snapshot, one builder per collector group.

:func:`build_group` turns a :class:`~hvmon.core.snapshot.model.Snapshot` into
the families of one group; :class:`SnapshotCollector` is the
prometheus_client custom collector over the same builders (fresh families
per ``collect()``, a static ``describe()``), for registries and tests.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client.core import Metric

from hvmon import __version__
from hvmon.core.snapshot.model import DomainSnapshot, Snapshot
from hvmon.core.types import DomainState
from hvmon.plugins.prometheus import families as fam
from hvmon.plugins.prometheus.exposition import Family, FamilySpec, to_client_family

NS = 1e-9  # libvirt reports times in nanoseconds
KIB = 1024

Builder = Callable[[Snapshot], list[Family]]


def _new(table: Mapping[str, FamilySpec]) -> dict[str, Family]:
    return {key: Family(spec) for key, spec in table.items()}


def host(snap: Snapshot) -> list[Family]:
    f = _new(fam.HOST)
    h = snap.host
    f["info"].add((h.hostname, h.uri, h.driver, h.driver, h.cpu_model), 1)
    f["cpus"].add((), h.cpus)
    f["cpu_frequency"].add((), h.mhz * 1_000_000)
    f["memory"].add((), h.memory_kib * KIB)
    if h.free_memory_kib is not None:
        f["memory_free"].add((), h.free_memory_kib * KIB)
    counts = dict.fromkeys((s.label for s in DomainState), 0)
    for dom in snap.domains:
        counts[dom.state_label] = counts.get(dom.state_label, 0) + 1
    for state, count in counts.items():
        f["domains"].add((state,), count)
    return list(f.values())


def domain(snap: Snapshot) -> list[Family]:
    f = _new(fam.DOMAIN)
    for d in snap.domains:
        key = (d.name, d.uuid)
        f["info"].add((*key, d.os_type, d.machine, _bool(d.persistent), _bool(d.autostart)), 1)
        f["state"].add(key, d.state)
        f["state_reason"].add(key, d.reason)
        f["status"].add((*key, d.state_label, d.reason_label), 1)
        f["vcpus"].add(key, d.vcpus)
        f["vcpus_max"].add(key, d.max_vcpus)
        f["memory_max"].add(key, d.max_memory_kib * KIB)
        f["memory"].add(key, d.memory_kib * KIB)
        stats = d.stats
        if "balloon.rss" in stats:
            f["memory_rss"].add(key, int(stats["balloon.rss"]) * KIB)
        if "cpu.time" in stats:
            f["cpu_time"].add(key, int(stats["cpu.time"]) * NS)
        f["timed_out"].add(key, 1 if d.stale else 0)
        f["stats_age"].add(key, d.age)
    return list(f.values())


def vcpu(snap: Snapshot) -> list[Family]:
    f = _new(fam.VCPU_FAMILIES)
    grouped = _grouped(snap)
    for d, groups in zip(snap.domains, grouped, strict=True):
        for index, values in groups.get("vcpu", ()):
            labels = (d.name, d.uuid, index)
            for key in ("time", "wait", "delay"):
                if key in values:
                    f[key].add(labels, int(values[key]) * NS)
    return list(f.values())


def block(snap: Snapshot) -> list[Family]:
    f = _new(fam.BLOCK_FAMILIES)
    for d, groups in zip(snap.domains, _grouped(snap), strict=True):
        for _, values in groups.get("block", ()):
            labels = (d.name, d.uuid, str(values.get("name", "")), str(values.get("path", "")))
            for key, family in f.items():
                if key in values:
                    scale = NS if key.endswith(".times") else 1
                    family.add(labels, int(values[key]) * scale)
    return list(f.values())


def interface(snap: Snapshot) -> list[Family]:
    f = _new(fam.INTERFACE_FAMILIES)
    for d, groups in zip(snap.domains, _grouped(snap), strict=True):
        for _, values in groups.get("net", ()):
            labels = (d.name, d.uuid, str(values.get("name", "")),
                      str(values.get("bridge", "")))
            for key, family in f.items():
                if key in values:
                    family.add(labels, int(values[key]))
    return list(f.values())


def job(snap: Snapshot) -> list[Family]:
    f = _new(fam.JOB)
    for d in snap.domains:
        j = d.job
        if not j.active:
            continue
        key = (d.name, d.uuid)
        f["type"].add(key, j.type)
        f["elapsed"].add(key, j.time_elapsed_ms / 1000)
        f["remaining"].add(key, j.time_remaining_ms / 1000)
        f["data_total"].add(key, j.data_total)
        f["data_processed"].add(key, j.data_processed)
        f["data_remaining"].add(key, j.data_remaining)
    return list(f.values())


def pool(snap: Snapshot) -> list[Family]:
    f = _new(fam.POOL_FAMILIES)
    for p in snap.pools:
        key = (p.name, p.uuid)
        f["info"].add((*key, _bool(p.persistent), _bool(p.autostart)), 1)
        f["state"].add(key, p.state)
        f["capacity"].add(key, p.capacity)
        f["allocation"].add(key, p.allocation)
        f["available"].add(key, p.available)
    return list(f.values())


def volume(snap: Snapshot) -> list[Family]:
    f = _new(fam.VOLUME_FAMILIES)
    for v in snap.volumes:
        key = (v.pool, v.name, v.path)
        f["capacity"].add(key, v.capacity)
        f["allocation"].add(key, v.allocation)
    return list(f.values())


def network(snap: Snapshot) -> list[Family]:
    f = _new(fam.NETWORK)
    for n in snap.networks:
        key = (n.name, n.uuid, n.bridge)
        f["active"].add(key, 1 if n.active else 0)
        f["persistent"].add(key, 1 if n.persistent else 0)
        f["autostart"].add(key, 1 if n.autostart else 0)
        f["leases"].add(key, n.dhcp_leases)
        f["range"].add(key, n.dhcp_range_size)
    return list(f.values())


def events(snap: Snapshot) -> list[Family]:
    f = _new(fam.EVENTS)
    for event, count in sorted(snap.events.items()):
        f["events"].add((event,), count)
    return list(f.values())


BUILDERS: dict[str, Builder] = {
    "host": host, "domain": domain, "vcpu": vcpu, "block": block, "interface": interface,
    "job": job, "pool": pool, "volume": volume, "network": network, "events": events,
}


def build_info() -> Family:
    family = Family(fam.EXPORTER["build"])
    family.add((__version__, platform.python_version()), 1)
    return family


def _bool(value: bool) -> str:
    return "true" if value else "false"


IndexedGroups = dict[str, list[tuple[str, dict[str, Any]]]]
#: the per-device stats groups rendered per index
INDEXED_PREFIXES = frozenset({"vcpu", "block", "net"})


def indexed_stats(stats: Mapping[str, Any], prefix: str) -> list[tuple[str, dict[str, Any]]]:
    """``block.0.rd.bytes`` style keys grouped per index: [("0", {"rd.bytes": ...}), ...]."""
    return group_indexed(stats, frozenset({prefix})).get(prefix, [])


def group_indexed(stats: Mapping[str, Any],
                  prefixes: frozenset[str] = INDEXED_PREFIXES) -> IndexedGroups:
    """The ``<prefix>.<N>.<key>`` stats of ``prefixes`` per prefix and index, in one pass."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for key, value in stats.items():
        parts = key.split(".", 2)
        if len(parts) == 3 and parts[0] in prefixes and parts[1].isdigit():
            found.setdefault(parts[0], {}).setdefault(parts[1], {})[parts[2]] = value
    return {prefix: sorted(groups.items(), key=lambda item: int(item[0]))
            for prefix, groups in found.items()}


class _GroupedCache:
    """The indexed groups of every domain of the last snapshot rendered.

    The vcpu, block and interface builders run one after another on the same
    snapshot; this groups each domain's stats once for all three.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snap: Snapshot | None = None
        self._groups: list[IndexedGroups] = []

    def get(self, snap: Snapshot) -> list[IndexedGroups]:
        with self._lock:
            if self._snap is snap:
                return self._groups
        groups = [group_indexed(d.stats) for d in snap.domains]
        with self._lock:
            self._snap, self._groups = snap, groups
        return groups


_grouped = _GroupedCache().get


class SnapshotCollector:
    """A prometheus_client collector serving ``groups`` of the snapshot ``source()`` gives."""

    def __init__(self, source: Callable[[], Snapshot],
                 groups: frozenset[str] = frozenset(BUILDERS)) -> None:
        self._source = source
        self._groups = groups

    def describe(self) -> Iterator[Metric]:
        for spec in fam.all_specs():
            yield to_client_family(Family(spec))

    def collect(self) -> Iterator[Metric]:
        snap = self._source()
        for name in BUILDERS:
            if name in self._groups:
                for family in BUILDERS[name](snap):
                    yield to_client_family(family)


def domain_key(d: DomainSnapshot) -> tuple[str, str]:
    """The ``domain`` and ``uuid`` label values of a domain."""
    return d.name, d.uuid
