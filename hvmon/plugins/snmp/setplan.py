"""SNMP SET on HVMON-MIB and LIBVIRT-MIB: which columns are writable, the
state transitions they map to, and the plan a validated request commits
through the core API (the central read-only gate applies).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hvmon.core.errors import HvmonError
from hvmon.core.snapshot.model import DomainSnapshot, Snapshot
from hvmon.plugins.snmp import libvirt_mib, oids
from hvmon.plugins.snmp.tablebuild import (
    HVMON_STATE_VALUES,
    PAUSED,
    ROW_CREATE_AND_GO,
    ROW_DESTROY,
    RUNNING,
    SHUTDOWN,
    SHUTOFF,
)
from hvmon.plugins.snmp.types import (
    ErrorStatus,
    SetFailure,
    Value,
)

if TYPE_CHECKING:
    from hvmon.core.api import Connection

#: ``source(max_age)`` returns a snapshot (the daemon's ``ctx.snapshot.get``)
Source = Callable[[float | None], Snapshot]
Index = tuple[int, ...]
Row = tuple[Index, list[Value | None]]

log = logging.getLogger("hvmon.agent.snmp")

# --- SET ----------------------------------------------------------------------

@dataclass(frozen=True)
class Writable:
    """A writable column: what it controls and which values its syntax allows."""

    kind: str  # "state" or "row"
    values: frozenset[int]


_ROW_STATUS_VALUES = frozenset(range(1, 7))
HVMON_WRITABLE = {
    oids.GUEST_STATE: Writable("state", HVMON_STATE_VALUES),
    oids.GUEST_ROW_STATUS: Writable("row", _ROW_STATUS_VALUES),
}
LIBVIRT_WRITABLE = {
    oids.LIBVIRT_GUEST_STATE: Writable("state", libvirt_mib.STATE_VALUES),
    oids.LIBVIRT_GUEST_ROW_STATUS: Writable("row", _ROW_STATUS_VALUES),
}

#: (snapshot state, requested state) -> core method
_TRANSITIONS: dict[tuple[int, int], str] = {
    (RUNNING, PAUSED): "suspend",
    (PAUSED, RUNNING): "resume",
    (RUNNING, SHUTDOWN): "shutdown",
    (SHUTOFF, RUNNING): "create",
}


@dataclass(frozen=True)
class Request:
    """One validated varbind: which guest, what it asks."""

    index: int
    dom: DomainSnapshot
    kind: str
    value: int


@dataclass(frozen=True)
class Action:
    """One core call of a committed SET, for the varbind at ``index``."""

    index: int
    uuid: str
    name: str
    methods: tuple[str, ...]  # e.g. ("create",) or ("create", "suspend")


class HvmonSetPlan:
    """A validated SET: :meth:`commit` performs its actions through ``control``.

    Commit rule: the actions run in varbind order. The first one that fails
    raises SetFailure(COMMIT_FAILED, its index) when nothing has changed yet,
    or SetFailure(UNDO_FAILED, its index) when an earlier action of the same
    request already changed a guest: guest state changes are not undone
    (shutting down or destroying a guest cannot be reversed safely), so the
    request is only partly applied and undoFailed says so (RFC 3416 4.2.5).
    """

    def __init__(self, actions: Sequence[Action], control: Connection | None,
                 refresh: Callable[[], None] | None = None) -> None:
        self.actions = tuple(actions)
        self._control = control
        self._refresh = refresh

    def commit(self) -> None:
        changed = False
        try:
            for action in self.actions:
                for method in action.methods:
                    try:
                        if self._control is None:  # pragma: no cover - plan_set refuses first
                            raise HvmonError("the agent has no control connection")
                        dom = self._control.lookup_domain_by_uuid(action.uuid)
                        getattr(dom, method)()
                    except HvmonError as exc:
                        status = ErrorStatus.UNDO_FAILED if changed else ErrorStatus.COMMIT_FAILED
                        log.warning("SET %s on domain %s failed: %s", method, action.name, exc)
                        raise SetFailure(status, action.index, str(exc)) from exc
                    changed = True
                    log.info("SET: %s domain %s", method, action.name)
        finally:
            if changed and self._refresh is not None:
                self._refresh()


def set_failure(status: ErrorStatus, index: int, message: str) -> SetFailure:
    return SetFailure(status, index, message)


def guest_action(reqs: Sequence[Request]) -> Action:
    """The core calls for all varbinds of one guest, or SetFailure(INCONSISTENT_VALUE)."""
    dom = reqs[0].dom
    rows = [r for r in reqs if r.kind == "row"]
    states = [r for r in reqs if r.kind == "state"]
    last = reqs[-1].index
    if len(rows) > 1 or len(states) > 1:
        raise set_failure(ErrorStatus.INCONSISTENT_VALUE, last, "one change per guest and request")
    if rows:
        row = rows[0]
        if row.value == ROW_DESTROY:
            if states:
                raise set_failure(ErrorStatus.INCONSISTENT_VALUE, states[0].index,
                            "destroy cannot be combined with a state")
            if not dom.active:
                raise set_failure(ErrorStatus.INCONSISTENT_VALUE, row.index, "guest is not active")
            return Action(row.index, dom.uuid, dom.name, ("destroy",))
        if row.value == ROW_CREATE_AND_GO:
            if dom.active:
                raise set_failure(ErrorStatus.INCONSISTENT_VALUE, row.index,
                                  "guest is already active")
            methods: tuple[str, ...] = ("create",)
            if states:
                if states[0].value == PAUSED:
                    methods = ("create", "suspend")
                elif states[0].value != RUNNING:
                    raise set_failure(ErrorStatus.INCONSISTENT_VALUE, states[0].index,
                                "a guest starts running or paused")
            return Action(min(r.index for r in reqs), dom.uuid, dom.name, methods)
        raise set_failure(ErrorStatus.INCONSISTENT_VALUE, row.index,
                    "only createAndGo and destroy are supported")
    req = states[0]
    method = _TRANSITIONS.get((dom.state, req.value))
    if method is None:
        raise set_failure(ErrorStatus.INCONSISTENT_VALUE, req.index,
                    f"no transition from state {dom.state} to {req.value}")
    return Action(req.index, dom.uuid, dom.name, (method,))
