"""Listen addresses: ``127.0.0.1:9177``, ``[::1]:1161``, ``localhost:8080``."""

from __future__ import annotations

import ipaddress
import re

_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                          r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*$")


def parse_address(text: object) -> tuple[str, int]:
    """``(host, port)`` of a listen address, or ValueError with a one-line reason.

    IPv6 hosts are written in brackets (``[::1]:1161``) and returned without
    them. Port 0 asks the system for a free port (the agent reports the one it
    got in its health).
    """
    if not isinstance(text, str):
        raise ValueError(f"address must be a string like '127.0.0.1:9177', got {text!r:.40}")
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"address {text!r} must be HOST:PORT (e.g. '127.0.0.1:9177', "
                         "'[::1]:1161')")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"address {text!r}: unbalanced '[' around the IPv6 host")
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"address {text!r}: '{host}' is not an IPv6 address") from None
    elif ":" in host:
        raise ValueError(f"address {text!r}: write IPv6 hosts in brackets, e.g. '[::1]:1161'")
    elif re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"address {text!r}: '{host}' is not an IPv4 address") from None
    elif not _HOSTNAME_RE.match(host):
        raise ValueError(f"address {text!r}: '{host}' is not an IP address or host name")
    if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
        raise ValueError(f"address {text!r}: port must be a number from 0 to 65535")
    return host, int(port_text)


def format_address(host: str, port: int) -> str:
    """``host:port``, with IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
