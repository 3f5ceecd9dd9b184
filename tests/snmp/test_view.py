"""HvmonView reads: every value from the snapshot, in the MIB's types and units.

The expected cells are written out here from the snapshot fields (an oracle
independent of the builder), on ``test:///default`` and on a node file from
``benchmarks/nodegen.py``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import hvmon
from hvmon.core.api import DomainEvent
from hvmon.core.errors import OperationFailed
from hvmon.core.events import LifecycleEvent
from hvmon.core.snapshot.model import Snapshot
from hvmon.plugins.snmp import oids
from hvmon.plugins.snmp.mibview import HvmonView
from hvmon.plugins.snmp.table import OidTable
from hvmon.plugins.snmp.tablebuild import TableBuilder, _value, build_table
from hvmon.plugins.snmp.types import (
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    OID,
    Tag,
    Value,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"
#: cells that depend on the clock, not only on the snapshot
CLOCK_CELLS = {oids.HOST_AGENT_UPTIME + (0,), oids.HOST_SNAPSHOT_AGE + (0,)}


def idx(text: str) -> OID:
    return tuple(uuid.UUID(text).bytes)


def fixed(snap: Snapshot) -> Callable[[float | None], Snapshot]:
    return lambda max_age: snap


def cells(table: OidTable) -> dict[OID, tuple[Tag, object]]:
    return {oid: (v.tag, v.data) for oid, v in zip(table.oids, table.values, strict=True)
            if oid not in CLOCK_CELLS}


def truth(flag: bool) -> tuple[Tag, int]:
    return Tag.INTEGER, 1 if flag else 2


def expected(snap: Snapshot, *, compat: bool = False) -> dict[OID, tuple[Tag, object]]:
    """Every cell the MIB should show for ``snap``, straight from the snapshot fields."""
    h = snap.host
    out: dict[OID, tuple[Tag, object]] = {}

    def scalar(oid: OID, tag: Tag, data: object) -> None:
        out[oid + (0,)] = (tag, data)

    scalar(oids.HOST_NAME, Tag.OCTET_STRING, h.hostname.encode())
    scalar(oids.HOST_HYPERVISOR_TYPE, Tag.OCTET_STRING, h.driver.encode())
    if h.hypervisor_version:
        scalar(oids.HOST_HYPERVISOR_VERSION, Tag.OCTET_STRING, h.hypervisor_version.encode())
    scalar(oids.HOST_CPU_MODEL, Tag.OCTET_STRING, h.cpu_model.encode())
    scalar(oids.HOST_CPUS, Tag.GAUGE32, h.cpus)
    scalar(oids.HOST_CPU_MHZ, Tag.GAUGE32, h.mhz)
    scalar(oids.HOST_MEMORY_TOTAL, Tag.GAUGE32, h.memory_kib)
    if h.free_memory_kib is not None:
        scalar(oids.HOST_MEMORY_FREE, Tag.GAUGE32, h.free_memory_kib)
    scalar(oids.HOST_SNAPSHOT_GENERATION, Tag.COUNTER32, snap.generation)
    scalar(oids.HOST_DOMAINS, Tag.GAUGE32, len(snap.domains))
    for state, oid in enumerate(oids.HOST_DOMAINS_BY_STATE):
        scalar(oid, Tag.GAUGE32, sum(d.state == state for d in snap.domains))
    scalar(oids.HOST_DOMAINS_STALE, Tag.GAUGE32, sum(d.stale for d in snap.domains))

    for d in snap.domains:
        i = idx(d.uuid)
        out[oids.GUEST_NAME + i] = (Tag.OCTET_STRING, d.name.encode())
        out[oids.GUEST_STATE + i] = (Tag.INTEGER, d.state)
        out[oids.GUEST_STATE_REASON + i] = (Tag.INTEGER, d.reason)
        out[oids.GUEST_VCPUS + i] = (Tag.GAUGE32, d.vcpus)
        out[oids.GUEST_MEMORY_CURRENT + i] = (Tag.GAUGE32, d.memory_kib)
        out[oids.GUEST_MEMORY_LIMIT + i] = (Tag.GAUGE32, d.max_memory_kib)
        if "cpu.time" in d.stats:
            out[oids.GUEST_CPU_TIME + i] = (Tag.COUNTER64, d.stats["cpu.time"])
        out[oids.GUEST_AUTOSTART + i] = truth(d.autostart)
        out[oids.GUEST_PERSISTENT + i] = truth(d.persistent)
        out[oids.GUEST_ROW_STATUS + i] = (Tag.INTEGER, 1 if d.active else 2)
        out[oids.GUEST_ID + i] = (Tag.INTEGER, d.id)
        out[oids.GUEST_STALE + i] = truth(d.stale)
        out[oids.GUEST_STATS_AGE + i] = (Tag.GAUGE32, int(d.age * 1000))
        for n in range(int(d.stats.get("block.count", 0))):
            j, s = (*i, n), f"block.{n}."
            out[oids.DISK_TARGET + j] = (Tag.OCTET_STRING, d.stats[s + "name"].encode())
            if s + "path" in d.stats:
                out[oids.DISK_PATH + j] = (Tag.OCTET_STRING, d.stats[s + "path"].encode())
            for column, key in ((oids.DISK_CAPACITY, "capacity"),
                                (oids.DISK_READ_BYTES, "rd.bytes"),
                                (oids.DISK_WRITE_BYTES, "wr.bytes"),
                                (oids.DISK_READ_REQUESTS, "rd.reqs"),
                                (oids.DISK_WRITE_REQUESTS, "wr.reqs")):
                if s + key in d.stats:
                    out[column + j] = (Tag.COUNTER64, d.stats[s + key])
        for n in range(int(d.stats.get("net.count", 0))):
            j, s = (*i, n), f"net.{n}."
            out[oids.IF_TARGET + j] = (Tag.OCTET_STRING, d.stats[s + "name"].encode())
            nic = next((x for x in d.nics if x.target == d.stats[s + "name"]), None)
            if nic is not None:
                out[oids.IF_MAC + j] = (Tag.OCTET_STRING, bytes.fromhex(nic.mac.replace(":", "")))
                out[oids.IF_NETWORK + j] = (Tag.OCTET_STRING, nic.source.encode())
            for column, key in ((oids.IF_RX_BYTES, "rx.bytes"), (oids.IF_RX_PACKETS, "rx.pkts"),
                                (oids.IF_RX_ERRORS, "rx.errs"), (oids.IF_RX_DROPS, "rx.drop"),
                                (oids.IF_TX_BYTES, "tx.bytes"), (oids.IF_TX_PACKETS, "tx.pkts"),
                                (oids.IF_TX_ERRORS, "tx.errs"), (oids.IF_TX_DROPS, "tx.drop")):
                if s + key in d.stats:
                    out[column + j] = (Tag.COUNTER64, d.stats[s + key])
        if compat:
            out[oids.LIBVIRT_GUEST_NAME + i] = (Tag.OCTET_STRING, d.name.encode())
            out[oids.LIBVIRT_GUEST_STATE + i] = (Tag.INTEGER, d.state)
            out[oids.LIBVIRT_GUEST_CPU_COUNT + i] = (Tag.GAUGE32, d.vcpus)
            out[oids.LIBVIRT_GUEST_MEMORY_CURRENT + i] = (Tag.GAUGE32, d.memory_kib // 1024)
            out[oids.LIBVIRT_GUEST_MEMORY_LIMIT + i] = (Tag.GAUGE32, d.max_memory_kib // 1024)
            if "cpu.time" in d.stats:
                out[oids.LIBVIRT_GUEST_CPU_TIME + i] = (Tag.COUNTER64, d.stats["cpu.time"])
            out[oids.LIBVIRT_GUEST_ROW_STATUS + i] = (Tag.INTEGER, 1)

    for p in snap.pools:
        i = idx(p.uuid)
        out[oids.POOL_NAME + i] = (Tag.OCTET_STRING, p.name.encode())
        out[oids.POOL_STATE + i] = (Tag.INTEGER, p.state)
        out[oids.POOL_CAPACITY + i] = (Tag.COUNTER64, p.capacity)
        out[oids.POOL_ALLOCATION + i] = (Tag.COUNTER64, p.allocation)
        out[oids.POOL_AVAILABLE + i] = (Tag.COUNTER64, p.available)
        out[oids.POOL_AUTOSTART + i] = truth(p.autostart)
        out[oids.POOL_PERSISTENT + i] = truth(p.persistent)
        out[oids.POOL_VOLUMES + i] = (Tag.GAUGE32, p.volume_count)
        for n, v in enumerate(snap.pool_volumes(p.name), 1):
            j = (*i, n)  # a fresh view numbers a pool's volumes in snapshot order
            out[oids.VOLUME_NAME + j] = (Tag.OCTET_STRING, v.name.encode())
            out[oids.VOLUME_POOL + j] = (Tag.OCTET_STRING, v.pool.encode())
            out[oids.VOLUME_PATH + j] = (Tag.OCTET_STRING, v.path.encode())
            out[oids.VOLUME_TYPE + j] = (Tag.INTEGER, v.type)
            out[oids.VOLUME_CAPACITY + j] = (Tag.COUNTER64, v.capacity)
            out[oids.VOLUME_ALLOCATION + j] = (Tag.COUNTER64, v.allocation)
    for net in snap.networks:
        i = idx(net.uuid)
        out[oids.NETWORK_NAME + i] = (Tag.OCTET_STRING, net.name.encode())
        out[oids.NETWORK_ACTIVE + i] = truth(net.active)
        out[oids.NETWORK_PERSISTENT + i] = truth(net.persistent)
        out[oids.NETWORK_AUTOSTART + i] = truth(net.autostart)
        out[oids.NETWORK_BRIDGE + i] = (Tag.OCTET_STRING, net.bridge.encode())
        out[oids.NETWORK_FORWARD_MODE + i] = (Tag.OCTET_STRING, net.forward_mode.encode())
        out[oids.NETWORK_DHCP_LEASES + i] = (Tag.GAUGE32, net.dhcp_leases)
        out[oids.NETWORK_DHCP_RANGE_SIZE + i] = (Tag.GAUGE32, net.dhcp_range_size)
    return out


@pytest.fixture
def nodefile(tmp_path: Path) -> Path:
    """A node file with 40 domains from benchmarks/nodegen.py (with a pool holding a volume)."""
    spec = importlib.util.spec_from_file_location("nodegen", REPO_ROOT / "benchmarks/nodegen.py")
    assert spec is not None and spec.loader is not None
    nodegen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nodegen)
    return nodegen.write_node(tmp_path / "node.xml", 40)


@pytest.fixture
def default_snap() -> Iterator[Snapshot]:
    with hvmon.open_readonly("test:///default") as conn:
        yield conn.get_snapshot()


# --- values -------------------------------------------------------------------

@pytest.mark.parametrize("compat", [False, True])
def test_values_equal_the_snapshot_on_the_default_host(default_snap: Snapshot,
                                                       compat: bool) -> None:
    view = HvmonView(fixed(default_snap), libvirt_compat=compat)
    assert cells(view.table()) == expected(default_snap, compat=compat)


def test_values_equal_the_snapshot_on_a_generated_node(nodefile: Path) -> None:
    with hvmon.open_readonly(f"test://{nodefile}") as conn:
        snap = conn.get_snapshot()
    assert len(snap.domains) == 40 and snap.volumes
    table = HvmonView(fixed(snap), libvirt_compat=True).table()
    assert cells(table) == expected(snap, compat=True)
    assert table.get(oids.HOST_DOMAINS + (0,)) == Value.gauge32(40)


def test_rows_are_in_oid_order_and_the_table_is_complete(default_snap: Snapshot) -> None:
    table = HvmonView(fixed(default_snap), libvirt_compat=True).table()
    assert table.oids == sorted(table.oids)
    # the same content through OidTable's own sorting constructor
    again = OidTable(zip(table.oids, table.values, strict=True), table.objects)
    assert again.oids == table.oids and again.values == table.values


def test_clock_cells(default_snap: Snapshot) -> None:
    started = time.monotonic() - 12.5
    table = HvmonView(fixed(default_snap), started=started).table()
    uptime = table.get(oids.HOST_AGENT_UPTIME + (0,))
    assert uptime.tag == Tag.TIMETICKS and 1250 <= uptime.data < 1250 + 500  # type: ignore[operator]
    age = table.get(oids.HOST_SNAPSHOT_AGE + (0,))
    assert age.tag == Tag.GAUGE32 and 0 <= age.data <= default_snap.age() * 1000 + 1  # type: ignore[operator]


def test_fast_value_constructor_makes_equal_values() -> None:
    for tag, data in ((Tag.COUNTER64, 2**63), (Tag.OCTET_STRING, b"vda")):
        made = _value(tag, data)
        assert made == Value(tag, data) and hash(made) == hash(Value(tag, data))
        with pytest.raises(dataclasses.FrozenInstanceError):
            made.data = 1  # type: ignore[misc]


# --- what is absent ---------------------------------------------------------------

def test_no_such_object_versus_no_such_instance(default_snap: Snapshot) -> None:
    i = idx(TEST_UUID)
    table = HvmonView(fixed(default_snap)).table()
    # objects the view implements, instances it does not have
    assert table.get(oids.HOST_NAME + (1,)) == NO_SUCH_INSTANCE
    host = dataclasses.replace(default_snap.host, hypervisor_version="")
    no_version = HvmonView(fixed(dataclasses.replace(default_snap, host=host))).table()
    assert no_version.get(oids.HOST_HYPERVISOR_VERSION + (0,)) == NO_SUCH_INSTANCE
    assert table.get(oids.HOST_HYPERVISOR_VERSION + (0,)) == Value(Tag.OCTET_STRING, b"0.0.2")
    assert table.get(oids.GUEST_NAME + idx(str(uuid.uuid4()))) == NO_SUCH_INSTANCE
    assert table.get(oids.GUEST_NAME + i[:8]) == NO_SUCH_INSTANCE
    assert table.get(oids.IF_MAC + (*i, 0)) == Value(Tag.OCTET_STRING,
                                                     bytes.fromhex("aabbccddeeff"))
    assert table.get(oids.IF_NETWORK + (*i, 0)) == Value(Tag.OCTET_STRING, b"default")
    assert table.get(oids.IF_MAC + (*i, 1)) == NO_SUCH_INSTANCE  # one NIC
    # not objects of the view: index columns, notify-only objects, unknown arcs, other MIBs
    assert table.get(oids.GUEST_UUID + i) == NO_SUCH_OBJECT
    assert table.get(oids.NOTIF_EVENT_TYPE + (0,)) == NO_SUCH_OBJECT
    assert table.get(oids.HOST + (99, 0)) == NO_SUCH_OBJECT
    assert table.get(oids.LIBVIRT_GUEST_NAME + i) == NO_SUCH_OBJECT  # compat off
    compat = HvmonView(fixed(default_snap), libvirt_compat=True).table()
    assert compat.get(oids.LIBVIRT_GUEST_NAME + i).data == b"test"
    assert compat.get(oids.LIBVIRT_GUEST_UUID + i) == NO_SUCH_OBJECT  # accessible-for-notify


def test_missing_stats_leave_cells_out_instead_of_zero() -> None:
    """A domain never collected (stats fail at once): no CPU time, no disk or NIC rows."""
    with hvmon.open_readonly("test:///default?fail=test:disk%20gone") as conn:
        snap = conn.get_snapshot()
    dom = snap.domain("test")
    assert dom is not None and dom.stale and not dom.stats
    i = idx(TEST_UUID)
    table = HvmonView(fixed(snap), libvirt_compat=True).table()
    assert cells(table) == expected(snap, compat=True)
    assert table.get(oids.GUEST_CPU_TIME + i) == NO_SUCH_INSTANCE
    assert table.get(oids.LIBVIRT_GUEST_CPU_TIME + i) == NO_SUCH_INSTANCE
    start, stop = table.within(oids.DISK_TABLE)
    assert start == stop
    assert table.get(oids.GUEST_STALE + i) == Value.integer(1)
    assert table.get(oids.HOST_DOMAINS_STALE + (0,)) == Value.gauge32(1)


def test_unknown_free_memory_is_absent(default_snap: Snapshot) -> None:
    host = dataclasses.replace(default_snap.host, free_memory_kib=None)
    snap = dataclasses.replace(default_snap, host=host)
    table = HvmonView(fixed(snap)).table()
    assert table.get(oids.HOST_MEMORY_FREE + (0,)) == NO_SUCH_INSTANCE


def test_stale_domain_keeps_its_last_values(tmp_path: Path) -> None:
    control = tmp_path / "controls.json"
    control.write_text("{}")
    with hvmon.open_readonly(f"test:///default?control={control}") as conn:
        first = conn.get_snapshot(0)
        staging = tmp_path / "controls.tmp"
        staging.write_text(json.dumps({"fail": {"test": "monitor gone"}}))
        staging.rename(control)
        second = conn.get_snapshot(0)
    dom = second.domain("test")
    assert dom is not None and dom.stale
    view = HvmonView(fixed(second))
    i = idx(TEST_UUID)
    assert cells(view.table()) == expected(second)
    assert view.table().get(oids.GUEST_CPU_TIME + i).data == first.domain("test").stats["cpu.time"]  # type: ignore[union-attr]
    assert view.table().get(oids.GUEST_STALE + i) == Value.integer(1)


def test_long_names_are_cut_on_a_character_boundary(default_snap: Snapshot) -> None:
    dom = default_snap.domains[0]
    name = "é" * 200  # 400 octets in UTF-8
    snap = dataclasses.replace(default_snap, domains=(dataclasses.replace(dom, name=name),))
    value = HvmonView(fixed(snap)).table().get(oids.GUEST_NAME + idx(dom.uuid))
    assert value.data == ("é" * 127).encode()  # 254 octets: the 128th would cross 255


# --- generations ---------------------------------------------------------------------

def test_table_is_rebuilt_only_for_a_new_generation(
        default_snap: Snapshot, monkeypatch: pytest.MonkeyPatch) -> None:
    current = [default_snap]
    view = HvmonView(lambda max_age: current[0])
    builds: list[int] = []
    real = TableBuilder.build

    def counting(self: TableBuilder, snap: Snapshot, **kw: int) -> object:
        builds.append(snap.generation)
        return real(self, snap, **kw)

    monkeypatch.setattr(TableBuilder, "build", counting)
    first = view.table()
    assert view.table() is first and builds == [default_snap.generation]
    assert first.generation == default_snap.generation
    current[0] = dataclasses.replace(default_snap, generation=default_snap.generation + 1)
    second = view.table()
    assert second is not first and second.generation == default_snap.generation + 1
    assert builds == [default_snap.generation, default_snap.generation + 1]


def test_source_failure_serves_the_last_table(default_snap: Snapshot) -> None:
    answers: list[Snapshot | Exception] = [OperationFailed("no host yet")]

    def source(max_age: float | None) -> Snapshot:
        answer = answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    view = HvmonView(source)
    empty = view.table()
    assert len(empty) == 0 and empty.get(oids.HOST_NAME + (0,)) == NO_SUCH_INSTANCE
    answers[0] = default_snap
    good = view.table()
    assert len(good) > 0
    answers[0] = OperationFailed("driver went away")
    assert view.table() is good


def test_max_age_is_passed_to_the_source(default_snap: Snapshot) -> None:
    asked: list[float | None] = []
    view = HvmonView(lambda max_age: asked.append(max_age) or default_snap, max_age=2.5)
    view.table()
    assert asked == [2.5]


def test_volume_index_stays_while_the_agent_runs(nodefile: Path) -> None:
    with hvmon.open(f"test://{nodefile}") as conn:
        before = conn.get_snapshot(0)
        pool = conn.lookup_pool_by_name("bench-pool")
        view = HvmonView(conn.get_snapshot)
        pool_idx = idx(pool.uuid)
        assert view.table().get(oids.VOLUME_NAME + (*pool_idx, 1)).data == b"base.img"
        pool.create_volume_xml("<volume><name>aaa.img</name>"
                               "<capacity unit='bytes'>1048576</capacity></volume>")
        after = conn.get_snapshot(0)
        assert after.generation > before.generation
        table = view.table()
    # the new volume sorts first by name but gets the next number; base.img keeps 1
    assert table.get(oids.VOLUME_NAME + (*pool_idx, 1)).data == b"base.img"
    assert table.get(oids.VOLUME_NAME + (*pool_idx, 2)).data == b"aaa.img"


def test_roots() -> None:
    source = fixed(None)  # type: ignore[arg-type]
    assert HvmonView(source).roots == (oids.HVMON_MIB,)
    assert HvmonView(source, libvirt_compat=True).roots == (oids.HVMON_MIB, oids.LIBVIRT_MIB)
    assert oids.HVMON_MIB == (1, 3, 6, 1, 4, 1, 32473)


def test_build_table_helper(default_snap: Snapshot) -> None:
    built = build_table(default_snap, libvirt_compat=True)
    assert built.snapshot is default_snap and idx(TEST_UUID) in built.domains


# --- notifications ---------------------------------------------------------------------

@pytest.mark.parametrize(("event", "detail", "state", "reason", "row_status"), [
    (LifecycleEvent.STARTED, 0, 1, 1, 1),  # booted
    (LifecycleEvent.SUSPENDED, 0, 3, 1, 1),  # paused by the user
    (LifecycleEvent.RESUMED, 0, 1, 5, 1),  # unpaused
    (LifecycleEvent.STOPPED, 1, 5, 2, 2),  # destroyed
    (LifecycleEvent.SHUTDOWN, 0, 4, 0, 2),
    (LifecycleEvent.CRASHED, 0, 6, 1, 2),  # panicked
    (LifecycleEvent.UNDEFINED, 0, 5, 0, 2),
])
def test_notification_varbinds(event: LifecycleEvent, detail: int, state: int, reason: int,
                               row_status: int) -> None:
    with hvmon.open("test:///default") as conn:
        view = HvmonView(conn.get_snapshot, libvirt_compat=True)
        dom = conn.lookup_domain_by_name("test")
        notes = view.notifications(DomainEvent(dom, event, detail, time.time()))
    i = idx(TEST_UUID)
    uuid16 = uuid.UUID(TEST_UUID).bytes
    assert notes[0] == (oids.GUEST_NOTIF, [
        (oids.GUEST_NAME + i, Value.octets("test")),
        (oids.NOTIF_GUEST_UUID + (0,), Value.octets(uuid16)),
        (oids.GUEST_STATE + i, Value.integer(state)),
        (oids.GUEST_STATE_REASON + i, Value.integer(reason)),
        (oids.NOTIF_EVENT_TYPE + (0,), Value.integer(int(event))),
        (oids.NOTIF_EVENT_DETAIL + (0,), Value.integer(detail)),
    ])
    # libvirt-snmp's libvirtGuestNotif: instance .0, row status from the state
    assert notes[1] == (oids.LIBVIRT_GUEST_NOTIF, [
        (oids.LIBVIRT_GUEST_NAME + (0,), Value.octets("test")),
        (oids.LIBVIRT_GUEST_UUID + (0,), Value.octets(uuid16)),
        (oids.LIBVIRT_GUEST_STATE + (0,), Value.integer(state)),
        (oids.LIBVIRT_GUEST_ROW_STATUS + (0,), Value.integer(row_status)),
    ])


def test_defined_event_takes_the_state_from_the_snapshot() -> None:
    with hvmon.open("test:///default") as conn:
        view = HvmonView(conn.get_snapshot)
        view.table()
        dom = conn.lookup_domain_by_name("test")
        (trap, varbinds), = view.notifications(
            DomainEvent(dom, LifecycleEvent.DEFINED, 1, time.time()))
    assert trap == oids.GUEST_NOTIF
    assert varbinds[2] == (oids.GUEST_STATE + idx(TEST_UUID), Value.integer(1))  # running


def test_notification_for_a_real_event() -> None:
    """The event a lifecycle change delivers becomes hvmonGuestNotif (compat off: one only)."""
    with hvmon.open("test:///default") as conn:
        view = HvmonView(conn.get_snapshot)
        events: list[DomainEvent] = []
        conn.domain_event_register(events.append)
        conn.lookup_domain_by_name("test").destroy()
        assert [e.event for e in events] == [LifecycleEvent.STOPPED]
        notes = view.notifications(events[0])
    assert [trap for trap, _ in notes] == [oids.GUEST_NOTIF]
    assert notes[0][1][2] == (oids.GUEST_STATE + idx(TEST_UUID), Value.integer(5))
