"""What a CLI command is, and how a list of them becomes an argparse parser.

Built-in modules and plugins contribute commands the same way: a sequence of
:class:`Command` values (the pluggy hook ``hvmon_add_cli_commands`` will
return them). Nothing is registered at import time.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hvmon.cli.context import CliContext

#: ``handler(ctx, args)`` returns the exit code (None means 0).
Handler = Callable[["CliContext", argparse.Namespace], "int | None"]
AddArguments = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, one-line help, arguments and handler."""

    name: str
    help: str
    handler: Handler
    add_arguments: AddArguments | None = None
    #: the command prints a JSON object when given ``--json``
    json: bool = False
    #: heading in ``hvmon help`` (virsh groups commands the same way)
    group: str = "Other"
    aliases: tuple[str, ...] = ()


def no_arguments(parser: argparse.ArgumentParser) -> None:
    """``add_arguments`` for commands that take none."""


def register(
    subparsers: argparse._SubParsersAction, commands: Iterable[Command]  # type: ignore[type-arg]
) -> dict[str, argparse.ArgumentParser]:
    """Add one subparser per command; a name used twice is a programming error."""
    seen: dict[str, str] = {}
    parsers: dict[str, argparse.ArgumentParser] = {}
    for command in commands:
        for name in (command.name, *command.aliases):
            if name in seen:
                raise ValueError(f"CLI command '{name}' registered twice "
                                 f"({seen[name]} and {command.name})")
            seen[name] = command.name
        parser = subparsers.add_parser(
            command.name, help=command.help, description=command.help,
            aliases=list(command.aliases),
        )
        if command.add_arguments is not None:
            command.add_arguments(parser)
        if command.json:
            parser.add_argument("--json", action="store_true", dest="cmd_json",
                                help="print a JSON object instead of text")
        parser.set_defaults(command=command)
        parsers[command.name] = parser
    return parsers


def by_group(commands: Sequence[Command]) -> dict[str, list[Command]]:
    """Commands keyed by their group, in registration order."""
    groups: dict[str, list[Command]] = {}
    for command in commands:
        groups.setdefault(command.group, []).append(command)
    return groups
