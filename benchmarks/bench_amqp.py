"""AMQP agent: method round-trip latency and the cost of publishing a full snapshot.

For each size N a node file of N test-driver domains is generated (as the
other benchmarks do) and served by an in-process daemon with the ``amqp``
agent on the machine's RabbitMQ (127.0.0.1:5672, guest/guest) under a
unique prefix, deleted afterwards. A console client on its own connection:

* ``rtt``: sequential calls of a read method (``domain.info`` of one domain,
  and ``domain.list`` of all N) — request published with a confirm, served
  from the snapshot in a worker thread, reply on the console's queue;
  median and p99 over ``--calls`` calls after a warm-up;
* ``publish``: one full data round (node, domain, pool, volume and network
  messages) built from the snapshot (``build``: objects + JSON) and
  published with publisher confirms (``total``); best of ``--repeat``.

Usage: ``python benchmarks/bench_amqp.py [--sizes 1000] [--repeat 3] [--calls 500]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench_testdriver import node_file  # sibling script


def _agent_daemon(uri: str, prefix: str, tmp: Path) -> tuple[Any, list[Any]]:
    import dataclasses

    from hvmon.daemon.app import Daemon
    from hvmon.daemon.config import parse_config
    from hvmon.daemon.plugins import build_plugin_host
    from hvmon.hookspecs import hookimpl
    from hvmon.plugins.amqp import plugin as amqp_plugin

    agents: list[Any] = []
    (spec,) = amqp_plugin.hvmon_add_agents()

    def make() -> Any:
        agents.append(spec.factory())
        return agents[-1]

    class Bench:
        @hookimpl
        def hvmon_add_agents(self) -> list[Any]:
            return [dataclasses.replace(spec, factory=make)]

    host = build_plugin_host(plugins=[(Bench(), "amqp-bench")], disabled=("amqp",))
    schema = host.schema()
    config = parse_config({
        "daemon": {"uri": uri, "snapshot_interval": 0, "snapshot_max_age": 3600},
        "agents": {"amqp": {"enabled": True, "prefix": prefix, "host": "bench.example",
                            "data_interval": 3600.0, "heartbeat_interval": 60.0}}}, schema)
    return Daemon(host, schema, config, run_dir=tmp / "run", state_dir=tmp / "state",
                  rpc=False), agents


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def measure(n: int, calls: int, repeat: int) -> dict[str, Any]:
    from hvmon.plugins.amqp.config import BrokerSettings
    from hvmon.plugins.amqp.console.client import ConsoleClient

    prefix = f"hvmonbench-{uuid.uuid4().hex[:8]}"
    settings = BrokerSettings()
    with tempfile.TemporaryDirectory() as tmp:
        daemon, agents = _agent_daemon(f"test://{node_file(n)}", prefix, Path(tmp))
        await daemon.start()
        try:
            agent = agents[-1]
            if agent.publisher is None:
                raise SystemExit("the amqp agent did not start (is RabbitMQ running?)")
            async with ConsoleClient(settings, prefix, timeout=30) as console:
                first = (await console.call("bench.example", "domain.list"))[0]["name"]
                rtt: dict[str, list[float]] = {"domain.info": [], "domain.list": []}
                for method, args, count in (("domain.info", {"name": first}, calls),
                                            ("domain.list", {}, max(20, calls // 10))):
                    for i in range(count + 10):
                        start = time.perf_counter()
                        await console.call("bench.example", method, args)
                        if i >= 10:
                            rtt[method].append(time.perf_counter() - start)
            snap = daemon.snapshots.get()
            builds, totals, size = [], [], 0
            for _ in range(repeat):
                start = time.perf_counter()
                messages = agent.publisher.data_messages(snap, full=True)
                builds.append(time.perf_counter() - start)
                size = sum(len(body) for _, body in messages)
                start = time.perf_counter()
                sent = await agent.publisher.send_data(snap, full=True)
                totals.append(time.perf_counter() - start)
                assert sent == 5
        finally:
            await daemon.stop()
            await cleanup(prefix, settings)
    return {"n": n, "rtt": rtt, "build": min(builds), "total": min(totals), "bytes": size}


async def cleanup(prefix: str, settings: Any) -> None:
    import aio_pika

    from hvmon.plugins.amqp.broker import connection_url
    from hvmon.plugins.amqp.config import Names

    names = Names(prefix)
    connection = await aio_pika.connect(connection_url(settings))
    try:
        channel = await connection.channel()
        for queue in (names.agent_queue("bench.example"), names.dead_letter_queue):
            await channel.queue_delete(queue)
        for exchange in (names.exchange, names.dead_letter_exchange):
            await channel.exchange_delete(exchange)
    finally:
        await connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args(argv)
    rows = [asyncio.run(measure(n, args.calls, max(1, args.repeat))) for n in args.sizes]
    print(f"{'domains':>8} {'method':<12} {'calls':>6} {'median ms':>10} {'p99 ms':>8}")
    for row in rows:
        for method, values in row["rtt"].items():
            median, p99 = statistics.median(values) * 1e3, percentile(values, 0.99) * 1e3
            print(f"{row['n']:>8} {method:<12} {len(values):>6} {median:>10.2f} {p99:>8.2f}")
    print()
    print(f"{'domains':>8} {'messages':>8} {'MiB':>7} {'build ms':>9} {'publish ms':>11} "
          f"{'total ms':>9}")
    for row in rows:
        print(f"{row['n']:>8} {5:>8} {row['bytes'] / 2**20:>7.2f} {row['build'] * 1e3:>9.1f} "
              f"{(row['total'] - row['build']) * 1e3:>11.1f} {row['total'] * 1e3:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
