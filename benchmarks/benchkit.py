"""Pieces several benchmark scripts share: an event loop in a thread and an hvmond
subprocess (benchmarks/ is sys.path[0] when a script runs, so ``import benchkit``)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: the daemon of the Python running the benchmark (the project's venv)
HVMOND = str(Path(sys.executable).with_name("hvmond"))


class LoopThread:
    """An event loop running in a thread; :meth:`call` runs a coroutine on it."""

    def __init__(self, name: str = "bench-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 600) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextmanager
def hvmond(uri: str, root: Path, timeout: float = 300) -> Iterator[subprocess.Popen[bytes]]:
    """An hvmond (no agents) serving ``uri`` with its sockets in ``root/run``; yields the
    process once it printed ``ready``; stopped by PID."""
    config = root / "hvmon.toml"
    config.write_text(f'[daemon]\nuri = "{uri}"\nrun_dir = "{root}/run"\n'
                      f'state_dir = "{root}/state"\n')
    with (root / "out").open("wb") as out, (root / "err").open("wb") as err:
        proc = subprocess.Popen([HVMOND, "--config", str(config)], stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while "\nready " not in "\n" + (root / "out").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"hvmond did not start: {(root / 'err').read_text()[-500:]}")
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
