"""libvirt exporter names, for ``compat = "libvirt"`` or ``"both"``.

The union of Debian's ``prometheus-libvirt-exporter`` (kumina 0.2.0) and the
maintained inovex exporter, so existing dashboards and alerts keep working.
Where the two disagree on labels for one name, the union of their labels is
used (a query on a subset of labels matches either way). docs/prometheus.md
maps every name to its hvmon equivalent.
"""

from __future__ import annotations

from hvmon.core.snapshot.model import Snapshot
from hvmon.plugins.prometheus.collector import KIB, NS, indexed_stats
from hvmon.plugins.prometheus.exposition import Family, FamilySpec

DOM = ("domain", "uuid")
BLOCK = (*DOM, "source_file", "target_device")
IFACE = (*DOM, "source_bridge", "target_device")


def _g(name: str, help: str, labels: tuple[str, ...] = ()) -> FamilySpec:  # noqa: A002
    return FamilySpec(name, "gauge", help, labels)


def _c(name: str, help: str, labels: tuple[str, ...] = ()) -> FamilySpec:  # noqa: A002
    return FamilySpec(name, "counter", help, labels)


UP = _g("libvirt_up", "Whether scraping libvirt's metrics was successful.")
DOMAINS_NUMBER = _g("libvirt_domains_number", "Number of domains.")
DOMAINS = _g("libvirt_domains", "Number of domains.")
STATE_CODE = _g("libvirt_domain_state_code", "State of the domain.", DOM)
INFO = _g("libvirt_domain_info", "Metadata of the domain (value 1).",
          (*DOM, "os_type", "os_type_machine", "os_type_arch"))
INFO_STATE = _g("libvirt_domain_info_state", "Code of the domain state, with its description.",
                (*DOM, "state_desc"))
MAX_MEMORY = _g("libvirt_domain_info_maximum_memory_bytes",
                "Maximum allowed memory of the domain, in bytes.", DOM)
MEMORY = _g("libvirt_domain_info_memory_usage_bytes", "Memory usage of the domain, in bytes.",
            DOM)
VCPUS = _g("libvirt_domain_info_virtual_cpus", "Number of virtual CPUs for the domain.", DOM)
CPU_TIME = _c("libvirt_domain_info_cpu_time_seconds",
              "Amount of CPU time used by the domain, in seconds.", DOM)
TIMED_OUT = _g("libvirt_domain_timed_out",
               "1 if the domain's statistics could not be read in time.", DOM)
MEMORY_STATS = {
    key: _g(f"libvirt_domain_memory_stats_{name}_bytes", text, DOM)
    for key, name, text in (
        ("balloon.swap_in", "swap_in", "Memory swapped in for this domain."),
        ("balloon.swap_out", "swap_out", "Memory swapped out for this domain."),
        ("balloon.unused", "unused", "Memory unused by the domain."),
        ("balloon.available", "available", "Memory available to the domain."),
        ("balloon.usable", "usable", "Memory usable by the domain."),
        ("balloon.rss", "rss", "Resident set size of the process running the domain."),
    )
}
BLOCK_STATS = {
    "rd.bytes": _c("libvirt_domain_block_stats_read_bytes",
                   "Number of bytes read from a block device, in bytes.", BLOCK),
    "rd.reqs": _c("libvirt_domain_block_stats_read_requests",
                  "Number of read requests from a block device.", BLOCK),
    "wr.bytes": _c("libvirt_domain_block_stats_write_bytes",
                   "Number of bytes written from a block device, in bytes.", BLOCK),
    "wr.reqs": _c("libvirt_domain_block_stats_write_requests",
                  "Number of write requests from a block device.", BLOCK),
    "fl.reqs": _c("libvirt_domain_block_stats_flush_requests",
                  "Number of flush requests from a block device.", BLOCK),
    "rd.times": _c("libvirt_domain_block_stats_read_time_seconds",
                   "Time spent reading from a block device, in seconds.", BLOCK),
    "wr.times": _c("libvirt_domain_block_stats_write_time_seconds",
                   "Time spent writing to a block device, in seconds.", BLOCK),
    "fl.times": _c("libvirt_domain_block_stats_flush_time_seconds",
                   "Time spent flushing a block device, in seconds.", BLOCK),
    "capacity": _g("libvirt_domain_block_stats_capacity_bytes",
                   "Logical size of a block device, in bytes.", BLOCK),
}
IFACE_STATS = {
    f"{way}.{key}": _c(f"libvirt_domain_interface_stats_{word}_{unit}",
                       f"Number of {text} on a network interface.", IFACE)
    for way, word, verb in (("rx", "receive", "received"), ("tx", "transmit", "transmitted"))
    for key, unit, text in (("bytes", "bytes", f"bytes {verb}"),
                            ("pkts", "packets", f"packets {verb}"),
                            ("errs", "errors", f"packet {word} errors"),
                            ("drop", "drops", f"packet {word} drops"))
}
VCPU = {
    key: _c(f"libvirt_domain_vcpu_{name}_seconds", text, (*DOM, "vcpu"))
    for key, name, text in (("time", "time", "Time the vCPU ran, in seconds."),
                            ("wait", "wait", "Time the vCPU waited on I/O, in seconds."),
                            ("delay", "delay", "Time the vCPU waited for a host CPU."))
}
POOL = ("storage_pool",)
POOL_FAMILIES = {
    "state": _g("libvirt_storage_pool_state", "State of the storage pool.", POOL),
    "capacity": _g("libvirt_storage_pool_capacity_bytes", "Size of the pool, in bytes.", POOL),
    "allocation": _g("libvirt_storage_pool_allocation_bytes",
                     "Bytes allocated in the pool.", POOL),
    "available": _g("libvirt_storage_pool_available_bytes",
                    "Bytes available in the pool.", POOL),
}
STATE_DESC = {
    0: "no state", 1: "the domain is running", 2: "the domain is blocked on resource",
    3: "the domain is paused by user", 4: "the domain is being shut down",
    5: "the domain is shut off", 6: "the domain is crashed",
    7: "the domain is suspended by guest power management",
}


def all_specs() -> list[FamilySpec]:
    """Every libvirt-named family."""
    return [UP, DOMAINS_NUMBER, DOMAINS, STATE_CODE, INFO, INFO_STATE, MAX_MEMORY, MEMORY,
            VCPUS, CPU_TIME, TIMED_OUT, *MEMORY_STATS.values(), *BLOCK_STATS.values(),
            *IFACE_STATS.values(), *VCPU.values(), *POOL_FAMILIES.values()]


def libvirt_families(snap: Snapshot, up: bool) -> list[Family]:
    """The libvirt exporters' families for ``snap``."""
    out = {spec.name: Family(spec) for spec in all_specs()}
    out[UP.name].add((), 1 if up else 0)
    out[DOMAINS_NUMBER.name].add((), len(snap.domains))
    out[DOMAINS.name].add((), len(snap.domains))
    for d in snap.domains:
        key = (d.name, d.uuid)
        stats = d.stats
        out[STATE_CODE.name].add(key, d.state)
        out[INFO.name].add((*key, d.os_type, d.machine, d.arch), 1)
        out[INFO_STATE.name].add((*key, STATE_DESC.get(d.state, "unknown")), d.state)
        out[MAX_MEMORY.name].add(key, d.max_memory_kib * KIB)
        out[MEMORY.name].add(key, d.memory_kib * KIB)
        out[VCPUS.name].add(key, d.vcpus)
        if "cpu.time" in stats:
            out[CPU_TIME.name].add(key, int(stats["cpu.time"]) * NS)
        out[TIMED_OUT.name].add(key, 1 if d.stale else 0)
        for stat, spec in MEMORY_STATS.items():
            if stat in stats:
                out[spec.name].add(key, int(stats[stat]) * KIB)
        for _, values in indexed_stats(stats, "block"):
            labels = (*key, str(values.get("path", "")), str(values.get("name", "")))
            for stat, spec in BLOCK_STATS.items():
                if stat in values:
                    scale = NS if stat.endswith(".times") else 1
                    out[spec.name].add(labels, int(values[stat]) * scale)
        for _, values in indexed_stats(stats, "net"):
            labels = (*key, str(values.get("bridge", "")), str(values.get("name", "")))
            for stat, spec in IFACE_STATS.items():
                if stat in values:
                    out[spec.name].add(labels, int(values[stat]))
        for index, values in indexed_stats(stats, "vcpu"):
            for stat, spec in VCPU.items():
                if stat in values:
                    out[spec.name].add((*key, index), int(values[stat]) * NS)
    for p in snap.pools:
        out[POOL_FAMILIES["state"].name].add((p.name,), p.state)
        out[POOL_FAMILIES["capacity"].name].add((p.name,), p.capacity)
        out[POOL_FAMILIES["allocation"].name].add((p.name,), p.allocation)
        out[POOL_FAMILIES["available"].name].add((p.name,), p.available)
    return list(out.values())
