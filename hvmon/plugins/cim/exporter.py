"""Delivers one ExportIndication request to a CIM-XML listener (DSP0200 ch. 5.4)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import urllib.parse
from dataclasses import dataclass

DEFAULT_PORTS = {"http": 5988, "https": 5989}


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    path: str

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def parse_destination(text: str) -> Destination:
    """``http(s)://host[:port][/path]``, or ValueError with a one-line reason."""
    if "://" not in text:
        text = "http://" + text  # DSP1054 allows a bare host:port
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid listener URL {text!r:.80}: {exc}") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError(f"listener URL {text!r:.80}: scheme must be http or https")
    if not parts.hostname:
        raise ValueError(f"listener URL {text!r:.80} has no host")
    return Destination(parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme],
                       parts.path or "/")


async def export(dest: Destination, body: bytes, *, timeout: float,
                 tls: ssl.SSLContext | None = None) -> int:
    """POST ``body`` to ``dest``; the HTTP status (raises OSError/TimeoutError on failure)."""
    context = (tls or ssl.create_default_context()) if dest.scheme == "https" else None
    host_header = f"[{dest.host}]" if ":" in dest.host else dest.host
    head = (f"POST {dest.path} HTTP/1.1\r\nHost: {host_header}:{dest.port}\r\n"
            'Content-Type: application/xml; charset="utf-8"\r\n'
            "CIMExport: MethodRequest\r\nCIMExportMethod: ExportIndication\r\n"
            "CIMProtocolVersion: 1.0\r\nAccept: application/xml\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(dest.host, dest.port, ssl=context)
        try:
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
            status_line = await reader.readline()
            parts = status_line.decode("latin-1").split(" ", 2)
            if len(parts) < 2 or not parts[1].isdigit():
                raise OSError(f"listener {dest.url} sent a malformed status line")
            return int(parts[1])
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
