"""Notifications: lifecycle events -> SNMPv2-Trap / InformRequest to configured targets.

Every notification starts with sysUpTime.0 and snmpTrapOID.0 (RFC 3416 4.2.6).
v2c targets get a trap (or an inform when asked); v3 targets get an inform:
the receiver is the authoritative engine, so it is discovered first (a Report
carries its engine ID, boots and time), the user's keys are localized to it,
and the inform is retried until it is acknowledged or the retries run out.
A v3 target without ``inform`` gets a trap from the local engine ID (the
receiver must know it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hvmon.plugins.snmp.ber import DecodeError
from hvmon.plugins.snmp.localmib import SNMP_TRAP_OID_0, SYS_UP_TIME_0
from hvmon.plugins.snmp.message import (
    FLAG_AUTH,
    FLAG_PRIV,
    FLAG_REPORTABLE,
    V2C,
    PduType,
    decode_community,
    decode_scoped_bytes,
    decode_v3,
    encode_community_raw,
    encode_pdu_raw,
    encode_scoped_raw,
    encode_varbinds,
    peek_version,
)
from hvmon.plugins.snmp.types import OID, Value, VarBind
from hvmon.plugins.snmp.usm import (
    EngineState,
    LocalKeys,
    SecurityParams,
    UsmError,
    UsmUser,
    encode_secure,
    verify,
)

if TYPE_CHECKING:
    from hvmon.core.api import DomainEvent
    from hvmon.plugins.snmp.view import SnmpView


@dataclass(frozen=True)
class TrapTarget:
    """Where notifications go; ``user`` for v3 (the password-derived keys, never the text)."""

    host: str
    port: int
    version: str = "v2c"
    community: str = "public"
    user: UsmUser | None = field(default=None, repr=False)
    inform: bool = False
    timeout: float = 2.0
    retries: int = 3

    @property
    def label(self) -> str:
        where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        return f"{self.version} {'inform' if self.inform else 'trap'} to {where}"


def notification_varbinds(uptime: int, trap_oid: OID, varbinds: Sequence[VarBind]) -> list[VarBind]:
    return [(SYS_UP_TIME_0, Value.timeticks(uptime)), (SNMP_TRAP_OID_0, Value.oid(trap_oid)),
            *varbinds]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)


@dataclass
class _Peer:
    """A v3 receiver as discovered: its engine and our keys localized to it."""

    engine_id: bytes
    boots: int
    time: int
    at: float
    keys: LocalKeys

    def now(self) -> int:
        return self.time + int(time.monotonic() - self.at)


class Notifier:
    """Sends notifications to every target; never raises for a target's failure."""

    def __init__(self, targets: Sequence[TrapTarget], *, uptime: Callable[[], int],
                 state: EngineState | None = None, logger: logging.Logger | None = None) -> None:
        self.targets = list(targets)
        self.uptime = uptime
        self.state = state
        self.log = logger or logging.getLogger("hvmon.agent.snmp")
        self._peers: dict[TrapTarget, _Peer] = {}
        self._ids = int.from_bytes(os.urandom(3), "big")
        self._salt = int.from_bytes(os.urandom(8), "big")
        self.sent = 0
        self.failed = 0

    def _next_id(self) -> int:
        self._ids = (self._ids + 1) & 0x7FFFFFFF
        return self._ids

    async def run(self, events: AsyncIterator[DomainEvent], view: SnmpView) -> None:
        """Forward every lifecycle event's notifications until the stream ends."""
        async for event in events:
            try:
                notes = view.notifications(event)
            except Exception as exc:
                self.log.warning("no notification for an event: %s", exc)
                continue
            for trap_oid, varbinds in notes:
                await self.send(trap_oid, varbinds)

    async def send(self, trap_oid: OID, varbinds: Sequence[VarBind]) -> list[bool]:
        """Send one notification to every target (concurrently); True per acknowledged/sent."""
        full = notification_varbinds(self.uptime(), trap_oid, varbinds)
        results = await asyncio.gather(*(self._send_one(t, full) for t in self.targets))
        return list(results)

    async def _send_one(self, target: TrapTarget, varbinds: list[VarBind]) -> bool:
        try:
            if target.version == "v3":
                ok = await self._v3(target, varbinds)
            else:
                ok = await self._v2c(target, varbinds)
        except (OSError, DecodeError, UsmError) as exc:
            ok = False
            self.log.warning("%s failed: %s", target.label, exc)
        if ok:
            self.sent += 1
        else:
            self.failed += 1
        return ok

    async def _open(self, target: TrapTarget) -> tuple[asyncio.DatagramTransport, _Udp]:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
        transport, proto = await loop.create_datagram_endpoint(
            _Udp, remote_addr=(target.host, target.port), family=family)
        return transport, proto  # type: ignore[return-value]

    async def _exchange(self, target: TrapTarget, build: Callable[[], bytes],
                        accept: Callable[[bytes], bool | None]) -> bool:
        """Send ``build()`` (rebuilt per try) until ``accept`` says True; False on giving up.

        ``accept`` returns None for a datagram to ignore, False to resend now.
        """
        transport, proto = await self._open(target)
        try:
            for _attempt in range(target.retries + 1):
                transport.sendto(build())
                deadline = time.monotonic() + target.timeout
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        async with asyncio.timeout(left):  # wait_for can lose a cancel
                            data = await proto.queue.get()
                    except TimeoutError:
                        break
                    verdict = accept(data)
                    if verdict is True:
                        return True
                    if verdict is False:
                        break
            self.log.warning("%s: no acknowledgement after %d tries", target.label,
                             target.retries + 1)
            return False
        finally:
            transport.close()

    # --- v2c ------------------------------------------------------------------------
    async def _v2c(self, target: TrapTarget, varbinds: list[VarBind]) -> bool:
        request_id = self._next_id()
        kind = PduType.INFORM if target.inform else PduType.TRAP_V2
        message = encode_community_raw(V2C, target.community.encode(), encode_pdu_raw(
            kind, request_id, 0, 0, encode_varbinds(varbinds)))
        if not target.inform:
            transport, _ = await self._open(target)
            try:
                transport.sendto(message)
            finally:
                transport.close()
            return True

        def accept(data: bytes) -> bool | None:
            with contextlib.suppress(DecodeError):
                reply = decode_community(data)
                if reply.pdu.type == PduType.RESPONSE and \
                        getattr(reply.pdu, "request_id", None) == request_id:
                    return True
            return None

        return await self._exchange(target, lambda: message, accept)

    # --- v3 -------------------------------------------------------------------------
    async def _v3(self, target: TrapTarget, varbinds: list[VarBind]) -> bool:
        user = target.user
        if user is None:
            raise UsmError("unknownUserNames", "v3 target without a user")
        if not target.inform:
            return await self._v3_trap(target, user, varbinds)
        peer = self._peers.get(target) or await self._discover(target, user)
        if peer is None:
            return False
        request_id = self._next_id()
        pdu_bytes = encode_pdu_raw(PduType.INFORM, request_id, 0, 0, encode_varbinds(varbinds))
        msg_ids: set[int] = set()
        level = user.level

        def build() -> bytes:
            msg_id = self._next_id()
            msg_ids.add(msg_id)
            return self._secure(msg_id, peer, user, level, pdu_bytes, reportable=True)

        def accept(data: bytes) -> bool | None:
            try:
                if peek_version(data) != 3:
                    return None
                msg = decode_v3(data)
                if msg.msg_id not in msg_ids:
                    return None
                params = SecurityParams.decode(msg.security_params)
                if msg.auth:
                    verify(data, msg.params_at + params.auth_at, params, peer.keys)
                    if params.engine_id == peer.engine_id:  # resynchronise the clock
                        peer.boots, peer.time, peer.at = (params.boots, params.time,
                                                          time.monotonic())
                if isinstance(msg.scoped, bytes):
                    scoped = decode_scoped_bytes(peer.keys.decrypt(
                        msg.scoped, params.boots, params.time, params.priv))
                else:
                    scoped = msg.scoped
            except (DecodeError, UsmError, ValueError):
                return None
            if scoped.pdu.type == PduType.REPORT:
                self.log.info("%s: report %s, retrying", target.label,
                              ".".join(map(str, scoped.pdu.varbinds[0][0]))
                              if scoped.pdu.varbinds else "")
                return False
            return scoped.pdu.type == PduType.RESPONSE and scoped.pdu.request_id == request_id

        ok = await self._exchange(target, build, accept)
        if not ok:
            self._peers.pop(target, None)  # rediscover next time
        return ok

    def _secure(self, msg_id: int, peer: _Peer, user: UsmUser, level: int, pdu_bytes: bytes,
                *, reportable: bool) -> bytes:
        scoped = encode_scoped_raw(peer.engine_id, b"", pdu_bytes)
        boots, etime = peer.boots, peer.now()
        flags = FLAG_REPORTABLE if reportable else 0
        priv = b""
        if level >= 1:
            flags |= FLAG_AUTH
        if level == 2:
            flags |= FLAG_PRIV
            self._salt = (self._salt + 1) & 0xFFFFFFFFFFFFFFFF
            priv = self._salt.to_bytes(8, "big")
            scoped = peer.keys.encrypt(scoped, boots, etime, priv)
        params = SecurityParams(peer.engine_id, boots, etime, user.name, b"", priv)
        return encode_secure(msg_id, 65507, flags, params, scoped, peer.keys)

    async def _discover(self, target: TrapTarget, user: UsmUser) -> _Peer | None:
        """Learn the receiver's engine ID, boots and time from its Report (RFC 3414 4)."""
        msg_id = self._next_id()
        probe = encode_secure(msg_id, 65507, FLAG_REPORTABLE,
                              SecurityParams(b"", 0, 0, b"", b"", b""),
                              encode_scoped_raw(b"", b"", encode_pdu_raw(
                                  PduType.GET, self._next_id(), 0, 0, b"")), None)
        found: list[_Peer] = []

        def accept(data: bytes) -> bool | None:
            try:
                msg = decode_v3(data)
                params = SecurityParams.decode(msg.security_params)
            except DecodeError:
                return None
            if msg.msg_id != msg_id or not params.engine_id:
                return None
            found.append(_Peer(params.engine_id, params.boots, params.time, time.monotonic(),
                               LocalKeys.for_engine(user, params.engine_id)))
            return True

        if not await self._exchange(target, lambda: probe, accept):
            return None
        self._peers[target] = found[0]
        return found[0]

    async def _v3_trap(self, target: TrapTarget, user: UsmUser, varbinds: list[VarBind]) -> bool:
        if self.state is None:
            raise UsmError("unknownEngineIDs", "no local engine for v3 traps")
        keys = LocalKeys.for_engine(user, self.state.engine_id)
        peer = _Peer(self.state.engine_id, self.state.boots, self.state.time, time.monotonic(),
                     keys)
        pdu_bytes = encode_pdu_raw(PduType.TRAP_V2, self._next_id(), 0, 0,
                                   encode_varbinds(varbinds))
        message = self._secure(self._next_id(), peer, user, user.level, pdu_bytes,
                               reportable=False)
        transport, _ = await self._open(target)
        try:
            transport.sendto(message)
        finally:
            transport.close()
        return True
