"""``[agents.cim]`` options: defaults and validation (one line per problem, no secrets)."""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

from hvmon.daemon.addresses import parse_address
from hvmon.plugins.cim.auth import is_bcrypt_hash

DEFAULT_LISTEN = ("127.0.0.1:5988",)
DEFAULT_HTTPS_LISTEN = ("127.0.0.1:5989",)
PREFIX_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,31}_$")

#: the agent's own keys in ``[agents.cim]`` and their defaults
OPTIONS: Mapping[str, Any] = {
    "class_prefix": "KVM_",
    "https_listen": list(DEFAULT_HTTPS_LISTEN),
    "tls_cert_file": "",
    "tls_key_file": "",
    "users": {},
    "timeout": 30.0,
    "max_request_bytes": 4 * 1024 * 1024,
    "max_subscriptions": 100,
    "indication_timeout": 5.0,
    "snapshot_max_age": None,  # None: the daemon's [daemon] snapshot_max_age
}


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server context for the certificate and key (ssl.SSLError/OSError when unusable)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def validate_options(options: Mapping[str, Any]) -> Sequence[str]:
    """One problem per bad option of ``[agents.cim]``."""
    problems: list[str] = []
    prefix = options["class_prefix"]
    if not PREFIX_RE.match(prefix):
        problems.append(f"class_prefix: must be letters and digits ending in '_' (like KVM_), "
                        f"got {prefix!r:.40}")
    for address in options["https_listen"]:
        try:
            parse_address(address)
        except ValueError as exc:
            problems.append(f"https_listen: {exc}")
    cert, key = options["tls_cert_file"], options["tls_key_file"]
    if bool(cert) != bool(key):
        problems.append("tls_cert_file and tls_key_file: give both or neither")
    elif cert:
        try:
            tls_context(cert, key)
        except (OSError, ssl.SSLError) as exc:
            problems.append(f"tls_cert_file: cannot load the certificate and key: "
                            f"{getattr(exc, 'strerror', None) or exc}")
    for user, hashed in options["users"].items():
        if not is_bcrypt_hash(hashed):
            problems.append(f"users.{user}: must be a bcrypt hash ($2b$...), not a password")
    for name in ("timeout", "indication_timeout"):
        if options[name] <= 0:
            problems.append(f"{name}: must be > 0 seconds")
    for name in ("max_request_bytes", "max_subscriptions"):
        if options[name] < 1:
            problems.append(f"{name}: must be >= 1")
    max_age = options["snapshot_max_age"]
    if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int | float)
                                or max_age < 0):
        problems.append(f"snapshot_max_age: must be a number of seconds >= 0, got {max_age!r:.40}")
    return problems
