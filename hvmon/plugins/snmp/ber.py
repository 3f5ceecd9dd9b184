"""BER for SNMP (X.690 definite-length subset, RFC 3416 types).

Encoders are plain functions returning bytes; the engine composes messages
from them (and from varbinds it encoded once per table). The decoder is
strict: one-byte tags only, definite lengths only (the indefinite form is
refused), nothing may run past its enclosing TLV, integers must fit their
type. Every failure is a :class:`DecodeError` with a one-line reason.
"""

from __future__ import annotations

from hvmon.plugins.snmp.types import OID, Tag, Value

SEQUENCE = 0x30
#: the largest length we accept (a UDP datagram is smaller)
MAX_LENGTH = 0xFFFFFF
#: sub-identifiers per OID (RFC 2578 3.5)
MAX_OID_LENGTH = 128

_INT32 = (-0x80000000, 0x7FFFFFFF)
_UNSIGNED_MAX = {Tag.COUNTER32: 0xFFFFFFFF, Tag.GAUGE32: 0xFFFFFFFF,
                 Tag.TIMETICKS: 0xFFFFFFFF, Tag.COUNTER64: 0xFFFFFFFFFFFFFFFF}
_EMPTY_TAGS = frozenset({Tag.NULL, Tag.NO_SUCH_OBJECT, Tag.NO_SUCH_INSTANCE,
                         Tag.END_OF_MIB_VIEW})
_KNOWN_TAGS = frozenset(int(t) for t in Tag)


class DecodeError(ValueError):
    """Malformed BER (one line)."""


# --- encoding -------------------------------------------------------------------

def encode_length(n: int) -> bytes:
    """Definite length: short form below 128, else long form."""
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    if n < 0x10000:
        return bytes((0x82, n >> 8, n & 0xFF))
    if n <= MAX_LENGTH:
        return bytes((0x83, n >> 16, (n >> 8) & 0xFF, n & 0xFF))
    raise ValueError(f"BER length {n} too large")


def tlv(tag: int, content: bytes) -> bytes:
    """One TLV."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    return bytes((tag,)) + encode_length(n) + content


def int_content(n: int) -> bytes:
    """Minimal two's-complement content octets of ``n``."""
    size = ((n if n >= 0 else ~n).bit_length() >> 3) + 1
    return n.to_bytes(size, "big", signed=True)


def encode_integer(n: int, tag: int = Tag.INTEGER) -> bytes:
    if 0 <= n < 0x80:
        return bytes((tag, 1, n))
    return tlv(tag, int_content(n))


def encode_octets(data: bytes, tag: int = Tag.OCTET_STRING) -> bytes:
    return tlv(tag, data)


def oid_content(oid: OID) -> bytes:
    """Content octets of an OID (first two arcs merged, base 128)."""
    if len(oid) < 2:
        raise ValueError(f"OID needs two arcs, got {oid!r}")
    first, second = oid[0], oid[1]
    if first > 2 or (first < 2 and second > 39):
        raise ValueError(f"bad OID start {first}.{second}")
    out = bytearray()
    for arc in (first * 40 + second, *oid[2:]):
        if arc < 0x80:
            if arc < 0:
                raise ValueError("negative OID arc")
            out.append(arc)
            continue
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def encode_oid(oid: OID) -> bytes:
    return tlv(Tag.OBJECT_IDENTIFIER, oid_content(oid))


def encode_value(value: Value) -> bytes:
    """A varbind value (including the exceptions)."""
    tag, data = value.tag, value.data
    if tag == Tag.INTEGER:
        return encode_integer(data)  # type: ignore[arg-type]
    if tag in _UNSIGNED_MAX:
        n = int(data)  # type: ignore[arg-type]
        if not 0 <= n <= _UNSIGNED_MAX[tag]:
            raise ValueError(f"{tag.name} out of range: {n}")
        return encode_integer(n, tag)
    if tag == Tag.OCTET_STRING or tag == Tag.OPAQUE:
        return tlv(tag, data)  # type: ignore[arg-type]
    if tag == Tag.IP_ADDRESS:
        if len(data) != 4:  # type: ignore[arg-type]
            raise ValueError("IpAddress needs 4 octets")
        return tlv(tag, data)  # type: ignore[arg-type]
    if tag == Tag.OBJECT_IDENTIFIER:
        return encode_oid(data)  # type: ignore[arg-type]
    if tag in _EMPTY_TAGS:
        return bytes((tag, 0))
    raise ValueError(f"cannot encode tag {tag!r}")


def encode_varbind(oid: OID, value: Value) -> bytes:
    """SEQUENCE { name OID, value }."""
    return tlv(SEQUENCE, encode_oid(oid) + encode_value(value))


def sequence(*parts: bytes) -> bytes:
    return tlv(SEQUENCE, b"".join(parts))


# --- decoding -------------------------------------------------------------------

def read_tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at ``pos``; nothing may pass ``end``."""
    if pos + 2 > end:
        raise DecodeError("truncated: no room for a tag and a length")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DecodeError(f"multi-byte tag 0x{tag:02x} not allowed")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DecodeError("indefinite length not allowed")
    else:
        count = first & 0x7F
        if count > 3:
            raise DecodeError(f"length of {count} octets too large")
        if pos + count > end:
            raise DecodeError("truncated length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    stop = pos + length
    if stop > end:
        raise DecodeError(f"truncated: length {length} runs past the end")
    return tag, pos, stop


def expect(data: bytes, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    """(content start, content end) of a TLV that must have ``tag``."""
    got, start, stop = read_tlv(data, pos, end)
    if got != tag:
        raise DecodeError(f"{what}: expected tag 0x{tag:02x}, got 0x{got:02x}")
    return start, stop


def decode_int(data: bytes, start: int, stop: int, what: str = "INTEGER") -> int:
    if start == stop:
        raise DecodeError(f"{what}: empty content")
    if stop - start > 9:
        raise DecodeError(f"{what}: {stop - start} octets is too long")
    return int.from_bytes(data[start:stop], "big", signed=True)


def read_int32(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """(value, next position) of an INTEGER that must fit Integer32."""
    start, stop = expect(data, pos, end, Tag.INTEGER, what)
    n = decode_int(data, start, stop, what)
    if not _INT32[0] <= n <= _INT32[1]:
        raise DecodeError(f"{what}: {n} out of Integer32 range")
    return n, stop


def read_octets(data: bytes, pos: int, end: int, what: str) -> tuple[bytes, int]:
    start, stop = expect(data, pos, end, Tag.OCTET_STRING, what)
    return bytes(data[start:stop]), stop


def decode_oid(data: bytes, start: int, stop: int) -> OID:
    if start == stop:
        raise DecodeError("OID: empty content")
    arcs: list[int] = []
    n = 0
    fresh = True
    for i in range(start, stop):
        byte = data[i]
        if fresh and byte == 0x80:
            raise DecodeError("OID: sub-identifier with a leading 0x80")
        n = (n << 7) | (byte & 0x7F)
        if byte & 0x80:
            fresh = False
            continue
        arcs.append(n)
        n, fresh = 0, True
    if not fresh:
        raise DecodeError("OID: last sub-identifier is truncated")
    first = arcs[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    oid = head + tuple(arcs[1:])
    if len(oid) > MAX_OID_LENGTH:
        raise DecodeError(f"OID: {len(oid)} sub-identifiers, at most {MAX_OID_LENGTH}")
    if any(arc > 0xFFFFFFFF for arc in oid):
        raise DecodeError("OID: sub-identifier above 2^32-1")
    return oid


def read_oid(data: bytes, pos: int, end: int, what: str = "OID") -> tuple[OID, int]:
    start, stop = expect(data, pos, end, Tag.OBJECT_IDENTIFIER, what)
    return decode_oid(data, start, stop), stop


def decode_value(tag: int, data: bytes, start: int, stop: int) -> Value:
    """The varbind value of a TLV already split by :func:`read_tlv`."""
    if tag not in _KNOWN_TAGS:
        raise DecodeError(f"value: unknown tag 0x{tag:02x}")
    kind = Tag(tag)
    if kind == Tag.INTEGER:
        n = decode_int(data, start, stop)
        if not _INT32[0] <= n <= _INT32[1]:
            raise DecodeError(f"INTEGER {n} out of Integer32 range")
        return Value(kind, n)
    if kind in _UNSIGNED_MAX:
        n = decode_int(data, start, stop, kind.name)
        if not 0 <= n <= _UNSIGNED_MAX[kind]:
            raise DecodeError(f"{kind.name} {n} out of range")
        return Value(kind, n)
    if kind == Tag.OCTET_STRING or kind == Tag.OPAQUE:
        return Value(kind, bytes(data[start:stop]))
    if kind == Tag.IP_ADDRESS:
        if stop - start != 4:
            raise DecodeError(f"IpAddress of {stop - start} octets")
        return Value(kind, bytes(data[start:stop]))
    if kind == Tag.OBJECT_IDENTIFIER:
        return Value(kind, decode_oid(data, start, stop))
    if stop != start:
        raise DecodeError(f"{kind.name} with content")
    return Value(kind)


def read_varbinds(data: bytes, pos: int, end: int,
                  limit: int = 10000) -> list[tuple[OID, Value]]:
    """A VarBindList SEQUENCE at ``pos`` (it must end exactly at ``end``)."""
    start, stop = expect(data, pos, end, SEQUENCE, "varbind list")
    if stop != end:
        raise DecodeError("trailing bytes after the varbind list")
    out = []
    pos = start
    while pos < stop:
        vb_start, vb_stop = expect(data, pos, stop, SEQUENCE, "varbind")
        oid, vpos = read_oid(data, vb_start, vb_stop, "varbind name")
        tag, vstart, vstop = read_tlv(data, vpos, vb_stop)
        if vstop != vb_stop:
            raise DecodeError("trailing bytes in a varbind")
        out.append((oid, decode_value(tag, data, vstart, vstop)))
        if len(out) > limit:
            raise DecodeError(f"more than {limit} varbinds")
        pos = vb_stop
    return out
