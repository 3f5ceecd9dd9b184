"""Connection URIs: ``driver[+transport]://[host]/path[?query]``."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from hvmon.core.errors import NoConnect


@dataclass(frozen=True)
class ConnectURI:
    """A parsed connection URI."""

    raw: str
    driver: str
    transport: str | None
    host: str | None
    port: int | None
    path: str
    query: dict[str, str] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        """True when the driver can run in this process (no transport, no host)."""
        return self.transport is None and not self.host


def parse_uri(uri: str) -> ConnectURI:
    """Parse ``uri`` or raise :class:`NoConnect` with a one-line reason."""
    if not isinstance(uri, str) or "://" not in uri:
        raise NoConnect(f"invalid connection URI '{uri}': expected driver:///path")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise NoConnect(f"invalid connection URI '{uri}': {exc}") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise NoConnect(f"invalid connection URI '{uri}': no driver name")
    driver, _, transport = scheme.partition("+")
    try:
        query = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False))
    except ValueError as exc:
        raise NoConnect(f"invalid connection URI '{uri}': {exc}") from None
    return ConnectURI(
        raw=uri,
        driver=driver,
        transport=transport or None,
        host=parts.hostname or None,
        port=port,
        path=parts.path or "/",
        query=query,
    )
