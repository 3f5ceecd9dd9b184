"""SNMP messages: v1/v2c (community) and v3 (RFC 3412) with their PDUs (RFC 3416).

Decoding is strict (:class:`~hvmon.plugins.snmp.ber.DecodeError` for any
malformation). Responses are encoded from pre-encoded varbind bytes so the
engine can assemble GETBULK answers without re-encoding values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from hvmon.plugins.snmp.ber import (
    SEQUENCE,
    DecodeError,
    encode_integer,
    encode_octets,
    encode_oid,
    encode_varbind,
    expect,
    read_int32,
    read_octets,
    read_oid,
    read_tlv,
    read_varbinds,
    tlv,
)
from hvmon.plugins.snmp.types import OID, Tag, VarBind

V1, V2C, V3 = 0, 1, 3
VERSIONS = (V1, V2C, V3)
USM = 3  # msgSecurityModel of the User-based Security Model

FLAG_AUTH, FLAG_PRIV, FLAG_REPORTABLE = 0x01, 0x02, 0x04


class PduType(IntEnum):
    GET = 0xA0
    GET_NEXT = 0xA1
    RESPONSE = 0xA2
    SET = 0xA3
    TRAP_V1 = 0xA4
    GET_BULK = 0xA5
    INFORM = 0xA6
    TRAP_V2 = 0xA7
    REPORT = 0xA8


#: PDUs a command responder answers
REQUESTS = frozenset({PduType.GET, PduType.GET_NEXT, PduType.GET_BULK, PduType.SET})
_PDU_TYPES = frozenset(int(t) for t in PduType)


@dataclass
class Pdu:
    """A PDU; for GET_BULK ``error_status``/``error_index`` hold non-repeaters/max-repetitions."""

    type: PduType
    request_id: int = 0
    error_status: int = 0
    error_index: int = 0
    varbinds: list[VarBind] = field(default_factory=list)

    @property
    def non_repeaters(self) -> int:
        return self.error_status

    @property
    def max_repetitions(self) -> int:
        return self.error_index


@dataclass
class TrapV1Pdu:
    """The SNMPv1 Trap-PDU (RFC 1157)."""

    enterprise: OID
    agent_addr: bytes
    generic: int
    specific: int
    timestamp: int
    varbinds: list[VarBind] = field(default_factory=list)
    type: PduType = PduType.TRAP_V1


@dataclass
class CommunityMessage:
    """An SNMPv1 or v2c message."""

    version: int
    community: bytes
    pdu: Pdu | TrapV1Pdu


@dataclass
class ScopedPdu:
    context_engine_id: bytes
    context_name: bytes
    pdu: Pdu


@dataclass
class V3Message:
    """An SNMPv3 message; ``scoped`` is the plaintext ScopedPDU or the encrypted octets."""

    msg_id: int
    max_size: int
    flags: int
    security_model: int
    security_params: bytes
    scoped: ScopedPdu | bytes
    #: where the security parameters' content starts in the whole message
    params_at: int = 0

    @property
    def auth(self) -> bool:
        return bool(self.flags & FLAG_AUTH)

    @property
    def priv(self) -> bool:
        return bool(self.flags & FLAG_PRIV)

    @property
    def reportable(self) -> bool:
        return bool(self.flags & FLAG_REPORTABLE)


# --- decoding -------------------------------------------------------------------

def peek_version(data: bytes) -> int:
    """The msgVersion of a message (DecodeError when there is none)."""
    start, stop = expect(data, 0, len(data), SEQUENCE, "message")
    if stop != len(data):
        raise DecodeError("trailing bytes after the message")
    version, _ = read_int32(data, start, stop, "version")
    return version


def decode_pdu(data: bytes, pos: int, end: int) -> tuple[Pdu | TrapV1Pdu, int]:
    """The PDU at ``pos``; returns it and the position after it."""
    tag, start, stop = read_tlv(data, pos, end)
    if tag not in _PDU_TYPES:
        raise DecodeError(f"unknown PDU type 0x{tag:02x}")
    kind = PduType(tag)
    if kind == PduType.TRAP_V1:
        enterprise, p = read_oid(data, start, stop, "enterprise")
        a_start, a_stop = expect(data, p, stop, Tag.IP_ADDRESS, "agent-addr")
        if a_stop - a_start != 4:
            raise DecodeError("agent-addr must be 4 octets")
        generic, p = read_int32(data, a_stop, stop, "generic-trap")
        specific, p = read_int32(data, p, stop, "specific-trap")
        t_start, t_stop = expect(data, p, stop, Tag.TIMETICKS, "time-stamp")
        timestamp = int.from_bytes(data[t_start:t_stop], "big")
        return TrapV1Pdu(enterprise, bytes(data[a_start:a_stop]), generic, specific, timestamp,
                         read_varbinds(data, t_stop, stop)), stop
    request_id, p = read_int32(data, start, stop, "request-id")
    status, p = read_int32(data, p, stop, "error-status")
    index, p = read_int32(data, p, stop, "error-index")
    return Pdu(kind, request_id, status, index, read_varbinds(data, p, stop)), stop


def decode_community(data: bytes) -> CommunityMessage:
    """A v1/v2c message."""
    start, stop = expect(data, 0, len(data), SEQUENCE, "message")
    if stop != len(data):
        raise DecodeError("trailing bytes after the message")
    version, p = read_int32(data, start, stop, "version")
    if version not in (V1, V2C):
        raise DecodeError(f"not a community message: version {version}")
    community, p = read_octets(data, p, stop, "community")
    pdu, p = decode_pdu(data, p, stop)
    if p != stop:
        raise DecodeError("trailing bytes after the PDU")
    return CommunityMessage(version, community, pdu)


def decode_v3(data: bytes) -> V3Message:
    """A v3 message; the ScopedPDU stays encrypted when the privacy flag is set."""
    start, stop = expect(data, 0, len(data), SEQUENCE, "message")
    if stop != len(data):
        raise DecodeError("trailing bytes after the message")
    version, p = read_int32(data, start, stop, "version")
    if version != V3:
        raise DecodeError(f"not a v3 message: version {version}")
    g_start, g_stop = expect(data, p, stop, SEQUENCE, "msgGlobalData")
    msg_id, q = read_int32(data, g_start, g_stop, "msgID")
    max_size, q = read_int32(data, q, g_stop, "msgMaxSize")
    flags_raw, q = read_octets(data, q, g_stop, "msgFlags")
    model, q = read_int32(data, q, g_stop, "msgSecurityModel")
    if q != g_stop:
        raise DecodeError("trailing bytes in msgGlobalData")
    if msg_id < 0 or max_size < 484:
        raise DecodeError("msgID or msgMaxSize out of range")
    if len(flags_raw) != 1:
        raise DecodeError("msgFlags must be one octet")
    flags = flags_raw[0]
    if flags & FLAG_PRIV and not flags & FLAG_AUTH:
        raise DecodeError("msgFlags: privacy without authentication")
    params_at = read_tlv(data, g_stop, stop)[1]
    params, p = read_octets(data, g_stop, stop, "msgSecurityParameters")
    if flags & FLAG_PRIV:
        scoped: ScopedPdu | bytes
        scoped, p = read_octets(data, p, stop, "encryptedPDU")
    else:
        s_start, s_stop = expect(data, p, stop, SEQUENCE, "ScopedPDU")
        scoped = decode_scoped(data, s_start, s_stop)
        p = s_stop
    if p != stop:
        raise DecodeError("trailing bytes after the ScopedPDU")
    return V3Message(msg_id, max_size, flags, model, params, scoped, params_at)


def decode_scoped(data: bytes, start: int, stop: int) -> ScopedPdu:
    """The contents of a ScopedPDU SEQUENCE."""
    engine, p = read_octets(data, start, stop, "contextEngineID")
    name, p = read_octets(data, p, stop, "contextName")
    pdu, p = decode_pdu(data, p, stop)
    if p != stop or isinstance(pdu, TrapV1Pdu):
        raise DecodeError("bad ScopedPDU")
    return ScopedPdu(engine, name, pdu)


def decode_scoped_bytes(data: bytes) -> ScopedPdu:
    """A decrypted ScopedPDU (padding after the SEQUENCE is allowed, RFC 3414 8.3.2)."""
    start, stop = expect(data, 0, len(data), SEQUENCE, "ScopedPDU")
    return decode_scoped(data, start, stop)


# --- encoding -------------------------------------------------------------------

def encode_varbinds(varbinds: list[VarBind]) -> bytes:
    return b"".join(encode_varbind(oid, value) for oid, value in varbinds)


def encode_pdu_raw(kind: int, request_id: int, status: int, index: int,
                   varbinds_content: bytes) -> bytes:
    """A PDU from the concatenated encodings of its varbinds."""
    return tlv(kind, encode_integer(request_id) + encode_integer(status)
               + encode_integer(index) + tlv(SEQUENCE, varbinds_content))


def encode_pdu(pdu: Pdu | TrapV1Pdu) -> bytes:
    if isinstance(pdu, TrapV1Pdu):
        body = (encode_oid(pdu.enterprise) + tlv(Tag.IP_ADDRESS, pdu.agent_addr)
                + encode_integer(pdu.generic) + encode_integer(pdu.specific)
                + encode_integer(pdu.timestamp, Tag.TIMETICKS)
                + tlv(SEQUENCE, encode_varbinds(pdu.varbinds)))
        return tlv(PduType.TRAP_V1, body)
    return encode_pdu_raw(pdu.type, pdu.request_id, pdu.error_status, pdu.error_index,
                          encode_varbinds(pdu.varbinds))


def community_prefix(version: int, community: bytes) -> bytes:
    """The message fields before the PDU."""
    return encode_integer(version) + encode_octets(community)


def encode_community_raw(version: int, community: bytes, pdu_bytes: bytes) -> bytes:
    return tlv(SEQUENCE, community_prefix(version, community) + pdu_bytes)


def encode_community(message: CommunityMessage) -> bytes:
    return encode_community_raw(message.version, message.community, encode_pdu(message.pdu))


def encode_scoped_raw(context_engine_id: bytes, context_name: bytes, pdu_bytes: bytes) -> bytes:
    return tlv(SEQUENCE, encode_octets(context_engine_id) + encode_octets(context_name)
               + pdu_bytes)


def encode_v3_raw(msg_id: int, max_size: int, flags: int, security_params: bytes,
                  scoped_bytes: bytes, *, encrypted: bool) -> bytes:
    """A v3 message; ``scoped_bytes`` is an encoded ScopedPDU or the encrypted octets."""
    header = tlv(SEQUENCE, encode_integer(msg_id) + encode_integer(max_size)
                 + encode_octets(bytes((flags,))) + encode_integer(USM))
    body = encode_octets(scoped_bytes) if encrypted else scoped_bytes
    return tlv(SEQUENCE, encode_integer(V3) + header + encode_octets(security_params) + body)
