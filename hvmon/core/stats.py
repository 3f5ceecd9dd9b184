"""Bulk domain statistics with a deadline per domain.

:func:`collect` runs a per-domain fetch over worker threads. A domain whose
fetch raises, or runs past its deadline, gets an error in its slot; every other
domain is still returned. A worker stuck on a domain is abandoned (its late
answer is dropped) and the rest of its share goes to a fresh worker, so one
hung guest never blocks or blanks the whole call.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hvmon.core.errors import HvmonError, InvalidArgument, OperationTimeout

K = TypeVar("K")

#: Groups libvirt's virConnectGetAllDomainStats knows, in virsh's order.
STATS_GROUPS = (
    "state", "cpu-total", "balloon", "vcpu", "interface", "block",
    "perf", "iothread", "memory", "dirtyrate",
)

DEFAULT_DEADLINE = 5.0


def normalize_groups(groups: Sequence[str] | None) -> tuple[str, ...]:
    """Validate group names; None or empty means every group."""
    if not groups:
        return STATS_GROUPS
    unknown = [g for g in groups if g not in STATS_GROUPS]
    if unknown:
        raise InvalidArgument(
            f"unknown stats group '{unknown[0]}' (known: {', '.join(STATS_GROUPS)})"
        )
    return tuple(g for g in STATS_GROUPS if g in groups)


class _Worker:
    __slots__ = ("abandoned", "current", "started")

    def __init__(self) -> None:
        self.abandoned = False
        self.current: int | None = None
        self.started = 0.0


def fetch_one(item: K, fetch: Callable[[K], dict[str, Any]],
              describe: Callable[[K], str] = str) -> dict[str, Any] | HvmonError:
    """``fetch(item)``, or the error that belongs in the item's slot."""
    try:
        return fetch(item)
    except HvmonError as exc:
        return exc
    except Exception as exc:  # a driver bug stays in its slot
        return HvmonError(f"stats failed for {describe(item)}: {exc}")


def collect(
    items: Sequence[K],
    fetch: Callable[[K], dict[str, Any]],
    deadline: float = DEFAULT_DEADLINE,
    workers: int = 2,
    chunk: int = 128,
    describe: Callable[[K], str] = str,
) -> list[dict[str, Any] | HvmonError]:
    """Fetch stats for every item; each slot holds a dict or the item's error."""
    n = len(items)
    results: list[Any] = [None] * n
    pending = n
    lock = threading.Lock()
    done = threading.Event()
    queue: deque[tuple[int, int]] = deque(
        (start, min(start + chunk, n)) for start in range(0, n, chunk)
    )
    if n == 0:
        return []

    def finish(index: int, value: Any) -> None:
        nonlocal pending
        results[index] = value
        pending -= 1
        if pending == 0:
            done.set()

    def run(worker: _Worker) -> None:
        while True:
            with lock:
                if worker.abandoned or not queue:
                    return
                start, end = queue.popleft()
            for index in range(start, end):
                # no lock: ``current`` is None until set, and set after ``started``,
                # so the monitor never pairs this item with an older start time
                worker.started = time.monotonic()
                worker.current = index
                value = fetch_one(items[index], fetch, describe)
                with lock:
                    if worker.abandoned:
                        return  # the monitor already gave this slot a timeout
                    worker.current = None
                    finish(index, value)

    active: list[_Worker] = []

    def spawn() -> None:
        worker = _Worker()
        active.append(worker)
        threading.Thread(target=run, args=(worker,), daemon=True, name="hvmon-stats").start()

    with lock:
        for _ in range(max(1, min(workers, len(queue)))):
            spawn()
    while not done.wait(timeout=min(deadline / 4, 0.25)):
        now = time.monotonic()
        with lock:
            for worker in list(active):
                if worker.abandoned or worker.current is None:
                    continue
                if now - worker.started < deadline:
                    continue
                index = worker.current
                worker.abandoned = True
                active.remove(worker)
                finish(index, OperationTimeout(
                    f"stats for {describe(items[index])} timed out after {deadline:g}s"
                ))
                # whatever this worker still held goes back via the queue: it only
                # ever holds the chunk it is in, so requeue that chunk's rest
                chunk_end = min(((index // chunk) + 1) * chunk, n)
                if index + 1 < chunk_end:
                    queue.appendleft((index + 1, chunk_end))
                if queue:
                    spawn()
            if not any(not w.abandoned for w in active) and queue:
                spawn()
    return results
