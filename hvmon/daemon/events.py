"""A bounded async stream of lifecycle events for one agent.

Drivers deliver events in their own threads; the stream keeps them in a
``deque`` with a maximum length and wakes the agent's loop with
``call_soon_threadsafe`` only when the buffer turns non-empty. A slow agent
therefore loses the oldest events (counted in :attr:`EventStream.dropped`)
instead of growing memory or flooding the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from typing import TYPE_CHECKING

from hvmon.core.errors import HvmonError

if TYPE_CHECKING:
    from hvmon.core.api import Connection, DomainEvent

#: events a stream holds before it drops the oldest
DEFAULT_MAXLEN = 1024


class EventStream:
    """``async for event in stream`` yields :class:`hvmon.DomainEvent` until closed."""

    def __init__(self, connection: Connection, loop: asyncio.AbstractEventLoop,
                 maxlen: int = DEFAULT_MAXLEN) -> None:
        if maxlen < 1:
            raise ValueError("an event stream holds at least one event")
        self._loop = loop
        self._connection = connection
        self._buffer: deque[DomainEvent] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._ready = asyncio.Event()
        self._closed = False
        #: events dropped because the consumer was too slow
        self.dropped = 0
        self._callback_id: int | None = connection.domain_event_register(self._on_event)

    @property
    def pending(self) -> int:
        """Events waiting to be read."""
        return len(self._buffer)

    def _on_event(self, event: DomainEvent) -> None:
        """Driver thread (or the loop): buffer ``event``, wake the consumer if it waits."""
        with self._lock:
            if self._closed:
                return
            if len(self._buffer) == self._buffer.maxlen:
                self.dropped += 1
            wake = not self._buffer
            self._buffer.append(event)
        if wake:
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            self._loop.call_soon_threadsafe(self._ready.set)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> DomainEvent:
        while True:
            with self._lock:
                if self._buffer:
                    return self._buffer.popleft()
                if self._closed:
                    raise StopAsyncIteration
                self._ready.clear()
            await self._ready.wait()

    def close(self) -> None:
        """Stop receiving events and end the iteration; idempotent, any thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            callback_id, self._callback_id = self._callback_id, None
        if callback_id is not None:
            with contextlib.suppress(HvmonError):  # the connection dropped it already
                self._connection.domain_event_deregister(callback_id)
        self._wake()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
