"""The AgentX codec (RFC 2741 section 5 and 6): layouts, byte orders, round trips, fuzz."""

from __future__ import annotations

import contextlib
import random
import struct

import pytest

from hvmon.plugins.snmp.agentx import pdu
from hvmon.plugins.snmp.agentx.pdu import (
    AddAgentCaps,
    CleanupSet,
    Close,
    CommitSet,
    EncodeError,
    Flags,
    Get,
    GetBulk,
    GetNext,
    IndexAllocate,
    IndexDeallocate,
    Notify,
    Open,
    ParseError,
    Ping,
    Register,
    RemoveAgentCaps,
    Response,
    SearchRange,
    UndoSet,
    Unregister,
)
from hvmon.plugins.snmp.types import (
    END_OF_MIB_VIEW,
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    NULL,
    Tag,
    Value,
)

HVMON = (1, 3, 6, 1, 4, 1, 32473)
ALL_VALUES = [
    Value.integer(-5), Value.integer(2**31 - 1), Value.octets(b"abc"), Value.octets(b""),
    Value.octets(b"four"), NULL, Value.oid(HVMON + (1, 2)), Value.oid(()),
    Value(Tag.IP_ADDRESS, b"\x7f\x00\x00\x01"), Value.counter32(7), Value.gauge32(2**32 - 1),
    Value.timeticks(12345), Value(Tag.OPAQUE, b"\x01\x02\x03"), Value.counter64(2**64 - 1),
    NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW,
]
VARBINDS = tuple((HVMON + (9, i), value) for i, value in enumerate(ALL_VALUES))
BODIES = [
    Open(5, HVMON, b"hvmon subagent"),
    Close(5),
    Register(HVMON, timeout=3, priority=100),
    Register(HVMON + (1, 2, 1), range_subid=9, upper_bound=20, instance=True),
    Unregister(HVMON, priority=127),
    Unregister(HVMON + (1,), range_subid=8, upper_bound=3),
    Get((SearchRange(HVMON + (1, 1, 0)), SearchRange((1, 3, 6, 1, 2, 1, 1, 1, 0)))),
    GetNext((SearchRange(HVMON, HVMON + (2,), True), SearchRange((1, 2, 3), ()))),
    GetBulk(1, 10, (SearchRange(HVMON), SearchRange(HVMON + (2,), HVMON + (3,)))),
    pdu.TestSet(VARBINDS),
    CommitSet(), UndoSet(), CleanupSet(), Ping(),
    Notify(VARBINDS[:3]),
    IndexAllocate(VARBINDS[:1]),
    IndexDeallocate(VARBINDS[1:2]),
    AddAgentCaps(HVMON + (2, 1), b"caps"),
    RemoveAgentCaps(HVMON + (2, 1)),
    Response(100, 0, 0, VARBINDS),
    Response(0, 266, 2, ()),
]


@pytest.mark.parametrize("big", [True, False], ids=["network-order", "little-endian"])
@pytest.mark.parametrize("body", BODIES, ids=lambda b: type(b).__name__)
def test_every_pdu_round_trips_in_both_byte_orders(body: pdu.Body, big: bool) -> None:
    data = pdu.encode(body, session_id=7, transaction_id=8, packet_id=9, big_endian=big)
    decoded = pdu.decode(data)
    assert decoded.body == body
    assert decoded.context is None
    header = decoded.header
    assert (header.version, header.session_id, header.transaction_id, header.packet_id) == (
        1, 7, 8, 9)
    assert header.big_endian is big
    assert header.payload_length == len(data) - 20
    assert header.payload_length % 4 == 0


@pytest.mark.parametrize("big", [True, False])
def test_context_is_carried_only_by_the_pdus_that_have_one(big: bool) -> None:
    data = pdu.encode(GetNext((SearchRange(HVMON),)), context=b"ctx1", big_endian=big)
    decoded = pdu.decode(data)
    assert decoded.context == b"ctx1"
    assert decoded.header.flags & Flags.NON_DEFAULT_CONTEXT
    # CommitSet has no context field: the flag is not set and nothing is added
    data = pdu.encode(CommitSet(), context=b"ctx1", big_endian=big)
    assert len(data) == 20 and not pdu.decode_header(data).flags & Flags.NON_DEFAULT_CONTEXT


def test_header_layout_is_rfc_2741_6_1() -> None:
    data = pdu.encode(Ping(), session_id=0x01020304, transaction_id=5, packet_id=6)
    assert data == bytes([1, 13, 0x10, 0]) + bytes.fromhex("01020304 00000005 00000006 00000000")
    little = pdu.encode(Ping(), session_id=0x01020304, transaction_id=5, packet_id=6,
                        big_endian=False)
    assert little == bytes([1, 13, 0, 0]) + bytes.fromhex("04030201 05000000 06000000 00000000")


def test_oid_prefix_compression_and_include() -> None:
    # 1.3.6.1.4.1.32473 -> prefix 4, sub-identifiers 1.32473 (RFC 2741 5.1)
    assert pdu.encode_oid(HVMON, include=True) == bytes([2, 4, 1, 0]) + struct.pack(">II", 1,
                                                                                    32473)
    # no prefix: 1.3.6.1.300 (prefix would not fit a byte), 1.2.3, and the null OID
    assert pdu.encode_oid((1, 3, 6, 1, 300))[:4] == bytes([5, 0, 0, 0])
    assert pdu.encode_oid((1, 2, 3)) == bytes([3, 0, 0, 0]) + struct.pack(">III", 1, 2, 3)
    assert pdu.encode_oid(()) == bytes(4)
    # 1.3.6.1.2 is all prefix: zero sub-identifiers, prefix 2 (not the null OID)
    assert pdu.encode_oid((1, 3, 6, 1, 2)) == bytes([0, 2, 0, 0])


def test_octet_strings_are_padded_to_four_bytes() -> None:
    assert pdu.encode_octets(b"abcde") == struct.pack(">I", 5) + b"abcde\0\0\0"
    assert pdu.encode_octets(b"") == bytes(4)
    assert pdu.encode_octets(b"ab", big_endian=False) == struct.pack("<I", 2) + b"ab\0\0"


def test_varbind_encodings() -> None:
    name = pdu.encode_oid((1, 2))
    assert pdu.encode_varbind((1, 2), Value.integer(-1)) == (
        struct.pack(">HH", 2, 0) + name + struct.pack(">i", -1))
    assert pdu.encode_varbind((1, 2), Value.counter64(1 << 40)) == (
        struct.pack(">HH", 70, 0) + name + struct.pack(">Q", 1 << 40))
    assert pdu.encode_varbind((1, 2), END_OF_MIB_VIEW) == struct.pack(">HH", 130, 0) + name
    assert pdu.encode_varbind((1, 2), Value.gauge32(3), big_endian=False) == (
        struct.pack("<HH", 66, 0) + pdu.encode_oid((1, 2), big_endian=False)
        + struct.pack("<I", 3))


@pytest.mark.parametrize("oid, value", [
    ((1,) * 129, NULL),                       # more than 128 sub-identifiers
    ((1, 2**32), NULL),                       # sub-identifier out of range
    ((1, 2), Value(Tag.INTEGER, 2**31)),      # Integer32 overflow
    ((1, 2), Value(Tag.COUNTER64, -1)),
    ((1, 2), Value(Tag.OCTET_STRING, 5)),     # wrong Python type
])
def test_unencodable_values_raise_encode_error(oid: tuple[int, ...], value: Value) -> None:
    with pytest.raises(EncodeError):
        pdu.encode_varbind(oid, value)


def test_response_fast_path_mirrors_the_request() -> None:
    for big in (True, False):
        request = pdu.decode_header(pdu.encode(GetNext(()), session_id=3, transaction_id=4,
                                               packet_id=5, big_endian=big))
        varbinds = pdu.encode_varbind(HVMON, Value.integer(1), big)
        decoded = pdu.decode(pdu.encode_response(request, 5, 1, varbinds))
        assert decoded.header.big_endian is big
        assert (decoded.header.session_id, decoded.header.transaction_id,
                decoded.header.packet_id) == (3, 4, 5)
        assert decoded.body == Response(0, 5, 1, ((HVMON, Value.integer(1)),))


def test_fast_range_decoder_agrees_with_the_full_decoder() -> None:
    body = GetNext((SearchRange(HVMON, HVMON + (2,), True), SearchRange((1, 2), ()),
                    SearchRange((1, 3, 6, 1, 2), (1, 3, 6, 1, 3))))
    for big in (True, False):
        data = pdu.encode(body, big_endian=big)
        assert tuple(pdu.decode_ranges(data[20:], big)) == body.ranges


@pytest.mark.parametrize("data, message", [
    (b"\x01\x05\x10", "truncated header"),
    (bytes([2, 5, 0x10, 0]) + bytes(16), "version 2"),
    (bytes([1, 99, 0x10, 0]) + bytes(16), "unknown PDU type 99"),
    (bytes([1, 5, 0x10, 0]) + bytes(12) + struct.pack(">I", 2) + b"\0\0", "multiple of 4"),
    (bytes([1, 5, 0x10, 0]) + bytes(12) + struct.pack(">I", 4) + bytes([3, 0, 0, 0]),
     "truncated search range start"),
    (bytes([1, 5, 0x10, 0]) + bytes(12) + struct.pack(">I", 4) + bytes([200, 0, 0, 0]),
     "200 sub-identifiers"),
    (bytes([1, 8, 0x10, 0]) + bytes(12) + struct.pack(">I", 8) + struct.pack(">HH", 99, 0)
     + bytes(4), "unknown varbind type 99"),
    (bytes([1, 18, 0x10, 0]) + bytes(12) + struct.pack(">I", 4) + bytes(4), "truncated response"),
    (bytes([1, 1, 0x10, 0]) + bytes(12) + struct.pack(">I", 12) + bytes([5, 0, 0, 0])
     + bytes(4) + struct.pack(">I", 99), "truncated o.descr"),
    (bytes([1, 13, 0x10, 0]) + bytes(12) + struct.pack(">I", 4) + bytes(4), "trailing bytes"),
])
def test_malformed_pdus_raise_one_line_parse_errors(data: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message) as info:
        pdu.decode(data)
    assert "\n" not in str(info.value)


def test_error_names() -> None:
    assert pdu.error_name(266) == "parseError"
    assert pdu.error_name(263) == "duplicateRegistration"
    assert pdu.error_name(17) == "notWritable"
    assert pdu.error_name(999) == "error 999"


def test_fuzz_random_and_truncated_pdus_only_ever_raise_parse_error() -> None:
    """Thousands of random, truncated and bit-flipped PDUs: decoded or ParseError, nothing else."""
    rng = random.Random(2741)
    valid = [pdu.encode(body, session_id=1, packet_id=i, big_endian=i % 2 == 0,
                        context=b"c" if i % 3 == 0 else None)
             for i, body in enumerate(BODIES)]
    outcomes = {"decoded": 0, "parse error": 0}
    for n in range(6000):
        base = bytearray(rng.choice(valid))
        mode = n % 4
        if mode == 0:  # truncated, header length fixed up so the payload is what is left
            cut = rng.randrange(20, len(base) + 1)
            base = base[:cut]
            order = ">" if base[2] & 0x10 else "<"
            base[16:20] = struct.pack(order + "I", cut - 20)
        elif mode == 1:  # random bytes flipped (the header's type and flags included)
            for _ in range(rng.randrange(1, 6)):
                base[rng.randrange(len(base))] = rng.randrange(256)
        elif mode == 2:  # random payload behind a valid header of a random type
            payload = bytes(rng.randrange(256) for _ in range(4 * rng.randrange(0, 16)))
            base = bytearray(bytes([1, rng.randrange(1, 20), rng.choice([0, 0x10, 0x18]), 0])
                             + bytes(12) + struct.pack(">I", len(payload)) + payload)
            if not base[2] & 0x10:
                base[16:20] = struct.pack("<I", len(payload))
        else:  # entirely random, any length
            base = bytearray(rng.randrange(256) for _ in range(rng.randrange(0, 80)))
        try:
            pdu.decode(bytes(base))
            outcomes["decoded"] += 1
        except ParseError:
            outcomes["parse error"] += 1
        if len(base) >= 20:  # the fast path sees payloads whose length is a multiple of 4
            payload = bytes(base[20:20 + (len(base) - 20) // 4 * 4])
            with contextlib.suppress(ParseError):
                pdu.decode_ranges(payload, bool(base[2] & 0x10))
    assert outcomes["decoded"] > 100 and outcomes["parse error"] > 1000, outcomes
