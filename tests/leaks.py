"""Threads a test leaves behind: :func:`threads_joined`, and ``no_leaked_threads``, an
autouse fixture a suite's conftest imports to insist that every thread a test starts
(server loops, workers, readers, TLS pumps) is gone after it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def threads_joined(timeout: float = 5.0) -> Iterator[None]:
    """Fail the test when a thread started inside the block is still alive ``timeout``
    seconds after it."""
    before = set(threading.enumerate())
    yield
    end = time.monotonic() + timeout
    leaked: list[threading.Thread] = []
    while time.monotonic() < end:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked:
            return
        time.sleep(0.01)
    pytest.fail(f"threads left running: {sorted(t.name for t in leaked)}")


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every thread a test starts is gone within 5 s of its end."""
    with threads_joined():
        yield
