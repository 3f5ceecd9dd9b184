"""The daemon: one driver, the snapshot cache, the RPC sockets and the supervised agents.

:class:`Daemon` composes the pieces; ``hvmon.daemon.main`` reads the command
line and the config and runs it. ``serve()`` installs the signal handlers:
SIGTERM and SIGINT stop gracefully, SIGHUP reloads the configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shlex
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast
from urllib.parse import urlencode

from hvmon.core.paths import socket_path
from hvmon.core.snapshot.cache import SnapshotCache
from hvmon.core.uri import parse_uri
from hvmon.daemon.config import DAEMON_KEYS, AgentConfig, Config, ConfigError, Schema
from hvmon.daemon.context import AgentContext, shared_connection
from hvmon.daemon.logs import agent_logger, configure_logging, set_agent_level
from hvmon.daemon.supervisor import Backoff, Supervisor

if TYPE_CHECKING:
    from hvmon.core.drivers.base import Driver
    from hvmon.daemon.plugins import PluginHost
    from hvmon.daemon.rpc.security import Security
    from hvmon.daemon.rpc.tls import TlsSettings

log = logging.getLogger("hvmon.daemon")

#: ``[daemon]`` keys a reload applies at once; the others need a restart
RELOADABLE = frozenset({
    "allow_control", "log_format", "log_level", "snapshot_max_age", "restart_delay",
    "restart_delay_max", "healthy_after", "health_interval",
})

#: how long start-up waits for the agents' first attempts before printing where they listen
FIRST_START_WAIT = 5.0


class Daemon:
    """A running hvmond (or ``hvmon serve``), driven from one asyncio loop."""

    def __init__(self, host: PluginHost, schema: Schema, config: Config, *, run_dir: Path,
                 state_dir: Path, load: Callable[[], Config] | None = None,
                 out: TextIO | None = None, log_stream: TextIO | None = None,
                 rpc: bool = True) -> None:
        self.host = host
        self.schema = schema
        self.config = config
        self.run_dir = run_dir
        self.state_dir = state_dir
        self._load = load
        self._out = out
        self._log_stream = log_stream
        self._rpc_enabled = rpc
        self.driver: Driver | None = None
        self.snapshots: SnapshotCache | None = None
        self.supervisor: Supervisor | None = None
        self.rpc: Any = None
        #: access rules and audit log from [access] and [audit] (built at start)
        self.security: Security | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = time.monotonic()
        self._reload_lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- paths ----------------------------------------------------------------------
    @property
    def rw_socket(self) -> Path:
        return socket_path(self.run_dir, readonly=False)

    @property
    def ro_socket(self) -> Path:
        return socket_path(self.run_dir, readonly=True)

    def client_uri(self) -> str:
        """The URI a client uses to reach this daemon's read-write socket."""
        parsed = parse_uri(self.config.daemon.uri)
        query = {**parsed.query, "socket": str(self.rw_socket)}
        return f"{parsed.driver}+unix://{parsed.path}?{urlencode(query, safe='/')}"

    # --- logging --------------------------------------------------------------------
    def apply_logging(self) -> None:
        """Log format and levels from the config (only when given a log stream)."""
        if self._log_stream is None:
            return
        daemon = self.config.daemon
        configure_logging(daemon.log_format, daemon.log_level, self._log_stream)
        for name, agent in self.config.agents.items():
            set_agent_level(name, agent.log_level)

    # --- life cycle -----------------------------------------------------------------
    async def start(self) -> None:
        """Open the driver, start the snapshot cache, the sockets and the agents."""
        self._loop = asyncio.get_running_loop()
        self._reload_lock = asyncio.Lock()
        self._started = time.monotonic()
        daemon = self.config.daemon
        try:
            self.driver = await asyncio.to_thread(self.host.driver_for_uri, daemon.uri)
            if daemon.default_network:
                await asyncio.to_thread(self._default_network)
            self.snapshots = SnapshotCache(
                shared_connection(self.driver, readonly=True), max_age=daemon.snapshot_max_age,
                interval=daemon.snapshot_interval or None, deadline=daemon.snapshot_deadline)
            self.snapshots.start()
            self.security, tls_settings = self._security()
            if self.security.audit is not None:
                self.security.audit.open()
            if self._rpc_enabled:
                from hvmon.daemon.rpc.server import RpcServer  # lazy: the sockets' module

                self.rpc = RpcServer(self.driver, served_uri=daemon.uri,
                                     snapshots=self.snapshots, info=self.info,
                                     security=self.security)
                await self.rpc.start(self.rw_socket, self.ro_socket,
                                     rw_mode=daemon.rw_socket_mode,
                                     ro_mode=daemon.ro_socket_mode)
                if tls_settings is not None:
                    await self.rpc.start_tls(tls_settings)
            self.supervisor = Supervisor(self._make_context, backoff=self._backoff(),
                                         health_interval=daemon.health_interval)
            enabled = [name for name in self.config.enabled if name in self.schema.agents]
            for name in enabled:
                await self._start_agent(name)
            await self.supervisor.wait_started(enabled, FIRST_START_WAIT)
        except BaseException:
            await self.stop()
            raise
        log.info("serving %s (driver %s) with %d agent(s)", daemon.uri, self.driver.name,
                 len(enabled))
        self._print_banner()

    def _default_network(self) -> None:
        """``[daemon] default_network``: libvirt's zero-conf NAT network on first run."""
        ensure = getattr(self.driver, "ensure_default_network", None)
        if ensure is None:
            log.warning("default_network: the %s driver has no virtual networks",
                        getattr(self.driver, "name", "?"))
            return
        subnet = ensure()
        if subnet is not None:  # defined just now (autostart ran when the driver opened)
            shared_connection(self.driver, readonly=False).lookup_network_by_name(
                "default").create()
            log.info("defined and started the default network on %s", subnet)

    async def stop(self) -> None:
        """Stop the agents, the sockets, the cache and the driver; idempotent."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.supervisor is not None:
            await self.supervisor.stop_all()
        if self.rpc is not None:
            rpc, self.rpc = self.rpc, None
            await rpc.stop()
        if self.snapshots is not None:
            snapshots, self.snapshots = self.snapshots, None
            await asyncio.to_thread(snapshots.stop)
        if self.driver is not None:
            driver, self.driver = self.driver, None
            driver.close()
        if self.security is not None and self.security.audit is not None:
            self.security.audit.close()

    async def serve(self) -> None:
        """Start, run until SIGTERM/SIGINT (SIGHUP reloads), stop."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        loop.add_signal_handler(signal.SIGTERM, stopping.set)
        loop.add_signal_handler(signal.SIGINT, stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        try:
            await self.start()
            await stopping.wait()
            log.info("stopping")
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)
            await self.stop()
        log.info("stopped")

    def request_reload(self) -> None:
        """Reload in a task (the SIGHUP handler)."""
        task = asyncio.get_running_loop().create_task(self.reload())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- reload --------------------------------------------------------------------
    async def reload(self) -> bool:
        """Read the config again; restart only the agents whose settings changed.

        A bad new config is logged and the running one kept (returns False).
        """
        if self._load is None or self._reload_lock is None:
            return False
        async with self._reload_lock:
            try:
                new = await asyncio.to_thread(self._load)
            except ConfigError as exc:
                log.error("reload refused, keeping the running configuration: %s", exc)
                return False
            old = self.config
            changed = [k for k in DAEMON_KEYS
                       if getattr(old.daemon, k) != getattr(new.daemon, k)]
            fixed = {k: getattr(old.daemon, k) for k in changed if k not in RELOADABLE}
            if fixed:
                log.warning("reload: %s changed; restart hvmond to apply",
                            ", ".join(f"daemon.{k}" for k in fixed))
            self.config = dataclasses.replace(new, daemon=dataclasses.replace(new.daemon,
                                                                              **fixed))
            self._apply_daemon_settings()
            await self._apply_agents(old)
            log.info("reload: configuration reloaded%s",
                     f" from {new.path}" if new.path else "")
            return True

    def _apply_daemon_settings(self) -> None:
        self.apply_logging()
        if self.supervisor is not None:
            self.supervisor.backoff = self._backoff()
            self.supervisor.health_interval = self.config.daemon.health_interval
        if self.snapshots is not None:
            self.snapshots.max_age = self.config.daemon.snapshot_max_age

    async def _apply_agents(self, old: Config) -> None:
        assert self.supervisor is not None
        for name in sorted(set(old.agents) | set(self.config.agents)):
            before, after = self._effective(old, name), self._effective(self.config, name)
            running = name in self.supervisor.names()
            if after is None:
                if running:
                    log.info("reload: stopping agent %s (disabled)", name)
                    await self.supervisor.stop(name)
            elif not running:
                log.info("reload: starting agent %s", name)
                await self._start_agent(name)
            elif after != before:
                log.info("reload: restarting agent %s (its configuration changed)", name)
                await self.supervisor.stop(name)
                await self._start_agent(name)

    def _effective(self, config: Config, name: str) -> tuple[AgentConfig, bool] | None:
        """(agent config, read-only) of an agent that runs under ``config``, else None."""
        agent = config.agents.get(name)
        if agent is None or not agent.enabled or name not in self.schema.agents:
            return None
        return agent, not (agent.control and config.daemon.allow_control)

    # --- agents -------------------------------------------------------------------------
    def _backoff(self) -> Backoff:
        daemon = self.config.daemon
        return Backoff(daemon.restart_delay, daemon.restart_delay_max, daemon.healthy_after)

    async def _start_agent(self, name: str) -> None:
        assert self.supervisor is not None
        agent = self.config.agents[name]
        if agent.control and not self.config.daemon.allow_control:
            log.warning("agent %s asks for control but [daemon] allow_control is false: "
                        "its connection is read-only", name)
        await self.supervisor.start(self.schema.agents[name], agent)

    def _make_context(self, name: str, config: AgentConfig,
                      report: Callable[[BaseException], None]) -> AgentContext:
        assert self.driver is not None and self.snapshots is not None
        assert self._loop is not None
        readonly = not (config.control and self.config.daemon.allow_control)
        connection = shared_connection(self.driver, readonly=readonly)
        if self.security is not None and self.security.audit is not None:
            from hvmon.core.access import AccessGate, Identity
            from hvmon.core.api import Connection, api_registry
            from hvmon.daemon.rpc.security import AuditedDriver

            who = Identity("agent", name=name)
            connection = Connection(
                cast("Driver", AuditedDriver(self.driver, self.security, who, api_registry())),
                AccessGate(readonly=readonly, identity=who))
        return AgentContext(
            name=name, config=config, logger=agent_logger(name),
            connection=connection,
            snapshot=self.snapshots, run_dir=self.run_dir, state_dir=self.state_dir,
            loop=self._loop, _on_failure=report,
        )

    def _security(self) -> tuple[Security, TlsSettings | None]:
        """Rules, audit log and TLS settings from the config's tables."""
        from hvmon.core.api import api_registry
        from hvmon.daemon.rpc.settings import security_from_config

        return security_from_config(self.config.tables, api_registry())

    # --- facts ---------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """``daemon_info``: version, uri, driver, pid, uptime, agents, snapshot (any thread)."""
        from hvmon import __version__

        snapshots, driver, supervisor = self.snapshots, self.driver, self.supervisor
        snap = snapshots.current() if snapshots is not None else None
        agents = supervisor.status() if supervisor is not None else {}
        return {
            "version": __version__,
            "uri": self.config.daemon.uri,
            "driver": driver.name if driver is not None else "",
            "pid": os.getpid(),
            "uptime": round(time.monotonic() - self._started, 3),
            "agents": {name: {k: view[k] for k in ("status", "message", "restarts",
                                                   "listening")}
                       for name, view in agents.items()},
            "snapshot": {"generation": snap.generation if snap else 0,
                         "age": round(snap.age(), 3) if snap else None},
        }

    def _print_banner(self) -> None:
        if self._out is None:
            return
        from hvmon import __version__

        assert self.driver is not None and self.supervisor is not None
        lines = [f"hvmond {__version__}: serving {self.config.daemon.uri} "
                 f"(driver {self.driver.name}), pid {os.getpid()}"]
        if self.rpc is not None:
            lines += [f"  read-write socket: {self.rw_socket}",
                      f"  read-only socket:  {self.ro_socket}"]
            lines += [f"  TLS listener:      {host}:{port}"
                      for host, port in self.rpc.tls_addresses]
        status = self.supervisor.status()
        for name, view in status.items():
            if view["status"] == "failed":
                state = f"failed: {view['message']}"
            elif view["listening"]:
                state = f"listening on {', '.join(view['listening'])}"
            else:
                state = view["status"] + (f" ({view['message']})" if view["message"] else "")
            lines.append(f"  agent {name}: {state}")
        if not status:
            lines.append("  no agents enabled")
        if self.rpc is not None:
            lines.append(f"try: hvmon -c {shlex.quote(self.client_uri())} list")
        lines.append("ready (SIGTERM or Ctrl-C stops, SIGHUP reloads the configuration)")
        with contextlib.suppress(OSError, ValueError):
            self._out.write("\n".join(lines) + "\n")
            self._out.flush()
