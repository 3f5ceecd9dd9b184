"""The AgentX subagent against a scripted master: RFC 2741 rules snmpd cannot be made to break.

The master here is a small in-test AgentX peer (the pdu codec over a UNIX or
TCP socket). It is not a stand-in for snmpd, which tests/snmp/test_agentx_snmpd.py
runs for real: it exists to send what a real master never sends on request —
ranges with and without ``include``, bounded ends, non-default contexts, wrong
session IDs, little-endian PDUs, malformed and truncated payloads, a Close, a
master that vanishes — and to check the subagent's exact answers.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from hvmon.plugins.snmp.agentx import pdu
from hvmon.plugins.snmp.agentx.pdu import (
    AgentxError,
    CleanupSet,
    Close,
    CommitSet,
    Get,
    GetBulk,
    GetNext,
    Notify,
    Open,
    Ping,
    Register,
    Response,
    SearchRange,
    UndoSet,
)
from hvmon.plugins.snmp.agentx.session import parse_address
from hvmon.plugins.snmp.agentx.subagent import SNMP_TRAP_OID_0, SYS_UP_TIME_0, AgentxSubagent
from hvmon.plugins.snmp.table import OidTable
from hvmon.plugins.snmp.types import (
    END_OF_MIB_VIEW,
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    OID,
    ErrorStatus,
    SetFailure,
    Tag,
    Value,
    VarBind,
)

HVMON = (1, 3, 6, 1, 4, 1, 32473)
LIBVIRT = (1, 3, 6, 1, 4, 1, 36957)
STATE = HVMON + (1, 2, 1, 3)  # a writable column of the fake view
NAME = HVMON + (1, 2, 1, 2)
SESSION = 42


class FakeView:
    """An SnmpView over a fixed OidTable; SETs of STATE.<row> to 1..3 are recorded."""

    def __init__(self, rows: int = 3, *, commit_error: Exception | None = None,
                 commit_delay: float = 0.0) -> None:
        entries: list[VarBind] = [(HVMON + (1, 1, 0), Value.octets("host")),
                                  (HVMON + (1, 3, 0), Value.counter64(1 << 40))]
        entries += [(NAME + (i,), Value.octets(f"dom{i}")) for i in range(1, rows + 1)]
        entries += [(STATE + (i,), Value.integer(1)) for i in range(1, rows + 1)]
        entries += [(LIBVIRT + (1, 1, 1, 2, i), Value.octets(f"dom{i}")) for i in range(1, 3)]
        self.roots = (HVMON, LIBVIRT)
        self._table = OidTable(entries, objects=[HVMON + (1, 1), HVMON + (1, 3), NAME, STATE])
        self.committed: list[list[VarBind]] = []
        self.commit_error = commit_error
        self.commit_delay = commit_delay

    def table(self) -> OidTable:
        return self._table

    def plan_set(self, varbinds: Sequence[VarBind], *, writable: bool) -> Any:
        for i, (oid, value) in enumerate(varbinds):
            if not writable or oid[:len(STATE)] != STATE:
                raise SetFailure(ErrorStatus.NOT_WRITABLE, i)
            if value.tag != Tag.INTEGER:
                raise SetFailure(ErrorStatus.WRONG_TYPE, i)
            if value.data not in (1, 2, 3):
                raise SetFailure(ErrorStatus.INCONSISTENT_VALUE, i)
        view = self

        class Plan:
            def commit(self) -> None:
                time.sleep(view.commit_delay)
                if view.commit_error is not None:
                    raise view.commit_error
                view.committed.append(list(varbinds))

        return Plan()

    def notifications(self, event: object) -> list[tuple[OID, list[VarBind]]]:
        return []


class FakeMaster:
    """Accepts one subagent at a time, answers its requests, lets the test ask it things."""

    def __init__(self, *, register_error: int = 0, open_error: int = 0,
                 answer_pings: bool = True) -> None:
        self.register_error, self.open_error = register_error, open_error
        self.answer_pings = answer_pings
        self.received: list[pdu.Pdu] = []
        self.responses: asyncio.Queue[pdu.Pdu] = asyncio.Queue()
        self.registered = asyncio.Event()
        self.connections = 0
        self._writer: asyncio.StreamWriter | None = None
        self._server: asyncio.AbstractServer | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self.address = ""

    async def listen_unix(self, path: Path) -> str:
        self._server = await asyncio.start_unix_server(self._client, str(path))
        self.address = str(path)
        return self.address

    async def listen_tcp(self) -> str:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.address = f"tcp:127.0.0.1:{port}"
        return self.address

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writer = writer
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                head = await reader.readexactly(20)
                header = pdu.decode_header(head)
                payload = await reader.readexactly(header.payload_length)
                message = pdu.decode(head + payload)
                if isinstance(message.body, Response):
                    await self.responses.put(message)
                    continue
                self.received.append(message)
                self._answer(message)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _answer(self, message: pdu.Pdu) -> None:
        body, header = message.body, message.header
        error = 0
        if isinstance(body, Open):
            error = self.open_error
        elif isinstance(body, Register):
            error = self.register_error
        elif isinstance(body, Ping) and not self.answer_pings:
            return
        assert self._writer is not None
        self._writer.write(pdu.encode(Response(99, error, 0), session_id=SESSION,
                                      transaction_id=header.transaction_id,
                                      packet_id=header.packet_id))
        if isinstance(body, Register) and sum(
                isinstance(m.body, Register) for m in self.received) % 2 == 0:
            self.registered.set()

    async def send(self, data: bytes) -> None:
        assert self._writer is not None
        self._writer.write(data)
        await self._writer.drain()

    async def ask(self, body: pdu.Body, *, transaction_id: int = 1, big_endian: bool = True,
                  context: bytes | None = None, session_id: int = SESSION) -> pdu.Pdu:
        await self.send(pdu.encode(body, session_id=session_id, transaction_id=transaction_id,
                                   packet_id=77, big_endian=big_endian, context=context))
        return await self.answer()

    async def answer(self, timeout: float = 5.0) -> pdu.Pdu:
        return await asyncio.wait_for(self.responses.get(), timeout)

    def drop(self) -> None:
        """Cut the connection (the master went away)."""
        if self._writer is not None:
            self._writer.transport.abort()

    async def close(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._handlers:  # they end on their own once their connection is cut
            await asyncio.wait(self._handlers, timeout=5)


Scenario = Callable[[FakeMaster, AgentxSubagent, FakeView], Awaitable[None]]


def run(scenario: Scenario, tmp_path: Path, *, view: FakeView | None = None,
        master: dict[str, Any] | None = None, tcp: bool = False,
        caplog: pytest.LogCaptureFixture | None = None, **options: Any) -> AgentxSubagent:
    """Start a master and a subagent, run ``scenario``, stop both (within 30 s)."""
    view = view or FakeView()
    logger = logging.getLogger("hvmon.test.agentx")

    async def main() -> AgentxSubagent:
        fake = FakeMaster(**(master or {}))
        address = await (fake.listen_tcp() if tcp else fake.listen_unix(tmp_path / "master"))
        options.setdefault("timeout", 2.0)
        sub = AgentxSubagent(view, address, logger=logger, **options)
        try:
            await sub.start()
            await scenario(fake, sub, view)
        finally:
            await sub.stop()
            await fake.close()
        return sub

    async def bounded() -> AgentxSubagent:
        return await asyncio.wait_for(main(), 30)

    return asyncio.run(bounded())


def varbinds(message: pdu.Pdu) -> tuple[VarBind, ...]:
    assert isinstance(message.body, Response)
    return message.body.varbinds


# --- session set-up ---------------------------------------------------------------

def test_open_identifies_hvmon_and_registers_every_root(tmp_path: Path) -> None:
    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        opened = master.received[0]
        assert isinstance(opened.body, Open)
        assert opened.body.timeout == 2 and opened.body.id == HVMON
        assert opened.body.descr.startswith(b"hvmon ")
        assert opened.header.big_endian and opened.header.session_id == 0
        registers = [m for m in master.received if isinstance(m.body, Register)]
        assert [m.body.subtree for m in registers] == [HVMON, LIBVIRT]
        assert all(m.header.session_id == SESSION for m in registers)
        assert all(m.body.priority == 127 and m.body.range_subid == 0 for m in registers)
        healthy, message = sub.health()
        assert healthy and f"session {SESSION}" in message and "2 subtree(s)" in message

    run(scenario, tmp_path)


def test_stop_sends_close_with_reason_shutdown(tmp_path: Path) -> None:
    seen: list[pdu.Pdu] = []

    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        await sub.stop()
        seen.extend(master.received)

    sub = run(scenario, tmp_path)
    assert isinstance(seen[-1].body, Close) and seen[-1].body.reason == pdu.CloseReason.SHUTDOWN
    assert sub.health() == (False, "agentx subagent stopped")


def test_tcp_transport(tmp_path: Path) -> None:
    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        answer = await master.ask(Get((SearchRange(HVMON + (1, 1, 0)),)))
        assert varbinds(answer) == ((HVMON + (1, 1, 0), Value.octets("host")),)

    run(scenario, tmp_path, tcp=True)


def test_refused_registration_is_degraded_health(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        await asyncio.sleep(0.05)
        healthy, message = sub.health()
        assert not healthy and "duplicateRegistration" in message

    run(scenario, tmp_path, master={"register_error": AgentxError.DUPLICATE_REGISTRATION})
    assert "registering 1.3.6.1.4.1.32473 was refused: duplicateRegistration" in caplog.text


def test_no_master_yet_is_retried_with_backoff(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "late"

    async def main() -> None:
        sub = AgentxSubagent(FakeView(), str(path), logger=logging.getLogger("hvmon.test.ax"),
                             timeout=1.0, retry_min=0.05, retry_max=0.2)
        await sub.start()
        healthy, message = sub.health()
        assert not healthy and "not connected to the agentx master" in message
        assert "No such file or directory" in message
        master = FakeMaster()
        await master.listen_unix(path)
        await asyncio.wait_for(master.registered.wait(), 5)
        await asyncio.sleep(0.05)
        assert sub.health()[0]
        await sub.stop()
        await master.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    lines = [r for r in caplog.records if "cannot connect" in r.getMessage()]
    assert lines and all(r.exc_info is None for r in caplog.records)
    # the same failure is logged once as a warning, then quietly
    assert sum(r.levelno == logging.WARNING for r in lines) == 1


def test_reconnects_after_the_master_goes_away(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        master.registered.clear()
        master.drop()
        for _ in range(100):
            if not sub.health()[0]:
                break
            await asyncio.sleep(0.01)
        healthy, message = sub.health()
        assert not healthy and "not connected" in message
        await asyncio.wait_for(master.registered.wait(), 5)
        await asyncio.sleep(0.05)
        assert sub.health()[0] and master.connections == 2
        answer = await master.ask(GetNext((SearchRange(HVMON),)))
        assert varbinds(answer)[0][0] == HVMON + (1, 1, 0)

    run(scenario, tmp_path, retry_min=0.05)
    lost = [r for r in caplog.records if "lost the master" in r.getMessage()]
    assert len(lost) == 1 and lost[0].exc_info is None and "\n" not in lost[0].getMessage()


def test_master_close_pdu_ends_the_session_and_it_reconnects(tmp_path: Path) -> None:
    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        master.registered.clear()
        await master.send(pdu.encode(Close(pdu.CloseReason.BY_MANAGER), session_id=SESSION))
        await asyncio.wait_for(master.registered.wait(), 5)
        assert master.connections == 2

    run(scenario, tmp_path, retry_min=0.05)


def test_unanswered_ping_drops_the_session(tmp_path: Path) -> None:
    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        master.registered.clear()
        await asyncio.wait_for(master.registered.wait(), 10)  # a second session
        assert any(isinstance(m.body, Ping) for m in master.received)
        assert master.connections >= 2

    run(scenario, tmp_path, master={"answer_pings": False}, ping_interval=0.2, timeout=0.5,
        retry_min=0.05)


def test_bad_addresses_are_one_line_errors() -> None:
    assert str(parse_address("/var/agentx/master")) == "unix:/var/agentx/master"
    assert str(parse_address("unix:/run/agentx")) == "unix:/run/agentx"
    assert str(parse_address("tcp:127.0.0.1:705")) == "tcp:127.0.0.1:705"
    assert str(parse_address("tcp:[::1]:705")) == "tcp:[::1]:705"
    for bad in ("", "udp:1.2.3.4:5", "unix:relative", "tcp:host", "tcp:1.2.3.4:0",
                "master", None):
        with pytest.raises(ValueError) as info:
            parse_address(bad)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="timeout"):
        AgentxSubagent(FakeView(), "/x", logger=logging.getLogger(), timeout=0)


# --- Get, GetNext, GetBulk (RFC 2741 7.2.3) -------------------------------------------

def test_get_answers_values_and_the_two_kinds_of_absence(tmp_path: Path) -> None:
    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        answer = await master.ask(Get((
            SearchRange(HVMON + (1, 1, 0)), SearchRange(HVMON + (1, 1, 1)),
            SearchRange(HVMON + (1, 9, 0)), SearchRange(NAME + (2,)),
            SearchRange(NAME + (9,)), SearchRange(HVMON + (1, 3, 0)))))
        assert answer.header.packet_id == 77 and answer.header.session_id == SESSION
        assert answer.body == Response(0, 0, 0, (
            (HVMON + (1, 1, 0), Value.octets("host")),
            (HVMON + (1, 1, 1), NO_SUCH_INSTANCE),
            (HVMON + (1, 9, 0), NO_SUCH_OBJECT),
            (NAME + (2,), Value.octets("dom2")),
            (NAME + (9,), NO_SUCH_INSTANCE),
            (HVMON + (1, 3, 0), Value.counter64(1 << 40))))

    run(scenario, tmp_path)


def test_getnext_honours_include_and_the_end_of_the_range(tmp_path: Path) -> None:
    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        answer = await master.ask(GetNext((
            SearchRange(NAME + (1,)),                           # exclusive start
            SearchRange(NAME + (1,), include=True),             # start itself qualifies
            SearchRange(NAME + (3,), STATE),                    # next is STATE.1 = end: none
            SearchRange(NAME + (3,), STATE + (2,)),             # STATE.1 < end
            SearchRange(LIBVIRT + (1, 1, 1, 2, 2), LIBVIRT + (2,)),
            SearchRange(HVMON),                                 # into the subtree
            SearchRange((1, 3, 6, 1, 4, 1, 99999)),             # past everything
        )))
        assert varbinds(answer) == (
            (NAME + (2,), Value.octets("dom2")),
            (NAME + (1,), Value.octets("dom1")),
            (NAME + (3,), END_OF_MIB_VIEW),
            (STATE + (1,), Value.integer(1)),
            (LIBVIRT + (1, 1, 1, 2, 2), END_OF_MIB_VIEW),
            (HVMON + (1, 1, 0), Value.octets("host")),
            ((1, 3, 6, 1, 4, 1, 99999), END_OF_MIB_VIEW))

    run(scenario, tmp_path)


def test_getbulk_non_repeaters_then_repetitions(tmp_path: Path) -> None:
    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        answer = await master.ask(GetBulk(1, 3, (
            SearchRange(HVMON),                       # non-repeater
            SearchRange(NAME, STATE),                 # 3 names, then the end of its range
            SearchRange(STATE + (2,), HVMON + (1, 3)),  # STATE.3, then nothing
        )))
        assert varbinds(answer) == (
            (HVMON + (1, 1, 0), Value.octets("host")),
            (NAME + (1,), Value.octets("dom1")), (STATE + (3,), Value.integer(1)),
            (NAME + (2,), Value.octets("dom2")), (STATE + (3,), END_OF_MIB_VIEW),
            (NAME + (3,), Value.octets("dom3")), (STATE + (3,), END_OF_MIB_VIEW))
        # every repeater at its end: the answer stops after that round
        answer = await master.ask(GetBulk(0, 50, (SearchRange(NAME + (3,), STATE),)))
        assert varbinds(answer) == ((NAME + (3,), END_OF_MIB_VIEW),)
        answer = await master.ask(GetBulk(5, 50, (SearchRange(NAME + (3,)),)))
        assert varbinds(answer) == ((STATE + (1,), Value.integer(1)),)

    run(scenario, tmp_path)


def test_little_endian_requests_get_little_endian_answers(tmp_path: Path) -> None:
    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        for body in (GetNext((SearchRange(NAME),)), Get((SearchRange(NAME + (1,)),)),
                     GetBulk(0, 1, (SearchRange(NAME),))):
            answer = await master.ask(body, big_endian=False)
            assert not answer.header.big_endian
            assert varbinds(answer) == ((NAME + (1,), Value.octets("dom1")),)
        # and the network-order cache is not confused by it
        answer = await master.ask(GetNext((SearchRange(NAME),)))
        assert answer.header.big_endian
        assert varbinds(answer) == ((NAME + (1,), Value.octets("dom1")),)

    run(scenario, tmp_path)


def test_non_default_context_and_wrong_session_are_refused(tmp_path: Path) -> None:
    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        for body in (Get((SearchRange(NAME + (1,)),)), GetNext((SearchRange(NAME),)),
                     GetBulk(0, 2, (SearchRange(NAME),)), pdu.TestSet(())):
            answer = await master.ask(body, context=b"vrf-1")
            assert answer.body == Response(0, AgentxError.UNSUPPORTED_CONTEXT, 0, ())
            answer = await master.ask(body, session_id=SESSION + 1)
            assert answer.body == Response(0, AgentxError.NOT_OPEN, 0, ())

    run(scenario, tmp_path)


def test_malformed_pdus_get_parse_error_and_the_session_survives(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        good = pdu.encode(GetNext((SearchRange(NAME),)), session_id=SESSION, packet_id=5)
        header = bytearray(good[:20])
        broken = [
            bytes(header[:16]) + struct.pack(">I", 4) + bytes([9, 0, 0, 0]),  # truncated OID
            bytes(header[:16]) + struct.pack(">I", 4) + bytes([200, 0, 0, 0]),
            bytes([1, 8, 0x10, 0]) + good[4:16] + struct.pack(">I", 8)
            + struct.pack(">HH", 77, 0) + bytes(4),                          # bad varbind type
            bytes([1, 99, 0x10, 0]) + good[4:16] + bytes(4),                  # unknown PDU type
            bytes([1, 6, 0x10, 0]) + good[4:16] + struct.pack(">I", 2) + b"\0\0",  # not 4n
            bytes([3, 6, 0x10, 0]) + good[4:],                                # version 3
        ]
        for data in broken:
            await master.send(data)
            answer = await master.answer()
            assert answer.body == Response(0, AgentxError.PARSE_ERROR, 0, ())
            assert answer.header.packet_id == 5
        # a malformed CleanupSet gets no answer; the next request still does
        await master.send(bytes([1, 11, 0x10, 0]) + good[4:16] + struct.pack(">I", 4) + bytes(4))
        answer = await master.ask(GetNext((SearchRange(NAME),)))
        assert varbinds(answer) == ((NAME + (1,), Value.octets("dom1")),)
        assert sub.health()[0]

    run(scenario, tmp_path)
    warnings = [r for r in caplog.records if "malformed PDU" in r.getMessage()]
    assert len(warnings) == 7 and all(r.exc_info is None for r in caplog.records)


def test_fuzzed_master_never_crashes_the_subagent(tmp_path: Path) -> None:
    """2,000 random, truncated and corrupted PDUs framed correctly: each one answered or
    ignored, and a normal request afterwards is still served."""
    rng = random.Random(5)
    templates = [pdu.encode(body, session_id=SESSION, packet_id=9, big_endian=big)
                 for big in (True, False)
                 for body in (GetNext((SearchRange(NAME, STATE, True),)),
                              Get((SearchRange(NAME + (1,)),)),
                              GetBulk(1, 4, (SearchRange(HVMON), SearchRange(NAME))),
                              pdu.TestSet(((STATE + (1,), Value.integer(3)),)),
                              CommitSet(), UndoSet(), CleanupSet(), Ping())]

    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        for n in range(2000):
            data = bytearray(rng.choice(templates))
            if n % 2:
                for _ in range(rng.randrange(1, 8)):
                    data[rng.randrange(2, len(data))] = rng.randrange(256)  # flags included
            else:
                data = data[:rng.randrange(20, len(data) + 1)]
            data[0] = 1
            # frame it: payload_length as the (possibly corrupted) flags say
            order = ">" if data[2] & 0x10 else "<"
            data[16:20] = struct.pack(order + "I", len(data) - 20)
            await master.send(bytes(data))
            if n % 200 == 0:
                await asyncio.sleep(0)
        await master.send(pdu.encode(Ping(), session_id=SESSION, packet_id=4242))
        answer = await master.ask(GetNext((SearchRange(NAME),)), transaction_id=4242)
        while (answer.header.packet_id, answer.header.transaction_id) != (77, 4242):
            answer = await master.answer()
        assert varbinds(answer) == ((NAME + (1,), Value.octets("dom1")),)
        assert master.connections == 1 and sub.health()[0]

    run(scenario, tmp_path, timeout=5.0)


def test_an_absurd_payload_length_drops_the_connection_and_it_reconnects(
        tmp_path: Path) -> None:
    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        master.registered.clear()
        await master.send(bytes([1, 6, 0x10, 0]) + bytes(12) + struct.pack(">I", 1 << 30))
        await asyncio.wait_for(master.registered.wait(), 5)
        assert master.connections == 2

    run(scenario, tmp_path, retry_min=0.05)


# --- SET (RFC 2741 7.2.4) ----------------------------------------------------------------

def test_testset_commitset_cleanupset(tmp_path: Path) -> None:
    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        wanted = ((STATE + (2,), Value.integer(3)),)
        answer = await master.ask(pdu.TestSet(wanted), transaction_id=10)
        assert answer.body == Response(0, 0, 0, ())
        assert view.committed == []  # nothing changes at TestSet
        answer = await master.ask(CommitSet(), transaction_id=10)
        assert answer.body == Response(0, 0, 0, ())
        assert view.committed == [list(wanted)]
        await master.send(pdu.encode(CleanupSet(), session_id=SESSION, transaction_id=10))
        # CleanupSet has no answer: the next thing the master hears is the Get's
        answer = await master.ask(Get((SearchRange(NAME + (1,)),)))
        assert isinstance(answer.body, Response) and answer.body.varbinds

    run(scenario, tmp_path)


@pytest.mark.parametrize("wanted, status, index", [
    (((NAME + (1,), Value.octets("x")),), ErrorStatus.NOT_WRITABLE, 1),
    (((STATE + (1,), Value.integer(2)), (STATE + (2,), Value.octets("x"))),
     ErrorStatus.WRONG_TYPE, 2),
    (((STATE + (1,), Value.integer(9)),), ErrorStatus.INCONSISTENT_VALUE, 1),
])
def test_testset_failures_carry_status_and_one_based_index(
        tmp_path: Path, wanted: tuple[VarBind, ...], status: ErrorStatus, index: int) -> None:
    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        answer = await master.ask(pdu.TestSet(wanted), transaction_id=3)
        assert answer.body == Response(0, status, index, ())
        await master.send(pdu.encode(CleanupSet(), session_id=SESSION, transaction_id=3))
        assert view.committed == []

    run(scenario, tmp_path)


def test_read_only_subagent_refuses_every_set(tmp_path: Path) -> None:
    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        answer = await master.ask(pdu.TestSet(((STATE + (1,), Value.integer(3)),)))
        assert answer.body == Response(0, ErrorStatus.NOT_WRITABLE, 1, ())

    run(scenario, tmp_path, writable=False)


@pytest.mark.parametrize("error, delay, status, index, undo", [
    (SetFailure(ErrorStatus.COMMIT_FAILED, 0), 0.0, ErrorStatus.COMMIT_FAILED, 1, 0),
    (SetFailure(ErrorStatus.UNDO_FAILED, 1), 0.0, ErrorStatus.UNDO_FAILED, 2,
     ErrorStatus.UNDO_FAILED),
    (RuntimeError("driver said no"), 0.0, ErrorStatus.COMMIT_FAILED, 0, 0),
    (None, 1.5, ErrorStatus.COMMIT_FAILED, 0, 0),  # slower than the 0.5 s deadline
])
def test_commit_failures_map_to_commit_failed_or_undo_failed(
        tmp_path: Path, error: Exception | None, delay: float, status: int, index: int,
        undo: int) -> None:
    view = FakeView(commit_error=error, commit_delay=delay)

    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        wanted = ((STATE + (1,), Value.integer(3)), (STATE + (2,), Value.integer(2)))
        assert (await master.ask(pdu.TestSet(wanted), transaction_id=4)).body.error == 0
        answer = await master.ask(CommitSet(), transaction_id=4)
        assert answer.body == Response(0, status, index, ())
        answer = await master.ask(UndoSet(), transaction_id=4)
        assert answer.body == Response(0, undo, 0, ())

    run(scenario, tmp_path, view=view, timeout=0.5)


def test_commit_runs_in_a_worker_thread_while_gets_are_answered(tmp_path: Path) -> None:
    view = FakeView(commit_delay=0.5)

    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        await master.ask(pdu.TestSet(((STATE + (1,), Value.integer(3)),)), transaction_id=6)
        await master.send(pdu.encode(CommitSet(), session_id=SESSION, transaction_id=6,
                                     packet_id=600))
        answer = await master.ask(Get((SearchRange(NAME + (1,)),)), transaction_id=7)
        assert answer.header.transaction_id == 7  # answered before the commit finished
        answer = await master.answer()
        assert answer.header.packet_id == 600 and answer.body == Response(0, 0, 0, ())

    run(scenario, tmp_path, view=view)


def test_undo_after_a_successful_commit_is_undo_failed(tmp_path: Path) -> None:
    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        await master.ask(pdu.TestSet(((STATE + (1,), Value.integer(3)),)), transaction_id=8)
        assert (await master.ask(CommitSet(), transaction_id=8)).body.error == 0
        answer = await master.ask(UndoSet(), transaction_id=8)
        assert answer.body == Response(0, ErrorStatus.UNDO_FAILED, 0, ())
        # undo of a transaction that never committed is fine
        await master.ask(pdu.TestSet(((STATE + (1,), Value.integer(3)),)), transaction_id=9)
        assert (await master.ask(UndoSet(), transaction_id=9)).body.error == 0

    run(scenario, tmp_path)


# --- notifications ---------------------------------------------------------------------

def test_notify_puts_sysuptime_and_snmptrapoid_first(tmp_path: Path) -> None:
    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        extra = [(NAME + (1,), Value.octets("dom1"))]
        assert await sub.notify(HVMON + (0, 1), extra) is True
        sent = [m for m in master.received if isinstance(m.body, Notify)]
        assert len(sent) == 1 and sent[0].header.session_id == SESSION
        bound = sent[0].body.varbinds
        assert bound[0][0] == SYS_UP_TIME_0 and bound[0][1].tag == Tag.TIMETICKS
        assert bound[1] == (SNMP_TRAP_OID_0, Value.oid(HVMON + (0, 1)))
        assert list(bound[2:]) == extra

    run(scenario, tmp_path)


def test_notify_without_a_master_is_a_warning_not_an_exception(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        sub = AgentxSubagent(FakeView(), str(tmp_path / "nobody"),
                             logger=logging.getLogger("hvmon.test.ax"), timeout=0.5)
        await sub.start()
        assert await sub.notify(HVMON + (0, 1), []) is False
        await sub.stop()

    asyncio.run(asyncio.wait_for(main(), 10))
    assert "notification 1.3.6.1.4.1.32473.0.1 dropped" in caplog.text


def test_unencodable_value_in_the_view_is_gen_err(tmp_path: Path) -> None:
    view = FakeView()
    view._table = OidTable([(NAME + (1,), Value(Tag.INTEGER, 1 << 40))], objects=[NAME])

    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        answer = await master.ask(GetNext((SearchRange(HVMON), SearchRange(NAME))))
        assert answer.body == Response(0, ErrorStatus.GEN_ERR, 1, ())

    run(scenario, tmp_path, view=view)



def test_a_slow_table_refresh_never_blocks_answers(tmp_path: Path) -> None:
    """view.table() runs in a worker thread: while it takes 1 s, the last table is served,
    and the new one is served once it is there."""
    view = FakeView()
    newer = OidTable([(NAME + (1,), Value.octets("renamed"))], objects=[NAME])
    calls = {"n": 0}
    original = view.table

    def slow_table() -> OidTable:
        calls["n"] += 1
        if calls["n"] == 1:
            return original()
        assert threading.current_thread() is not threading.main_thread()
        time.sleep(1.0)
        return newer

    view.table = slow_table  # type: ignore[method-assign]

    async def scenario(master: FakeMaster, sub: AgentxSubagent, view: FakeView) -> None:
        await asyncio.wait_for(master.registered.wait(), 5)
        loop = asyncio.get_running_loop()
        started = loop.time()
        answer = await master.ask(Get((SearchRange(NAME + (1,)),)))
        assert loop.time() - started < 0.5
        assert varbinds(answer) == ((NAME + (1,), Value.octets("dom1")),)
        for _ in range(60):
            await asyncio.sleep(0.05)
            answer = await master.ask(Get((SearchRange(NAME + (1,)),)))
            if varbinds(answer) == ((NAME + (1,), Value.octets("renamed")),):
                break
        assert varbinds(answer) == ((NAME + (1,), Value.octets("renamed")),)

    run(scenario, tmp_path, view=view, refresh_interval=0.1)
