"""Agents in an in-process daemon: context, control gate, events, supervision, busy ports."""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

import hvmon
from hvmon.core.errors import OperationDenied
from hvmon.core.events import LifecycleEvent
from hvmon.daemon.addresses import format_address, parse_address
from hvmon.daemon.agent import Agent, AgentHealth, AgentSpec
from hvmon.daemon.app import Daemon
from hvmon.daemon.config import parse_config
from hvmon.daemon.context import AgentContext
from hvmon.daemon.plugins import build_plugin_host
from hvmon.daemon.supervisor import Supervisor
from hvmon.hookspecs import hookimpl

pytestmark = pytest.mark.usefixtures("no_leaked_threads")


class Idle:
    """Starts, stays healthy, remembers its context."""

    def __init__(self, log: list[tuple[str, float, AgentContext]] | None = None) -> None:
        self.log = log if log is not None else []
        self.ctx: AgentContext | None = None

    async def start(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.log.append(("start", time.monotonic(), ctx))

    async def stop(self) -> None:
        if self.ctx is not None:
            self.log.append(("stop", time.monotonic(), self.ctx))

    def health(self) -> AgentHealth:
        return AgentHealth()


class Crasher(Idle):
    async def start(self, ctx: AgentContext) -> None:
        await super().start(ctx)
        raise RuntimeError("boom")


class Dier(Idle):
    """Dies in a thread of its own after ``after`` seconds and says so."""

    after = 0.05

    async def start(self, ctx: AgentContext) -> None:
        await super().start(ctx)
        self.timer = threading.Timer(self.after, ctx.report_failure,
                                     [ConnectionError("lost the broker")])
        self.timer.start()

    async def stop(self) -> None:
        self.timer.cancel()
        self.timer.join()
        await super().stop()


class Sick(Idle):
    def health(self) -> AgentHealth:
        return AgentHealth("failed", "disk on fire")


class Listener(Idle):
    """Listens on every ``listen`` address (asyncio servers)."""

    async def start(self, ctx: AgentContext) -> None:
        self.servers: list[asyncio.Server] = []
        try:
            for address in ctx.config.listen:
                host, port = parse_address(address)
                self.servers.append(await asyncio.start_server(self._serve, host, port))
        except BaseException:
            await self.stop()
            raise
        await super().start(ctx)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
            await server.wait_closed()
        self.servers = []
        await super().stop()

    def health(self) -> AgentHealth:
        return AgentHealth("ok", "", tuple(
            format_address(*s.sockets[0].getsockname()[:2]) for s in self.servers))


class Plugin:
    """A plugin object registered with the manager directly (``pm.register``)."""

    def __init__(self, specs: Sequence[AgentSpec]) -> None:
        self.specs = list(specs)

    @hookimpl
    def hvmon_add_agents(self) -> list[AgentSpec]:
        return self.specs


def make_daemon(tmp_path: Path, specs: Sequence[AgentSpec], data: dict[str, Any], *,
                rpc: bool = False, out: io.StringIO | None = None) -> Daemon:
    host = build_plugin_host(plugins=[(Plugin(specs), "test-agents")], disabled=())
    schema = host.schema()
    config = parse_config(data, schema)
    return Daemon(host, schema, config, run_dir=tmp_path / "run", state_dir=tmp_path / "state",
                  rpc=rpc, out=out)


def fast(**extra: Any) -> dict[str, Any]:
    """A ``[daemon]`` table with quick restarts and health polls."""
    return {"restart_delay": 0.05, "restart_delay_max": 0.2, "health_interval": 0.02,
            "healthy_after": 30.0, "snapshot_interval": 0, **extra}


def run_daemon(daemon: Daemon, body: Callable[[], Awaitable[None]]) -> None:
    async def scenario() -> None:
        await daemon.start()
        try:
            await body()
        finally:
            await daemon.stop()

    asyncio.run(scenario())


async def until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.01)


def factory(cls: type[Idle], log: list[Any]) -> Callable[[], Agent]:
    return lambda: cls(log)


# --- the context and the control gate -------------------------------------------------------
@pytest.mark.parametrize("allow_control", [False, True])
def test_the_connection_is_read_only_unless_both_flags_say_control(
        tmp_path: Path, allow_control: bool) -> None:
    log: list[Any] = []
    specs = [AgentSpec(name, factory(Idle, log)) for name in ("plain", "boss")]
    data = {"daemon": fast(allow_control=allow_control),
            "agents": {"plain": {"enabled": True, "control": False},
                       "boss": {"enabled": True, "control": True}}}
    daemon = make_daemon(tmp_path, specs, data)

    async def body() -> None:
        contexts = {ctx.name: ctx for _, _, ctx in log}
        plain, boss = contexts["plain"], contexts["boss"]
        assert plain.readonly
        with pytest.raises(OperationDenied, match="read-only connection: Domain.suspend"):
            plain.connection.lookup_domain_by_name("test").suspend()
        domain = boss.connection.lookup_domain_by_name("test")
        if allow_control:
            assert not boss.readonly
            domain.suspend()
            assert domain.state()[0] == hvmon.DomainState.PAUSED
            domain.resume()
        else:
            assert boss.readonly
            with pytest.raises(OperationDenied):
                domain.suspend()
        # what else the context carries
        assert plain.config.enabled and plain.logger.name == "hvmon.agent.plain"
        assert plain.snapshot is daemon.snapshots
        assert plain.snapshot.get().domain("test") is not None
        assert plain.run_dir == tmp_path / "run" and plain.state_dir == tmp_path / "state"
        assert plain.loop is asyncio.get_running_loop()
        assert plain.connection.driver is not daemon.driver  # a view that cannot close it

    run_daemon(daemon, body)
    # the agents' connections were closed on stop, the shared driver only by the daemon
    assert [kind for kind, _, _ in log].count("stop") == 2


def test_events_are_bounded_bound_to_the_agent_connection_and_end_on_stop(
        tmp_path: Path) -> None:
    log: list[Any] = []
    specs = [AgentSpec(name, factory(Idle, log)) for name in ("watcher", "boss")]
    data = {"daemon": fast(allow_control=True),
            "agents": {"watcher": {"enabled": True},
                       "boss": {"enabled": True, "control": True}}}
    daemon = make_daemon(tmp_path, specs, data)

    async def body() -> None:
        received: list[Any] = []
        contexts = {ctx.name: ctx for _, _, ctx in log}
        stream = contexts["watcher"].events(maxlen=4)
        domain = contexts["boss"].connection.lookup_domain_by_name("test")
        for _ in range(10):  # 20 events, nobody reading: the stream keeps the last 4
            domain.suspend()
            domain.resume()
        assert stream.pending == 4 and stream.dropped == 16
        for _ in range(4):
            received.append(await asyncio.wait_for(stream.__anext__(), 2))
        assert [ev.event for ev in received] == [LifecycleEvent.SUSPENDED,
                                                 LifecycleEvent.RESUMED] * 2
        with pytest.raises(OperationDenied):  # the event's domain is the watcher's: read-only
            received[0].domain.suspend()

        # a consumer waiting in ``async for`` wakes on the next event, from another thread
        async def first() -> Any:
            async for event in contexts["watcher"].events():
                return event
            return None

        waiter = asyncio.create_task(first())
        await asyncio.sleep(0.05)
        await asyncio.to_thread(domain.suspend)
        event = await asyncio.wait_for(waiter, 2)
        assert event.event == LifecycleEvent.SUSPENDED and event.domain.name == "test"
        domain.resume()
        # stopping the agent closes its streams: a waiting iteration ends
        assert daemon.supervisor is not None
        idle = contexts["watcher"].events()
        pending = asyncio.create_task(anext(idle, "ended"))
        await asyncio.sleep(0.02)
        assert not pending.done()
        await daemon.supervisor.stop("watcher")
        assert await asyncio.wait_for(pending, 2) == "ended"
        assert stream.pending == 2  # what was buffered can still be read after the end
        assert [ev.event async for ev in stream] == [LifecycleEvent.SUSPENDED,
                                                     LifecycleEvent.RESUMED]

    run_daemon(daemon, body)


# --- supervision ---------------------------------------------------------------------------
def test_failing_agents_are_restarted_with_backoff_others_keep_running(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    log: list[Any] = []
    specs = [AgentSpec("steady", factory(Idle, log)), AgentSpec("crasher", factory(Crasher, log)),
             AgentSpec("dier", factory(Dier, log)), AgentSpec("sick", factory(Sick, log))]
    data = {"daemon": fast(), "agents": {name: {"enabled": True}
                                         for name in ("steady", "crasher", "dier", "sick")}}
    daemon = make_daemon(tmp_path, specs, data)

    def starts(name: str) -> list[float]:
        return [t for kind, t, ctx in log if kind == "start" and ctx.name == name]

    async def body() -> None:
        assert daemon.supervisor is not None
        await until(lambda: len(starts("crasher")) >= 5 and len(starts("dier")) >= 3
                    and len(starts("sick")) >= 3, 5, "restarts")
        status = daemon.info()["agents"]
        assert status["steady"] == {"status": "ok", "message": "", "restarts": 0,
                                    "listening": []}
        assert status["crasher"]["restarts"] >= 4
        assert daemon.supervisor.slot("crasher").failures >= 4
        assert status["dier"]["restarts"] >= 2 and status["sick"]["restarts"] >= 2

    run_daemon(daemon, body)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    # back-off: 0.05, 0.1, 0.2, 0.2 (capped at restart_delay_max) between attempts
    delays = [float(line.rsplit("restarting in ", 1)[1].removesuffix(" s")) for line in lines
              if line.startswith("agent crasher failed")]
    assert delays[:4] == [0.05, 0.1, 0.2, 0.2]
    gaps = [b - a for a, b in zip(starts("crasher"), starts("crasher")[1:], strict=False)]
    assert all(gap >= delay * 0.9 for gap, delay in zip(gaps, delays, strict=False))
    assert len(starts("steady")) == 1  # never restarted
    assert all("\n" not in line for line in lines)
    assert "agent crasher failed (failure 1): RuntimeError: boom; restarting in 0.05 s" in lines
    assert "agent crasher failed (failure 2): RuntimeError: boom; restarting in 0.1 s" in lines
    assert any(line.startswith("agent dier failed (failure 1): reported failure: "
                               "ConnectionError: lost the broker") for line in lines)
    assert any(line.startswith("agent sick failed (failure 1): health failed: disk on fire")
               for line in lines)
    assert not any("steady" in line for line in lines)


def test_the_delay_resets_after_a_healthy_period(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    log: list[Any] = []

    class SlowDier(Dier):
        after = 0.12  # runs longer than healthy_after before it dies

    specs = [AgentSpec("flaky", factory(SlowDier, log))]
    daemon = make_daemon(tmp_path, specs, {"daemon": fast(healthy_after=0.1),
                                           "agents": {"flaky": {"enabled": True}}})

    async def body() -> None:
        await until(lambda: len([e for e in log if e[0] == "start"]) >= 3, 5, "three starts")

    run_daemon(daemon, body)
    delays = [r.getMessage().rsplit("restarting in ", 1)[1] for r in caplog.records
              if r.getMessage().startswith("agent flaky failed")]
    assert len(delays) >= 2 and set(delays) == {"0.05 s"}


def test_a_stop_that_arrives_as_start_finishes_is_not_lost() -> None:
    """Python 3.11's ``wait_for`` drops a cancel that lands as the inner call ends (a CI hang)."""
    log: list[Any] = []
    gates: list[asyncio.Future[None]] = []

    class Gated(Idle):
        async def start(self, ctx: Any) -> None:
            gate = asyncio.get_running_loop().create_future()
            gates.append(gate)
            await gate
            await super().start(ctx)

    class Context:  # the supervisor only names it, hands it to the agent and closes it
        name = "gated"

        def close(self) -> None:
            log.append(("closed", time.monotonic(), self))

    async def scenario() -> None:
        supervisor = Supervisor(lambda name, config, report: Context(), health_interval=0.02)
        await supervisor.start(AgentSpec("gated", factory(Gated, log)), Any)
        await until(lambda: bool(gates), 5, "start() to wait at its gate")
        gates[-1].set_result(None)  # start() ends in the same loop turn as the cancel
        async with asyncio.timeout(5):
            await supervisor.stop("gated")
        await asyncio.sleep(0.1)
        assert len(gates) == 1 and supervisor.names() == ()  # not restarted behind its back

    asyncio.run(scenario())
    kinds = [kind for kind, _, _ in log]  # cancelled at the gate, or started and then stopped
    assert kinds in (["closed"], ["start", "stop", "closed"])


def test_an_address_in_use_fails_that_agent_with_one_line_and_a_retry(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    log: list[Any] = []
    specs = [AgentSpec("porter", factory(Listener, log), listen=("127.0.0.1:0",)),
             AgentSpec("steady", factory(Idle, log))]
    data = {"daemon": fast(), "agents": {"porter": {"enabled": True,
                                                    "listen": f"127.0.0.1:{port}"},
                                         "steady": {"enabled": True}}}
    out = io.StringIO()
    daemon = make_daemon(tmp_path, specs, data, out=out)

    async def body() -> None:
        assert daemon.supervisor is not None
        slot = daemon.supervisor.slot("porter")
        await until(lambda: slot.failures >= 2, 5, "two failed attempts")
        assert daemon.info()["agents"]["steady"]["status"] == "ok"
        assert daemon.info()["agents"]["porter"]["status"] == "failed"
        blocker.close()  # the address frees up: the next retry succeeds
        await until(lambda: slot.status == "ok", 5, "porter to come up")
        assert slot.listening == (f"127.0.0.1:{port}",)

    try:
        run_daemon(daemon, body)
    finally:
        blocker.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("agent porter")]
    failure = next(line for line in lines if "failed" in line)
    assert "\n" not in failure
    assert "address already in use" in failure.lower() and "restarting in 0.05 s" in failure
    assert "agent porter: failed: OSError" in out.getvalue()  # the banner says so too
    assert "agent steady: ok" in out.getvalue()


def test_daemon_info_over_the_socket(tmp_path: Path) -> None:
    log: list[Any] = []
    specs = [AgentSpec("web", factory(Listener, log), listen=("127.0.0.1:0",))]
    out = io.StringIO()
    daemon = make_daemon(tmp_path, specs, {"daemon": fast(),
                                           "agents": {"web": {"enabled": True}}},
                         rpc=True, out=out)

    def remote_info() -> dict[str, Any]:
        with hvmon.open_readonly(daemon.client_uri()) as conn:
            return conn.daemon_info()

    async def body() -> None:
        info = await asyncio.to_thread(remote_info)
        assert info["uri"] == "test:///default" and info["driver"] == "test"
        assert info["version"] == hvmon.__version__ and info["pid"] > 0
        assert info["uptime"] >= 0
        web = info["agents"]["web"]
        assert web["status"] == "ok" and web["restarts"] == 0
        assert len(web["listening"]) == 1 and web["listening"][0].startswith("127.0.0.1:")
        assert set(info["snapshot"]) == {"generation", "age"}

    run_daemon(daemon, body)
    banner = out.getvalue()
    assert f"read-write socket: {tmp_path / 'run' / 'hvmon-sock'}" in banner
    assert "agent web: listening on 127.0.0.1:" in banner
    assert not (tmp_path / "run" / "hvmon-sock").exists()  # removed on stop
