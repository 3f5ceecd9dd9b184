"""Every object identifier of HVMON-MIB (and the LIBVIRT-MIB view), derived from one PEN.

``PEN`` is the IANA Private Enterprise Number the MIB lives under. It is
32473, RFC 5612's number for documentation, until hvmon registers its own:
changing it here (and the ``enterprises 32473`` line of
``mibs/HVMON-MIB.txt``) moves the whole tree; a test checks that the MIB text
and this module agree on every OID.

:data:`NAMES` maps each HVMON-MIB descriptor (``hvmonGuestName``) to its OID;
:data:`LIBVIRT_NAMES` does the same for the LIBVIRT-MIB objects the
compatibility view serves. The UPPER_CASE constants are the same tuples for
code.
"""

from __future__ import annotations

from pathlib import Path

from hvmon.plugins.snmp.types import OID

#: the directory of HVMON-MIB.txt (give it to net-snmp's ``-M``, libsmi's ``SMIPATH``)
MIB_DIR = Path(__file__).resolve().parent / "mibs"

#: IANA Private Enterprise Number (RFC 5612's documentation number until one is registered)
PEN = 32473

ENTERPRISES: OID = (1, 3, 6, 1, 4, 1)

#: descriptor -> OID of every HVMON-MIB definition that has one
NAMES: dict[str, OID] = {}


def _def(name: str, parent: OID, *arc: int) -> OID:
    oid = parent + arc
    if name in NAMES:  # pragma: no cover - a typo while editing this module
        raise ValueError(f"{name} defined twice")
    NAMES[name] = oid
    return oid


# --- the module and its top-level arcs ---------------------------------------
HVMON_MIB = _def("hvmonMIB", ENTERPRISES, PEN)
NOTIFICATIONS = _def("hvmonNotifications", HVMON_MIB, 0)
OBJECTS = _def("hvmonObjects", HVMON_MIB, 1)
CONFORMANCE = _def("hvmonConformance", HVMON_MIB, 2)

# --- host scalars (hvmonHost, objects.1); instances are <scalar>.0 -----------
HOST = _def("hvmonHost", OBJECTS, 1)
HOST_NAME = _def("hvmonHostName", HOST, 1)
HOST_HYPERVISOR_TYPE = _def("hvmonHostHypervisorType", HOST, 2)
HOST_HYPERVISOR_VERSION = _def("hvmonHostHypervisorVersion", HOST, 3)
HOST_CPU_MODEL = _def("hvmonHostCpuModel", HOST, 4)
HOST_CPUS = _def("hvmonHostCpus", HOST, 5)
HOST_CPU_MHZ = _def("hvmonHostCpuMhz", HOST, 6)
HOST_MEMORY_TOTAL = _def("hvmonHostMemoryTotal", HOST, 7)
HOST_MEMORY_FREE = _def("hvmonHostMemoryFree", HOST, 8)
HOST_AGENT_UPTIME = _def("hvmonHostAgentUptime", HOST, 9)
HOST_SNAPSHOT_AGE = _def("hvmonHostSnapshotAge", HOST, 10)
HOST_SNAPSHOT_GENERATION = _def("hvmonHostSnapshotGeneration", HOST, 11)
HOST_DOMAINS = _def("hvmonHostDomains", HOST, 12)
#: domain counts by virDomainState value (0 nostate ... 7 pmsuspended)
HOST_DOMAINS_BY_STATE: tuple[OID, ...] = tuple(
    _def(f"hvmonHostDomains{label}", HOST, 13 + state)
    for state, label in enumerate(("NoState", "Running", "Blocked", "Paused", "Shutdown",
                                   "Shutoff", "Crashed", "PmSuspended"))
)
HOST_DOMAINS_STALE = _def("hvmonHostDomainsStale", HOST, 21)

HOST_SCALARS: tuple[OID, ...] = tuple(oid for name, oid in NAMES.items()
                                      if oid[:-1] == HOST and name != "hvmonHost")

# --- guest table (objects.2), INDEX { hvmonGuestUUID } ------------------------
GUEST_TABLE = _def("hvmonGuestTable", OBJECTS, 2)
GUEST_ENTRY = _def("hvmonGuestEntry", GUEST_TABLE, 1)
GUEST_UUID = _def("hvmonGuestUUID", GUEST_ENTRY, 1)
GUEST_NAME = _def("hvmonGuestName", GUEST_ENTRY, 2)
GUEST_STATE = _def("hvmonGuestState", GUEST_ENTRY, 3)
GUEST_STATE_REASON = _def("hvmonGuestStateReason", GUEST_ENTRY, 4)
GUEST_VCPUS = _def("hvmonGuestVcpus", GUEST_ENTRY, 5)
GUEST_MEMORY_CURRENT = _def("hvmonGuestMemoryCurrent", GUEST_ENTRY, 6)
GUEST_MEMORY_LIMIT = _def("hvmonGuestMemoryLimit", GUEST_ENTRY, 7)
GUEST_CPU_TIME = _def("hvmonGuestCpuTime", GUEST_ENTRY, 8)
GUEST_AUTOSTART = _def("hvmonGuestAutostart", GUEST_ENTRY, 9)
GUEST_PERSISTENT = _def("hvmonGuestPersistent", GUEST_ENTRY, 10)
GUEST_ROW_STATUS = _def("hvmonGuestRowStatus", GUEST_ENTRY, 11)
GUEST_ID = _def("hvmonGuestId", GUEST_ENTRY, 12)
GUEST_STALE = _def("hvmonGuestStale", GUEST_ENTRY, 13)
GUEST_STATS_AGE = _def("hvmonGuestStatsAge", GUEST_ENTRY, 14)

# --- guest disk table (objects.3), INDEX { hvmonGuestUUID, hvmonGuestDiskIndex }
DISK_TABLE = _def("hvmonGuestDiskTable", OBJECTS, 3)
DISK_ENTRY = _def("hvmonGuestDiskEntry", DISK_TABLE, 1)
DISK_INDEX = _def("hvmonGuestDiskIndex", DISK_ENTRY, 1)
DISK_TARGET = _def("hvmonGuestDiskTarget", DISK_ENTRY, 2)
DISK_PATH = _def("hvmonGuestDiskPath", DISK_ENTRY, 3)
DISK_CAPACITY = _def("hvmonGuestDiskCapacity", DISK_ENTRY, 4)
DISK_READ_BYTES = _def("hvmonGuestDiskReadBytes", DISK_ENTRY, 5)
DISK_WRITE_BYTES = _def("hvmonGuestDiskWriteBytes", DISK_ENTRY, 6)
DISK_READ_REQUESTS = _def("hvmonGuestDiskReadRequests", DISK_ENTRY, 7)
DISK_WRITE_REQUESTS = _def("hvmonGuestDiskWriteRequests", DISK_ENTRY, 8)

# --- guest interface table (objects.4), INDEX { hvmonGuestUUID, hvmonGuestIfIndex }
IF_TABLE = _def("hvmonGuestIfTable", OBJECTS, 4)
IF_ENTRY = _def("hvmonGuestIfEntry", IF_TABLE, 1)
IF_INDEX = _def("hvmonGuestIfIndex", IF_ENTRY, 1)
IF_TARGET = _def("hvmonGuestIfTarget", IF_ENTRY, 2)
IF_MAC = _def("hvmonGuestIfMac", IF_ENTRY, 3)
IF_NETWORK = _def("hvmonGuestIfNetwork", IF_ENTRY, 4)
IF_RX_BYTES = _def("hvmonGuestIfRxBytes", IF_ENTRY, 5)
IF_RX_PACKETS = _def("hvmonGuestIfRxPackets", IF_ENTRY, 6)
IF_RX_ERRORS = _def("hvmonGuestIfRxErrors", IF_ENTRY, 7)
IF_RX_DROPS = _def("hvmonGuestIfRxDrops", IF_ENTRY, 8)
IF_TX_BYTES = _def("hvmonGuestIfTxBytes", IF_ENTRY, 9)
IF_TX_PACKETS = _def("hvmonGuestIfTxPackets", IF_ENTRY, 10)
IF_TX_ERRORS = _def("hvmonGuestIfTxErrors", IF_ENTRY, 11)
IF_TX_DROPS = _def("hvmonGuestIfTxDrops", IF_ENTRY, 12)

# --- storage pool table (objects.5), INDEX { hvmonPoolUUID } -------------------
POOL_TABLE = _def("hvmonPoolTable", OBJECTS, 5)
POOL_ENTRY = _def("hvmonPoolEntry", POOL_TABLE, 1)
POOL_UUID = _def("hvmonPoolUUID", POOL_ENTRY, 1)
POOL_NAME = _def("hvmonPoolName", POOL_ENTRY, 2)
POOL_STATE = _def("hvmonPoolState", POOL_ENTRY, 3)
POOL_CAPACITY = _def("hvmonPoolCapacity", POOL_ENTRY, 4)
POOL_ALLOCATION = _def("hvmonPoolAllocation", POOL_ENTRY, 5)
POOL_AVAILABLE = _def("hvmonPoolAvailable", POOL_ENTRY, 6)
POOL_AUTOSTART = _def("hvmonPoolAutostart", POOL_ENTRY, 7)
POOL_PERSISTENT = _def("hvmonPoolPersistent", POOL_ENTRY, 8)
POOL_VOLUMES = _def("hvmonPoolVolumes", POOL_ENTRY, 9)

# --- volume table (objects.6), INDEX { hvmonPoolUUID, hvmonVolumeIndex } -------
VOLUME_TABLE = _def("hvmonVolumeTable", OBJECTS, 6)
VOLUME_ENTRY = _def("hvmonVolumeEntry", VOLUME_TABLE, 1)
VOLUME_INDEX = _def("hvmonVolumeIndex", VOLUME_ENTRY, 1)
VOLUME_NAME = _def("hvmonVolumeName", VOLUME_ENTRY, 2)
VOLUME_POOL = _def("hvmonVolumePool", VOLUME_ENTRY, 3)
VOLUME_PATH = _def("hvmonVolumePath", VOLUME_ENTRY, 4)
VOLUME_TYPE = _def("hvmonVolumeType", VOLUME_ENTRY, 5)
VOLUME_CAPACITY = _def("hvmonVolumeCapacity", VOLUME_ENTRY, 6)
VOLUME_ALLOCATION = _def("hvmonVolumeAllocation", VOLUME_ENTRY, 7)

# --- virtual network table (objects.7), INDEX { hvmonNetworkUUID } -------------
NETWORK_TABLE = _def("hvmonNetworkTable", OBJECTS, 7)
NETWORK_ENTRY = _def("hvmonNetworkEntry", NETWORK_TABLE, 1)
NETWORK_UUID = _def("hvmonNetworkUUID", NETWORK_ENTRY, 1)
NETWORK_NAME = _def("hvmonNetworkName", NETWORK_ENTRY, 2)
NETWORK_ACTIVE = _def("hvmonNetworkActive", NETWORK_ENTRY, 3)
NETWORK_PERSISTENT = _def("hvmonNetworkPersistent", NETWORK_ENTRY, 4)
NETWORK_AUTOSTART = _def("hvmonNetworkAutostart", NETWORK_ENTRY, 5)
NETWORK_BRIDGE = _def("hvmonNetworkBridge", NETWORK_ENTRY, 6)
NETWORK_FORWARD_MODE = _def("hvmonNetworkForwardMode", NETWORK_ENTRY, 7)
NETWORK_DHCP_LEASES = _def("hvmonNetworkDhcpLeases", NETWORK_ENTRY, 8)
NETWORK_DHCP_RANGE_SIZE = _def("hvmonNetworkDhcpRangeSize", NETWORK_ENTRY, 9)

# --- objects carried only in notifications (objects.8), instance .0 ------------
NOTIF_OBJECTS = _def("hvmonNotifObjects", OBJECTS, 8)
NOTIF_GUEST_UUID = _def("hvmonNotifGuestUUID", NOTIF_OBJECTS, 1)
NOTIF_EVENT_TYPE = _def("hvmonNotifEventType", NOTIF_OBJECTS, 2)
NOTIF_EVENT_DETAIL = _def("hvmonNotifEventDetail", NOTIF_OBJECTS, 3)

# --- notifications -------------------------------------------------------------
GUEST_NOTIF = _def("hvmonGuestNotif", NOTIFICATIONS, 1)

# --- conformance ---------------------------------------------------------------
COMPLIANCES = _def("hvmonCompliances", CONFORMANCE, 1)
GROUPS = _def("hvmonGroups", CONFORMANCE, 2)
COMPLIANCE = _def("hvmonCompliance", COMPLIANCES, 1)
_def("hvmonHostGroup", GROUPS, 1)
_def("hvmonGuestGroup", GROUPS, 2)
_def("hvmonGuestDiskGroup", GROUPS, 3)
_def("hvmonGuestIfGroup", GROUPS, 4)
_def("hvmonStorageGroup", GROUPS, 5)
_def("hvmonNetworkGroup", GROUPS, 6)
_def("hvmonNotifObjectsGroup", GROUPS, 7)
_def("hvmonNotificationGroup", GROUPS, 8)

# --- LIBVIRT-MIB (libvirt-snmp), served by the compatibility view --------------
LIBVIRT_NAMES: dict[str, OID] = {}


def _lv(name: str, parent: OID, *arc: int) -> OID:
    oid = parent + arc
    LIBVIRT_NAMES[name] = oid
    return oid


LIBVIRT_MIB = _lv("libvirtMIB", ENTERPRISES, 36957)
LIBVIRT_NOTIFICATIONS = _lv("libvirtNotifications", LIBVIRT_MIB, 0)
LIBVIRT_OBJECTS = _lv("libvirtObjects", LIBVIRT_MIB, 1)
LIBVIRT_GUEST_TABLE = _lv("libvirtGuestTable", LIBVIRT_OBJECTS, 1)
LIBVIRT_GUEST_ENTRY = _lv("libvirtGuestEntry", LIBVIRT_GUEST_TABLE, 1)
LIBVIRT_GUEST_UUID = _lv("libvirtGuestUUID", LIBVIRT_GUEST_ENTRY, 1)
LIBVIRT_GUEST_NAME = _lv("libvirtGuestName", LIBVIRT_GUEST_ENTRY, 2)
LIBVIRT_GUEST_STATE = _lv("libvirtGuestState", LIBVIRT_GUEST_ENTRY, 3)
LIBVIRT_GUEST_CPU_COUNT = _lv("libvirtGuestCpuCount", LIBVIRT_GUEST_ENTRY, 4)
LIBVIRT_GUEST_MEMORY_CURRENT = _lv("libvirtGuestMemoryCurrent", LIBVIRT_GUEST_ENTRY, 5)
LIBVIRT_GUEST_MEMORY_LIMIT = _lv("libvirtGuestMemoryLimit", LIBVIRT_GUEST_ENTRY, 6)
LIBVIRT_GUEST_CPU_TIME = _lv("libvirtGuestCpuTime", LIBVIRT_GUEST_ENTRY, 7)
LIBVIRT_GUEST_ROW_STATUS = _lv("libvirtGuestRowStatus", LIBVIRT_GUEST_ENTRY, 9)
LIBVIRT_GUEST_NOTIF = _lv("libvirtGuestNotif", LIBVIRT_NOTIFICATIONS, 1)
