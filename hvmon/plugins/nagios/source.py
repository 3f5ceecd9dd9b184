"""The one read-only connection a check uses, opened lazily and read once.

A check asks for either the snapshot (``get_snapshot(max_age)``) or the
daemon's facts (``daemon_info()``): against a daemon that is the ``open``
call plus one round trip. ``timings`` records how long each step took (shown
with ``-vvv``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hvmon.core.api import Connection
    from hvmon.core.snapshot.model import Snapshot

Connector = Callable[[str], "Connection"]


def _open_readonly(uri: str) -> Connection:
    import hvmon

    return hvmon.open_readonly(uri)


class Source:
    """A lazily opened read-only connection to ``uri``."""

    def __init__(self, uri: str, max_age: float | None = None,
                 connect: Connector | None = None) -> None:
        self.uri = uri
        self.max_age = max_age
        self._connect = connect or _open_readonly
        self._conn: Connection | None = None
        self._snapshot: Snapshot | None = None
        self._info: dict[str, Any] | None = None
        self.timings: dict[str, float] = {}

    @property
    def connection(self) -> Connection:
        if self._conn is None:
            start = time.perf_counter()
            conn = self._connect(self.uri)
            if not conn.readonly:  # a connector handed in by a caller must obey too
                conn.close()
                raise RuntimeError("check_hvmon needs a read-only connection")
            self._conn = conn
            self.timings["connect"] = time.perf_counter() - start
        return self._conn

    def snapshot(self) -> Snapshot:
        """The host's snapshot (fetched once)."""
        if self._snapshot is None:
            conn = self.connection
            start = time.perf_counter()
            self._snapshot = conn.get_snapshot(self.max_age)
            self.timings["snapshot"] = time.perf_counter() - start
        return self._snapshot

    def daemon_info(self) -> dict[str, Any]:
        """The daemon's facts (fetched once)."""
        if self._info is None:
            conn = self.connection
            start = time.perf_counter()
            self._info = dict(conn.daemon_info())
            self.timings["daemon_info"] = time.perf_counter() - start
        return self._info

    def describe(self) -> list[str]:
        """Lines about the connection for ``-vv``."""
        lines = [f"uri: {self.uri}"]
        snap = self._snapshot
        if snap is not None:
            lines.append(f"snapshot: generation {snap.generation}, age {snap.age():.3f} s, "
                         f"collected in {snap.duration:.3f} s, host {snap.host.hostname} "
                         f"(driver {snap.host.driver})")
        if self._info is not None:
            lines.append(f"daemon: hvmond {self._info.get('version', '?')}, pid "
                         f"{self._info.get('pid', '?')}, serving {self._info.get('uri', '?')}")
        return lines

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
