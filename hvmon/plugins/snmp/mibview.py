"""HVMON-MIB (and optionally the LIBVIRT-MIB view) as an :class:`~hvmon.plugins.snmp.view.SnmpView`.

:class:`HvmonView` turns the daemon's snapshot into an
:class:`~hvmon.plugins.snmp.table.OidTable`, once per snapshot generation,
validates SETs against that snapshot and commits them through the core API
(the central read-only gate applies), and builds notification varbinds from
lifecycle events. Nothing here calls a driver while answering a GET: every
value comes from the snapshot. The table itself is built by
:mod:`~hvmon.plugins.snmp.tablebuild`, SETs are planned by
:mod:`~hvmon.plugins.snmp.setplan`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from hvmon.core.errors import HvmonError
from hvmon.core.events import LifecycleEvent
from hvmon.core.snapshot.model import Snapshot
from hvmon.plugins.snmp import libvirt_mib, oids
from hvmon.plugins.snmp.setplan import (
    HVMON_WRITABLE,
    LIBVIRT_WRITABLE,
    Action,
    HvmonSetPlan,
    Request,
    Writable,
    guest_action,
    set_failure,
)
from hvmon.plugins.snmp.table import OidTable
from hvmon.plugins.snmp.tablebuild import (
    HVMON_OBJECTS,
    LIBVIRT_OBJECTS,
    PAUSED,
    ROW_CREATE_AND_WAIT,
    ROW_NOT_READY,
    RUNNING,
    SHUTDOWN,
    SHUTOFF,
    Built,
    Index,
    TableBuilder,
    text_value,
    uuid_index,
)
from hvmon.plugins.snmp.types import (
    OID,
    ErrorStatus,
    Tag,
    Value,
    VarBind,
)

if TYPE_CHECKING:
    from hvmon.core.api import Connection, DomainEvent

#: ``source(max_age)`` returns a snapshot (the daemon's ``ctx.snapshot.get``)
Source = Callable[[float | None], Snapshot]
Row = tuple[Index, list[Value | None]]

log = logging.getLogger("hvmon.agent.snmp")

# --- notifications ------------------------------------------------------------

#: event -> state it leads to (None: the snapshot's state, else shutoff)
_EVENT_STATE: dict[LifecycleEvent, int | None] = {
    LifecycleEvent.DEFINED: None,
    LifecycleEvent.UNDEFINED: None,
    LifecycleEvent.STARTED: RUNNING,
    LifecycleEvent.SUSPENDED: PAUSED,
    LifecycleEvent.RESUMED: RUNNING,
    LifecycleEvent.STOPPED: SHUTOFF,
    LifecycleEvent.SHUTDOWN: SHUTDOWN,
    LifecycleEvent.PMSUSPENDED: 7,
    LifecycleEvent.CRASHED: 6,
}
#: (event, detail) -> the state reason libvirt gives for it (missing: 0, unknown)
_EVENT_REASON: dict[tuple[LifecycleEvent, int], int] = {
    **{(LifecycleEvent.STARTED, d): r for d, r in ((0, 1), (1, 2), (2, 3), (3, 4), (4, 8))},
    **{(LifecycleEvent.SUSPENDED, d): r for d, r in ((0, 1), (1, 2), (2, 5), (3, 6), (5, 7))},
    **{(LifecycleEvent.RESUMED, d): r for d, r in ((0, 5), (1, 2), (2, 4))},
    **{(LifecycleEvent.STOPPED, d): d + 1 for d in range(7)},
    (LifecycleEvent.CRASHED, 0): 1,
}


# --- the view -----------------------------------------------------------------

class HvmonView:
    """HVMON-MIB over a snapshot source; the LIBVIRT-MIB view too when ``libvirt_compat``.

    ``control`` is the connection SETs are committed through (None: every SET
    is refused); ``started`` the agent's start (``time.monotonic()``) for
    hvmonHostAgentUptime; ``max_age`` what :meth:`table` passes to ``source``.
    """

    def __init__(self, source: Source, *, control: Connection | None = None,
                 libvirt_compat: bool = False, started: float | None = None,
                 max_age: float | None = None) -> None:
        self._source = source
        self.control = control
        self.libvirt_compat = libvirt_compat
        self.started = time.monotonic() if started is None else started
        self.max_age = max_age
        self.roots: tuple[OID, ...] = ((oids.HVMON_MIB, libvirt_mib.ROOT) if libvirt_compat
                                       else (oids.HVMON_MIB,))
        self._writable = dict(HVMON_WRITABLE)
        if libvirt_compat:
            self._writable.update(LIBVIRT_WRITABLE)
        self._lock = threading.Lock()
        self._built: Built | None = None
        self._builder = TableBuilder(libvirt_compat=libvirt_compat)
        self._last_error: str | None = None

    # -- reading -------------------------------------------------------------------

    def table(self) -> OidTable:
        """The table of the current snapshot, rebuilt only when its generation changed."""
        return self._current().table

    def _current(self) -> Built:
        try:
            snap = self._source(self.max_age)
        except HvmonError as exc:
            built = self._built
            if str(exc) != self._last_error:  # once per distinct failure, not per request
                self._last_error = str(exc)
                log.warning("no snapshot of the host (%s); serving %s", exc,
                            "nothing" if built is None
                            else f"generation {built.table.generation}")
            if built is None:
                objects = HVMON_OBJECTS | (LIBVIRT_OBJECTS if self.libvirt_compat else frozenset())
                return Built(OidTable((), objects), None, {})
            return built
        self._last_error = None
        built = self._built
        if built is not None and built.snapshot is not None and \
                built.table.generation == snap.generation:
            return built
        with self._lock:
            built = self._built
            if built is None or built.snapshot is None or \
                    built.table.generation != snap.generation:
                uptime = int((time.monotonic() - self.started) * 100)
                built = self._builder.build(snap, uptime_ticks=max(uptime, 0))
                self._built = built
            return built

    # -- SET -----------------------------------------------------------------------

    def plan_set(self, varbinds: Sequence[VarBind], *, writable: bool) -> HvmonSetPlan:
        """Validate a SET against the current snapshot; nothing changes before ``commit``.

        Checks run in RFC 3416 4.2.5 order for every varbind (noAccess,
        notWritable, wrongType, wrongValue, noCreation), then the row-level
        rules (inconsistentValue); the first failure raises SetFailure.
        """
        if not writable or self.control is None:
            for i, (oid, _) in enumerate(varbinds):
                raise set_failure(self._unwritable_status(oid), i,
                            "this request may not write" if writable is False
                            else "the agent has no control")
        parsed: list[tuple[int, Writable, Index, int]] = []
        for i, (oid, value) in enumerate(varbinds):
            column = self._column(oid)
            if column is None:
                raise set_failure(self._unwritable_status(oid), i, "object not writable")
            spec, index = column
            if value.tag != Tag.INTEGER or not isinstance(value.data, int):
                raise set_failure(ErrorStatus.WRONG_TYPE, i, "expected an INTEGER")
            n = value.data
            if n not in spec.values or (spec.kind == "row" and
                                        n in (ROW_NOT_READY, ROW_CREATE_AND_WAIT)):
                raise set_failure(ErrorStatus.WRONG_VALUE, i, f"value {n} not allowed")
            parsed.append((i, spec, index, n))
        built = self._current()
        if built.snapshot is None and parsed:
            raise set_failure(ErrorStatus.RESOURCE_UNAVAILABLE, parsed[0][0],
                              "no snapshot of the host")
        requests: list[Request] = []
        for i, spec, index, n in parsed:
            dom = built.domains.get(index)
            if dom is None:
                raise set_failure(ErrorStatus.NO_CREATION, i,
                                  "no such guest; rows cannot be created")
            requests.append(Request(i, dom, spec.kind, n))
        return HvmonSetPlan(self._actions(requests), self.control, self._refresh_after_set)

    def _column(self, oid: OID) -> tuple[Writable, Index] | None:
        for column, spec in self._writable.items():
            n = len(column)
            if oid[:n] == column and len(oid) > n:
                return spec, oid[n:]
        return None

    def _unwritable_status(self, oid: OID) -> ErrorStatus:
        """notWritable inside this view's subtrees, noAccess outside them (RFC 3416 4.2.5)."""
        if any(oid[:len(root)] == root for root in self.roots):
            return ErrorStatus.NOT_WRITABLE
        return ErrorStatus.NO_ACCESS

    @staticmethod
    def _actions(requests: Sequence[Request]) -> list[Action]:
        by_guest: dict[str, list[Request]] = {}
        for req in requests:
            by_guest.setdefault(req.dom.uuid, []).append(req)
        actions: list[Action] = []
        for reqs in by_guest.values():
            actions.append(guest_action(reqs))
        actions.sort(key=lambda a: a.index)
        return actions

    def _refresh_after_set(self) -> None:
        """After a SET changed a guest: refresh the snapshot so the next GET shows it."""
        try:
            self._source(0)
        except HvmonError as exc:
            log.warning("snapshot refresh after SET failed: %s", exc)

    # -- notifications ---------------------------------------------------------------

    def notifications(self, event: DomainEvent) -> list[tuple[OID, list[VarBind]]]:
        """hvmonGuestNotif for a lifecycle event, plus libvirtGuestNotif when compat is on."""
        name, uuid = event.domain.name, event.domain.uuid
        index = uuid_index(uuid)
        if index is None:
            log.warning("event for domain %s without a valid UUID: no notification", name)
            return []
        kind = LifecycleEvent(event.event)
        state = _EVENT_STATE.get(kind)
        if state is None:
            built = self._built
            dom = built.domains.get(index) if built is not None else None
            state = dom.state if dom is not None and kind == LifecycleEvent.DEFINED else SHUTOFF
        reason = _EVENT_REASON.get((kind, int(event.detail)), 0)
        uuid16 = bytes(index)
        varbinds: list[VarBind] = [
            (oids.GUEST_NAME + index, text_value(name)),
            (oids.NOTIF_GUEST_UUID + (0,), Value(Tag.OCTET_STRING, uuid16)),
            (oids.GUEST_STATE + index, Value.integer(state)),
            (oids.GUEST_STATE_REASON + index, Value.integer(reason)),
            (oids.NOTIF_EVENT_TYPE + (0,), Value.integer(int(kind))),
            (oids.NOTIF_EVENT_DETAIL + (0,), Value.integer(max(int(event.detail), 0))),
        ]
        out = [(oids.GUEST_NOTIF, varbinds)]
        if self.libvirt_compat:
            out.append(libvirt_mib.notification(name, uuid16, state))
        return out
