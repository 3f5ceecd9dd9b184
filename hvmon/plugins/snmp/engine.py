"""The standalone SNMP agent engine: UDP, v1/v2c communities, v3 USM, VACM.

Requests are answered on the event loop from the last table the MIB view
built (refreshed in a worker thread, so a stale snapshot never blocks the
loop). Each entry's encoded varbind is cached in ``table.scratch`` the first
time it is sent: GETNEXT and GETBULK answers are assembled from those bytes.
SETs are planned and committed in worker threads, one at a time. Malformed
packets and unknown communities are dropped and counted, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from hvmon.plugins.snmp.ber import DecodeError, encode_varbind
from hvmon.plugins.snmp.localmib import COUNTERS, LocalMib
from hvmon.plugins.snmp.message import (
    FLAG_AUTH,
    FLAG_PRIV,
    REQUESTS,
    USM,
    V1,
    V2C,
    V3,
    Pdu,
    PduType,
    TrapV1Pdu,
    decode_community,
    decode_scoped_bytes,
    decode_v3,
    encode_community_raw,
    encode_pdu_raw,
    encode_scoped_raw,
    encode_varbinds,
    peek_version,
)
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
)
from hvmon.plugins.snmp.usm import (
    MAX_BOOTS,
    TIME_WINDOW,
    EngineState,
    LocalKeys,
    SecurityParams,
    UserTable,
    UsmError,
    UsmUser,
    encode_secure,
    verify,
)
from hvmon.plugins.snmp.vacm import Access, MibView

if TYPE_CHECKING:
    from hvmon.plugins.snmp.view import SnmpView

#: scratch key of the per-entry varbind encodings
SCRATCH_KEY = "engine.ber"
#: the largest UDP payload (IPv4) — net-snmp's UDP transport limit too
UDP_MAX = 65507
#: bytes a response's length fields may grow by, on top of the empty response
_GROWTH = 16
_COUNTER64 = Tag.COUNTER64

#: RFC 3584 4.4: v2 error-status -> v1
_V1_STATUS = {
    ErrorStatus.NO_ACCESS: ErrorStatus.NO_SUCH_NAME,
    ErrorStatus.NOT_WRITABLE: ErrorStatus.NO_SUCH_NAME,
    ErrorStatus.NO_CREATION: ErrorStatus.NO_SUCH_NAME,
    ErrorStatus.INCONSISTENT_NAME: ErrorStatus.NO_SUCH_NAME,
    ErrorStatus.AUTHORIZATION_ERROR: ErrorStatus.NO_SUCH_NAME,
    ErrorStatus.WRONG_TYPE: ErrorStatus.BAD_VALUE,
    ErrorStatus.WRONG_LENGTH: ErrorStatus.BAD_VALUE,
    ErrorStatus.WRONG_ENCODING: ErrorStatus.BAD_VALUE,
    ErrorStatus.WRONG_VALUE: ErrorStatus.BAD_VALUE,
    ErrorStatus.INCONSISTENT_VALUE: ErrorStatus.BAD_VALUE,
    ErrorStatus.RESOURCE_UNAVAILABLE: ErrorStatus.GEN_ERR,
    ErrorStatus.COMMIT_FAILED: ErrorStatus.GEN_ERR,
    ErrorStatus.UNDO_FAILED: ErrorStatus.GEN_ERR,
}

Reply = Callable[[bytes], None]
Wrap = Callable[[bytes], bytes]


class _Full(Exception):
    """The response budget is used up."""


def encoded(table: OidTable, i: int) -> bytes:
    """Entry ``i``'s varbind encoding, cached in the table's scratch."""
    cache = table.scratch.get(SCRATCH_KEY)
    if cache is None:
        cache = table.scratch[SCRATCH_KEY] = [None] * len(table)
    data = cache[i]
    if data is None:
        data = cache[i] = encode_varbind(table.oids[i], table.values[i])
    return data


def _skip(table: OidTable, i: int, read: MibView, v1: bool) -> int:
    """The first index >= ``i`` readable by ``read`` (and not Counter64 for v1)."""
    oids, n = table.oids, len(table)
    while i < n:
        if not read.everything and not read.contains(oids[i]):
            start = read.next_start(oids[i])
            if start is None:
                return n
            i = bisect_left(oids, start, i)
            continue
        if v1 and table.values[i].tag == _COUNTER64:
            i += 1
            continue
        return i
    return n


class SnmpEngine:
    """One SNMP command responder over an :class:`SnmpView`, on any number of UDP sockets."""

    def __init__(self, view: SnmpView, *, communities: Mapping[str, Access] | None = None,
                 users: Sequence[tuple[UsmUser, Access]] = (), state: EngineState | None = None,
                 control: bool = False, logger: logging.Logger | None = None,
                 max_message_size: int = UDP_MAX, set_timeout: float = 30.0,
                 refresh_interval: float = 1.0, descr: str = "hvmon SNMP agent",
                 object_id: OID = (1, 3, 6, 1, 4, 1, 32473)) -> None:
        self.view = view
        self.communities = {name.encode(): access for name, access in (communities or {}).items()}
        self.state = state or EngineState.load(None)
        self.users = UserTable([user for user, _ in users], self.state.engine_id)
        self.user_access = {user.name: access for user, access in users}
        self.control = control
        self.log = logger or logging.getLogger("hvmon.agent.snmp")
        self.max_message_size = max_message_size
        self.set_timeout = set_timeout
        self.refresh_interval = refresh_interval
        self.started = time.monotonic()
        self.local = LocalMib(descr=descr, object_id=object_id, name=socket.gethostname,
                              uptime=self.uptime,
                              engine=lambda: (self.state.engine_id, self.state.boots,
                                              self.state.time),
                              max_message_size=max_message_size)
        self._table: OidTable = OidTable(())
        self._local: OidTable | None = None
        self._local_stamp: tuple[int, int] = (-1, -1)
        self._transports: list[asyncio.DatagramTransport] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresher: asyncio.Task[None] | None = None
        self._set_lock = asyncio.Lock()
        self._salt = int.from_bytes(os.urandom(8), "big")
        self._refresh_failed = False

    # --- lifecycle ----------------------------------------------------------------
    def uptime(self) -> int:
        """sysUpTime in hundredths of a second."""
        return int((time.monotonic() - self.started) * 100)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [t.get_extra_info("sockname")[:2] for t in self._transports]

    async def start(self, addresses: Sequence[tuple[str, int]]) -> None:
        """Build the first table, then bind every address (OSError names the address)."""
        await self.refresh()
        loop = asyncio.get_running_loop()
        for host, port in addresses:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Protocol(self), local_addr=(host, port), family=family)
            except OSError as exc:
                await self.stop()
                where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                raise OSError(exc.errno, f"cannot listen on {where}: "
                                         f"{exc.strerror or exc}") from None
            self._transports.append(transport)
        self._refresher = asyncio.create_task(self._refresh_loop())

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for transport in self._transports:
            transport.close()
        self._transports.clear()

    async def refresh(self) -> None:
        """Take the view's current table (built in a worker thread)."""
        try:
            self._table = await asyncio.to_thread(self.view.table)
        except Exception as exc:  # keep serving the last table
            if not self._refresh_failed:
                self.log.warning("cannot refresh the SNMP table: %s", exc)
            self._refresh_failed = True
        else:
            self._refresh_failed = False

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)
            await self.refresh()

    @property
    def table(self) -> OidTable:
        """The table requests are answered from."""
        return self._table

    def _tables(self) -> tuple[OidTable, OidTable]:
        stamp = (self.local.version, int(time.monotonic() * 2))
        if self._local is None or stamp != self._local_stamp:
            self._local, self._local_stamp = self.local.table(), stamp
        return self._table, self._local

    # --- datagrams ---------------------------------------------------------------
    def handle(self, data: bytes, reply: Reply) -> bytes | None:
        """The response to one datagram (None: nothing now; SETs reply later)."""
        self.local.count("snmpInPkts")
        try:
            version = peek_version(data)
            if version in (V1, V2C):
                return self._community(data, version, reply)
            if version == V3:
                return self._v3(data, reply)
        except DecodeError as exc:
            self.local.count("snmpInASNParseErrs")
            self.log.debug("dropped a malformed packet: %s", exc)
            return None
        self.local.count("snmpInBadVersions")
        return None

    def _community(self, data: bytes, version: int, reply: Reply) -> bytes | None:
        msg = decode_community(data)
        access = self.communities.get(msg.community)
        if access is None:
            self.local.count("snmpInBadCommunityNames")
            return None
        pdu = msg.pdu
        if isinstance(pdu, TrapV1Pdu) or pdu.type not in REQUESTS:
            self.local.count("snmpUnknownPDUHandlers")
            return None
        if version == V1 and pdu.type == PduType.GET_BULK:
            self.local.count("snmpInASNParseErrs")
            return None

        def wrap(pdu_bytes: bytes) -> bytes:
            return encode_community_raw(version, msg.community, pdu_bytes)

        return self._request(pdu, access, version == V1, wrap, self.max_message_size, reply)

    # --- v3 -----------------------------------------------------------------------
    def _v3(self, data: bytes, reply: Reply) -> bytes | None:
        msg = decode_v3(data)
        if msg.security_model != USM:
            self.local.count("snmpUnknownSecurityModels")
            return None
        params = SecurityParams.decode(msg.security_params)
        level = 2 if msg.priv else (1 if msg.auth else 0)
        plain = None if isinstance(msg.scoped, bytes) else msg.scoped

        def report(counter: str, keys: LocalKeys | None = None, secure: int = 0) -> bytes | None:
            n = self.local.count(counter)
            self.log.debug("SNMPv3 request refused: %s", counter)
            if not msg.reportable:
                return None
            request_id = plain.pdu.request_id if plain is not None else 0
            vb = encode_varbind(COUNTERS[counter], Value(Tag.COUNTER32, n & 0xFFFFFFFF))
            pdu_bytes = encode_pdu_raw(PduType.REPORT, request_id, 0, 0, vb)
            name = plain.context_name if plain is not None else b""
            return self._secure(msg.msg_id, pdu_bytes, name, params.user, keys, secure)

        if params.engine_id != self.state.engine_id:
            return report("unknownEngineIDs")
        keys = self.users.keys(params.user)
        if keys is None:
            return report("unknownUserNames")
        if level > keys.user.level:
            return report("unsupportedSecLevels")
        if msg.auth:
            try:
                verify(data, msg.params_at + params.auth_at, params, keys)
            except UsmError:
                return report("wrongDigests")
            state = self.state
            if (state.boots == MAX_BOOTS or params.boots != state.boots
                    or abs(params.time - state.time) > TIME_WINDOW):
                return report("notInTimeWindows", keys, 1)
        if isinstance(msg.scoped, bytes):
            try:
                scoped = decode_scoped_bytes(keys.decrypt(msg.scoped, params.boots, params.time,
                                                          params.priv))
            except (UsmError, DecodeError, ValueError):
                return report("decryptionErrors")
        else:
            scoped = msg.scoped
        pdu = scoped.pdu
        if pdu.type not in REQUESTS:
            self.local.count("snmpUnknownPDUHandlers")
            return None
        access = self.user_access[params.user]

        def wrap(pdu_bytes: bytes) -> bytes:
            return self._secure(msg.msg_id, pdu_bytes, scoped.context_name, params.user, keys,
                                level)

        if level < access.min_level:
            return wrap(encode_pdu_raw(PduType.RESPONSE, pdu.request_id,
                                       ErrorStatus.AUTHORIZATION_ERROR, 0,
                                       encode_varbinds(pdu.varbinds)))
        max_size = min(msg.max_size, self.max_message_size)
        return self._request(pdu, access, False, wrap, max_size, reply)

    def _secure(self, msg_id: int, pdu_bytes: bytes, context_name: bytes, user: bytes,
                keys: LocalKeys | None, level: int) -> bytes:
        """A v3 response or report from the local (authoritative) engine."""
        state = self.state
        scoped = encode_scoped_raw(state.engine_id, context_name, pdu_bytes)
        boots, etime = state.boots, state.time
        priv = b""
        flags = 0
        if level >= 1 and keys is not None:
            flags |= FLAG_AUTH
            if level == 2:
                flags |= FLAG_PRIV
                self._salt = (self._salt + 1) & 0xFFFFFFFFFFFFFFFF
                priv = self._salt.to_bytes(8, "big")
                scoped = keys.encrypt(scoped, boots, etime, priv)
        params = SecurityParams(state.engine_id, boots, etime, user, b"", priv)
        return encode_secure(msg_id, self.max_message_size, flags, params, scoped, keys)

    # --- PDUs ---------------------------------------------------------------------
    def _request(self, pdu: Pdu, access: Access, v1: bool, wrap: Wrap, max_size: int,
                 reply: Reply) -> bytes | None:
        if pdu.type == PduType.SET:
            task = asyncio.get_running_loop().create_task(
                self._set(pdu, access, v1, wrap, max_size, reply))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return None
        try:
            if pdu.type == PduType.GET_BULK:
                return self._bulk(pdu, access, wrap, max_size)
            return self._get(pdu, access, v1, wrap, max_size)
        except ValueError as exc:  # a value the view produced cannot be encoded
            self.log.warning("cannot encode a response: %s", exc)
            return wrap(encode_pdu_raw(PduType.RESPONSE, pdu.request_id, ErrorStatus.GEN_ERR,
                                       0, encode_varbinds(pdu.varbinds)))

    def _finish(self, pdu: Pdu, body: bytes, status: int, index: int, v1: bool, wrap: Wrap,
                max_size: int) -> bytes | None:
        out = wrap(encode_pdu_raw(PduType.RESPONSE, pdu.request_id, status, index, body))
        if len(out) <= max_size:
            return out
        # RFC 3416 4.2.1: tooBig with no varbinds (v1, RFC 1157: the request's varbinds)
        varbinds = encode_varbinds(pdu.varbinds) if v1 else b""
        out = wrap(encode_pdu_raw(PduType.RESPONSE, pdu.request_id, ErrorStatus.TOO_BIG, 0,
                                  varbinds))
        if len(out) <= max_size:
            return out
        self.local.count("snmpSilentDrops")
        return None

    def _get(self, pdu: Pdu, access: Access, v1: bool, wrap: Wrap,
             max_size: int) -> bytes | None:
        tables = self._tables()
        read = access.read
        parts: list[bytes] = []
        nxt = pdu.type == PduType.GET_NEXT
        for n, (oid, _) in enumerate(pdu.varbinds):
            if nxt:
                found = self._next(tables, oid, read, v1)
                part = encoded(found[0], found[1]) if found else None
                if part is None and not v1:
                    part = encode_varbind(oid, END_OF_MIB_VIEW)
            else:
                part = self._get_one(tables, oid, read, v1)
            if part is None:  # v1: noSuchName for this varbind
                return self._finish(pdu, encode_varbinds(pdu.varbinds),
                                    ErrorStatus.NO_SUCH_NAME, n + 1, v1, wrap, max_size)
            parts.append(part)
        return self._finish(pdu, b"".join(parts), 0, 0, v1, wrap, max_size)

    @staticmethod
    def _get_one(tables: Sequence[OidTable], oid: OID, read: MibView, v1: bool) -> bytes | None:
        if not read.contains(oid):
            return None if v1 else encode_varbind(oid, NO_SUCH_OBJECT)
        missing: Value = NO_SUCH_OBJECT
        for table in tables:
            i = bisect_left(table.oids, oid)
            if i < len(table) and table.oids[i] == oid:
                if v1 and table.values[i].tag == _COUNTER64:
                    return None
                return encoded(table, i)
            if table.get(oid) is NO_SUCH_INSTANCE:
                missing = NO_SUCH_INSTANCE
        return None if v1 else encode_varbind(oid, missing)

    @staticmethod
    def _next(tables: Sequence[OidTable], oid: OID, read: MibView, v1: bool,
              hint: OidTable | None = None, hint_index: int = 0) -> tuple[OidTable, int] | None:
        """(table, index) of the first readable entry after ``oid`` in all tables."""
        best: tuple[OidTable, int] | None = None
        for table in tables:
            i = hint_index if table is hint else table.next_index(oid)
            i = _skip(table, i, read, v1)
            if i < len(table) and (best is None or table.oids[i] < best[0].oids[best[1]]):
                best = (table, i)
        return best

    def _bulk(self, pdu: Pdu, access: Access, wrap: Wrap, max_size: int) -> bytes | None:
        tables = self._tables()
        read = access.read
        varbinds = pdu.varbinds
        count = len(varbinds)
        non_rep = min(max(pdu.non_repeaters, 0), count)
        reps = max(pdu.max_repetitions, 0)
        empty = wrap(encode_pdu_raw(PduType.RESPONSE, pdu.request_id, 0, 0, b""))
        budget = max_size - len(empty) - _GROWTH
        parts: list[bytes] = []
        size = 0
        try:
            for oid, _ in varbinds[:non_rep]:
                found = self._next(tables, oid, read, False)
                part = encoded(*found) if found else encode_varbind(oid, END_OF_MIB_VIEW)
                size += len(part)
                if size > budget:
                    raise _Full
                parts.append(part)
            cursors: list[tuple[OID, OidTable | None, int]] = [
                (oid, None, 0) for oid, _ in varbinds[non_rep:]]
            ended = [False] * len(cursors)
            for _ in range(reps if cursors else 0):
                for k, (last, hint, index) in enumerate(cursors):
                    if ended[k]:
                        part = encode_varbind(last, END_OF_MIB_VIEW)
                    else:
                        found = self._next(tables, last, read, False, hint, index)
                        if found is None:
                            ended[k] = True
                            part = encode_varbind(last, END_OF_MIB_VIEW)
                        else:
                            table, i = found
                            cursors[k] = (table.oids[i], table, i + 1)
                            part = encoded(table, i)
                    size += len(part)
                    if size > budget:
                        raise _Full
                    parts.append(part)
                if all(ended):
                    break
        except _Full:
            if not parts:
                return self._finish(pdu, b"", ErrorStatus.TOO_BIG, 0, False, wrap, max_size)
        return self._finish(pdu, b"".join(parts), 0, 0, False, wrap, max_size)

    async def _set(self, pdu: Pdu, access: Access, v1: bool, wrap: Wrap, max_size: int,
                   reply: Reply) -> None:
        varbinds = pdu.varbinds
        writable = access.writable and self.control
        status, index = 0, 0
        async with self._set_lock:
            try:
                if writable:
                    for i, (oid, _) in enumerate(varbinds):
                        if not access.write.contains(oid):
                            raise SetFailure(ErrorStatus.NO_ACCESS, i)
                plan = await asyncio.to_thread(self.view.plan_set, varbinds, writable=writable)
                async with asyncio.timeout(self.set_timeout):  # wait_for can lose a cancel
                    await asyncio.to_thread(plan.commit)
            except SetFailure as exc:
                status, index = int(exc.status), exc.index + 1
                self.log.info("SNMP SET from %s refused: %s (varbind %d)", access.name,
                              exc, index)
            except TimeoutError:
                status, index = int(ErrorStatus.GEN_ERR), 0
                self.log.warning("SNMP SET from %s timed out after %gs", access.name,
                                 self.set_timeout)
            except Exception as exc:
                status, index = int(ErrorStatus.GEN_ERR), 0
                self.log.warning("SNMP SET from %s failed: %s", access.name, exc)
            else:
                self.log.info("SNMP SET from %s committed (%d varbinds)", access.name,
                              len(varbinds))
                await self.refresh()
        if v1:
            status = int(_V1_STATUS.get(ErrorStatus(status), status))
        out = self._finish(pdu, encode_varbinds(varbinds), status, index, v1, wrap, max_size)
        if out is not None:
            self.local.count("snmpOutPkts")
            reply(out)


class _Protocol(asyncio.DatagramProtocol):
    """Hands each datagram to the engine; nothing a packet does may escape."""

    def __init__(self, engine: SnmpEngine) -> None:
        self.engine = engine
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        transport = self.transport
        if transport is None:
            return

        def reply(out: bytes) -> None:
            if not transport.is_closing():
                transport.sendto(out, addr)

        try:
            out = self.engine.handle(data, reply)
        except Exception as exc:  # a bug must cost one packet, never the agent
            self.engine.local.count("snmpInASNParseErrs")
            self.engine.log.warning("dropped a packet: %s: %s", type(exc).__name__, exc)
            return
        if out is not None:
            self.engine.local.count("snmpOutPkts")
            transport.sendto(out, addr)

    def error_received(self, exc: Exception) -> None:
        self.engine.log.debug("UDP error: %s", exc)
