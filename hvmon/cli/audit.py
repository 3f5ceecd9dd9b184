"""``hvmon audit verify FILE``: check an audit log's hash chain (docs/security.md).

Exit 0 when every record is intact and chained to the one before; 1 with one
line per problem (an edited, inserted or removed record) otherwise. Needs no
connection: it reads the file hvmond's ``[audit] path`` names.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from hvmon.cli.command import Command

if TYPE_CHECKING:
    from hvmon.cli.context import CliContext

GROUP = "Daemon"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="audit_action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="check the hash chain of an audit log",
                                description="check the hash chain of an audit log")
    verify.add_argument("file", type=Path, help="the audit log (JSON lines)")


def cmd_audit(ctx: CliContext, args: argparse.Namespace) -> int:
    from hvmon.daemon.rpc.audit import verify

    problems = verify(args.file)
    count = _count(args.file)
    data = {"file": str(args.file), "records": count, "intact": not problems,
            "problems": problems}
    if ctx.json:
        ctx.write_json(data)
    elif problems:
        for problem in problems:
            ctx.warn(f"{args.file}: {problem}")
    else:
        ctx.say(f"{args.file}: {count} record(s), hash chain intact")
    return 1 if problems else 0


def _count(path: Path) -> int:
    try:
        with open(path, "rb") as stream:
            return sum(1 for line in stream if line.strip())
    except OSError:
        return 0


def commands() -> list[Command]:
    """The ``audit`` command."""
    return [Command("audit", "verify the hash chain of hvmond's audit log", cmd_audit,
                    add_arguments, json=True, group=GROUP)]
