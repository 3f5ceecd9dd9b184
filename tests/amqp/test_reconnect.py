"""The broker drops the agent's connection mid-run (``rabbitmqctl close_connection``).

A request is running when the connection goes; more arrive while it is down.
The agent reconnects, its consumer comes back, every request is answered and
none is executed twice: the redelivered copy of the running one is answered
from the request log.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

from hvmon.plugins.amqp.agent import connection_name
from hvmon.plugins.amqp.console.client import ConsoleClient

from .conftest import SETTINGS, agent_of, amqp_options, make_daemon, running, until


def broker_connections(rabbitmqctl: str, client_name: str) -> list[str]:
    """The pids of the broker's connections whose client-provided name is ``client_name``.

    ``close_connection`` takes the pid (``<rabbit@host.1.2.0>``) as the table prints it.
    """
    result = subprocess.run([rabbitmqctl, "-q", "list_connections", "pid", "client_properties",
                             "--no-table-headers"], capture_output=True, text=True,
                            timeout=60, check=True)
    marker = '{"connection_name",' + json.dumps(client_name) + "}"
    return [line.split("\t", 1)[0] for line in result.stdout.splitlines() if marker in line]


def broker_info(rabbitmqctl: str, pid: str) -> tuple[int, set[bool]]:
    """(negotiated heartbeat timeout, confirm flags of its channels) of connection ``pid``."""
    def table(*argv: str) -> list[list[str]]:
        result = subprocess.run([rabbitmqctl, "-q", *argv, "--no-table-headers"],
                                capture_output=True, text=True, timeout=60, check=True)
        return [line.split("\t") for line in result.stdout.splitlines() if line]

    timeout = next(int(t) for p, t in table("list_connections", "pid", "timeout") if p == pid)
    confirms = {c == "true" for conn, c in table("list_channels", "connection", "confirm")
                if conn == pid}
    return timeout, confirms


def test_reconnect_restores_the_consumer_and_runs_each_request_once(
        tmp_path: Path, prefix: str, rabbitmqctl: str) -> None:
    host = "hv1.example"
    daemon = make_daemon(tmp_path, "test:///default",
                         amqp_options(prefix, host, allowed_users=["guest"]), control=True)

    async def scenario() -> None:
        async with running(daemon):
            agent = agent_of(daemon)
            executed: dict[str, int] = {}
            release = asyncio.Event()
            held = asyncio.Event()
            original = agent.dispatcher.execute

            async def counting(request: Any, user: str | None) -> dict[str, Any]:
                executed[request.id] = executed.get(request.id, 0) + 1
                if request.id == "held":
                    held.set()
                    await release.wait()
                return await original(request, user)

            agent.dispatcher.execute = counting
            name = connection_name(prefix, host)
            before = await asyncio.to_thread(broker_connections, rabbitmqctl, name)
            assert len(before) == 1
            # the broker's view: AMQP heartbeats as configured, confirms on every channel
            assert await asyncio.to_thread(broker_info, rabbitmqctl, before[0]) == (10, {True})

            statuses: set[str] = set()

            async def watch_health() -> None:
                while True:
                    statuses.add(agent.health().status)
                    await asyncio.sleep(0.005)

            watcher = asyncio.create_task(watch_health())
            # aio-pika reconnects at once, so also look at the moment the connection closes
            agent.connection.close_callbacks.add(
                lambda *_: statuses.add(agent.health().status))
            async with ConsoleClient(SETTINGS, prefix, timeout=60) as console:
                first = asyncio.create_task(console.call(host, "domain.suspend",
                                                         {"name": "test"}, request_id="held"))
                await asyncio.wait_for(held.wait(), 20)
                await asyncio.to_thread(subprocess.run,
                                        [rabbitmqctl, "close_connection", before[0],
                                         "hvmon test: dropping the agent"],
                                        check=True, capture_output=True, timeout=60)
                # requests sent while the agent is away wait in its durable queue
                later = [asyncio.create_task(console.call(
                    host, "node.networkDefineXML",
                    {"xml": f"<network><name>n{i}</name><bridge name='virbr{i + 10}'/>"
                            "</network>"}, request_id=f"net-{i}")) for i in range(4)]
                await until(lambda: agent.reconnects >= 1, 30, "the agent to reconnect")
                after = await asyncio.to_thread(broker_connections, rabbitmqctl, name)
                assert len(after) == 1 and after != before
                # the redelivered copy of "held" arrives while the first still runs
                await until(lambda: agent.stats()["duplicates"] >= 1, 30,
                            "the redelivery of the running request")
                release.set()
                assert await asyncio.wait_for(first, 30) == {
                    "name": "test", "uuid": "6695eb01-f6a4-8304-79aa-97f2502e193f"}
                results = await asyncio.wait_for(asyncio.gather(*later), 30)
                assert sorted(r["name"] for r in results) == ["n0", "n1", "n2", "n3"]
                networks = await console.call(host, "network.list")
                state = await console.call(host, "domain.info", {"name": "test"})
                # a retry with the same id is answered from the log, not run again
                assert await console.call(host, "domain.suspend", {"name": "test"},
                                          request_id="held") == {
                    "name": "test", "uuid": "6695eb01-f6a4-8304-79aa-97f2502e193f"}
            watcher.cancel()
            assert statuses == {"ok", "degraded"}  # it said so while the broker was away
            assert set(executed) >= {"held", "net-0", "net-1", "net-2", "net-3"}
            assert set(executed.values()) == {1}, executed  # nothing ran twice
            assert agent.consumer.unacked >= 1  # the first ack went down with the channel
            assert {n["name"] for n in networks} >= {"n0", "n1", "n2", "n3"}
            assert state["state_label"] == "paused"
            assert agent.health().status == "ok"

    asyncio.run(scenario())
