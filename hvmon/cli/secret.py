"""Secret commands. A secret's value is never echoed, logged or put in an error."""

from __future__ import annotations

import argparse
import base64
import binascii
import getpass
from typing import TYPE_CHECKING

from hvmon.cli import lookup
from hvmon.cli.command import Command
from hvmon.cli.inputs import CliError, read_bytes, read_file
from hvmon.cli.output import table

if TYPE_CHECKING:
    from hvmon.cli.context import CliContext

GROUP = "Secret"


def _secret_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("secret", help="secret UUID")


def _file_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="file containing secret attributes in XML")


def cmd_secret_define(ctx: CliContext, args: argparse.Namespace) -> None:
    secret = ctx.conn.define_secret_xml(read_file(args.file))
    ctx.say(f"Secret {secret.uuid} created")


def cmd_secret_dumpxml(ctx: CliContext, args: argparse.Namespace) -> None:
    xml = lookup.secret(ctx.conn, args.secret).xml_desc()
    ctx.write(xml if xml.endswith("\n") else xml + "\n")


def cmd_secret_list(ctx: CliContext, args: argparse.Namespace) -> None:
    rows = sorted(
        ({"uuid": s.uuid, "usage_type": s.usage_type or "none", "usage_id": s.usage_id or None}
         for s in ctx.conn.list_all_secrets()),
        key=lambda r: r["uuid"],
    )

    def usage(row: dict[str, str | None]) -> str:
        if row["usage_type"] == "none":
            return "Unused"
        return f"{row['usage_type']} {row['usage_id'] or ''}".rstrip()

    ctx.emit({"secrets": rows},
             lambda: table(["UUID", "Usage"], [[r["uuid"], usage(r)] for r in rows]))


def _set_value_args(parser: argparse.ArgumentParser) -> None:
    _secret_arg(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--base64", metavar="B64", help="base64-encoded secret value")
    source.add_argument("--file", metavar="FILE",
                        help="read secret value from file (base64 unless --plain)")
    source.add_argument("--interactive", action="store_true",
                        help="read the value from the terminal without echo (plain text)")
    parser.add_argument("--plain", action="store_true",
                        help="with --file: the file holds the raw value, not base64")


def _decode(text: str | bytes) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CliError("Invalid base64 data") from None


def secret_value(args: argparse.Namespace) -> bytes:
    """The value the user gave, from exactly one of the sources."""
    if args.interactive:
        try:
            return getpass.getpass("Enter new value for secret:").encode()
        except EOFError:
            raise CliError("Failed to read secret: no input") from None
    if args.file is not None:
        data = read_bytes(args.file)
        return data if args.plain else _decode(data.strip())
    if args.plain:
        raise CliError("--plain is only valid with --file")
    return _decode(args.base64.strip())


def cmd_secret_set_value(ctx: CliContext, args: argparse.Namespace) -> None:
    secret = lookup.secret(ctx.conn, args.secret)
    secret.set_value(secret_value(args))
    ctx.say("Secret value set")


def _get_value_args(parser: argparse.ArgumentParser) -> None:
    _secret_arg(parser)
    parser.add_argument("--plain", action="store_true",
                        help="get the value as raw bytes instead of base64")


def cmd_secret_get_value(ctx: CliContext, args: argparse.Namespace) -> None:
    value = lookup.secret(ctx.conn, args.secret).get_value()
    if args.plain:
        ctx.out.flush()
        buffer = getattr(ctx.out, "buffer", None)
        if buffer is not None:
            buffer.write(value)
            buffer.flush()
        else:
            ctx.write(value.decode("utf-8", errors="replace"))
        return
    ctx.write(base64.b64encode(value).decode("ascii") + "\n")


def cmd_secret_undefine(ctx: CliContext, args: argparse.Namespace) -> None:
    secret = lookup.secret(ctx.conn, args.secret)
    secret.undefine()
    ctx.say(f"Secret {secret.uuid} deleted")


def commands() -> list[Command]:
    """The secret commands."""
    return [
        Command("secret-define", "define or modify a secret from an XML file",
                cmd_secret_define, _file_arg, group=GROUP),
        Command("secret-dumpxml", "secret attributes in XML", cmd_secret_dumpxml,
                _secret_arg, group=GROUP),
        Command("secret-list", "list secrets", cmd_secret_list, None, json=True, group=GROUP),
        Command("secret-set-value", "set a secret value", cmd_secret_set_value,
                _set_value_args, group=GROUP),
        Command("secret-get-value", "output a secret value", cmd_secret_get_value,
                _get_value_args, group=GROUP),
        Command("secret-undefine", "undefine a secret", cmd_secret_undefine, _secret_arg,
                group=GROUP),
    ]
