"""TLS listener: mandatory client certificates, DN allow-list, read-only listeners."""

from __future__ import annotations

import asyncio
import io
import ssl
import warnings
from pathlib import Path

import pytest

import hvmon
from hvmon.core.drivers.remote import tls as client_tls
from hvmon.core.errors import AccessDenied, NoConnect, OperationDenied

from .conftest import ServerFactory, tls_settings


def test_allowed_dn_works_read_write(start_server: ServerFactory,
                                     pki: dict[str, Path]) -> None:
    server = start_server(tls=tls_settings(pki))
    with hvmon.open(server.tls_uri(0, pki["admin"])) as conn:
        assert conn.get_uri().startswith("test+tls://127.0.0.1:")
        dom = conn.lookup_domain_by_name("test")
        dom.suspend()
        assert dom.state()[0] == 3  # paused
        dom.resume()
        assert not conn.readonly


def test_wildcard_dn_is_allowed(start_server: ServerFactory, pki: dict[str, Path]) -> None:
    server = start_server(tls=tls_settings(pki))
    with hvmon.open(server.tls_uri(0, pki["monitor"])) as conn:
        assert [d.name for d in conn.list_all_domains()] == ["test"]


def test_dn_not_on_the_list_is_refused(start_server: ServerFactory,
                                       pki: dict[str, Path]) -> None:
    server = start_server(tls=tls_settings(pki))
    with pytest.raises(AccessDenied, match=r"DN 'O=Evil,CN=admin' is not allowed"):
        hvmon.open(server.tls_uri(0, pki["intruder"]))


def test_empty_allow_list_refuses_everyone(start_server: ServerFactory,
                                           pki: dict[str, Path]) -> None:
    server = start_server(tls=tls_settings(pki, allowed=[]))
    with pytest.raises(AccessDenied):
        hvmon.open(server.tls_uri(0, pki["admin"]))


def test_no_client_certificate_is_refused(start_server: ServerFactory,
                                          pki: dict[str, Path]) -> None:
    server = start_server(tls=tls_settings(pki))
    host, port = server.addresses[0]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=pki["ca"])
    ctx.check_hostname = False
    with pytest.raises(NoConnect):
        sock = client_tls.connect_tls(host, port, ctx)
        try:  # TLS 1.3: the server's alert arrives with the first read
            sock.sendall(b"\0\0\0\x0c\x01\0\0\0\0\0\0\x01")
            assert sock.recv(64) == b""
            raise NoConnect("closed without an answer")
        except ssl.SSLError as exc:
            raise NoConnect(str(exc)) from None
        finally:
            sock.close()


def test_certificate_from_another_ca_is_refused(start_server: ServerFactory,
                                                pki: dict[str, Path]) -> None:
    server = start_server(tls=tls_settings(pki))
    uri = server.tls_uri(0, pki["foreign"], cacert=str(pki["ca"]))
    with pytest.raises(NoConnect, match="TLS"):
        hvmon.open(uri)


def test_tls_1_1_is_refused(start_server: ServerFactory, pki: dict[str, Path]) -> None:
    server = start_server(tls=tls_settings(pki))
    host, port = server.addresses[0]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=pki["ca"])
    ctx.load_cert_chain(pki["admin"] / "clientcert.pem", pki["admin"] / "clientkey.pem")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # this client really offers TLS 1.1
    with pytest.raises(NoConnect, match="handshake"):
        client_tls.connect_tls(host, port, ctx).close()


def test_read_only_listener_refuses_changes(start_server: ServerFactory,
                                            pki: dict[str, Path]) -> None:
    server = start_server(tls=tls_settings(pki))
    with hvmon.open(server.tls_uri(1, pki["admin"])) as conn:
        dom = conn.lookup_domain_by_name("test")
        assert dom.is_active()
        with pytest.raises(OperationDenied, match="read-only"):
            dom.destroy()
        assert dom.is_active()


def test_server_certificate_is_checked(start_server: ServerFactory, pki: dict[str, Path],
                                       tmp_path: Path) -> None:
    server = start_server(tls=tls_settings(pki))
    other = tmp_path / "other-ca.pem"
    other.write_bytes((pki["foreign"] / "cacert.pem").read_bytes())
    with pytest.raises(NoConnect, match="not trusted"):
        hvmon.open(server.tls_uri(0, pki["admin"], cacert=str(other)))


def test_no_verify_warns_loudly_and_connects(start_server: ServerFactory,
                                             pki: dict[str, Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    server = start_server(tls=tls_settings(pki))
    with hvmon.open(server.tls_uri(0, pki["admin"], no_verify="1"),
                    readonly=True) as conn:
        assert conn.lookup_domain_by_name("test").is_active()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "WARNING: no_verify=1" in err and "NOT checked" in err


def test_missing_client_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(NoConnect, match="cannot read .*clientcert.pem"):
        hvmon.open(f"test+tls://127.0.0.1:1/default?pkipath={tmp_path}")


def test_default_files_follow_libvirt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    user = client_tls.default_files(uid=1000)
    assert user.cert == tmp_path / ".pki/hvmon/clientcert.pem"
    root = client_tls.default_files(uid=0)
    assert root.cacert == Path("/etc/pki/CA/cacert.pem")
    assert root.key == Path("/etc/pki/hvmon/private/clientkey.pem")


def test_tls_uri_serves_the_plain_driver_uri() -> None:
    from hvmon.core.drivers import TlsTarget, remote_target
    from hvmon.core.uri import parse_uri

    served, target = remote_target(parse_uri(
        "qemu+tls://host.example/system?pkipath=/p&no_verify=1"), readonly=False) or ("", "")
    assert served == "qemu:///system"
    assert isinstance(target, TlsTarget)
    assert (target.host, target.port, target.verify) == ("host.example", 16514, False)
    assert target.files.cert == Path("/p/clientcert.pem")


def test_warning_goes_to_the_given_stream(pki: dict[str, Path]) -> None:
    stream = io.StringIO()
    files = client_tls.files_from_query({"pkipath": str(pki["admin"])})
    client_tls.client_context(files, verify=False, warn=stream, where="h:1")
    assert stream.getvalue().startswith("WARNING: no_verify=1: the server certificate of h:1")


def test_server_context_demands_tls_1_2_and_a_client_certificate(
        pki: dict[str, Path]) -> None:
    from hvmon.daemon.rpc.tls import server_context

    ctx = server_context(tls_settings(pki))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED


def test_refused_handshakes_are_logged(start_server: ServerFactory, pki: dict[str, Path],
                                       caplog: pytest.LogCaptureFixture) -> None:
    server = start_server(tls=tls_settings(pki))
    uri = server.tls_uri(0, pki["foreign"], cacert=str(pki["ca"]))
    with caplog.at_level("WARNING", logger="hvmon.daemon.rpc.server"), \
            pytest.raises(NoConnect):
        hvmon.open(uri)
    server.run(asyncio.sleep(0.05))
    assert any("TLS handshake with 127.0.0.1" in r.getMessage() for r in caplog.records)
