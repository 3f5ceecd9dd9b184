"""RpcServer: the core API served on a read-write and a read-only UNIX socket, and TLS.

A client on the read-only socket (or a read-only TLS listener) is read-only
whatever it asks for; on the read-write socket it is read-only only if it
asks. Each connection's gate also carries the caller's identity (SO_PEERCRED,
certificate DN) and the policy the access rules grant it (see
:mod:`.security`). Driver calls run in a
thread pool (the driver API is synchronous); the asyncio loop only moves
frames. See docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hvmon.core.access import ApiSpec, Identity
from hvmon.core.api import api_registry
from hvmon.core.drivers.base import Driver
from hvmon.core.drivers.remote import framing
from hvmon.core.errors import AccessDenied, NoConnect, Unsupported
from hvmon.daemon.rpc import tls
from hvmon.daemon.rpc.listen import bind_unix, unlink_if_ours
from hvmon.daemon.rpc.security import Security, peer_identity
from hvmon.daemon.rpc.session import Session

if TYPE_CHECKING:
    from hvmon.core.snapshot.cache import SnapshotCache
    from hvmon.daemon.rpc.tls import TlsSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

#: seconds a TLS client has to finish its handshake
TLS_HANDSHAKE_TIMEOUT = 30.0
#: a connection's read buffer: a few stream chunks, so big frames need no pausing
READ_BUFFER = 4 * framing.STREAM_CHUNK


class RpcServer:
    """Serves ``driver`` to remote clients (hvmon.core.drivers.remote.RemoteDriver)."""

    def __init__(self, driver: Driver, *, served_uri: str, snapshots: SnapshotCache | None,
                 info: Callable[[], dict[str, Any]], max_workers: int = 8,
                 security: Security | None = None) -> None:
        self.driver = driver
        #: access rules and audit log (defaults: none, off)
        self.security = security or Security()
        #: (host, port) of every TLS listener, once listening
        self.tls_addresses: list[tuple[str, int]] = []
        self.served_uri = served_uri
        self.window = framing.STREAM_WINDOW
        self.chunk = framing.STREAM_CHUNK
        self._snapshots = snapshots
        self._info = info
        self._max_workers = max_workers
        self.registry: dict[str, ApiSpec] = api_registry()
        self._executor: ThreadPoolExecutor | None = None
        self._listeners: list[asyncio.AbstractServer] = []
        self._sockets: list[tuple[Path, tuple[int, int]]] = []
        self._sessions: dict[Session, asyncio.Task[Any]] = {}
        self._handshakes: set[asyncio.Task[Any]] = set()
        self._snapshot_lock: asyncio.Lock | None = None
        self._snapshot_cache: tuple[tuple[int, float], tuple[int, bytes]] | None = None
        #: how many times a snapshot was serialized (once per generation)
        self.snapshot_encodes = 0
        #: most upload chunks ever queued for one stream (bounded by the window)
        self.max_backlog = 0

    @property
    def version(self) -> str:
        from hvmon import __version__

        return __version__

    @property
    def client_count(self) -> int:
        return len(self._sessions)

    @property
    def stream_count(self) -> int:
        """Byte streams open on every connection."""
        return sum(session.stream_count for session in self._sessions)

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            raise RuntimeError("the RPC server is not running")
        return self._executor

    # --- lifecycle ------------------------------------------------------------------
    async def start(self, rw_path: Path, ro_path: Path, rw_mode: int = 0o600,
                    ro_mode: int = 0o666) -> None:
        """Listen on both sockets (replacing stale files, never a live daemon's)."""
        if self._listeners:
            raise RuntimeError("the RPC server is already running")
        self._executor = ThreadPoolExecutor(self._max_workers, thread_name_prefix="hvmon-rpc")
        self._snapshot_lock = asyncio.Lock()
        try:
            for path, mode, readonly in ((Path(rw_path), rw_mode, False),
                                         (Path(ro_path), ro_mode, True)):
                sock, identity = bind_unix(path, mode)
                self._sockets.append((path, identity))
                accept = functools.partial(self._accept, readonly=readonly, path=path)
                try:
                    listener = await asyncio.start_unix_server(accept, sock=sock,
                                                               limit=READ_BUFFER)
                except BaseException:
                    sock.close()
                    raise
                self._listeners.append(listener)
        except BaseException:
            await self.stop()
            raise
        log.info("rpc: serving %s on %s (read-only: %s)", self.served_uri, rw_path, ro_path)

    async def start_tls(self, settings: TlsSettings) -> list[tuple[str, int]]:
        """Listen for TLS clients on every configured listener; returns (host, port)s.

        Call after :meth:`start`. A client must present a certificate signed by
        the CA; one whose DN no pattern of its listener allows is refused at open.
        """
        if self._executor is None:
            raise RuntimeError("start the RPC server before its TLS listeners")
        ctx = tls.server_context(settings)
        bound: list[tuple[str, int]] = []
        for listener in settings.listeners:
            accept = functools.partial(self._accept_tls, listener=listener, ctx=ctx)
            try:
                server = await asyncio.start_server(
                    accept, listener.host, listener.port, limit=READ_BUFFER,
                    reuse_address=True)
            except OSError as exc:
                raise NoConnect(f"TLS: cannot listen on {listener.host}:{listener.port}: "
                                f"{exc.strerror or exc}") from None
            self._listeners.append(server)
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                bound.append((host, port))
                log.info("rpc: serving %s over TLS on %s:%d%s", self.served_uri, host, port,
                         " (read-only)" if listener.readonly else "")
        self.tls_addresses.extend(bound)
        return bound

    async def stop(self) -> None:
        """Close the listeners and every client, then remove the socket files."""
        for listener in self._listeners:
            listener.close()
        for listener in self._listeners:
            await listener.wait_closed()
        self._listeners.clear()
        for handshake in list(self._handshakes):
            handshake.cancel()
        sessions = list(self._sessions.items())
        for session, _ in sessions:
            session.end(abort=True)
        await asyncio.gather(*(task for _, task in sessions), return_exceptions=True)
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await _shut_down(executor)
        for path, identity in self._sockets:
            unlink_if_ours(path, identity)
        self._sockets.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                      readonly: bool, path: Path) -> None:
        who = peer_identity(writer.get_extra_info("socket"))
        await self._serve(Session(self, reader, writer, readonly_socket=readonly, path=path,
                                  identity=who))

    async def _accept_tls(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                          listener: tls.TlsListener, ctx: ssl.SSLContext) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        task = asyncio.current_task()
        assert task is not None
        self._handshakes.add(task)
        try:  # the handshake here, not in the listener, so a refused client is logged
            async with asyncio.timeout(TLS_HANDSHAKE_TIMEOUT):
                await writer.start_tls(ctx)
        except (OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) \
                or type(exc).__name__
            here = writer.get_extra_info("sockname") or (listener.host, listener.port)
            log.warning("rpc: TLS handshake with %s on %s:%d failed: %s", peer[0],
                        here[0], here[1], reason)
            writer.transport.abort()
            return
        finally:
            self._handshakes.discard(task)
        dn = tls.subject_dn(writer.get_extra_info("peercert"))
        refusal = None
        if dn is None or not tls.dn_allowed(dn, listener.allowed_dns):
            log.warning("rpc: TLS client %s refused: certificate DN %r is not allowed",
                        peer[0], dn)
            refusal = AccessDenied(f"TLS client certificate DN '{dn}' is not allowed on "
                                   f"{listener.host}:{listener.port}")
        who = Identity("tls", dn=dn)
        await self._serve(Session(self, reader, writer, readonly_socket=listener.readonly,
                                  path=f"{listener.host}:{listener.port}", identity=who,
                                  refusal=refusal))

    async def _serve(self, session: Session) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions[session] = task
        try:
            await session.run()
        finally:
            self._sessions.pop(session, None)

    # --- helpers for sessions -------------------------------------------------------------
    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Run ``fn`` in the worker pool."""
        return asyncio.get_running_loop().run_in_executor(
            self.executor, functools.partial(fn, *args, **kwargs))

    def note_backlog(self, chunks: int) -> None:
        self.max_backlog = max(self.max_backlog, chunks)

    def daemon_info(self) -> dict[str, Any]:
        """The daemon's facts plus this server's client count."""
        info = dict(self._info())
        info.setdefault("clients", self.client_count)
        return info

    async def snapshot_reply(self, max_age: float | None) -> tuple[int, bytes]:
        """(flags, payload) of a REPLY carrying the snapshot, encoded once per generation."""
        if self._snapshots is None:
            raise Unsupported("this daemon serves no snapshots")
        snap = await self.run(self._snapshots.get, max_age)
        key = (snap.generation, snap.timestamp)
        assert self._snapshot_lock is not None
        async with self._snapshot_lock:
            cached = self._snapshot_cache
            if cached is not None and cached[0] == key:
                return cached[1]
            encoded = await self.run(_encode_snapshot, snap)
            self.snapshot_encodes += 1
            newest = self._snapshot_cache
            if newest is None or newest[0] <= key:
                self._snapshot_cache = (key, encoded)
            return encoded


def _encode_snapshot(snap: Any) -> tuple[int, bytes]:
    return framing.dump({"json": snap.to_dict()})


async def _shut_down(executor: ThreadPoolExecutor) -> None:
    """Wait for the workers to finish without blocking the loop (or its default pool)."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def shut_down() -> None:
        executor.shutdown(wait=True, cancel_futures=True)
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

    thread = threading.Thread(target=shut_down, name="hvmon-rpc-shutdown", daemon=True)
    thread.start()
    await done
    thread.join()

