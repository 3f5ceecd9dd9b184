"""Every metric family the exporter can serve, by collector group.

The specs are static: ``describe()`` returns them without touching a driver,
and docs/prometheus.md lists the same table. Names follow Prometheus
conventions: prefix ``hvmon_``, base units (seconds, bytes), ``_total`` on
counters (added by :class:`FamilySpec`), ``_info`` for metadata.
"""

from __future__ import annotations

from hvmon.plugins.prometheus.exposition import FamilySpec

DOM = ("domain", "uuid")
BLOCK = (*DOM, "target_device", "source_file")
IFACE = (*DOM, "target_device", "source_bridge")
VCPU = (*DOM, "vcpu")
POOL = ("pool", "uuid")
VOLUME = ("pool", "volume", "path")
NET = ("network", "uuid", "bridge")


def _g(name: str, help: str, labels: tuple[str, ...] = ()) -> FamilySpec:  # noqa: A002
    return FamilySpec(name, "gauge", help, labels)


def _c(name: str, help: str, labels: tuple[str, ...] = ()) -> FamilySpec:  # noqa: A002
    return FamilySpec(name, "counter", help, labels)


def _i(name: str, help: str, labels: tuple[str, ...]) -> FamilySpec:  # noqa: A002
    return FamilySpec(name, "info", help, labels)


EXPORTER = {
    "up": _g("hvmon_up", "1 if the last snapshot of the host was collected, 0 otherwise."),
    "scrape_duration": _g("hvmon_scrape_duration_seconds", "Time this scrape took."),
    "collector_success": _g("hvmon_scrape_collector_success",
                            "1 if the collector group succeeded in this scrape.", ("collector",)),
    "collector_duration": _g("hvmon_scrape_collector_duration_seconds",
                             "Time the collector group took in this scrape.", ("collector",)),
    "snapshot_age": _g("hvmon_snapshot_age_seconds", "Age of the snapshot this scrape served."),
    "snapshot_generation": _g("hvmon_snapshot_generation",
                              "Generation number of the snapshot this scrape served."),
    "snapshot_duration": _g("hvmon_snapshot_collect_duration_seconds",
                            "Time the daemon took to collect the snapshot served."),
    "build": _i("hvmon_build", "hvmon build information.", ("version", "python_version")),
}

HOST = {
    "info": _i("hvmon_host", "Host and hypervisor facts.",
               ("hostname", "uri", "driver", "hypervisor", "model")),
    "cpus": _g("hvmon_host_cpus", "Number of logical CPUs of the host."),
    "cpu_frequency": _g("hvmon_host_cpu_frequency_hertz", "CPU frequency of the host."),
    "memory": _g("hvmon_host_memory_bytes", "Total memory of the host."),
    "memory_free": _g("hvmon_host_memory_free_bytes", "Free memory of the host."),
    "domains": _g("hvmon_host_domains", "Number of domains by state.", ("state",)),
}

DOMAIN = {
    "info": _i("hvmon_domain", "Domain metadata.",
               (*DOM, "os_type", "machine", "persistent", "autostart")),
    "state": _g("hvmon_domain_state", "Domain state code (virDomainState).", DOM),
    "state_reason": _g("hvmon_domain_state_reason",
                       "Reason code of the domain state (virDomain*Reason).", DOM),
    "status": _i("hvmon_domain_status", "Domain state and reason as text.",
                 (*DOM, "state", "reason")),
    "vcpus": _g("hvmon_domain_vcpus", "Current number of vCPUs.", DOM),
    "vcpus_max": _g("hvmon_domain_vcpus_maximum", "Maximum number of vCPUs.", DOM),
    "memory_max": _g("hvmon_domain_memory_maximum_bytes", "Maximum memory of the domain.", DOM),
    "memory": _g("hvmon_domain_memory_current_bytes", "Current (balloon) memory.", DOM),
    "memory_rss": _g("hvmon_domain_memory_rss_bytes", "Resident memory of the domain's process.",
                     DOM),
    "cpu_time": _c("hvmon_domain_cpu_time_seconds", "CPU time used by the domain.", DOM),
    "timed_out": _g("hvmon_domain_timed_out",
                    "1 if this domain's statistics are stale (it did not answer in time).", DOM),
    "stats_age": _g("hvmon_domain_stats_age_seconds", "Age of this domain's statistics.", DOM),
}

VCPU_FAMILIES = {
    "time": _c("hvmon_domain_vcpu_time_seconds", "Time the vCPU ran.", VCPU),
    "wait": _c("hvmon_domain_vcpu_wait_seconds", "Time the vCPU waited on I/O.", VCPU),
    "delay": _c("hvmon_domain_vcpu_delay_seconds",
                "Time the vCPU waited for a host CPU (steal).", VCPU),
}

BLOCK_FAMILIES = {
    "rd.bytes": _c("hvmon_domain_block_read_bytes", "Bytes read from the disk.", BLOCK),
    "wr.bytes": _c("hvmon_domain_block_write_bytes", "Bytes written to the disk.", BLOCK),
    "rd.reqs": _c("hvmon_domain_block_read_requests", "Read requests.", BLOCK),
    "wr.reqs": _c("hvmon_domain_block_write_requests", "Write requests.", BLOCK),
    "fl.reqs": _c("hvmon_domain_block_flush_requests", "Flush requests.", BLOCK),
    "rd.times": _c("hvmon_domain_block_read_time_seconds", "Time spent reading.", BLOCK),
    "wr.times": _c("hvmon_domain_block_write_time_seconds", "Time spent writing.", BLOCK),
    "fl.times": _c("hvmon_domain_block_flush_time_seconds", "Time spent flushing.", BLOCK),
    "capacity": _g("hvmon_domain_block_capacity_bytes", "Logical size of the disk.", BLOCK),
    "allocation": _g("hvmon_domain_block_allocation_bytes", "Bytes allocated to the disk.",
                     BLOCK),
}

INTERFACE_FAMILIES = {
    f"{way}.{key}": _c(f"hvmon_domain_interface_{word}_{unit}", f"{text} on the interface.", IFACE)
    for way, word in (("rx", "receive"), ("tx", "transmit"))
    for key, unit, text in (("bytes", "bytes", "Bytes"), ("pkts", "packets", "Packets"),
                            ("errs", "errors", "Errors"), ("drop", "drops", "Dropped packets"))
}

JOB = {
    "type": _g("hvmon_domain_job_type", "Type of the running job (virDomainJobType).", DOM),
    "elapsed": _g("hvmon_domain_job_elapsed_seconds", "Time the job has run.", DOM),
    "remaining": _g("hvmon_domain_job_remaining_seconds", "Estimated time left.", DOM),
    "data_total": _g("hvmon_domain_job_data_total_bytes", "Data the job has to move.", DOM),
    "data_processed": _g("hvmon_domain_job_data_processed_bytes", "Data moved so far.", DOM),
    "data_remaining": _g("hvmon_domain_job_data_remaining_bytes", "Data left to move.", DOM),
}

POOL_FAMILIES = {
    "info": _i("hvmon_pool", "Storage pool metadata.", (*POOL, "persistent", "autostart")),
    "state": _g("hvmon_pool_state", "Pool state code (virStoragePoolState).", POOL),
    "capacity": _g("hvmon_pool_capacity_bytes", "Pool capacity.", POOL),
    "allocation": _g("hvmon_pool_allocation_bytes", "Bytes allocated in the pool.", POOL),
    "available": _g("hvmon_pool_available_bytes", "Bytes still available in the pool.", POOL),
}

VOLUME_FAMILIES = {
    "capacity": _g("hvmon_volume_capacity_bytes", "Logical size of the volume.", VOLUME),
    "allocation": _g("hvmon_volume_allocation_bytes", "Bytes allocated to the volume.", VOLUME),
}

NETWORK = {
    "active": _g("hvmon_network_active", "1 if the virtual network is active.", NET),
    "persistent": _g("hvmon_network_persistent", "1 if the network is persistent.", NET),
    "autostart": _g("hvmon_network_autostart", "1 if the network starts with the host.", NET),
    "leases": _g("hvmon_network_dhcp_leases", "Current DHCP leases.", NET),
    "range": _g("hvmon_network_dhcp_range_size", "Addresses in the DHCP ranges.", NET),
}

EVENTS = {
    "events": _c("hvmon_domain_events", "Domain lifecycle events seen by the daemon.",
                 ("event",)),
}

#: collector group -> the family tables it serves (exporter families are always on)
GROUPS: dict[str, tuple[dict[str, FamilySpec], ...]] = {
    "host": (HOST,),
    "domain": (DOMAIN,),
    "vcpu": (VCPU_FAMILIES,),
    "block": (BLOCK_FAMILIES,),
    "interface": (INTERFACE_FAMILIES,),
    "job": (JOB,),
    "pool": (POOL_FAMILIES,),
    "volume": (VOLUME_FAMILIES,),
    "network": (NETWORK,),
    "events": (EVENTS,),
}


def all_specs() -> list[FamilySpec]:
    """Every hvmon-named family, exporter ones first."""
    specs = list(EXPORTER.values())
    for tables in GROUPS.values():
        for table in tables:
            specs.extend(table.values())
    return specs
