"""Domain commands: list, dominfo, domstate, dumpxml, define, lifecycle verbs."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import hvmon
from hvmon.cli import lookup
from hvmon.cli.command import Command
from hvmon.cli.inputs import read_file
from hvmon.cli.output import fields, table, yes_no
from hvmon.cli.progress import add_progress_args, progress_bar
from hvmon.cli.xmldoc import find_text
from hvmon.core.errors import InvalidArgument
from hvmon.core.types import JobInfo, reason_label

if TYPE_CHECKING:
    from hvmon.cli.context import CliContext
    from hvmon.core.api import Domain

GROUP = "Domain Management"


def _domain_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("domain", help="domain name, id or uuid")


def _file_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="file containing an XML description ('-' for stdin)")


def _id_text(domain_id: int | None) -> str:
    """virsh prints ``-`` for the id of an inactive domain."""
    return "-" if domain_id is None or domain_id < 0 else str(domain_id)


# --- list -----------------------------------------------------------------------


def _list_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true", help="list inactive & active domains")
    parser.add_argument("--inactive", action="store_true", help="list inactive domains")
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--name", action="store_true", help="list domain names only")
    shape.add_argument("--uuid", action="store_true", help="list uuid's only")


def domain_summary(dom: Domain) -> dict[str, Any]:
    """The JSON object ``list`` prints per domain."""
    state, reason = dom.state()
    domain_id = dom.get_id()
    return {
        "id": domain_id if domain_id >= 0 else None,
        "name": dom.name,
        "uuid": dom.uuid,
        "state": state.label,
        "state_code": int(state),
        "reason": reason_label(state, reason),
        "persistent": dom.is_persistent(),
        "autostart": dom.get_autostart(),
    }


def cmd_list(ctx: CliContext, args: argparse.Namespace) -> None:
    active = None if args.all else not args.inactive
    rows = [domain_summary(d) for d in ctx.conn.list_all_domains(active=active)]
    rows.sort(key=lambda r: (r["id"] is None, r["id"] or 0, r["name"]))
    if args.name or args.uuid:
        key = "name" if args.name else "uuid"
        ctx.emit({"domains": rows}, lambda: "".join(f"{r[key]}\n" for r in rows))
        return
    ctx.emit({"domains": rows}, lambda: table(
        ["Id", "Name", "State"],
        [[_id_text(r["id"]), r["name"], r["state"]]
         for r in rows],
    ))


# --- info -----------------------------------------------------------------------


def cmd_dominfo(ctx: CliContext, args: argparse.Namespace) -> None:
    dom = lookup.domain(ctx.conn, args.domain)
    info = dom.info()
    domain_id = dom.get_id()
    data = {
        "id": domain_id if domain_id >= 0 else None,
        "name": dom.name,
        "uuid": dom.uuid,
        "os_type": find_text(dom.xml_desc(), "os/type", "hvm"),
        "state": info.state.label,
        "state_code": int(info.state),
        "cpus": info.nr_virt_cpu,
        "cpu_time_ns": info.cpu_time,
        "max_memory_kib": info.max_memory,
        "used_memory_kib": info.memory,
        "persistent": dom.is_persistent(),
        "autostart": dom.get_autostart(),
    }

    def text() -> str:
        pairs: list[tuple[str, object]] = [
            ("Id:", _id_text(domain_id)),
            ("Name:", data["name"]),
            ("UUID:", data["uuid"]),
            ("OS Type:", data["os_type"]),
            ("State:", data["state"]),
            ("CPU(s):", data["cpus"]),
        ]
        if info.cpu_time:
            pairs.append(("CPU time:", f"{info.cpu_time / 1e9:.1f}s"))
        pairs += [
            ("Max memory:", f"{info.max_memory} KiB"),
            ("Used memory:", f"{info.memory} KiB"),
            ("Persistent:", yes_no(data["persistent"])),
            ("Autostart:", "enable" if data["autostart"] else "disable"),
        ]
        return fields(pairs)

    ctx.emit(data, text)


def _domstate_args(parser: argparse.ArgumentParser) -> None:
    _domain_arg(parser)
    parser.add_argument("--reason", action="store_true", help="also print reason for the state")


def cmd_domstate(ctx: CliContext, args: argparse.Namespace) -> None:
    state, reason = lookup.domain(ctx.conn, args.domain).state()
    data = {"state": state.label, "state_code": int(state),
            "reason": reason_label(state, reason), "reason_code": reason}
    if args.reason:
        ctx.emit(data, lambda: f"{state.label} ({data['reason']})\n")
    else:
        ctx.emit(data, lambda: f"{state.label}\n")


def cmd_domid(ctx: CliContext, args: argparse.Namespace) -> None:
    ctx.write(_id_text(lookup.domain(ctx.conn, args.domain).get_id()) + "\n")


def cmd_domname(ctx: CliContext, args: argparse.Namespace) -> None:
    ctx.write(lookup.domain(ctx.conn, args.domain).name + "\n")


def cmd_domuuid(ctx: CliContext, args: argparse.Namespace) -> None:
    ctx.write(lookup.domain(ctx.conn, args.domain).uuid + "\n")


def _dumpxml_args(parser: argparse.ArgumentParser) -> None:
    _domain_arg(parser)
    parser.add_argument("--inactive", action="store_true", help="show inactive defined XML")
    parser.add_argument("--security-info", action="store_true",
                        help="include security sensitive information in XML dump")


def cmd_dumpxml(ctx: CliContext, args: argparse.Namespace) -> None:
    dom = lookup.domain(ctx.conn, args.domain)
    xml = dom.xml_desc(secure=args.security_info, inactive=args.inactive)
    ctx.write(xml if xml.endswith("\n") else xml + "\n")


# --- define / create / lifecycle ----------------------------------------------------


def cmd_define(ctx: CliContext, args: argparse.Namespace) -> None:
    dom = ctx.conn.define_domain_xml(read_file(args.file))
    ctx.say(f"Domain '{dom.name}' defined from {args.file}")


def cmd_create(ctx: CliContext, args: argparse.Namespace) -> None:
    dom = ctx.conn.create_domain_xml(read_file(args.file))
    ctx.say(f"Domain '{dom.name}' created from {args.file}")


def _lifecycle(method: str, message: str) -> Callable[[CliContext, argparse.Namespace], None]:
    """A handler that looks the domain up, calls ``method`` and says ``message``."""

    def handler(ctx: CliContext, args: argparse.Namespace) -> None:
        dom = lookup.domain(ctx.conn, args.domain)
        getattr(dom, method)()
        ctx.say(message.format(name=dom.name))

    handler.__name__ = f"cmd_{method}"
    return handler


def _autostart_args(parser: argparse.ArgumentParser) -> None:
    _domain_arg(parser)
    parser.add_argument("--disable", action="store_true", help="disable autostarting")


def cmd_autostart(ctx: CliContext, args: argparse.Namespace) -> None:
    dom = lookup.domain(ctx.conn, args.domain)
    dom.set_autostart(not args.disable)
    verb = "unmarked" if args.disable else "marked"
    ctx.say(f"Domain '{dom.name}' {verb} as autostarted")


def cmd_start(ctx: CliContext, args: argparse.Namespace) -> None:
    dom = lookup.domain(ctx.conn, args.domain)
    dom.create_with_flags(paused=args.paused)
    ctx.say(f"Domain '{dom.name}' started")


_JOB_TYPES = {0: "None", 1: "Bounded", 2: "Unbounded"}
_JOB_OPERATIONS = {"migration out": "Outgoing migration", "migration in": "Incoming migration",
                   "migration": "Outgoing migration"}


def cmd_domjobinfo(ctx: CliContext, args: argparse.Namespace) -> None:
    dom = lookup.domain(ctx.conn, args.domain)
    job = dom.job_info()
    data = {"type": _JOB_TYPES.get(job.type, str(job.type)).lower(),
            "operation": job.operation or None, "time_elapsed_ms": job.time_elapsed_ms,
            "time_remaining_ms": job.time_remaining_ms, "data_total": job.data_total,
            "data_processed": job.data_processed, "data_remaining": job.data_remaining,
            "mem_total": job.mem_total, "mem_processed": job.mem_processed,
            "mem_remaining": job.mem_remaining, "disk_total": job.disk_total,
            "disk_processed": job.disk_processed, "disk_remaining": job.disk_remaining}

    def text() -> str:
        pairs: list[tuple[str, object]] = [("Job type:", _JOB_TYPES.get(job.type, job.type))]
        if job.type:
            pairs += [
                ("Operation:", _JOB_OPERATIONS.get(job.operation, job.operation or "-")),
                ("Time elapsed:", f"{job.time_elapsed_ms:<12} ms"),
                ("Time remaining:", f"{job.time_remaining_ms:<12} ms"),
                ("Data processed:", _mib(job.data_processed)),
                ("Data remaining:", _mib(job.data_remaining)),
                ("Data total:", _mib(job.data_total)),
            ]
            if job.disk_total:  # a storage migration: memory and disks apart (virsh's File)
                pairs += [
                    ("Memory processed:", _mib(job.mem_processed)),
                    ("Memory remaining:", _mib(job.mem_remaining)),
                    ("Memory total:", _mib(job.mem_total)),
                    ("File processed:", _mib(job.disk_processed)),
                    ("File remaining:", _mib(job.disk_remaining)),
                    ("File total:", _mib(job.disk_total)),
                ]
        return fields(pairs, width=17)

    ctx.emit(data, text)


def _mib(value: int) -> str:
    """virsh's job figures: ``12.345 MiB``."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{value / size:.3f} {unit}"
    return f"{value:.3f} B"


def cmd_dump(ctx: CliContext, args: argparse.Namespace) -> None:
    dom = lookup.domain(ctx.conn, args.domain)
    dom.core_dump(os.path.abspath(args.file))
    ctx.say(f"Domain '{dom.name}' dumped to {args.file}")


def _dump_args(parser: argparse.ArgumentParser) -> None:
    _domain_arg(parser)
    parser.add_argument("file", help="where the daemon's host writes the ELF core")
    parser.add_argument("--memory-only", action="store_true",
                        help="dump the guest's memory only (the only kind hvmon writes)")


def cmd_migrate(ctx: CliContext, args: argparse.Namespace) -> None:
    if args.tunnelled and not args.p2p:
        raise InvalidArgument("tunnelled migration needs --p2p (the source's daemon carries "
                              "the stream)")
    if args.tunnelled and args.copy_storage_all:
        raise InvalidArgument("--copy-storage-all cannot be tunnelled (the disks travel over "
                              "NBD on their own port): drop --tunnelled")
    dom = lookup.domain(ctx.conn, args.domain)
    bar = progress_bar(ctx.err, args, f"Migration of {dom.name}")
    if bar is not None and args.copy_storage_all:
        bar.detail = lambda: _disk_progress(dom.job_info())
    options = {"live": args.live, "persistent": args.persistent,
               "undefine_source": args.undefinesource, "suspend": args.suspend,
               "offline": args.offline, "bandwidth": args.bandwidth, "dest_name": args.dname,
               "timeout": args.timeout, "progress": bar,
               "copy_storage_all": args.copy_storage_all}
    try:
        if args.p2p:  # the source's daemon opens DESTURI and drives it
            dom.migrate(args.desturi, p2p=True, tunnelled=args.tunnelled, **options)
            name = args.dname or dom.name
        else:
            with hvmon.open(args.desturi) as dest:
                moved = dom.migrate(dest, **options)
                assert moved is not None
                name = moved.name
    finally:
        if bar is not None:
            bar.finish()
    ctx.say(f"Domain '{dom.name}' migrated to {args.desturi} as '{name}'")


def _disk_progress(job: JobInfo) -> str:
    """``disks 12.000 MiB/64.000 MiB`` while a storage migration copies them."""
    if not job.disk_total:
        return ""
    return f"disks {_mib(job.disk_processed)}/{_mib(job.disk_total)}"


def _migrate_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("domain", help="domain name, id or uuid")
    parser.add_argument("desturi", help="connection URI of the destination host")
    for flag, text in (("--live", "live migration"),
                       ("--persistent", "persist the domain on the destination"),
                       ("--undefinesource", "undefine the domain on the source"),
                       ("--suspend", "do not restart the domain on the destination"),
                       ("--offline", "migrate the definition only (needs --persistent)"),
                       ("--p2p", "peer-to-peer: the source's daemon drives the migration "
                                 "(DESTURI as the source host reaches it)"),
                       ("--tunnelled", "carry the stream over the daemons' connection "
                                       "(needs --p2p)"),
                       ("--copy-storage-all", "non-shared storage: create the disks on the "
                                              "destination and copy them (NBD)")):
        parser.add_argument(flag, action="store_true", help=text)
    parser.add_argument("--bandwidth", type=int, help="bandwidth limit in MiB/s")
    parser.add_argument("--timeout", type=float,
                        help="suspend the guest if live migration exceeds this many seconds")
    parser.add_argument("--dname", help="rename the domain on the destination")
    add_progress_args(parser)


def _start_args(parser: argparse.ArgumentParser) -> None:
    _domain_arg(parser)
    parser.add_argument("--paused", action="store_true", help="leave the guest paused")


_LIFECYCLE = (
    ("shutdown", "gracefully shutdown a domain", "Domain '{name}' is being shutdown"),
    ("destroy", "destroy (stop) a domain", "Domain '{name}' destroyed"),
    ("suspend", "suspend a domain", "Domain '{name}' suspended"),
    ("resume", "resume a domain", "Domain '{name}' resumed"),
    ("reboot", "reboot a domain", "Domain '{name}' is being rebooted"),
    ("undefine", "undefine a domain", "Domain '{name}' has been undefined"),
)


def commands() -> list[Command]:
    """The domain commands."""
    out = [
        Command("list", "list domains", cmd_list, _list_args, json=True, group=GROUP),
        Command("dominfo", "domain information", cmd_dominfo, _domain_arg, json=True,
                group=GROUP),
        Command("domstate", "domain state", cmd_domstate, _domstate_args, json=True,
                group=GROUP),
        Command("domid", "convert a domain name or UUID to domain id", cmd_domid,
                _domain_arg, group=GROUP),
        Command("domname", "convert a domain id or UUID to domain name", cmd_domname,
                _domain_arg, group=GROUP),
        Command("domuuid", "convert a domain name or id to domain UUID", cmd_domuuid,
                _domain_arg, group=GROUP),
        Command("dumpxml", "domain information in XML", cmd_dumpxml, _dumpxml_args,
                group=GROUP),
        Command("define", "define (but don't start) a domain from an XML file", cmd_define,
                _file_arg, group=GROUP),
        Command("create", "create (start) a transient domain from an XML file", cmd_create,
                _file_arg, group=GROUP),
        Command("autostart", "autostart a domain", cmd_autostart, _autostart_args,
                group=GROUP),
        Command("start", "start a (previously defined) inactive domain", cmd_start,
                _start_args, group=GROUP),
        Command("dump", "dump the memory of a domain to a file for analysis", cmd_dump,
                _dump_args, group=GROUP),
        Command("migrate", "migrate domain to another host", cmd_migrate, _migrate_args,
                group=GROUP),
        Command("domjobinfo", "domain job information", cmd_domjobinfo, _domain_arg,
                json=True, group=GROUP),
    ]
    out += [Command(name, help_text, _lifecycle(name, message), _domain_arg, group=GROUP)
            for name, help_text, message in _LIFECYCLE]
    return out
