"""An immutable, sorted table of (OID, value) for one snapshot generation.

The MIB view builds one per snapshot generation; the engines answer GET,
GETNEXT and GETBULK from it with a binary search and never call a driver.
``scratch`` is free for an engine to cache derived data (pre-encoded BER
varbinds, for example) that lives exactly as long as the table.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from itertools import islice
from typing import Any

from hvmon.plugins.snmp.types import (
    END_OF_MIB_VIEW,
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    OID,
    Value,
    VarBind,
)


class OidTable:
    """Sorted varbinds plus the object prefixes that tell noSuchObject from noSuchInstance."""

    def __init__(self, entries: Iterable[VarBind], objects: Iterable[OID] = (),
                 generation: int = 0) -> None:
        pairs = sorted(entries, key=lambda e: e[0])
        self.oids: list[OID] = [oid for oid, _ in pairs]
        self.values: list[Value] = [value for _, value in pairs]
        for before, after in zip(self.oids, self.oids[1:], strict=False):
            if before == after:
                raise ValueError(f"duplicate OID {'.'.join(map(str, before))}")
        #: OIDs of the objects (scalar or column) this view implements
        self.objects: frozenset[OID] = frozenset(objects)
        self.generation = generation
        self.scratch: dict[str, Any] = {}

    @classmethod
    def presorted(cls, oids: list[OID], values: list[Value], objects: Iterable[OID] = (),
                  generation: int = 0) -> OidTable:
        """A table from parallel lists already in strictly increasing OID order.

        The order is checked (one pass), not sorted: the MIB view builds its
        tables in OID order, so the sort of ``__init__`` is pure cost at
        10,000 domains. The lists are taken over, not copied.
        """
        if len(oids) != len(values):
            raise ValueError("oids and values differ in length")
        for before, after in zip(oids, islice(oids, 1, None), strict=False):
            if not before < after:
                raise ValueError(f"OIDs not in increasing order at {'.'.join(map(str, after))}")
        table = cls.__new__(cls)
        table.oids, table.values = oids, values
        table.objects = frozenset(objects)
        table.generation = generation
        table.scratch = {}
        return table

    def __len__(self) -> int:
        return len(self.oids)

    def get(self, oid: OID) -> Value:
        """The value at ``oid``, or noSuchInstance / noSuchObject."""
        i = bisect_left(self.oids, oid)
        if i < len(self.oids) and self.oids[i] == oid:
            return self.values[i]
        for n in range(len(oid) - 1, 0, -1):
            if oid[:n] in self.objects:
                return NO_SUCH_INSTANCE
        return NO_SUCH_OBJECT

    def next_index(self, oid: OID) -> int:
        """Index of the first entry strictly after ``oid`` (``len(self)`` at the end)."""
        return bisect_right(self.oids, oid)

    def next(self, oid: OID) -> VarBind:
        """The GETNEXT answer for ``oid``: the next varbind, or (oid, endOfMibView)."""
        i = self.next_index(oid)
        if i < len(self.oids):
            return self.oids[i], self.values[i]
        return oid, END_OF_MIB_VIEW

    def within(self, prefix: OID) -> tuple[int, int]:
        """The index range [start, stop) of the entries under ``prefix``."""
        start = bisect_left(self.oids, prefix)
        stop = start
        n = len(prefix)
        while stop < len(self.oids) and self.oids[stop][:n] == prefix:
            stop += 1
        return start, stop
