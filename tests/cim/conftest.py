"""Fixtures for the CIM agent tests: a WBEM server on its own loop thread, real clients.

The server runs on a fresh ``test:///default`` connection per test (read-write
unless asked), on a free loopback port. Every process a test starts is stopped
by PID in a finaliser. A missing tool skips its test, except in CI
(``CI=true``) where it fails.
"""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from loopthread import LoopThread
from toolcheck import need, need_tool

import hvmon
from hvmon.core.api import Connection
from hvmon.core.snapshot import SnapshotCache
from hvmon.plugins.cim.server import CimServer

REPO_ROOT = Path(__file__).resolve().parents[2]
#: pywbemtools pins Click < 8.2, which import-linter cannot use: it lives in its own venv
PYWBEMCLI_VENV = REPO_ROOT / ".venv" / "tools" / "pywbemtools" / "bin" / "pywbemcli"


@dataclass
class Running:
    server: CimServer
    conn: Connection
    cache: SnapshotCache
    port: int
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def wbem(self, namespace: str = "root/virt", **kwargs: Any) -> Any:
        import pywbem

        return pywbem.WBEMConnection(self.url, default_namespace=namespace, timeout=30,
                                     **kwargs)


StartCim = Callable[..., Running]


@pytest.fixture
def start_cim(loop_thread: LoopThread) -> Iterator[StartCim]:
    """``start_cim(readonly=False, users=None, tls=None, uri=...)``: a server on a free port."""
    started: list[Running] = []

    def start(*, readonly: bool = False, uri: str = "test:///default",
              tls: ssl.SSLContext | None = None, **kwargs: Any) -> Running:
        conn = hvmon.open(uri, readonly=readonly)
        cache = SnapshotCache(conn, max_age=5)

        async def make() -> CimServer:
            server = CimServer(conn, cache.get, cache.refresh, **kwargs)
            await server.listen([("127.0.0.1", 0)], tls)
            return server

        server = loop_thread.call(make())
        running = Running(server, conn, cache, server.servers[0].port,
                          "https" if tls is not None else "http")
        started.append(running)
        return running

    try:
        yield start
    finally:
        for running in started:
            with contextlib.suppress(Exception):
                loop_thread.call(running.server.stop())
            running.cache.stop()
            running.conn.close()


@pytest.fixture
def cim(start_cim: StartCim) -> Running:
    """A read-write server on test:///default."""
    return start_cim()


def pywbemcli_path() -> str:
    """pywbemcli from the tools venv (make venv builds it) or PATH; skip/fail without it."""
    if PYWBEMCLI_VENV.exists():
        return str(PYWBEMCLI_VENV)
    found = shutil.which("pywbemcli")
    need(found is not None, "pywbemcli is not installed (pip package pywbemtools, in "
                            ".venv/tools/pywbemtools)")
    assert found is not None
    return found


def wbemcli_path() -> str:
    return need_tool("wbemcli", "Debian package sblim-wbemcli")


def run_tool(argv: list[str], timeout: float = 60.0,
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, capturing text output (no shell)."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL, cwd=cwd)
