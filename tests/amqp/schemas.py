"""The JSON schemas of docs/amqp.md, and a queue that captures real indications."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import jsonschema

from .conftest import REPO_ROOT, SETTINGS

DOC = REPO_ROOT / "docs" / "amqp.md"
_BLOCK = re.compile(r"<!-- schema: (\w+) -->\s*```json\n(.*?)```", re.S)


@functools.cache
def schemas() -> dict[str, dict[str, Any]]:
    """Every ``<!-- schema: NAME -->`` block of docs/amqp.md, checked as a JSON schema."""
    found = {name: json.loads(text) for name, text in _BLOCK.findall(DOC.read_text())}
    for schema in found.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    return found


def validate(kind: str, body: Any) -> None:
    """Fail with the first violation of the documented schema of ``kind``."""
    jsonschema.Draft202012Validator(schemas()[kind]).validate(body)


class Capture:
    """An exclusive queue bound to ``agent.ind.#`` that keeps every body it receives."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.connection: Any = None

    @classmethod
    async def open(cls, prefix: str) -> Capture:
        import aio_pika

        from hvmon.plugins.amqp.broker import connection_url

        self = cls()
        self.connection = await aio_pika.connect(connection_url(SETTINGS))
        channel = await self.connection.channel()
        exchange = await channel.declare_exchange(prefix, aio_pika.ExchangeType.TOPIC,
                                                  durable=True)
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await queue.bind(exchange, "agent.ind.#")
        await queue.consume(self._on_message, no_ack=True)
        return self

    async def _on_message(self, message: Any) -> None:
        self.bodies.append(json.loads(message.body))

    def kinds(self) -> set[str]:
        return {b["kind"] for b in self.bodies}

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
