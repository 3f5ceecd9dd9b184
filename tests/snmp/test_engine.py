"""The standalone engine over a fake view: GET/GETNEXT/GETBULK/SET semantics, sizes, v1, VACM.

Requests are hand-made with our encoder and answers are checked field by
field, and for GETBULK byte for byte against pysnmp's encoding of the
expected response (the pre-encoded fast path must produce exactly that).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from pyasn1.codec.ber import encoder as asn1_encoder
from pysnmp.proto.api import v2c as p2

from hvmon.plugins.snmp.engine import SCRATCH_KEY, SnmpEngine
from hvmon.plugins.snmp.localmib import COUNTERS
from hvmon.plugins.snmp.message import (
    V1,
    V2C,
    CommunityMessage,
    Pdu,
    PduType,
    decode_community,
    encode_community,
)
from hvmon.plugins.snmp.types import (
    END_OF_MIB_VIEW,
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    NULL,
    OID,
    ErrorStatus,
    Tag,
    Value,
    VarBind,
)
from hvmon.plugins.snmp.vacm import MibView, read_only, read_write

from .conftest import Client, EngineFactory, FakeView
from .test_ber import pysnmp_value

BASE: OID = (1, 3, 6, 1, 4, 1, 32473, 1)
COL_NAME, COL_STATE, COL_CPU = BASE + (2, 1, 1), BASE + (2, 1, 2), BASE + (2, 1, 3)
ROWS = 40


def entries() -> list[VarBind]:
    out: list[VarBind] = [(BASE + (1, 0), Value.octets("host"))]
    for row in range(1, ROWS + 1):
        out.append((COL_NAME + (row,), Value.octets(f"guest-{row:03d}")))
        out.append((COL_STATE + (row,), Value.integer(1)))
        out.append((COL_CPU + (row,), Value.counter64(row * 10**12)))
    return out


@pytest.fixture
def view() -> FakeView:
    return FakeView(entries(), objects=[BASE + (1,), COL_NAME, COL_STATE, COL_CPU],
                    writable=[COL_STATE + (row,) for row in range(1, ROWS + 1)])


@pytest.fixture
def engine(start_engine: EngineFactory, view: FakeView) -> SnmpEngine:
    return start_engine(view, communities={"public": read_only("ro"),
                                           "private": read_write("rw"),
                                           "narrow": read_only("narrow", MibView([COL_STATE]))},
                        control=True)


@pytest.fixture
def client(engine: SnmpEngine, client_for: Callable[[SnmpEngine], Client]) -> Client:
    return client_for(engine)


def ask(client: Client, kind: PduType, oids: list[OID] | list[VarBind], *, version: int = V2C,
        community: bytes = b"public", request_id: int = 4242, status: int = 0,
        index: int = 0) -> Pdu:
    varbinds = [o if isinstance(o[-1], Value) else (o, NULL) for o in oids]
    data = encode_community(CommunityMessage(version, community, Pdu(
        kind, request_id, status, index, varbinds)))  # type: ignore[arg-type]
    answer = client.ask(data)
    assert answer is not None, "no answer"
    message = decode_community(answer)
    assert message.version == version and message.community == community
    assert isinstance(message.pdu, Pdu) and message.pdu.type == PduType.RESPONSE
    assert message.pdu.request_id == request_id
    return message.pdu


def test_get_values_and_exceptions_request_id_echoed(client: Client) -> None:
    pdu = ask(client, PduType.GET, [COL_NAME + (3,), COL_NAME + (999,), BASE + (9, 9),
                                    COL_CPU + (2,)], request_id=-7)
    assert (pdu.error_status, pdu.error_index) == (0, 0)
    assert pdu.varbinds == [(COL_NAME + (3,), Value.octets("guest-003")),
                            (COL_NAME + (999,), NO_SUCH_INSTANCE),
                            (BASE + (9, 9), NO_SUCH_OBJECT),
                            (COL_CPU + (2,), Value.counter64(2 * 10**12))]


def test_getnext_walks_in_order_and_ends_with_end_of_mib_view(client: Client) -> None:
    pdu = ask(client, PduType.GET_NEXT, [BASE, COL_NAME + (ROWS,), (1, 3, 6, 1, 6, 3, 99)])
    assert pdu.varbinds[0] == (BASE + (1, 0), Value.octets("host"))
    assert pdu.varbinds[1] == (COL_STATE + (1,), Value.integer(1))
    assert pdu.varbinds[2] == ((1, 3, 6, 1, 6, 3, 99), END_OF_MIB_VIEW)


def test_the_agent_serves_its_own_system_and_counter_objects(client: Client) -> None:
    pdu = ask(client, PduType.GET, [(1, 3, 6, 1, 2, 1, 1, 3, 0), (1, 3, 6, 1, 2, 1, 1, 1, 0)])
    assert pdu.varbinds[0][1].tag == Tag.TIMETICKS
    assert pdu.varbinds[1][1] == Value.octets("hvmon SNMP agent")


def expected_bulk(request_id: int, varbinds: list[VarBind]) -> bytes:
    pdu = p2.GetResponsePDU()
    p2.apiPDU.set_defaults(pdu)
    p2.apiPDU.set_request_id(pdu, request_id)
    p2.apiPDU.set_varbinds(pdu, [(oid, pysnmp_value(v)) for oid, v in varbinds])
    msg = p2.Message()
    p2.apiMessage.set_defaults(msg)
    p2.apiMessage.set_community(msg, b"public")
    p2.apiMessage.set_pdu(msg, pdu)
    return asn1_encoder.encode(msg)


def test_getbulk_non_repeaters_repetitions_byte_for_byte_with_pysnmp(
        client: Client, engine: SnmpEngine, view: FakeView) -> None:
    request = encode_community(CommunityMessage(V2C, b"public", Pdu(
        PduType.GET_BULK, 99, 1, 5,
        [(BASE, NULL), (COL_NAME, NULL), (COL_CPU + (ROWS - 2,), NULL)])))
    answer = client.ask(request)
    table = view.table()
    names = [(COL_NAME + (r,), Value.octets(f"guest-{r:03d}")) for r in range(1, 6)]
    cpus = [(COL_CPU + (r,), Value.counter64(r * 10**12)) for r in (ROWS - 1, ROWS)]
    expected: list[VarBind] = [(BASE + (1, 0), Value.octets("host"))]
    expected += [names[0], cpus[0], names[1], cpus[1], names[2]]
    # the CPU column is the view's end: the local objects (snmpEngine...) come after it
    after_cpu = decode_community(answer).pdu.varbinds[6]  # type: ignore[union-attr]
    assert after_cpu[0][:6] == (1, 3, 6, 1, 6, 3)
    assert answer == expected_bulk(99, [*expected, after_cpu, *decode_community(
        answer).pdu.varbinds[7:]])  # type: ignore[union-attr]
    # the answer came from the per-entry cache, filled lazily
    cache = table.scratch[SCRATCH_KEY]
    assert cache[table.oids.index(COL_NAME + (1,))] is not None
    assert cache[table.oids.index(COL_NAME + (30,))] is None
    # the second identical request is byte-identical
    assert client.ask(request)[:] == answer


def test_getbulk_stops_at_end_of_mib_view_once_every_repeater_is_done(
        client: Client) -> None:
    pdu = ask(client, PduType.GET_BULK, [(1, 3, 6, 1, 6, 3, 15, 1, 1, 6, 0)], status=0,
              index=50)
    assert pdu.varbinds == [((1, 3, 6, 1, 6, 3, 15, 1, 1, 6, 0), END_OF_MIB_VIEW)]
    pdu = ask(client, PduType.GET_BULK, [COL_CPU + (ROWS,), (1, 3, 6, 1, 6, 3, 15, 1, 1, 6, 0)],
              status=0, index=1000)
    assert len(pdu.varbinds) < 2 * 30
    assert pdu.varbinds[-1][1] == END_OF_MIB_VIEW and pdu.varbinds[-2][1] == END_OF_MIB_VIEW


def test_getbulk_is_truncated_to_the_message_size(start_engine: EngineFactory, view: FakeView,
                                                  client_for: Callable[..., Client]) -> None:
    small = start_engine(view, communities={"public": read_only("ro")}, max_message_size=484)
    client = client_for(small)
    pdu = ask(client, PduType.GET_BULK, [BASE], index=500)
    assert 5 < len(pdu.varbinds) < 40
    data = encode_community(CommunityMessage(V2C, b"public", Pdu(
        PduType.GET_BULK, 1, 0, 500, [(BASE, NULL)])))
    assert len(client.ask(data) or b"") <= 484
    # a GET whose answer cannot fit: tooBig, no varbinds (RFC 3416 4.2.1)
    pdu = ask(client, PduType.GET, [COL_NAME + (r,) for r in range(1, 30)])
    assert (pdu.error_status, pdu.error_index, pdu.varbinds) == (ErrorStatus.TOO_BIG, 0, [])


def test_v1_no_such_name_counter64_and_no_bulk(client: Client, engine: SnmpEngine) -> None:
    pdu = ask(client, PduType.GET, [COL_NAME + (1,), COL_NAME + (999,)], version=V1)
    assert (pdu.error_status, pdu.error_index) == (ErrorStatus.NO_SUCH_NAME, 2)
    assert pdu.varbinds == [(COL_NAME + (1,), NULL), (COL_NAME + (999,), NULL)]
    pdu = ask(client, PduType.GET, [COL_CPU + (1,)], version=V1)
    assert (pdu.error_status, pdu.error_index) == (ErrorStatus.NO_SUCH_NAME, 1)
    # GETNEXT skips Counter64 (RFC 3584 4.2.2.1)
    pdu = ask(client, PduType.GET_NEXT, [COL_STATE + (ROWS,)], version=V1)
    assert pdu.varbinds[0][0][:6] == (1, 3, 6, 1, 6, 3)
    data = encode_community(CommunityMessage(V1, b"public", Pdu(PduType.GET_BULK, 1, 0, 5,
                                                                [(BASE, NULL)])))
    client.sock.settimeout(0.5)
    assert client.ask(data) is None


def test_unknown_community_is_dropped_and_counted(client: Client, engine: SnmpEngine) -> None:
    data = encode_community(CommunityMessage(V2C, b"guess", Pdu(PduType.GET, 1, 0, 0,
                                                                [(BASE + (1, 0), NULL)])))
    client.sock.settimeout(0.5)
    for _ in range(3):
        assert client.ask(data) is None
    client.sock.settimeout(3)
    time.sleep(0.6)  # the local objects are rebuilt at most twice a second
    pdu = ask(client, PduType.GET, [COUNTERS["snmpInBadCommunityNames"]])
    assert pdu.varbinds[0][1] == Value(Tag.COUNTER32, 3)


def test_vacm_read_view_limits_get_and_getnext(client: Client) -> None:
    pdu = ask(client, PduType.GET, [COL_NAME + (1,), COL_STATE + (1,)], community=b"narrow")
    assert pdu.varbinds == [(COL_NAME + (1,), NO_SUCH_OBJECT), (COL_STATE + (1,), Value.integer(1))]
    pdu = ask(client, PduType.GET_NEXT, [(1, 3)], community=b"narrow")
    assert pdu.varbinds == [(COL_STATE + (1,), Value.integer(1))]
    pdu = ask(client, PduType.GET_BULK, [COL_STATE + (ROWS - 1,)], community=b"narrow",
              index=5)
    assert pdu.varbinds == [(COL_STATE + (ROWS,), Value.integer(1)),
                            (COL_STATE + (ROWS,), END_OF_MIB_VIEW)]


def test_set_commits_in_a_worker_thread(client: Client, view: FakeView) -> None:
    oid = COL_STATE + (5,)
    pdu = ask(client, PduType.SET, [(oid, Value.integer(3))], community=b"private")
    assert (pdu.error_status, pdu.error_index) == (0, 0)
    assert pdu.varbinds == [(oid, Value.integer(3))]
    assert view.values[oid] == Value.integer(3)
    assert view.commit_threads and view.commit_threads[0] != threading.main_thread().name
    assert "snmp-test-loop" not in view.commit_threads
    pdu = ask(client, PduType.GET, [oid])
    assert pdu.varbinds == [(oid, Value.integer(3))]  # the table was refreshed


@pytest.mark.parametrize(("community", "version", "status", "index"), [
    (b"public", V2C, ErrorStatus.NOT_WRITABLE, 1),
    (b"public", V1, ErrorStatus.NO_SUCH_NAME, 1),
    (b"private", V2C, ErrorStatus.WRONG_TYPE, 2),
    (b"private", V1, ErrorStatus.BAD_VALUE, 2),
])
def test_refused_sets_change_nothing(client: Client, view: FakeView, community: bytes,
                                     version: int, status: ErrorStatus, index: int) -> None:
    before = dict(view.values)
    pdu = ask(client, PduType.SET, [(COL_STATE + (1,), Value.integer(3)),
                                    (COL_STATE + (2,), Value.octets("x"))],
              community=community, version=version)
    assert (pdu.error_status, pdu.error_index) == (status, index)
    assert view.values == before and not view.commit_threads
    if community == b"public":
        assert view.planned[-1][1] is False  # the view was told the principal may not write


def test_no_control_means_no_set_even_for_the_rw_community(
        start_engine: EngineFactory, view: FakeView, client_for: Callable[..., Client]) -> None:
    engine = start_engine(view, communities={"private": read_write("rw")}, control=False)
    pdu = ask(client_for(engine), PduType.SET, [(COL_STATE + (1,), Value.integer(3))],
              community=b"private")
    assert (pdu.error_status, pdu.error_index) == (ErrorStatus.NOT_WRITABLE, 1)
    assert view.values[COL_STATE + (1,)] == Value.integer(1)


def test_ipv6_loopback_answers(engine: SnmpEngine, client_for: Callable[..., Client]) -> None:
    host, port = engine.addresses[1]
    assert host == "::1"
    client = Client(host, port)
    try:
        pdu = ask(client, PduType.GET, [BASE + (1, 0)])
    finally:
        client.close()
    assert pdu.varbinds == [(BASE + (1, 0), Value.octets("host"))]


def test_a_slow_set_does_not_block_gets(client: Client, view: FakeView,
                                        engine: SnmpEngine, client_for: Callable[..., Client]
                                        ) -> None:
    view.commit_delay = 1.0
    data = encode_community(CommunityMessage(V2C, b"private", Pdu(
        PduType.SET, 1, 0, 0, [(COL_STATE + (1,), Value.integer(3))])))
    client.send(data)
    other = client_for(engine)
    started = time.monotonic()
    pdu = ask(other, PduType.GET, [BASE + (1, 0)])
    assert time.monotonic() - started < 0.5
    assert pdu.varbinds[0][1] == Value.octets("host")
    answer = decode_community(client.sock.recv(65535))
    assert answer.pdu.error_status == 0  # type: ignore[union-attr]
