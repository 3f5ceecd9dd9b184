"""``hvmon console``: hosts, list, info, watch and call over the broker.

``hvmon console [broker options] ACTION ...``; every action prints a table
(or fields) for people and JSON with ``--json``. Hosts seen before (kept in a
small state file) that do not answer the locate are listed as *stale*.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hvmon.core.errors import HvmonError, InvalidArgument
from hvmon.plugins.amqp.config import NAME_RE, OPTIONS, BrokerSettings, url_problems
from hvmon.plugins.amqp.console.client import ConsoleClient, HostView
from hvmon.plugins.amqp.console.views import (
    domains_table,
    event_line,
    host_rows,
    hosts_table,
    object_fields,
    result_text,
)
from hvmon.plugins.amqp.schema import CLASSES, encode

if TYPE_CHECKING:
    from hvmon.cli.command import Command
    from hvmon.cli.context import CliContext

GROUP = "Datacenter (AMQP)"
ACTIONS = ("hosts", "list", "info", "watch", "call")


class ConsoleUsage(InvalidArgument):
    """A bad console argument (exit status 2)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument("--url", default=env("HVMON_AMQP_URL", OPTIONS["url"]),
                        help="broker URL, amqp:// or amqps:// (default: $HVMON_AMQP_URL or "
                             f"{OPTIONS['url']})")
    parser.add_argument("--user", default=env("HVMON_AMQP_USER", "guest"),
                        help="broker user, also the user_id agents check for control "
                             "(default: $HVMON_AMQP_USER or guest)")
    parser.add_argument("--password-file", metavar="FILE",
                        help="file holding the password (default: $HVMON_AMQP_PASSWORD "
                             "or guest)")
    parser.add_argument("--prefix", default=env("HVMON_AMQP_PREFIX", "hvmon"),
                        help="exchange and queue prefix of the agents (default: hvmon)")
    parser.add_argument("--tls-ca", metavar="FILE", default="", help="CA file for amqps://")
    parser.add_argument("--tls-cert", metavar="FILE", default="",
                        help="client certificate for amqps://")
    parser.add_argument("--tls-key", metavar="FILE", default="", help="its key")
    parser.add_argument("--wait", type=float, default=1.0, metavar="SECONDS",
                        help="how long to collect heartbeats after a locate (default: 1)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="how long to wait for a method reply (default: 10)")
    parser.add_argument("--state", metavar="FILE",
                        help="where hosts seen before are remembered (default: "
                             "$XDG_STATE_HOME/hvmon/console-PREFIX.json); '' for none")
    actions = parser.add_subparsers(dest="console_action", metavar="ACTION", required=True)

    def action(name: str, text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=text, description=text)
        sub.add_argument("--json", action="store_true", dest="sub_json",
                         help="print JSON instead of text")
        return sub

    action("hosts", "the hosts whose agents answer (and stale ones seen before)")
    sub = action("list", "domains across all hosts, with a host column")
    sub.add_argument("--host", action="append", help="only this host (repeatable)")
    sub = action("info", "a host's facts, or one object's properties and statistics")
    sub.add_argument("host")
    sub.add_argument("object", nargs="?", choices=CLASSES[1:], help="domain, pool, ...")
    sub.add_argument("name", nargs="?",
                     help="the object's name (a volume: POOL/NAME, its key or /path)")
    sub = action("watch", "print lifecycle events and host status changes as they happen")
    sub.add_argument("--host", help="only this host's events")
    sub.add_argument("--count", type=int, default=0, metavar="N",
                     help="stop after N events (default: run until interrupted)")
    sub.add_argument("--duration", type=float, default=0.0, metavar="SECONDS",
                     help="stop after this long (default: run until interrupted)")
    sub.add_argument("--stale-after", type=float, default=3.0, metavar="INTERVALS",
                     help="a host is stale after this many missed heartbeat intervals")
    sub = action("call", "call a method on one host: call HOST OBJECT METHOD [ARG ...]")
    sub.add_argument("host")
    sub.add_argument("object", choices=CLASSES)
    sub.add_argument("method", help="e.g. create, destroy, getXMLDesc, list, info")
    sub.add_argument("args", nargs="*", metavar="ARG",
                     help="NAME, key=value, key:=JSON or key=@FILE")
    sub.add_argument("--id", dest="request_id", help="request id (default: random)")
    sub = action("migrate", "move a domain between hosts: its host's daemon drives it")
    sub.add_argument("domain")
    sub.add_argument("--from", dest="source", required=True, metavar="HOST",
                     help="the host the domain runs on")
    where = sub.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", dest="dest_host", metavar="HOST",
                       help="the destination host (it advertises its migration_uri)")
    where.add_argument("--to-uri", metavar="URI",
                       help="the destination's connection URI, as the source host reaches it")
    sub.add_argument("--offline", action="store_true",
                     help="paused copy instead of a live migration")
    sub.add_argument("--persistent", action="store_true",
                     help="define the domain on the destination")
    sub.add_argument("--undefinesource", action="store_true",
                     help="undefine it on the source after success")


def settings_from(args: argparse.Namespace) -> BrokerSettings:
    problems = url_problems(args.url, "--url")
    if problems:
        raise ConsoleUsage(problems[0])
    password = os.environ.get("HVMON_AMQP_PASSWORD", "guest")
    if args.password_file:
        try:
            password = Path(args.password_file).read_text().strip()
        except OSError as exc:
            raise ConsoleUsage(f"--password-file: {exc.strerror or exc}") from None
    if not NAME_RE.match(args.prefix):
        raise ConsoleUsage(f"--prefix: use letters, digits, '.', '_' and '-', "
                           f"got {args.prefix!r:.40}")
    for name in ("wait", "timeout"):
        if not 0 < getattr(args, name) <= 3600:
            raise ConsoleUsage(f"--{name} must be from 0 to 3600 seconds")
    return BrokerSettings(args.url, args.user, password, args.tls_ca, args.tls_cert,
                          args.tls_key, heartbeat=30, reconnect_interval=1.0)


def call_args(items: list[str]) -> dict[str, Any]:
    """``NAME`` (the object's name), ``key=value``, ``key:=JSON``, ``key=@FILE``."""
    args: dict[str, Any] = {}
    for item in items:
        if ":=" in item and item.index(":=") < item.find("=") + 1:
            key, raw = item.split(":=", 1)
            try:
                args[key] = json.loads(raw)
            except ValueError:
                raise ConsoleUsage(f"argument {key}: not JSON: {raw[:40]!r}") from None
        elif "=" in item:
            key, value = item.split("=", 1)
            if value.startswith("@"):
                try:
                    value = Path(value[1:]).read_text()
                except OSError as exc:
                    raise ConsoleUsage(f"argument {key}: {exc.strerror or exc}: "
                                       f"{value[1:]}") from None
            args[key] = value
        elif "name" not in args:
            args["name"] = item
        else:
            raise ConsoleUsage(f"argument {item!r:.40}: use key=value")
    return args


# --- state file --------------------------------------------------------------------------
def state_path(args: argparse.Namespace) -> Path | None:
    if args.state is not None:
        return Path(args.state) if args.state else None
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hvmon" / f"console-{args.prefix}.json"


def load_state(path: Path | None) -> dict[str, HostView]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
        return {h["host"]: HostView.from_dict(h) for h in data.get("hosts", [])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def save_state(path: Path | None, hosts: dict[str, HostView]) -> None:
    if path is None:
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_bytes(encode({"hosts": [v.to_dict() for v in hosts.values()]}))
        tmp.replace(path)


async def discover(client: ConsoleClient, args: argparse.Namespace) -> None:
    """Known hosts from the state file, then a locate; the file is updated."""
    path = state_path(args)
    client.hosts.update(load_state(path))
    await client.locate(args.wait, expect=list(client.hosts))
    save_state(path, client.hosts)


# --- actions -----------------------------------------------------------------------------
async def do_hosts(ctx: CliContext, args: argparse.Namespace, client: ConsoleClient,
                   as_json: bool) -> int:
    await discover(client, args)
    rows = host_rows(client.hosts.values())
    if as_json:
        ctx.write_json({"hosts": rows})
    else:
        ctx.write(hosts_table(rows))
    return 0


async def do_list(ctx: CliContext, args: argparse.Namespace, client: ConsoleClient,
                  as_json: bool) -> int:
    await discover(client, args)
    hosts = args.host or client.live_hosts()
    results = await asyncio.gather(*(client.call(h, "domain.list") for h in hosts),
                                   return_exceptions=True)
    rows: list[dict[str, Any]] = []
    failed = 0
    for host, result in zip(hosts, results, strict=True):
        if isinstance(result, HvmonError):
            failed += 1
            ctx.warn(str(result) if str(result).startswith(host) else f"{host}: {result}")
        elif isinstance(result, BaseException):
            raise result
        else:
            rows += [{"host": host, **dom} for dom in result]
    stale = sorted(set(client.hosts) - set(client.live_hosts()) - set(hosts))
    for host in stale:
        ctx.err.write(f"warning: host {host} is stale: its domains are not listed\n")
    if as_json:
        ctx.write_json({"domains": rows, "stale_hosts": stale})
    else:
        ctx.write(domains_table(rows))
    return 1 if failed else 0


async def do_info(ctx: CliContext, args: argparse.Namespace, client: ConsoleClient,
                  as_json: bool) -> int:
    if args.object is None:
        result = await client.call(args.host, "node.info")
    else:
        if args.name is None:
            raise ConsoleUsage(f"info {args.host} {args.object}: name the {args.object}")
        result = await client.call(args.host, f"{args.object}.info",
                                   object_args(args.object, args.name))
    if as_json:
        ctx.write_json({"host": args.host, "object": args.object or "node", "info": result})
    else:
        ctx.write(object_fields(result))
    return 0


def object_args(cls: str, name: str) -> dict[str, str]:
    if cls != "volume":
        return {"name": name}
    if name.startswith("/"):
        return {"path": name}
    if "/" in name:
        pool, vol = name.split("/", 1)
        return {"pool": pool, "name": vol}
    return {"key": name}


async def do_call(ctx: CliContext, args: argparse.Namespace, client: ConsoleClient,
                  as_json: bool) -> int:
    method = f"{args.object}.{args.method}"
    reply = await client.request(args.host, method, call_args(args.args),
                                 timeout=args.timeout, request_id=args.request_id)
    if as_json:
        ctx.write_json(reply)
        return 0 if reply.get("ok") else 1
    if not reply.get("ok"):
        error = reply.get("error") or {}
        ctx.warn(f"{args.host}: {error.get('text', 'failed')} (code {error.get('code')})")
        return 1
    ctx.write(result_text(reply.get("result")))
    return 0


async def do_watch(ctx: CliContext, args: argparse.Namespace, client: ConsoleClient,
                   as_json: bool) -> int:
    await client.subscribe_events(args.host)
    await discover(client, args)
    ctx.err.write(f"watching {len(client.live_hosts())} host(s) under prefix "
                  f"'{args.prefix}'; Ctrl-C to stop\n")
    ctx.err.flush()
    loop = asyncio.get_running_loop()
    end = loop.time() + args.duration if args.duration > 0 else None
    tracker = HostTracker(client.hosts, args.stale_after)
    seen = 0
    while end is None or loop.time() < end:
        step = 0.5 if end is None else max(0.0, min(0.5, end - loop.time()))
        body = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(step):
                body = await client.next_event()
        if body is not None:
            ctx.write(json.dumps(body, sort_keys=True) + "\n" if as_json else event_line(body))
            seen += 1
        for host, status in tracker.changes(time.time()):
            if not args.host or host == args.host:
                _host_note(ctx, client.hosts[host], status, as_json)
        ctx.out.flush()
        if args.count and seen >= args.count:
            break
    return 0


class HostTracker:
    """Turns heartbeats into status changes: ``up`` (new or back), ``stale``, ``restarted``."""

    def __init__(self, hosts: dict[str, HostView], stale_after: float) -> None:
        self.hosts = hosts
        self.stale_after = stale_after
        self.status = {h: ("up" if v.answered else "stale") for h, v in hosts.items()}
        self.epochs = {h: v.epoch for h, v in hosts.items()}

    def changes(self, now: float) -> list[tuple[str, str]]:
        out = []
        for host, view in sorted(self.hosts.items()):
            stale = view.last_seen == 0 or \
                now - view.last_seen > self.stale_after * max(view.interval, 0.05)
            status = "stale" if stale else "up"
            if not stale and self.epochs.get(host, view.epoch) != view.epoch:
                out.append((host, "restarted"))
            elif self.status.get(host) != status:
                out.append((host, status))
            self.status[host] = status
            self.epochs[host] = view.epoch
        return out


def _host_note(ctx: CliContext, view: HostView, status: str, as_json: bool) -> None:
    if as_json:
        ctx.write(json.dumps({"kind": "host", "host": view.host, "status": status,
                              "epoch": view.epoch, "last_seen": view.last_seen}) + "\n")
    elif status == "stale":
        ctx.write(f"host {view.host} is stale: no heartbeat for "
                  f"{time.time() - view.last_seen:.0f} s\n")
    elif status == "restarted":
        ctx.write(f"host {view.host} restarted (epoch {view.epoch})\n")
    else:
        ctx.write(f"host {view.host} is up (epoch {view.epoch})\n")


async def do_migrate(ctx: CliContext, args: argparse.Namespace, client: ConsoleClient,
                     as_json: bool) -> int:
    """``domain.migrate`` on the source host's agent (it needs control there)."""
    dest_uri, dest = args.to_uri, args.to_uri
    if args.dest_host:
        dest_uri = await _migration_uri(client, args, args.dest_host)
        dest = args.dest_host
    reply = await client.request(args.source, "domain.migrate", {
        "name": args.domain, "destination_uri": dest_uri, "live": not args.offline,
        "persistent": args.persistent, "undefine_source": args.undefinesource},
        timeout=max(args.timeout, 600.0))
    if as_json:
        ctx.write_json(reply)
        return 0 if reply.get("ok") else 1
    if not reply.get("ok"):
        error = reply.get("error") or {}
        ctx.warn(f"{args.source}: {error.get('text', 'failed')} (code {error.get('code')})")
        return 1
    ctx.write(f"Domain '{args.domain}' migrated from {args.source} to {dest}\n")
    return 0


async def _migration_uri(client: ConsoleClient, args: argparse.Namespace, host: str) -> str:
    """The URI ``host`` advertises in its heartbeat for incoming migrations."""
    await discover(client, args)
    view = client.hosts.get(host)
    if view is None or not view.answered:
        raise HvmonError(f"{host}: no heartbeat from this host (is its amqp agent running?)")
    if not view.migration_uri:
        raise HvmonError(f"{host} advertises no migration_uri: set [agents.amqp] "
                         "migration_uri on it, or give --to-uri")
    return view.migration_uri


RUNNERS = {"hosts": do_hosts, "list": do_list, "info": do_info, "watch": do_watch,
           "call": do_call, "migrate": do_migrate}


def handler(ctx: CliContext, args: argparse.Namespace) -> int:
    """``hvmon console``."""
    try:
        settings = settings_from(args)
    except ConsoleUsage as exc:
        ctx.warn(f"console: {exc}")
        return 2
    as_json = ctx.json or bool(getattr(args, "sub_json", False))
    runner = RUNNERS[args.console_action]

    async def run() -> int:
        async with ConsoleClient(settings, args.prefix, timeout=args.timeout) as client:
            return await runner(ctx, args, client, as_json)

    try:
        return asyncio.run(run())
    except ConsoleUsage as exc:
        ctx.warn(f"console: {exc}")
        return 2


def commands() -> list[Command]:
    """The CLI commands this plugin adds."""
    from hvmon.cli.command import Command

    return [Command("console", "the datacenter view: hosts, domains, events and control "
                    "over AMQP", handler, add_arguments, json=True, group=GROUP)]
