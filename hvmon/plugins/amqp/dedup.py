"""Remember answered request ids so a redelivered request is answered, not run again.

RabbitMQ redelivers a request whose ack was lost with its connection; the
agent keys every request by ``(user, id)`` and keeps the reply of the last
``size`` ones in memory. A duplicate that arrives while the first copy still
runs waits for that run's reply.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable


class RequestLog:
    """A bounded map from request key to its reply (or the run producing it)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("the request log holds at least one entry")
        self.size = size
        self._done: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._running: dict[tuple[str, str], asyncio.Future[bytes]] = {}
        #: requests answered from the log instead of being run
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._done)

    async def once(self, key: tuple[str, str], run: Callable[[], Awaitable[bytes]]) -> bytes:
        """The reply for ``key``: ``run()``'s the first time, the remembered one after."""
        if key in self._done:
            self.duplicates += 1
            self._done.move_to_end(key)
            return self._done[key]
        running = self._running.get(key)
        if running is not None:
            self.duplicates += 1
            return await asyncio.shield(running)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            reply = await run()
        except BaseException as exc:
            del self._running[key]
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            elif not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning
            raise
        del self._running[key]
        future.set_result(reply)
        self._done[key] = reply
        while len(self._done) > self.size:
            self._done.popitem(last=False)
        return reply
