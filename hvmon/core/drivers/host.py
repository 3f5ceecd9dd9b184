"""Facts about the real host a hypervisor driver runs on (/proc, psutil)."""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

import psutil

from hvmon.core.types import NodeInfo


def node_info() -> NodeInfo:
    """libvirt's virNodeInfo of this machine: arch, memory KiB, CPUs, MHz and topology."""
    cpus = os.cpu_count() or 1
    mhz, nodes, sockets, cores_per_socket, threads = _cpu_shape(cpus)
    return NodeInfo(model=platform.machine(), memory=psutil.virtual_memory().total // 1024,
                    cpus=cpus, mhz=mhz, nodes=nodes, sockets=sockets,
                    cores=cores_per_socket, threads=threads)


@functools.lru_cache(maxsize=8)
def _cpu_shape(cpus: int) -> tuple[int, int, int, int, int]:
    """(MHz, NUMA nodes, sockets per node, cores per socket, threads per core): read once
    per CPU count (a snapshot asks every refresh; only a CPU hot-plug changes them)."""
    sockets, cores_per_socket, threads = _topology(cpus)
    freq = psutil.cpu_freq()
    mhz = int(freq.max or freq.current) if freq is not None else _cpuinfo_mhz()
    nodes = max(1, len(list(Path("/sys/devices/system/node").glob("node[0-9]*"))))
    return mhz, nodes, max(1, sockets // nodes), cores_per_socket, threads


def free_memory() -> int:
    """Free memory in bytes (``MemFree``, what libvirt's getFreeMemory reports)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemFree:"):
            return int(line.split()[1]) * 1024
    return int(psutil.virtual_memory().free)


def host_uuid() -> str:
    """The SMBIOS system UUID when readable, else the machine id shaped as a UUID."""
    for path in ("/sys/class/dmi/id/product_uuid", "/etc/machine-id"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        hexdigits = text.replace("-", "").lower()
        if len(hexdigits) == 32 and all(c in "0123456789abcdef" for c in hexdigits):
            h = hexdigits
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return "00000000-0000-0000-0000-000000000000"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("" when not found)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _topology(cpus: int) -> tuple[int, int, int]:
    """(sockets, cores per socket, threads per core) from /proc/cpuinfo."""
    sockets: set[str] = set()
    cores: set[tuple[str, str]] = set()
    try:
        physical = core = ""
        for line in Path("/proc/cpuinfo").read_text().splitlines() + [""]:
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "physical id":
                physical = value
            elif key == "core id":
                core = value
            elif not line.strip() and physical:
                sockets.add(physical)
                cores.add((physical, core))
                physical = core = ""
    except OSError:
        pass
    n_sockets = max(1, len(sockets))
    n_cores = max(1, len(cores))
    return n_sockets, max(1, n_cores // n_sockets), max(1, cpus // n_cores)


def _cpuinfo_mhz() -> int:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return int(float(line.split(":", 1)[1]))
    except (OSError, ValueError):
        pass
    return 0
