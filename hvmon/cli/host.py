"""Host and connection commands: nodeinfo, capabilities, uri, hostname, version."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from hvmon.cli.command import Command
from hvmon.cli.inputs import read_file
from hvmon.cli.output import fields
from hvmon.core.types import CpuCompareResult

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


def cmd_domcapabilities(ctx: CliContext, args: argparse.Namespace) -> None:
    xml = ctx.conn.domain_capabilities(args.machine, args.virttype)
    ctx.write(xml if xml.endswith("\n") else xml + "\n")


def _domcapabilities_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--machine", help="machine type (e.g. pc, q35)")
    parser.add_argument("--virttype", help="virtualization type (kvm, qemu)")


_CPU_VERDICTS = {
    CpuCompareResult.IDENTICAL: "CPU described in {file} is identical to host CPU",
    CpuCompareResult.SUPERSET: "Host CPU is a superset of CPU described in {file}",
    CpuCompareResult.INCOMPATIBLE: "CPU described in {file} is incompatible with host CPU",
}


def cmd_cpu_compare(ctx: CliContext, args: argparse.Namespace) -> int:
    verdict = ctx.conn.compare_cpu(read_file(args.file))
    ctx.emit({"result": verdict.name.lower(), "code": int(verdict)},
             lambda: _CPU_VERDICTS[verdict].format(file=args.file) + "\n")
    return 1 if verdict == CpuCompareResult.INCOMPATIBLE else 0


def cmd_cpu_baseline(ctx: CliContext, args: argparse.Namespace) -> None:
    documents = [read_file(path) for path in args.file] if args.file else \
        [ctx.conn.domain_capabilities()]
    ctx.write(ctx.conn.baseline_cpu(documents))


def _cpu_baseline_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="*",
                        help="domcapabilities XML of each host (default: this host's)")


def _cpu_compare_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="file with a <cpu> (or a <domain> holding one)")


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
        Command("domcapabilities", "domain capabilities", cmd_domcapabilities,
                _domcapabilities_args, group=GROUP),
        Command("cpu-compare", "compare host CPU with a CPU described by an XML file",
                cmd_cpu_compare, _cpu_compare_args, json=True, group=GROUP),
        Command("hypervisor-cpu-baseline", "the newest CPU model usable on every host given",
                cmd_cpu_baseline, _cpu_baseline_args, group=GROUP),
        Command("uri", "print the hypervisor canonical URI", cmd_uri, None, json=True,
                group=GROUP),
        Command("hostname", "print the hypervisor hostname", cmd_hostname, None, json=True,
                group=GROUP),
        Command("version", "show version", cmd_version, None, json=True, group=GROUP),
    ]
