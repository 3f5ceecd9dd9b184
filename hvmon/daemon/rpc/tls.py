"""The daemon's TLS listeners: x509 server context, client DNs and their allow-list.

Client certificates are mandatory (``CERT_REQUIRED`` against the configured
CA), TLS 1.2 is the lowest version offered. A verified client whose subject DN
matches none of the listener's ``allowed_dns`` patterns (shell wildcards, as
libvirt's ``tls_allowed_dn_list``) is refused at its ``open`` call.
"""

from __future__ import annotations

import fnmatch
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hvmon.core.errors import NoConnect

DEFAULT_PORT = 16514

#: short names of the attributes a DN is written with (libvirt/GnuTLS order: as in the cert)
_SHORT = {
    "countryName": "C", "stateOrProvinceName": "ST", "localityName": "L",
    "organizationName": "O", "organizationalUnitName": "OU", "commonName": "CN",
    "emailAddress": "emailAddress", "domainComponent": "DC", "userId": "UID",
    "serialNumber": "serialNumber", "streetAddress": "street",
}


@dataclass(frozen=True)
class TlsListener:
    """One TLS listening address and what it allows."""

    host: str
    port: int = DEFAULT_PORT
    readonly: bool = False
    allowed_dns: tuple[str, ...] = ()


@dataclass(frozen=True)
class TlsSettings:
    """The ``[tls]`` table, validated."""

    cert: Path
    key: Path
    ca: Path
    listeners: tuple[TlsListener, ...] = field(default_factory=tuple)


def server_context(settings: TlsSettings) -> ssl.SSLContext:
    """A TLS 1.2+ server context that demands a client certificate signed by the CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_cert_chain(settings.cert, settings.key)
        ctx.load_verify_locations(cafile=settings.ca)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise NoConnect(f"TLS: cannot load the server certificate {settings.cert}, key "
                        f"{settings.key} or CA {settings.ca}: {reason}") from None
    return ctx


def subject_dn(peercert: Mapping[str, Any] | None) -> str | None:
    """The subject of a verified peer certificate as ``C=..,O=..,CN=..`` (cert order)."""
    if not peercert:
        return None
    parts = []
    for rdn in peercert.get("subject", ()):
        for name, value in rdn:
            parts.append(f"{_SHORT.get(name, name)}={value}")
    return ",".join(parts)


def dn_allowed(dn: str, patterns: Iterable[str]) -> bool:
    """Whether ``dn`` matches a pattern (``*``/``?`` wildcards, case-sensitive)."""
    return any(fnmatch.fnmatchcase(dn, pattern) for pattern in patterns)


# --- the [tls] table ---------------------------------------------------------------
TLS_DEFAULTS: Mapping[str, Any] = {
    "enabled": False,
    "listen": ["0.0.0.0"],  # noqa: S104 - libvirt listens on every address; off by default
    "port": DEFAULT_PORT,
    "cert": "/etc/pki/hvmon/servercert.pem",
    "key": "/etc/pki/hvmon/private/serverkey.pem",
    "ca": "/etc/pki/CA/cacert.pem",
    "allowed_dns": [],
    "readonly": False,
    "listeners": [],
}

TLS_KEYS: Mapping[str, str] = {
    "enabled": "serve the remote protocol over TLS (off by default)",
    "listen": "host addresses of the main listener",
    "port": "its TCP port (default 16514)",
    "cert": "server certificate (PEM)",
    "key": "its private key (PEM)",
    "ca": "CA certificate(s) that sign client certificates (PEM)",
    "allowed_dns": "client certificate DNs allowed in, shell wildcards (empty: none)",
    "readonly": "force every client of the main listener read-only",
    "listeners": "more listeners: tables with listen, port, readonly, allowed_dns",
}

_LISTENER_KEYS = ("listen", "port", "readonly", "allowed_dns")


def validate_tls(table: Mapping[str, Any]) -> list[str]:
    """Every problem of a ``[tls]`` table (empty when it is fine)."""
    try:
        tls_settings(table)
    except ValueError as exc:
        return str(exc).split("\n")
    return []


def tls_settings(table: Mapping[str, Any]) -> TlsSettings | None:
    """The settings of an enabled ``[tls]`` table, None when off; ValueError lists problems."""
    problems: list[str] = []
    main = _listeners(table, table, "", problems)
    extra = table.get("listeners", ())
    listeners = list(main)
    for index, item in enumerate(extra):
        where = f"listeners[{index}]."
        if not isinstance(item, Mapping):
            problems.append(f"listeners[{index}]: must be a table")
            continue
        for key in item:
            if key not in _LISTENER_KEYS:
                problems.append(f"{where}{key}: unknown key (known: {', '.join(_LISTENER_KEYS)})")
        merged = {**{k: table.get(k) for k in _LISTENER_KEYS}, **item}
        listeners += _listeners(merged, table, where, problems)
    paths = {}
    for key in ("cert", "key", "ca"):
        value = table.get(key)
        if not isinstance(value, str) or not value or not Path(value).is_absolute():
            problems.append(f"{key}: must be an absolute file path, got {value!r:.60}")
        else:
            paths[key] = Path(value)
    ports = [(lst.host, lst.port) for lst in listeners]
    if len(set(ports)) != len(ports):
        problems.append("listeners: two listeners share an address and port")
    if problems:
        raise ValueError("\n".join(problems))
    if not table.get("enabled"):
        return None
    return TlsSettings(paths["cert"], paths["key"], paths["ca"], tuple(listeners))


def _listeners(item: Mapping[str, Any], table: Mapping[str, Any], where: str,
               problems: list[str]) -> list[TlsListener]:
    hosts = item.get("listen", table.get("listen"))
    hosts = [hosts] if isinstance(hosts, str) else hosts
    port, readonly, dns = item.get("port"), item.get("readonly"), item.get("allowed_dns")
    ok = True
    if not isinstance(hosts, Sequence) or not hosts or not all(
            isinstance(h, str) and h for h in hosts):
        problems.append(f"{where}listen: must be a host address or a list of them")
        ok = False
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        problems.append(f"{where}port: must be a TCP port from 0 to 65535, got {port!r:.20}")
        ok = False
    if not isinstance(readonly, bool):
        problems.append(f"{where}readonly: must be true or false, got {readonly!r:.20}")
        ok = False
    if not isinstance(dns, Sequence) or isinstance(dns, str) or not all(
            isinstance(d, str) and d for d in dns):
        problems.append(f"{where}allowed_dns: must be a list of DN patterns")
        ok = False
    if not ok:
        return []
    return [TlsListener(host, port, readonly, tuple(dns)) for host in hosts]
