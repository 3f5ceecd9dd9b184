"""The ``hvmon`` command: parse the line, run one command, map errors to exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from typing import TextIO

from hvmon.cli.command import Command, Handler, by_group, register
from hvmon.cli.context import CliContext, Connect, default_connect
from hvmon.core.errors import HvmonError

#: exit codes: virsh uses 1 for every failure; argparse uses 2 for usage errors
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def builtin_commands() -> list[Command]:
    """Every command shipped with hvmon, in ``help`` order."""
    from hvmon.cli import (
        audit,
        domain,
        domstats,
        events,
        host,
        install,
        network,
        nwfilter,
        plugins,
        pool,
        secret,
        serve,
        vcpu,
        volume,
    )

    modules = (domain, vcpu, domstats, events, install, pool, volume, network, nwfilter, secret,
               host, plugins, serve, audit)
    return [command for module in modules for command in module.commands()]


def collect_commands(extra: Iterable[Sequence[Command]] = ()) -> list[Command]:
    """Built-in commands followed by plugin ones (one sequence per plugin).

    ``extra`` is what the ``hvmon_add_cli_commands`` hook returns; a plugin
    command that reuses a name makes :func:`build_parser` raise.
    """
    commands = builtin_commands()
    for group in extra:
        commands.extend(group)
    return commands


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    """The top-level parser with the global options and one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="hvmon", description="hvmon: a virsh-like tool for hvmon hosts.",
        epilog="Use 'hvmon help' for the commands by group, 'hvmon COMMAND -h' for one.",
    )
    parser.add_argument("-c", "--connect", metavar="URI",
                        help="connection URI (default: $HVMON_DEFAULT_URI or test:///default)")
    parser.add_argument("-r", "--readonly", action="store_true", help="connect read-only")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="quiet mode: no informational messages")
    parser.add_argument("--json", action="store_true", dest="global_json",
                        help="JSON output (list and info commands)")
    subparsers = parser.add_subparsers(dest="command_name", metavar="COMMAND", required=True)
    parsers = register(subparsers, commands)
    help_command = Command("help", "print help", _help_handler(parser, parsers, commands),
                           _help_arguments, group="Other")
    register(subparsers, [help_command])
    return parser


def _help_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topic", nargs="?", metavar="COMMAND", help="a command name")


def _help_handler(
    top: argparse.ArgumentParser, parsers: dict[str, argparse.ArgumentParser],
    commands: Sequence[Command],
) -> Handler:
    """``help``: the commands by group, or one command's own help."""

    def handler(ctx: CliContext, args: argparse.Namespace) -> int:
        if args.topic:
            if args.topic not in parsers:
                ctx.warn(f"command '{args.topic}' doesn't exist")
                return EXIT_ERROR
            ctx.write(parsers[args.topic].format_help())
            return EXIT_OK
        lines = [top.format_usage(), "Grouped commands:", ""]
        for group, members in by_group(commands).items():
            lines.append(f" {group}:")
            lines += [f"    {c.name:<30} {c.help}" for c in members]
            lines.append("")
        ctx.write("\n".join(lines))
        return EXIT_OK

    return handler


def _default_uri() -> str:
    return os.environ.get("HVMON_DEFAULT_URI") or "test:///default"


def main(
    argv: list[str] | None = None,
    *,
    connect: Connect | None = None,
    commands: Sequence[Command] | None = None,
) -> int:
    """Run one hvmon command and return its exit code.

    ``connect(uri, readonly)`` replaces opening the URI (tests hand in a shared
    connection this way; such a connection is left open). ``commands``
    replaces the command set (default: :func:`collect_commands`).
    """
    parser = build_parser(commands if commands is not None else collect_commands())
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage error (2) or --help (0)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    command: Command = args.command
    if args.global_json and not command.json:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"hvmon: error: command '{command.name}' has no JSON output\n")
        return EXIT_USAGE
    ctx = CliContext(
        uri=args.connect or _default_uri(),
        readonly=args.readonly,
        json=args.global_json or getattr(args, "cmd_json", False),
        quiet=args.quiet,
        connect=connect or default_connect,
        owns_connection=connect is None,
    )
    trailer = not ctx.json and not ctx.quiet and command.name != "help"
    return run_command(ctx, command, args, trailer=trailer)


def run_command(
    ctx: CliContext, command: Command, args: argparse.Namespace, trailer: bool = False
) -> int:
    """Call the handler; every failure becomes one ``error:`` line and an exit code.

    ``trailer`` ends a successful command with virsh's blank line.
    """
    try:
        result = command.handler(ctx, args)
        code = EXIT_OK if result is None else int(result)
        if code == EXIT_OK and trailer:
            ctx.write("\n")
        ctx.out.flush()
        return code
    except HvmonError as exc:
        ctx.warn(str(exc))
    except BrokenPipeError:  # ``hvmon list | head -1``: stop quietly
        _silence_stdout()
    except OSError as exc:
        ctx.warn(exc.strerror or str(exc))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # no traceback for the user unless asked
        if os.environ.get("HVMON_DEBUG"):
            raise
        ctx.warn(f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}")
    finally:
        try:
            ctx.close()
        except Exception as exc:  # noqa: BLE001 - closing must not hide the result
            ctx.warn(f"failed to close the connection: {exc}")
    return EXIT_ERROR


def _silence_stdout() -> None:
    """After a closed pipe (``hvmon list | head``), stop Python's flush error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def plugin_commands(err: TextIO) -> list[list[Command]]:
    """Each plugin's ``hvmon_add_cli_commands`` result, minus groups whose names clash.

    Plugin problems (a plugin that failed to load, a name already taken) are
    one ``warning:`` line each on ``err``; they never stop the command.
    """
    from hvmon.daemon.plugins import PluginError, build_plugin_host

    try:
        host = build_plugin_host()
    except PluginError as exc:
        err.write(f"warning: {exc}\n")
        return []
    taken = {name for c in builtin_commands() for name in (c.name, *c.aliases)} | {"help"}
    groups: list[list[Command]] = []
    for plugin, commands in host.add_cli_commands():
        if not all(isinstance(c, Command) for c in commands):
            err.write(f"warning: plugin '{plugin.name}': hvmon_add_cli_commands must return "
                      "Command values; its commands are skipped\n")
            continue
        names = [name for c in commands for name in (c.name, *c.aliases)]
        clash = sorted({n for n in names if n in taken or names.count(n) > 1})
        if clash:
            err.write(f"warning: plugin '{plugin.name}': command name(s) {', '.join(clash)} "
                      "already taken; its commands are skipped\n")
            continue
        taken.update(names)
        groups.append(commands)
    for problem in host.problems:
        err.write(f"warning: {problem}\n")
    return groups


#: global options that take a value (the word after them is no command name)
_VALUE_OPTIONS = ("-c", "--connect")


def requested_command(argv: Sequence[str]) -> str | None:
    """The command name on a command line: its first word that is no global option or
    an option's value; None when there is none (``hvmon -h``)."""
    words = iter(argv)
    for word in words:
        if word in _VALUE_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def run() -> None:
    """Console-script entry point: built-in and plugin commands, exit with :func:`main`'s code.

    Plugins are loaded only when the line names no built-in command (a plugin's
    command, ``help``, ``-h``, a typo): a built-in command starts without them.
    """
    builtin = {name for c in builtin_commands() for name in (c.name, *c.aliases)}
    extra = [] if requested_command(sys.argv[1:]) in builtin else plugin_commands(sys.stderr)
    try:
        code = main(commands=collect_commands(extra))
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    sys.exit(code)
