"""Malformed, truncated and mutated packets: the decoders raise only DecodeError, and the
agent drops them, counts them and keeps answering."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

import pytest

from hvmon.plugins.snmp.ber import DecodeError, encode_varbind
from hvmon.plugins.snmp.engine import SnmpEngine
from hvmon.plugins.snmp.message import (
    FLAG_AUTH,
    FLAG_PRIV,
    FLAG_REPORTABLE,
    V1,
    V2C,
    CommunityMessage,
    Pdu,
    PduType,
    decode_community,
    decode_scoped_bytes,
    decode_v3,
    encode_community,
    encode_pdu_raw,
    encode_scoped_raw,
)
from hvmon.plugins.snmp.types import NULL, Value
from hvmon.plugins.snmp.usm import EngineState, LocalKeys, SecurityParams, UsmUser, encode_secure
from hvmon.plugins.snmp.vacm import read_only, read_write

from .conftest import Client, EngineFactory, FakeView
from .test_engine import BASE, COL_NAME, COL_STATE, ROWS, entries

USER = UsmUser.create("fuzz", "SHA-256", "fuzz-auth-1", "AES", "fuzz-priv-1")


def seeds(engine_id: bytes) -> list[bytes]:
    """Valid requests of every kind to mutate."""
    out = []
    for version in (V1, V2C):
        for kind in (PduType.GET, PduType.GET_NEXT, PduType.GET_BULK, PduType.SET):
            if version == V1 and kind == PduType.GET_BULK:
                continue
            varbinds = [(COL_NAME + (1,), NULL), (BASE, NULL)] if kind != PduType.SET else \
                [(COL_STATE + (1,), Value.integer(1))]
            out.append(encode_community(CommunityMessage(version, b"public", Pdu(
                kind, 17, 0, 3 if kind == PduType.GET_BULK else 0, varbinds))))
    keys = LocalKeys.for_engine(USER, engine_id)
    scoped = encode_scoped_raw(engine_id, b"", encode_pdu_raw(
        PduType.GET_BULK, 9, 0, 5, encode_varbind(BASE, NULL)))
    for flags in (FLAG_REPORTABLE, FLAG_AUTH | FLAG_REPORTABLE,
                  FLAG_AUTH | FLAG_PRIV | FLAG_REPORTABLE):
        params = SecurityParams(engine_id, 1, 0, b"fuzz", b"", b"\x01" * 8 if
                                flags & FLAG_PRIV else b"")
        body = keys.encrypt(scoped, 1, 0, params.priv) if flags & FLAG_PRIV else scoped
        out.append(encode_secure(5, 65507, flags, params, body, keys if flags & FLAG_AUTH
                                 else None))
    return out


def mutate(rng: random.Random, data: bytes) -> bytes:
    choice = rng.randrange(6)
    buf = bytearray(data)
    if choice == 0:
        return bytes(buf[:rng.randrange(len(buf))])  # truncated
    if choice == 1:
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        return bytes(buf)
    if choice == 2:
        at = rng.randrange(len(buf))
        return bytes(buf[:at] + bytes([0x84, 0xFF, 0xFF, 0xFF, 0xFF]) + buf[at:])
    if choice == 3:
        return bytes(buf) + rng.randbytes(rng.randint(1, 20))
    if choice == 4:
        return rng.randbytes(rng.randint(0, 200))
    at = rng.randrange(len(buf))
    buf[at] = 0x80  # indefinite or odd lengths
    return bytes(buf)


def test_decoders_raise_only_decode_error() -> None:
    rng = random.Random(1234)
    samples = seeds(b"\x80\x00\x7e\xd9\x05" + bytes(12))
    for _ in range(20000):
        data = mutate(rng, rng.choice(samples))
        for decode in (decode_community, decode_v3, SecurityParams.decode, decode_scoped_bytes):
            try:
                decode(data)
            except DecodeError as exc:
                assert "\n" not in str(exc)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("seed", [1, 2])
def test_thousands_of_bad_packets_never_crash_the_agent(
        start_engine: EngineFactory, client_for: Callable[..., Client], seed: int,
        tmp_path: object) -> None:
    logger = logging.getLogger(f"hvmon.test.snmp.fuzz{seed}")
    records = Records()
    logger.addHandler(records)
    logger.setLevel(logging.DEBUG)
    view = FakeView(entries(), writable=[COL_STATE + (r,) for r in range(1, ROWS + 1)])
    state = EngineState.load(None)
    engine: SnmpEngine = start_engine(
        view, communities={"public": read_only("ro"), "private": read_write("rw")},
        users=[(USER, read_write("fuzz"))], state=state, control=True, logger=logger)
    client = client_for(engine, timeout=0.001)
    rng = random.Random(seed)
    samples = seeds(state.engine_id)
    for n in range(3000):
        client.send(mutate(rng, rng.choice(samples)))
        if n % 200 == 0:
            time.sleep(0.01)  # let the agent keep up; UDP may drop otherwise
            while True:
                try:
                    client.sock.recv(65535)
                except (TimeoutError, BlockingIOError):
                    break
    time.sleep(0.5)
    check = client_for(engine, timeout=5)
    answer = check.ask(samples[1])  # a v1 GETNEXT
    assert answer is not None
    assert decode_community(answer).pdu.request_id == 17  # type: ignore[union-attr]
    assert engine.local.counters["snmpInASNParseErrs"] > 500
    bugs = [r.getMessage() for r in records.records if r.levelno >= logging.WARNING
            and "dropped a packet" in r.getMessage()]
    assert not bugs, bugs[:5]
    logger.removeHandler(records)
