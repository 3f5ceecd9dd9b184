"""Host and connection commands: nodeinfo, capabilities, uri, hostname, version."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from hvmon.cli.command import Command
from hvmon.cli.output import fields

if TYPE_CHECKING:
    from hvmon.cli.context import CliContext

GROUP = "Host and Hypervisor"


def cmd_nodeinfo(ctx: CliContext, args: argparse.Namespace) -> None:
    info = ctx.conn.node_info()
    data = {
        "cpu_model": info.model, "cpus": info.cpus, "cpu_mhz": info.mhz,
        "cpu_sockets": info.sockets, "cores_per_socket": info.cores,
        "threads_per_core": info.threads, "numa_cells": info.nodes,
        "memory_kib": info.memory,
    }
    ctx.emit(data, lambda: fields([
        ("CPU model:", info.model),
        ("CPU(s):", info.cpus),
        ("CPU frequency:", f"{info.mhz} MHz"),
        ("CPU socket(s):", info.sockets),
        ("Core(s) per socket:", info.cores),
        ("Thread(s) per core:", info.threads),
        ("NUMA cell(s):", info.nodes),
        ("Memory size:", f"{info.memory} KiB"),
    ], width=20))


def cmd_capabilities(ctx: CliContext, args: argparse.Namespace) -> None:
    xml = ctx.conn.capabilities()
    ctx.write(xml if xml.endswith("\n") else xml + "\n")


def cmd_uri(ctx: CliContext, args: argparse.Namespace) -> None:
    uri = ctx.conn.get_uri()
    ctx.emit({"uri": uri}, lambda: uri + "\n")


def cmd_hostname(ctx: CliContext, args: argparse.Namespace) -> None:
    hostname = ctx.conn.get_hostname()
    ctx.emit({"hostname": hostname}, lambda: hostname + "\n")


def cmd_version(ctx: CliContext, args: argparse.Namespace) -> None:
    import hvmon

    version = hvmon.__version__
    ctx.emit({"version": version}, lambda: (
        f"Compiled against library: hvmon {version}\nUsing library: hvmon {version}\n"
    ))


def commands() -> list[Command]:
    """The host commands."""
    return [
        Command("nodeinfo", "node information", cmd_nodeinfo, None, json=True, group=GROUP),
        Command("capabilities", "capabilities", cmd_capabilities, None, group=GROUP),
        Command("uri", "print the hypervisor canonical URI", cmd_uri, None, json=True,
                group=GROUP),
        Command("hostname", "print the hypervisor hostname", cmd_hostname, None, json=True,
                group=GROUP),
        Command("version", "show version", cmd_version, None, json=True, group=GROUP),
    ]
