"""The agent supervisor: start, watch, restart with back-off, stop.

Each agent runs in its own asyncio task. When ``start()`` raises, the agent
calls ``ctx.report_failure(exc)`` or its polled ``health()`` says ``failed``,
the supervisor logs one line, counts the failure, stops the agent and starts a
fresh one after a delay that doubles from ``restart_delay`` up to
``restart_delay_max`` (and resets once an agent ran ``healthy_after``
seconds). Other agents are not affected.

Timeouts use ``asyncio.timeout``, not ``asyncio.wait_for``: on Python 3.11,
``wait_for`` returns the inner result when a cancel arrives just as the inner
call finishes, losing the cancel; ``stop()`` also sets ``slot.stopping`` so an
agent's loop ends even then.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hvmon.daemon.agent import AgentHealth, AgentSpec

if TYPE_CHECKING:
    from hvmon.daemon.config import AgentConfig
    from hvmon.daemon.context import AgentContext

log = logging.getLogger("hvmon.daemon.supervisor")

#: ``make_context(name, config, report_failure)`` builds a fresh context per start
ContextFactory = Callable[[str, "AgentConfig", Callable[[BaseException], None]], "AgentContext"]


def one_line(exc: BaseException) -> str:
    """An exception as one line: ``OSError: [Errno 98] Address already in use``."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class Backoff:
    """Restart delays: ``first`` doubling to ``maximum``; reset after ``healthy_after`` s."""

    first: float = 1.0
    maximum: float = 60.0
    healthy_after: float = 60.0

    def next(self, delay: float) -> float:
        return min(delay * 2, self.maximum)


@dataclass
class AgentSlot:
    """One supervised agent: its spec, config and what the supervisor knows of it."""

    spec: AgentSpec
    config: AgentConfig
    status: str = "starting"
    message: str = ""
    failures: int = 0
    restarts: int = 0
    listening: tuple[str, ...] = ()
    started_at: float | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    first_attempt: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    stopping: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    def view(self) -> dict[str, Any]:
        """``{status, message, restarts, failures, listening}`` for daemon_info."""
        return {"status": self.status, "message": self.message, "restarts": self.restarts,
                "failures": self.failures, "listening": list(self.listening)}


class Supervisor:
    """Runs agents and keeps them running."""

    def __init__(self, make_context: ContextFactory, *, backoff: Backoff | None = None,
                 health_interval: float = 1.0, start_timeout: float = 30.0,
                 stop_timeout: float = 10.0) -> None:
        self._make_context = make_context
        self.backoff = backoff or Backoff()
        self.health_interval = health_interval
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._slots: dict[str, AgentSlot] = {}

    # --- public -------------------------------------------------------------------
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._slots))

    def slot(self, name: str) -> AgentSlot:
        return self._slots[name]

    def status(self) -> dict[str, dict[str, Any]]:
        """Every agent's view, by name (safe to call from another thread)."""
        slots = dict(self._slots)
        return {name: slots[name].view() for name in sorted(slots)}

    async def start(self, spec: AgentSpec, config: AgentConfig, *,
                    wait: float | None = None) -> AgentSlot:
        """Start supervising ``spec``; with ``wait``, return after its first attempt."""
        if spec.name in self._slots:
            raise RuntimeError(f"agent '{spec.name}' is already running")
        slot = AgentSlot(spec, config)
        self._slots[spec.name] = slot
        slot.task = asyncio.create_task(self._run(slot), name=f"hvmon-agent-{spec.name}")
        if wait is not None:
            await self.wait_started([spec.name], wait)
        return slot

    async def wait_started(self, names: list[str], timeout: float) -> None:
        """Wait until each agent's first start attempt has succeeded or failed."""
        waits = [self._slots[n].first_attempt.wait() for n in names if n in self._slots]
        if waits:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.gather(*waits)

    async def stop(self, name: str) -> None:
        """Stop one agent (awaiting its ``stop()``) and forget it."""
        slot = self._slots.pop(name, None)
        if slot is None or slot.task is None:
            return
        slot.stopping = True
        slot.task.cancel()
        await asyncio.wait({slot.task})  # a cancel of the caller still reaches the caller
        slot.status, slot.message = "stopped", ""

    async def stop_all(self) -> None:
        """Stop every agent, concurrently."""
        await asyncio.gather(*(self.stop(name) for name in self.names()))

    # --- one agent's life ---------------------------------------------------------------
    async def _run(self, slot: AgentSlot) -> None:
        delay = self.backoff.first
        loop = asyncio.get_running_loop()
        while not slot.stopping:
            failure: asyncio.Future[BaseException] = loop.create_future()
            report = functools.partial(_resolve, failure)
            agent, ctx, ran_for = None, None, 0.0
            try:
                ctx = self._make_context(slot.name, slot.config, report)
                agent = slot.spec.factory()
                slot.status, slot.message = "starting", ""
                async with asyncio.timeout(self.start_timeout):
                    await agent.start(ctx)
                slot.started_at = time.monotonic()
                self._note_health(slot, agent.health())
                log.info("agent %s started%s", slot.name, _where(slot.listening))
                slot.first_attempt.set()
                reason = await self._watch(slot, agent, failure)
            except asyncio.CancelledError:
                await self._shutdown(slot, agent, ctx)
                raise
            except TimeoutError:
                reason = f"start() took longer than {self.start_timeout:g} s"
            except Exception as exc:  # the agent's own failure: log, count, restart
                reason = one_line(exc)
            if slot.started_at is not None:
                ran_for = time.monotonic() - slot.started_at
            await self._shutdown(slot, agent, ctx)
            if ran_for >= self.backoff.healthy_after:
                delay = self.backoff.first
            slot.failures += 1
            slot.status, slot.listening, slot.started_at = "failed", (), None
            slot.message = f"{reason}; restarting in {delay:g} s"
            log.error("agent %s failed (failure %d): %s; restarting in %g s",
                      slot.name, slot.failures, reason, delay)
            slot.first_attempt.set()
            await asyncio.sleep(delay)
            delay = self.backoff.next(delay)
            slot.restarts += 1

    async def _watch(self, slot: AgentSlot, agent: Any,
                     failure: asyncio.Future[BaseException]) -> str:
        """Wait for a reported failure or a ``failed`` health; return why, as one line."""
        while not slot.stopping:
            done, _ = await asyncio.wait({failure}, timeout=self.health_interval)
            if done:
                return f"reported failure: {one_line(failure.result())}"
            try:
                health = agent.health()
            except Exception as exc:  # a broken health() counts as a failure
                return f"health() raised {one_line(exc)}"
            self._note_health(slot, health)
            if health.status == "failed":
                return f"health failed: {health.message or 'no message'}"
        raise asyncio.CancelledError  # stop() asked, and a cancel was lost on the way

    @staticmethod
    def _note_health(slot: AgentSlot, health: AgentHealth) -> None:
        if not isinstance(health, AgentHealth):
            raise TypeError(f"health() returned {type(health).__name__}, not AgentHealth")
        slot.status, slot.message, slot.listening = health.status, health.message, \
            health.listening

    async def _shutdown(self, slot: AgentSlot, agent: Any, ctx: AgentContext | None) -> None:
        """Stop the agent (bounded by ``stop_timeout``) and release its context."""
        try:
            if agent is not None:
                async with asyncio.timeout(self.stop_timeout):
                    await agent.stop()
        except TimeoutError:
            log.error("agent %s: stop() took longer than %g s", slot.name, self.stop_timeout)
        except Exception as exc:  # stopping a broken agent must not break the daemon
            log.error("agent %s: stop() failed: %s", slot.name, one_line(exc))
        finally:
            if ctx is not None:
                try:
                    ctx.close()
                except Exception as exc:  # noqa: BLE001 - best effort cleanup
                    log.error("agent %s: releasing its context failed: %s", slot.name,
                              one_line(exc))


def _resolve(failure: asyncio.Future[BaseException], exc: BaseException) -> None:
    """The first reported failure wins; later ones (same run) are ignored."""
    if not failure.done():
        failure.set_result(exc)


def _where(listening: tuple[str, ...]) -> str:
    return f", listening on {', '.join(listening)}" if listening else ""
