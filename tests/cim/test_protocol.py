"""The HTTP/CIM-XML layer: headers, errors, limits, auth, TLS, and hostile bodies."""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import random
import ssl
import time
import urllib.parse
from pathlib import Path

import pytest
import pywbem
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree

from hvmon.plugins.cim.config import tls_context

from .conftest import Running, StartCim

ENUM = ('<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0">'
        '<MESSAGE ID="1001" PROTOCOLVERSION="1.0"><SIMPLEREQ>'
        '<IMETHODCALL NAME="EnumerateInstanceNames"><LOCALNAMESPACEPATH>'
        '<NAMESPACE NAME="root"/><NAMESPACE NAME="virt"/></LOCALNAMESPACEPATH>'
        '<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="KVM_ComputerSystem"/></IPARAMVALUE>'
        "</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>")
HEADERS = {"Content-Type": 'application/xml; charset="utf-8"', "CIMOperation": "MethodCall",
           "CIMMethod": "EnumerateInstanceNames", "CIMObject": "root%2Fvirt"}


def post(running: Running, body: str | bytes, headers: dict[str, str] | None = None,
         method: str = "POST", path: str = "/cimom") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=30)
    data = body.encode() if isinstance(body, str) else body
    conn.request(method, path, data, HEADERS if headers is None else headers)
    response = conn.getresponse()
    response.read()
    return response


def post_body(running: Running, body: str | bytes) -> tuple[int, str | None, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=30)
    conn.request("POST", "/cimom", body.encode() if isinstance(body, str) else body, HEADERS)
    response = conn.getresponse()
    return response.status, response.getheader("CIMError"), response.read()


def test_a_valid_request_and_its_response_headers(cim: Running) -> None:
    status, error, body = post_body(cim, ENUM)
    assert status == 200 and error is None
    root = etree.fromstring(body)
    assert root.get("CIMVERSION") == "2.0"
    assert root.find("MESSAGE").get("ID") == "1001"
    assert root.find(".//IMETHODRESPONSE").get("NAME") == "EnumerateInstanceNames"
    response = post(cim, ENUM)
    assert response.getheader("CIMOperation") == "MethodResponse"
    assert response.getheader("Content-Type").startswith("application/xml")


def test_percent_encoded_and_mismatched_headers(cim: Running) -> None:
    assert post(cim, ENUM, {**HEADERS, "CIMObject": "root%2fvirt"}).status == 200
    wrong_ns = post(cim, ENUM, {**HEADERS, "CIMObject": "root%2Finterop"})
    assert (wrong_ns.status, wrong_ns.getheader("CIMError")) == (400, "header-mismatch")
    wrong = post(cim, ENUM, {**HEADERS, "CIMMethod": "GetInstance"})
    assert (wrong.status, wrong.getheader("CIMError")) == (400, "header-mismatch")
    missing = post(cim, ENUM, {k: v for k, v in HEADERS.items() if k != "CIMMethod"})
    assert (missing.status, missing.getheader("CIMError")) == (400, "header-mismatch")
    bad_op = post(cim, ENUM, {**HEADERS, "CIMOperation": "MethodResponse"})
    assert (bad_op.status, bad_op.getheader("CIMError")) == (400, "unsupported-operation")
    assert post(cim, ENUM, method="M-POST").status == 501
    assert post(cim, "", method="GET").status == 405
    assert post(cim, ENUM, path="/elsewhere").status == 404


def test_expect_100_continue(cim: Running) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", cim.port), timeout=10) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
        sock.sendall(f"POST /cimom HTTP/1.1\r\nHost: x\r\n{head}Expect: 100-continue\r\n"
                     f"Content-Length: {len(ENUM)}\r\n\r\n".encode())
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(ENUM.encode())
        answer = b""
        while b"</CIM>" not in answer:
            chunk = sock.recv(65536)
            assert chunk
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 OK")


def test_oversized_and_unsupported_bodies(start_cim: StartCim) -> None:
    running = start_cim(max_request_bytes=2048)
    assert post(running, ENUM + " " * 4096).status == 413
    conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=30)
    conn.putrequest("POST", "/cimom")
    for key, value in HEADERS.items():
        conn.putheader(key, value)
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders(b"0\r\n\r\n")
    assert conn.getresponse().status == 411


ATTACKS = {
    "billion laughs": ('<?xml version="1.0"?><!DOCTYPE CIM [<!ENTITY a "aaaaaaaaaa">'
                       '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                       '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><CIM>&c;</CIM>'),
    "external entity": ('<?xml version="1.0"?><!DOCTYPE CIM [<!ENTITY x SYSTEM '
                        '"file:///etc/passwd">]><CIM CIMVERSION="2.0" DTDVERSION="2.0">&x;</CIM>'),
    "utf-16 doctype": '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE CIM><CIM/>'.encode(
        "utf-16"),
    "deep nesting": "<CIM>" + "<a>" * 5000 + "</a>" * 5000 + "</CIM>",
    "empty": "",
    "not xml": "GET / HTTP/1.0",
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_hostile_bodies_get_a_cim_error(cim: Running, name: str) -> None:
    status, error, body = post_body(cim, ATTACKS[name])
    assert status == 400 and error == "request-not-well-formed", (name, body[:200])
    assert b"root:" not in body  # nothing of /etc/passwd


def test_random_and_truncated_bodies_never_crash_the_server(cim: Running) -> None:
    rng = random.Random(8)
    bodies: list[bytes] = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
                           for _ in range(40)]
    data = ENUM.encode()
    bodies += [data[:cut] for cut in range(1, len(data), 17)]
    for _ in range(30):  # valid XML, random mutations of the structure
        mutated = bytearray(data)
        for _ in range(3):
            mutated[rng.randrange(len(mutated))] = rng.choice(b"<>/=\"' aZ")
        bodies.append(bytes(mutated))
    seen: set[str] = set()
    for body in bodies:
        status, error, answer = post_body(cim, body)
        if status == 200:
            root = etree.fromstring(answer)  # a well-formed answer, maybe an <ERROR>
            assert root.tag == "CIM"
            seen.add("200")
        else:
            assert status == 400 and error, (body[:80], answer[:200])
            seen.add(error)
    assert "request-not-well-formed" in seen
    status, error, _ = post_body(cim, ENUM)  # still serving
    assert (status, error) == (200, None)


@pytest.mark.parametrize(("body", "cim_error"), [
    ('<CIM CIMVERSION="2.0" DTDVERSION="2.0"><OOPS/></CIM>', "request-not-valid"),
    ('<CIM CIMVERSION="3.0" DTDVERSION="2.0"><MESSAGE/></CIM>', "unsupported-cim-version"),
    ('<CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1" PROTOCOLVERSION="1.0">'
     "<MULTIREQ/></MESSAGE></CIM>", "multiple-requests-unsupported"),
    ('<CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE PROTOCOLVERSION="1.0"><SIMPLEREQ/>'
     "</MESSAGE></CIM>", "request-not-valid"),
])
def test_invalid_envelopes(cim: Running, body: str, cim_error: str) -> None:
    status, error, _ = post_body(cim, body)
    assert error == cim_error and status in (400, 501)


def test_bad_parameters_are_cim_errors_in_the_response(cim: Running) -> None:
    body = ENUM.replace('<CLASSNAME NAME="KVM_ComputerSystem"/>', "<BOGUS/>")
    status, _, answer = post_body(cim, body)
    assert status == 200
    error = etree.fromstring(answer).find(".//ERROR")
    assert error is not None and error.get("CODE") == "4"
    body = ENUM.replace('NAME="virt"', 'NAME="nowhere"')
    headers = {**HEADERS, "CIMObject": urllib.parse.quote("root/nowhere", safe="")}
    conn = http.client.HTTPConnection("127.0.0.1", cim.port, timeout=30)
    conn.request("POST", "/cimom", body.encode(), headers)
    error = etree.fromstring(conn.getresponse().read()).find(".//ERROR")
    assert error is not None and error.get("CODE") == "3"


def test_basic_auth(start_cim: StartCim) -> None:
    import bcrypt

    hashed = bcrypt.hashpw(b"pw-0123456", bcrypt.gensalt(rounds=4)).decode()
    running = start_cim(users={"ops": hashed})
    assert post(running, ENUM).status == 401
    with pytest.raises(pywbem.AuthError):
        running.wbem(creds=("ops", "wrong")).EnumerateInstanceNames("KVM_ComputerSystem")
    names = running.wbem(creds=("ops", "pw-0123456")).EnumerateInstanceNames(
        "KVM_ComputerSystem")
    assert [n["Name"] for n in names] == ["test"]


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


def test_https_with_a_configured_certificate(start_cim: StartCim, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets these variables override a session's verify=False (its issue #3829)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    cert, key = _self_signed(tmp_path)
    running = start_cim(tls=tls_context(cert, key))
    conn = running.wbem(no_verification=True)
    assert [n["Name"] for n in conn.EnumerateInstanceNames("KVM_ComputerSystem")] == ["test"]
    verified = running.wbem(x509=None, ca_certs=cert)
    assert verified.EnumerateInstanceNames("KVM_ComputerSystem")
    plain = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
    with pytest.raises((http.client.HTTPException, ConnectionError, ssl.SSLError, OSError)):
        plain.request("POST", "/cimom", ENUM.encode(), HEADERS)
        plain.getresponse().read()


def test_a_call_past_its_deadline_is_cim_err_failed(start_cim: StartCim) -> None:
    running = start_cim(timeout=0.2)
    dispatcher = running.server.dispatcher
    original = dispatcher.handle

    def slow(req: object, view: object = None) -> str:
        time.sleep(1.0)
        return original(req)  # type: ignore[arg-type]

    dispatcher.handle = slow  # type: ignore[method-assign]
    with pytest.raises(pywbem.CIMError) as excinfo:
        running.wbem().EnumerateInstanceNames("KVM_ComputerSystem")
    assert excinfo.value.status_code == 1 and "did not finish" in str(excinfo.value)
