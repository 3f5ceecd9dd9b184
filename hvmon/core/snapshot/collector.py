"""Collect one :class:`Snapshot` through the public (read-only) Connection API.

Cost at scale: the domain list is read three times (flags come as filtered lists),
bulk stats once with a per-domain deadline, and a domain's XML only when the
domain is new, its id changed, or the caller says its definition may have
changed (``changed``, fed by lifecycle events in :class:`SnapshotCache`).
A domain whose stats fail or time out keeps its previous values, marked
``stale`` with their age.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Collection, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hvmon.core.errors import (
    HvmonError,
    NoSuchDomain,
    NoSuchNetwork,
    NoSuchPool,
    NoSuchVolume,
    Unsupported,
)
from hvmon.core.snapshot.model import (
    SCHEMA_VERSION,
    DomainSnapshot,
    HostFacts,
    JobSnapshot,
    NetworkSnapshot,
    NicSnapshot,
    PoolSnapshot,
    Snapshot,
    VolumeSnapshot,
    frozen_map,
)
from hvmon.core.types import format_version
from hvmon.core.xml.network import Network as NetworkXML
from hvmon.core.xml.parser import parse_xml

if TYPE_CHECKING:
    from hvmon.core.api import Connection, Domain, Network, StoragePool
    from hvmon.core.types import DomainStats, JobInfo

log = logging.getLogger(__name__)

_GONE = (NoSuchDomain, NoSuchPool, NoSuchVolume, NoSuchNetwork)
_NO_JOB = JobSnapshot()  # shared: most domains have no job


def collect_snapshot(
    conn: Connection,
    *,
    previous: Snapshot | None,
    generation: int,
    deadline: float,
    changed: Collection[str] | None = None,
) -> Snapshot:
    """Collect the host's state into a new snapshot numbered ``generation``.

    ``previous`` supplies the last good values of domains whose stats fail or
    miss ``deadline`` (seconds per domain) and the cached XML facts;
    ``changed`` names domain UUIDs whose definition may have changed since.
    """
    started = time.time()
    clock = time.perf_counter()
    host = _host(conn, previous)
    domains = _domains(conn, previous, started, deadline, frozenset(changed or ()))
    pools, volumes = _storage(conn, previous)
    networks = _networks(conn, previous)
    counts = dict(conn.driver.events.counts)  # core-internal: the driver's event bus
    events = frozen_map({event.name.lower(): count for event, count in counts.items()})
    return Snapshot(
        schema_version=SCHEMA_VERSION, generation=generation, timestamp=started,
        duration=time.perf_counter() - clock, host=host, domains=domains, pools=pools,
        volumes=volumes, networks=networks, events=events,
    )


# --- host ---------------------------------------------------------------------

def _host(conn: Connection, previous: Snapshot | None) -> HostFacts:
    uri = conn.get_uri()
    node = conn.node_info()
    old = previous.host if previous is not None and previous.host.uri == uri else None
    caps = (old.host_uuid, old.arch, old.guest_os_types, old.guest_arches) if old else \
        _capability_facts(conn)
    version = old.hypervisor_version if old else _hypervisor_version(conn)
    return HostFacts(
        hostname=conn.get_hostname(), uri=uri, driver=uri.split(":", 1)[0].split("+", 1)[0],
        cpu_model=node.model, memory_kib=node.memory, cpus=node.cpus, mhz=node.mhz,
        numa_nodes=node.nodes, sockets=node.sockets, cores=node.cores, threads=node.threads,
        host_uuid=caps[0], arch=caps[1], guest_os_types=caps[2], guest_arches=caps[3],
        free_memory_kib=_free_memory_kib(conn), hypervisor_version=version,
    )


def _hypervisor_version(conn: Connection) -> str:
    """``"7.2.0"``, or "" when the driver cannot tell; read once per connection."""
    try:
        return format_version(conn.get_version())
    except HvmonError as exc:
        log.debug("snapshot: no hypervisor version: %s", exc)
        return ""


def _free_memory_kib(conn: Connection) -> int | None:
    """Free host memory in KiB, None when the driver cannot tell."""
    try:
        return conn.get_free_memory() // 1024
    except HvmonError as exc:
        log.debug("snapshot: no free memory figure: %s", exc)
        return None


def _capability_facts(conn: Connection) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
    """(host uuid, arch, guest OS types, guest arches); read once per connection."""
    try:
        root = parse_xml(conn.capabilities(), what="capabilities XML")
    except HvmonError as exc:
        log.debug("snapshot: no capabilities: %s", exc)
        return "", "", (), ()
    os_types = _unique(e.text or "" for e in root.iterfind("guest/os_type"))
    arches = _unique(e.get("name", "") for e in root.iterfind("guest/arch"))
    return (root.findtext("host/uuid") or "", root.findtext("host/cpu/arch") or "",
            os_types, arches)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in values if v and v.strip()))


# --- domains ------------------------------------------------------------------

def _domains(conn: Connection, previous: Snapshot | None, now: float, deadline: float,
             changed: frozenset[str]) -> tuple[DomainSnapshot, ...]:
    listed = conn.list_all_domains()
    if not listed:
        return ()
    persistent = {d.uuid for d in conn.list_all_domains(persistent=True)}
    autostart = {d.uuid for d in conn.list_all_domains(autostart=True)}
    results = conn.get_all_domain_stats(domains=listed, deadline=deadline)
    keys: dict[str, str] = {}  # one copy of each stats key: halves a snapshot's memory
    out = []
    for dom, result in zip(listed, results, strict=True):
        old = previous.domain(dom.uuid) if previous is not None else None
        flags = (dom.uuid in persistent, dom.uuid in autostart)
        snap = _one_domain(dom, result, old, now, changed, flags, keys)
        if snap is not None:
            out.append(snap)
    return tuple(out)


def _one_domain(dom: Domain, result: DomainStats, old: DomainSnapshot | None, now: float,
                changed: frozenset[str], flags: tuple[bool, bool], keys: dict[str, str]
                ) -> DomainSnapshot | None:
    """The domain's snapshot, its stale previous values, or None once it is gone."""
    try:
        try:
            return _domain(dom, result, old, now, changed, flags, keys)
        except _GONE:
            raise
        except HvmonError as exc:  # a per-domain call failed: keep the last good values
            return _stale(dom, old.id if old else -1, flags, old, exc, now)
    except _GONE:
        return None  # undefined while we looked: simply not in this snapshot


def _domain(dom: Domain, result: DomainStats, old: DomainSnapshot | None, now: float,
            changed: frozenset[str], flags: tuple[bool, bool], keys: dict[str, str]
            ) -> DomainSnapshot:
    is_persistent, is_autostart = flags
    dom_id = dom.get_id()  # -1 exactly when the domain is inactive
    is_active = dom_id >= 0
    if result.error is not None:
        if isinstance(result.error, _GONE):
            raise result.error
        return _stale(dom, dom_id, flags, old, result.error, now, dom.uuid in changed)
    if old is None or dom.uuid in changed or old.id != dom_id:
        os_type, arch, machine, xml_sizes, nics = _xml_facts(dom)
    else:
        os_type, arch, machine, nics = old.os_type, old.arch, old.machine, old.nics
        xml_sizes = (old.vcpus, old.max_vcpus, old.memory_kib, old.max_memory_kib)
    raw = result.stats  # keys interned through ``keys`` (C-level map, no Python loop)
    stats = dict(zip(map(keys.setdefault, raw, raw), raw.values(), strict=True))
    job = _job(dom.job_info()) if is_active else _NO_JOB
    return DomainSnapshot(
        uuid=dom.uuid, name=dom.name, id=dom_id, active=is_active, persistent=is_persistent,
        autostart=is_autostart, state=int(stats.get("state.state", 0)),
        reason=int(stats.get("state.reason", 0)), os_type=os_type, arch=arch, machine=machine,
        vcpus=int(stats.get("vcpu.current", xml_sizes[0])),
        max_vcpus=int(stats.get("vcpu.maximum", xml_sizes[1])),
        memory_kib=int(stats.get("balloon.current", xml_sizes[2])),
        max_memory_kib=int(stats.get("balloon.maximum", xml_sizes[3])),
        stats=frozen_map(stats), job=job, collected_at=now, age=0.0, nics=nics,
    )


def _stale(dom: Domain, dom_id: int, flags: tuple[bool, bool], old: DomainSnapshot | None,
           error: Exception, now: float, redefined: bool = False) -> DomainSnapshot:
    """The previous values of a domain whose stats failed, marked with their age."""
    message = str(error)
    code = getattr(error, "code", None)
    is_persistent, is_autostart = flags
    is_active = dom_id >= 0
    if old is not None:
        stale = replace(old, name=dom.name, id=dom_id, active=is_active,
                        persistent=is_persistent, autostart=is_autostart, stale=True,
                        age=max(0.0, now - old.collected_at), error=message, error_code=code)
        if redefined:  # the definition facts do not wait for the stats
            os_type, arch, machine, _, nics = _xml_facts(dom)
            stale = replace(stale, os_type=os_type, arch=arch, machine=machine, nics=nics)
        return stale
    os_type, arch, machine, sizes, nics = _xml_facts(dom)
    return DomainSnapshot(
        uuid=dom.uuid, name=dom.name, id=dom_id, active=is_active, persistent=is_persistent,
        autostart=is_autostart, state=0, reason=0, os_type=os_type, arch=arch,
        machine=machine, vcpus=sizes[0], max_vcpus=sizes[1], memory_kib=sizes[2],
        max_memory_kib=sizes[3], stats=frozen_map(None), job=_NO_JOB,
        collected_at=now, age=0.0, stale=True, error=message, error_code=code, nics=nics,
    )


XmlFacts = tuple[str, str, str, tuple[int, int, int, int], tuple[NicSnapshot, ...]]


def _xml_facts(dom: Domain) -> XmlFacts:
    """(os type, arch, machine, (vcpus, max vcpus, memory KiB, max memory KiB), NICs).

    Only a vanished domain raises; other errors give empty facts (logged).
    """
    try:
        root = parse_xml(dom.xml_desc(), what="domain XML")
    except _GONE:
        raise
    except HvmonError as exc:
        log.warning("snapshot: domain '%s': %s", dom.name, exc)
        return "", "", "", (0, 0, 0, 0), ()
    os_node = root.find("os/type")
    os_type = (os_node.text or "").strip() if os_node is not None else ""
    arch = os_node.get("arch", "") if os_node is not None else ""
    machine = os_node.get("machine", "") if os_node is not None else ""
    vcpu = root.find("vcpu")
    max_vcpus = _int(vcpu.text if vcpu is not None else None)
    vcpus = _int(vcpu.get("current") if vcpu is not None else None) or max_vcpus
    max_mem = _kib(root.find("memory"))
    mem = _kib(root.find("currentMemory")) or max_mem
    return os_type, arch, machine, (vcpus, max_vcpus, mem, max_mem), _nics(root)


#: the ``<source>`` attribute naming what each interface type attaches to
_NIC_SOURCE = {"network": "network", "bridge": "bridge", "direct": "dev", "vhostuser": "path",
               "hostdev": "", "user": "", "ethernet": "", "vdpa": "dev", "udp": "address",
               "server": "address", "client": "address", "mcast": "address"}


def _nics(root: Any) -> tuple[NicSnapshot, ...]:
    """The ``<interface>`` elements of a domain, in document order."""
    nics = []
    for nic in root.iterfind("devices/interface"):
        kind = nic.get("type", "")
        mac, source = nic.find("mac"), nic.find("source")
        target, model = nic.find("target"), nic.find("model")
        attribute = _NIC_SOURCE.get(kind, "")
        nics.append(NicSnapshot(
            mac=(mac.get("address", "") if mac is not None else "").lower(),
            source_type=kind,
            source=source.get(attribute, "") if source is not None and attribute else "",
            target=target.get("dev", "") if target is not None else "",
            model=model.get("type", "") if model is not None else ""))
    return tuple(nics)


_KIB = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "kb": 1000 / 1024,
        "m": 1024, "mib": 1024, "mb": 1e6 / 1024, "g": 1 << 20, "gib": 1 << 20,
        "gb": 1e9 / 1024, "t": 1 << 30, "tib": 1 << 30, "tb": 1e12 / 1024}


def _kib(element: Any) -> int:
    if element is None:
        return 0
    scale = _KIB.get((element.get("unit") or "KiB").lower(), 1)
    return int(_int(element.text) * scale)


def _int(text: str | None) -> int:
    try:
        return int((text or "").strip())
    except ValueError:
        return 0


def _job(info: JobInfo) -> JobSnapshot:
    if info.type == 0:
        return _NO_JOB
    return JobSnapshot(
        type=info.type, operation=info.operation, time_elapsed_ms=info.time_elapsed_ms,
        time_remaining_ms=info.time_remaining_ms, data_total=info.data_total,
        data_processed=info.data_processed, data_remaining=info.data_remaining,
    )


# --- storage ------------------------------------------------------------------

def _storage(conn: Connection, previous: Snapshot | None
             ) -> tuple[tuple[PoolSnapshot, ...], tuple[VolumeSnapshot, ...]]:
    pools: list[PoolSnapshot] = []
    volumes: list[VolumeSnapshot] = []
    for pool in conn.list_all_storage_pools():
        try:
            snap, vols = _pool(pool)
        except _GONE:
            continue
        except HvmonError as exc:  # keep what we knew rather than drop the pool
            log.warning("snapshot: pool '%s': %s", pool.name, exc)
            if previous is None or (snap_old := previous.pool(pool.uuid)) is None:
                continue
            snap, vols = snap_old, list(previous.pool_volumes(pool.name))
        pools.append(snap)
        volumes.extend(vols)
    return tuple(pools), tuple(volumes)


def _pool(pool: StoragePool) -> tuple[PoolSnapshot, list[VolumeSnapshot]]:
    info = pool.info()
    active = pool.is_active()
    vols = []
    if active:
        for vol in pool.list_volumes():
            try:
                vinfo = vol.info()
            except _GONE:
                continue
            vols.append(VolumeSnapshot(
                pool=pool.name, name=vol.name, key=vol.key, path=vol.path,
                type=int(vinfo.type), capacity=vinfo.capacity, allocation=vinfo.allocation,
            ))
    snap = PoolSnapshot(
        uuid=pool.uuid, name=pool.name, state=int(info.state), active=active,
        persistent=pool.is_persistent(), autostart=pool.get_autostart(),
        capacity=info.capacity, allocation=info.allocation, available=info.available,
        volume_count=len(vols),
    )
    return snap, vols


# --- networks -----------------------------------------------------------------

def _networks(conn: Connection, previous: Snapshot | None) -> tuple[NetworkSnapshot, ...]:
    out = []
    for net in conn.list_all_networks():
        try:
            out.append(_network(net))
        except _GONE:
            continue
        except HvmonError as exc:
            log.warning("snapshot: network '%s': %s", net.name, exc)
            old = previous.network(net.uuid) if previous is not None else None
            if old is not None:
                out.append(old)
    return tuple(out)


def _network(net: Network) -> NetworkSnapshot:
    xml = NetworkXML.from_xml(net.xml_desc())
    active = net.is_active()
    leases = 0
    if active:
        try:
            leases = len(net.dhcp_leases())
        except Unsupported:
            leases = 0
    return NetworkSnapshot(
        uuid=net.uuid, name=net.name, active=active, persistent=net.is_persistent(),
        autostart=net.get_autostart(), bridge=xml.bridge or "",
        forward_mode=xml.forward_mode or "", dhcp_leases=leases,
        dhcp_range_size=dhcp_range_size(xml),
    )


def dhcp_range_size(xml: NetworkXML) -> int:
    """How many addresses the network's DHCP ranges hold (IPv4 and IPv6)."""
    total = 0
    for ip in xml.ips:
        for rng in ip.dhcp_ranges:
            try:
                start = ipaddress.ip_address(rng.start or "")
                end = ipaddress.ip_address(rng.end or "")
            except ValueError:
                continue
            if start.version == end.version and end >= start:
                total += int(end) - int(start) + 1
    return total
