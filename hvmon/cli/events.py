"""``event``: wait for domain lifecycle events and print them as virsh does."""

from __future__ import annotations

import argparse
import queue
import time
from typing import TYPE_CHECKING

from hvmon.cli import lookup
from hvmon.cli.command import Command
from hvmon.cli.inputs import CliError

if TYPE_CHECKING:
    from hvmon.cli.context import CliContext
    from hvmon.core.api import DomainEvent

GROUP = "Domain Events"
EVENT_NAMES = ("lifecycle",)
#: seconds between checks for Ctrl-C and the deadline while waiting
_POLL = 0.25


def _args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--domain", help="filter by domain name, id or uuid")
    parser.add_argument("--event", choices=EVENT_NAMES, help="which event type to wait for")
    parser.add_argument("--all", action="store_true", help="wait for all events")
    parser.add_argument("--loop", action="store_true",
                        help="loop until timeout or interrupt, rather than one event")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="timeout seconds")
    parser.add_argument("--list", action="store_true", help="list valid event types")
    parser.add_argument("--timestamp", action="store_true",
                        help="show timestamp for each printed event")


def format_event(event: DomainEvent, timestamp: bool = False) -> str:
    """``event 'lifecycle' for domain 'test': Started Booted``."""
    line = f"event 'lifecycle' for domain '{event.domain.name}': {event.describe()}"
    if timestamp:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.timestamp))
        millis = int((event.timestamp % 1) * 1000)
        line = f"{when}.{millis:03d}{time.strftime('%z', time.localtime(event.timestamp))}: " \
               + line
    return line


def cmd_event(ctx: CliContext, args: argparse.Namespace) -> int:
    if args.list:
        ctx.write("".join(f"{name}\n" for name in EVENT_NAMES))
        return 0
    if args.timeout is not None and args.timeout <= 0:
        raise CliError("timeout must be a positive number of seconds")
    wanted = lookup.domain(ctx.conn, args.domain).uuid if args.domain else None
    inbox: queue.SimpleQueue[DomainEvent] = queue.SimpleQueue()

    def on_event(event: DomainEvent) -> None:
        if wanted is None or event.domain.uuid == wanted:
            inbox.put(event)

    callback_id = ctx.conn.domain_event_register(on_event)
    count, timed_out = 0, False
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    try:
        while args.loop or count == 0:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                timed_out = True
                break
            wait = _POLL if deadline is None else min(_POLL, deadline - now)
            try:
                event = inbox.get(timeout=wait)
            except queue.Empty:
                continue
            count += 1
            ctx.write(format_event(event, args.timestamp) + "\n")
            ctx.out.flush()
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a --loop ends: report and exit normally
    finally:
        ctx.conn.domain_event_deregister(callback_id)
    if timed_out:
        ctx.write("event loop timed out\n")
    ctx.write(f"events received: {count}\n")
    return 0


def commands() -> list[Command]:
    """The event commands."""
    return [Command("event", "print domain lifecycle events", cmd_event, _args, group=GROUP)]
