"""Pause the cyclic garbage collector around bursts of acyclic allocations.

Turning 10,000 domains into value lists, SNMP rows or metric lines allocates
hundreds of thousands of tuples and strings without reference cycles; every
allocation threshold would otherwise make the collector walk the whole
snapshot. Reference counting still frees everything at once; only cycles wait.

The collector switch is process-wide and agents build in worker threads at
the same time, so pauses are counted: the collector is turned off by the first
pause and back on by the last one to end, and only if it was on before.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """Run the block with the cyclic collector off (nested and concurrent pauses are fine)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
