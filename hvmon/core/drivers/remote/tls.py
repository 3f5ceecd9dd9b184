"""The client end of ``DRIVER+tls://host[:port]/path``: x509 files and the TLS socket.

The client certificate, its key and the CA come from the URI query
(``pkipath=DIR``, or ``cacert=``, ``cert=``, ``key=`` one by one) or from
libvirt-style defaults: ``~/.pki/hvmon/`` for users, ``/etc/pki/`` for root
(``CA/cacert.pem``, ``hvmon/clientcert.pem``, ``hvmon/private/clientkey.pem``).
``no_verify=1`` skips checking the server's certificate and host name (the
client still presents its own): it prints one loud warning on stderr.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import ssl
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from hvmon.core.errors import NoConnect

#: libvirt's TLS port (libvirtd --listen, virtproxyd)
DEFAULT_PORT = 16514
#: URI query keys that belong to the transport, not to the served URI
QUERY_KEYS = ("pkipath", "cacert", "cert", "key", "no_verify")
CONNECT_TIMEOUT = 30.0


@dataclass(frozen=True)
class TlsClientFiles:
    """Where the client's x509 material lives."""

    cacert: Path
    cert: Path
    key: Path


def default_files(uid: int | None = None) -> TlsClientFiles:
    """libvirt's defaults: per user under ``~/.pki/hvmon``, for root under ``/etc/pki``."""
    if (os.geteuid() if uid is None else uid) == 0:
        return TlsClientFiles(Path("/etc/pki/CA/cacert.pem"),
                              Path("/etc/pki/hvmon/clientcert.pem"),
                              Path("/etc/pki/hvmon/private/clientkey.pem"))
    base = Path.home() / ".pki" / "hvmon"
    return TlsClientFiles(base / "cacert.pem", base / "clientcert.pem", base / "clientkey.pem")


def files_from_query(query: dict[str, str]) -> TlsClientFiles:
    """The files named by ``pkipath``/``cacert``/``cert``/``key``, else the defaults."""
    base = default_files()
    if query.get("pkipath"):
        pki = Path(query["pkipath"])
        base = TlsClientFiles(pki / "cacert.pem", pki / "clientcert.pem", pki / "clientkey.pem")
    return TlsClientFiles(
        Path(query["cacert"]) if query.get("cacert") else base.cacert,
        Path(query["cert"]) if query.get("cert") else base.cert,
        Path(query["key"]) if query.get("key") else base.key,
    )


def truthy(value: str | None) -> bool:
    """``1``/``true``/``yes`` (as libvirt reads ``no_verify``)."""
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def client_context(files: TlsClientFiles, *, verify: bool = True,
                   warn: TextIO | None = None, where: str = "") -> ssl.SSLContext:
    """A TLS 1.2+ client context presenting the client certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    for path in (files.cert, files.key, *((files.cacert,) if verify else ())):
        if not path.is_file():
            raise NoConnect(f"TLS: cannot read {path}: no such file (give pkipath=, cert=, "
                            "key=, cacert= in the URI)")
    try:
        ctx.load_cert_chain(files.cert, files.key)
        if verify:
            ctx.load_verify_locations(cafile=files.cacert)
    except (OSError, ssl.SSLError) as exc:
        raise NoConnect(f"TLS: cannot load the client certificate {files.cert}, key "
                        f"{files.key} or CA {files.cacert}: {_reason(exc)}") from None
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        stream = warn if warn is not None else sys.stderr
        stream.write(f"WARNING: no_verify=1: the server certificate of {where or 'the daemon'}"
                     " is NOT checked; anyone on the path can impersonate it\n")
        stream.flush()
    return ctx


def connect_tls(host: str, port: int, ctx: ssl.SSLContext) -> socket.socket:
    """A connected, handshaken TLS socket, or a one-line :class:`NoConnect`."""
    where = f"{host}:{port}"
    try:
        raw = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        raise NoConnect(f"cannot connect to daemon at {where}: "
                        f"{exc.strerror or exc}") from None
    try:
        sock = ctx.wrap_socket(raw, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        raw.close()
        raise NoConnect(f"TLS: the certificate of {where} is not trusted: "
                        f"{exc.verify_message or _reason(exc)}") from None
    except (OSError, ssl.SSLError) as exc:
        raw.close()
        raise NoConnect(f"TLS handshake with {where} failed: {_reason(exc)}") from None
    sock.settimeout(None)
    return sock


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


#: bytes buffered in each direction before the pump stops reading that side
PUMP_LIMIT = 4 << 20


class TlsPump:
    """Owns a TLS socket in one thread and relays it to a plain socket pair.

    An ``SSLSocket`` must not be read in one thread while another writes it
    (OpenSSL objects are not thread-safe), but the transport does exactly
    that: a reader thread plus callers sending. The pump is the only thread
    touching the TLS socket (non-blocking, one selector); the transport uses
    :attr:`local`, a plain socket. :attr:`error` keeps the TLS failure that
    ended the relay (e.g. the daemon refusing our certificate).
    """

    def __init__(self, tls_sock: ssl.SSLSocket, label: str) -> None:
        self.error: str | None = None
        self._tls = tls_sock
        self.local, self._inner = socket.socketpair()
        self._tls.setblocking(False)
        self._inner.setblocking(False)
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"hvmon-tls-pump:{label}")
        self._thread.start()

    def join(self) -> None:
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        try:
            self._relay()
        except ssl.SSLError as exc:
            self.error = exc.reason or str(exc)
        except OSError as exc:
            self.error = exc.strerror or str(exc)
        finally:
            with contextlib.suppress(OSError):
                self._inner.close()
            with contextlib.suppress(OSError):
                self._tls.close()

    def _relay(self) -> None:
        to_tls, to_local = bytearray(), bytearray()
        local_eof = False
        with selectors.DefaultSelector() as selector:
            while True:
                tls_wants_write = False
                if to_tls:
                    try:
                        del to_tls[:self._tls.send(to_tls)]
                    except ssl.SSLWantWriteError:
                        tls_wants_write = True
                    except ssl.SSLWantReadError:
                        pass
                if to_local:
                    with contextlib.suppress(BlockingIOError):
                        del to_local[:self._inner.send(to_local)]
                while len(to_local) < PUMP_LIMIT:
                    try:
                        data = self._tls.recv(65536)
                    except ssl.SSLWantReadError:
                        break
                    except ssl.SSLWantWriteError:
                        tls_wants_write = True
                        break
                    if not data:  # the daemon closed the connection
                        with contextlib.suppress(OSError):
                            self._inner.sendall(bytes(to_local))
                        return
                    to_local += data
                if not local_eof and len(to_tls) < PUMP_LIMIT:
                    try:
                        data = self._inner.recv(65536)
                    except BlockingIOError:
                        data = None
                    if data == b"":
                        local_eof = True
                    elif data:
                        to_tls += data
                        continue
                if local_eof and not to_tls:
                    with contextlib.suppress(OSError, ValueError):
                        self._tls.unwrap()
                    return
                self._wait(selector, len(to_local) < PUMP_LIMIT, tls_wants_write or bool(to_tls),
                           bool(to_local), not local_eof and len(to_tls) < PUMP_LIMIT)

    def _wait(self, selector: selectors.BaseSelector, tls_read: bool, tls_write: bool,
              local_write: bool, local_read: bool) -> None:
        tls_events = (selectors.EVENT_READ if tls_read else 0) | (
            selectors.EVENT_WRITE if tls_write else 0)
        local_events = (selectors.EVENT_READ if local_read else 0) | (
            selectors.EVENT_WRITE if local_write else 0)
        _register(selector, self._tls, tls_events)
        _register(selector, self._inner, local_events)
        selector.select()


def _register(selector: selectors.BaseSelector, sock: socket.socket, events: int) -> None:
    try:
        key = selector.get_key(sock)
    except KeyError:
        key = None
    if not events:
        if key is not None:
            selector.unregister(sock)
    elif key is None:
        selector.register(sock, events)
    elif key.events != events:
        selector.modify(sock, events)
