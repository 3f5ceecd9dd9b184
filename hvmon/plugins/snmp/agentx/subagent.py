"""The AgentX subagent: registers an SnmpView's roots with a master and answers it.

Get, GetNext and GetBulk are answered inline from the view's table, which a
background task takes from ``view.table()`` in a worker thread every
``refresh_interval`` (so a snapshot refresh never blocks the event loop),
with each varbind's encoding cached in the table's ``scratch`` for as long as
the table lives. TestSet plans a SET with
``view.plan_set``; CommitSet runs ``plan.commit()`` in a worker thread with a
deadline; UndoSet and CleanupSet close the transaction. When the master goes
away the subagent says so in one log line and in :meth:`AgentxSubagent.health`,
and reconnects with back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import hvmon
from hvmon.plugins.snmp.agentx.pdu import (
    AgentxError,
    CleanupSet,
    Close,
    CloseReason,
    CommitSet,
    EncodeError,
    Get,
    GetBulk,
    GetNext,
    Header,
    Notify,
    Open,
    ParseError,
    PduType,
    Ping,
    Register,
    SearchRange,
    TestSet,
    UndoSet,
    decode_body,
    decode_ranges,
    encode_response,
    encode_varbind,
    error_name,
)
from hvmon.plugins.snmp.agentx.session import (
    DEFAULT_ADDRESS,
    Session,
    SessionClosed,
    connect,
    parse_address,
)
from hvmon.plugins.snmp.table import OidTable
from hvmon.plugins.snmp.types import (
    END_OF_MIB_VIEW,
    OID,
    ErrorStatus,
    SetFailure,
    Value,
    VarBind,
    format_oid,
)

if TYPE_CHECKING:
    from hvmon.plugins.snmp.view import SetPlan, SnmpView

SYS_UP_TIME_0: OID = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SNMP_TRAP_OID_0: OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
#: at most this many varbinds in one GetBulk answer
MAX_BULK_VARBINDS = 8192
_CACHE_KEY = "agentx.varbinds.be"


@dataclass
class _SetTransaction:
    """One SET between TestSet and CleanupSet."""

    plan: SetPlan
    committed: bool = False
    failure: int = 0  # res.error of a failed commit


class AgentxSubagent:
    """hvmon's view behind an AgentX master (``snmpd`` with ``master agentx``)."""

    def __init__(self, view: SnmpView, address: str = DEFAULT_ADDRESS, *,
                 logger: logging.Logger | logging.LoggerAdapter, timeout: float = 5.0,
                 writable: bool = True, priority: int = 127, ping_interval: float = 15.0,
                 retry_min: float = 0.5, retry_max: float = 30.0,
                 refresh_interval: float = 1.0,
                 ident: OID | None = None, descr: str | None = None) -> None:
        """``address``: ``/path``, ``unix:/path`` or ``tcp:HOST:PORT`` (ValueError otherwise).

        ``timeout`` bounds connecting, each request to the master and a SET
        commit, and is the Open timeout the master waits for our answers.
        ``writable`` False refuses every SET (``plan_set(writable=False)``).
        """
        if not timeout > 0:
            raise ValueError(f"agentx timeout must be > 0 seconds, got {timeout!r}")
        if not 0 <= priority <= 255:
            raise ValueError(f"agentx priority must be 0..255, got {priority!r}")
        self.view = view
        self.address = parse_address(address)
        self.logger = logger
        self.timeout = float(timeout)
        self.writable = writable
        self.priority = priority
        self.ping_interval = ping_interval
        self.retry_min, self.retry_max = retry_min, max(retry_min, retry_max)
        self.refresh_interval = refresh_interval
        roots = list(view.roots)
        self.ident: OID = tuple(ident) if ident is not None else (roots[0] if roots else (0, 0))
        self.descr = (descr or f"hvmon {hvmon.__version__} SNMP subagent").encode()
        self._started = time.monotonic()
        self._session: Session | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._table: OidTable | None = None
        self._refresh_failed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._sets: dict[int, _SetTransaction] = {}
        self._state = "not started"
        self._problem = ""
        self._attempted: asyncio.Event | None = None
        self._stopping = False
        self._last_failure = ""

    # --- the agent interface --------------------------------------------------------

    async def start(self) -> None:
        """Connect, Open and Register in the background; returns after the first attempt.

        A master that is not there yet is not an error: health says so and the
        subagent keeps retrying with back-off.
        """
        if self._run_task is not None:
            return
        self._stopping = False
        self._attempted = asyncio.Event()
        self._state = "connecting"
        await self._refresh()
        loop = asyncio.get_running_loop()
        self._refresher = loop.create_task(self._refresh_loop(), name="agentx table refresh")
        self._run_task = loop.create_task(self._run(), name=f"agentx {self.address}")
        await self._attempted.wait()

    async def stop(self) -> None:
        """Close the session (reason shutdown) and stop reconnecting; safe to call twice."""
        self._stopping = True
        refresher, self._refresher = self._refresher, None
        if refresher is not None:
            refresher.cancel()
            await asyncio.wait({refresher}, timeout=self.timeout)
        task, self._run_task = self._run_task, None
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        if task is not None and not task.cancelled() and task.exception() is not None:
            self.logger.error("agentx: the connection task failed: %s", task.exception())
        session, self._session = self._session, None
        if session is not None and session.is_open:
            with contextlib.suppress(SessionClosed, TimeoutError, ParseError):
                await session.request(Close(CloseReason.SHUTDOWN),
                                      timeout=min(self.timeout, 1.0))
            session.abort("subagent stopped")
        for pending in list(self._tasks):
            pending.cancel()
        self._sets.clear()
        self._state = "stopped"

    def health(self) -> tuple[bool, str]:
        """(True, summary) while a session is open and every root registered."""
        if self._state == "open" and not self._problem:
            session = self._session
            ident = session.session_id if session is not None else 0
            return True, (f"agentx session {ident} with the master at {self.address}, "
                          f"{len(self.view.roots)} subtree(s) registered")
        if self._state == "open":
            return False, self._problem
        if self._state in ("not started", "stopped"):
            return False, f"agentx subagent {self._state}"
        detail = f": {self._last_failure}" if self._last_failure else ""
        return False, f"not connected to the agentx master at {self.address}{detail}; retrying"

    async def notify(self, trap_oid: OID, varbinds: Sequence[VarBind]) -> bool:
        """Send a notification through the master (which makes the traps/informs).

        sysUpTime.0 and snmpTrapOID.0 are put first. Returns True when the master
        accepted it; a one-line warning and False otherwise (never raises for that).
        """
        session = self._session
        name = format_oid(trap_oid)
        if session is None or not session.is_open:
            self.logger.warning("agentx: notification %s dropped: not connected to the "
                                "master at %s", name, self.address)
            return False
        bound = ((SYS_UP_TIME_0, Value.timeticks(self._uptime())),
                 (SNMP_TRAP_OID_0, Value.oid(trap_oid)), *varbinds)
        try:
            _, answer = await session.request(Notify(bound), timeout=self.timeout)
        except (SessionClosed, TimeoutError, EncodeError, ParseError) as exc:
            self.logger.warning("agentx: notification %s not delivered: %s", name,
                                _reason(exc, self.timeout))
            return False
        if answer.error:
            self.logger.warning("agentx: the master refused notification %s: %s", name,
                                error_name(answer.error))
            return False
        return True

    # --- the table ---------------------------------------------------------------------

    async def _refresh(self) -> None:
        """Take the view's current table in a worker thread; keep the last one on error."""
        try:
            self._table = await asyncio.to_thread(self.view.table)
        except Exception as exc:
            if not self._refresh_failed:
                self.logger.warning("agentx: cannot refresh the table: %s: %s",
                                    type(exc).__name__, exc)
            self._refresh_failed = True
        else:
            self._refresh_failed = False

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)
            await self._refresh()

    def _current_table(self) -> OidTable:
        table = self._table
        if table is None:  # no table could be had yet: nothing to serve
            table = self._table = OidTable(())
        return table

    # --- connection lifecycle -----------------------------------------------------

    def _uptime(self) -> int:
        return int((time.monotonic() - self._started) * 100)

    async def _run(self) -> None:
        delay = self.retry_min
        while not self._stopping:
            try:
                session = await self._establish()
            except Exception as exc:  # OSError, TimeoutError, _Refused ... : retry
                reason = _reason(exc, self.timeout)
                self._state = "connecting"
                log = self.logger.warning if reason != self._last_failure else self.logger.debug
                log("agentx: cannot connect to the master at %s: %s; retrying in %.1fs",
                    self.address, reason, delay)
                self._last_failure = reason
                self._mark_attempted()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            if self._stopping:
                session.abort("subagent stopped")
                break
            delay = self.retry_min
            self._session, self._state, self._last_failure = session, "open", ""
            self._mark_attempted()
            reason = await self._watch(session)
            self._session = None
            self._sets.clear()
            if self._stopping:
                break
            self._state = "connecting"
            self._last_failure = reason
            self.logger.warning("agentx: lost the master at %s: %s; reconnecting",
                                self.address, reason)
            await asyncio.sleep(self.retry_min)

    def _mark_attempted(self) -> None:
        if self._attempted is not None:
            self._attempted.set()

    async def _establish(self) -> Session:
        """Connect, Open and Register every root; the session, or an exception."""
        session = await connect(self.address, self._on_request, logger=self.logger,
                                timeout=self.timeout)
        try:
            open_timeout = min(255, max(1, math.ceil(self.timeout)))
            header, answer = await session.request(
                Open(open_timeout, self.ident, self.descr), timeout=self.timeout)
            if answer.error:
                raise _Refused(f"the master refused the session: {error_name(answer.error)}")
            session.session_id = header.session_id
            problems = []
            for root in self.view.roots:
                _, answer = await session.request(
                    Register(tuple(root), priority=self.priority), timeout=self.timeout)
                if answer.error:
                    problems.append(f"registering {format_oid(root)} was refused: "
                                    f"{error_name(answer.error)}")
            self._problem = "; ".join(problems)
            if problems:
                self.logger.warning("agentx: %s", self._problem)
        except BaseException:
            session.abort("setup failed")
            raise
        self.logger.info("agentx: session %d open with the master at %s, %d subtree(s) "
                         "registered", session.session_id, self.address,
                         len(self.view.roots) - len(problems))
        return session

    async def _watch(self, session: Session) -> str:
        """Ping the master every ``ping_interval``; the reason the session ended."""
        while True:
            done, _ = await asyncio.wait({session.lost}, timeout=self.ping_interval)
            if done:
                return session.lost.result()
            try:
                _, answer = await session.request(Ping(), timeout=self.timeout)
            except SessionClosed:
                continue
            except (TimeoutError, ParseError) as exc:
                session.abort(f"no answer to a ping: {_reason(exc, self.timeout)}")
                continue
            if answer.error:
                session.abort(f"the master answered a ping with {error_name(answer.error)}")

    # --- the master's requests ----------------------------------------------------

    def _on_request(self, session: Session, header: Header, payload: bytes) -> None:
        kind = header.type
        if (kind == 6 or kind == 5) and not header.flags & 0x08 and header.version == 1 \
                and header.session_id == session.session_id and not len(payload) % 4:
            # fast path: GetNext/Get in the default context
            try:
                ranges = decode_ranges(payload, header.big_endian)
            except ParseError as exc:
                self.logger.warning("agentx: malformed PDU (type %d) from the master: %s",
                                    kind, exc)
                session.send(encode_response(header, AgentxError.PARSE_ERROR))
                return
            session.send(self._answer(header, self._getnext if kind == 6 else self._get, ranges))
            return
        answers = kind not in (PduType.CLEANUPSET, PduType.RESPONSE)
        try:
            context, body = decode_body(header, payload)
        except ParseError as exc:
            self.logger.warning("agentx: malformed PDU (type %d) from the master: %s",
                                kind, exc)
            if answers:
                session.send(encode_response(header, AgentxError.PARSE_ERROR))
            return
        if isinstance(body, Close):
            session.abort(f"the master closed the session ({_close_reason(body.reason)})")
            return
        if header.session_id != session.session_id:
            if answers:
                session.send(encode_response(header, AgentxError.NOT_OPEN))
            return
        if context is not None:
            session.send(encode_response(header, AgentxError.UNSUPPORTED_CONTEXT))
            return
        if isinstance(body, GetNext):
            session.send(self._answer(header, self._getnext, body.ranges))
        elif isinstance(body, Get):
            session.send(self._answer(header, self._get, body.ranges))
        elif isinstance(body, GetBulk):
            session.send(self._answer(header, self._getbulk, body))
        elif isinstance(body, TestSet):
            session.send(self._testset(header, body))
        elif isinstance(body, CommitSet):
            self._spawn(self._commitset(session, header))
        elif isinstance(body, UndoSet):
            session.send(self._undoset(header))
        elif isinstance(body, CleanupSet):
            self._sets.pop(header.transaction_id, None)
        elif answers:
            self.logger.warning("agentx: the master sent a %s PDU, which a subagent does not "
                                "handle", PduType(kind).name)
            session.send(encode_response(header, AgentxError.PROCESSING_ERROR))

    def _answer(self, header: Header, build: Callable[[OidTable, Any, bool], bytes],
                arg: Any) -> bytes:
        try:
            return encode_response(header, 0, 0, build(self._current_table(), arg,
                                                       header.big_endian))
        except _VarbindError as exc:
            self.logger.warning("agentx: cannot encode %s: %s", format_oid(exc.oid), exc)
            return encode_response(header, ErrorStatus.GEN_ERR, exc.index + 1)
        except Exception as exc:
            self.logger.error("agentx: cannot answer a %s: %s: %s", PduType(header.type).name,
                              type(exc).__name__, exc)
            return encode_response(header, ErrorStatus.GEN_ERR, 0)

    @staticmethod
    def _encoded(table: OidTable, i: int, big: bool, position: int) -> bytes:
        """The encoding of entry ``i``, cached per table (network byte order only)."""
        if big:
            cache = table.scratch.get(_CACHE_KEY)
            if cache is None:
                cache = table.scratch[_CACHE_KEY] = {}
            data = cache.get(i)
            if data is None:
                data = cache[i] = _encode(table.oids[i], table.values[i], True, position)
            return data
        return _encode(table.oids[i], table.values[i], False, position)

    def _get(self, table: OidTable, ranges: Sequence[SearchRange], big: bool) -> bytes:
        """RFC 2741 7.2.3.1: the value, else noSuchObject/noSuchInstance, named start."""
        oids, out = table.oids, []
        for position, r in enumerate(ranges):
            i = bisect_left(oids, r.start)
            if i < len(oids) and oids[i] == r.start:
                out.append(self._encoded(table, i, big, position))
            else:
                out.append(_encode(r.start, table.get(r.start), big, position))
        return b"".join(out)

    def _next_index(self, oids: list[OID], start: OID, include: bool, end: OID) -> int:
        """Index of the first entry in [start, end) (start only when ``include``), or -1."""
        i = bisect_left(oids, start) if include else bisect_right(oids, start)
        if i < len(oids) and (not end or oids[i] < end):
            return i
        return -1

    def _getnext(self, table: OidTable, ranges: Sequence[SearchRange], big: bool) -> bytes:
        """RFC 2741 7.2.3.2: the first variable in the range, else endOfMibView named start."""
        oids, out = table.oids, []
        for position, r in enumerate(ranges):
            i = self._next_index(oids, r.start, r.include, r.end)
            out.append(self._encoded(table, i, big, position) if i >= 0
                       else _encode(r.start, END_OF_MIB_VIEW, big, position))
        return b"".join(out)

    def _getbulk(self, table: OidTable, body: GetBulk, big: bool) -> bytes:
        """RFC 2741 7.2.3.3: non-repeaters as GetNext, then up to max_repetitions rounds."""
        ranges = body.ranges
        split = min(body.non_repeaters, len(ranges))
        out = [self._getnext(table, ranges[:split], big)]
        repeaters = ranges[split:]
        if not repeaters:
            return b"".join(out)
        oids = table.oids
        cursors = [(r.start, r.include) for r in repeaters]
        rounds = min(body.max_repetitions, max(1, MAX_BULK_VARBINDS // len(repeaters)))
        position = split
        for _ in range(rounds):
            finished = True
            for j, r in enumerate(repeaters):
                start, include = cursors[j]
                i = self._next_index(oids, start, include, r.end)
                if i >= 0:
                    out.append(self._encoded(table, i, big, position))
                    cursors[j] = (oids[i], False)
                    finished = False
                else:
                    out.append(_encode(start, END_OF_MIB_VIEW, big, position))
                position += 1
            if finished:
                break
        return b"".join(out)

    def _testset(self, header: Header, body: TestSet) -> bytes:
        """Plan the SET (nothing changes); remember the plan for CommitSet."""
        try:
            plan = self.view.plan_set(list(body.varbinds), writable=self.writable)
        except SetFailure as exc:
            return encode_response(header, int(exc.status), exc.index + 1)
        except Exception as exc:
            self.logger.error("agentx: cannot check a SET: %s: %s", type(exc).__name__, exc)
            return encode_response(header, ErrorStatus.GEN_ERR, 0)
        self._sets[header.transaction_id] = _SetTransaction(plan)
        return encode_response(header)

    async def _commitset(self, session: Session, header: Header) -> None:
        """Commit the planned SET in a worker thread, within ``timeout``."""
        transaction = self._sets.get(header.transaction_id)
        if transaction is None:
            self.logger.warning("agentx: CommitSet for unknown transaction %d",
                                header.transaction_id)
            session.send(encode_response(header, ErrorStatus.COMMIT_FAILED, 0))
            return
        error, index = 0, 0
        try:
            async with asyncio.timeout(self.timeout):
                await asyncio.to_thread(transaction.plan.commit)
        except SetFailure as exc:
            error, index = int(exc.status), exc.index + 1
            self.logger.warning("agentx: SET failed: %s", exc)
        except TimeoutError:
            error = ErrorStatus.COMMIT_FAILED
            self.logger.warning("agentx: SET did not complete within %gs", self.timeout)
        except Exception as exc:
            error = ErrorStatus.COMMIT_FAILED
            self.logger.warning("agentx: SET failed: %s: %s", type(exc).__name__, exc)
        transaction.committed = not error
        transaction.failure = error
        if error != ErrorStatus.COMMIT_FAILED:  # something changed: serve the new state
            await self._refresh()
        session.send(encode_response(header, error, index))

    def _undoset(self, header: Header) -> bytes:
        """Undo: a failed commit undid itself; a done change cannot be taken back."""
        transaction = self._sets.get(header.transaction_id)
        if transaction is None or not (transaction.committed
                                       or transaction.failure == ErrorStatus.UNDO_FAILED):
            return encode_response(header)
        self.logger.warning("agentx: cannot undo a committed SET (transaction %d)",
                            header.transaction_id)
        return encode_response(header, ErrorStatus.UNDO_FAILED, 0)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _Refused(Exception):
    """The master answered Open with an error."""


class _VarbindError(Exception):
    """A varbind of the view that AgentX cannot encode."""

    def __init__(self, oid: OID, index: int, message: str) -> None:
        super().__init__(message)
        self.oid, self.index = oid, index


def _encode(oid: OID, value: Value, big: bool, position: int) -> bytes:
    try:
        return encode_varbind(oid, value, big)
    except EncodeError as exc:
        raise _VarbindError(oid, position, str(exc)) from None


def _reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _close_reason(code: int) -> str:
    try:
        return CloseReason(code).name.lower()
    except ValueError:
        return f"reason {code}"
