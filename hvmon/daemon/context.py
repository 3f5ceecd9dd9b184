"""What the daemon hands an agent: :class:`AgentContext`.

The context's connection shares the daemon's driver through
:class:`~hvmon.core.drivers.SharedDriverRef`, whose ``close()`` does nothing:
closing an agent's connection (the supervisor does it after every stop) drops
the agent's event callbacks but never the driver the daemon and the other
agents use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from hvmon.core.access import AccessGate
from hvmon.core.api import Connection
from hvmon.core.drivers import SharedDriverRef
from hvmon.daemon.events import DEFAULT_MAXLEN, EventStream

if TYPE_CHECKING:
    from hvmon.core.drivers.base import Driver
    from hvmon.core.snapshot.cache import SnapshotCache
    from hvmon.daemon.config import AgentConfig


def shared_connection(driver: Driver, *, readonly: bool) -> Connection:
    """A connection on ``driver`` that cannot close it, read-only unless told otherwise."""
    return Connection(cast("Driver", SharedDriverRef(driver)), AccessGate(readonly=readonly))


@dataclass(eq=False)
class AgentContext:
    """Everything an agent gets from the daemon (see docs/plugins.md).

    ``connection`` is read-only unless the agent's section says
    ``control = true`` *and* ``[daemon] allow_control = true``. ``snapshot`` is
    the daemon's shared cache: serve from it instead of calling the driver in
    a handler that must not block.
    """

    name: str
    config: AgentConfig
    logger: logging.Logger
    connection: Connection
    snapshot: SnapshotCache
    run_dir: Path
    state_dir: Path
    loop: asyncio.AbstractEventLoop
    _on_failure: Callable[[BaseException], None] = field(repr=False)
    _streams: list[EventStream] = field(default_factory=list, repr=False)

    @property
    def readonly(self) -> bool:
        """Whether :attr:`connection` refuses mutating calls."""
        return self.connection.readonly

    def events(self, maxlen: int = DEFAULT_MAXLEN) -> EventStream:
        """A new bounded stream of lifecycle events (``async for ev in ctx.events()``).

        Events carry domains bound to :attr:`connection`, so the control gate
        applies to them too. The stream ends when the agent is stopped.
        """
        stream = EventStream(self.connection, self.loop, maxlen)
        self._streams.append(stream)
        return stream

    def report_failure(self, exc: BaseException) -> None:
        """Tell the supervisor this agent has died (any thread): it is stopped and restarted."""
        if _running_loop() is self.loop:
            self._on_failure(exc)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the daemon is gone
                self.loop.call_soon_threadsafe(self._on_failure, exc)

    def close(self) -> None:
        """End the event streams and drop the connection's callbacks (the supervisor's job)."""
        for stream in self._streams:
            stream.close()
        self._streams.clear()
        self.connection.close()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
