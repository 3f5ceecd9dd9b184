"""ber.py and message.py against pysnmp/pyasn1: byte-for-byte encodings, strict decoding."""

from __future__ import annotations

import random

import pytest
from pyasn1.codec.ber import decoder as asn1_decoder
from pyasn1.codec.ber import encoder as asn1_encoder
from pysnmp.proto import rfc1905
from pysnmp.proto.api import v1 as p1
from pysnmp.proto.api import v2c as p2

from hvmon.plugins.snmp import ber
from hvmon.plugins.snmp.ber import DecodeError
from hvmon.plugins.snmp.message import (
    V1,
    V2C,
    CommunityMessage,
    Pdu,
    PduType,
    TrapV1Pdu,
    decode_community,
    encode_community,
)
from hvmon.plugins.snmp.types import (
    END_OF_MIB_VIEW,
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    NULL,
    Tag,
    Value,
)

INTS = [0, 1, -1, 127, 128, -128, -129, 255, 256, 32767, -32768, 65535, 0x7FFFFFFF,
        -0x80000000, 8388607, -8388608]
UNSIGNED = [0, 1, 127, 128, 255, 256, 65535, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]
OIDS = [(1, 3), (0, 0), (1, 3, 6, 1, 2, 1, 1, 3, 0), (2, 999, 3), (1, 3, 6, 1, 4, 1, 32473, 1),
        (1, 3, 6, 1, 4294967295, 128, 16383, 16384, 2097151, 2097152)]


def pysnmp_value(value: Value) -> object:
    tag, data = value.tag, value.data
    return {
        Tag.INTEGER: lambda: p2.Integer(data),
        Tag.OCTET_STRING: lambda: p2.OctetString(data),
        Tag.NULL: lambda: p2.Null(""),
        Tag.OBJECT_IDENTIFIER: lambda: p2.ObjectIdentifier(data),
        Tag.IP_ADDRESS: lambda: p2.IpAddress(data),
        Tag.COUNTER32: lambda: p2.Counter32(data),
        Tag.GAUGE32: lambda: p2.Gauge32(data),
        Tag.TIMETICKS: lambda: p2.TimeTicks(data),
        Tag.OPAQUE: lambda: p2.Opaque(data),
        Tag.COUNTER64: lambda: p2.Counter64(data),
        Tag.NO_SUCH_OBJECT: lambda: rfc1905.noSuchObject,
        Tag.NO_SUCH_INSTANCE: lambda: rfc1905.noSuchInstance,
        Tag.END_OF_MIB_VIEW: lambda: rfc1905.endOfMibView,
    }[tag]()


def sample_values(rng: random.Random | None = None) -> list[Value]:
    values = [Value.integer(n) for n in INTS]
    values += [Value(t, n) for t in (Tag.COUNTER32, Tag.GAUGE32, Tag.TIMETICKS) for n in UNSIGNED]
    values += [Value.counter64(n) for n in (*UNSIGNED, 2**63, 2**64 - 1)]
    for data in (b"", b"x", b"\x00\xff" * 70, bytes(range(256)) * 2):
        values += [Value.octets(data), Value(Tag.OPAQUE, data)]
    values += [Value.oid(o) for o in OIDS]
    values += [Value(Tag.IP_ADDRESS, b"\x7f\x00\x00\x01"), NULL, NO_SUCH_OBJECT,
               NO_SUCH_INSTANCE, END_OF_MIB_VIEW]
    if rng is not None:
        values += [Value.integer(rng.randint(-2**31, 2**31 - 1)) for _ in range(200)]
        values += [Value.counter64(rng.getrandbits(rng.randint(1, 64))) for _ in range(200)]
        values += [Value.octets(rng.randbytes(rng.randint(0, 300))) for _ in range(50)]
        values += [Value.oid((1, 3, *(rng.getrandbits(rng.randint(1, 32))
                                      for _ in range(rng.randint(0, 20))))) for _ in range(200)]
    return values


def pyasn1_quirk(value: Value) -> bool:
    """pyasn1 encodes -2^(8k-1) with a redundant 0xff (X.690 8.3.2 forbids it): -128 -> ff 80."""
    n = value.data
    return value.tag == Tag.INTEGER and isinstance(n, int) and n < 0 and \
        (-n) & (-n - 1) == 0 and (-n).bit_length() % 8 == 0


def assert_same_encoding(value: Value) -> None:
    ours = ber.encode_value(value)
    theirs = asn1_encoder.encode(pysnmp_value(value))
    if pyasn1_quirk(value):  # ours is the minimal form; pyasn1 reads it back the same
        assert theirs == ours[:1] + bytes((ours[1] + 1, 0xFF)) + ours[2:]
        assert int(asn1_decoder.decode(ours, asn1Spec=p2.Integer())[0]) == value.data
    else:
        assert ours == theirs


@pytest.mark.parametrize("value", sample_values(), ids=lambda v: f"{v.tag.name}:{v.data!r:.20}")
def test_value_encoding_matches_pyasn1(value: Value) -> None:
    assert_same_encoding(value)


def test_random_values_and_varbinds_match_pysnmp_and_round_trip() -> None:
    rng = random.Random(5)
    for value in sample_values(rng):
        assert_same_encoding(value)
        ours = ber.encode_value(value)
        tag, start, stop = ber.read_tlv(ours, 0, len(ours))
        assert stop == len(ours)
        assert ber.decode_value(tag, ours, start, stop) == value
        oid = (1, 3, 6, 1, 4, 1, rng.getrandbits(31), rng.randint(0, 10))
        if not pyasn1_quirk(value):
            pdu = Pdu(PduType.RESPONSE, 1, 0, 0, [(oid, value)])
            expected = pysnmp_message(V2C, b"c", pdu)
            assert ber.encode_varbind(oid, value) in expected
            assert encode_community(CommunityMessage(V2C, b"c", pdu)) == expected


def pysnmp_message(version: int, community: bytes, pdu: Pdu) -> bytes:
    api = p1 if version == V1 else p2
    kinds = {PduType.GET: api.GetRequestPDU, PduType.GET_NEXT: api.GetNextRequestPDU,
             PduType.RESPONSE: api.GetResponsePDU, PduType.SET: api.SetRequestPDU}
    if version == V2C:
        kinds |= {PduType.GET_BULK: p2.GetBulkRequestPDU, PduType.INFORM: p2.InformRequestPDU,
                  PduType.TRAP_V2: p2.SNMPv2TrapPDU, PduType.REPORT: p2.ReportPDU}
    p = kinds[pdu.type]()
    if pdu.type == PduType.GET_BULK:
        p2.apiBulkPDU.set_defaults(p)
        p2.apiBulkPDU.set_request_id(p, pdu.request_id)
        p2.apiBulkPDU.set_non_repeaters(p, pdu.error_status)
        p2.apiBulkPDU.set_max_repetitions(p, pdu.error_index)
    else:
        api.apiPDU.set_defaults(p)
        api.apiPDU.set_request_id(p, pdu.request_id)
        api.apiPDU.set_error_status(p, pdu.error_status)
        api.apiPDU.set_error_index(p, pdu.error_index)
    api.apiPDU.set_varbinds(p, [(oid, pysnmp_value(v)) for oid, v in pdu.varbinds])
    msg = api.Message()
    api.apiMessage.set_defaults(msg)
    api.apiMessage.set_community(msg, community)
    api.apiMessage.set_pdu(msg, p)
    return asn1_encoder.encode(msg)


@pytest.mark.parametrize("kind", [k for k in PduType if k != PduType.TRAP_V1])
def test_v2c_messages_match_pysnmp_and_decode_back(kind: PduType) -> None:
    varbinds = [((1, 3, 6, 1, 2, 1, 1, 3, 0), Value.timeticks(12345)),
                ((1, 3, 6, 1, 4, 1, 32473, 1, 2, 1, 7, 5), Value.counter64(2**40)),
                ((1, 3, 6, 1, 4, 1, 32473, 1, 1, 1, 0), Value.octets("host é"))]
    pdu = Pdu(kind, -123456 if kind != PduType.GET_BULK else 77, 0 if kind != PduType.RESPONSE
              else 5, 2 if kind != PduType.GET_BULK else 50, varbinds)
    ours = encode_community(CommunityMessage(V2C, b"public", pdu))
    assert ours == pysnmp_message(V2C, b"public", pdu)
    back = decode_community(ours)
    assert (back.version, back.community, back.pdu) == (V2C, b"public", pdu)
    # pysnmp decodes ours to the same thing
    decoded, rest = asn1_decoder.decode(ours, asn1Spec=p2.Message())
    assert rest == b""
    assert int(p2.apiPDU.get_request_id(p2.apiMessage.get_pdu(decoded))) == pdu.request_id


def test_v1_messages_and_trap_pdu() -> None:
    pdu = Pdu(PduType.GET, 1, 0, 0, [((1, 3, 6, 1, 2, 1, 1, 1, 0), NULL)])
    ours = encode_community(CommunityMessage(V1, b"x", pdu))
    assert ours == pysnmp_message(V1, b"x", pdu)
    trap = TrapV1Pdu((1, 3, 6, 1, 4, 1, 32473), b"\x7f\x00\x00\x01", 6, 1, 500,
                     [((1, 3, 6, 1, 4, 1, 32473, 1, 0), Value.integer(3))])
    p = p1.TrapPDU()
    p1.apiTrapPDU.set_defaults(p)
    p1.apiTrapPDU.set_enterprise(p, trap.enterprise)
    p1.apiTrapPDU.set_agent_address(p, p1.IpAddress("127.0.0.1"))
    p1.apiTrapPDU.set_generic_trap(p, 6)
    p1.apiTrapPDU.set_specific_trap(p, 1)
    p1.apiTrapPDU.set_timestamp(p, 500)
    p1.apiTrapPDU.set_varbinds(p, [(trap.varbinds[0][0], p1.Integer(3))])
    msg = p1.Message()
    p1.apiMessage.set_defaults(msg)
    p1.apiMessage.set_community(msg, b"x")
    p1.apiMessage.set_pdu(msg, p)
    expected = asn1_encoder.encode(msg)
    assert encode_community(CommunityMessage(V1, b"x", trap)) == expected
    assert decode_community(expected).pdu == trap


GOOD = encode_community(CommunityMessage(V2C, b"public", Pdu(
    PduType.GET, 7, 0, 0, [((1, 3, 6, 1, 2, 1, 1, 1, 0), NULL)])))


@pytest.mark.parametrize(("data", "reason"), ids=range(12), argvalues=[
    (b"", "truncated"),
    (b"\x30", "truncated"),
    (b"\x30\x80" + GOOD[2:] + b"\x00\x00", "indefinite length"),
    (b"\x30\x84\x00\x00\x00\x10", "too large"),
    (b"\x30\x82\xff\xff" + GOOD[2:], "runs past the end"),
    (GOOD[:-1], "truncated"),
    (GOOD + b"\x00", "trailing bytes"),
    (b"\x31" + GOOD[1:], "expected tag 0x30"),
    (b"\x1f\x01\x00", "multi-byte tag"),
    (GOOD.replace(b"\xa0", b"\xaf"), "unknown PDU type"),
    (GOOD.replace(b"\x02\x01\x07", b"\x04\x01\x07"), "request-id: expected tag 0x02"),
    (GOOD.replace(b"\x05\x00", b"\x05\x01\x00")[:-1], "runs past the end"),
])
def test_malformed_messages_raise_one_line_decode_errors(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason) as info:
        decode_community(data)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "empty"),
    (b"\x2b\x80\x01", "leading 0x80"),
    (b"\x2b\x86", "truncated"),
    (b"\x2b\x90\x80\x80\x80\x00", "above 2\\^32-1"),
    (b"\x2b" + b"\x01" * 130, "at most 128"),
])
def test_bad_oids_are_refused(content: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        ber.decode_oid(content, 0, len(content))


@pytest.mark.parametrize(("tlv", "reason"), [
    (b"\x02\x00", "empty"),
    (b"\x02\x05\x00\x80\x00\x00\x00", "Integer32 range"),
    (b"\x41\x05\x01\x00\x00\x00\x00", "out of range"),
    (b"\x41\x01\xff", "out of range"),
    (b"\x46\x0a" + b"\x01" * 10, "too long"),
    (b"\x40\x03\x01\x02\x03", "IpAddress of 3"),
    (b"\x05\x01\x00", "NULL with content"),
    (b"\x82\x01\x00", "END_OF_MIB_VIEW with content"),
    (b"\x47\x00", "unknown tag"),
])
def test_bad_values_are_refused(tlv: bytes, reason: str) -> None:
    tag, start, stop = ber.read_tlv(tlv, 0, len(tlv))
    with pytest.raises(DecodeError, match=reason):
        ber.decode_value(tag, tlv, start, stop)


def test_lengths_and_encoders_refuse_nonsense() -> None:
    assert ber.encode_length(127) == b"\x7f"
    assert ber.encode_length(128) == b"\x81\x80"
    assert ber.encode_length(65536) == b"\x83\x01\x00\x00"
    with pytest.raises(ValueError):
        ber.encode_length(1 << 24)
    with pytest.raises(ValueError):
        ber.encode_value(Value(Tag.COUNTER32, -1))
    with pytest.raises(ValueError):
        ber.encode_value(Value(Tag.IP_ADDRESS, b"\x01"))
    with pytest.raises(ValueError):
        ber.oid_content((3, 1))
