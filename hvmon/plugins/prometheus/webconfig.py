"""TLS and basic auth from a web config file in the Prometheus exporter-toolkit format.

The same YAML file node_exporter takes with ``--web.config.file``::

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_ca_file: ca.crt              # optional
      client_auth_type: RequireAndVerifyClientCert   # optional
      min_version: TLS12                  # TLS12 (default) or TLS13
    basic_auth_users:
      alice: $2y$10$...                   # bcrypt hashes only
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from hvmon.core.errors import InvalidArgument

CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version",
            "max_version", "cipher_suites", "prefer_server_cipher_suites", "curve_preferences"}


@dataclass
class WebConfig:
    """A loaded web config: an SSL context (or None) and bcrypt-hashed users."""

    tls: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)
    _verified: set[bytes] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def auth_required(self) -> bool:
        return bool(self.users)

    def check_authorization(self, header: str | None) -> bool:
        """True if ``header`` (an ``Authorization`` value) names a user with the right password.

        bcrypt is slow on purpose; like exporter-toolkit, a successful check is
        remembered (as a digest of user, hash and password) so scrapes stay fast.
        """
        if not self.users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if hashed is None:
            return False
        key = hashlib.sha256(b"\0".join((user.encode(), hashed, password.encode()))).digest()
        with self._lock:
            if key in self._verified:
                return True
        try:
            ok = bcrypt.checkpw(password.encode(), hashed)
        except ValueError:
            return False
        if ok:
            with self._lock:
                self._verified.add(key)
        return ok


def load_web_config(path: str | Path) -> WebConfig:
    """Read and check ``path``; every problem is reported in one :class:`InvalidArgument`."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise InvalidArgument(f"web config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0]
        raise InvalidArgument(f"web config {path}: invalid YAML: {reason}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"web config {path}: expected a mapping at the top level")
    problems: list[str] = []
    unknown = set(data) - {"tls_server_config", "basic_auth_users", "http_server_config"}
    problems += [f"unknown key '{key}'" for key in sorted(unknown)]
    users = _users(data.get("basic_auth_users") or {}, problems)
    tls = None
    if data.get("tls_server_config"):
        tls = _tls_context(data["tls_server_config"], path.parent, problems)
    if problems:
        raise InvalidArgument(f"web config {path}: " + "; ".join(problems))
    return WebConfig(tls=tls, users=users)


def _users(section: Any, problems: list[str]) -> dict[str, bytes]:
    if not isinstance(section, dict):
        problems.append("basic_auth_users must be a mapping of user to bcrypt hash")
        return {}
    users = {}
    for user, hashed in section.items():
        text = str(hashed)
        if not text.startswith(("$2a$", "$2b$", "$2y$")):
            problems.append(f"basic_auth_users.{user}: not a bcrypt hash")
            continue
        users[str(user)] = text.encode()
    return users


def _tls_context(section: Any, base: Path, problems: list[str]) -> ssl.SSLContext | None:
    if not isinstance(section, dict):
        problems.append("tls_server_config must be a mapping")
        return None
    unknown = sorted(set(section) - TLS_KEYS)
    problems += [f"tls_server_config: unknown key '{key}'" for key in unknown]
    cert, key = section.get("cert_file"), section.get("key_file")
    if not cert or not key:
        problems.append("tls_server_config needs cert_file and key_file")
        return None
    auth = section.get("client_auth_type", "NoClientCert")
    if auth not in CLIENT_AUTH:
        problems.append(f"tls_server_config.client_auth_type: unknown value '{auth}'")
        return None
    minimum = section.get("min_version", "TLS12")
    if minimum not in TLS_VERSIONS:
        problems.append(f"tls_server_config.min_version: '{minimum}' (use TLS12 or TLS13)")
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS[minimum]
    try:
        context.load_cert_chain(base / cert, base / key)
        if section.get("client_ca_file"):
            context.load_verify_locations(base / section["client_ca_file"])
    except (OSError, ssl.SSLError) as exc:
        problems.append(f"tls_server_config: cannot load certificates: {exc}")
        return None
    context.verify_mode = CLIENT_AUTH[auth]
    if context.verify_mode != ssl.CERT_NONE and not section.get("client_ca_file"):
        problems.append(f"tls_server_config: client_auth_type {auth} needs client_ca_file")
        return None
    return context
