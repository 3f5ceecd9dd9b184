"""What a command handler gets: the (lazily opened) connection and the streams."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from hvmon.cli.output import to_json

if TYPE_CHECKING:
    from hvmon.core.api import Connection

Connect = Callable[[str, bool], "Connection"]


def default_connect(uri: str, readonly: bool) -> Connection:
    """Open ``uri`` through the public API."""
    import hvmon

    return hvmon.open(uri, readonly=readonly)


@dataclass
class CliContext:
    """Per-invocation state shared by every handler.

    The connection is opened on first use, so commands that need none
    (``version``) work without a driver. Only a connection this context
    opened with :func:`default_connect` is closed by :meth:`close`; one handed
    in by a caller's ``connect`` stays the caller's.
    """

    uri: str
    readonly: bool = False
    json: bool = False
    quiet: bool = False
    connect: Connect = default_connect
    owns_connection: bool = True
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    _conn: Connection | None = field(default=None, repr=False)

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            self._conn = self.connect(self.uri, self.readonly)
        return self._conn

    def close(self) -> None:
        if self._conn is not None and self.owns_connection:
            self._conn.close()
        self._conn = None

    # --- output ---------------------------------------------------------------
    def write(self, text: str) -> None:
        """Command output (virsh's ``vshPrint``)."""
        self.out.write(text)

    def say(self, text: str) -> None:
        """An informational line such as ``Domain 'x' started``; not with -q."""
        if not self.quiet:
            self.out.write(text + "\n")

    def write_json(self, data: Any) -> None:
        self.out.write(to_json(data))

    def emit(self, data: Any, text: Callable[[], str]) -> None:
        """JSON when asked for, else the text form."""
        self.write(to_json(data) if self.json else text())

    def warn(self, message: str) -> None:
        self.err.write(f"error: {message}\n")
