"""QMP monitors: one asyncio loop thread runs every domain's ``qemu.qmp`` client.

Driver methods are synchronous and run in any thread; :class:`Monitor` turns
each QMP command into a coroutine on the shared :class:`MonitorLoop` and waits
for it with a deadline, so one busy QEMU never blocks the others. Events and
the end of the connection (QEMU exited) reach the domain's callbacks from the
loop thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from qemu.qmp import ExecuteError, QMPClient, QMPError, Runstate

from hvmon.core.errors import OperationFailed, OperationTimeout

log = logging.getLogger("hvmon.qemu.monitor")
T = TypeVar("T")

#: ``on_event(name, data)``: a QMP event of the domain (loop thread)
EventHandler = Callable[[str, Mapping[str, Any]], None]


def _quiet_disconnects(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """qemu.qmp leaves a future holding EOFError when QEMU exits under it: that is a
    guest stopping, already reported; anything else goes to asyncio's usual handler."""
    if isinstance(context.get("exception"), EOFError | ConnectionError):
        log.debug("QMP connection ended: %s", context.get("message", ""))
        return
    loop.default_exception_handler(context)


class MonitorLoop:
    """A daemon thread running one asyncio loop for all monitors of a driver."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                ready = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(ready,),
                                                name="hvmon-qemu-monitors", daemon=True)
                self._thread.start()
                ready.wait()
            assert self._loop is not None
            return self._loop

    def _run(self, ready: threading.Event) -> None:
        # qemu.qmp logs a traceback at ERROR each time a QEMU goes away; hvmon reports
        # that itself, in one line (crash, shutdown, failed start)
        logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(_quiet_disconnects)
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float, what: str) -> T:
        """Run ``coro`` on the loop; OperationTimeout (and a cancel) after ``timeout`` s."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise OperationTimeout(f"{what}: no answer within {timeout:g} s") from None

    def stop(self) -> None:
        """Stop the loop thread (the monitors must be closed first)."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)


class Monitor:
    """One domain's QMP connection.

    ``on_event`` gets every QMP event, ``on_close`` is called once when the
    connection ends for any reason other than :meth:`close` (QEMU exited).
    """

    def __init__(self, loop: MonitorLoop, name: str, on_event: EventHandler,
                 on_close: Callable[[], None]) -> None:
        self._loop = loop
        self.name = name
        self._on_event = on_event
        self._on_close = on_close
        self._client = QMPClient(name)
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    def connect(self, path: Path, timeout: float = 10.0,
                gone: Callable[[], Exception | None] | None = None) -> None:
        """Connect to QEMU's QMP socket at ``path``, retrying until it listens.

        ``gone()`` returns the error to raise when QEMU exited meanwhile (else None).
        """
        self._loop.run(self._connect(path, timeout, gone), timeout + 1,
                       f"QMP of '{self.name}'")

    async def _connect(self, path: Path, timeout: float,
                       gone: Callable[[], Exception | None] | None) -> None:
        end = time.monotonic() + timeout
        while True:
            try:
                if not path.exists():  # not listening yet (qemu.qmp would log an error)
                    raise ConnectionRefusedError(f"no socket at {path} yet")
                await self._client.connect(str(path))
                break
            except (QMPError, OSError) as exc:
                failure = gone() if gone is not None else None
                if failure is not None:
                    raise failure from None
                if time.monotonic() > end:
                    raise OperationFailed(f"cannot connect to the QMP monitor of "
                                          f"'{self.name}' at {path}: {exc}") from None
                await asyncio.sleep(0.005)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._events(), name=f"qmp-events-{self.name}"),
                       loop.create_task(self._watch(), name=f"qmp-watch-{self.name}")]

    async def _events(self) -> None:
        async for event in self._client.events:
            try:
                self._on_event(str(event["event"]), event.get("data") or {})
            except Exception:  # a handler bug must not stop the event stream
                log.exception("QMP event handler of '%s' failed", self.name)

    async def _watch(self) -> None:
        while self._client.runstate == Runstate.RUNNING:
            await self._client.runstate_changed()
        if not self._closing:
            with contextlib.suppress(Exception):
                await self._client.disconnect()
            try:
                self._on_close()
            except Exception:
                log.exception("QMP close handler of '%s' failed", self.name)

    def execute(self, command: str, arguments: Mapping[str, Any] | None = None,
                timeout: float = 10.0) -> Any:
        """Run a QMP command; OperationFailed with QEMU's one-line error, or a timeout."""
        return self._loop.run(self._execute(command, arguments), timeout,
                              f"QMP {command} on '{self.name}'")

    async def _execute(self, command: str, arguments: Mapping[str, Any] | None) -> Any:
        try:
            return await self._client.execute(command, arguments)
        except ExecuteError as exc:
            raise OperationFailed(f"QEMU refused {command} on '{self.name}': "
                                  f"{str(exc) or exc.error_class}") from None
        except (QMPError, EOFError, OSError) as exc:
            raise OperationFailed(f"QMP {command} on '{self.name}' failed: "
                                  f"{type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        """Disconnect (QEMU keeps running); ``on_close`` is not called."""
        self._closing = True
        with contextlib.suppress(Exception):
            self._loop.run(self._close(), 5.0, f"closing QMP of '{self.name}'")

    async def _close(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await self._client.disconnect()
