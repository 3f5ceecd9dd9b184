"""Reading what the user hands the CLI: XML files, stdin."""

from __future__ import annotations

import sys

from hvmon.core.errors import HvmonError


class CliError(HvmonError):
    """A problem with the command line itself (bad file, bad value)."""

    code, name = 8, "invalid-argument"


def read_file(path: str) -> str:
    """The text of ``path`` (``-`` is stdin), or a one-line :class:`CliError`."""
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise CliError(f"Failed to open file '{path}': {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise CliError(f"Failed to read file '{path}': not UTF-8 text ({exc.reason})") from None


def read_bytes(path: str) -> bytes:
    """The bytes of ``path``, or a one-line :class:`CliError`."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise CliError(f"Failed to open file '{path}': {exc.strerror or exc}") from None
