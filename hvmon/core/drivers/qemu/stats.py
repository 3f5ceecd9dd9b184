"""Bulk statistics of a running QEMU domain, with libvirt's keys.

CPU time comes from the guest's cgroup (``cpuacct.usage``) when it has one,
else from /proc (the process and its vCPU threads, whose ids QMP's
``query-cpus-fast`` gives), the rest from QMP (``query-balloon``,
``query-blockstats``, ``query-block``). Each QMP call has the driver's
monitor deadline, and the caller runs domains in parallel with a per-domain
deadline (``hvmon.core.stats``), so one busy monitor delays nobody else.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from hvmon.core.drivers.qemu import process
from hvmon.core.drivers.qemu.isolation import cgroups
from hvmon.core.drivers.qemu.state import QemuDomain
from hvmon.core.errors import HvmonError, OperationInvalid
from hvmon.core.types import VcpuInfo
from hvmon.core.xml.domain import Domain as DomainXML

#: ``execute(command, arguments)``: a QMP command on the domain's monitor
Execute = Callable[[str, Mapping[str, Any] | None], Any]


def domain_stats(dom: QemuDomain, groups: tuple[str, ...], execute: Execute) -> dict[str, Any]:
    """The requested groups of ``dom``'s stats (inactive domains: state and limits only)."""
    out: dict[str, Any] = {"state.state": int(dom.state), "state.reason": int(dom.reason)}
    definition = dom.current()
    if "balloon" in groups:
        out["balloon.maximum"] = definition.memory_kib
    if not dom.active or dom.pid <= 0:
        if "balloon" in groups:
            out["balloon.current"] = definition.current_memory_kib
        return out
    if "cpu-total" in groups:
        _cpu(out, dom.pid)
    if "balloon" in groups:
        _balloon(out, dom, execute)
        rss = process.rss_kib(dom.pid)
        if rss is not None:
            out["balloon.rss"] = rss
    if "vcpu" in groups:
        _vcpus(out, dom, execute)
    if "interface" in groups:
        _interfaces(out, definition)
    if "block" in groups:
        _blocks(out, definition, execute)
    return out


def _cpu(out: dict[str, Any], pid: int) -> None:
    ticks = process.cpu_ticks(pid)
    if ticks is not None:
        user, system = (t * process.TICK_NS for t in ticks)
        out.update({"cpu.time": user + system, "cpu.user": user, "cpu.system": system})
    grouped = cgroups.cpu_time_ns(pid)  # the guest's own cgroup, when it has one
    if grouped is not None:
        out["cpu.time"] = grouped


def _balloon(out: dict[str, Any], dom: QemuDomain, execute: Execute) -> None:
    """The balloon's size: asked once per run, then as BALLOON_CHANGE events tell it."""
    known = dom.balloon
    if known is not None and known[0] == dom.run:
        out["balloon.current"] = known[1] // 1024
        return
    run = dom.run
    try:
        actual = int(execute("query-balloon", None)["actual"])
    except (HvmonError, KeyError, TypeError, ValueError):  # no balloon: the definition says
        out["balloon.current"] = dom.current().current_memory_kib
        return
    if dom.balloon is None or dom.balloon[0] != run:  # an event may have come meanwhile
        dom.balloon = (run, actual)
    out["balloon.current"] = dom.balloon[1] // 1024


def vcpu_threads(dom: QemuDomain, execute: Execute) -> list[tuple[int, int]]:
    """(vCPU index, thread id) of each online vCPU, cached per run and vCPU count."""
    key = (dom.run, dom.current().active_vcpus)
    cached = dom.vcpu_threads
    if cached is not None and cached[0] == key:
        return cached[1]
    threads = sorted((int(cpu.get("cpu-index", 0)), int(cpu.get("thread-id", 0)))
                     for cpu in execute("query-cpus-fast", None))
    dom.vcpu_threads = (key, threads)
    return threads


def _vcpus(out: dict[str, Any], dom: QemuDomain, execute: Execute) -> None:
    threads = vcpu_threads(dom, execute)
    out["vcpu.current"] = len(threads)
    out["vcpu.maximum"] = dom.current().vcpus
    for n, tid in threads:
        out[f"vcpu.{n}.state"] = 1  # running
        ticks = process.cpu_ticks(dom.pid, tid)
        if ticks is not None:
            out[f"vcpu.{n}.time"] = sum(ticks) * process.TICK_NS
            out[f"vcpu.{n}.wait"], out[f"vcpu.{n}.delay"] = process.sched_wait_delay(dom.pid,
                                                                                   tid)


def vcpu_info(dom: QemuDomain, execute: Execute) -> list[VcpuInfo]:
    """Each vCPU thread: CPU time and last host CPU from /proc, affinity from the kernel."""
    if not dom.active or dom.pid <= 0:
        raise OperationInvalid(f"domain '{dom.name}' is not running")
    out = []
    for index, tid in vcpu_threads(dom, execute):
        ticks = process.cpu_ticks(dom.pid, tid)
        try:
            affinity = tuple(sorted(os.sched_getaffinity(tid)))
        except OSError:  # the thread ended meanwhile
            affinity = ()
        out.append(VcpuInfo(index, 1,
                            sum(ticks) * process.TICK_NS if ticks else 0,
                            process.last_cpu(dom.pid, tid), affinity))
    return out


def _interfaces(out: dict[str, Any], definition: DomainXML) -> None:
    """NIC names; user-mode NICs have no host device, so no counters (as libvirt)."""
    nics = definition.interfaces
    out["net.count"] = len(nics)
    for n, nic in enumerate(nics):
        if nic.target_dev:
            out[f"net.{n}.name"] = nic.target_dev
            _tap_counters(out, n, nic.target_dev)


def _tap_counters(out: dict[str, Any], n: int, dev: str) -> None:
    """Counters of a host tap device from sysfs (the guest's rx is the tap's tx)."""
    base = f"/sys/class/net/{dev}/statistics/"
    pairs = (("rx.bytes", "tx_bytes"), ("rx.pkts", "tx_packets"), ("rx.errs", "tx_errors"),
             ("rx.drop", "tx_dropped"), ("tx.bytes", "rx_bytes"), ("tx.pkts", "rx_packets"),
             ("tx.errs", "rx_errors"), ("tx.drop", "rx_dropped"))
    for key, name in pairs:
        try:
            with open(base + name) as counter:
                out[f"net.{n}.{key}"] = int(counter.read())
        except (OSError, ValueError):
            return


def _blocks(out: dict[str, Any], definition: DomainXML, execute: Execute) -> None:
    disks = [d for d in definition.disks if d.device in ("disk", "cdrom", "lun")]
    out["block.count"] = len(disks)
    if not disks:  # nothing to ask QEMU
        return
    stats = execute("query-blockstats", None)
    block = execute("query-block", None)
    by_qdev = {_qdev_id(entry.get("qdev", "")): entry for entry in stats}
    sizes = {_qdev_id(entry.get("qdev", "")): entry for entry in block}
    for n, disk in enumerate(disks):
        prefix = f"block.{n}."
        out[prefix + "name"] = disk.target_dev
        if disk.source_path:
            out[prefix + "path"] = disk.source_path
        alias = _alias(disk.element)
        entry = by_qdev.get(alias)
        if entry is not None:
            s = entry.get("stats", {})
            for key, qmp in (("rd.reqs", "rd_operations"), ("rd.bytes", "rd_bytes"),
                             ("rd.times", "rd_total_time_ns"), ("wr.reqs", "wr_operations"),
                             ("wr.bytes", "wr_bytes"), ("wr.times", "wr_total_time_ns"),
                             ("fl.reqs", "flush_operations"),
                             ("fl.times", "flush_total_time_ns")):
                if qmp in s:
                    out[prefix + key] = int(s[qmp])
        image = (sizes.get(alias) or {}).get("inserted", {}).get("image", {})
        if "virtual-size" in image:
            out[prefix + "capacity"] = int(image["virtual-size"])
        if disk.type == "file" and disk.source_path:
            try:
                st = os.stat(disk.source_path)
            except OSError:
                continue
            out[prefix + "allocation"] = st.st_blocks * 512
            out[prefix + "physical"] = st.st_size


def _alias(element: Any) -> str:
    alias = element.find("alias")
    return alias.get("name", "") if alias is not None else ""


def _qdev_id(qdev: str) -> str:
    """``/machine/peripheral/virtio-disk0/virtio-backend`` -> ``virtio-disk0``."""
    parts = qdev.split("/")
    if len(parts) > 3 and parts[1] == "machine" and parts[2] == "peripheral":
        return parts[3]
    return qdev
