"""Open a robust broker connection (heartbeats, TLS, reconnect) and declare hvmon's names.

aio-pika's ``connect_robust`` reconnects after a dropped connection and
restores the channels, exchanges, queues, bindings and consumers declared
through it; channels are opened with publisher confirms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    import aio_pika.abc

    from hvmon.plugins.amqp.config import BrokerSettings, Names


def connection_url(settings: BrokerSettings, name: str = "") -> str:
    """The URL aio-pika gets: credentials, heartbeat and connection name added (never logged).

    The client-provided connection name goes in the URL's ``name`` parameter:
    with a URL, aio-pika ignores ``client_properties``.
    """
    parts = urlsplit(settings.url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    netloc = (f"{quote(settings.username, safe='')}:{quote(settings.password, safe='')}"
              f"@{host}{port}")
    params: dict[str, object] = {"heartbeat": settings.heartbeat,
                                 "reconnect_interval": settings.reconnect_interval}
    if name:
        params["name"] = name
    query = urlencode(params)
    return urlunsplit((parts.scheme, netloc, parts.path or "/", query, ""))


def scrub(text: str, secret: str) -> str:
    """``text`` without ``secret`` (as it is, or URL-quoted)."""
    for form in {secret, quote(secret, safe="")} if secret else ():
        text = text.replace(form, "***")
    return text


async def connect(settings: BrokerSettings, name: str,
                  timeout: float = 10.0) -> aio_pika.abc.AbstractRobustConnection:
    """A robust connection whose client-provided name (``connection_name``) is ``name``."""
    import aio_pika

    return await aio_pika.connect_robust(connection_url(settings, name),
                                         ssl_context=settings.ssl_context(), timeout=timeout)


async def declare_exchange(channel: aio_pika.abc.AbstractChannel,
                           names: Names) -> aio_pika.abc.AbstractExchange:
    """The durable topic exchange every indication goes to."""
    import aio_pika

    return await channel.declare_exchange(names.exchange, aio_pika.ExchangeType.TOPIC,
                                          durable=True)


async def declare_agent_queue(channel: aio_pika.abc.AbstractChannel, names: Names,
                              host: str) -> aio_pika.abc.AbstractQueue:
    """The durable request queue of ``host``, dead-lettering into ``<prefix>.dead-letter``."""
    import aio_pika

    dlx = await channel.declare_exchange(names.dead_letter_exchange,
                                         aio_pika.ExchangeType.FANOUT, durable=True)
    dead = await channel.declare_queue(names.dead_letter_queue, durable=True,
                                       arguments={"x-max-length": 10_000})
    await dead.bind(dlx, routing_key="")
    return await channel.declare_queue(
        names.agent_queue(host), durable=True,
        arguments={"x-dead-letter-exchange": names.dead_letter_exchange})
