"""Snapshot → collectd value lists and notifications, named like collectd's virt plugin.

Domains get plugin ``virt`` and the virt plugin's types (``virt_cpu_total``,
``virt_vcpu-N``, ``disk_octets-<dev>``, ``if_octets-<nic>``, ``memory-<kind>``,
``domain_state`` ...); pools are ``df-pool-<name>/df_complex-used|free|reserved``
(the df plugin's layout, so df dashboards show them); the host is
``hvmon/count-domains...``. Units follow the virt plugin: nanoseconds for CPU
and disk times, bytes for memory. The data-set definitions (:data:`DATASETS`)
are those of collectd's ``types.db``; a test checks them against the real file.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from hvmon.core.events import LifecycleEvent, detail_label
from hvmon.core.snapshot.model import DomainSnapshot, PoolSnapshot, Snapshot
from hvmon.core.types import DomainState

#: collectd's data-source kinds (the codes of the binary protocol)
COUNTER, GAUGE, DERIVE, ABSOLUTE = 0, 1, 2, 3
KIND_NAMES = {COUNTER: "COUNTER", GAUGE: "GAUGE", DERIVE: "DERIVE", ABSOLUTE: "ABSOLUTE"}

_ONE_DERIVE = (("value", DERIVE),)
_RW = (("read", DERIVE), ("write", DERIVE))
_RXTX = (("rx", DERIVE), ("tx", DERIVE))
_ONE_GAUGE = (("value", GAUGE),)

#: every type sent, with its data sources as in types.db: name -> ((ds, kind), ...)
DATASETS: Mapping[str, tuple[tuple[str, int], ...]] = {
    "virt_cpu_total": _ONE_DERIVE,
    "virt_vcpu": _ONE_DERIVE,
    "disk_octets": _RW,
    "disk_ops": _RW,
    "disk_time": _RW,
    "if_octets": _RXTX,
    "if_packets": _RXTX,
    "if_errors": _RXTX,
    "if_dropped": _RXTX,
    "memory": _ONE_GAUGE,
    "domain_state": (("state", GAUGE), ("reason", GAUGE)),
    "df_complex": _ONE_GAUGE,
    "count": _ONE_GAUGE,
}
#: type -> kinds of its values, in order
KINDS: Mapping[str, tuple[int, ...]] = {
    name: tuple(kind for _, kind in sources) for name, sources in DATASETS.items()}

#: collectd's notification severities
FAILURE, WARNING, OKAY = 1, 2, 4
SEVERITY_NAMES = {FAILURE: "failure", WARNING: "warning", OKAY: "okay"}

HOSTNAME_FORMATS = ("hostname", "name", "uuid")
PLUGIN_INSTANCE_FORMATS = ("name", "uuid", "none")
STALE_POLICIES = ("skip", "last")

#: collectd keeps each identifier field in 128 bytes with the final NUL
MAX_FIELD_BYTES = 127
KIB = 1024


class ValueList(NamedTuple):
    """One collectd value list; its time and interval are the batch's."""

    host: str
    plugin: str
    plugin_instance: str
    type: str
    type_instance: str
    values: tuple[int | float, ...]

    @property
    def kinds(self) -> tuple[int, ...]:
        return KINDS[self.type]

    @property
    def identifier(self) -> str:
        """``host/plugin[-instance]/type[-instance]``, as collectd writes it."""
        plugin = f"{self.plugin}-{self.plugin_instance}" if self.plugin_instance else self.plugin
        kind = f"{self.type}-{self.type_instance}" if self.type_instance else self.type
        return f"{self.host}/{plugin}/{kind}"


class Notification(NamedTuple):
    """One collectd notification."""

    severity: int
    time: float
    message: str
    host: str
    plugin: str
    plugin_instance: str
    type: str
    type_instance: str


def id_field(text: str) -> str:
    """``text`` made safe as one identifier field: no ``/``, no control characters,
    at most 127 bytes of UTF-8 (collectd truncates longer fields, or rejects the
    whole network packet)."""
    if text.isprintable() and "/" not in text and len(text) <= MAX_FIELD_BYTES // 4:
        return text
    clean = "".join(c if c.isprintable() and c != "/" else "_" for c in text)
    data = clean.encode()
    if len(data) > MAX_FIELD_BYTES:
        clean = data[:MAX_FIELD_BYTES].decode(errors="ignore")
    return clean


@dataclass(frozen=True)
class Naming:
    """How a domain becomes ``host`` and plugin instance (the virt plugin's
    ``HostnameFormat`` and ``PluginInstanceFormat``; hvmon's default is the
    virt plugin configured with ``HostnameFormat hostname`` and
    ``PluginInstanceFormat name``)."""

    host: str
    hostname_format: str = "hostname"
    plugin_instance_format: str = "name"

    def __post_init__(self) -> None:
        problems = naming_problems(self.hostname_format, self.plugin_instance_format)
        if problems:
            raise ValueError("; ".join(problems))
        object.__setattr__(self, "host", id_field(self.host))

    def domain(self, name: str, uuid: str) -> tuple[str, str]:
        """``(host, plugin_instance)`` of a domain."""
        pick = {"name": name, "uuid": uuid, "hostname": self.host, "none": ""}
        return id_field(pick[self.hostname_format]), id_field(pick[self.plugin_instance_format])


def naming_problems(hostname_format: Any, plugin_instance_format: Any) -> list[str]:
    """One line per bad naming option (empty when they name every domain apart)."""
    problems = []
    if hostname_format not in HOSTNAME_FORMATS:
        problems.append(f"hostname_format: must be one of {', '.join(HOSTNAME_FORMATS)}, "
                        f"got {hostname_format!r:.40}")
    if plugin_instance_format not in PLUGIN_INSTANCE_FORMATS:
        problems.append("plugin_instance_format: must be one of "
                        f"{', '.join(PLUGIN_INSTANCE_FORMATS)}, got {plugin_instance_format!r:.40}")
    if not problems and hostname_format == "hostname" and plugin_instance_format == "none":
        problems.append("plugin_instance_format: 'none' needs hostname_format 'name' or 'uuid' "
                        "(else every domain gets the same identifiers)")
    return problems


# --- value lists ---------------------------------------------------------------------
#: balloon.* keys -> (memory type instance, scale); KiB become bytes as in the virt
#: plugin, counts (faults) and the update time are sent as they are
MEMORY = (
    ("balloon.current", "actual_balloon", KIB),
    ("balloon.swap_in", "swap_in", KIB),
    ("balloon.swap_out", "swap_out", KIB),
    ("balloon.major_fault", "major_fault", 1),
    ("balloon.minor_fault", "minor_fault", 1),
    ("balloon.unused", "unused", KIB),
    ("balloon.available", "available", KIB),
    ("balloon.usable", "usable", KIB),
    ("balloon.rss", "rss", KIB),
    ("balloon.disk_caches", "disk_caches", KIB),
    ("balloon.last-update", "last_update", 1),
)
BLOCK = (("disk_octets", "bytes"), ("disk_ops", "reqs"), ("disk_time", "times"))
NET = (("if_octets", "bytes"), ("if_packets", "pkts"), ("if_errors", "errs"),
       ("if_dropped", "drop"))


def snapshot_values(snap: Snapshot, naming: Naming, *, stale: str = "skip") -> list[ValueList]:
    """Every value list of ``snap``: host counts, each domain, each active pool.

    A stale domain (its stats missed the deadline, see docs/snapshot.md) is
    left out with ``stale="skip"``; with ``"last"`` it is sent with its last
    good values. Either way the other domains are complete: nothing is NaN.
    """
    out: list[ValueList] = []
    host_values(snap, naming.host, out)
    for dom in snap.domains:
        if dom.stale and (stale == "skip" or not dom.stats):
            continue
        host, instance = naming.domain(dom.name, dom.uuid)
        domain_values(dom, host, instance, out)
    for pool in snap.pools:
        pool_values(pool, naming.host, out)
    return out


def host_values(snap: Snapshot, host: str, out: list[ValueList]) -> None:
    """``hvmon/count-domains``, ``-domains_active``, ``-domains_stale``, ``memory-free``."""
    active = sum(1 for d in snap.domains if d.active)
    stale = sum(1 for d in snap.domains if d.stale)
    out.append(ValueList(host, "hvmon", "", "count", "domains", (float(len(snap.domains)),)))
    out.append(ValueList(host, "hvmon", "", "count", "domains_active", (float(active),)))
    out.append(ValueList(host, "hvmon", "", "count", "domains_stale", (float(stale),)))
    if snap.host.free_memory_kib is not None:
        out.append(ValueList(host, "hvmon", "", "memory", "free",
                             (float(snap.host.free_memory_kib * KIB),)))


def domain_values(dom: DomainSnapshot, host: str, instance: str,
                  out: list[ValueList]) -> None:
    """One domain: ``domain_state`` always; the counters and gauges while it is active."""
    add = out.append
    add(ValueList(host, "virt", instance, "domain_state", "",
                  (float(dom.state), float(dom.reason))))
    if not dom.active:
        return
    stats = dom.stats
    get = stats.get
    cpu = get("cpu.time")
    if isinstance(cpu, int):
        add(ValueList(host, "virt", instance, "virt_cpu_total", "", (cpu,)))
    add(ValueList(host, "virt", instance, "memory", "total", (float(dom.memory_kib * KIB),)))
    for key, kind, scale in MEMORY:
        value = get(key)
        if isinstance(value, int | float):
            add(ValueList(host, "virt", instance, "memory", kind, (float(value * scale),)))
    for key, index in _vcpu_keys(_count(get("vcpu.maximum"), get("vcpu.current"))):
        value = get(key)
        if isinstance(value, int):
            add(ValueList(host, "virt", instance, "virt_vcpu", index, (value,)))
    _devices(stats, "block", host, instance, add)
    _devices(stats, "net", host, instance, add)


def _count(*candidates: object) -> int:
    for value in candidates:
        if isinstance(value, int) and value >= 0:
            return value
    return 0


@functools.cache
def _vcpu_keys(count: int) -> tuple[tuple[str, str], ...]:
    """``(stats key, type instance)`` of each vCPU's time (built once per count)."""
    return tuple((f"vcpu.{i}.time", str(i)) for i in range(count))


@functools.cache
def _device_keys(group: str, index: int) -> tuple[str, tuple[tuple[str, str, str], ...]]:
    """The name key and ``(type, first key, second key)`` of device ``index`` of ``group``."""
    prefix = f"{group}.{index}."
    first, second, types = ("rd", "wr", BLOCK) if group == "block" else ("rx", "tx", NET)
    return f"{prefix}name", tuple((type_name, f"{prefix}{first}.{suffix}",
                                   f"{prefix}{second}.{suffix}") for type_name, suffix in types)


def _devices(stats: Mapping[str, Any], group: str, host: str, instance: str,
             add: Callable[[ValueList], None]) -> None:
    """``disk_*-<dev>`` or ``if_*-<nic>``: pairs (read/write, rx/tx) of each device."""
    get = stats.get
    for index in range(_count(get(f"{group}.count"))):
        name_key, keys = _device_keys(group, index)
        name = get(name_key)
        if not isinstance(name, str) or not name:
            continue
        device = id_field(name)
        for type_name, first, second in keys:
            a = get(first)
            b = get(second)
            if isinstance(a, int) and isinstance(b, int):
                add(ValueList(host, "virt", instance, type_name, device, (a, b)))


def pool_values(pool: PoolSnapshot, host: str, out: list[ValueList]) -> None:
    """An active pool as the df plugin shows a file system: ``df_complex-used|free|reserved``."""
    if not pool.active:
        return
    instance = id_field(f"pool-{pool.name}")
    reserved = max(0, pool.capacity - pool.allocation - pool.available)
    for kind, value in (("used", pool.allocation), ("free", pool.available),
                        ("reserved", reserved)):
        out.append(ValueList(host, "df", instance, "df_complex", kind, (float(value),)))


# --- notifications -------------------------------------------------------------------
#: lifecycle event -> the state it leads to (the virt plugin's map_domain_event_to_state)
EVENT_STATE = {
    LifecycleEvent.STARTED: DomainState.RUNNING,
    LifecycleEvent.SUSPENDED: DomainState.PAUSED,
    LifecycleEvent.RESUMED: DomainState.RUNNING,
    LifecycleEvent.STOPPED: DomainState.SHUTOFF,
    LifecycleEvent.SHUTDOWN: DomainState.SHUTDOWN,
    LifecycleEvent.PMSUSPENDED: DomainState.PMSUSPENDED,
    LifecycleEvent.CRASHED: DomainState.CRASHED,
}
#: the virt plugin's severities per state
STATE_SEVERITY = {
    DomainState.NOSTATE: OKAY, DomainState.RUNNING: OKAY, DomainState.SHUTDOWN: OKAY,
    DomainState.SHUTOFF: OKAY, DomainState.BLOCKED: WARNING, DomainState.PAUSED: WARNING,
    DomainState.PMSUSPENDED: WARNING, DomainState.CRASHED: FAILURE,
}


def event_notification(name: str, uuid: str, event: LifecycleEvent, detail: int,
                       timestamp: float, naming: Naming) -> Notification:
    """The ``virt/domain_state`` notification of one lifecycle event.

    The message reads like the virt plugin's (``Domain state: running. Reason:
    booted``); defined and undefined events, which change no state, are
    ``okay`` notifications of their own (``Domain defined: added``).
    """
    host, instance = naming.domain(name, uuid)
    state = EVENT_STATE.get(event)
    reason = detail_label(event, detail).lower()
    if state is None:
        severity, message = OKAY, f"Domain {event.name.lower()}: {reason}"
    else:
        severity, message = STATE_SEVERITY[state], f"Domain state: {state.label}. Reason: {reason}"
    return Notification(severity, timestamp, message, host, "virt", instance, "domain_state", "")
