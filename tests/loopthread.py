"""An asyncio event loop in a thread, for tests that run a server while they call tools,
and an in-process daemon driven from it.

The ``loop_thread`` fixture (registered by tests/conftest.py) gives each test
its own loop, stopped and closed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


class LoopThread:
    """An event loop running in a thread; :meth:`call` runs a coroutine on it."""

    def __init__(self, name: str = "test-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    try:
        yield runner
    finally:
        runner.close()


class DaemonThread:
    """An in-process hvmond with one in-tree plugin (``hvmon.plugins.<plugin>.plugin``,
    registered as ``<plugin>-test`` in place of its entry point), run on a loop thread."""

    def __init__(self, runner: LoopThread, tmp_path: Path, data: dict[str, Any],
                 plugin: str) -> None:
        from hvmon.daemon.app import Daemon
        from hvmon.daemon.config import parse_config
        from hvmon.daemon.plugins import build_plugin_host

        module = importlib.import_module(f"hvmon.plugins.{plugin}.plugin")
        host = build_plugin_host(plugins=[(module, f"{plugin}-test")], disabled=(plugin,))
        schema = host.schema()
        config = parse_config(data, schema)
        self.runner = runner
        self.daemon = Daemon(host, schema, config, run_dir=tmp_path / "run",
                             state_dir=tmp_path / "state", rpc=False, out=io.StringIO())
        runner.call(self.daemon.start())

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.runner.call(self.daemon.stop())
