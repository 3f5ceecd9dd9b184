"""An RpcServer with TLS listeners, access rules and an audit log, on a private loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from leaks import no_leaked_threads  # noqa: F401 - autouse in this suite

from hvmon.core.api import api_registry
from hvmon.core.drivers.test.driver import TestDriver
from hvmon.core.uri import parse_uri
from hvmon.daemon.rpc import RpcServer
from hvmon.daemon.rpc.audit import AuditLog
from hvmon.daemon.rpc.rules import parse_rules
from hvmon.daemon.rpc.security import Security
from hvmon.daemon.rpc.tls import TlsListener, TlsSettings

from .pki import Authority, name

SERVED = "test:///default"
ALLOWED = ["O=Example,CN=admin", "O=Example,CN=monitor*"]


class Server:
    """A running RpcServer over a fresh test driver."""

    def __init__(self, run_dir: Path, *, security: Security,
                 tls: TlsSettings | None = None) -> None:
        self.rw_path = run_dir / "hvmon-sock"
        self.ro_path = run_dir / "hvmon-sock-ro"
        self.driver = TestDriver(parse_uri(SERVED))
        self.security = security
        self.tls = tls
        self.server = RpcServer(self.driver, served_uri=SERVED, snapshots=None,
                                info=dict, max_workers=4, security=security)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sec-rpc-loop",
                                       daemon=True)
        self.addresses: list[tuple[str, int]] = []
        self.stopped = False

    def run(self, coro: Any, timeout: float = 20.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        if self.security.audit is not None:
            self.security.audit.open()
        self.run(self.server.start(self.rw_path, self.ro_path))
        if self.tls is not None:
            self.addresses = self.run(self.server.start_tls(self.tls))

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        try:
            self.run(self.server.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
            self.driver.close()
            if self.security.audit is not None:
                self.security.audit.close()

    def unix_uri(self, readonly_socket: bool = False) -> str:
        path = self.ro_path if readonly_socket else self.rw_path
        return f"test+unix:///default?socket={path}"

    def tls_uri(self, index: int, pki: Path | None = None, **query: str) -> str:
        host, port = self.addresses[index]
        parts = [f"pkipath={pki}"] if pki is not None else []
        parts += [f"{k}={v}" for k, v in query.items()]
        return f"test+tls://{host}:{port}/default" + ("?" + "&".join(parts) if parts else "")


ServerFactory = Callable[..., Server]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers; each is stopped afterwards."""
    started: list[Server] = []

    def start(*, rules: dict[str, Any] | None = None, audit: bool = False, chain: bool = True,
              tls: TlsSettings | None = None) -> Server:
        run_dir = tmp_path / f"run{len(started)}"
        ruleset = parse_rules(rules, api_registry()) if rules is not None else None
        log = AuditLog(tmp_path / f"audit{len(started)}.log", chain=chain) if audit else None
        server = Server(run_dir, security=Security(ruleset, log), tls=tls)
        started.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in reversed(started):
            server.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """CA, server certificate and client pkipath directories (one from a foreign CA)."""
    base = tmp_path_factory.mktemp("pki")
    ca = Authority.create(base / "ca")
    cert, key = ca.issue("server", name("Example", "localhost"), server=True)
    foreign = Authority.create(base / "foreign", cn="someone else's CA")
    return {
        "ca": ca.cacert, "cert": cert, "key": key,
        "admin": ca.client_dir("admin", name("Example", "admin")),
        "monitor": ca.client_dir("monitor", name("Example", "monitor-1")),
        "intruder": ca.client_dir("intruder", name("Evil", "admin")),
        "foreign": foreign.client_dir("admin", name("Example", "admin")),
    }


def tls_settings(pki: dict[str, Path], *, allowed: list[str] | None = None) -> TlsSettings:
    """A read-write and a read-only listener on free loopback ports."""
    dns = tuple(ALLOWED if allowed is None else allowed)
    return TlsSettings(pki["cert"], pki["key"], pki["ca"], (
        TlsListener("127.0.0.1", 0, readonly=False, allowed_dns=dns),
        TlsListener("127.0.0.1", 0, readonly=True, allowed_dns=dns),
    ))
