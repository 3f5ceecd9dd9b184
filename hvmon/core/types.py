"""Plain value types shared by the API and the drivers (libvirt numbering)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class DomainState(IntEnum):
    """virDomainState."""

    NOSTATE = 0
    RUNNING = 1
    BLOCKED = 2
    PAUSED = 3
    SHUTDOWN = 4
    SHUTOFF = 5
    CRASHED = 6
    PMSUSPENDED = 7

    @property
    def label(self) -> str:
        """virsh's wording (``running``, ``shut off``, ``in shutdown`` ...)."""
        return _STATE_LABELS[self]


_STATE_LABELS = {
    DomainState.NOSTATE: "no state",
    DomainState.RUNNING: "running",
    DomainState.BLOCKED: "idle",
    DomainState.PAUSED: "paused",
    DomainState.SHUTDOWN: "in shutdown",
    DomainState.SHUTOFF: "shut off",
    DomainState.CRASHED: "crashed",
    DomainState.PMSUSPENDED: "pmsuspended",
}


class RunningReason(IntEnum):
    UNKNOWN = 0
    BOOTED = 1
    MIGRATED = 2
    RESTORED = 3
    FROM_SNAPSHOT = 4
    UNPAUSED = 5
    MIGRATION_CANCELED = 6
    SAVE_CANCELED = 7
    WAKEUP = 8
    CRASHED = 9


class PausedReason(IntEnum):
    UNKNOWN = 0
    USER = 1
    MIGRATION = 2
    SAVE = 3
    DUMP = 4
    IOERROR = 5
    WATCHDOG = 6
    FROM_SNAPSHOT = 7
    SHUTTING_DOWN = 8
    SNAPSHOT = 9
    CRASHED = 10


class ShutdownReason(IntEnum):
    UNKNOWN = 0
    USER = 1


class ShutoffReason(IntEnum):
    UNKNOWN = 0
    SHUTDOWN = 1
    DESTROYED = 2
    CRASHED = 3
    MIGRATED = 4
    SAVED = 5
    FAILED = 6
    FROM_SNAPSHOT = 7
    DAEMON = 8


class CrashedReason(IntEnum):
    UNKNOWN = 0
    PANICKED = 1


REASONS: dict[DomainState, type[IntEnum]] = {
    DomainState.RUNNING: RunningReason,
    DomainState.PAUSED: PausedReason,
    DomainState.SHUTDOWN: ShutdownReason,
    DomainState.SHUTOFF: ShutoffReason,
    DomainState.CRASHED: CrashedReason,
}


def reason_label(state: DomainState, reason: int) -> str:
    """virsh domstate --reason wording, e.g. ``booted`` or ``destroyed``."""
    enum = REASONS.get(state)
    if enum is None:
        return "unknown"
    try:
        return enum(reason).name.lower().replace("_", " ")
    except ValueError:
        return "unknown"


class PoolState(IntEnum):
    """virStoragePoolState."""

    INACTIVE = 0
    BUILDING = 1
    RUNNING = 2
    DEGRADED = 3
    INACCESSIBLE = 4

    @property
    def label(self) -> str:
        return {0: "inactive", 1: "building", 2: "running", 3: "degraded", 4: "inaccessible"}[
            int(self)
        ]


class VolumeType(IntEnum):
    """virStorageVolType."""

    FILE = 0
    BLOCK = 1
    DIR = 2
    NETWORK = 3
    NETDIR = 4
    PLOOP = 5

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class NodeInfo:
    """virNodeInfo: memory in KiB, mhz in MHz."""

    model: str
    memory: int
    cpus: int
    mhz: int
    nodes: int
    sockets: int
    cores: int
    threads: int


@dataclass(frozen=True)
class DomainInfo:
    """virDomainInfo: memory in KiB, cpu_time in ns."""

    state: DomainState
    max_memory: int
    memory: int
    nr_virt_cpu: int
    cpu_time: int


@dataclass(frozen=True)
class JobInfo:
    """virDomainJobInfo subset; type 0 none, 1 bounded, 2 unbounded.

    ``data_*`` count memory and disks together (libvirt's), ``mem_*`` the guest
    memory, ``disk_*`` the disks a storage migration copies (bytes).
    """

    type: int = 0
    operation: str = ""
    time_elapsed_ms: int = 0
    time_remaining_ms: int = 0
    data_total: int = 0
    data_processed: int = 0
    data_remaining: int = 0
    mem_total: int = 0
    mem_processed: int = 0
    mem_remaining: int = 0
    disk_total: int = 0
    disk_processed: int = 0
    disk_remaining: int = 0


@dataclass(frozen=True)
class PoolInfo:
    """virStoragePoolInfo: sizes in bytes."""

    state: PoolState
    capacity: int
    allocation: int
    available: int


@dataclass(frozen=True)
class VolumeInfo:
    """virStorageVolInfo: sizes in bytes."""

    type: VolumeType
    capacity: int
    allocation: int


@dataclass(frozen=True)
class DhcpLease:
    """virNetworkDHCPLease."""

    iface: str
    expiry_time: int
    type: str  # "ipv4" or "ipv6"
    mac: str
    ipaddr: str
    prefix: int
    hostname: str = ""
    clientid: str = ""


class DomainStats:
    """One domain's bulk statistics: libvirt key names, or an error marker."""

    __slots__ = ("domain", "error", "stats")

    def __init__(self, domain: Any, stats: dict[str, Any] | None = None,
                 error: Exception | None = None) -> None:
        self.domain = domain  # hvmon.core.api.Domain
        self.stats = stats if stats is not None else {}
        self.error = error

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        what = f"error={self.error!r}" if self.error else f"{len(self.stats)} keys"
        return f"<DomainStats {self.domain!r} {what}>"


def format_version(version: int) -> str:
    """``7002000`` -> ``"7.2.0"`` (libvirt's encoding: major * 1e6 + minor * 1e3 + release)."""
    major, rest = divmod(max(version, 0), 1_000_000)
    minor, release = divmod(rest, 1_000)
    return f"{major}.{minor}.{release}"


class CpuCompareResult(IntEnum):
    """libvirt's virCPUCompareResult: how a CPU definition fits this host."""

    INCOMPATIBLE = 0
    IDENTICAL = 1
    SUPERSET = 2  # the host offers everything the definition asks for


@dataclass(frozen=True)
class VcpuInfo:
    """virVcpuInfo: one vCPU, where it runs and where it may run (its pinning)."""

    number: int
    state: int  # 0 offline, 1 running, 2 blocked (virVcpuState)
    cpu_time: int  # nanoseconds
    cpu: int  # the host CPU it last ran on (-1: unknown)
    affinity: tuple[int, ...]  # host CPUs it may run on
