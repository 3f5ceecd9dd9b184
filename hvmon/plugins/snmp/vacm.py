"""View-based access control (RFC 3415, reduced): a read and a write view per principal.

A view is a set of included subtrees. Read-only principals get an empty write
view, so a SET from them is refused before the MIB view sees it as writable.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from hvmon.plugins.snmp.types import OID


class MibView:
    """Included subtrees; ``()`` includes everything."""

    __slots__ = ("everything", "subtrees")

    def __init__(self, subtrees: Iterable[OID]) -> None:
        kept: list[OID] = []
        for oid in sorted(set(subtrees)):
            if kept and oid[:len(kept[-1])] == kept[-1]:
                continue  # inside a subtree already kept
            kept.append(oid)
        self.subtrees: tuple[OID, ...] = tuple(kept)
        self.everything = kept == [()]

    def __bool__(self) -> bool:
        return bool(self.subtrees)

    def __repr__(self) -> str:
        return f"MibView({['.'.join(map(str, s)) for s in self.subtrees]})"

    def contains(self, oid: OID) -> bool:
        if self.everything:
            return True
        i = bisect_right(self.subtrees, oid)
        if i == 0:
            return False
        prefix = self.subtrees[i - 1]
        return oid[:len(prefix)] == prefix

    def next_start(self, oid: OID) -> OID | None:
        """The first included subtree after ``oid`` (which no subtree contains)."""
        i = bisect_right(self.subtrees, oid)
        return self.subtrees[i] if i < len(self.subtrees) else None


EVERYTHING = MibView([()])
NOTHING = MibView([])


@dataclass(frozen=True)
class Access:
    """What one community or user may do; ``name`` is for logs (never a secret)."""

    name: str
    read: MibView = EVERYTHING
    write: MibView = NOTHING
    #: the lowest v3 security level accepted (0 noAuthNoPriv, 1 authNoPriv, 2 authPriv)
    min_level: int = 0

    @property
    def writable(self) -> bool:
        return bool(self.write)


def read_only(name: str, read: MibView = EVERYTHING, min_level: int = 0) -> Access:
    return Access(name, read, NOTHING, min_level)


def read_write(name: str, read: MibView = EVERYTHING, min_level: int = 0) -> Access:
    return Access(name, read, read, min_level)
