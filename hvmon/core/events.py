"""Lifecycle event bus (libvirt's VIR_DOMAIN_EVENT_* numbering)."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

log = logging.getLogger(__name__)


class LifecycleEvent(IntEnum):
    """virDomainEventType."""

    DEFINED = 0
    UNDEFINED = 1
    STARTED = 2
    SUSPENDED = 3
    RESUMED = 4
    STOPPED = 5
    SHUTDOWN = 6
    PMSUSPENDED = 7
    CRASHED = 8


class DefinedDetail(IntEnum):
    ADDED = 0
    UPDATED = 1
    RENAMED = 2
    FROM_SNAPSHOT = 3


class UndefinedDetail(IntEnum):
    REMOVED = 0
    RENAMED = 1


class StartedDetail(IntEnum):
    BOOTED = 0
    MIGRATED = 1
    RESTORED = 2
    FROM_SNAPSHOT = 3
    WAKEUP = 4


class SuspendedDetail(IntEnum):
    PAUSED = 0
    MIGRATED = 1
    IOERROR = 2
    WATCHDOG = 3
    RESTORED = 4
    FROM_SNAPSHOT = 5
    API_ERROR = 6
    POSTCOPY = 7
    POSTCOPY_FAILED = 8


class ResumedDetail(IntEnum):
    UNPAUSED = 0
    MIGRATED = 1
    FROM_SNAPSHOT = 2
    POSTCOPY = 3


class StoppedDetail(IntEnum):
    SHUTDOWN = 0
    DESTROYED = 1
    CRASHED = 2
    MIGRATED = 3
    SAVED = 4
    FAILED = 5
    FROM_SNAPSHOT = 6


class ShutdownDetail(IntEnum):
    FINISHED = 0
    GUEST = 1
    HOST = 2


class CrashedDetail(IntEnum):
    PANICKED = 0


DETAILS: dict[LifecycleEvent, type[IntEnum]] = {
    LifecycleEvent.DEFINED: DefinedDetail,
    LifecycleEvent.UNDEFINED: UndefinedDetail,
    LifecycleEvent.STARTED: StartedDetail,
    LifecycleEvent.SUSPENDED: SuspendedDetail,
    LifecycleEvent.RESUMED: ResumedDetail,
    LifecycleEvent.STOPPED: StoppedDetail,
    LifecycleEvent.SHUTDOWN: ShutdownDetail,
    LifecycleEvent.CRASHED: CrashedDetail,
}


def detail_label(event: LifecycleEvent, detail: int) -> str:
    """virsh event wording for a detail, e.g. ``Booted`` or ``Destroyed``."""
    enum = DETAILS.get(event)
    try:
        return enum(detail).name.replace("_", " ").title() if enum else "Unknown"
    except ValueError:
        return "Unknown"


@dataclass(frozen=True)
class DomainEventRecord:
    """A lifecycle event as a driver emits it."""

    uuid: str
    name: str
    id: int
    event: LifecycleEvent
    detail: int
    timestamp: float = field(default_factory=time.time)

    def describe(self) -> str:
        """``Started Booted``-style text, as virsh event prints it."""
        return f"{self.event.name.title()} {detail_label(self.event, self.detail)}"


Callback = Callable[[DomainEventRecord], None]


class EventBus:
    """Delivers each emitted event to every registered callback.

    Callbacks run in the emitting thread after the driver released its locks;
    one that raises is logged and does not stop delivery to the others.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callback] = {}
        self._ids = itertools.count(1)
        self.counts: dict[LifecycleEvent, int] = dict.fromkeys(LifecycleEvent, 0)

    def register(self, callback: Callback) -> int:
        with self._lock:
            callback_id = next(self._ids)
            self._callbacks[callback_id] = callback
        return callback_id

    def deregister(self, callback_id: int) -> bool:
        with self._lock:
            return self._callbacks.pop(callback_id, None) is not None

    def emit(self, record: DomainEventRecord) -> None:
        with self._lock:
            self.counts[record.event] += 1
            callbacks = list(self._callbacks.values())
        for callback in callbacks:
            try:
                callback(record)
            except Exception:  # a listener's bug must not break the emitter
                log.exception("event callback failed for %s", record.describe())
