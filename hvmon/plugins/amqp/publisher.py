"""Indications on the topic exchange: heartbeats, data snapshots and lifecycle events.

* heartbeats every ``heartbeat_interval`` (and at once when a console sends a
  locate on ``console.ind.locate``);
* one data message per class every ``data_interval``, and for the classes
  whose properties changed after each snapshot refresh (the cache's listener;
  a lifecycle event or a control call triggers a refresh);
* one event message per lifecycle event, as it happens.

Bodies are built in a worker thread; the loop only publishes. Heartbeats and
data expire in the broker (a late one is useless); events are persistent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hvmon.core.errors import HvmonError
from hvmon.plugins.amqp.config import Names
from hvmon.plugins.amqp.schema import (
    CLASSES,
    CONTENT_TYPE,
    class_objects,
    data_body,
    encode,
    event_body,
    fingerprint,
    heartbeat_body,
)

if TYPE_CHECKING:
    import aio_pika.abc

    from hvmon.core.api import DomainEvent
    from hvmon.core.snapshot.cache import SnapshotCache
    from hvmon.core.snapshot.model import Snapshot

#: seconds one publish may wait for its confirm (longer while reconnecting)
PUBLISH_TIMEOUT = 10.0
#: seconds between a lifecycle event and the snapshot refresh it triggers
REFRESH_DELAY = 0.1


class Publisher:
    """Publishes one host's indications; ``start()`` spawns its loops."""

    def __init__(self, exchange: aio_pika.abc.AbstractExchange, snapshots: SnapshotCache, *,
                 host: str, epoch: int, heartbeat_info: dict[str, Any],
                 heartbeat_interval: float, data_interval: float,
                 snapshot_max_age: float | None, logger: logging.Logger | None = None) -> None:
        self.exchange = exchange
        self.snapshots = snapshots
        self.host = host
        self.epoch = epoch
        self.heartbeat_info = heartbeat_info
        self.heartbeat_interval = heartbeat_interval
        self.data_interval = data_interval
        self.max_age = data_interval / 2 if snapshot_max_age is None else snapshot_max_age
        self.log = logger or logging.getLogger(__name__)
        self._tasks: list[asyncio.Task[Any]] = []
        self._changed = asyncio.Event()
        self._listener: int | None = None
        self._fingerprints: dict[str, int] = {}
        self._refresh_task: asyncio.Task[Any] | None = None
        self.published: dict[str, int] = dict.fromkeys(("heartbeat", "data", "event"), 0)
        self.failures = 0
        self.problem = ""

    # --- life cycle ----------------------------------------------------------------
    def start(self, events: Any) -> None:
        """Start the loops; ``events`` is the agent's ``ctx.events()`` stream."""
        loop = asyncio.get_running_loop()
        self._listener = self.snapshots.add_listener(
            lambda snap: loop.call_soon_threadsafe(self._changed.set))
        self._tasks = [loop.create_task(self._heartbeat_loop(), name="amqp-heartbeat"),
                       loop.create_task(self._data_loop(), name="amqp-data"),
                       loop.create_task(self._event_loop(events), name="amqp-events")]

    async def stop(self) -> None:
        if self._listener is not None:
            self.snapshots.remove_listener(self._listener)
            self._listener = None
        tasks = self._tasks + ([self._refresh_task] if self._refresh_task else [])
        self._tasks, self._refresh_task = [], None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- publishing ------------------------------------------------------------------
    async def publish(self, key: str, body: bytes, *, kind: str,
                      expiration: float | None = None) -> bool:
        """Publish and wait for the broker's confirm; False (and a health note) on failure."""
        import aio_pika

        mode = (aio_pika.DeliveryMode.PERSISTENT if kind == "event"
                else aio_pika.DeliveryMode.NOT_PERSISTENT)
        message = aio_pika.Message(body, content_type=CONTENT_TYPE, delivery_mode=mode,
                                   expiration=expiration, type=kind)
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                await self.exchange.publish(message, routing_key=key, mandatory=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the next interval tries again
            self.failures += 1
            self.problem = f"publish failed: {type(exc).__name__}: {exc}"
            self.log.warning("%s (%s)", self.problem, key)
            return False
        self.problem = ""
        self.published[kind] += 1
        return True

    def heartbeat(self) -> bytes:
        return encode(heartbeat_body(self.host, epoch=self.epoch,
                                     interval=self.heartbeat_interval,
                                     snap=self.snapshots.current(), **self.heartbeat_info))

    async def send_heartbeat(self) -> bool:
        return await self.publish(Names.heartbeat_key(self.host), self.heartbeat(),
                                  kind="heartbeat", expiration=3 * self.heartbeat_interval)

    def data_messages(self, snap: Snapshot, full: bool) -> list[tuple[str, bytes]]:
        """(routing key, body) per class: every class when ``full``, else the changed ones."""
        out = []
        for cls in CLASSES:
            objects = class_objects(snap, cls)
            mark = fingerprint(objects)
            if full or self._fingerprints.get(cls) != mark:
                out.append((Names.data_key(self.host, cls),
                            encode(data_body(snap, cls, self.host, self.epoch, objects))))
            self._fingerprints[cls] = mark
        return out

    async def send_data(self, snap: Snapshot, full: bool) -> int:
        messages = await asyncio.to_thread(self.data_messages, snap, full)
        sent = 0
        for key, body in messages:
            sent += await self.publish(key, body, kind="data",
                                       expiration=2 * self.data_interval)
        return sent

    async def send_event(self, event: DomainEvent) -> bool:
        body = encode(event_body(event, self.host, self.epoch))
        return await self.publish(Names.event_key(self.host, "domain"), body,
                                  kind="event")

    # --- loops -----------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        await self._every(self.heartbeat_interval, self.send_heartbeat)

    async def _every(self, interval: float, action: Callable[[], Any]) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            await action()
            next_tick += interval
            now = loop.time()
            if next_tick < now:  # fell behind: skip, never burst
                next_tick = now + interval - (now - next_tick) % interval
            await asyncio.sleep(next_tick - now)

    async def _data_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_full = loop.time()
        while True:
            wait = next_full - loop.time()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._changed.wait()
            self._changed.clear()
            full = loop.time() >= next_full
            try:
                snap = (await asyncio.to_thread(self.snapshots.get, self.max_age) if full
                        else self.snapshots.current())
            except HvmonError as exc:
                self.problem = f"no snapshot: {exc}"
                snap = None
            if snap is not None:
                await self.send_data(snap, full)
            if full:
                next_full += self.data_interval
                now = loop.time()
                if next_full < now:
                    next_full = now + self.data_interval

    async def _event_loop(self, events: Any) -> None:
        async for event in events:
            await self.send_event(event)
            self.request_refresh()

    def request_refresh(self) -> None:
        """Refresh the snapshot soon (coalesced), so changed data is published."""
        if self._refresh_task is None or self._refresh_task.done():
            self._refresh_task = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        await asyncio.sleep(REFRESH_DELAY)
        try:
            await asyncio.to_thread(self.snapshots.refresh)
        except HvmonError as exc:
            self.log.warning("snapshot refresh failed: %s", exc)
