"""The ``collectd`` agent: pushes the snapshot to collectd servers over the network protocol.

Every ``interval`` seconds the daemon's shared snapshot becomes value lists
(:mod:`values`), packed once per packet budget and sealed per server (none,
signed or encrypted, :mod:`network`), then sent over UDP (IPv4 or IPv6) from a
worker thread — the daemon's loop never encodes. Lifecycle events from
``ctx.events()`` are sent as notifications as they happen. Passwords are kept
out of logs, health messages and validation errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hvmon.core.errors import HvmonError
from hvmon.core.gcpause import paused_gc
from hvmon.daemon.addresses import parse_address
from hvmon.daemon.agent import AgentHealth
from hvmon.plugins.collectd.network import (
    DEFAULT_PORT,
    MAX_PACKET_SIZE,
    SECURITY_LEVELS,
    Encoder,
    Security,
)
from hvmon.plugins.collectd.values import (
    STALE_POLICIES,
    Naming,
    Notification,
    ValueList,
    event_notification,
    naming_problems,
    snapshot_values,
)

if TYPE_CHECKING:
    from hvmon.core.api import DomainEvent
    from hvmon.daemon.context import AgentContext

DEFAULT_SERVER = f"127.0.0.1:{DEFAULT_PORT}"
SERVER_KEYS = ("address", "security_level", "username", "password")

#: the agent's own keys in ``[agents.collectd]`` and their defaults
OPTIONS: Mapping[str, Any] = {
    "servers": [{"address": DEFAULT_SERVER}],
    "interval": 10.0,
    "hostname": "",  # "": the host's name
    "hostname_format": "hostname",
    "plugin_instance_format": "name",
    "stale": "skip",
    "notifications": True,
    "max_packet_size": MAX_PACKET_SIZE,
    "snapshot_max_age": None,  # None: half the interval
    "burst_packets": 64,  # packets sent back to back before a pause; 0: never pause
    "burst_pause": 0.001,  # seconds between bursts, so a receiver's socket buffer drains
}


@dataclass(frozen=True)
class Server:
    """One destination: ``address`` as written, resolved lazily, and its security."""

    address: str
    host: str
    port: int
    security: Security = field(default_factory=Security)


def parse_servers(servers: Any) -> tuple[list[Server], list[str]]:
    """The ``servers`` option as :class:`Server` values, and one line per problem."""
    problems: list[str] = []
    parsed: list[Server] = []
    if not isinstance(servers, list | tuple) or not servers:
        return [], ["servers: must be a non-empty list of tables "
                    f"(e.g. [{{ address = \"{DEFAULT_SERVER}\" }}])"]
    for index, table in enumerate(servers):
        where = f"servers[{index}]"
        if not isinstance(table, Mapping):
            problems.append(f"{where}: must be a table like {{ address = \"{DEFAULT_SERVER}\" }}")
            continue
        unknown = sorted(set(table) - set(SERVER_KEYS))
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(unknown)} "
                            f"(known: {', '.join(SERVER_KEYS)})")
        values = {key: table.get(key, "") for key in SERVER_KEYS}
        values["address"] = values["address"] or DEFAULT_SERVER
        values["security_level"] = values["security_level"] or "none"
        bad = [key for key, value in values.items() if not isinstance(value, str)]
        if bad:  # never echo the value: it may be the password
            problems.append(f"{where}: {', '.join(bad)} must be a string")
            continue
        try:
            host, port = parse_address(values["address"])
        except ValueError as exc:
            problems.append(f"{where}.address: {exc}")
            continue
        if port == 0:
            problems.append(f"{where}.address: {values['address']!r} needs a port "
                            f"(collectd listens on {DEFAULT_PORT})")
            continue
        level = values["security_level"]
        if level not in SECURITY_LEVELS:
            problems.append(f"{where}.security_level: must be one of "
                            f"{', '.join(SECURITY_LEVELS)}, got {level!r:.40}")
            continue
        try:
            security = Security(level, values["username"], values["password"])
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        parsed.append(Server(values["address"], host, port, security))
    return parsed, problems


def validate_options(options: Mapping[str, Any]) -> Sequence[str]:
    """One problem per bad option of ``[agents.collectd]``."""
    problems = list(parse_servers(options["servers"])[1])
    interval = options["interval"]
    if not 0 < interval < float("inf"):
        problems.append(f"interval: must be a positive number of seconds, got {interval!r:.40}")
    problems += naming_problems(options["hostname_format"], options["plugin_instance_format"])
    if options["stale"] not in STALE_POLICIES:
        problems.append(f"stale: must be one of {', '.join(STALE_POLICIES)}, "
                        f"got {options['stale']!r:.40}")
    size = options["max_packet_size"]
    if not 256 <= size <= 65507:
        problems.append(f"max_packet_size: must be from 256 to 65507 bytes, got {size}")
    burst, pause = options["burst_packets"], options["burst_pause"]
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
        problems.append(f"burst_packets: must be a whole number >= 0, got {burst!r:.40}")
    if isinstance(pause, bool) or not isinstance(pause, int | float) or not 0 <= pause <= 1:
        problems.append(f"burst_pause: must be from 0 to 1 second, got {pause!r:.40}")
    max_age = options["snapshot_max_age"]
    if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int | float)
                                or max_age < 0):
        problems.append(f"snapshot_max_age: must be a number of seconds >= 0, got {max_age!r:.40}")
    return problems


class Target:
    """A server with its UDP socket (connected, so ICMP errors come back) and encoder.

    Packets go out in bursts of ``burst`` with ``pause`` seconds between them: 10,000
    domains make ~6,000 packets per interval, and sent back to back they overflow a
    receiver's socket buffer (~150 packets by default on Linux) before collectd reads.
    """

    def __init__(self, server: Server, max_size: int, burst: int = 64, pause: float = 0.001,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.server = server
        self.encoder = Encoder(server.security, max_size)
        self.burst, self.pause, self._sleep = burst, pause, sleep
        self.sock: socket.socket | None = None
        self.sent = 0
        self.error = ""

    def open(self) -> None:
        """Resolve the address and connect a UDP socket of its family (may block on DNS)."""
        infos = socket.getaddrinfo(self.server.host, self.server.port, type=socket.SOCK_DGRAM)
        family, kind, proto, _, sockaddr = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.connect(sockaddr)
        except OSError:
            sock.close()
            raise
        self.sock = sock

    def send(self, packets: Sequence[bytes]) -> None:
        """Send every packet; a refused or failed send is noted and the rest still go."""
        if self.sock is None:
            return
        errors = 0
        for count, packet in enumerate(packets):
            if self.burst and count and not count % self.burst and self.pause:
                self._sleep(self.pause)
            try:
                self.sock.send(packet)
                self.sent += 1
            except OSError as exc:  # ECONNREFUSED: nobody listened to the previous one
                errors += 1
                self.error = f"{self.server.address}: {exc.strerror or exc}"
        if not errors:
            self.error = ""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class CollectdAgent:
    """Pushes value lists every ``interval`` and notifications on events."""

    def __init__(self) -> None:
        self._ctx: AgentContext | None = None
        self._targets: list[Target] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._naming: Naming | None = None
        self._last_time = 0.0
        self._problem = ""
        self._lock = threading.Lock()  # pushes and notifications share the sockets
        self.pushes = 0

    async def start(self, ctx: AgentContext) -> None:
        """Open one socket per server and start the push loop (and the event relay)."""
        self._ctx = ctx
        options = ctx.config.options
        servers, problems = parse_servers(options["servers"])
        if problems:
            raise ValueError(problems[0])
        for server in servers:
            target = Target(server, options["max_packet_size"], options["burst_packets"],
                            options["burst_pause"])
            try:
                await asyncio.to_thread(target.open)
            except OSError as exc:
                raise OSError(exc.errno, f"cannot reach collectd at {server.address}: "
                                         f"{exc.strerror or exc}") from None
            self._targets.append(target)
            ctx.logger.info("sending to collectd at %s (security: %s)", server.address,
                            server.security.level)
        hostname = options["hostname"] or await asyncio.to_thread(ctx.connection.get_hostname)
        self._naming = Naming(hostname, options["hostname_format"],
                              options["plugin_instance_format"])
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._push_loop(), name="collectd-push"))
        if options["notifications"]:
            self._tasks.append(loop.create_task(self._event_loop(), name="collectd-events"))

    async def stop(self) -> None:
        """Cancel the loops and close the sockets (safe after a failed start)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        targets, self._targets = self._targets, []
        with self._lock:
            for target in targets:
                target.close()

    def health(self) -> AgentHealth:
        """``degraded`` while the snapshot fails or a server refuses packets."""
        if not self._targets:
            return AgentHealth("degraded", "not started")
        problem = self._problem or next((t.error for t in self._targets if t.error), "")
        return AgentHealth("degraded" if problem else "ok", problem)

    # --- pushing ----------------------------------------------------------------
    async def _push_loop(self) -> None:
        assert self._ctx is not None
        interval = float(self._ctx.config.options["interval"])
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            try:
                await asyncio.to_thread(self.push_once)
            except Exception as exc:  # noqa: BLE001 - keep pushing; health says why
                self._set_problem(f"push failed: {type(exc).__name__}: {exc}")
            next_tick += interval
            now = loop.time()
            if next_tick < now:  # a slow snapshot: skip the missed ticks, never burst
                next_tick = now + interval - (now - next_tick) % interval
            await asyncio.sleep(next_tick - now)

    def push_once(self) -> int:
        """Send one interval's value lists to every server; the number of value lists."""
        assert self._ctx is not None and self._naming is not None
        options = self._ctx.config.options
        interval = float(options["interval"])
        max_age = options["snapshot_max_age"]
        try:
            snap = self._ctx.snapshot.get(interval / 2 if max_age is None else float(max_age))
        except HvmonError as exc:
            self._set_problem(f"no snapshot: {exc}")
            return 0
        self._set_problem("")
        if snap.timestamp <= self._last_time:  # collectd drops values that are not newer
            return 0
        self._last_time = snap.timestamp
        with paused_gc():
            values = snapshot_values(snap, self._naming, stale=options["stale"])
            self._send(values, snap.timestamp, interval, ())
        self.pushes += 1
        return len(values)

    def _send(self, values: list[ValueList], stamp: float, interval: float,
              notes: Sequence[Notification]) -> None:
        payloads: dict[int, list[bytes]] = {}  # packed once per packet budget
        with self._lock:
            for target in self._targets:
                encoder = target.encoder
                chunks = payloads.get(encoder.budget)
                if chunks is None:
                    chunks = payloads[encoder.budget] = encoder.payloads(values, stamp,
                                                                         interval, notes)
                target.send([encoder.seal(chunk) for chunk in chunks])

    def _set_problem(self, problem: str) -> None:
        if problem != self._problem and self._ctx is not None:
            if problem:
                self._ctx.logger.warning("%s", problem)
            else:
                self._ctx.logger.info("pushing again")
        self._problem = problem

    # --- notifications ------------------------------------------------------------
    async def _event_loop(self) -> None:
        assert self._ctx is not None
        async for event in self._ctx.events():
            await asyncio.to_thread(self.notify, event)

    def notify(self, event: DomainEvent) -> None:
        """Send the notification of one lifecycle event to every server."""
        assert self._naming is not None and self._ctx is not None
        note = event_notification(event.domain.name, event.domain.uuid, event.event,
                                  event.detail, event.timestamp or time.time(), self._naming)
        self._send([], note.time, float(self._ctx.config.options["interval"]), (note,))
