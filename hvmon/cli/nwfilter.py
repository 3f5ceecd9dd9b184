"""Network filter commands (virsh nwfilter-* and nwfilter-binding-*)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from hvmon.cli.command import Command
from hvmon.cli.inputs import read_file
from hvmon.cli.output import table
from hvmon.cli.xmldoc import find_text

if TYPE_CHECKING:
    from hvmon.cli.context import CliContext

GROUP = "Network Filter"


def _name_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("nwfilter", help="network filter name")


def _port_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("binding", help="the port device the filter is bound to")


def _file_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="file containing an XML description ('-' for stdin)")


def _with_newline(xml: str) -> str:
    return xml if xml.endswith("\n") else xml + "\n"


def cmd_nwfilter_list(ctx: CliContext, args: argparse.Namespace) -> None:
    rows = [{"name": f.name, "uuid": find_text(f.xml_desc(), "uuid", "") or None}
            for f in ctx.conn.list_all_nwfilters()]
    ctx.emit({"nwfilters": rows},
             lambda: table(["UUID", "Name"], [[r["uuid"] or "-", r["name"]] for r in rows]))


def cmd_nwfilter_dumpxml(ctx: CliContext, args: argparse.Namespace) -> None:
    ctx.write(_with_newline(ctx.conn.lookup_nwfilter_by_name(args.nwfilter).xml_desc()))


def cmd_nwfilter_define(ctx: CliContext, args: argparse.Namespace) -> None:
    nwfilter = ctx.conn.define_nwfilter_xml(read_file(args.file))
    ctx.say(f"Network filter {nwfilter.name} defined from {args.file}")


def cmd_nwfilter_undefine(ctx: CliContext, args: argparse.Namespace) -> None:
    ctx.conn.lookup_nwfilter_by_name(args.nwfilter).undefine()
    ctx.say(f"Network filter {args.nwfilter} undefined")


def cmd_binding_list(ctx: CliContext, args: argparse.Namespace) -> None:
    rows = [{"port_dev": b.port_dev, "filter": find_text(b.xml_desc(), "filterref/@filter", "")}
            for b in ctx.conn.list_all_nwfilter_bindings()]
    ctx.emit({"bindings": rows},
             lambda: table(["Port Dev", "Filter"], [[r["port_dev"], r["filter"]] for r in rows]))


def cmd_binding_create(ctx: CliContext, args: argparse.Namespace) -> None:
    binding = ctx.conn.create_nwfilter_binding(read_file(args.file))
    ctx.say(f"Network filter binding on {binding.port_dev} created from {args.file}")


def cmd_binding_delete(ctx: CliContext, args: argparse.Namespace) -> None:
    ctx.conn.lookup_nwfilter_binding_by_port_dev(args.binding).delete()
    ctx.say(f"Network filter binding on {args.binding} deleted")


def cmd_binding_dumpxml(ctx: CliContext, args: argparse.Namespace) -> None:
    binding = ctx.conn.lookup_nwfilter_binding_by_port_dev(args.binding)
    ctx.write(_with_newline(binding.xml_desc()))


def commands() -> list[Command]:
    """The network filter commands."""
    return [
        Command("nwfilter-list", "list network filters", cmd_nwfilter_list, None, json=True,
                group=GROUP),
        Command("nwfilter-dumpxml", "network filter information in XML", cmd_nwfilter_dumpxml,
                _name_arg, group=GROUP),
        Command("nwfilter-define", "define or update a network filter from an XML file",
                cmd_nwfilter_define, _file_arg, group=GROUP),
        Command("nwfilter-undefine", "undefine a network filter", cmd_nwfilter_undefine,
                _name_arg, group=GROUP),
        Command("nwfilter-binding-list", "list network filter bindings", cmd_binding_list,
                None, json=True, group=GROUP),
        Command("nwfilter-binding-create", "create a network filter binding from an XML file",
                cmd_binding_create, _file_arg, group=GROUP),
        Command("nwfilter-binding-delete", "delete a network filter binding",
                cmd_binding_delete, _port_arg, group=GROUP),
        Command("nwfilter-binding-dumpxml", "network filter binding information in XML",
                cmd_binding_dumpxml, _port_arg, group=GROUP),
    ]
