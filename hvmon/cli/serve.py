"""``hvmon serve``: run the daemon in the foreground (the same as ``hvmond``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from hvmon.cli.command import Command

if TYPE_CHECKING:
    from hvmon.cli.context import CliContext

GROUP = "Daemon"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hvmon.daemon.main import add_arguments as daemon_arguments

    daemon_arguments(parser)


def cmd_serve(ctx: CliContext, args: argparse.Namespace) -> int:
    from hvmon.daemon.main import serve

    return serve(args, out=ctx.out, err=ctx.err)


def commands() -> list[Command]:
    """The ``serve`` command."""
    return [Command("serve", "run the hvmon daemon in the foreground (like hvmond)", cmd_serve,
                    add_arguments, group=GROUP)]
