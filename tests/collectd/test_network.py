"""The binary protocol encoder, checked by an independent decoder written from collectd's spec."""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

import hvmon
from hvmon.plugins.collectd.network import MAX_PACKET_SIZE, Encoder, Security, ofb_mode
from hvmon.plugins.collectd.values import (
    DERIVE,
    GAUGE,
    Naming,
    Notification,
    ValueList,
    snapshot_values,
)

STRINGS = {0x0000: "host", 0x0002: "plugin", 0x0003: "plugin_instance", 0x0004: "type",
           0x0005: "type_instance", 0x0100: "message"}
NUMBERS = {0x0008: "time", 0x0009: "interval", 0x0101: "severity"}


def parts(packet: bytes) -> list[tuple[int, bytes]]:
    """(type, body) of every part; the lengths must add up exactly."""
    found, offset = [], 0
    while offset < len(packet):
        kind, length = struct.unpack_from(">HH", packet, offset)
        assert length >= 4 and offset + length <= len(packet), (kind, length)
        found.append((kind, packet[offset + 4:offset + length]))
        offset += length
    return found


def decode(packet: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Value lists and notifications, with the receiver's per-packet state."""
    state: dict[str, Any] = dict.fromkeys(["host", "plugin", "plugin_instance", "type",
                                           "type_instance"], "")
    values, notes = [], []
    for kind, body in parts(packet):
        if kind in STRINGS:
            assert body.endswith(b"\0")
            state[STRINGS[kind]] = body[:-1].decode()
            if kind == 0x0100:
                notes.append(dict(state))
        elif kind in NUMBERS:
            (number,) = struct.unpack(">Q", body)
            state[NUMBERS[kind]] = number
        elif kind == 0x0006:
            (count,) = struct.unpack_from(">H", body)
            kinds = list(body[2:2 + count])
            data = body[2 + count:]
            assert len(data) == 8 * count
            decoded = [struct.unpack_from("<d" if k == GAUGE else ">q", data, 8 * i)[0]
                       for i, k in enumerate(kinds)]
            values.append({**state, "kinds": tuple(kinds), "values": tuple(decoded)})
        elif kind != 0x0200:  # a signature covers the rest: read on
            pytest.fail(f"unexpected part 0x{kind:04x}")
    return values, notes


def sample(count: int) -> list[ValueList]:
    return [ValueList("hv1", "virt", f"dom{i // 4}", "disk_octets" if i % 2 else "memory",
                      f"dev{i % 4}", (i, 2 * i) if i % 2 else (float(i) + 0.5,))
            for i in range(count)]


def test_parts_units_and_byte_orders() -> None:
    vls = [ValueList("hv1", "virt", "test", "disk_octets", "vda", (1, 2**40)),
           ValueList("hv1", "virt", "test", "memory", "total", (2.5,))]
    (packet,) = Encoder().encode(vls, 1700000000.5, 10.0)
    kinds = [kind for kind, _ in parts(packet)]
    # time_hr and interval_hr once; host/plugin/instance once; type instance changes
    assert kinds == [0x0008, 0x0009, 0x0000, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006,
                     0x0004, 0x0005, 0x0006]
    values, _ = decode(packet)
    assert values[0]["time"] == int(1700000000.5 * 2**30)
    assert values[0]["interval"] == 10 * 2**30
    assert values[0]["values"] == (1, 2**40) and values[0]["kinds"] == (DERIVE, DERIVE)
    assert values[1]["values"] == (2.5,) and values[1]["kinds"] == (GAUGE,)
    body = dict(parts(packet)[-4:])  # GAUGE little-endian, DERIVE big-endian
    assert parts(packet)[7][1][-8:] == struct.pack(">q", 2**40)
    assert body[0x0006][-8:] == struct.pack("<d", 2.5)


@pytest.mark.parametrize("security", [
    Security(), Security("sign", "hvmon", "s3cret"), Security("encrypt", "hvmon", "s3cret")])
def test_packets_stay_within_1452_bytes_and_lose_nothing(security: Security) -> None:
    vls = sample(2000)
    encoder = Encoder(security)
    packets = encoder.encode(vls, 1700000000.0, 10.0)
    assert len(packets) > 10 and all(len(p) <= MAX_PACKET_SIZE for p in packets)
    assert max(len(p) for p in packets) > MAX_PACKET_SIZE - 60  # filled, not one list each
    decoded = []
    for payload in encoder.payloads(vls, 1700000000.0, 10.0):
        got, _ = decode(payload)
        assert got[0]["host"] == "hv1" and got[0]["time"]  # every packet starts afresh
        decoded += got
    assert [(d["plugin_instance"], d["type"], d["type_instance"], d["values"])
            for d in decoded] == [(v.plugin_instance, v.type, v.type_instance,
                                   tuple(v.values)) for v in vls]


def test_signed_packets_carry_an_hmac_over_username_and_payload() -> None:
    encoder = Encoder(Security("sign", "hvmon", "s3cret"))
    (packet,) = encoder.encode(sample(3), 1700000000.0, 10.0)
    kind, length = struct.unpack_from(">HH", packet)
    assert (kind, length) == (0x0200, 36 + 5)
    mac, user, payload = packet[4:36], packet[36:41], packet[41:]
    assert user == b"hvmon"
    assert mac == hmac.new(b"s3cret", b"hvmon" + payload, hashlib.sha256).digest()
    assert decode(payload)[0][0]["plugin"] == "virt"


def test_encrypted_packets_are_aes256_ofb_with_a_sha1_checksum() -> None:
    encoder = Encoder(Security("encrypt", "hvmon", "s3cret"))
    first, second = (encoder.encode(sample(3), 1700000000.0, 10.0)[0] for _ in range(2))
    assert first != second  # a fresh IV each time
    kind, length, user_len = struct.unpack_from(">HHH", first)
    assert (kind, length, user_len) == (0x0210, len(first), 5)
    assert first[6:11] == b"hvmon"
    iv, sealed = first[11:27], first[27:]
    key = hashlib.sha256(b"s3cret").digest()
    plain = Cipher(algorithms.AES(key), ofb_mode(iv)).decryptor().update(sealed)
    checksum, payload = plain[:20], plain[20:]
    assert checksum == hashlib.sha1(payload).digest()
    assert [v["values"] for v in decode(payload)[0]] == [v.values for v in sample(3)]
    assert b"s3cret" not in first and b"disk_octets" not in first


def test_notifications_follow_values_with_their_own_time_and_severity() -> None:
    note = Notification(2, 1700000001.0, "Domain state: paused. Reason: paused", "hv1", "virt",
                        "dom0", "domain_state", "")
    (packet,) = Encoder().encode(sample(2), 1700000000.0, 10.0, [note])
    values, notes = decode(packet)
    assert len(values) == 2
    assert notes == [{"host": "hv1", "plugin": "virt", "plugin_instance": "dom0",
                      "type": "domain_state", "type_instance": "", "time": 1700000001 * 2**30,
                      "interval": 10 * 2**30, "severity": 2,
                      "message": "Domain state: paused. Reason: paused"}]


def test_a_real_snapshot_encodes(tmp_path: Any) -> None:
    with hvmon.open_readonly("test:///default") as conn:
        snap = conn.get_snapshot(0)
    vls = snapshot_values(snap, Naming("hv1"))
    (packet,) = Encoder().encode(vls, snap.timestamp, 10.0)
    values, _ = decode(packet)
    got = {(v["plugin_instance"], v["type"], v["type_instance"]): v["values"] for v in values}
    dom = snap.domain("test")
    assert dom is not None
    assert got[("test", "virt_cpu_total", "")] == (dom.stats["cpu.time"],)


def test_bad_security_settings_say_why_without_the_password() -> None:
    with pytest.raises(ValueError, match="needs a username and a password"):
        Security("sign", "", "s3cret")
    with pytest.raises(ValueError, match="security_level must be one of none, sign, encrypt"):
        Security("tls")
    assert "s3cret" not in repr(Security("sign", "hvmon", "s3cret"))
    with pytest.raises(ValueError, match="max_size"):
        Encoder(max_size=100)
