"""Shared plumbing of the test driver's parts: locking, events, lookups."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

from hvmon.core.drivers.test.state import DomainObj, TestState
from hvmon.core.errors import AlreadyExists, NoSuchDomain
from hvmon.core.events import DomainEventRecord, LifecycleEvent


class Named(Protocol):
    name: str
    uuid: str


N = TypeVar("N", bound=Named)


def find_named(objects: Iterable[N], by: str, value: str) -> N | None:
    """The object whose ``name`` or ``uuid`` (``by``) equals ``value``."""
    for obj in objects:
        if getattr(obj, by) == value:
            return obj
    return None


def check_identity(objects: Iterable[N], kind: str, name: str, uuid: str) -> N | None:
    """The object a definition with ``name`` and ``uuid`` redefines, or None.

    Refuses, as libvirt does, a name already held by another UUID and a UUID
    already held by another name.
    """
    found = None
    for obj in objects:
        if obj.name == name and obj.uuid != uuid:
            raise AlreadyExists(f"{kind} '{name}' already exists with uuid {obj.uuid}")
        if obj.uuid == uuid:
            if obj.name != name:
                raise AlreadyExists(f"{kind} '{obj.name}' is already defined with uuid {uuid}")
            found = obj
    return found


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
