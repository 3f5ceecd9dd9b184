"""An RpcServer on a private asyncio loop in a thread, on sockets in tmp_path."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from leaks import no_leaked_threads  # noqa: F401 - autouse in this suite

import hvmon
from hvmon.core.access import AccessGate
from hvmon.core.api import Connection
from hvmon.core.drivers.test.driver import TestDriver
from hvmon.core.snapshot.cache import SnapshotCache
from hvmon.core.uri import parse_uri
from hvmon.daemon.rpc import RpcServer

SERVED = "test:///default"


class Daemon:
    """A running RpcServer over a fresh test driver, and handles to inspect it."""

    def __init__(self, run_dir: Path, *, served: str = SERVED, snapshots: bool = True) -> None:
        self.rw_path = run_dir / "hvmon-sock"
        self.ro_path = run_dir / "hvmon-sock-ro"
        self.served = served
        self.driver = TestDriver(parse_uri(SERVED))
        #: the daemon's own read-write connection (fingerprints, setup)
        self.local = Connection(self.driver, AccessGate())
        self.snapshots = SnapshotCache(self.local) if snapshots else None
        self.server = RpcServer(self.driver, served_uri=served, snapshots=self.snapshots,
                                info=self.info, max_workers=8)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-rpc-loop",
                                       daemon=True)
        self.stopped = False

    def info(self) -> dict[str, Any]:
        snap = self.snapshots.current() if self.snapshots else None
        return {"version": hvmon.__version__, "driver": self.served, "agents": {"test": "ok"},
                "snapshot": {"generation": snap.generation if snap else 0,
                             "age": snap.age() if snap else None}}

    def run(self, coro: Any, timeout: float = 10.0) -> Any:
        """Run a coroutine on the server's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call_soon(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the loop thread (to read server state safely)."""
        async def wrapper() -> Any:
            return fn()
        return self.run(wrapper())

    def start(self) -> None:
        self.thread.start()
        self.run(self.server.start(self.rw_path, self.ro_path))

    def stop(self) -> None:
        """Stop the server, its loop and thread; idempotent."""
        if self.stopped:
            return
        self.stopped = True
        try:
            if self.thread.is_alive():
                self.run(self.server.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
            if self.snapshots is not None:
                self.snapshots.stop()
            self.driver.close()

    def uri(self, readonly_socket: bool = False) -> str:
        path = self.ro_path if readonly_socket else self.rw_path
        return f"test+unix:///default?socket={path}"

    def open(self, readonly: bool = False, readonly_socket: bool = False) -> Connection:
        return hvmon.open(self.uri(readonly_socket), readonly=readonly)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Poll ``predicate`` on the loop thread until it holds."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.call_soon(predicate):
                return True
            time.sleep(0.01)
        return False


DaemonFactory = Callable[..., Daemon]


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[DaemonFactory]:
    """Start daemons (``run_dir`` defaults to tmp_path); all are stopped afterwards."""
    started: list[Daemon] = []

    def start(run_dir: Path | None = None, **kwargs: Any) -> Daemon:
        instance = Daemon(run_dir or tmp_path, **kwargs)
        started.append(instance)
        instance.start()
        return instance

    try:
        yield start
    finally:
        for instance in reversed(started):
            instance.stop()


@pytest.fixture
def daemon(start_daemon: DaemonFactory) -> Daemon:
    """A running daemon on ``tmp_path/hvmon-sock`` and ``tmp_path/hvmon-sock-ro``."""
    return start_daemon()


@pytest.fixture
def remote(daemon: Daemon) -> Iterator[Connection]:
    """A read-write connection to the daemon through its read-write socket."""
    conn = daemon.open()
    try:
        yield conn
    finally:
        conn.close()
