"""The ``cim`` agent: the WBEM server on HTTP (and HTTPS with a certificate).

Read-only unless the agent has control (``control = true`` and ``[daemon]
allow_control = true``): methods go through ``ctx.connection``, the central
gate, which refuses them otherwise (CIM_ERR_ACCESS_DENIED). Lifecycle events
from ``ctx.events()`` become indications for the subscribed listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from hvmon.daemon.addresses import format_address, parse_address
from hvmon.daemon.agent import AgentHealth
from hvmon.plugins.cim.config import DEFAULT_LISTEN, OPTIONS, tls_context, validate_options

if TYPE_CHECKING:
    from hvmon.core.snapshot.model import Snapshot
    from hvmon.daemon.context import AgentContext
    from hvmon.plugins.cim.server import CimServer

__all__ = ["DEFAULT_LISTEN", "OPTIONS", "CimAgent", "validate_options"]


class CimAgent:
    """Serves CIM-XML on every configured address until stopped."""

    def __init__(self) -> None:
        self.server: CimServer | None = None
        self._events: asyncio.Task[None] | None = None
        self._ctx: AgentContext | None = None

    async def start(self, ctx: AgentContext) -> None:
        from hvmon.plugins.cim.server import CimServer

        self._ctx = ctx
        options = ctx.config.options
        max_age = options["snapshot_max_age"]

        def snapshot() -> Snapshot:
            return ctx.snapshot.get(None if max_age is None else float(max_age))

        self.server = server = await asyncio.to_thread(
            CimServer, ctx.connection, snapshot, ctx.snapshot.refresh,
            prefix=options["class_prefix"], users=dict(options["users"]),
            timeout=float(options["timeout"]),
            max_request_bytes=int(options["max_request_bytes"]),
            max_subscriptions=int(options["max_subscriptions"]),
            indication_timeout=float(options["indication_timeout"]), state_dir=ctx.state_dir,
            logger=ctx.logger)
        await self._listen(server, list(ctx.config.listen), None)
        if options["tls_cert_file"]:
            tls = tls_context(options["tls_cert_file"], options["tls_key_file"])
            await self._listen(server, list(options["https_listen"]), tls)
        if not server.dispatcher.model.connection.readonly and not server.service.auth.required:
            ctx.logger.warning("control is on and no users are configured: anyone who can "
                               "reach the CIM port can change domains")
        self._events = asyncio.create_task(self._forward(ctx))

    async def _listen(self, server: CimServer, addresses: list[str], tls: object) -> None:
        for address in addresses:
            host, port = parse_address(address)
            try:
                started = await server.listen([(host, port)], tls)  # type: ignore[arg-type]
            except OSError as exc:
                raise OSError(exc.errno, f"cannot listen on {address}: "
                                         f"{exc.strerror or exc}") from None
            for http in started:
                assert self._ctx is not None
                self._ctx.logger.info("serving CIM-XML on %s://%s/cimom", http.scheme,
                                      format_address(http.host, http.port))

    async def _forward(self, ctx: AgentContext) -> None:
        assert self.server is not None
        async for event in ctx.events():
            await self.server.on_event(event)

    async def stop(self) -> None:
        """Stop serving and delivering (safe after a failed start)."""
        if self._events is not None:
            self._events.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._events
            self._events = None
        if self.server is not None:
            await self.server.stop()
            self.server = None

    def health(self) -> AgentHealth:
        if self.server is None or not self.server.servers or self._ctx is None:
            return AgentHealth("degraded", "not serving")
        listening = tuple(format_address(s.host, s.port) for s in self.server.servers)
        if self._ctx.snapshot.current() is None:
            return AgentHealth("degraded", "no snapshot of the host yet", listening)
        return AgentHealth("ok", "", listening)
