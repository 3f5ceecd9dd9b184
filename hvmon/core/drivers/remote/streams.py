"""Client ends of byte streams: volume download and upload with credit flow control.

A stream shares its id with the CALL that opened it. The receiver of data
grants credit in chunks (STREAM_CREDIT); the sender never has more chunks in
flight than it was granted, so each side buffers at most one window.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from hvmon.core.drivers.remote import codec
from hvmon.core.drivers.remote.framing import FrameType
from hvmon.core.errors import HvmonError, InvalidArgument, NoConnect

if TYPE_CHECKING:
    from hvmon.core.drivers.remote.transport import Transport

_END = object()


def _abort_error(payload: bytes) -> HvmonError:
    try:
        return codec.decode_error(json.loads(payload or b"{}"))
    except (TypeError, ValueError):
        return NoConnect("the daemon aborted the stream")


class DownloadSink:
    """Where the reader thread puts a download's frames (registered by stream id).

    Kept apart from :class:`DownloadStream` so that the caller dropping the
    stream really drops it: the transport's reference is to the sink only.
    """

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.queued = 0
        #: most chunks ever waiting here (bounded by the credit window)
        self.high_water = 0

    def on_frame(self, kind: FrameType, payload: bytes) -> None:
        if kind == FrameType.STREAM_DATA:
            with self._lock:
                self.queued += 1
                self.high_water = max(self.high_water, self.queued)
            self.queue.put(payload)
        elif kind == FrameType.STREAM_END:
            self.queue.put(_END)
        elif kind == FrameType.STREAM_ABORT:
            self.queue.put(_abort_error(payload))

    def on_reply(self) -> None:
        """The opening call was answered; data follows once credit is granted."""

    def fail(self, error: HvmonError) -> None:
        self.queue.put(error)

    def take(self) -> Any:
        item = self.queue.get()
        if isinstance(item, bytes):
            with self._lock:
                self.queued -= 1
        return item


class DownloadStream(Iterator[bytes]):
    """Iterates the chunks the daemon sends; closing or dropping it aborts the stream."""

    def __init__(self, transport: Transport, sink: DownloadSink, ident: int,
                 window: int) -> None:
        self._transport = transport
        self._sink = sink
        self._window = window
        self._consumed = 0
        self.ident = ident
        self.done = False
        transport.send_json(FrameType.STREAM_CREDIT, ident, {"n": window})

    @property
    def high_water(self) -> int:
        return self._sink.high_water

    def __iter__(self) -> DownloadStream:
        return self

    def __next__(self) -> bytes:
        if self.done:
            raise StopIteration
        item = self._sink.take()
        if item is _END:
            self._finish()
            raise StopIteration
        if isinstance(item, HvmonError):
            self._finish()
            raise item
        self._consumed += 1
        if self._consumed >= max(1, self._window // 2):
            grant, self._consumed = self._consumed, 0
            # a lost connection is reported by the next read
            with contextlib.suppress(HvmonError):
                self._transport.send_json(FrameType.STREAM_CREDIT, self.ident, {"n": grant})
        return item

    def _finish(self) -> None:
        self.done = True
        self._transport.forget(self.ident)
        self._transport.note_backlog(self._sink.high_water)

    def close(self) -> None:
        """Stop early: the daemon is told to abort and drops the rest."""
        if self.done:
            return
        self._finish()
        with contextlib.suppress(HvmonError):
            self._transport.send(FrameType.STREAM_ABORT, self.ident)

    def __del__(self) -> None:
        if not self.done:
            self.done = True
            self._transport.forget(self.ident)
            self._transport.send_later(FrameType.STREAM_ABORT, self.ident)


class UploadStream:
    """Sends chunks as the daemon grants credit; its reply ends the upload."""

    def __init__(self, transport: Transport, chunk: int) -> None:
        self._transport = transport
        self._chunk = chunk
        self._cond = threading.Condition()
        self._credit = 0
        self._closed: HvmonError | None = None
        self._answered = False
        self.ident = 0

    def on_frame(self, kind: FrameType, payload: bytes) -> None:
        with self._cond:
            if kind == FrameType.STREAM_CREDIT:
                try:
                    self._credit += int(json.loads(payload)["n"])
                except (ValueError, KeyError, TypeError):
                    self._closed = NoConnect("the daemon sent a malformed credit")
            elif kind == FrameType.STREAM_ABORT:
                self._closed = _abort_error(payload)
            self._cond.notify_all()

    def on_reply(self) -> None:
        with self._cond:
            self._answered = True
            self._cond.notify_all()

    def fail(self, error: HvmonError) -> None:
        with self._cond:
            self._closed = error
            self._cond.notify_all()

    @property
    def error(self) -> HvmonError | None:
        """Why the stream died early (lost connection, daemon abort), if it did."""
        return self._closed

    def _take_credit(self) -> bool:
        """Wait for one credit; False once the daemon answered or the stream died."""
        with self._cond:
            while self._credit <= 0 and not self._answered and self._closed is None:
                self._cond.wait()
            if self._answered or self._closed is not None:
                return False
            self._credit -= 1
            return True

    def pump(self, ident: int, chunks: Iterable[bytes]) -> None:
        """Send every chunk, then STREAM_END; stops early when the daemon answers.

        An exception from ``chunks`` aborts the stream and propagates.
        """
        self.ident = ident
        try:
            for chunk in chunks:
                if not isinstance(chunk, bytes | bytearray | memoryview):
                    raise InvalidArgument(f"upload chunks must be bytes, not "
                                          f"{type(chunk).__name__}")
                view = memoryview(chunk).cast("B")
                for start in range(0, len(view), self._chunk):
                    if not self._take_credit():
                        return
                    self._transport.send(FrameType.STREAM_DATA, ident,
                                         bytes(view[start:start + self._chunk]))
        except BaseException:
            if not self._answered:
                with contextlib.suppress(HvmonError):
                    self._transport.send(FrameType.STREAM_ABORT, ident)
            raise
        if not self._answered and self._closed is None:
            self._transport.send(FrameType.STREAM_END, ident)
