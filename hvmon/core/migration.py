"""Migration between two hosts: libvirt's five phases, driven by the client.

1. **Begin** (source): the domain's definition and a cookie about the source.
2. **Prepare** (destination): check the guest can run there (CPU, machine type,
   disks) and start it waiting for the incoming stream; answers a URI.
3. **Perform** (source): send the guest's state to that URI and wait.
4. **Finish** (destination): resume (and define, with ``persistent``) the guest
   on success; kill the incoming guest and clean up on failure.
5. **Confirm** (source): stop (and undefine, with ``undefine_source``) the
   guest on success; resume it on failure.

Each phase is a public API call on its own connection, so each host's
read-only gate and access rules apply, and a remote connection reaches the
daemon that owns the guest. Whatever fails, the guest keeps running on the
source and the destination holds nothing of it.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

from hvmon.core.errors import HvmonError, InvalidArgument

if TYPE_CHECKING:
    from hvmon.core.api import Connection, Domain
    from hvmon.core.drivers.base import Driver

log = logging.getLogger("hvmon.migration")

#: how often the progress callback is fed from the source's job info
PROGRESS_INTERVAL = 0.1


@dataclass(frozen=True)
class MigrateFlags:
    """libvirt's migration flags that hvmon honours (bandwidth in MiB/s)."""

    live: bool = False
    persistent: bool = False
    undefine_source: bool = False
    suspend: bool = False
    offline: bool = False
    bandwidth: int | None = None
    dest_name: str | None = None
    timeout: float | None = None
    tunnelled: bool = False
    copy_storage_all: bool = False

    def __post_init__(self) -> None:
        if self.offline and not self.persistent:
            raise InvalidArgument("offline migration needs persistent (it only moves the "
                                  "definition)")
        if self.offline and self.live:
            raise InvalidArgument("offline and live migration exclude each other")
        if self.bandwidth is not None and self.bandwidth <= 0:
            raise InvalidArgument(f"bandwidth must be a positive number of MiB/s, "
                                  f"not {self.bandwidth}")
        if self.timeout is not None and self.timeout <= 0:
            raise InvalidArgument(f"timeout must be a positive number of seconds, "
                                  f"not {self.timeout}")
        if self.copy_storage_all and self.tunnelled:
            raise InvalidArgument("copy-storage-all cannot be tunnelled (the disks travel "
                                  "over NBD on their own port): drop tunnelled")
        if self.copy_storage_all and self.offline:
            raise InvalidArgument("copy-storage-all needs a running guest (offline migration "
                                  "moves only the definition)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def migrate_managed(dom: Domain, dest: Connection, flags: MigrateFlags,
                    progress: Callable[[int, int], None] | None = None) -> Domain:
    """Run the five phases for ``dom`` towards ``dest``; the domain there."""
    wire = flags.to_dict()
    begun = dom.migrate_begin(wire)
    name = flags.dest_name or dom.name
    try:
        prepared = dest.migrate_prepare(begun["xml"], begun["cookie"], wire)
    except BaseException:  # nothing started there: end the source's side of it
        _quietly(lambda: dom.migrate_confirm({}, wire, False))
        raise
    try:
        with progress_reporter(dom, progress):
            if flags.tunnelled:
                performed = _perform_tunnelled(dom, dest, name, prepared, wire)
            else:
                performed = dom.migrate_perform(prepared["uri"], prepared["cookie"], wire)
        if progress is not None and performed.get("total"):
            progress(int(performed["total"]), int(performed["total"]))  # all of it moved
    except BaseException as exc:
        _abort(dom, dest, name, wire, exc)
        raise
    cookie = {**begun["cookie"], **performed.get("cookie", {})}  # what the source told
    try:
        new = dest.migrate_finish(name, cookie, wire, True)
    except BaseException as exc:
        log.warning("migration of '%s': finish failed (%s); resuming on the source",
                    dom.name, exc)
        _quietly(lambda: dom.migrate_confirm({}, wire, False))
        raise
    dom.migrate_confirm(performed.get("cookie", {}), wire, True)
    if new is None:
        raise HvmonError(f"migration of '{dom.name}' finished without a domain on the "
                         "destination")
    return new


def _perform_tunnelled(dom: Domain, dest: Connection, name: str, prepared: dict[str, Any],
                       wire: dict[str, Any]) -> dict[str, Any]:
    """Perform with QEMU's stream relayed over ``dest`` (this process runs next to the
    source QEMU: peer to peer). The source QEMU sends to a UNIX socket here; a thread
    reads it and uploads it to the destination's incoming guest."""
    with tempfile.TemporaryDirectory(prefix="hvmon-tunnel-") as tmp:
        path = os.path.join(tmp, "stream.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)
        server.settimeout(60.0)
        relay = _Relay(server, lambda chunks: dest.migrate_tunnel_in(name, chunks))
        relay.start()
        try:
            performed = dom.migrate_perform(f"unix:{path}", prepared["cookie"], wire)
        except BaseException:
            server.close()  # unblocks a relay still waiting for QEMU
            relay.join(10.0)
            raise
        relay.join(60.0)  # the stream ended with the migration: the upload completes
        server.close()
        if relay.error is not None:
            raise relay.error
        return performed


class _Relay(threading.Thread):
    """Accepts the source QEMU's connection and uploads what it sends."""

    CHUNK = 256 * 1024

    def __init__(self, server: socket.socket,
                 upload: Callable[[Iterator[bytes]], int]) -> None:
        super().__init__(name="hvmon-migrate-tunnel", daemon=True)
        self._server, self._upload = server, upload
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            conn, _ = self._server.accept()
        except OSError as exc:
            self.error = HvmonError(f"tunnelled migration: the source QEMU never connected "
                                    f"({exc})")
            return
        with conn:
            try:
                self._upload(self._chunks(conn))
            except BaseException as exc:  # reported by Perform's caller
                self.error = exc

    def _chunks(self, conn: socket.socket) -> Iterator[bytes]:
        while True:
            data = conn.recv(self.CHUNK)
            if not data:
                return
            yield data


def _abort(dom: Domain, dest: Connection, name: str, wire: dict[str, Any],
           exc: BaseException) -> None:
    log.warning("migration of '%s' failed (%s); cleaning up the destination", dom.name, exc)
    _quietly(lambda: dest.migrate_finish(name, {}, wire, False))
    _quietly(lambda: dom.migrate_confirm({}, wire, False))


def _quietly(call: Callable[[], Any]) -> None:
    try:
        call()
    except HvmonError as exc:  # the first error is the one the caller needs
        log.warning("migration clean-up step failed: %s", exc)


def peer_to_peer(driver: Driver, uuid: str, dest_uri: str,
                 flags: dict[str, Any]) -> dict[str, Any]:
    """The source side drives: open ``dest_uri`` from here and run the phases."""
    from hvmon.core.access import AccessGate
    from hvmon.core.api import Connection
    from hvmon.core.api import open as open_connection
    from hvmon.core.drivers import SharedDriverRef

    local = Connection(cast("Driver", SharedDriverRef(driver)), AccessGate(readonly=False))
    dom = local.lookup_domain_by_uuid(uuid)
    with open_connection(dest_uri) as dest:
        new = migrate_managed(dom, dest, MigrateFlags(**flags))
        return {"name": new.name, "uuid": new.uuid}


class progress_reporter:  # noqa: N801 - used as a context manager
    """Polls the source's job info in a thread while Perform runs."""

    def __init__(self, dom: Domain, progress: Callable[[int, int], None] | None) -> None:
        self._dom, self._progress = dom, progress
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> None:
        if self._progress is not None:
            self._thread = threading.Thread(target=self._run, name="hvmon-migrate-progress",
                                            daemon=True)
            self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        assert self._progress is not None
        while not self._stop.wait(PROGRESS_INTERVAL):
            try:
                job = self._dom.job_info()
            except HvmonError:
                continue
            if job.type and job.data_total:  # memory handled (zero pages are not sent)
                self._progress(job.data_total - job.data_remaining, job.data_total)
