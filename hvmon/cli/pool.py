"""Storage pool commands: pool-list, pool-info, pool-define and the pool verbs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lxml import etree

from hvmon.cli import lookup
from hvmon.cli.command import Command
from hvmon.cli.inputs import read_file
from hvmon.cli.output import fields, pretty_size, table, yes_no
from hvmon.core.types import PoolState

if TYPE_CHECKING:
    from hvmon.cli.context import CliContext
    from hvmon.core.api import StoragePool

GROUP = "Storage Pool"
_SIZED = (PoolState.RUNNING, PoolState.DEGRADED)


def _pool_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pool", help="pool name or uuid")


def _file_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="file containing an XML pool description")


def pool_summary(pool: StoragePool) -> dict[str, Any]:
    """The JSON object ``pool-list`` and ``pool-info`` print per pool."""
    info = pool.info()
    sized = info.state in _SIZED
    return {
        "name": pool.name,
        "uuid": pool.uuid,
        "state": info.state.label,
        "active": pool.is_active(),
        "persistent": pool.is_persistent(),
        "autostart": pool.get_autostart(),
        "capacity_bytes": info.capacity if sized else None,
        "allocation_bytes": info.allocation if sized else None,
        "available_bytes": info.available if sized else None,
    }


def _size(value: int | None) -> str:
    return "-" if value is None else pretty_size(value)


def _list_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true", help="list inactive & active pools")
    parser.add_argument("--inactive", action="store_true", help="list inactive pools")
    parser.add_argument("--details", action="store_true", help="display extended details")


def cmd_pool_list(ctx: CliContext, args: argparse.Namespace) -> None:
    active = None if args.all else not args.inactive
    rows = sorted((pool_summary(p) for p in ctx.conn.list_all_storage_pools(active=active)),
                  key=lambda r: r["name"])

    def text() -> str:
        if args.details:
            return table(
                ["Name", "State", "Autostart", "Persistent", "Capacity", "Allocation",
                 "Available"],
                [[r["name"], r["state"], yes_no(r["autostart"]), yes_no(r["persistent"]),
                  _size(r["capacity_bytes"]), _size(r["allocation_bytes"]),
                  _size(r["available_bytes"])] for r in rows],
            )
        return table(["Name", "State", "Autostart"],
                     [[r["name"], "active" if r["active"] else "inactive",
                       yes_no(r["autostart"])] for r in rows])

    ctx.emit({"pools": rows}, text)


def cmd_pool_info(ctx: CliContext, args: argparse.Namespace) -> None:
    data = pool_summary(lookup.pool(ctx.conn, args.pool))

    def text() -> str:
        pairs: list[tuple[str, object]] = [
            ("Name:", data["name"]), ("UUID:", data["uuid"]), ("State:", data["state"]),
            ("Persistent:", yes_no(data["persistent"])),
            ("Autostart:", yes_no(data["autostart"])),
        ]
        if data["capacity_bytes"] is not None:
            pairs += [("Capacity:", pretty_size(data["capacity_bytes"])),
                      ("Allocation:", pretty_size(data["allocation_bytes"])),
                      ("Available:", pretty_size(data["available_bytes"]))]
        return fields(pairs)

    ctx.emit(data, text)


def _dumpxml_args(parser: argparse.ArgumentParser) -> None:
    _pool_arg(parser)
    parser.add_argument("--inactive", action="store_true",
                        help="show inactive defined XML")


def cmd_pool_dumpxml(ctx: CliContext, args: argparse.Namespace) -> None:
    xml = lookup.pool(ctx.conn, args.pool).xml_desc(inactive=args.inactive)
    ctx.write(xml if xml.endswith("\n") else xml + "\n")


def cmd_find_sources(ctx: CliContext, args: argparse.Namespace) -> None:
    spec = read_file(args.srcSpec) if args.srcSpec else None
    xml = ctx.conn.find_storage_pool_sources(args.type, spec)
    ctx.write(xml if xml.endswith("\n") else xml + "\n")


def _find_sources_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("type", help="type of storage pool sources to find (iscsi, netfs ...)")
    parser.add_argument("srcSpec", nargs="?", help="optional file of source XML for the query")


def cmd_find_sources_as(ctx: CliContext, args: argparse.Namespace) -> None:
    spec = None
    if args.host:
        host = etree.Element("host", name=args.host)
        if args.port:
            host.set("port", str(args.port))
        source = etree.Element("source")
        source.append(host)
        spec = etree.tostring(source, encoding="unicode")
    xml = ctx.conn.find_storage_pool_sources(args.type, spec)
    ctx.write(xml if xml.endswith("\n") else xml + "\n")


def _find_sources_as_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("type", help="type of storage pool sources to find (iscsi, netfs ...)")
    parser.add_argument("host", nargs="?", help="optional host to query")
    parser.add_argument("port", nargs="?", type=int, help="optional port to query")


def cmd_pool_define(ctx: CliContext, args: argparse.Namespace) -> None:
    pool = ctx.conn.define_pool_xml(read_file(args.file))
    ctx.say(f"Pool {pool.name} defined from {args.file}")


def cmd_pool_create(ctx: CliContext, args: argparse.Namespace) -> None:
    pool = ctx.conn.create_pool_xml(read_file(args.file))
    ctx.say(f"Pool {pool.name} created from {args.file}")


def _verb(method: str, message: str) -> Callable[[CliContext, argparse.Namespace], None]:
    def handler(ctx: CliContext, args: argparse.Namespace) -> None:
        pool = lookup.pool(ctx.conn, args.pool)
        getattr(pool, method)()
        ctx.say(message.format(name=pool.name))

    handler.__name__ = f"cmd_pool_{method}"
    return handler


def _autostart_args(parser: argparse.ArgumentParser) -> None:
    _pool_arg(parser)
    parser.add_argument("--disable", action="store_true", help="disable autostarting")


def cmd_pool_autostart(ctx: CliContext, args: argparse.Namespace) -> None:
    pool = lookup.pool(ctx.conn, args.pool)
    pool.set_autostart(not args.disable)
    ctx.say(f"Pool {pool.name} {'unmarked' if args.disable else 'marked'} as autostarted")


_VERBS = (
    ("pool-build", "build a pool", "build", "Pool {name} built"),
    ("pool-start", "start a (previously defined) inactive pool", "create",
     "Pool {name} started"),
    ("pool-destroy", "destroy (stop) a pool", "destroy", "Pool {name} destroyed"),
    ("pool-delete", "delete a pool's underlying storage", "delete", "Pool {name} deleted"),
    ("pool-undefine", "undefine an inactive pool", "undefine",
     "Pool {name} has been undefined"),
    ("pool-refresh", "refresh a pool", "refresh", "Pool {name} refreshed"),
)


def commands() -> list[Command]:
    """The storage pool commands."""
    out = [
        Command("pool-list", "list pools", cmd_pool_list, _list_args, json=True, group=GROUP),
        Command("pool-info", "storage pool information", cmd_pool_info, _pool_arg,
                json=True, group=GROUP),
        Command("pool-dumpxml", "pool information in XML", cmd_pool_dumpxml, _dumpxml_args,
                group=GROUP),
        Command("pool-define", "define an inactive persistent storage pool from an XML file",
                cmd_pool_define, _file_arg, group=GROUP),
        Command("pool-create", "create (start) a transient pool from an XML file",
                cmd_pool_create, _file_arg, group=GROUP),
        Command("pool-autostart", "autostart a pool", cmd_pool_autostart, _autostart_args,
                group=GROUP),
        Command("find-storage-pool-sources", "discover potential storage pool sources",
                cmd_find_sources, _find_sources_args, group=GROUP),
        Command("find-storage-pool-sources-as", "find potential storage pool sources",
                cmd_find_sources_as, _find_sources_as_args, group=GROUP),
    ]
    out += [Command(name, help_text, _verb(method, message), _pool_arg, group=GROUP)
            for name, help_text, method, message in _VERBS]
    return out
