"""The ``[agents.amqp]`` options, their validation and the broker settings built from them.

Credentials live in their own keys (``username``, ``password`` or
``password_file``), never in the URL, so the URL can be logged as it is.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: the agent's own keys in ``[agents.amqp]`` and their defaults
OPTIONS: Mapping[str, Any] = {
    "url": "amqp://127.0.0.1:5672/",
    "username": "guest",
    "password": "guest",
    "password_file": "",  # read at start; wins over ``password``
    "tls_ca_file": "",
    "tls_cert_file": "",
    "tls_key_file": "",
    "heartbeat": 30,  # AMQP connection heartbeat, seconds (0: off)
    "reconnect_interval": 2.0,
    "prefix": "hvmon",  # exchange name; queues are <prefix>.agent.<host>
    "host": "",  # the host id; "": the host's name
    "heartbeat_interval": 10.0,
    "data_interval": 30.0,
    "snapshot_max_age": None,  # None: half the data interval
    "prefetch": 8,
    "method_timeout": 60.0,
    "max_request_bytes": 1_048_576,
    "allowed_users": [],  # AMQP user ids allowed to call mutating methods
    "dedup_size": 10_000,  # request ids remembered against redelivery
    # how other hosts' daemons reach this one to migrate a domain here (heartbeats carry it,
    # so ``hvmon console migrate --to HOST`` works); "": not advertised
    "migration_uri": "",
}

#: a host id, an exchange prefix: letters, digits, ``.``, ``_`` and ``-``
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
SCHEMES = ("amqp", "amqps")


def host_token(host: str) -> str:
    """The host id as it appears in routing keys and queue names: ``.`` becomes ``_``."""
    return host.replace(".", "_")


@dataclass(frozen=True)
class Names:
    """Exchange, queue and routing-key names under one prefix."""

    prefix: str = "hvmon"

    @property
    def exchange(self) -> str:
        return self.prefix

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.prefix}.dlx"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}.dead-letter"

    def agent_queue(self, host: str) -> str:
        return f"{self.prefix}.agent.{host_token(host)}"

    @staticmethod
    def heartbeat_key(host: str) -> str:
        return f"agent.ind.heartbeat.{host_token(host)}"

    @staticmethod
    def data_key(host: str, cls: str) -> str:
        return f"agent.ind.data.{host_token(host)}.{cls}"

    @staticmethod
    def event_key(host: str, cls: str) -> str:
        return f"agent.ind.event.{host_token(host)}.{cls}"

    #: consoles ask every live agent for an immediate heartbeat with this key
    LOCATE_KEY = "console.ind.locate"


@dataclass(frozen=True)
class BrokerSettings:
    """How to reach the broker; ``password`` is never part of ``repr``."""

    url: str = OPTIONS["url"]
    username: str = "guest"
    password: str = field(default="guest", repr=False)
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    heartbeat: int = 30
    reconnect_interval: float = 2.0

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "amqps"

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context for ``amqps://`` URLs (CA, optional client certificate)."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.tls_ca_file or None)
        if self.tls_cert_file:
            context.load_cert_chain(self.tls_cert_file, self.tls_key_file or None)
        return context


def url_problems(url: str, where: str = "url") -> list[str]:
    """Problems of a broker URL: scheme, host, and no credentials inside it."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        return [f"{where}: not a valid URL ({exc})"]
    problems = []
    if parts.scheme not in SCHEMES:
        problems.append(f"{where}: must start with amqp:// or amqps://, got {url!r:.60}")
    elif not parts.hostname:
        problems.append(f"{where}: names no broker host")
    if parts.username or parts.password:
        problems.append(f"{where}: put credentials in username/password(_file), not the URL")
    return problems


def _number(options: Mapping[str, Any], key: str, low: float, high: float) -> list[str]:
    value = options[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        return [f"{key}: must be a number from {low:g} to {high:g}, got {value!r:.40}"]
    return []


def validate_options(options: Mapping[str, Any]) -> Sequence[str]:
    """One problem per bad option of ``[agents.amqp]`` (secrets are never echoed)."""
    problems = url_problems(options["url"])
    for key in ("tls_ca_file", "tls_cert_file", "tls_key_file", "password_file"):
        if options[key] and not Path(options[key]).is_file():
            problems.append(f"{key}: no such file: {options[key]}")
    if not options["username"]:
        problems.append("username: must not be empty")
    for key in ("prefix", "host"):
        if (options[key] or key == "prefix") and not NAME_RE.match(options[key]):
            problems.append(f"{key}: use letters, digits, '.', '_' and '-', "
                            f"got {options[key]!r:.40}")
    problems += _number(options, "heartbeat", 0, 3600)
    problems += _number(options, "reconnect_interval", 0.05, 600)
    problems += _number(options, "heartbeat_interval", 0.05, 3600)
    problems += _number(options, "data_interval", 0.05, 86400)
    problems += _number(options, "method_timeout", 0.01, 3600)
    problems += _number(options, "prefetch", 1, 1000)
    problems += _number(options, "max_request_bytes", 256, 128 * 1024 * 1024)
    problems += _number(options, "dedup_size", 1, 10_000_000)
    if options["snapshot_max_age"] is not None:
        problems += _number(options, "snapshot_max_age", 0, 86400)
    if options["migration_uri"]:
        problems += _uri_problems(options["migration_uri"])
    users = options["allowed_users"]
    if not all(isinstance(u, str) and u for u in users):
        problems.append("allowed_users: must be a list of non-empty user names")
    return problems


def _uri_problems(uri: Any) -> list[str]:
    from hvmon.core.errors import HvmonError
    from hvmon.core.uri import parse_uri

    if not isinstance(uri, str):
        return [f"migration_uri: must be a connection URI, got {uri!r:.40}"]
    try:
        parse_uri(uri)
    except HvmonError as exc:
        return [f"migration_uri: {exc}"]
    return []


def broker_settings(options: Mapping[str, Any]) -> BrokerSettings:
    """The broker part of the options; reads ``password_file`` (OSError when unreadable)."""
    password = options["password"]
    if options["password_file"]:
        password = Path(options["password_file"]).read_text().strip()
    return BrokerSettings(options["url"], options["username"], password,
                          options["tls_ca_file"], options["tls_cert_file"],
                          options["tls_key_file"], int(options["heartbeat"]),
                          float(options["reconnect_interval"]))
