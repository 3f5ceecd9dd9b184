"""The ``snmp`` agent: the standalone UDP engine (default) or an AgentX subagent.

Both serve :class:`~hvmon.plugins.snmp.mibview.HvmonView` over the daemon's
snapshot. SETs are possible only when the agent has control (its section says
``control = true`` and ``[daemon] allow_control = true``) and the request
comes from the read-write community or a read-write user; commits go through
the context's connection, so the central gate applies. Lifecycle events
become notifications (standalone: to ``trap_targets``; AgentX: through the
master).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from hvmon.daemon.addresses import format_address, parse_address
from hvmon.daemon.agent import AgentHealth
from hvmon.plugins.snmp.config import DEFAULT_LISTEN, OPTIONS, parse_settings, validate_options

if TYPE_CHECKING:
    from hvmon.daemon.context import AgentContext
    from hvmon.plugins.snmp.engine import SnmpEngine
    from hvmon.plugins.snmp.notify import Notifier

__all__ = ["DEFAULT_LISTEN", "OPTIONS", "SnmpAgent", "validate_options"]


class SnmpAgent:
    """Serves HVMON-MIB (and the LIBVIRT-MIB view when asked) until stopped."""

    def __init__(self) -> None:
        self.engine: SnmpEngine | None = None
        self.subagent: Any = None
        self.notifier: Notifier | None = None
        self._events: asyncio.Task[None] | None = None
        self._ctx: AgentContext | None = None

    async def start(self, ctx: AgentContext) -> None:
        from hvmon.plugins.snmp.mibview import HvmonView

        self._ctx = ctx
        options = ctx.config.options
        settings = await asyncio.to_thread(parse_settings, options)  # key derivation is slow
        control = not ctx.readonly
        max_age = options["snapshot_max_age"]
        started = time.monotonic()
        view = HvmonView(ctx.snapshot.get, control=ctx.connection if control else None,
                         libvirt_compat=bool(options["libvirt_compat"]), started=started,
                         max_age=None if max_age is None else float(max_age))
        if options["mode"] == "agentx":
            from hvmon.plugins.snmp.agentx.subagent import AgentxSubagent

            self.subagent = AgentxSubagent(view, options["agentx_socket"], logger=ctx.logger,
                                           timeout=float(options["agentx_timeout"]),
                                           writable=control)
            await self.subagent.start()
            self._events = asyncio.create_task(self._forward_agentx(view))
            ctx.logger.info("AgentX subagent of %s started", options["agentx_socket"])
            return
        from hvmon.plugins.snmp.engine import SnmpEngine
        from hvmon.plugins.snmp.notify import Notifier
        from hvmon.plugins.snmp.usm import EngineState

        state = await asyncio.to_thread(EngineState.load, ctx.state_dir)
        engine = SnmpEngine(view, communities=settings.communities, users=settings.users,
                            state=state, control=control, logger=ctx.logger,
                            max_message_size=int(options["max_message_size"]))
        engine.started = started
        await engine.start([parse_address(a) for a in ctx.config.listen])
        self.engine = engine
        for host, port in engine.addresses:
            ctx.logger.info("SNMP agent listening on udp %s (engine boots %d)",
                            format_address(host, port), state.boots)
        if settings.targets:
            self.notifier = Notifier(settings.targets, uptime=engine.uptime, state=state,
                                     logger=ctx.logger)
            self._events = asyncio.create_task(self.notifier.run(ctx.events(), view))

    async def _forward_agentx(self, view: Any) -> None:
        assert self._ctx is not None
        async for event in self._ctx.events():
            try:
                notes = view.notifications(event)
            except Exception as exc:
                self._ctx.logger.warning("no notification for an event: %s", exc)
                continue
            for trap_oid, varbinds in notes:
                await self.subagent.notify(trap_oid, varbinds)

    async def stop(self) -> None:
        """Stop serving and forwarding (safe after a failed start)."""
        if self._events is not None:
            self._events.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._events
            self._events = None
        if self.engine is not None:
            await self.engine.stop()
            self.engine = None
        if self.subagent is not None:
            await self.subagent.stop()
            self.subagent = None

    def health(self) -> AgentHealth:
        if self.subagent is not None:
            healthy, message = self.subagent.health()
            return AgentHealth("ok" if healthy else "degraded", "" if healthy else message)
        if self.engine is None or self._ctx is None:
            return AgentHealth("degraded", "not serving")
        listening = tuple(format_address(h, p) for h, p in self.engine.addresses)
        if self._ctx.snapshot.current() is None:
            return AgentHealth("degraded", "no snapshot of the host yet", listening)
        return AgentHealth("ok", "", listening)
