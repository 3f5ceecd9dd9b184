"""``vcpuinfo`` and ``vcpupin``: where a domain's vCPUs run and may run (pinning)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from hvmon.cli import lookup
from hvmon.cli.command import Command
from hvmon.cli.output import fields, table
from hvmon.core.cpuset import cpu_map, format_cpuset, parse_cpuset
from hvmon.core.errors import InvalidArgument
from hvmon.core.xml.cputune import vcpu_pins
from hvmon.core.xml.domain import Domain as DomainXML

if TYPE_CHECKING:
    from hvmon.cli.context import CliContext

GROUP = "Domain Management"
#: virVcpuState names as virsh prints them
_STATES = {0: "offline", 1: "running", 2: "blocked"}


def _domain_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("domain", help="domain name, id or uuid")


def cmd_vcpuinfo(ctx: CliContext, args: argparse.Namespace) -> None:
    dom = lookup.domain(ctx.conn, args.domain)
    vcpus = dom.vcpu_info()
    host = ctx.conn.node_info().cpus
    data = {"vcpus": [{"vcpu": v.number, "cpu": v.cpu, "state": _STATES.get(v.state, "no state"),
                       "cpu_time_ns": v.cpu_time, "affinity": format_cpuset(v.affinity)}
                      for v in vcpus]}

    def text() -> str:
        return "".join(fields([("VCPU:", v.number), ("CPU:", v.cpu),
                               ("State:", _STATES.get(v.state, "no state")),
                               ("CPU time:", f"{v.cpu_time / 1e9:.1f}s"),
                               ("CPU Affinity:", cpu_map(v.affinity, host))]) + "\n"
                       for v in vcpus)

    ctx.emit(data, text)


def cmd_vcpupin(ctx: CliContext, args: argparse.Namespace) -> None:
    """virsh vcpupin: with a vCPU and a CPU list it pins, else it shows the pinning."""
    dom = lookup.domain(ctx.conn, args.domain)
    vcpu = args.vcpu if args.vcpu is not None else args.vcpu_pos
    cpulist = args.cpulist if args.cpulist is not None else args.cpulist_pos
    if cpulist is not None:
        if vcpu is None:
            raise InvalidArgument("vcpupin: a CPU list needs a vCPU (--vcpu N)")
        dom.pin_vcpu(vcpu, cpulist, live=args.live, config=args.config)
        return
    host = ctx.conn.node_info().cpus
    if dom.is_active() and not args.config:
        pins = {v.number: format_cpuset(v.affinity) for v in dom.vcpu_info()}
    else:  # the definition: unpinned vCPUs may run anywhere
        definition = DomainXML.from_xml(dom.xml_desc(inactive=True))
        pinned = {n: format_cpuset(parse_cpuset(text, host)) for n, text
                  in vcpu_pins(definition).items()}
        pins = {n: pinned.get(n, format_cpuset(range(host))) for n in range(definition.vcpus)}
    rows = [(n, a) for n, a in sorted(pins.items()) if vcpu is None or n == vcpu]
    ctx.emit({"vcpus": [{"vcpu": n, "affinity": a} for n, a in rows]},
             lambda: table(("VCPU", "CPU Affinity"), rows))


def _vcpupin_args(parser: argparse.ArgumentParser) -> None:
    _domain_arg(parser)
    parser.add_argument("vcpu_pos", nargs="?", type=int, metavar="VCPU", help="vCPU number")
    parser.add_argument("cpulist_pos", nargs="?", metavar="CPULIST",
                        help="host CPUs, e.g. 0-3,^2 (pins; without it: show)")
    parser.add_argument("--vcpu", type=int, help="vCPU number")
    parser.add_argument("--cpulist", help="host CPUs, e.g. 0-3,^2")
    parser.add_argument("--live", action="store_true", help="affect the running domain")
    parser.add_argument("--config", action="store_true", help="affect the next boot")
    parser.add_argument("--current", action="store_true",
                        help="affect the domain as it is now (the default)")


def commands() -> list[Command]:
    return [
        Command("vcpuinfo", "detailed domain vcpu information", cmd_vcpuinfo, _domain_arg,
                json=True, group=GROUP),
        Command("vcpupin", "control or query domain vcpu affinity",
                cmd_vcpupin, _vcpupin_args, json=True, group=GROUP),
    ]
