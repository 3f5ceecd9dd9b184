"""One client connection on the daemon: reads frames, runs calls, pumps streams.

The read loop never runs driver code: calls go to the server's thread pool as
tasks (answered by serial, possibly out of order), stream frames are routed to
their stream. A frame with a bad length loses the framing and ends the
connection after an ERROR; any other bad frame gets an ERROR and the session
goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hvmon.core.access import AccessGate, ApiSpec, Identity
from hvmon.core.drivers.remote import codec, framing
from hvmon.core.drivers.remote.framing import FrameType
from hvmon.core.errors import (
    HvmonError,
    InternalError,
    InvalidArgument,
    NoConnect,
    OperationFailed,
    OperationInvalid,
)
from hvmon.core.events import DomainEventRecord
from hvmon.core.uri import parse_uri
from hvmon.daemon.rpc import dispatch, procedures
from hvmon.daemon.rpc.streams import DownloadPump, UploadBridge

if TYPE_CHECKING:
    from hvmon.core.drivers.base import Driver
    from hvmon.daemon.rpc.security import Security
    from hvmon.daemon.rpc.server import RpcServer

log = logging.getLogger(__name__)

#: calls one client may have running at once; more are refused, not queued
MAX_INFLIGHT = 128
_FRAME_TYPES = frozenset(FrameType)
#: unsent bytes after which a client that does not read its events is dropped
EVENT_BACKLOG = 16 * 1024 * 1024


class Session:
    """The daemon's side of one client connection."""

    def __init__(self, server: RpcServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, *, readonly_socket: bool, path: Path | str,
                 identity: Identity | None = None, refusal: HvmonError | None = None) -> None:
        self.server = server
        self.readonly_socket = readonly_socket
        #: the socket path, or ``host:port`` of a TLS listener
        self.path = path
        #: who the transport says the client is (SO_PEERCRED, certificate DN)
        self.identity = identity or Identity("unix")
        #: why this client may not open (a TLS DN not on the allow-list), if it may not
        self.refusal = refusal
        self.gate: AccessGate | None = None
        self._reader = reader
        self._writer = writer
        self._loop = asyncio.get_running_loop()
        self._calls: dict[int, asyncio.Task[None]] = {}
        self._downloads: dict[int, DownloadPump] = {}
        self._uploads: dict[int, UploadBridge] = {}
        self._event_id: int | None = None
        self._ending = False

    @property
    def stream_count(self) -> int:
        return len(self._downloads) + len(self._uploads)

    # --- the read loop ----------------------------------------------------------
    async def run(self) -> None:
        try:
            while not self._ending:
                head = await self._reader.readexactly(framing.LENGTH.size)
                try:
                    size = framing.check_length(framing.LENGTH.unpack(head)[0])
                except framing.FramingLost as exc:
                    self._send_error(0, InvalidArgument(str(exc)))
                    break
                body = await self._reader.readexactly(size)
                kind, flags, reserved, ident = framing.unpack_header(body)
                payload = body[framing.HEADER.size:]
                try:
                    self._route(kind, flags, reserved, ident, payload)
                except HvmonError as exc:
                    self._send_error(ident, exc)
                except Exception as exc:  # a bug must not take the connection down
                    log.exception("rpc: frame handling failed")
                    self._send_error(ident, InternalError(
                        f"internal error: {type(exc).__name__}: {exc}"))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            await self._cleanup()

    def _route(self, kind: int, flags: int, reserved: int, ident: int, payload: bytes) -> None:
        if reserved:
            raise InvalidArgument("reserved header bytes must be zero")
        if kind == FrameType.CALL:
            self._on_call(ident, framing.load(flags, payload))
            return
        if kind not in _FRAME_TYPES:
            raise InvalidArgument(f"unknown frame type {kind}")
        if self.gate is None:
            raise OperationInvalid("connection not open: the first call must be 'open'")
        if kind == FrameType.STREAM_DATA:
            if flags:
                raise InvalidArgument("stream data takes no flags")
            bridge = self._uploads.get(ident)
            if bridge is not None:
                bridge.feed(payload)
        elif kind == FrameType.STREAM_END:
            if ident in self._uploads:
                self._uploads[ident].finish()
        elif kind == FrameType.STREAM_ABORT:
            if ident in self._uploads:
                self._uploads[ident].abort(OperationFailed("upload aborted by the client"))
            if ident in self._downloads:
                self._downloads[ident].abort()
        elif kind == FrameType.STREAM_CREDIT:
            count = _credit(framing.load(flags, payload))
            if ident in self._downloads:
                self._downloads[ident].add_credit(count)
        else:
            raise InvalidArgument(f"unexpected frame type {FrameType(kind).name} from a client")

    # --- calls ------------------------------------------------------------------
    def _on_call(self, serial: int, message: Any) -> None:
        if not isinstance(message, dict):
            raise InvalidArgument("a call must be an object")
        proc = procedures.lookup(message.get("proc"))
        args = codec.decode(message.get("args", []))
        kwargs = codec.decode(message.get("kwargs", {}))
        if proc.name == "open":
            self._open(serial, kwargs)
            return
        if self.gate is None:
            raise OperationInvalid("connection not open: the first call must be 'open'")
        if proc.kind == "session":
            self._session_call(serial, proc, args, kwargs)
            return
        if serial in self._calls:
            raise InvalidArgument(f"serial {serial} is already in use")
        if len(self._calls) >= MAX_INFLIGHT:
            raise OperationFailed(f"too many calls in flight (limit {MAX_INFLIGHT})")
        call = dispatch.bind(proc.name, args, kwargs)
        spec = proc.resolve(call.arguments, self.server.registry)
        secure = procedures.secure_call(spec, call.arguments)
        self.gate.check(spec, secure)
        if self.server.security.audited(spec, secure):
            call = AuditedCall(call, self.server.security, self.identity, spec)
        task = self._loop.create_task(self._run_call(serial, proc, call))
        self._calls[serial] = task
        task.add_done_callback(lambda _t: self._calls.pop(serial, None))

    async def _run_call(self, serial: int, proc: procedures.Procedure,
                        call: dispatch.BoundCall) -> None:
        try:
            if proc.kind == "download":
                await self._download(serial, call)
            elif proc.kind == "upload":
                await self._upload(serial, call)
            elif proc.kind == "snapshot":
                flags, payload = await self.server.snapshot_reply(call.arguments["max_age"])
                await self._send_async(FrameType.REPLY, serial, payload, flags)
            elif proc.kind == "info":
                info = await self.server.run(self.server.daemon_info)
                await self._reply(serial, {"json": info})
            else:
                result = await self.server.run(call.run, self.server.driver)
                await self._reply(serial, {"ret": codec.encode(result)})
        except HvmonError as exc:
            self._send_error(serial, exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("rpc: %s failed", proc.name)
            self._send_error(serial, InternalError(
                f"internal error in {proc.name}: {type(exc).__name__}: {exc}"))

    def _open(self, serial: int, kwargs: Any) -> None:
        if self.gate is not None:
            raise OperationInvalid("connection is already open")
        uri, readonly = kwargs.get("uri"), kwargs.get("readonly", False)
        protocol = kwargs.get("protocol", framing.PROTOCOL_VERSION)
        if not isinstance(uri, str) or type(readonly) is not bool:
            raise InvalidArgument("open needs uri (a string) and readonly (a boolean)")
        served = self.server.served_uri
        try:
            if self.refusal is not None:
                raise self.refusal
            if protocol != framing.PROTOCOL_VERSION:
                raise NoConnect(f"protocol version {protocol!r:.20} is not supported by the "
                                f"daemon at {self.path} (it speaks "
                                f"{framing.PROTOCOL_VERSION})")
            wanted, have = parse_uri(uri), parse_uri(served)
            if (wanted.driver, wanted.path) != (have.driver, have.path):
                raise NoConnect(f"daemon at {self.path} serves {served}, not {uri}")
        except HvmonError as exc:
            self._send_error(serial, exc)
            self.end()
            return
        self.gate = self.server.security.gate(self.identity, self.readonly_socket or readonly)
        self._reply_now(serial, {"json": {
            "uri": served, "readonly": self.gate.readonly,
            "protocol": framing.PROTOCOL_VERSION, "version": self.server.version,
            "window": self.server.window, "chunk": self.server.chunk,
        }})

    def _session_call(self, serial: int, proc: procedures.Procedure, args: Any,
                      kwargs: Any) -> None:
        assert self.gate is not None
        if args or kwargs:
            raise InvalidArgument(f"{proc.name} takes no arguments")
        if proc.spec is not None:
            self.gate.check(self.server.registry[proc.spec], False)
        if proc.name == "close":
            self._reply_now(serial, {"ret": None})
            self.end()
        elif proc.name == "events_start":
            if self._event_id is None:
                self._event_id = self.server.driver.events.register(self._on_event)
            self._reply_now(serial, {"ret": None})
        elif proc.name == "events_stop":
            self._stop_events()
            self._reply_now(serial, {"ret": None})

    # --- byte streams -------------------------------------------------------------
    async def _download(self, serial: int, call: dispatch.BoundCall) -> None:
        iterator = await self.server.run(call.run, self.server.driver)
        pump = DownloadPump(iterator, self.server.chunk)
        self._downloads[serial] = pump
        try:
            await self._reply(serial, {"ret": None})

            async def send(data: bytes) -> None:
                await self._send_async(FrameType.STREAM_DATA, serial, data)

            try:
                finished = await pump.run(self.server.executor, send)
            except HvmonError as exc:
                self._send_json(FrameType.STREAM_ABORT, serial, exc.to_dict())
            else:
                if finished:
                    await self._send_async(FrameType.STREAM_END, serial)
        finally:
            self._downloads.pop(serial, None)
            with contextlib.suppress(Exception):
                await self.server.run(pump.close)

    async def _upload(self, serial: int, call: dispatch.BoundCall) -> None:
        def grant(count: int) -> None:
            with contextlib.suppress(RuntimeError):  # loop closed: nobody to tell
                self._loop.call_soon_threadsafe(self._grant, serial, count)

        bridge = UploadBridge(self.server.window, self.server.chunk, grant)
        self._uploads[serial] = bridge
        try:
            future = self.server.run(call.run, self.server.driver, chunks=bridge)
            self._send_json(FrameType.STREAM_CREDIT, serial, {"n": self.server.window})
            written = await future
            await self._reply(serial, {"ret": codec.encode(written)})
        finally:
            bridge.abort(OperationFailed("upload ended"))
            self._uploads.pop(serial, None)
            self.server.note_backlog(bridge.high_water)

    def _grant(self, serial: int, count: int) -> None:
        bridge = self._uploads.get(serial)
        if bridge is not None and not bridge.closed:
            bridge.granted(count)
            self._send_json(FrameType.STREAM_CREDIT, serial, {"n": count})

    # --- events -------------------------------------------------------------------
    def _on_event(self, record: DomainEventRecord) -> None:
        """Called in the emitting (driver) thread."""
        message = {"uuid": record.uuid, "name": record.name, "id": record.id,
                   "event": int(record.event), "detail": int(record.detail),
                   "timestamp": record.timestamp}
        flags, payload = framing.dump(message)
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._send_event, payload, flags)

    def _send_event(self, payload: bytes, flags: int) -> None:
        if self._writer.transport.get_write_buffer_size() > EVENT_BACKLOG:
            log.warning("rpc: dropping a client on %s that does not read its events",
                        self.path.name)
            self.end(abort=True)
            return
        self._send(FrameType.EVENT, 0, payload, flags)

    def _stop_events(self) -> None:
        event_id, self._event_id = self._event_id, None
        if event_id is not None:
            self.server.driver.events.deregister(event_id)

    # --- sending ------------------------------------------------------------------
    def _send(self, kind: FrameType, ident: int, payload: bytes = b"", flags: int = 0) -> None:
        if self._writer.is_closing():
            return
        self._writer.write(framing.pack(kind, ident, payload, flags))

    async def _send_async(self, kind: FrameType, ident: int, payload: bytes = b"",
                          flags: int = 0) -> None:
        self._send(kind, ident, payload, flags)
        try:
            await self._writer.drain()
        except ConnectionError:
            self.end()

    def _send_json(self, kind: FrameType, ident: int, message: Any) -> None:
        flags, payload = framing.dump(message)
        self._send(kind, ident, payload, flags)

    def _reply_now(self, serial: int, message: Any) -> None:
        self._send_json(FrameType.REPLY, serial, message)

    async def _reply(self, serial: int, message: Any) -> None:
        flags, payload = framing.dump(message)
        await self._send_async(FrameType.REPLY, serial, payload, flags)

    def _send_error(self, ident: int, error: HvmonError) -> None:
        self._send_json(FrameType.ERROR, ident, error.to_dict())

    # --- the end ------------------------------------------------------------------
    def end(self, abort: bool = False) -> None:
        """Close the connection once what was sent is flushed (``abort``: at once).

        The read loop then sees the end of the stream and cleans up.
        """
        self._ending = True
        if abort:
            self._writer.transport.abort()
        else:
            self._writer.close()

    async def _cleanup(self) -> None:
        self._ending = True
        self._stop_events()
        for bridge in list(self._uploads.values()):
            bridge.abort(NoConnect("the client connection ended"))
        for pump in list(self._downloads.values()):
            pump.abort()
        tasks = list(self._calls.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


class AuditedCall(dispatch.BoundCall):
    """A bound call whose run is recorded in the audit log (begin before, end after)."""

    def __init__(self, call: dispatch.BoundCall, security: Security, who: Identity,
                 spec: ApiSpec) -> None:
        super().__init__(call.name, call.args, call.kwargs, call.arguments)
        object.__setattr__(self, "_audit", (security, who, spec))

    def run(self, driver: Driver, **extra: Any) -> Any:
        security, who, spec = self._audit  # type: ignore[attr-defined]
        parent = super().run
        return security.run(who, spec, self.name, self.arguments, driver,
                            lambda: parent(driver, **extra))


def _credit(message: Any) -> int:
    count = message.get("n") if isinstance(message, dict) else None
    if type(count) is not int or not 0 < count <= 1 << 20:
        raise InvalidArgument("stream credit needs a count n between 1 and 1048576")
    return count
