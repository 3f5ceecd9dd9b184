"""Helpers for the AMQP tests: the machine's RabbitMQ, a unique prefix per test, daemons.

Every test uses its own exchange/queue prefix and deletes what it created;
the broker itself is never stopped (other tests use it).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from toolcheck import need, need_tool

from hvmon.daemon.agent import AgentSpec
from hvmon.daemon.app import Daemon
from hvmon.daemon.config import parse_config
from hvmon.daemon.plugins import build_plugin_host
from hvmon.hookspecs import hookimpl
from hvmon.plugins.amqp import plugin as amqp_plugin
from hvmon.plugins.amqp.config import BrokerSettings, Names

REPO_ROOT = Path(__file__).resolve().parents[2]
BROKER = ("127.0.0.1", 5672)
SETTINGS = BrokerSettings("amqp://127.0.0.1:5672/", "guest", "guest", reconnect_interval=0.3)


def broker_up() -> bool:
    try:
        with socket.create_connection(BROKER, timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def rabbitmqctl() -> str:
    """The path of rabbitmqctl (and a reachable broker); skip, or fail in CI, without them."""
    path = need_tool("rabbitmqctl", "rabbitmq-server")
    need(broker_up(), "RabbitMQ is not listening on 127.0.0.1:5672 (rabbitmq-server)")
    return path


@pytest.fixture
def prefix(rabbitmqctl: str) -> Iterator[str]:
    """A unique prefix; its exchanges and queues are deleted afterwards."""
    name = f"hvmontest-{uuid.uuid4().hex[:10]}"
    yield name
    asyncio.run(delete_names(name, rabbitmqctl))


async def delete_names(prefix: str, rabbitmqctl: str = "rabbitmqctl") -> None:
    """Delete the exchange, dead-letter names and every agent queue under ``prefix``."""
    import aio_pika

    from hvmon.plugins.amqp.broker import connection_url

    names = Names(prefix)
    result = subprocess.run([rabbitmqctl, "-q", "list_queues", "name"], capture_output=True,
                            text=True, timeout=60, check=False)
    queues = [q for q in result.stdout.split() if q.startswith(f"{prefix}.")]
    connection = await aio_pika.connect(connection_url(SETTINGS))
    try:
        for queue in queues:
            channel = await connection.channel()
            await channel.queue_delete(queue)
            await channel.close()
        for exchange in (names.exchange, names.dead_letter_exchange):
            channel = await connection.channel()
            await channel.exchange_delete(exchange)
            await channel.close()
    finally:
        await connection.close()


def amqp_options(prefix: str, host: str, **extra: Any) -> dict[str, Any]:
    return {"enabled": True, "prefix": prefix, "host": host, "heartbeat_interval": 0.5,
            "data_interval": 1.0, "reconnect_interval": 0.3, "heartbeat": 10, **extra}


class Recorder:
    """The plugin's own ``amqp`` spec, with a factory that remembers the agents it made."""

    def __init__(self) -> None:
        self.agents: list[Any] = []
        (spec,) = amqp_plugin.hvmon_add_agents()
        self.spec = dataclasses.replace(spec, factory=self._make)

    def _make(self) -> Any:
        agent = amqp_plugin.hvmon_add_agents()[0].factory()
        self.agents.append(agent)
        return agent

    @hookimpl
    def hvmon_add_agents(self) -> list[AgentSpec]:
        return [self.spec]


def make_daemon(tmp_path: Path, uri: str, options: dict[str, Any], *,
                control: bool = False, rpc: bool = False) -> Daemon:
    """An in-process daemon on ``uri`` with the ``amqp`` agent registered in-process.

    The entry point ``amqp`` (once registered) is disabled so the recorder's spec is
    the only ``amqp`` agent; ``daemon.recorder.agents[-1]`` is the running agent.
    """
    recorder = Recorder()
    host = build_plugin_host(plugins=[(recorder, "amqp-under-test")], disabled=("amqp",))
    schema = host.schema()
    data = {"daemon": {"uri": uri, "allow_control": control, "restart_delay": 0.05,
                       "restart_delay_max": 0.2, "health_interval": 0.05,
                       "snapshot_interval": 0},
            "agents": {"amqp": {**options, "control": control}}}
    config = parse_config(data, schema)
    tag = options["host"]
    daemon = Daemon(host, schema, config, run_dir=tmp_path / tag / "run",
                    state_dir=tmp_path / tag / "state", rpc=rpc)
    daemon.recorder = recorder  # type: ignore[attr-defined]
    return daemon


@asynccontextmanager
async def running(*daemons: Daemon) -> AsyncIterator[None]:
    started: list[Daemon] = []
    try:
        for daemon in daemons:
            await daemon.start()
            started.append(daemon)
        yield
    finally:
        for daemon in reversed(started):
            await daemon.stop()


def agent_of(daemon: Daemon) -> Any:
    """The latest ``amqp`` agent object of an in-process daemon."""
    return daemon.recorder.agents[-1]  # type: ignore[attr-defined]


async def until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > end:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.02)


#: the console as a process, until the ``amqp`` entry point is registered
CONSOLE_SHIM = ("import sys\n"
                "from hvmon.cli.main import collect_commands, main\n"
                "from hvmon.plugins.amqp.plugin import hvmon_add_cli_commands\n"
                "sys.exit(main(sys.argv[1:], "
                "commands=collect_commands([hvmon_add_cli_commands()])))\n")


def console_argv() -> list[str]:
    """``hvmon`` when the ``amqp`` plugin is installed as an entry point, else the shim."""
    from importlib import metadata

    installed = any(ep.name == "amqp" for ep in metadata.entry_points(group="hvmon.plugins"))
    hvmon = Path(sys.executable).parent / "hvmon"
    if installed and hvmon.exists():
        return [str(hvmon)]
    return [sys.executable, "-c", CONSOLE_SHIM]


@pytest.fixture
def children() -> Iterator[list[asyncio.subprocess.Process]]:
    """Processes a test started; any still running at the end is killed by PID."""
    started: list[asyncio.subprocess.Process] = []
    yield started
    for proc in started:
        if proc.returncode is None:  # not reaped yet, so the PID is still ours
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, 0)


async def start_console_process(children: list[asyncio.subprocess.Process], prefix: str,
                                *argv: str) -> asyncio.subprocess.Process:
    """``hvmon console --prefix P --state '' ARGV`` as a child, listed in ``children``."""
    proc = await asyncio.create_subprocess_exec(
        *console_argv(), "console", "--prefix", prefix, "--state", "", "--wait", "2", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "HVMON_DISABLE_PLUGINS"})
    children.append(proc)
    return proc
