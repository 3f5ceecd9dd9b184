"""The AgentX wire format of RFC 2741 section 6: header, OIDs, octet strings, varbinds, PDUs.

:func:`decode_header` reads the fixed 20-byte header, :func:`decode_body`
one PDU's payload; :func:`encode` builds any PDU and :func:`encode_response`
/ :func:`encode_varbind` are the responder's fast path. Every multi-byte
integer follows the header's NETWORK_BYTE_ORDER flag, on decode and encode.
Bad input raises :class:`ParseError` (a ValueError) with a one-line reason,
never anything else.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from hvmon.plugins.snmp.types import OID, ErrorStatus, Tag, Value, VarBind

HEADER_SIZE = 20
VERSION = 1
#: the most sub-identifiers an AgentX OID may have (RFC 2741 5.1)
MAX_SUBIDS = 128
#: payloads above this are refused (the stream cannot be trusted any more)
MAX_PAYLOAD = 1 << 22
INTERNET = (1, 3, 6, 1)
_NBO = 0x10  # Flags.NETWORK_BYTE_ORDER as a plain int (enum arithmetic is slow)
_CONTEXT = 0x08  # Flags.NON_DEFAULT_CONTEXT


class PduType(IntEnum):
    """h.type (RFC 2741 6.1)."""

    OPEN = 1
    CLOSE = 2
    REGISTER = 3
    UNREGISTER = 4
    GET = 5
    GETNEXT = 6
    GETBULK = 7
    TESTSET = 8
    COMMITSET = 9
    UNDOSET = 10
    CLEANUPSET = 11
    NOTIFY = 12
    PING = 13
    INDEXALLOCATE = 14
    INDEXDEALLOCATE = 15
    ADDAGENTCAPS = 16
    REMOVEAGENTCAPS = 17
    RESPONSE = 18


class Flags(IntFlag):
    """h.flags bits."""

    INSTANCE_REGISTRATION = 0x01
    NEW_INDEX = 0x02
    ANY_INDEX = 0x04
    NON_DEFAULT_CONTEXT = 0x08
    NETWORK_BYTE_ORDER = 0x10


class AgentxError(IntEnum):
    """res.error values of AgentX itself (0-18 are the SNMP error statuses)."""

    NO_AGENTX_ERROR = 0
    OPEN_FAILED = 256
    NOT_OPEN = 257
    INDEX_WRONG_TYPE = 258
    INDEX_ALREADY_ALLOCATED = 259
    INDEX_NONE_AVAILABLE = 260
    INDEX_NOT_ALLOCATED = 261
    UNSUPPORTED_CONTEXT = 262
    DUPLICATE_REGISTRATION = 263
    UNKNOWN_REGISTRATION = 264
    UNKNOWN_AGENT_CAPS = 265
    PARSE_ERROR = 266
    REQUEST_DENIED = 267
    PROCESSING_ERROR = 268


class CloseReason(IntEnum):
    """c.reason of an agentx-Close-PDU."""

    OTHER = 1
    PARSE_ERROR = 2
    PROTOCOL_ERROR = 3
    TIMEOUTS = 4
    SHUTDOWN = 5
    BY_MANAGER = 6


#: PDU types whose payload starts with a context when NON_DEFAULT_CONTEXT is set
CONTEXT_TYPES = frozenset({
    PduType.REGISTER, PduType.UNREGISTER, PduType.GET, PduType.GETNEXT, PduType.GETBULK,
    PduType.TESTSET, PduType.NOTIFY, PduType.PING, PduType.INDEXALLOCATE,
    PduType.INDEXDEALLOCATE, PduType.ADDAGENTCAPS, PduType.REMOVEAGENTCAPS,
})


class ParseError(ValueError):
    """Bytes that are not a well-formed AgentX PDU."""


class EncodeError(ValueError):
    """A value that AgentX cannot carry (an OID too long, an integer out of range)."""


def error_name(code: int) -> str:
    """``parseError``-style name of a res.error value (AgentX or SNMP)."""
    for enum in (AgentxError, ErrorStatus):
        try:
            member = enum(code)
        except ValueError:
            continue
        head, *rest = member.name.lower().split("_")
        return head + "".join(word.title() for word in rest)
    return f"error {code}"


# --- the PDU bodies -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Header:
    """The 20-byte AgentX header."""

    type: int
    flags: int = _NBO
    session_id: int = 0
    transaction_id: int = 0
    packet_id: int = 0
    payload_length: int = 0
    version: int = VERSION

    @property
    def big_endian(self) -> bool:
        return bool(self.flags & _NBO)


@dataclass(frozen=True, slots=True)
class SearchRange:
    """[start, end) for GetNext/GetBulk (``include``: start itself qualifies); end () = none."""

    start: OID
    end: OID = ()
    include: bool = False


@dataclass(frozen=True, slots=True)
class Open:
    timeout: int
    id: OID
    descr: bytes


@dataclass(frozen=True, slots=True)
class Close:
    reason: int


@dataclass(frozen=True, slots=True)
class Register:
    subtree: OID
    timeout: int = 0
    priority: int = 127
    range_subid: int = 0
    upper_bound: int = 0
    instance: bool = False


@dataclass(frozen=True, slots=True)
class Unregister:
    subtree: OID
    priority: int = 127
    range_subid: int = 0
    upper_bound: int = 0


@dataclass(frozen=True, slots=True)
class Get:
    ranges: tuple[SearchRange, ...]


@dataclass(frozen=True, slots=True)
class GetNext:
    ranges: tuple[SearchRange, ...]


@dataclass(frozen=True, slots=True)
class GetBulk:
    non_repeaters: int
    max_repetitions: int
    ranges: tuple[SearchRange, ...]


@dataclass(frozen=True, slots=True)
class TestSet:
    varbinds: tuple[VarBind, ...]


@dataclass(frozen=True, slots=True)
class CommitSet:
    pass


@dataclass(frozen=True, slots=True)
class UndoSet:
    pass


@dataclass(frozen=True, slots=True)
class CleanupSet:
    pass


@dataclass(frozen=True, slots=True)
class Notify:
    varbinds: tuple[VarBind, ...]


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class IndexAllocate:
    varbinds: tuple[VarBind, ...]


@dataclass(frozen=True, slots=True)
class IndexDeallocate:
    varbinds: tuple[VarBind, ...]


@dataclass(frozen=True, slots=True)
class AddAgentCaps:
    id: OID
    descr: bytes


@dataclass(frozen=True, slots=True)
class RemoveAgentCaps:
    id: OID


@dataclass(frozen=True, slots=True)
class Response:
    sys_uptime: int = 0
    error: int = 0
    index: int = 0
    varbinds: tuple[VarBind, ...] = field(default=())


Body = (Open | Close | Register | Unregister | Get | GetNext | GetBulk | TestSet | CommitSet
        | UndoSet | CleanupSet | Notify | Ping | IndexAllocate | IndexDeallocate
        | AddAgentCaps | RemoveAgentCaps | Response)

BODY_TYPES: dict[type, PduType] = {
    Open: PduType.OPEN, Close: PduType.CLOSE, Register: PduType.REGISTER,
    Unregister: PduType.UNREGISTER, Get: PduType.GET, GetNext: PduType.GETNEXT,
    GetBulk: PduType.GETBULK, TestSet: PduType.TESTSET, CommitSet: PduType.COMMITSET,
    UndoSet: PduType.UNDOSET, CleanupSet: PduType.CLEANUPSET, Notify: PduType.NOTIFY,
    Ping: PduType.PING, IndexAllocate: PduType.INDEXALLOCATE,
    IndexDeallocate: PduType.INDEXDEALLOCATE, AddAgentCaps: PduType.ADDAGENTCAPS,
    RemoveAgentCaps: PduType.REMOVEAGENTCAPS, Response: PduType.RESPONSE,
}


@dataclass(frozen=True, slots=True)
class Pdu:
    """A decoded PDU: its header, its context (None = default) and its body."""

    header: Header
    body: Body
    context: bytes | None = None


# --- decoding -------------------------------------------------------------------

_HEADER_BE = struct.Struct(">BBBBIIII")
_HEADER_LE = struct.Struct("<BBBBIIII")


def decode_header(data: bytes | bytearray | memoryview) -> Header:
    """The header at the start of ``data``; ParseError when shorter than 20 bytes."""
    if len(data) < HEADER_SIZE:
        raise ParseError(f"truncated header ({len(data)} of {HEADER_SIZE} bytes)")
    layout = _HEADER_BE if data[2] & _NBO else _HEADER_LE
    version, kind, flags, _, session, transaction, packet, length = layout.unpack_from(data)
    return Header(kind, flags, session, transaction, packet, length, version)


class _Reader:
    """Bounds-checked reads from one payload in one byte order."""

    __slots__ = ("data", "pos", "order")

    def __init__(self, data: bytes, big_endian: bool) -> None:
        self.data, self.pos, self.order = bytes(data), 0, ">" if big_endian else "<"

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> int:
        start = self.pos
        if n > len(self.data) - start:
            raise ParseError(f"truncated {what} at byte {start}")
        self.pos = start + n
        return start

    def unpack(self, fmt: str, size: int, what: str) -> tuple[int, ...]:
        return struct.unpack_from(self.order + fmt, self.data, self.take(size, what))

    def bytes4(self, what: str) -> bytes:
        start = self.take(4, what)
        return self.data[start:start + 4]

    def oid(self, what: str = "object identifier") -> tuple[OID, bool]:
        start = self.take(4, what)
        count, prefix, include = self.data[start], self.data[start + 1], self.data[start + 2]
        if count > MAX_SUBIDS:
            raise ParseError(f"{what} with {count} sub-identifiers (at most {MAX_SUBIDS})")
        subids = struct.unpack_from(f"{self.order}{count}I", self.data,
                                    self.take(4 * count, what))
        if prefix:
            return (1, 3, 6, 1, prefix, *subids), bool(include)
        return subids, bool(include)

    def octets(self, what: str = "octet string") -> bytes:
        (length,) = self.unpack("I", 4, what)
        start = self.take(length, what)
        self.take(-length % 4, what)
        return self.data[start:start + length]

    def varbind(self) -> VarBind:
        kind, _ = self.unpack("HH", 4, "varbind")
        name, _ = self.oid("varbind name")
        try:
            tag = Tag(kind)
        except ValueError:
            raise ParseError(f"unknown varbind type {kind}") from None
        if tag is Tag.INTEGER:
            return name, Value(tag, self.unpack("i", 4, "Integer")[0])
        if tag in (Tag.COUNTER32, Tag.GAUGE32, Tag.TIMETICKS):
            return name, Value(tag, self.unpack("I", 4, tag.name)[0])
        if tag is Tag.COUNTER64:
            return name, Value(tag, self.unpack("Q", 8, "Counter64")[0])
        if tag in (Tag.OCTET_STRING, Tag.OPAQUE, Tag.IP_ADDRESS):
            return name, Value(tag, self.octets(tag.name))
        if tag is Tag.OBJECT_IDENTIFIER:
            return name, Value(tag, self.oid("OID value")[0])
        return name, Value(tag)

    def varbinds(self) -> tuple[VarBind, ...]:
        found = []
        while self.remaining():
            found.append(self.varbind())
        return tuple(found)

    def ranges(self) -> tuple[SearchRange, ...]:
        found = []
        while self.remaining():
            start, include = self.oid("search range start")
            end, _ = self.oid("search range end")
            found.append(SearchRange(start, end, include))
        return tuple(found)


def decode_body(header: Header, payload: bytes) -> tuple[bytes | None, Body]:
    """(context, body) of one PDU's payload; ParseError on anything malformed."""
    if header.version != VERSION:
        raise ParseError(f"unsupported AgentX version {header.version}")
    if len(payload) != header.payload_length:
        raise ParseError(f"payload is {len(payload)} bytes, header says "
                         f"{header.payload_length}")
    if len(payload) % 4:
        raise ParseError(f"payload length {len(payload)} is not a multiple of 4")
    kind = header.type
    decoder = _BODY_DECODERS.get(kind)
    if decoder is None:
        raise ParseError(f"unknown PDU type {kind}")
    reader = _Reader(payload, bool(header.flags & _NBO))
    context = None
    if header.flags & _CONTEXT and kind in CONTEXT_TYPES:
        context = reader.octets("context")
    body = decoder(reader, header)
    if reader.remaining():
        raise ParseError(f"{reader.remaining()} trailing bytes after a "
                         f"{PduType(kind).name} PDU")
    return context, body


def decode_ranges(payload: bytes, big_endian: bool) -> list[SearchRange]:
    """The SearchRangeList of a Get/GetNext payload without a context (the fast path)."""
    order = ">" if big_endian else "<"
    unpack = struct.unpack_from
    found, pos, size = [], 0, len(payload)
    try:
        while pos < size:
            count, prefix, include = payload[pos], payload[pos + 1], payload[pos + 2]
            if count > MAX_SUBIDS or pos + 8 + 4 * count > size:
                raise ParseError(f"bad search range start at byte {pos}")
            start = unpack(f"{order}{count}I", payload, pos + 4)
            if prefix:
                start = (1, 3, 6, 1, prefix, *start)
            pos += 4 + 4 * count
            count, prefix = payload[pos], payload[pos + 1]
            if count > MAX_SUBIDS or pos + 4 + 4 * count > size:
                raise ParseError(f"bad search range end at byte {pos}")
            end = unpack(f"{order}{count}I", payload, pos + 4)
            if prefix:
                end = (1, 3, 6, 1, prefix, *end)
            pos += 4 + 4 * count
            found.append(SearchRange(start, end, bool(include)))
    except IndexError:
        raise ParseError(f"truncated search range at byte {pos}") from None
    return found


def decode(data: bytes) -> Pdu:
    """One whole PDU (header and payload, nothing more)."""
    header = decode_header(data)
    if len(data) - HEADER_SIZE != header.payload_length:
        raise ParseError(f"PDU is {len(data)} bytes, header says "
                         f"{HEADER_SIZE + header.payload_length}")
    context, body = decode_body(header, data[HEADER_SIZE:])
    return Pdu(header, body, context)


def _open(r: _Reader, h: Header) -> Open:
    timeout = r.bytes4("o.timeout")[0]
    return Open(timeout, r.oid("o.id")[0], r.octets("o.descr"))


def _register(r: _Reader, h: Header) -> Register:
    timeout, priority, range_subid, _ = r.bytes4("registration")
    subtree, _ = r.oid("r.subtree")
    upper = r.unpack("I", 4, "r.upper_bound")[0] if range_subid else 0
    return Register(subtree, timeout, priority, range_subid, upper,
                    bool(h.flags & Flags.INSTANCE_REGISTRATION))


def _unregister(r: _Reader, h: Header) -> Unregister:
    _, priority, range_subid, _ = r.bytes4("unregistration")
    subtree, _ = r.oid("u.subtree")
    upper = r.unpack("I", 4, "u.upper_bound")[0] if range_subid else 0
    return Unregister(subtree, priority, range_subid, upper)


def _getbulk(r: _Reader, h: Header) -> GetBulk:
    non_repeaters, max_repetitions = r.unpack("HH", 4, "getbulk counts")
    return GetBulk(non_repeaters, max_repetitions, r.ranges())


def _response(r: _Reader, h: Header) -> Response:
    uptime, error, index = r.unpack("IHH", 8, "response")
    return Response(uptime, error, index, r.varbinds())


_BODY_DECODERS = {
    PduType.OPEN: _open,
    PduType.CLOSE: lambda r, h: Close(r.bytes4("c.reason")[0]),
    PduType.REGISTER: _register,
    PduType.UNREGISTER: _unregister,
    PduType.GET: lambda r, h: Get(r.ranges()),
    PduType.GETNEXT: lambda r, h: GetNext(r.ranges()),
    PduType.GETBULK: _getbulk,
    PduType.TESTSET: lambda r, h: TestSet(r.varbinds()),
    PduType.COMMITSET: lambda r, h: CommitSet(),
    PduType.UNDOSET: lambda r, h: UndoSet(),
    PduType.CLEANUPSET: lambda r, h: CleanupSet(),
    PduType.NOTIFY: lambda r, h: Notify(r.varbinds()),
    PduType.PING: lambda r, h: Ping(),
    PduType.INDEXALLOCATE: lambda r, h: IndexAllocate(r.varbinds()),
    PduType.INDEXDEALLOCATE: lambda r, h: IndexDeallocate(r.varbinds()),
    PduType.ADDAGENTCAPS: lambda r, h: AddAgentCaps(r.oid("a.id")[0], r.octets("a.descr")),
    PduType.REMOVEAGENTCAPS: lambda r, h: RemoveAgentCaps(r.oid("a.id")[0]),
    PduType.RESPONSE: _response,
}


# --- encoding -------------------------------------------------------------------

def encode_oid(oid: Sequence[int], include: bool = False, big_endian: bool = True) -> bytes:
    """An OID, with the 1.3.6.1.<prefix> compression of RFC 2741 5.1."""
    if len(oid) >= 5 and 0 < oid[4] < 256 and tuple(oid[:4]) == INTERNET:
        prefix, subids = oid[4], oid[5:]
    else:
        prefix, subids = 0, oid
    if len(subids) > MAX_SUBIDS:
        raise EncodeError(f"OID with {len(subids)} sub-identifiers (AgentX allows "
                          f"{MAX_SUBIDS})")
    try:
        packed = struct.pack(f"{'>' if big_endian else '<'}{len(subids)}I", *subids)
    except struct.error:
        raise EncodeError("OID sub-identifier out of range 0..2^32-1") from None
    return bytes((len(subids), prefix, 1 if include else 0, 0)) + packed


def encode_octets(data: bytes, big_endian: bool = True) -> bytes:
    """An octet string: length, data, zero padding to a multiple of 4."""
    return struct.pack(">I" if big_endian else "<I", len(data)) + data + b"\0" * (-len(data) % 4)


_INT_FORMATS = {Tag.INTEGER: "i", Tag.COUNTER32: "I", Tag.GAUGE32: "I", Tag.TIMETICKS: "I",
                Tag.COUNTER64: "Q"}
_STRING_TAGS = frozenset({Tag.OCTET_STRING, Tag.OPAQUE, Tag.IP_ADDRESS})


def encode_varbind(oid: OID, value: Value, big_endian: bool = True) -> bytes:
    """One varbind: type, name and data (none for NULL and the exceptions)."""
    order = ">" if big_endian else "<"
    tag = value.tag
    head = struct.pack(order + "HH", tag, 0) + encode_oid(oid, False, big_endian)
    data = value.data
    fmt = _INT_FORMATS.get(tag)
    if fmt is not None:
        if not isinstance(data, int):
            raise EncodeError(f"{tag.name} value must be an integer")
        try:
            return head + struct.pack(order + fmt, data)
        except struct.error:
            raise EncodeError(f"{tag.name} value {data} out of range") from None
    if tag in _STRING_TAGS:
        if not isinstance(data, bytes | bytearray):
            raise EncodeError(f"{tag.name} value must be bytes")
        return head + encode_octets(bytes(data), big_endian)
    if tag is Tag.OBJECT_IDENTIFIER:
        if not isinstance(data, tuple):
            raise EncodeError("OBJECT IDENTIFIER value must be an OID tuple")
        return head + encode_oid(data, False, big_endian)
    return head


def encode_varbinds(varbinds: Iterable[VarBind], big_endian: bool = True) -> bytes:
    return b"".join(encode_varbind(oid, value, big_endian) for oid, value in varbinds)


def _ranges(ranges: Iterable[SearchRange], big_endian: bool) -> bytes:
    return b"".join(encode_oid(r.start, r.include, big_endian)
                    + encode_oid(r.end, False, big_endian) for r in ranges)


def encode_payload(body: Body, big_endian: bool = True) -> bytes:
    """The payload of ``body`` (without the header and the context)."""
    order = ">" if big_endian else "<"
    match body:
        case Open(timeout, ident, descr):
            return (bytes((timeout, 0, 0, 0)) + encode_oid(ident, False, big_endian)
                    + encode_octets(descr, big_endian))
        case Close(reason):
            return bytes((reason, 0, 0, 0))
        case Register(subtree, timeout, priority, range_subid, upper, _):
            out = bytes((timeout, priority, range_subid, 0)) + encode_oid(subtree, False,
                                                                           big_endian)
            return out + (struct.pack(order + "I", upper) if range_subid else b"")
        case Unregister(subtree, priority, range_subid, upper):
            out = bytes((0, priority, range_subid, 0)) + encode_oid(subtree, False, big_endian)
            return out + (struct.pack(order + "I", upper) if range_subid else b"")
        case Get(ranges) | GetNext(ranges):
            return _ranges(ranges, big_endian)
        case GetBulk(non_repeaters, max_repetitions, ranges):
            return struct.pack(order + "HH", non_repeaters, max_repetitions) + _ranges(
                ranges, big_endian)
        case (TestSet(varbinds) | Notify(varbinds) | IndexAllocate(varbinds)
              | IndexDeallocate(varbinds)):
            return encode_varbinds(varbinds, big_endian)
        case AddAgentCaps(ident, descr):
            return encode_oid(ident, False, big_endian) + encode_octets(descr, big_endian)
        case RemoveAgentCaps(ident):
            return encode_oid(ident, False, big_endian)
        case Response(uptime, error, index, varbinds):
            return struct.pack(order + "IHH", uptime, error, index) + encode_varbinds(
                varbinds, big_endian)
        case _:
            return b""


def encode(body: Body, *, session_id: int = 0, transaction_id: int = 0, packet_id: int = 0,
           context: bytes | None = None, flags: int = 0, big_endian: bool = True) -> bytes:
    """A whole PDU: header (type from ``body``), optional context, payload."""
    kind = BODY_TYPES[type(body)]
    flags &= ~(Flags.NETWORK_BYTE_ORDER | Flags.NON_DEFAULT_CONTEXT)
    if big_endian:
        flags |= Flags.NETWORK_BYTE_ORDER
    if isinstance(body, Register) and body.instance:
        flags |= Flags.INSTANCE_REGISTRATION
    payload = encode_payload(body, big_endian)
    if context is not None and kind in CONTEXT_TYPES:
        flags |= Flags.NON_DEFAULT_CONTEXT
        payload = encode_octets(context, big_endian) + payload
    layout = _HEADER_BE if big_endian else _HEADER_LE
    return layout.pack(VERSION, kind, flags, 0, session_id, transaction_id, packet_id,
                       len(payload)) + payload


_RESPONSE_BE = struct.Struct(">BBBBIIIIIHH")
_RESPONSE_LE = struct.Struct("<BBBBIIIIIHH")


def encode_response(request: Header, error: int = 0, index: int = 0,
                    varbinds: bytes = b"", sys_uptime: int = 0) -> bytes:
    """The Response to ``request`` (same IDs and byte order) around pre-encoded varbinds."""
    big = request.big_endian
    layout = _RESPONSE_BE if big else _RESPONSE_LE
    return layout.pack(VERSION, 18, _NBO if big else 0, 0,
                       request.session_id, request.transaction_id, request.packet_id,
                       8 + len(varbinds), sys_uptime, error, index) + varbinds
