"""SET through HvmonView: libvirt-snmp's state transitions, RowStatus, and every refusal.

Commits go through a real ``test:///default`` connection, so the core API and
its central read-only gate decide; "nothing changed" is checked on a fresh
snapshot (domain states and the lifecycle event counters).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence

import pytest

import hvmon
from hvmon.core.errors import OperationFailed
from hvmon.core.snapshot.model import Snapshot
from hvmon.plugins.snmp import oids
from hvmon.plugins.snmp.mibview import HvmonView
from hvmon.plugins.snmp.types import OID, ErrorStatus, SetFailure, Value, VarBind

TEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"
TEST = tuple(uuid.UUID(TEST_UUID).bytes)
OTHER_XML = ("<domain type='test'><name>other</name><memory>1048576</memory>"
             "<os><type>hvm</type></os></domain>")
STATE, ROW = oids.GUEST_STATE, oids.GUEST_ROW_STATUS
LV_STATE, LV_ROW = oids.LIBVIRT_GUEST_STATE, oids.LIBVIRT_GUEST_ROW_STATUS
RUNNING, PAUSED, SHUTDOWN, SHUTOFF = 1, 3, 4, 5
ACTIVE, NOT_IN_SERVICE, NOT_READY, CREATE_AND_GO, CREATE_AND_WAIT, DESTROY = 1, 2, 3, 4, 5, 6


@pytest.fixture
def conn() -> Iterator[hvmon.Connection]:
    """``test:///default`` plus a defined, shut-off domain ``other``."""
    with hvmon.open("test:///default") as connection:
        connection.define_domain_xml(OTHER_XML)
        yield connection


@pytest.fixture
def view(conn: hvmon.Connection) -> HvmonView:
    return HvmonView(conn.get_snapshot, control=conn, libvirt_compat=True)


def other(conn: hvmon.Connection) -> tuple[int, ...]:
    return tuple(uuid.UUID(conn.lookup_domain_by_name("other").uuid).bytes)


def states(conn: hvmon.Connection) -> dict[str, int]:
    return {d.name: int(d.state()[0]) for d in conn.list_all_domains()}


def fingerprint(snap: Snapshot) -> tuple[object, ...]:
    """What a SET could change: each domain's state and id, and the event counters."""
    return (tuple((d.name, d.state, d.id, d.active) for d in snap.domains), dict(snap.events))


def refused(view: HvmonView, varbinds: Sequence[VarBind], *, writable: bool = True
            ) -> SetFailure:
    with pytest.raises(SetFailure) as info:
        view.plan_set(varbinds, writable=writable).commit()
    return info.value


def integer(oid: OID, n: int) -> VarBind:
    return oid, Value.integer(n)


# --- what works -----------------------------------------------------------------

@pytest.mark.parametrize("column", [STATE, LV_STATE])
def test_state_transitions(conn: hvmon.Connection, view: HvmonView, column: OID) -> None:
    view.plan_set([integer(column + TEST, PAUSED)], writable=True).commit()
    assert states(conn)["test"] == PAUSED
    view.plan_set([integer(column + TEST, RUNNING)], writable=True).commit()
    assert states(conn)["test"] == RUNNING
    view.plan_set([integer(column + TEST, SHUTDOWN)], writable=True).commit()
    assert states(conn)["test"] in (SHUTDOWN, SHUTOFF)


def test_shutoff_to_running_starts_the_guest(conn: hvmon.Connection, view: HvmonView) -> None:
    view.plan_set([integer(STATE + other(conn), RUNNING)], writable=True).commit()
    assert states(conn)["other"] == RUNNING


def test_the_table_shows_the_change_after_commit(conn: hvmon.Connection,
                                                 view: HvmonView) -> None:
    before = view.table()
    view.plan_set([integer(STATE + TEST, PAUSED)], writable=True).commit()
    after = view.table()
    assert after.generation > before.generation
    assert after.get(STATE + TEST) == Value.integer(PAUSED)
    assert after.get(LV_STATE + TEST) == Value.integer(PAUSED)


@pytest.mark.parametrize("column", [ROW, LV_ROW])
def test_row_status_destroy_and_create_and_go(conn: hvmon.Connection, view: HvmonView,
                                              column: OID) -> None:
    view.plan_set([integer(column + TEST, DESTROY)], writable=True).commit()
    assert states(conn)["test"] == SHUTOFF
    view.plan_set([integer(column + TEST, CREATE_AND_GO)], writable=True).commit()
    assert states(conn)["test"] == RUNNING


def test_create_and_go_paused(conn: hvmon.Connection, view: HvmonView) -> None:
    o = other(conn)
    plan = view.plan_set([integer(LV_ROW + o, CREATE_AND_GO), integer(LV_STATE + o, PAUSED)],
                         writable=True)
    plan.commit()
    assert states(conn)["other"] == PAUSED


def test_several_guests_in_one_request(conn: hvmon.Connection, view: HvmonView) -> None:
    view.plan_set([integer(STATE + TEST, PAUSED), integer(ROW + other(conn), CREATE_AND_GO)],
                  writable=True).commit()
    assert states(conn) == {"test": PAUSED, "other": RUNNING}


def test_an_empty_set_does_nothing(conn: hvmon.Connection, view: HvmonView) -> None:
    before = fingerprint(conn.get_snapshot(0))
    view.plan_set([], writable=True).commit()
    assert fingerprint(conn.get_snapshot(0)) == before


# --- refusals: status, index, and nothing changed ----------------------------------

CASES = [
    # (name, varbinds(other index) -> list, status, index)
    ("octet string for state", lambda o: [(STATE + TEST, Value.octets("paused"))],
     ErrorStatus.WRONG_TYPE, 0),
    ("gauge for row status", lambda o: [(ROW + TEST, Value.gauge32(6))], ErrorStatus.WRONG_TYPE, 0),
    ("state outside the enum", lambda o: [integer(STATE + TEST, 8)], ErrorStatus.WRONG_VALUE, 0),
    ("negative state", lambda o: [integer(STATE + TEST, -1)], ErrorStatus.WRONG_VALUE, 0),
    ("libvirt enum has no pmsuspended", lambda o: [integer(LV_STATE + TEST, 7)],
     ErrorStatus.WRONG_VALUE, 0),
    ("libvirt enum has no nostate", lambda o: [integer(LV_STATE + TEST, 0)],
     ErrorStatus.WRONG_VALUE, 0),
    ("createAndWait", lambda o: [integer(ROW + o, CREATE_AND_WAIT)], ErrorStatus.WRONG_VALUE, 0),
    ("notReady", lambda o: [integer(ROW + TEST, NOT_READY)], ErrorStatus.WRONG_VALUE, 0),
    ("row status 7", lambda o: [integer(ROW + TEST, 7)], ErrorStatus.WRONG_VALUE, 0),
    ("running to running", lambda o: [integer(STATE + TEST, RUNNING)],
     ErrorStatus.INCONSISTENT_VALUE, 0),
    ("running to shutoff", lambda o: [integer(STATE + TEST, SHUTOFF)],
     ErrorStatus.INCONSISTENT_VALUE, 0),
    ("running to crashed", lambda o: [integer(LV_STATE + TEST, 6)],
     ErrorStatus.INCONSISTENT_VALUE, 0),
    ("shutoff to paused", lambda o: [integer(STATE + o, PAUSED)],
     ErrorStatus.INCONSISTENT_VALUE, 0),
    ("destroy a shut-off guest", lambda o: [integer(ROW + o, DESTROY)],
     ErrorStatus.INCONSISTENT_VALUE, 0),
    ("createAndGo a running guest", lambda o: [integer(ROW + TEST, CREATE_AND_GO)],
     ErrorStatus.INCONSISTENT_VALUE, 0),
    ("row status active", lambda o: [integer(ROW + TEST, ACTIVE)],
     ErrorStatus.INCONSISTENT_VALUE, 0),
    ("row status notInService", lambda o: [integer(ROW + TEST, NOT_IN_SERVICE)],
     ErrorStatus.INCONSISTENT_VALUE, 0),
    ("createAndGo shut down", lambda o: [integer(ROW + o, CREATE_AND_GO),
                                         integer(STATE + o, SHUTDOWN)],
     ErrorStatus.INCONSISTENT_VALUE, 1),
    ("destroy and a state", lambda o: [integer(ROW + TEST, DESTROY), integer(STATE + TEST, PAUSED)],
     ErrorStatus.INCONSISTENT_VALUE, 1),
    ("two states for one guest", lambda o: [integer(STATE + TEST, PAUSED),
                                            integer(LV_STATE + TEST, SHUTDOWN)],
     ErrorStatus.INCONSISTENT_VALUE, 1),
    ("unknown guest", lambda o: [integer(STATE + tuple(uuid.uuid4().bytes), RUNNING)],
     ErrorStatus.NO_CREATION, 0),
    ("createAndGo an unknown guest", lambda o: [integer(LV_ROW + tuple(uuid.uuid4().bytes),
                                                        CREATE_AND_GO)],
     ErrorStatus.NO_CREATION, 0),
    ("index too short", lambda o: [integer(STATE + TEST[:15], RUNNING)],
     ErrorStatus.NO_CREATION, 0),
    ("index with a length prefix", lambda o: [integer(STATE + (16, *TEST), PAUSED)],
     ErrorStatus.NO_CREATION, 0),
    ("index sub-id above 255", lambda o: [integer(STATE + (*TEST[:15], 256), PAUSED)],
     ErrorStatus.NO_CREATION, 0),
    ("read-only column", lambda o: [(oids.GUEST_NAME + TEST, Value.octets("x"))],
     ErrorStatus.NOT_WRITABLE, 0),
    ("libvirt read-only column", lambda o: [integer(oids.LIBVIRT_GUEST_CPU_COUNT + TEST, 4)],
     ErrorStatus.NOT_WRITABLE, 0),
    ("scalar", lambda o: [(oids.HOST_NAME + (0,), Value.octets("x"))],
     ErrorStatus.NOT_WRITABLE, 0),
    ("the column itself", lambda o: [integer(STATE, PAUSED)], ErrorStatus.NOT_WRITABLE, 0),
    ("unknown arc under the root", lambda o: [integer(oids.HVMON_MIB + (9, 9), 1)],
     ErrorStatus.NOT_WRITABLE, 0),
    ("outside the view", lambda o: [((1, 3, 6, 1, 2, 1, 1, 5, 0), Value.octets("x"))],
     ErrorStatus.NO_ACCESS, 0),
    # a good varbind first: the bad second one still stops the whole request
    ("good then wrong type", lambda o: [integer(STATE + TEST, PAUSED),
                                        (ROW + o, Value.octets("go"))],
     ErrorStatus.WRONG_TYPE, 1),
    ("good then unknown guest", lambda o: [integer(ROW + o, CREATE_AND_GO),
                                           integer(STATE + tuple(uuid.uuid4().bytes), PAUSED)],
     ErrorStatus.NO_CREATION, 1),
    ("good then forbidden", lambda o: [integer(STATE + TEST, PAUSED),
                                       integer(STATE + o, SHUTDOWN)],
     ErrorStatus.INCONSISTENT_VALUE, 1),
    ("good then read-only", lambda o: [integer(STATE + TEST, PAUSED),
                                       (oids.POOL_NAME + TEST, Value.octets("x"))],
     ErrorStatus.NOT_WRITABLE, 1),
]


@pytest.mark.parametrize(("varbinds", "status", "index"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_refusals_change_nothing(conn: hvmon.Connection, view: HvmonView, varbinds: object,
                                 status: ErrorStatus, index: int) -> None:
    before = fingerprint(conn.get_snapshot(0))
    failure = refused(view, varbinds(other(conn)))  # type: ignore[operator]
    assert (failure.status, failure.index) == (status, index), str(failure)
    assert fingerprint(conn.get_snapshot(0)) == before


def test_libvirt_columns_are_outside_the_view_without_compat(conn: hvmon.Connection) -> None:
    view = HvmonView(conn.get_snapshot, control=conn)
    failure = refused(view, [integer(LV_STATE + TEST, PAUSED)])
    assert failure.status == ErrorStatus.NO_ACCESS
    assert states(conn)["test"] == RUNNING


@pytest.mark.parametrize("varbind", [integer(STATE + TEST, PAUSED), integer(ROW + TEST, DESTROY),
                                     integer(LV_STATE + TEST, PAUSED),
                                     (oids.GUEST_NAME + TEST, Value.octets("x"))])
def test_a_read_only_request_is_refused(conn: hvmon.Connection, view: HvmonView,
                                        varbind: VarBind) -> None:
    before = fingerprint(conn.get_snapshot(0))
    failure = refused(view, [varbind, integer(STATE + other(conn), RUNNING)], writable=False)
    assert (failure.status, failure.index) == (ErrorStatus.NOT_WRITABLE, 0)
    assert fingerprint(conn.get_snapshot(0)) == before


def test_a_read_only_request_outside_the_view_is_no_access(view: HvmonView) -> None:
    failure = refused(view, [((1, 3, 6, 1, 2, 1, 1, 5, 0), Value.octets("x"))], writable=False)
    assert failure.status == ErrorStatus.NO_ACCESS


def test_without_control_every_set_is_refused(conn: hvmon.Connection) -> None:
    view = HvmonView(conn.get_snapshot)  # control=None
    failure = refused(view, [integer(STATE + TEST, PAUSED)])
    assert (failure.status, failure.index) == (ErrorStatus.NOT_WRITABLE, 0)
    assert states(conn)["test"] == RUNNING


def test_a_read_only_control_connection_is_refused_by_the_central_gate() -> None:
    """The view does not check read-only itself: the core's gate refuses at commit."""
    with hvmon.open_readonly("test:///default") as ro:
        view = HvmonView(ro.get_snapshot, control=ro)
        before = fingerprint(ro.get_snapshot(0))
        plan = view.plan_set([integer(STATE + TEST, PAUSED)], writable=True)
        with pytest.raises(SetFailure) as info:
            plan.commit()
        assert (info.value.status, info.value.index) == (ErrorStatus.COMMIT_FAILED, 0)
        assert "read-only" in str(info.value)
        assert fingerprint(ro.get_snapshot(0)) == before


# --- commit failures ------------------------------------------------------------------

def test_commit_failed_when_nothing_changed(conn: hvmon.Connection, view: HvmonView) -> None:
    plan = view.plan_set([integer(STATE + TEST, PAUSED)], writable=True)
    conn.lookup_domain_by_name("test").suspend()  # the guest changes between plan and commit
    with pytest.raises(SetFailure) as info:
        plan.commit()
    assert (info.value.status, info.value.index) == (ErrorStatus.COMMIT_FAILED, 0)


def test_undo_failed_when_an_earlier_varbind_changed_a_guest(conn: hvmon.Connection,
                                                             view: HvmonView) -> None:
    plan = view.plan_set([integer(STATE + TEST, PAUSED), integer(ROW + other(conn), CREATE_AND_GO)],
                         writable=True)
    conn.lookup_domain_by_name("other").create()  # makes the second action fail
    with pytest.raises(SetFailure) as info:
        plan.commit()
    assert (info.value.status, info.value.index) == (ErrorStatus.UNDO_FAILED, 1)
    assert states(conn)["test"] == PAUSED  # the first change stays: state changes are not undone


def test_no_snapshot_means_resource_unavailable(conn: hvmon.Connection) -> None:
    def source(max_age: float | None) -> Snapshot:
        raise OperationFailed("no snapshot yet")

    view = HvmonView(source, control=conn)
    failure = refused(view, [integer(STATE + TEST, PAUSED)])
    assert failure.status == ErrorStatus.RESOURCE_UNAVAILABLE
    assert states(conn)["test"] == RUNNING
