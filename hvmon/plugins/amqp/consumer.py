"""The request consumer: decode, run once, reply to ``reply_to``, then ack.

Manual acks come after the work and the reply, so a request in flight when
the connection drops is redelivered; the :class:`RequestLog` answers the
redelivered copy without running it again. A malformed request is answered
with an error when it has a ``reply_to``, and dead-lettered (rejected without
requeue into ``<prefix>.dead-letter``) when it has none. Nothing a message
holds can stop the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from hvmon.plugins.amqp.dedup import RequestLog
from hvmon.plugins.amqp.schema import (
    CONTENT_TYPE,
    RequestError,
    decode_request,
    encode,
    reply_body,
)

if TYPE_CHECKING:
    import aio_pika.abc

    from hvmon.plugins.amqp.dispatcher import Dispatcher

#: seconds a reply may wait for the broker (e.g. during a reconnect)
REPLY_TIMEOUT = 30.0


class RequestConsumer:
    """Consumes ``queue`` with manual acks; counts what it saw."""

    def __init__(self, queue: aio_pika.abc.AbstractQueue, channel: aio_pika.abc.AbstractChannel,
                 dispatcher: Dispatcher, *, max_bytes: int, dedup_size: int,
                 logger: logging.Logger | None = None) -> None:
        self.queue = queue
        self.channel = channel
        self.dispatcher = dispatcher
        self.max_bytes = max_bytes
        self.requests = RequestLog(dedup_size)
        self.log = logger or logging.getLogger(__name__)
        self.tag: str | None = None
        self.received = 0
        self.malformed = 0
        self.dead_lettered = 0
        self.unacked = 0  # acks lost with a dropped channel (the broker redelivers)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def duplicates(self) -> int:
        """Requests answered from the log (redeliveries, retries)."""
        return self.requests.duplicates

    async def start(self) -> None:
        self.tag = await self.queue.consume(self.on_message, no_ack=False)

    async def stop(self) -> None:
        """Cancel the consumer and any request still being handled (it will be redelivered)."""
        if self.tag is not None:
            tag, self.tag = self.tag, None
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.queue.cancel(tag)
        tasks, self._tasks = set(self._tasks), set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        """One delivery, handled in a task of our own.

        aio-pika cancels its callback tasks when the channel closes; the work
        (maybe already running in a thread) must not be abandoned half-way, or
        the redelivered copy would run it a second time. So the handling task
        is shielded: it finishes, records its reply and sends it on the
        restored channel, and the redelivered copy is answered from the log.
        """
        self.received += 1
        task = asyncio.get_running_loop().create_task(self._handle_safely(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.shield(task)

    async def _handle_safely(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        try:
            await self._handle(message)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the consumer must survive anything
            self.log.exception("request handling failed; dead-lettering the request")
            self.dead_lettered += 1
            with contextlib.suppress(Exception):  # never redeliver a poison message
                await message.reject(requeue=False)

    async def _handle(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        host = self.dispatcher.host
        try:
            request = decode_request(message.body, self.max_bytes)
        except RequestError as exc:
            self.malformed += 1
            if not message.reply_to:
                self.dead_lettered += 1
                self.log.warning("dead-lettered a malformed request without reply_to: %s", exc)
                with contextlib.suppress(Exception):
                    await message.reject(requeue=False)
                return
            self.log.info("malformed request: %s", exc)
            body = encode(reply_body(host, exc.request_id, None, error=exc))
            await self._reply(message, body)
            await self._ack(message)
            return
        user = message.user_id

        async def run() -> bytes:
            return encode(await self.dispatcher.execute(request, user))

        body = await self.requests.once((user or "", request.id), run)
        if message.reply_to:
            await self._reply(message, body, request.id)
        await self._ack(message)

    async def _reply(self, message: aio_pika.abc.AbstractIncomingMessage, body: bytes,
                     request_id: str | None = None) -> None:
        import aio_pika

        reply = aio_pika.Message(body, content_type=CONTENT_TYPE,
                                 correlation_id=message.correlation_id or request_id,
                                 delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT)
        try:
            async with asyncio.timeout(REPLY_TIMEOUT):
                await self.channel.default_exchange.publish(
                    reply, routing_key=message.reply_to or "", mandatory=False)
        except Exception as exc:  # noqa: BLE001 - the redelivered copy will be answered
            self.log.warning("could not send a reply to %s: %s: %s", message.reply_to,
                             type(exc).__name__, exc)

    async def _ack(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        try:
            await message.ack()
        except Exception as exc:  # noqa: BLE001 - its channel is gone; it will come back
            self.unacked += 1
            self.log.info("ack lost with the channel (%s); the broker redelivers", exc)
