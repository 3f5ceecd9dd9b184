"""The engine's own objects: SNMPv2-MIB system and snmp groups, SNMP-FRAMEWORK-MIB
snmpEngine, USM and MPD statistics. Built as a small OidTable on demand."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from hvmon.plugins.snmp.table import OidTable
from hvmon.plugins.snmp.types import OID, Tag, Value, VarBind

SYSTEM: OID = (1, 3, 6, 1, 2, 1, 1)
SYS_DESCR = SYSTEM + (1, 0)
SYS_OBJECT_ID = SYSTEM + (2, 0)
SYS_UP_TIME_0: OID = SYSTEM + (3, 0)
SYS_CONTACT = SYSTEM + (4, 0)
SYS_NAME = SYSTEM + (5, 0)
SYS_LOCATION = SYSTEM + (6, 0)
SYS_SERVICES = SYSTEM + (7, 0)
SNMP: OID = (1, 3, 6, 1, 2, 1, 11)
SNMP_TRAP_OID_0: OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)

#: counter name -> OID (instance .0)
COUNTERS: dict[str, OID] = {
    "snmpInPkts": SNMP + (1, 0),
    "snmpOutPkts": SNMP + (2, 0),
    "snmpInBadVersions": SNMP + (3, 0),
    "snmpInBadCommunityNames": SNMP + (4, 0),
    "snmpInBadCommunityUses": SNMP + (5, 0),
    "snmpInASNParseErrs": SNMP + (6, 0),
    "snmpSilentDrops": SNMP + (31, 0),
    "snmpProxyDrops": SNMP + (32, 0),
    "snmpUnknownSecurityModels": (1, 3, 6, 1, 6, 3, 11, 2, 1, 1, 0),
    "snmpInvalidMsgs": (1, 3, 6, 1, 6, 3, 11, 2, 1, 2, 0),
    "snmpUnknownPDUHandlers": (1, 3, 6, 1, 6, 3, 11, 2, 1, 3, 0),
    "unsupportedSecLevels": (1, 3, 6, 1, 6, 3, 15, 1, 1, 1, 0),
    "notInTimeWindows": (1, 3, 6, 1, 6, 3, 15, 1, 1, 2, 0),
    "unknownUserNames": (1, 3, 6, 1, 6, 3, 15, 1, 1, 3, 0),
    "unknownEngineIDs": (1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0),
    "wrongDigests": (1, 3, 6, 1, 6, 3, 15, 1, 1, 5, 0),
    "decryptionErrors": (1, 3, 6, 1, 6, 3, 15, 1, 1, 6, 0),
}
_PER_PACKET = frozenset({"snmpInPkts", "snmpOutPkts"})
SNMP_ENGINE: OID = (1, 3, 6, 1, 6, 3, 10, 2, 1)


class LocalMib:
    """Counters plus the scalars; :meth:`table` snapshots them."""

    def __init__(self, *, descr: str, object_id: OID, name: Callable[[], str],
                 uptime: Callable[[], int], engine: Callable[[], tuple[bytes, int, int]],
                 max_message_size: int) -> None:
        self.counters: Counter[str] = Counter()
        #: bumped by every counter except the per-packet ones (table cache key)
        self.version = 0
        self._descr, self._object_id, self._name = descr, object_id, name
        self._uptime, self._engine, self._max = uptime, engine, max_message_size

    def count(self, name: str) -> int:
        """Bump a counter; returns its new value."""
        self.counters[name] += 1
        if name not in _PER_PACKET:
            self.version += 1
        return self.counters[name]

    def table(self) -> OidTable:
        engine_id, boots, etime = self._engine()
        entries: list[VarBind] = [
            (SYS_DESCR, Value.octets(self._descr[:255])),
            (SYS_OBJECT_ID, Value.oid(self._object_id)),
            (SYS_UP_TIME_0, Value.timeticks(self._uptime())),
            (SYS_CONTACT, Value.octets("")),
            (SYS_NAME, Value.octets(self._name()[:255])),
            (SYS_LOCATION, Value.octets("")),
            (SYS_SERVICES, Value.integer(72)),
            (SNMP_ENGINE + (1, 0), Value.octets(engine_id)),
            (SNMP_ENGINE + (2, 0), Value.integer(boots)),
            (SNMP_ENGINE + (3, 0), Value.integer(etime)),
            (SNMP_ENGINE + (4, 0), Value.integer(self._max)),
        ]
        entries += [(oid, Value(Tag.COUNTER32, self.counters[name] & 0xFFFFFFFF))
                    for name, oid in COUNTERS.items()]
        objects = [oid[:-1] for oid, _ in entries]
        return OidTable(entries, objects)
