"""Fixtures for the Prometheus exporter tests: snapshot sources, servers and real tools.

The exporter is wired directly (``Scraper`` + ``MetricsServer`` on a free
loopback port), without the daemon. External programs (promtool, prometheus,
Debian's libvirt exporter, openssl) are started with argv lists and stopped by
PID in finalisers. A missing program skips its test, except in CI (``CI=true``)
where it fails.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from toolcheck import need_tool, stop_process

import hvmon
from hvmon.core.snapshot.cache import SnapshotCache
from hvmon.plugins.prometheus.httpserver import MetricsServer
from hvmon.plugins.prometheus.scrape import Scraper
from hvmon.plugins.prometheus.webconfig import WebConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"
GIB = 1 << 30
T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Response:
    """An HTTP answer, whatever its status."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def fetch(url: str, *, headers: dict[str, str] | None = None,
          context: ssl.SSLContext | None = None, timeout: float = 10.0) -> Response:
    """GET ``url``; 4xx/5xx answers are returned, not raised."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", target or "/", headers=headers or {})
        answer = conn.getresponse()
        body = answer.read()
        return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, body)
    finally:
        conn.close()


def try_fetch(url: str, **kwargs: Any) -> Response | None:
    """Like :func:`fetch`, but None while nothing answers (a server still starting)."""
    try:
        return fetch(url, timeout=2.0, **kwargs)
    except OSError:
        return None


def start_process(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` with stdout and stderr in ``log``."""
    with log.open("wb") as sink:
        return subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


def run_tool(argv: list[str], *, stdin: bytes | None = None, cwd: Path | None = None,
             timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, capturing text output."""
    return subprocess.run(argv, input=stdin.decode() if stdin is not None else None,
                          capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          check=False)


def family_names(body: bytes | str) -> set[str]:
    """Names in the ``# TYPE`` lines of an exposition (as exposed: ``..._total``)."""
    text = body.decode() if isinstance(body, bytes) else body
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost: (cert, key) paths.

    Made with the ``cryptography`` package when the venv has it, else with
    ``openssl req -x509`` (argv, no shell).
    """
    cert, key = directory / "server.crt", directory / "server.key"
    try:
        _cert_with_cryptography(cert, key)
    except ImportError:
        openssl = need_tool("openssl")
        result = run_tool([
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        assert result.returncode == 0, result.stderr
    return cert, key


def _cert_with_cryptography(cert: Path, key: Path) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(private.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))


# --- fixtures -------------------------------------------------------------------

@pytest.fixture
def cache(conn: hvmon.Connection) -> Iterator[SnapshotCache]:
    """A snapshot cache over ``test:///default`` with a short per-domain deadline."""
    snapshots = SnapshotCache(conn, deadline=0.3)
    try:
        yield snapshots
    finally:
        snapshots.stop()


ServeFactory = Callable[..., MetricsServer]


@pytest.fixture
def serve() -> Iterator[ServeFactory]:
    """``serve(scraper, health=..., web=...)`` starts a MetricsServer on a free port."""
    servers: list[MetricsServer] = []

    def start(scraper: Scraper, *, health: Callable[[], tuple[bool, str]] | None = None,
              web: WebConfig | None = None) -> MetricsServer:
        server = MetricsServer("127.0.0.1", 0, scrape=scraper.scrape,
                               health=health or (lambda: (True, "ok")), web=web)
        server.start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def exporter(cache: SnapshotCache, serve: ServeFactory) -> MetricsServer:
    """The exporter over ``test:///default`` with every group on, hvmon names only."""
    return serve(Scraper(cache.get))


@pytest.fixture
def processes() -> Iterator[Callable[[list[str], Path], subprocess.Popen[bytes]]]:
    """``spawn(argv, log)`` starts a program; each is stopped by PID at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        proc = start_process(argv, log)
        started.append(proc)
        return proc

    try:
        yield spawn
    finally:
        for proc in reversed(started):
            with contextlib.suppress(OSError):
                stop_process(proc)
