"""The client end of one daemon connection: a socket, a reader thread, pending calls.

Calls may come from several threads at once: each frame is written whole under
a lock, and the reader thread hands every reply to the caller waiting on its
serial. Event frames go to ``on_event``; byte-stream frames go to the stream
registered under their id (see :mod:`hvmon.core.drivers.remote.streams`).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from hvmon.core.drivers.remote import codec, framing
from hvmon.core.drivers.remote.framing import FrameType
from hvmon.core.errors import HvmonError, InvalidArgument, NoConnect

if TYPE_CHECKING:
    from hvmon.core.drivers.remote.tls import TlsPump

log = logging.getLogger(__name__)

#: how long close() waits for the daemon to acknowledge the goodbye
GOODBYE_TIMEOUT = 5.0


class StreamSink(Protocol):
    """What the reader thread feeds a byte stream's frames to."""

    def on_frame(self, kind: FrameType, payload: bytes) -> None: ...

    def on_reply(self) -> None: ...

    def fail(self, error: HvmonError) -> None: ...


class Pending:
    """One call waiting for its REPLY or ERROR."""

    __slots__ = ("_done", "error", "result")

    def __init__(self) -> None:
        self._done = threading.Event()
        self.result: Any = None
        self.error: HvmonError | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def resolve(self, result: Any = None, error: HvmonError | None = None) -> None:
        if not self._done.is_set():
            self.result, self.error = result, error
            self._done.set()

    def wait(self, timeout: float | None = None) -> Any:
        if not self._done.wait(timeout):
            raise NoConnect("no answer from the daemon in time")
        if self.error is not None:
            raise self.error
        return self.result


def connect_unix(path: Path) -> socket.socket:
    """A connected UNIX stream socket, or a one-line :class:`NoConnect`."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise NoConnect(f"cannot connect to daemon at {path}: {reason}") from None
    return sock


class Transport:
    """Frames over one connected socket, demultiplexed by a reader thread."""

    def __init__(self, path: Path | str, on_event: Callable[[Any], None],
                 tls: TlsPump | None = None) -> None:
        #: where the daemon is: a socket path, or ``host:port`` for TLS (given ``tls``)
        self.path = path
        self._on_event = on_event
        self._tls = tls
        self._sock = tls.local if tls is not None else connect_unix(Path(path))
        self._file: BinaryIO = self._sock.makefile("rb", buffering=framing.STREAM_CHUNK)
        self._wlock = threading.Lock()
        self._lock = threading.Lock()
        self._serials = itertools.count(1)
        self._pending: dict[int, Pending] = {}
        self._streams: dict[int, StreamSink] = {}
        self._deferred: collections.deque[bytes] = collections.deque()
        self._lost: HvmonError | None = None
        self._closing = False
        self._answered = False
        #: most chunks a finished download stream ever had waiting (<= the window)
        self.max_backlog = 0
        self._reader = threading.Thread(target=self._read_loop, daemon=True,
                                        name=f"hvmon-remote-reader:{Path(path).name}")
        self._reader.start()

    # --- sending --------------------------------------------------------------
    def send(self, kind: FrameType, ident: int, payload: bytes = b"", flags: int = 0) -> None:
        """Write one frame (thread-safe); a dead connection raises :class:`NoConnect`."""
        frame = framing.pack(kind, ident, payload, flags)
        with self._wlock:
            self._check_alive()
            try:
                self._sock.sendall(frame)
                while self._deferred:
                    self._sock.sendall(self._deferred.popleft())
            except OSError:
                self._tls_lost()
                self._fail(self._lost_error())
                raise self._lost_error() from None

    def send_later(self, kind: FrameType, ident: int, payload: bytes = b"") -> None:
        """Send now if the write lock is free, else with the next frame.

        For finalizers, which may run in a thread that is in the middle of
        :meth:`send` (the garbage collector picks the moment).
        """
        if self._lost is not None:
            return
        self._deferred.append(framing.pack(kind, ident, payload))
        if self._wlock.acquire(blocking=False):
            try:
                while self._deferred and self._lost is None:
                    self._sock.sendall(self._deferred.popleft())
            except OSError:
                self._fail(self._lost_error())
            finally:
                self._wlock.release()

    def send_json(self, kind: FrameType, ident: int, message: Any) -> None:
        flags, payload = framing.dump(message)
        self.send(kind, ident, payload, flags)

    def note_backlog(self, chunks: int) -> None:
        """Record a finished stream's high-water mark."""
        self.max_backlog = max(self.max_backlog, chunks)

    # --- calls ----------------------------------------------------------------
    def begin(self, proc: str, args: tuple[Any, ...], kwargs: dict[str, Any],
              stream: StreamSink | None = None) -> tuple[int, Pending]:
        """Send a CALL; the caller waits on the returned :class:`Pending`."""
        try:
            message = {"proc": proc, "args": codec.encode(list(args)),
                       "kwargs": codec.encode(kwargs)}
        except TypeError as exc:
            raise InvalidArgument(f"{proc}: {exc}") from None
        pending = Pending()
        with self._lock:
            self._check_alive()
            serial = next(self._serials) & 0xFFFFFFFF
            self._pending[serial] = pending
            if stream is not None:
                self._streams[serial] = stream
        try:
            self.send_json(FrameType.CALL, serial, message)
        except HvmonError:
            self.forget(serial)
            raise
        return serial, pending

    def call(self, proc: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``proc`` and wait for its result (or typed error)."""
        serial, pending = self.begin(proc, args, kwargs)
        try:
            return pending.wait()
        finally:
            self.forget(serial)

    def forget(self, serial: int) -> None:
        """Drop a call's bookkeeping; late frames for it are ignored."""
        with self._lock:
            self._pending.pop(serial, None)
            self._streams.pop(serial, None)

    # --- receiving ------------------------------------------------------------
    def _read_loop(self) -> None:
        try:
            while True:
                head = self._file.read(framing.LENGTH.size)
                if len(head) < framing.LENGTH.size:
                    break
                size = framing.check_length(framing.LENGTH.unpack(head)[0])
                body = self._file.read(size)
                if len(body) < size:
                    break
                kind, flags, _, ident = framing.unpack_header(body)
                self._route(kind, flags, ident, body[framing.HEADER.size:])
        except (OSError, ValueError, framing.FramingLost, HvmonError) as exc:
            log.debug("remote: reader stops: %s", exc)
        except Exception:  # a bug here must still release every waiting caller
            log.exception("remote: reader failed")
        self._tls_lost()
        self._fail(self._lost_error())

    def _route(self, kind: int, flags: int, ident: int, payload: bytes) -> None:
        if kind in (FrameType.REPLY, FrameType.ERROR):
            self._answered = True
            with self._lock:
                pending = self._pending.get(ident)
                stream = self._streams.get(ident)
            message = framing.load(flags, payload)
            if pending is None:
                if ident == 0 and kind == FrameType.ERROR:
                    log.warning("remote: daemon reports: %s", message.get("message"))
                return
            if kind == FrameType.ERROR:
                pending.resolve(error=_error(message))
            else:
                pending.resolve(result=_result(message))
            if stream is not None:
                stream.on_reply()
        elif kind == FrameType.EVENT:
            self._on_event(framing.load(flags, payload))
        elif kind in (FrameType.STREAM_DATA, FrameType.STREAM_END, FrameType.STREAM_ABORT,
                      FrameType.STREAM_CREDIT):
            with self._lock:
                stream = self._streams.get(ident)
            if stream is not None:
                stream.on_frame(FrameType(kind), payload)
        else:
            raise InvalidArgument(f"unexpected frame type {kind} from the daemon")

    # --- failure and shutdown -----------------------------------------------
    def _lost_error(self) -> HvmonError:
        if self._lost is not None:
            return self._lost
        what = "is closed" if self._closing else "lost"
        return NoConnect(f"connection to daemon at {self.path} {what}")

    def _tls_lost(self) -> None:
        """Name the TLS failure that ended the connection, if there is one."""
        if self._tls is None or self._closing:
            return
        self._tls.join()
        if self._tls.error:
            self._fail(NoConnect(f"connection to daemon at {self.path} ended by TLS: "
                                 f"{self._tls.error}"))
        elif not self._answered:
            self._fail(NoConnect(f"connection to daemon at {self.path} closed during TLS "
                                 "set-up (was the client certificate signed by the "
                                 "daemon's CA?)"))

    def _check_alive(self) -> None:
        if self._lost is not None:
            raise self._lost

    def _fail(self, error: HvmonError) -> None:
        with self._lock:
            if self._lost is None:
                self._lost = error
            pending, streams = list(self._pending.values()), list(self._streams.values())
        for item in pending:
            item.resolve(error=error)
        for stream in streams:
            stream.fail(error)

    @property
    def alive(self) -> bool:
        return self._lost is None

    def close(self) -> None:
        """Say goodbye (best effort), stop the reader and close the socket."""
        if self._lost is None:
            self._closing = True
            try:
                serial, pending = self.begin("close", (), {})
                with contextlib.suppress(HvmonError):
                    pending.wait(GOODBYE_TIMEOUT)
                self.forget(serial)
            except HvmonError:
                pass
        self._closing = True
        self._fail(self._lost_error())
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        if self._reader is not threading.current_thread():
            self._reader.join()
        with contextlib.suppress(OSError):
            self._file.close()
        self._sock.close()
        if self._tls is not None:
            self._tls.join()


def _result(message: Any) -> Any:
    if not isinstance(message, dict):
        raise InvalidArgument("a reply must be an object")
    if "json" in message:
        return message["json"]
    return codec.decode(message.get("ret"))


def _error(message: Any) -> HvmonError:
    try:
        return codec.decode_error(message)
    except TypeError:
        return NoConnect("the daemon sent a malformed error")
