"""TLS and basic auth from an exporter-toolkit web config file, and its validation."""

from __future__ import annotations

import base64
import http.client
import logging
import ssl
from pathlib import Path

import bcrypt
import pytest
from toolcheck import wait_for

from hvmon.core.errors import InvalidArgument
from hvmon.core.snapshot.cache import SnapshotCache
from hvmon.plugins.prometheus.httpserver import MetricsServer
from hvmon.plugins.prometheus.scrape import Scraper
from hvmon.plugins.prometheus.webconfig import load_web_config

from .conftest import Response, ServeFactory, fetch, make_cert

PASSWORD = "s3cret pass"  # noqa: S105 - a test credential


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="module")
def cert_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One self-signed certificate for the module (making it is the slow part)."""
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_server(tmp_path: Path, cert_pair: tuple[Path, Path], cache: SnapshotCache,
               serve: ServeFactory) -> tuple[MetricsServer, ssl.SSLContext]:
    cert, key = cert_pair
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    config = tmp_path / "web.yml"
    config.write_text(
        "tls_server_config:\n"
        f"  cert_file: {cert}\n"
        f"  key_file: {key}\n"
        "  min_version: TLS12\n"
        "basic_auth_users:\n"
        f"  alice: '{hashed}'\n"
    )
    web = load_web_config(config)
    assert web.tls is not None and web.auth_required
    server = serve(Scraper(cache.get), web=web)
    return server, ssl.create_default_context(cafile=str(cert))


def test_tls_and_basic_auth(tls_server: tuple[MetricsServer, ssl.SSLContext]) -> None:
    server, trusting = tls_server
    assert server.url.startswith("https://127.0.0.1:")

    def get(headers: dict[str, str] | None = None, path: str = "/metrics") -> Response:
        return fetch(server.url.replace("/metrics", path), headers=headers, context=trusting)

    nobody = get()
    assert nobody.status == 401
    assert nobody.headers["www-authenticate"].startswith("Basic ")
    assert b"hvmon_" not in nobody.body
    wrong = get(basic("alice", "wrong"))
    assert wrong.status == 401 and "www-authenticate" in wrong.headers
    assert get(basic("mallory", PASSWORD)).status == 401
    assert get({"Authorization": "Basic !!!not-base64"}).status == 401
    right = get(basic("alice", PASSWORD))
    assert right.status == 200
    assert "hvmon_up 1\n" in right.text
    assert get(basic("alice", PASSWORD)).status == 200  # the remembered check
    assert get(basic("alice", PASSWORD), "/healthz").status == 200
    assert get(None, "/healthz").status == 401  # every path is behind auth


def test_tls_refuses_untrusting_and_plain_clients(
        tls_server: tuple[MetricsServer, ssl.SSLContext], capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    server, trusting = tls_server
    caplog.set_level(logging.INFO, logger="hvmon.agent.prometheus")
    with pytest.raises(ssl.SSLCertVerificationError):
        fetch(server.url, context=ssl.create_default_context())
    plain = server.url.replace("https://", "http://")
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        fetch(plain, timeout=5)
    # the server shrugs them off in one log line each, no traceback, and keeps serving
    assert fetch(server.url, headers=basic("alice", PASSWORD), context=trusting).status == 200

    def two_failures() -> list[logging.LogRecord] | None:  # logged by the handler threads
        failed = [r for r in caplog.records
                  if "connection from 127.0.0.1 failed" in r.getMessage()]
        return failed if len(failed) == 2 else None

    failed = wait_for(two_failures, 3, "two failed connections logged")
    assert "Traceback" not in capfd.readouterr().err
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in failed)


def test_auth_without_tls(tmp_path: Path, cache: SnapshotCache, serve: ServeFactory) -> None:
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  bob: '{hashed}'\n")
    server = serve(Scraper(cache.get), web=load_web_config(config))
    assert server.url.startswith("http://")
    assert fetch(server.url).status == 401
    assert fetch(server.url, headers=basic("bob", "pw")).status == 200


def test_bad_web_config_lists_every_problem(tmp_path: Path) -> None:
    config = tmp_path / "web.yml"
    config.write_text(
        "tls_server_config:\n"
        "  cert_file: missing.crt\n"
        "  key_file: missing.key\n"
        "basic_auth_users:\n"
        "  bob: plain-text-password\n"
        "tsl_server_config: {}\n"
    )
    with pytest.raises(InvalidArgument) as caught:
        load_web_config(config)
    message = str(caught.value)
    assert "\n" not in message
    assert "unknown key 'tsl_server_config'" in message
    assert "basic_auth_users.bob: not a bcrypt hash" in message
    assert "cannot load certificates" in message
    assert "plain-text-password" not in message  # never echo a secret


@pytest.mark.parametrize(("text", "expected"), [
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_ver: TLS13\n",
     "tls_server_config: unknown key 'min_ver'"),
    ("tls_server_config:\n  cert_file: a\n", "needs cert_file and key_file"),
    ("basic_auth_users: [alice]\n", "basic_auth_users must be a mapping"),
    ("- just a list\n", "expected a mapping at the top level"),
    ("basic_auth_users: {alice: [\n", "invalid YAML"),
])
def test_bad_web_config_one_line(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "web.yml"
    config.write_text(text)
    with pytest.raises(InvalidArgument, match=expected) as caught:
        load_web_config(config)
    assert "\n" not in str(caught.value)


def test_bad_tls_values(tmp_path: Path, cert_pair: tuple[Path, Path]) -> None:
    cert, key = cert_pair
    config = tmp_path / "web.yml"
    config.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
                      "  min_version: TLS10\n")
    with pytest.raises(InvalidArgument, match="min_version: 'TLS10'"):
        load_web_config(config)
    config.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
                      "  client_auth_type: RequireAndVerifyClientCert\n")
    with pytest.raises(InvalidArgument, match="needs client_ca_file"):
        load_web_config(config)


def test_missing_web_config_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="No such file") as caught:
        load_web_config(tmp_path / "absent.yml")
    assert "\n" not in str(caught.value)
