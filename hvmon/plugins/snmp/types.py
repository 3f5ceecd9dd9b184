"""SNMP values, error statuses and object identifiers shared by the MIB view and the engines.

Nothing here encodes or decodes: the BER codec (``ber.py``) and the AgentX
codec (``agentx/``) turn these into bytes. The tags are the BER tags of
RFC 3416 (``SNMPv2-SMI`` application types and the v2 exception values).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

#: an object identifier as a tuple of sub-identifiers
OID = tuple[int, ...]


def parse_oid(text: str) -> OID:
    """``"1.3.6.1"`` or ``".1.3.6.1"`` -> ``(1, 3, 6, 1)``; ValueError on anything else."""
    parts = text.strip().lstrip(".").split(".")
    try:
        oid = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"not a numeric OID: {text!r:.60}") from None
    if len(oid) < 2 or any(p < 0 or p > 0xFFFFFFFF for p in oid):
        raise ValueError(f"not a valid OID: {text!r:.60}")
    return oid


def format_oid(oid: OID) -> str:
    return ".".join(map(str, oid))


class Tag(IntEnum):
    """BER tag of a varbind value (RFC 3416 section 3 and 2.1 of RFC 2578)."""

    INTEGER = 0x02
    OCTET_STRING = 0x04
    NULL = 0x05
    OBJECT_IDENTIFIER = 0x06
    IP_ADDRESS = 0x40
    COUNTER32 = 0x41
    GAUGE32 = 0x42  # also Unsigned32
    TIMETICKS = 0x43
    OPAQUE = 0x44
    COUNTER64 = 0x46
    NO_SUCH_OBJECT = 0x80
    NO_SUCH_INSTANCE = 0x81
    END_OF_MIB_VIEW = 0x82


#: tags that are exceptions, not values (v2c/v3 only; v1 maps them to noSuchName)
EXCEPTIONS = frozenset({Tag.NO_SUCH_OBJECT, Tag.NO_SUCH_INSTANCE, Tag.END_OF_MIB_VIEW})


@dataclass(frozen=True, slots=True)
class Value:
    """One varbind value: a tag and its Python data.

    ``data`` is an int (INTEGER, Counter32/64, Gauge32, TimeTicks), bytes
    (OCTET STRING, Opaque, IpAddress as 4 bytes), an OID tuple, or None
    (NULL and the exceptions).
    """

    tag: Tag
    data: int | bytes | OID | None = None

    @classmethod
    def integer(cls, n: int) -> Value:
        return cls(Tag.INTEGER, int(n))

    @classmethod
    def octets(cls, data: bytes | str) -> Value:
        return cls(Tag.OCTET_STRING, data.encode() if isinstance(data, str) else bytes(data))

    @classmethod
    def gauge32(cls, n: int) -> Value:
        """Gauge32 or Unsigned32 (same tag), clamped to 0..2^32-1."""
        return cls(Tag.GAUGE32, min(max(int(n), 0), 0xFFFFFFFF))

    @classmethod
    def counter32(cls, n: int) -> Value:
        return cls(Tag.COUNTER32, int(n) & 0xFFFFFFFF)

    @classmethod
    def counter64(cls, n: int) -> Value:
        return cls(Tag.COUNTER64, int(n) & 0xFFFFFFFFFFFFFFFF)

    @classmethod
    def timeticks(cls, n: int) -> Value:
        return cls(Tag.TIMETICKS, int(n) & 0xFFFFFFFF)

    @classmethod
    def oid(cls, oid: OID) -> Value:
        return cls(Tag.OBJECT_IDENTIFIER, tuple(oid))

    @property
    def is_exception(self) -> bool:
        return self.tag in EXCEPTIONS


NULL = Value(Tag.NULL)
NO_SUCH_OBJECT = Value(Tag.NO_SUCH_OBJECT)
NO_SUCH_INSTANCE = Value(Tag.NO_SUCH_INSTANCE)
END_OF_MIB_VIEW = Value(Tag.END_OF_MIB_VIEW)

#: a variable binding
VarBind = tuple[OID, Value]


class ErrorStatus(IntEnum):
    """PDU error-status (RFC 3416; 1-5 are the SNMPv1 ones)."""

    NO_ERROR = 0
    TOO_BIG = 1
    NO_SUCH_NAME = 2
    BAD_VALUE = 3
    READ_ONLY = 4
    GEN_ERR = 5
    NO_ACCESS = 6
    WRONG_TYPE = 7
    WRONG_LENGTH = 8
    WRONG_ENCODING = 9
    WRONG_VALUE = 10
    NO_CREATION = 11
    INCONSISTENT_VALUE = 12
    RESOURCE_UNAVAILABLE = 13
    COMMIT_FAILED = 14
    UNDO_FAILED = 15
    AUTHORIZATION_ERROR = 16
    NOT_WRITABLE = 17
    INCONSISTENT_NAME = 18


class SetFailure(Exception):
    """A SET refused or failed: ``status`` for the varbind at ``index`` (0-based)."""

    def __init__(self, status: ErrorStatus, index: int, message: str = "") -> None:
        super().__init__(message or status.name.lower())
        self.status, self.index = status, index
