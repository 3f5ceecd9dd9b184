"""The snapshot cache: on-demand refresh with a maximum age, single-flight, background.

Every agent reads the host through one :class:`SnapshotCache`. ``get()``
returns the current snapshot while it is young enough and refreshes it
otherwise; concurrent callers share one refresh (the collector runs once and
all of them get its result). ``start()`` adds a background thread refreshing
every ``interval`` seconds. Listeners hear about every new snapshot.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from hvmon.core.errors import HvmonError, InvalidArgument
from hvmon.core.snapshot.collector import collect_snapshot
from hvmon.core.snapshot.model import Snapshot
from hvmon.core.stats import DEFAULT_DEADLINE

if TYPE_CHECKING:
    from hvmon.core.api import Connection, DomainEvent

log = logging.getLogger(__name__)

Listener = Callable[[Snapshot], None]


class _Flight:
    """One refresh in progress; followers wait for the leader's outcome."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Snapshot | None = None
        self.error: BaseException | None = None

    def outcome(self) -> Snapshot:
        self.done.wait()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def _check(name: str, value: float | None, *, allow_zero: bool) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{name} must be a number of seconds, got {value!r:.40}")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidArgument(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


class SnapshotCache:
    """Shared, refreshed :class:`Snapshot` of one connection (see docs/snapshot.md)."""

    def __init__(self, conn: Connection, *, max_age: float = 5.0,
                 interval: float | None = None, deadline: float = DEFAULT_DEADLINE) -> None:
        _check("max_age", max_age, allow_zero=True)
        _check("interval", interval, allow_zero=False)
        _check("deadline", deadline, allow_zero=False)
        self._conn = conn
        self.max_age = float(max_age)
        self.interval = None if interval is None else float(interval)
        self.deadline = float(deadline)
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._generation = 0
        self._flight: _Flight | None = None
        self._changed: set[str] = set()
        self._event_id: int | None = None
        self._listeners: dict[int, Listener] = {}
        self._listener_ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def generation(self) -> int:
        """Generation of the current snapshot (0 before the first refresh)."""
        return self._generation

    def current(self) -> Snapshot | None:
        """The current snapshot, however old, or None; never blocks."""
        return self._snapshot

    def get(self, max_age: float | None = None) -> Snapshot:
        """A snapshot at most ``max_age`` seconds old (None: :attr:`max_age`).

        ``0`` asks for a fresh one: a refresh already running is joined, else
        one starts.
        """
        _check("max_age", max_age, allow_zero=True)
        limit = self.max_age if max_age is None else float(max_age)
        snap = self._snapshot
        if snap is not None and limit > 0 and snap.age() <= limit:
            return snap
        return self.refresh()

    def refresh(self) -> Snapshot:
        """Collect a new snapshot now, or wait for the refresh already running."""
        with self._lock:
            flight = self._flight
            leader = flight is None
            if flight is None:
                flight = self._flight = _Flight()
        if not leader:
            return flight.outcome()
        try:
            snap = self._collect()
        except BaseException as exc:
            flight.error = exc
            raise
        else:
            flight.result = snap
        finally:
            with self._lock:
                self._flight = None
            flight.done.set()
        self._notify(snap)
        return snap

    def _collect(self) -> Snapshot:
        self._track_events()
        with self._lock:
            previous, changed = self._snapshot, self._changed
            self._changed = set()
            generation = self._generation + 1
        try:
            snap = collect_snapshot(self._conn, previous=previous, generation=generation,
                                    deadline=self.deadline, changed=changed)
        except BaseException:
            with self._lock:
                self._changed |= changed
            raise
        with self._lock:
            self._snapshot, self._generation = snap, generation
        return snap

    # --- definition changes (which domains' XML to read again) -------------------
    def _track_events(self) -> None:
        if self._event_id is not None or self._stopping.is_set():
            return
        try:
            self._event_id = self._conn.domain_event_register(self._on_event)
        except HvmonError as exc:  # no events: fall back to the id-change signal
            log.debug("snapshot: no lifecycle events: %s", exc)
            self._event_id = -1

    def _on_event(self, event: DomainEvent) -> None:
        with self._lock:
            self._changed.add(event.domain.uuid)

    # --- listeners ------------------------------------------------------------
    def add_listener(self, callback: Listener) -> int:
        """Call ``callback(snapshot)`` after every refresh; returns an id."""
        with self._lock:
            listener_id = next(self._listener_ids)
            self._listeners[listener_id] = callback
        return listener_id

    def remove_listener(self, listener_id: int) -> None:
        with self._lock:
            if self._listeners.pop(listener_id, None) is None:
                raise InvalidArgument(f"no snapshot listener with id {listener_id}")

    def _notify(self, snap: Snapshot) -> None:
        with self._lock:
            listeners = list(self._listeners.values())
        for callback in listeners:
            try:
                callback(snap)
            except Exception:  # one listener's bug must not break the cache
                log.exception("snapshot listener %r failed", callback)

    # --- background -----------------------------------------------------------
    def start(self) -> None:
        """Refresh now and every :attr:`interval` seconds in a thread (no-op if None)."""
        if self.interval is None or (self._thread is not None and self._thread.is_alive()):
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="hvmon-snapshot", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.interval is not None
        while not self._stopping.is_set():
            try:
                self.refresh()
            except Exception:
                log.exception("snapshot: background refresh failed")
            if self._stopping.wait(self.interval):
                return

    def stop(self) -> None:
        """Stop the background thread (joined) and event tracking; idempotent."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        event_id, self._event_id = self._event_id, None
        if event_id is not None and event_id > 0:
            # HvmonError: the connection already dropped its callbacks (close)
            with contextlib.suppress(HvmonError):
                self._conn.domain_event_deregister(event_id)
