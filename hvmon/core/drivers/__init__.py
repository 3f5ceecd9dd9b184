"""Driver selection by URI.

``test:///...`` opens the embedded test driver in this process. Every other
driver lives in the daemon: ``qemu:///system`` and ``qemu:///session`` reach it
through the default socket under :func:`hvmon.core.paths.default_run_dir`
(``hvmon-sock-ro`` for read-only opens, ``hvmon-sock`` otherwise), and
``driver+unix:///path`` does the same for any driver. ``?socket=PATH`` names
another socket. ``driver+tls://host[:port]/path`` reaches a daemon's TLS
listener (default port 16514) with a client certificate (see
:mod:`hvmon.core.drivers.remote.tls`). ``qemu:///embed?root=DIR`` (libvirt's embedded driver) opens
the QEMU driver in this process; connections to one root share one driver,
which closes with the last of them (a root's files belong to one process).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from hvmon.core.drivers.base import Driver
from hvmon.core.errors import NoConnect
from hvmon.core.uri import ConnectURI, parse_uri

if TYPE_CHECKING:
    from hvmon.core.drivers.remote.tls import TlsClientFiles

#: drivers served only by the daemon: their plain URIs go through its socket
DAEMON_DRIVERS = ("qemu",)


def open_driver(uri: str, readonly: bool = False) -> Driver:
    """Open the driver that serves ``uri``: in this process, or a daemon's client."""
    parsed = parse_uri(uri)
    if parsed.driver == "test" and parsed.is_local:
        from hvmon.core.drivers.test.driver import TestDriver

        return TestDriver(parsed)
    if parsed.driver == "qemu" and parsed.is_local and parsed.path == "/embed":
        return open_local_qemu(parsed)  # libvirt's embedded driver: in this process
    target = remote_target(parsed, readonly)
    if target is None:
        raise NoConnect(f"no driver for URI '{uri}'")
    from hvmon.core.drivers.remote import RemoteDriver

    served, where = target
    if isinstance(where, TlsTarget):
        from hvmon.core.drivers.remote import tls

        ctx = tls.client_context(where.files, verify=where.verify, where=where.label)
        sock = tls.connect_tls(where.host, where.port, ctx)
        pump = tls.TlsPump(sock, where.label)  # owns the TLS socket from here on
        return RemoteDriver(served, where.label, readonly=readonly, opened_as=uri, tls=pump)
    return RemoteDriver(served, where, readonly=readonly, opened_as=uri)


@dataclass(frozen=True)
class TlsTarget:
    """Where a ``+tls`` URI points: host, port, the client's x509 files, verification."""

    host: str
    port: int
    files: TlsClientFiles
    verify: bool = True

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def remote_target(parsed: ConnectURI, readonly: bool) -> tuple[str, Path | TlsTarget] | None:
    """(URI the daemon must serve, socket path or TLS target) for a daemon URI, else None."""
    if parsed.transport is None and (parsed.host or parsed.driver not in DAEMON_DRIVERS):
        return None
    if parsed.transport == "tls":
        return _tls_target(parsed)
    if parsed.transport not in (None, "unix"):
        raise NoConnect(f"transport '{parsed.transport}' of URI '{parsed.raw}' is not "
                        f"supported (use {parsed.driver}+unix:///... or "
                        f"{parsed.driver}+tls://host/...)")
    if parsed.host:
        raise NoConnect(f"URI '{parsed.raw}': the unix transport takes no host name")
    query = dict(parsed.query)
    socket_arg = query.pop("socket", None)
    if socket_arg == "":
        raise NoConnect(f"URI '{parsed.raw}': empty socket path")
    if socket_arg is None:
        from hvmon.core.paths import default_run_dir, socket_path

        path = socket_path(default_run_dir(), readonly)
    else:
        path = Path(socket_arg)
    return _served(parsed, query), path


def _tls_target(parsed: ConnectURI) -> tuple[str, TlsTarget]:
    from hvmon.core.drivers.remote import tls

    if not parsed.host:
        raise NoConnect(f"URI '{parsed.raw}': the tls transport needs a host name")
    query = dict(parsed.query)
    transport = {key: query.pop(key) for key in tls.QUERY_KEYS if key in query}
    if "socket" in query:
        raise NoConnect(f"URI '{parsed.raw}': the tls transport takes no socket path")
    target = TlsTarget(parsed.host, parsed.port or tls.DEFAULT_PORT,
                       tls.files_from_query(transport),
                       verify=not tls.truthy(transport.get("no_verify")))
    return _served(parsed, query), target


def _served(parsed: ConnectURI, query: dict[str, str]) -> str:
    served = f"{parsed.driver}://{parsed.path}"
    if query:
        served += "?" + urlencode(query)
    return served


def open_local_qemu(parsed: ConnectURI) -> Driver:
    """The QEMU driver in this process (``qemu:///embed?root=``, or inside the daemon)."""
    from hvmon.core.drivers.qemu.driver import QemuDriver

    key = f"{parsed.path}?{sorted(parsed.query.items())}"
    with _shared_lock:
        entry = _shared.get(key)
        if entry is None:
            entry = _shared[key] = [QemuDriver(parsed), 0]
        entry[1] += 1
        return SharedDriverRef(entry[0], lambda: _release(key))  # type: ignore[return-value]


_shared: dict[str, list[Any]] = {}
_shared_lock = threading.Lock()


def _release(key: str) -> None:
    with _shared_lock:
        entry = _shared.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _shared[key]
    entry[0].close()


class SharedDriverRef:
    """A driver shared by several connections: every call reaches it; ``close()`` runs
    ``on_close`` once (the owner decides when the driver itself closes)."""

    def __init__(self, driver: Driver, on_close: Any = None) -> None:
        self._driver = driver
        self._on_close = on_close

    def __getattr__(self, name: str) -> Any:
        return getattr(self._driver, name)

    def close(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()
