"""Shared plumbing of the test driver's parts: locking, events, lookups."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from hvmon.core.drivers.test.state import DomainObj, TestState
from hvmon.core.errors import NoSuchDomain
from hvmon.core.events import DomainEventRecord, LifecycleEvent


class TestPart:
    """Base of the driver's mixins; ``state`` is set by the driver."""

    state: TestState

    @contextmanager
    def _locked(self) -> Iterator[TestState]:
        """Hold the state lock; queued events are delivered after release."""
        with self.state.lock:
            self._poll_controls()
            yield self.state
            events, self.state.pending_events = self.state.pending_events, []
        for record in events:
            self.state.events.emit(record)

    def _poll_controls(self) -> None:  # overridden by the driver
        pass

    def _queue_event(self, obj: DomainObj, event: LifecycleEvent, detail: int) -> None:
        self.state.pending_events.append(
            DomainEventRecord(obj.uuid, obj.name, obj.id, event, int(detail))
        )

    def _dom(self, uuid: str) -> DomainObj:
        obj = self.state.domains.get(uuid)
        if obj is None:
            raise NoSuchDomain(f"domain not found: no domain with matching uuid '{uuid}'")
        return obj
