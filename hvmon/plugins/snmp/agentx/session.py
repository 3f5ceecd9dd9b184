"""One AgentX session: the connection to the master, framing, our requests and their answers.

:func:`parse_address` reads net-snmp's ``agentXSocket`` spellings
(``/var/agentx/master``, ``unix:/path``, ``tcp:host:port``); :func:`connect`
opens the stream and returns a :class:`Session`. The session splits the
stream into PDUs, matches the master's Responses to the requests we sent
(:meth:`Session.request`) and hands every other PDU to ``on_request``, which
answers with :meth:`Session.send`. A stream that cannot be framed any more
(an absurd payload length) closes the connection; the subagent reconnects.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from hvmon.daemon.addresses import format_address
from hvmon.daemon.addresses import parse_address as parse_host_port
from hvmon.plugins.snmp.agentx.pdu import (
    HEADER_SIZE,
    MAX_PAYLOAD,
    Body,
    Header,
    ParseError,
    PduType,
    Response,
    decode_body,
    decode_header,
    encode,
)

#: net-snmp's default master socket
DEFAULT_ADDRESS = "/var/agentx/master"

#: ``on_request(session, header, payload)`` for every PDU that is not a Response
RequestHandler = Callable[["Session", Header, bytes], None]


@dataclass(frozen=True)
class Address:
    """Where the master listens: a UNIX socket path or a TCP host and port."""

    kind: str  # "unix" or "tcp"
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        return f"tcp:{format_address(self.host, self.port)}"


def parse_address(text: object) -> Address:
    """``/path``, ``unix:/path`` or ``tcp:HOST:PORT``; ValueError with a one-line reason."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"agentx address must be a socket path or 'tcp:HOST:PORT', "
                         f"got {text!r:.60}")
    text = text.strip()
    if text.startswith("unix:"):
        path = text[5:]
        if not path.startswith("/"):
            raise ValueError(f"agentx address {text!r:.80}: the UNIX socket path must be absolute")
        return Address("unix", path=path)
    if text.startswith("/"):
        return Address("unix", path=text)
    if text.startswith("tcp:"):
        try:
            host, port = parse_host_port(text[4:])
        except ValueError as exc:
            raise ValueError(f"agentx address {text!r:.80}: {exc}") from None
        if port == 0:
            raise ValueError(f"agentx address {text!r:.80}: port 0 is not a master's port")
        return Address("tcp", host=host, port=port)
    raise ValueError(f"agentx address {text!r:.80}: use a socket path (/var/agentx/master), "
                     "'unix:/path' or 'tcp:HOST:PORT'")


class SessionClosed(ConnectionError):
    """The connection to the master is gone."""


class Session(asyncio.Protocol):
    """The client side of one AgentX connection."""

    def __init__(self, on_request: RequestHandler, logger: logging.Logger | logging.LoggerAdapter,
                 label: str = "master") -> None:
        self._on_request = on_request
        self._logger = logger
        self.label = label
        #: h.sessionID the master gave us in its answer to Open (0 before)
        self.session_id = 0
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._packet_ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[tuple[Header, Response]]] = {}
        self._loop = asyncio.get_running_loop()
        #: resolves with a one-line reason when the connection ends
        self.lost: asyncio.Future[str] = self._loop.create_future()
        self._close_reason = ""

    # --- asyncio.Protocol ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        pos = 0
        while len(buffer) - pos >= HEADER_SIZE and self._transport is not None:
            big = buffer[pos + 2] & 0x10  # NETWORK_BYTE_ORDER
            length = int.from_bytes(buffer[pos + 16:pos + 20], "big" if big else "little")
            if length > MAX_PAYLOAD:
                self.abort(f"{self.label} sent a PDU with a {length}-byte payload; "
                           "the stream cannot be trusted any more")
                return
            end = pos + HEADER_SIZE + length
            if len(buffer) < end:
                break
            header = decode_header(buffer[pos:pos + HEADER_SIZE])
            payload = bytes(buffer[pos + HEADER_SIZE:end])
            pos = end
            self._dispatch(header, payload)
        del buffer[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        reason = self._close_reason or (
            f"connection lost: {exc}" if exc else f"{self.label} closed the connection")
        if not self.lost.done():
            self.lost.set_result(reason)
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(SessionClosed(reason))

    # --- use --------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._transport is not None

    def send(self, data: bytes) -> None:
        """Write one encoded PDU (dropped when the connection is already gone)."""
        if self._transport is not None:
            self._transport.write(data)

    async def request(self, body: Body, *, timeout: float,
                      context: bytes | None = None) -> tuple[Header, Response]:
        """Send ``body`` and wait for the master's Response: (its header, the Response).

        Raises SessionClosed when the connection goes, TimeoutError after ``timeout``.
        """
        if self._transport is None:
            raise SessionClosed(self._close_reason or "not connected")
        packet_id = next(self._packet_ids) & 0xFFFFFFFF
        future: asyncio.Future[tuple[Header, Response]] = self._loop.create_future()
        self._pending[packet_id] = future
        try:
            self.send(encode(body, session_id=self.session_id, transaction_id=packet_id,
                             packet_id=packet_id, context=context))
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._pending.pop(packet_id, None)

    def abort(self, reason: str) -> None:
        """Drop the connection now; ``lost`` resolves with ``reason``."""
        if not self._close_reason:
            self._close_reason = reason
        if self._transport is not None:
            self._transport.abort()

    # --- internals ----------------------------------------------------------------

    def _dispatch(self, header: Header, payload: bytes) -> None:
        if header.type == PduType.RESPONSE:
            self._response(header, payload)
            return
        try:
            self._on_request(self, header, payload)
        except Exception as exc:  # a handler bug must not kill the connection
            self._logger.error("agentx: error handling a %s PDU from the %s: %s: %s",
                               _type_name(header.type), self.label, type(exc).__name__, exc)

    def _response(self, header: Header, payload: bytes) -> None:
        future = self._pending.get(header.packet_id)
        if future is None or future.done():
            self._logger.debug("agentx: ignoring a Response for unknown packet %d",
                               header.packet_id)
            return
        try:
            _, body = decode_body(header, payload)
        except ParseError as exc:
            self._logger.warning("agentx: malformed Response from the %s: %s", self.label, exc)
            future.set_exception(exc)
            return
        assert isinstance(body, Response)
        future.set_result((header, body))


def _type_name(kind: int) -> str:
    try:
        return PduType(kind).name
    except ValueError:
        return f"type-{kind}"


async def connect(address: Address, on_request: RequestHandler, *,
                  logger: logging.Logger | logging.LoggerAdapter, timeout: float) -> Session:
    """Open the stream to the master (no AgentX Open yet)."""
    loop = asyncio.get_running_loop()

    def factory() -> Session:
        return Session(on_request, logger, label=f"master at {address}")

    if address.kind == "unix":
        connecting = loop.create_unix_connection(factory, address.path)
    else:
        connecting = loop.create_connection(factory, address.host, address.port)
    async with asyncio.timeout(timeout):
        _, session = await connecting
    return session
