"""``hvmon collectd-exec``: a long-running child of collectd's Exec plugin.

Every ``COLLECTD_INTERVAL`` seconds it reads the host's snapshot — from a
daemon over its read-only socket (``get_snapshot``) or from a driver it opens
itself — and prints ``PUTVAL`` lines; lifecycle events become ``PUTNOTIF``
lines as they happen. A domain whose stats miss the snapshot's per-domain
deadline is left out (or sent with its last values) and never delays the
others. It exits with status 0 and no traceback when collectd closes the pipe
or sends SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from hvmon.core.errors import HvmonError
from hvmon.core.gcpause import paused_gc
from hvmon.core.uri import parse_uri
from hvmon.plugins.collectd.text import putnotif_line, putval_lines
from hvmon.plugins.collectd.values import (
    HOSTNAME_FORMATS,
    PLUGIN_INSTANCE_FORMATS,
    STALE_POLICIES,
    Naming,
    event_notification,
    naming_problems,
    snapshot_values,
)

if TYPE_CHECKING:
    from hvmon.cli.command import Command
    from hvmon.cli.context import CliContext
    from hvmon.core.api import Connection, DomainEvent
    from hvmon.core.snapshot.model import Snapshot

DEFAULT_INTERVAL = 10.0
#: consecutive failed snapshots before giving up (collectd starts the program again)
MAX_FAILURES = 3
#: longest wait between two looks at the inbox (signal handlers run in between)
POLL = 0.25
_STOP = object()


@dataclass(frozen=True)
class ExecOptions:
    """What one ``collectd-exec`` run does."""

    interval: float = DEFAULT_INTERVAL
    hostname: str = ""
    hostname_format: str = "hostname"
    plugin_instance_format: str = "name"
    stale: str = "skip"
    max_age: float | None = None
    deadline: float | None = None
    notifications: bool = True
    count: int = 0  # stop after this many intervals (0: run until stopped)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect", dest="exec_connect", metavar="URI",
                        help="same as hvmon -c: a daemon's read-only socket "
                             "(test+unix:///default?socket=.../hvmon-sock-ro) or a driver URI")
    parser.add_argument("--interval", type=float, metavar="SECONDS",
                        help="seconds between value lists (default: $COLLECTD_INTERVAL, else 10)")
    parser.add_argument("--hostname", metavar="NAME",
                        help="host field (default: $COLLECTD_HOSTNAME, else the snapshot's host)")
    parser.add_argument("--hostname-format", choices=HOSTNAME_FORMATS, default="hostname",
                        help="host field of domain values, as the virt plugin's HostnameFormat "
                             "(default: hostname)")
    parser.add_argument("--plugin-instance-format", choices=PLUGIN_INSTANCE_FORMATS,
                        default="name", help="plugin instance of domain values, as the virt "
                                             "plugin's PluginInstanceFormat (default: name)")
    parser.add_argument("--stale", choices=STALE_POLICIES, default="skip",
                        help="a domain whose stats missed the deadline: skip it (default) or "
                             "send its last values")
    parser.add_argument("--max-age", type=float, metavar="SECONDS",
                        help="oldest snapshot to accept (default: half the interval)")
    parser.add_argument("--deadline", type=float, metavar="SECONDS",
                        help="per-domain stats deadline when opening a driver directly "
                             "(default: 5; a daemon uses its own)")
    parser.add_argument("--no-notifications", dest="notifications", action="store_false",
                        help="no PUTNOTIF lines for lifecycle events")
    parser.add_argument("--count", type=int, default=0, metavar="N",
                        help="stop after N intervals (default: run until collectd stops it)")


def options_from(args: argparse.Namespace, env: dict[str, str]) -> ExecOptions:
    """Command-line arguments over the environment collectd sets; ValueError on bad input."""
    interval = args.interval
    if interval is None:
        text = env.get("COLLECTD_INTERVAL", "").strip()
        try:
            interval = float(text) if text else DEFAULT_INTERVAL
        except ValueError:
            raise ValueError(f"COLLECTD_INTERVAL is not a number: {text!r:.40}") from None
    if not interval > 0 or interval == float("inf"):
        raise ValueError(f"the interval must be a positive number of seconds, got {interval}")
    problems = naming_problems(args.hostname_format, args.plugin_instance_format)
    if problems:
        raise ValueError(problems[0])
    for name in ("max_age", "deadline"):
        value = getattr(args, name)
        if value is not None and not value >= (0 if name == "max_age" else 1e-3):
            raise ValueError(f"--{name.replace('_', '-')} must be a positive number of seconds")
    if args.count < 0:
        raise ValueError("--count must be >= 0")
    hostname = args.hostname or env.get("COLLECTD_HOSTNAME", "")
    return ExecOptions(interval, hostname, args.hostname_format, args.plugin_instance_format,
                       args.stale, args.max_age, args.deadline, args.notifications, args.count)


class SnapshotSource:
    """``get()`` the snapshot: the daemon's (remote URI) or a local cache with a deadline."""

    def __init__(self, conn: Connection, uri: str, deadline: float | None) -> None:
        self._conn = conn
        self._cache = None
        local = False
        with contextlib.suppress(HvmonError):
            local = parse_uri(uri).is_local
        if local:
            from hvmon.core.snapshot.cache import SnapshotCache

            self._cache = SnapshotCache(conn, **({} if deadline is None
                                                 else {"deadline": deadline}))

    def get(self, max_age: float) -> Snapshot:
        if self._cache is not None:
            return self._cache.get(max_age)
        return self._conn.get_snapshot(max_age)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.stop()


class ExecRunner:
    """The loop: wait for the next tick or an event; print; stop on ``_STOP``."""

    def __init__(self, source: SnapshotSource, options: ExecOptions, out: TextIO,
                 err: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.options = options
        self.out = out
        self.err = err
        self.clock = clock
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.naming: Naming | None = None
        self.last_time = 0.0
        self.failures = 0

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler or another thread)."""
        self.inbox.put(_STOP)

    def on_event(self, event: DomainEvent) -> None:
        self.inbox.put(event)

    def run(self) -> int:
        """Print until stopped; the exit status (1 after repeated snapshot failures)."""
        interval = self.options.interval
        next_tick = self.clock()
        ticks = 0
        while True:
            wait = next_tick - self.clock()
            try:  # short waits: a signal delivered to another thread runs its handler
                item = (self.inbox.get(timeout=min(wait, POLL)) if wait > 0  # only when this
                        else self.inbox.get_nowait())                      # thread wakes up
            except queue.Empty:
                if wait > POLL:
                    continue
                item = None
            if item is _STOP:
                return 0
            if item is not None:
                self._notify(item)
                continue
            if not self._tick():
                return 1
            ticks += 1
            if self.options.count and ticks >= self.options.count:
                return 0
            next_tick += interval
            now = self.clock()
            if next_tick < now:  # fell behind (a slow snapshot): skip, never burst
                next_tick = now + interval - (now - next_tick) % interval

    def _tick(self) -> bool:
        opts = self.options
        max_age = opts.interval / 2 if opts.max_age is None else opts.max_age
        try:
            snap = self.source.get(max_age)
        except HvmonError as exc:
            self.failures += 1
            self.err.write(f"error: collectd-exec: cannot read the snapshot: {exc}\n")
            self.err.flush()
            return self.failures < MAX_FAILURES
        self.failures = 0
        if self.naming is None:
            self.naming = Naming(opts.hostname or snap.host.hostname, opts.hostname_format,
                                 opts.plugin_instance_format)
        if snap.timestamp <= self.last_time:  # collectd refuses values that are not newer
            return True
        self.last_time = snap.timestamp
        with paused_gc():
            values = snapshot_values(snap, self.naming, stale=opts.stale)
            self.out.writelines(putval_lines(values, snap.timestamp, opts.interval))
            del values
        self.out.flush()
        return True

    def _notify(self, event: DomainEvent) -> None:
        if self.naming is None:
            return  # no snapshot yet: the host name is not known
        note = event_notification(event.domain.name, event.domain.uuid, event.event,
                                  event.detail, event.timestamp, self.naming)
        self.out.write(putnotif_line(note))
        self.out.flush()


def handler(ctx: CliContext, args: argparse.Namespace) -> int:
    """``hvmon collectd-exec``."""
    try:
        options = options_from(args, dict(os.environ))
    except ValueError as exc:
        ctx.warn(f"collectd-exec: {exc}")
        return 2
    ctx.readonly = True
    if args.exec_connect:
        ctx.uri = args.exec_connect
    conn = ctx.conn
    source = SnapshotSource(conn, ctx.uri, options.deadline)
    runner = ExecRunner(source, options, ctx.out, ctx.err)
    callback_id = conn.domain_event_register(runner.on_event) if options.notifications else None
    restore = _on_signals(runner)
    try:
        return runner.run()
    except BrokenPipeError:  # collectd closed the pipe: it stopped or dropped us
        _silence(ctx.out)
        return 0
    finally:
        restore()
        if callback_id is not None:
            with contextlib.suppress(HvmonError):
                conn.domain_event_deregister(callback_id)
        source.close()


def _on_signals(runner: ExecRunner) -> Callable[[], None]:
    """SIGTERM/SIGINT/SIGHUP end the loop cleanly; returns the undo (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        previous[signum] = signal.signal(signum, lambda *_: runner.stop())

    def restore() -> None:
        for signum, old in previous.items():
            signal.signal(signum, old)

    return restore


def _silence(out: TextIO) -> None:
    """Point the closed stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def commands() -> list[Command]:
    """The CLI commands this plugin adds."""
    from hvmon.cli.command import Command

    return [Command("collectd-exec", "feed collectd's Exec plugin: PUTVAL/PUTNOTIF lines "
                    "every $COLLECTD_INTERVAL", handler, add_arguments, group="Domain Monitoring")]
