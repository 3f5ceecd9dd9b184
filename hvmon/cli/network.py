"""Virtual network commands: net-list, net-info, net-dhcp-leases and the net verbs."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hvmon.cli import lookup
from hvmon.cli.command import Command
from hvmon.cli.inputs import read_file
from hvmon.cli.output import fields, table, yes_no
from hvmon.cli.xmldoc import find_text

if TYPE_CHECKING:
    from hvmon.cli.context import CliContext
    from hvmon.core.api import Network
    from hvmon.core.types import DhcpLease

GROUP = "Networking"


def _net_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("network", help="network name or uuid")


def _file_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="file containing an XML network description")


def network_summary(net: Network) -> dict[str, Any]:
    """The JSON object ``net-list`` and ``net-info`` print per network."""
    active = net.is_active()
    return {
        "name": net.name,
        "uuid": net.uuid,
        "active": active,
        "state": "active" if active else "inactive",
        "persistent": net.is_persistent(),
        "autostart": net.get_autostart(),
    }


def _list_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true", help="list inactive & active networks")
    parser.add_argument("--inactive", action="store_true", help="list inactive networks")


def cmd_net_list(ctx: CliContext, args: argparse.Namespace) -> None:
    active = None if args.all else not args.inactive
    rows = sorted((network_summary(n) for n in ctx.conn.list_all_networks(active=active)),
                  key=lambda r: r["name"])
    ctx.emit({"networks": rows}, lambda: table(
        ["Name", "State", "Autostart", "Persistent"],
        [[r["name"], r["state"], yes_no(r["autostart"]), yes_no(r["persistent"])]
         for r in rows],
    ))


def cmd_net_info(ctx: CliContext, args: argparse.Namespace) -> None:
    net = lookup.network(ctx.conn, args.network)
    data = network_summary(net)
    data["bridge"] = find_text(net.xml_desc(), "bridge/@name") or None
    pairs: list[tuple[str, object]] = [
        ("Name:", data["name"]), ("UUID:", data["uuid"]), ("Active:", yes_no(data["active"])),
        ("Persistent:", yes_no(data["persistent"])), ("Autostart:", yes_no(data["autostart"])),
    ]
    if data["bridge"]:
        pairs.append(("Bridge:", data["bridge"]))
    ctx.emit(data, lambda: fields(pairs))


def _dumpxml_args(parser: argparse.ArgumentParser) -> None:
    _net_arg(parser)
    parser.add_argument("--inactive", action="store_true", help="show inactive defined XML")


def cmd_net_dumpxml(ctx: CliContext, args: argparse.Namespace) -> None:
    xml = lookup.network(ctx.conn, args.network).xml_desc(inactive=args.inactive)
    ctx.write(xml if xml.endswith("\n") else xml + "\n")


def cmd_net_define(ctx: CliContext, args: argparse.Namespace) -> None:
    net = ctx.conn.define_network_xml(read_file(args.file))
    ctx.say(f"Network {net.name} defined from {args.file}")


def cmd_net_create(ctx: CliContext, args: argparse.Namespace) -> None:
    net = ctx.conn.create_network_xml(read_file(args.file))
    ctx.say(f"Network {net.name} created from {args.file}")


def _verb(method: str, message: str) -> Callable[[CliContext, argparse.Namespace], None]:
    def handler(ctx: CliContext, args: argparse.Namespace) -> None:
        net = lookup.network(ctx.conn, args.network)
        getattr(net, method)()
        ctx.say(message.format(name=net.name))

    handler.__name__ = f"cmd_net_{method}"
    return handler


def _autostart_args(parser: argparse.ArgumentParser) -> None:
    _net_arg(parser)
    parser.add_argument("--disable", action="store_true", help="disable autostarting")


def cmd_net_autostart(ctx: CliContext, args: argparse.Namespace) -> None:
    net = lookup.network(ctx.conn, args.network)
    net.set_autostart(not args.disable)
    ctx.say(f"Network {net.name} {'unmarked' if args.disable else 'marked'} as autostarted")


# --- DHCP leases ------------------------------------------------------------------


def _leases_args(parser: argparse.ArgumentParser) -> None:
    _net_arg(parser)
    parser.add_argument("--mac", help="MAC address")


def lease_summary(lease: DhcpLease) -> dict[str, Any]:
    return {
        "iface": lease.iface, "expiry_time": lease.expiry_time, "type": lease.type,
        "mac": lease.mac, "ipaddr": lease.ipaddr, "prefix": lease.prefix,
        "hostname": lease.hostname or None, "client_id": lease.clientid or None,
    }


def _expiry(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def cmd_net_dhcp_leases(ctx: CliContext, args: argparse.Namespace) -> None:
    net = lookup.network(ctx.conn, args.network)
    leases = sorted(net.dhcp_leases(args.mac), key=lambda lease: lease.mac)
    ctx.emit({"network": net.name, "leases": [lease_summary(x) for x in leases]}, lambda: table(
        ["Expiry Time", "MAC address", "Protocol", "IP address", "Hostname",
         "Client ID or DUID"],
        [[_expiry(x.expiry_time), x.mac, x.type, f"{x.ipaddr}/{x.prefix}",
          x.hostname or "-", x.clientid or "-"] for x in leases],
    ))


_VERBS = (
    ("net-start", "start a (previously defined) inactive network", "create",
     "Network {name} started"),
    ("net-destroy", "destroy (stop) a network", "destroy", "Network {name} destroyed"),
    ("net-undefine", "undefine a persistent network", "undefine",
     "Network {name} has been undefined"),
)


def commands() -> list[Command]:
    """The virtual network commands."""
    out = [
        Command("net-list", "list networks", cmd_net_list, _list_args, json=True,
                group=GROUP),
        Command("net-info", "network information", cmd_net_info, _net_arg, json=True,
                group=GROUP),
        Command("net-dumpxml", "network information in XML", cmd_net_dumpxml, _dumpxml_args,
                group=GROUP),
        Command("net-define", "define an inactive persistent virtual network from an XML file",
                cmd_net_define, _file_arg, group=GROUP),
        Command("net-create", "create a network from an XML file", cmd_net_create, _file_arg,
                group=GROUP),
        Command("net-autostart", "autostart a network", cmd_net_autostart, _autostart_args,
                group=GROUP),
        Command("net-dhcp-leases", "print lease info for a given network",
                cmd_net_dhcp_leases, _leases_args, json=True, group=GROUP),
    ]
    out += [Command(name, help_text, _verb(method, message), _net_arg, group=GROUP)
            for name, help_text, method, message in _VERBS]
    return out
