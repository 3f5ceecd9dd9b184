"""The console's side of the bus: discover agents, call methods, follow events.

Agents are discovered by heartbeat: the console binds an exclusive queue to
``agent.ind.heartbeat.*``, publishes a locate on ``console.ind.locate`` (every
live agent answers with a heartbeat at once) and keeps the last heartbeat of
each host. A host is *stale* when it did not answer the locate, or, while
watching, when no heartbeat came for ``stale_factor`` heartbeat intervals.

Method calls go to the host's durable queue through the default exchange
(``mandatory``, so an unknown host is an error at once), carry an ``id``, a
``correlation_id``, the console's ``user_id`` (RabbitMQ checks it against the
login) and an expiration equal to the timeout; replies come back on the
console's exclusive reply queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hvmon.core.errors import HvmonError, NoConnect, OperationTimeout
from hvmon.plugins.amqp import broker
from hvmon.plugins.amqp.config import Names
from hvmon.plugins.amqp.schema import CONTENT_TYPE, SCHEMA, encode, request_body

if TYPE_CHECKING:
    import aio_pika.abc

    from hvmon.plugins.amqp.config import BrokerSettings


class NoSuchHost(HvmonError):
    """No agent queue for that host on this broker and prefix."""

    code, name = 5, "no-such-host"


class RemoteError(HvmonError):
    """A structured error an agent answered with (its code and text)."""

    def __init__(self, host: str, error: Mapping[str, Any]) -> None:
        super().__init__(f"{host}: {error.get('text', 'error')}")
        self.code = int(error.get("code", 1))
        self.name = str(error.get("name", "error"))
        self.host = host
        self.text = str(error.get("text", ""))


@dataclass
class HostView:
    """What the console knows of one host, from its heartbeats."""

    host: str
    epoch: int = 0
    version: str = ""
    interval: float = 0.0
    control: bool = False
    queue: str = ""
    agent: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    migration_uri: str = ""  # how the other hosts' daemons reach this one ("": not said)
    last_seen: float = 0.0
    answered: bool = False  # answered this console's locate (or heartbeated while watched)

    def update(self, body: Mapping[str, Any], now: float | None = None) -> None:
        self.epoch = int(body.get("epoch", 0))
        self.version = str(body.get("version", ""))
        self.interval = float(body.get("interval", 0))
        self.control = bool(body.get("control", False))
        self.queue = str(body.get("queue", ""))
        self.agent = str(body.get("agent", ""))
        self.facts = dict(body.get("facts") or {})
        self.migration_uri = str(body.get("migration_uri") or "")
        self.last_seen = time.time() if now is None else now
        self.answered = True

    def stale(self, now: float, factor: float) -> bool:
        """No heartbeat for ``factor`` intervals (or never heard in this run)."""
        if not self.answered:
            return True
        return now - self.last_seen > factor * max(self.interval, 0.05)

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "epoch": self.epoch, "version": self.version,
                "interval": self.interval, "control": self.control, "queue": self.queue,
                "agent": self.agent, "facts": self.facts, "migration_uri": self.migration_uri,
                "last_seen": self.last_seen}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HostView:
        view = cls(str(data["host"]))
        view.update(data, now=float(data.get("last_seen", 0)))
        view.answered = False
        return view


class ConsoleClient:
    """One console connection; use ``async with ConsoleClient(...) as client``."""

    def __init__(self, settings: BrokerSettings, prefix: str = "hvmon", *,
                 timeout: float = 10.0, name: str | None = None) -> None:
        self.settings = settings
        self.names = Names(prefix)
        self.timeout = timeout
        self.name = name or f"hvmon-console {prefix} {os.getpid()}"
        self.hosts: dict[str, HostView] = {}
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._inbox: aio_pika.abc.AbstractQueue | None = None
        self._reply_queue: aio_pika.abc.AbstractQueue | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._heartbeat = asyncio.Event()
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=10_000)

    async def __aenter__(self) -> ConsoleClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        try:
            self._connection = await broker.connect(self.settings, self.name,
                                                    timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001 - one line for the user, no secret
            text = broker.scrub(str(exc), self.settings.password)
            raise NoConnect(f"cannot connect to the broker at {self.settings.url}: "
                            f"{type(exc).__name__}: {text}") from None
        self._channel = await self._connection.channel(publisher_confirms=True,
                                                       on_return_raises=True)
        self._exchange = await broker.declare_exchange(self._channel, self.names)
        self._reply_queue = await self._channel.declare_queue("", exclusive=True,
                                                              auto_delete=True)
        await self._reply_queue.consume(self._on_reply, no_ack=True)
        self._inbox = await self._channel.declare_queue("", exclusive=True, auto_delete=True)
        await self._inbox.bind(self._exchange, "agent.ind.heartbeat.*")
        await self._inbox.consume(self._on_indication, no_ack=True)

    async def close(self) -> None:
        for future in self._pending.values():
            future.cancel()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await connection.close()

    # --- discovery ---------------------------------------------------------------------
    async def locate(self, wait: float, expect: Iterable[str] = ()) -> dict[str, HostView]:
        """Ask every live agent for a heartbeat and collect them for ``wait`` seconds.

        The wait ends early once every host in ``expect`` answered.
        """
        import aio_pika

        assert self._exchange is not None
        for view in self.hosts.values():
            view.answered = False
        expected = set(expect)
        await self._exchange.publish(
            aio_pika.Message(encode({"schema": SCHEMA, "kind": "locate"}),
                             content_type=CONTENT_TYPE, expiration=max(wait, 1.0)),
            routing_key=Names.LOCATE_KEY, mandatory=False)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while loop.time() < deadline:
            answered = {h for h, v in self.hosts.items() if v.answered}
            if expected and expected <= answered:
                break
            self._heartbeat.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(deadline - loop.time()):
                    await self._heartbeat.wait()
        return self.hosts

    def live_hosts(self) -> list[str]:
        return sorted(h for h, v in self.hosts.items() if v.answered)

    # --- methods -----------------------------------------------------------------------
    async def call(self, host: str, method: str, args: Mapping[str, Any] | None = None, *,
                   timeout: float | None = None, request_id: str | None = None) -> Any:
        """The result of ``method`` on ``host``; :class:`RemoteError` for an error reply."""
        reply = await self.request(host, method, args, timeout=timeout, request_id=request_id)
        if not reply.get("ok"):
            raise RemoteError(host, reply.get("error") or {})
        return reply.get("result")

    async def request(self, host: str, method: str, args: Mapping[str, Any] | None = None, *,
                      timeout: float | None = None, request_id: str | None = None,
                      body: bytes | None = None) -> dict[str, Any]:
        """The whole reply body of one request (``body`` replaces the encoded request)."""
        import aio_pika

        assert self._channel is not None and self._reply_queue is not None
        timeout = self.timeout if timeout is None else timeout
        rid = request_id or uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        message = aio_pika.Message(
            body if body is not None else encode(request_body(rid, method, args or {})),
            content_type=CONTENT_TYPE, correlation_id=rid, message_id=rid,
            reply_to=self._reply_queue.name, user_id=self.settings.username,
            expiration=timeout, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        try:
            try:
                await self._channel.default_exchange.publish(
                    message, routing_key=self.names.agent_queue(host), mandatory=True)
            except aio_pika.exceptions.DeliveryError:
                raise NoSuchHost(f"no agent for host '{host}' on this broker "
                                 f"(prefix '{self.names.prefix}')") from None
            try:
                async with asyncio.timeout(timeout):
                    return await future
            except TimeoutError:
                raise OperationTimeout(f"{host}: no reply to {method} within {timeout:g} s "
                                       "(the host may be down; the request expires "
                                       "unread)") from None
        finally:
            self._pending.pop(rid, None)

    async def raw_request(self, host: str, body: bytes, *, correlation_id: str | None,
                          timeout: float, **properties: Any) -> dict[str, Any] | None:
        """Put any bytes on a host's queue (tests of malformed requests).

        With a ``correlation_id`` the reply comes to this console's reply queue and
        is returned; without one nothing is awaited and None is returned.
        """
        import aio_pika

        assert self._channel is not None and self._reply_queue is not None
        future = None
        if correlation_id is not None:
            future = asyncio.get_running_loop().create_future()
            self._pending[correlation_id] = future
            properties.setdefault("reply_to", self._reply_queue.name)
        try:
            await self._channel.default_exchange.publish(
                aio_pika.Message(body, correlation_id=correlation_id, **properties),
                routing_key=self.names.agent_queue(host), mandatory=False)
            if future is None:
                return None
            async with asyncio.timeout(timeout):
                return await future
        finally:
            if correlation_id is not None:
                self._pending.pop(correlation_id, None)

    # --- events ------------------------------------------------------------------------
    async def subscribe_events(self, host: str | None = None) -> None:
        """Also receive lifecycle events (of every host, or of ``host``)."""
        assert self._inbox is not None and self._exchange is not None
        from hvmon.plugins.amqp.config import host_token

        key = f"agent.ind.event.{host_token(host)}.*" if host else "agent.ind.event.#"
        await self._inbox.bind(self._exchange, key)

    async def next_event(self) -> dict[str, Any]:
        """The next event body (after :meth:`subscribe_events`); safe to cancel."""
        return await self._events.get()

    # --- deliveries ----------------------------------------------------------------------
    async def _on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        future = self._pending.get(message.correlation_id or "")
        if future is None or future.done():
            return  # late, duplicate or unknown: the first answer counted
        try:
            body = json.loads(message.body)
        except ValueError:
            return
        if isinstance(body, dict):
            future.set_result(body)

    async def _on_indication(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        try:
            body = json.loads(message.body)
        except ValueError:
            return
        if not isinstance(body, dict) or not isinstance(body.get("host"), str):
            return
        kind = body.get("kind")
        if kind == "heartbeat":
            view = self.hosts.setdefault(body["host"], HostView(body["host"]))
            view.update(body)
            self._heartbeat.set()
        elif kind == "event":
            with contextlib.suppress(asyncio.QueueFull):
                self._events.put_nowait(body)
