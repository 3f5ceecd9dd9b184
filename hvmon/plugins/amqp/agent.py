"""The ``amqp`` agent: one host on the RabbitMQ bus (docs/amqp.md).

It connects with ``connect_robust`` (heartbeats, publisher confirms, TLS),
declares the durable topic exchange ``<prefix>`` and the durable request
queue ``<prefix>.agent.<host>``, publishes indications (:mod:`publisher`) and
serves method requests (:mod:`consumer`). After a dropped connection aio-pika
reconnects and restores the exchange, queues, bindings and consumers; the
agent reports ``degraded`` meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hvmon.daemon.agent import AgentHealth
from hvmon.plugins.amqp import broker
from hvmon.plugins.amqp.config import (
    OPTIONS,
    Names,
    broker_settings,
    host_token,
    validate_options,
)
from hvmon.plugins.amqp.consumer import RequestConsumer
from hvmon.plugins.amqp.dispatcher import Dispatcher
from hvmon.plugins.amqp.publisher import Publisher

if TYPE_CHECKING:
    import aio_pika.abc

    from hvmon.daemon.context import AgentContext

__all__ = ["OPTIONS", "AmqpAgent", "validate_options"]

#: the QMF-style agent name: vendor:product:instance
VENDOR_PRODUCT = "hvmon.org:hvmon"


def next_epoch(state_dir: Path, host: str) -> int:
    """A counter persisted in the state directory, +1 per agent start (QMF's epoch)."""
    path = state_dir / f"amqp-{host_token(host)}.epoch"
    try:
        epoch = int(path.read_text().strip() or 0) + 1
    except (OSError, ValueError):
        epoch = 1
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{epoch}\n")
        tmp.replace(path)
    except OSError:
        pass  # a read-only state dir: the epoch still counts within this run
    return epoch


def connection_name(prefix: str, host: str) -> str:
    """The client-provided connection name the broker shows (``rabbitmqctl list_connections``)."""
    return f"hvmon-agent {prefix} {host}"


class AmqpAgent:
    """Heartbeats, data and events out; method requests in."""

    def __init__(self) -> None:
        self.ctx: AgentContext | None = None
        self.host = ""
        self.epoch = 0
        self.connection: aio_pika.abc.AbstractRobustConnection | None = None
        self.publisher: Publisher | None = None
        self.consumer: RequestConsumer | None = None
        self.dispatcher: Dispatcher | None = None
        self.reconnects = 0
        self._locate_tag: str | None = None

    async def start(self, ctx: AgentContext) -> None:
        """Connect, declare, start publishing and consuming; raise when the broker is away."""
        from hvmon import __version__

        self.ctx = ctx
        options = ctx.config.options
        settings = broker_settings(options)
        names = Names(options["prefix"])
        self.host = options["host"] or await asyncio.to_thread(ctx.connection.get_hostname)
        self.epoch = await asyncio.to_thread(next_epoch, ctx.state_dir, self.host)
        try:
            self.connection = await broker.connect(settings,
                                                   connection_name(names.prefix, self.host))
        except Exception as exc:
            text = broker.scrub(str(exc), settings.password)
            raise ConnectionError(f"cannot connect to the broker at {settings.url}: "
                                  f"{type(exc).__name__}: {text}") from None
        self.connection.reconnect_callbacks.add(self._on_reconnect)
        channel = await self.connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=int(options["prefetch"]))
        exchange = await broker.declare_exchange(channel, names)
        queue = await broker.declare_agent_queue(channel, names, self.host)
        max_age = options["snapshot_max_age"]
        snapshot_max_age = None if max_age is None else float(max_age)
        self.dispatcher = Dispatcher(
            ctx.connection, lambda: ctx.snapshot.get(snapshot_max_age),
            host=self.host, allowed_users=options["allowed_users"],
            timeout=float(options["method_timeout"]), refresh=ctx.snapshot.refresh,
            logger=ctx.logger)
        await asyncio.to_thread(ctx.snapshot.get, snapshot_max_age)  # facts for heartbeats
        self.publisher = Publisher(
            exchange, ctx.snapshot, host=self.host, epoch=self.epoch,
            heartbeat_info={"agent": f"{VENDOR_PRODUCT}:{self.host}", "version": __version__,
                            "queue": queue.name, "control": not ctx.readonly,
                            **({"migration_uri": options["migration_uri"]}
                               if options["migration_uri"] else {})},
            heartbeat_interval=float(options["heartbeat_interval"]),
            data_interval=float(options["data_interval"]),
            snapshot_max_age=snapshot_max_age, logger=ctx.logger)
        self.consumer = RequestConsumer(queue, channel, self.dispatcher,
                                        max_bytes=int(options["max_request_bytes"]),
                                        dedup_size=int(options["dedup_size"]),
                                        logger=ctx.logger)
        locate = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await locate.bind(exchange, Names.LOCATE_KEY)
        self._locate_tag = await locate.consume(self._on_locate, no_ack=True)
        await self.consumer.start()
        self.publisher.start(ctx.events())
        ctx.logger.info("on the bus at %s as %s (exchange %s, queue %s, %s)", settings.url,
                        self.host, names.exchange, queue.name,
                        "read-only" if ctx.readonly else "control")

    async def stop(self) -> None:
        """Stop publishing and consuming, close the connection (safe after a failed start)."""
        if self.publisher is not None:
            await self.publisher.stop()
        if self.consumer is not None:
            await self.consumer.stop()
        if self.connection is not None:
            connection, self.connection = self.connection, None
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await connection.close()

    def health(self) -> AgentHealth:
        """``degraded`` while the broker connection is down or publishing fails."""
        if self.connection is None or self.publisher is None:
            return AgentHealth("degraded", "not connected")
        if self.connection.is_closed or not self.connection.connected.is_set():
            return AgentHealth("degraded", "broker connection lost; reconnecting")
        if self.publisher.problem:
            return AgentHealth("degraded", self.publisher.problem)
        return AgentHealth()

    def stats(self) -> dict[str, Any]:
        """Counters for tests and logs."""
        consumer = self.consumer
        return {
            "reconnects": self.reconnects,
            "published": dict(self.publisher.published) if self.publisher else {},
            "received": consumer.received if consumer else 0,
            "executed": self.dispatcher.executed if self.dispatcher else 0,
            "duplicates": consumer.duplicates if consumer else 0,
            "malformed": consumer.malformed if consumer else 0,
            "dead_lettered": consumer.dead_lettered if consumer else 0,
        }

    async def _on_locate(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        if self.publisher is not None:
            await self.publisher.send_heartbeat()

    def _on_reconnect(self, *args: Any) -> None:
        self.reconnects += 1
        if self.ctx is not None:
            self.ctx.logger.info("reconnected to the broker; consumers restored")
        if self.publisher is not None:  # tell consoles at once that this host is back
            asyncio.get_running_loop().create_task(self.publisher.send_heartbeat())
