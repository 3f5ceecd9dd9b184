"""Malformed requests get a structured error (or go to the dead-letter queue);
the consumer lives on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from hvmon.plugins.amqp.config import Names
from hvmon.plugins.amqp.console.client import ConsoleClient

from .conftest import SETTINGS, agent_of, amqp_options, make_daemon, running
from .schemas import validate

HOST = "hv1.example"
LIMIT = 4096

CASES: list[tuple[str, bytes, dict[str, Any], int, str]] = [
    ("bad-json", b"{not json", {}, 8, "request is not JSON"),
    ("not-utf8", b"\xff\xfe{}", {}, 8, "request is not JSON"),
    ("array", b"[1, 2]", {}, 8, "request must be a JSON object"),
    ("id-type", json.dumps({"id": 5, "method": "domain.list"}).encode(), {}, 8,
     "request 'id' must be a string"),
    ("no-method", json.dumps({"id": "m1"}).encode(), {}, 8, "request 'method' must be"),
    ("unknown-key", json.dumps({"id": "m2", "method": "domain.list", "x": 1}).encode(), {},
     8, "unknown request key(s): x"),
    ("unknown-method", json.dumps({"id": "m3", "method": "domain.explode"}).encode(), {}, 3,
     "unknown method 'domain.explode'"),
    ("arg-type", json.dumps({"id": "m4", "method": "domain.info",
                             "args": {"name": 5}}).encode(), {}, 8,
     "argument 'name' has the wrong type"),
    ("arg-unknown", json.dumps({"id": "m5", "method": "domain.suspend",
                                "args": {"name": "test", "force": True}}).encode(),
     {"user_id": "guest"}, 8, "unknown argument(s) force"),
    ("args-type", json.dumps({"id": "m6", "method": "domain.info", "args": []}).encode(), {},
     8, "request 'args' must be an object"),
    ("oversized", json.dumps({"id": "m7", "method": "domain.list",
                              "args": {"pad": "x" * LIMIT}}).encode(), {}, 8,
     "request too large"),
    ("no-user-id", json.dumps({"id": "m8", "method": "domain.suspend",
                               "args": {"name": "test"}}).encode(), {}, 88,
     "a request without user_id may not call domain.suspend"),
]


def test_malformed_requests_are_answered_or_dead_lettered(tmp_path: Path, prefix: str) -> None:
    daemon = make_daemon(tmp_path, "test:///default",
                         amqp_options(prefix, HOST, allowed_users=["guest"],
                                      max_request_bytes=LIMIT), control=True)

    async def scenario() -> None:
        async with running(daemon), ConsoleClient(SETTINGS, prefix) as console:
            for label, body, props, code, text in CASES:
                reply = await console.raw_request(HOST, body, correlation_id=label,
                                                  timeout=20, **props)
                assert reply is not None, label
                assert reply["ok"] is False and reply["error"]["code"] == code, (label, reply)
                assert text in reply["error"]["text"], (label, reply)
                validate("reply", reply)
            # no reply_to: dead-lettered, not answered, not requeued forever
            await console.raw_request(HOST, b"\x00garbage", correlation_id=None, timeout=5)
            dead = await dead_letter(console, prefix)
            assert dead == b"\x00garbage"
            # the consumer is alive and well
            assert [d["name"] for d in await console.call(HOST, "domain.list")] == ["test"]
            stats = agent_of(daemon).stats()
            assert stats["malformed"] == 9 and stats["dead_lettered"] == 1
            assert agent_of(daemon).health().status == "ok"
            # the domain was never suspended by any of the above
            info = await console.call(HOST, "domain.info", {"name": "test"})
            assert info["state_label"] == "running"

    asyncio.run(scenario())


async def dead_letter(console: ConsoleClient, prefix: str) -> bytes:
    """The first message of ``<prefix>.dead-letter`` (waits for it a little)."""
    import aio_pika

    from hvmon.plugins.amqp.broker import connection_url

    connection = await aio_pika.connect(connection_url(SETTINGS))
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(Names(prefix).dead_letter_queue)
        for _ in range(100):
            message = await queue.get(no_ack=True, fail=False)
            if message is not None:
                return message.body
            await asyncio.sleep(0.05)
        pytest.fail("nothing in the dead-letter queue")
    finally:
        await connection.close()
