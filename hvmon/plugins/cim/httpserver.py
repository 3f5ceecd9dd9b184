"""A small asyncio HTTP/1.1 server for CIM-XML: keep-alive, bodies by Content-Length, TLS.

It knows HTTP only (limits, keep-alive, TCP_NODELAY, basic auth through a
callback); :mod:`hvmon.plugins.cim.service` turns requests into CIM answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100
IDLE_TIMEOUT = 60.0
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
           405: "Method Not Allowed", 411: "Length Required", 413: "Payload Too Large",
           500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable"}


@dataclass
class HttpRequest:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes = b""
    peer: str = ""

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


App = Callable[[HttpRequest], Awaitable[HttpResponse]]


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str, str, dict[str, str]] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise HttpError(400, "incomplete request head") from None
    except asyncio.LimitOverrunError:
        raise HttpError(400, "request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(400, "malformed request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, "malformed header line")
        if len(headers) >= MAX_HEADERS:
            raise HttpError(400, "too many headers")
        headers[name.lower()] = value.strip()
    return parts[0], parts[1], parts[2], headers


class HttpServer:
    """Serves ``app`` on one address (TLS when ``tls`` is given)."""

    def __init__(self, host: str, port: int, app: App, *, tls: ssl.SSLContext | None = None,
                 max_body: int = 4 * 1024 * 1024, logger: logging.Logger | None = None) -> None:
        self.host, self.port = host, port
        self.app = app
        self.tls = tls
        self.max_body = max_body
        self.log = logger or logging.getLogger(__name__)
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                  ssl=self.tls, limit=MAX_HEADER_BYTES)
        sockname = self._server.sockets[0].getsockname()
        self.port = sockname[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._conns):
                task.cancel()
            for task in list(self._conns):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = writer.get_extra_info("peername")
        peer_text = str(peer[0]) if isinstance(peer, tuple) else ""
        try:
            while True:
                keep = await self._one(reader, writer, peer_text)
                if not keep:
                    break
        except (ConnectionError, TimeoutError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the server is stopping: end the connection quietly
        finally:
            if task is not None:
                self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   peer: str) -> bool:
        try:
            async with asyncio.timeout(IDLE_TIMEOUT):
                head = await _read_head(reader)
            if head is None:
                return False
            method, target, version, headers = head
            if "transfer-encoding" in headers:
                raise HttpError(411, "chunked request bodies are not supported: send "
                                     "Content-Length")
            length_text = headers.get("content-length", "0")
            if not length_text.isdigit():
                raise HttpError(400, "invalid Content-Length")
            length = int(length_text)
            if length > self.max_body:
                raise HttpError(413, f"request body larger than {self.max_body} bytes")
            if length and headers.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl (wbemcli) waits for it
                await writer.drain()
            async with asyncio.timeout(IDLE_TIMEOUT):
                body = await reader.readexactly(length) if length else b""
        except HttpError as exc:
            await self._send(writer, HttpResponse(exc.status, [("Content-Type", "text/plain")],
                                                  (str(exc) + "\n").encode()), False)
            return False
        request = HttpRequest(method, target, version, headers, body, peer)
        try:
            response = await self.app(request)
        except Exception:
            self.log.exception("CIM request from %s failed", peer)
            response = HttpResponse(500, [("Content-Type", "text/plain")], b"internal error\n")
        connection = headers.get("connection", "").lower()
        keep = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
        await self._send(writer, response, keep)
        return keep

    async def _send(self, writer: asyncio.StreamWriter, response: HttpResponse,
                    keep: bool) -> None:
        reason = REASONS.get(response.status, "Error")
        lines = [f"HTTP/1.1 {response.status} {reason}"]
        lines += [f"{k}: {v}" for k, v in response.headers]
        lines.append(f"Content-Length: {len(response.body)}")
        lines.append("Connection: keep-alive" if keep else "Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body)
        await writer.drain()
