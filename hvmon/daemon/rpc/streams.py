"""Server ends of byte streams, bridging the async connection and the sync driver.

:class:`DownloadPump` pulls the driver's chunk iterator in a worker thread and
sends a chunk only when the client holds credit. :class:`UploadBridge` is the
sync ``chunks`` iterable handed to ``Driver.volume_upload``; it grants the client
one credit for every chunk the driver takes, so at most one window is queued.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Executor
from typing import Any

from hvmon.core.errors import HvmonError, InvalidArgument

_END = object()


class DownloadPump:
    """Sends a driver iterator's bytes as chunks the client has granted credit for."""

    def __init__(self, iterator: Iterator[bytes], chunk: int) -> None:
        self._iterator = iterator
        self._chunk = chunk
        self._credit = 0
        self._wake = asyncio.Event()
        self.aborted = False

    def add_credit(self, count: int) -> None:
        self._credit += count
        self._wake.set()

    def abort(self) -> None:
        self.aborted = True
        self._wake.set()

    async def run(self, executor: Executor, send: Callable[[bytes], Awaitable[None]]) -> bool:
        """Pump to the end (True) or until aborted (False); driver errors propagate."""
        loop = asyncio.get_running_loop()
        while not self.aborted:
            piece = await loop.run_in_executor(executor, next, self._iterator, _END)
            if piece is _END:
                return True
            view = memoryview(piece)
            for start in range(0, len(view), self._chunk):
                while self._credit <= 0 and not self.aborted:
                    self._wake.clear()
                    await self._wake.wait()
                if self.aborted:
                    return False
                self._credit -= 1
                await send(bytes(view[start:start + self._chunk]))
        return False

    def close(self) -> None:
        """Close the driver's iterator (runs its cleanup); call from a worker thread."""
        close = getattr(self._iterator, "close", None)
        if close is not None:
            close()


class UploadBridge:
    """The ``chunks`` iterable of an upload, fed from the connection's frames.

    ``feed``/``finish``/``abort`` run on the event loop; iteration runs in the
    driver's worker thread. ``grant(n)`` must be thread-safe: it is called from
    that worker as chunks are taken.
    """

    def __init__(self, window: int, chunk: int, grant: Callable[[int], None]) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._window = window
        self._chunk = chunk
        self._grant = grant
        self._credit = window  # what the client may still send
        self.closed = False
        #: most chunks ever queued here (bounded by the window)
        self.high_water = 0

    @property
    def credit(self) -> int:
        return self._credit

    def granted(self, count: int) -> None:
        """Book credit sent to the client (loop thread)."""
        self._credit += count

    def feed(self, data: bytes) -> None:
        if self.closed:
            return
        if len(data) > self._chunk:
            self.abort(InvalidArgument(f"upload chunk of {len(data)} bytes exceeds the "
                                       f"{self._chunk}-byte limit"))
            return
        if self._credit <= 0:
            self.abort(InvalidArgument("upload data sent without credit"))
            return
        self._credit -= 1
        self.high_water = max(self.high_water, self._window - self._credit)
        self._queue.put(data)

    def finish(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put(_END)

    def abort(self, error: HvmonError) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put(error)

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, HvmonError):
                raise item
            self._grant(1)
            yield item
