"""``domstats``: bulk statistics with libvirt's key names, as virsh prints them."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from hvmon.cli import lookup
from hvmon.cli.command import Command
from hvmon.core.stats import STATS_GROUPS

if TYPE_CHECKING:
    from hvmon.cli.context import CliContext
    from hvmon.core.types import DomainStats

GROUP = "Domain Monitoring"


def _args(parser: argparse.ArgumentParser) -> None:
    for group in STATS_GROUPS:
        parser.add_argument(f"--{group}", action="store_true", dest=f"group_{group}",
                            help=f"report domain {group} statistics")
    parser.add_argument("--raw", action="store_true",
                        help="do not pretty-print the fields (values are always raw)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--list-active", action="store_true", help="list only active domains")
    which.add_argument("--list-inactive", action="store_true",
                       help="list only inactive domains")
    parser.add_argument("domains", nargs="*", metavar="DOMAIN",
                        help="list of domains to get stats for")


def format_value(value: Any) -> str:
    """A typed parameter as virsh prints it: doubles with ``%f``, bools as 0/1."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:f}"
    return str(value)


def format_record(record: DomainStats) -> str:
    """``Domain: 'name'`` then ``  key=value`` lines and a blank line."""
    lines = [f"Domain: '{record.domain.name}'"]
    lines += [f"  {key}={format_value(value)}" for key, value in record.stats.items()]
    return "\n".join(lines) + "\n\n"


def _stats_error(record: DomainStats) -> str:
    """One line naming the domain once (driver messages often name it already)."""
    message = str(record.error)
    if f"'{record.domain.name}'" in message:
        return message
    return f"failed to get stats of domain '{record.domain.name}': {message}"


def cmd_domstats(ctx: CliContext, args: argparse.Namespace) -> int:
    groups = [g for g in STATS_GROUPS if getattr(args, f"group_{g}")] or None
    domains = [lookup.domain(ctx.conn, d) for d in args.domains] or None
    active = True if args.list_active else False if args.list_inactive else None
    records = ctx.conn.get_all_domain_stats(groups=groups, domains=domains, active=active)
    failed = [r for r in records if not r.ok]
    if ctx.json:
        ctx.write_json({"domains": [
            {"name": r.domain.name, "uuid": r.domain.uuid, "stats": r.stats,
             "error": None if r.ok else str(r.error)}
            for r in records
        ]})
    else:
        for record in records:
            if record.ok:
                ctx.write(format_record(record))
    for record in failed:
        ctx.warn(_stats_error(record))
    return 1 if failed else 0


def commands() -> list[Command]:
    """The statistics commands."""
    return [Command("domstats", "get statistics about one or multiple domains",
                    cmd_domstats, _args, json=True, group=GROUP)]
