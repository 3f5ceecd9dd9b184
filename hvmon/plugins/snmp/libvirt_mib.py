"""The LIBVIRT-MIB compatibility view: libvirt-snmp's libvirtGuestTable and libvirtGuestNotif.

Same OIDs, types, units and semantics as ``LIBVIRT-MIB.txt`` (libvirt-snmp),
so NMS set-ups built for libvirt-snmp keep working:

* root 1.3.6.1.4.1.36957; libvirtGuestTable .1.1, entry .1.1.1, index
  libvirtGuestUUID — a fixed-size ``OCTET STRING (SIZE (16))``, so the
  index is the 16 octets as 16 sub-identifiers with no length (what
  libvirt-snmp encodes with ``ASN_PRIV_IMPLIED_OCTET_STR``);
* columns 2-7 and 9 are served; column 1 (libvirtGuestUUID) is
  ``accessible-for-notify`` and appears only in notifications, as in
  libvirt-snmp (its MIN_COL is libvirtGuestName);
* every domain is listed (libvirt-snmp lists all domains since it moved to
  ``virConnectListAllDomains``) and libvirtGuestRowStatus reads active(1)
  for every row, as libvirt-snmp does;
* libvirtGuestState is the raw ``virDomainState`` (libvirt-snmp copies
  ``virDomainGetInfo``'s state: 0 nostate and 7 pmsuspended can appear
  although the MIB's enumeration is 1-6);
* memory in MiB (KiB // 1024, as libvirt-snmp divides), CPU time Counter64 ns;
* libvirtGuestNotif (.0.1) carries libvirtGuestName, libvirtGuestUUID,
  libvirtGuestState and libvirtGuestRowStatus with instance ``.0``, exactly
  as libvirt-snmp's ``send_libvirtGuestNotif_trap`` sends them; the row
  status is notInService(2) for shutdown, shutoff and crashed, else active(1).

SET on libvirtGuestState and libvirtGuestRowStatus follows the same rules as
HVMON-MIB's guest table (``mibview``); only the valid enumerations differ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hvmon.core.snapshot.model import DomainSnapshot
from hvmon.plugins.snmp import oids
from hvmon.plugins.snmp.types import OID, Tag, Value, VarBind

ROOT: OID = oids.LIBVIRT_MIB

#: readable columns in OID order, each with the BER tag it is served with
COLUMNS: tuple[tuple[OID, Tag], ...] = (
    (oids.LIBVIRT_GUEST_NAME, Tag.OCTET_STRING),
    (oids.LIBVIRT_GUEST_STATE, Tag.INTEGER),
    (oids.LIBVIRT_GUEST_CPU_COUNT, Tag.GAUGE32),  # Unsigned32
    (oids.LIBVIRT_GUEST_MEMORY_CURRENT, Tag.GAUGE32),
    (oids.LIBVIRT_GUEST_MEMORY_LIMIT, Tag.GAUGE32),  # Unsigned32
    (oids.LIBVIRT_GUEST_CPU_TIME, Tag.COUNTER64),
    (oids.LIBVIRT_GUEST_ROW_STATUS, Tag.INTEGER),
)

#: libvirtGuestState's enumeration: running(1) ... crashed(6)
STATE_VALUES = frozenset(range(1, 7))

#: states after which libvirt-snmp's notification says notInService(2)
_NOT_IN_SERVICE_STATES = frozenset({4, 5, 6})

ROW_ACTIVE = 1
ROW_NOT_IN_SERVICE = 2


def guest_row(dom: DomainSnapshot, name: Value, state: Value, active: Value,
              gauge: Callable[[int], Value], counter64: Callable[[int], Value],
              ) -> list[Value | None]:
    """The values of one libvirtGuestTable row, in :data:`COLUMNS` order.

    ``name``, ``state`` and ``active`` are the (shared) values the HVMON
    guest row already made; ``gauge`` and ``counter64`` make the others (the
    table builder's cached and fast constructors). None marks a cell left out
    (no CPU statistics).
    """
    cpu = dom.stats.get("cpu.time")
    return [
        name,
        state,
        gauge(dom.vcpus),
        gauge(dom.memory_kib // 1024),
        gauge(dom.max_memory_kib // 1024),
        None if cpu is None or isinstance(cpu, str) else counter64(int(cpu)),
        active,
    ]


def notification(name: str, uuid16: bytes, state: int) -> tuple[OID, list[VarBind]]:
    """libvirtGuestNotif's (trap OID, varbinds), as libvirt-snmp sends them."""
    row_status = ROW_NOT_IN_SERVICE if state in _NOT_IN_SERVICE_STATES else ROW_ACTIVE
    varbinds: list[VarBind] = [
        (oids.LIBVIRT_GUEST_NAME + (0,), Value.octets(name)),
        (oids.LIBVIRT_GUEST_UUID + (0,), Value.octets(uuid16)),
        (oids.LIBVIRT_GUEST_STATE + (0,), Value.integer(state)),
        (oids.LIBVIRT_GUEST_ROW_STATUS + (0,), Value.integer(row_status)),
    ]
    return oids.LIBVIRT_GUEST_NOTIF, varbinds


def readable_columns() -> Sequence[OID]:
    """The column OIDs a GET may name (for noSuchObject vs noSuchInstance)."""
    return [oid for oid, _ in COLUMNS]
