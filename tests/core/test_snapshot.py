"""The snapshot cache: contents, immutability, refresh rules, staleness, serialisation."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

import pytest

import hvmon
import hvmon.core.snapshot.cache as cache_mod
from hvmon.core.errors import InvalidArgument, OperationFailed, OperationTimeout
from hvmon.core.snapshot import (
    SCHEMA_VERSION,
    NicSnapshot,
    Snapshot,
    SnapshotCache,
    collect_snapshot,
)

TEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"

NODE = """<node>
  <domain type='test'><name>a</name><memory>524288</memory><vcpu>2</vcpu>
    <os><type arch='x86_64' machine='pc'>hvm</type></os></domain>
  <domain type='test'><name>b</name><memory>262144</memory><vcpu>1</vcpu>
    <os><type>hvm</type></os></domain>
</node>"""


def wait_for(predicate, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            pytest.fail("condition not met in time")
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def no_leftover_stats_workers():
    """Wait for stats workers a stalled domain left sleeping (they end with the stall)."""
    before = set(threading.enumerate())
    yield
    for thread in set(threading.enumerate()) - before:
        if thread.name in ("hvmon-stats", "hvmon-snapshot"):
            thread.join(timeout=5)
            assert not thread.is_alive(), f"thread {thread.name} still running"


@pytest.fixture
def node_file(tmp_path: Path) -> Path:
    path = tmp_path / "node.xml"
    path.write_text(NODE)
    return path


@pytest.fixture
def control(tmp_path: Path):
    """A control file and a function that rewrites it atomically."""
    path = tmp_path / "controls.json"
    path.write_text("{}")

    def write(data: dict) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)

    write.path = path  # type: ignore[attr-defined]
    return write


@pytest.fixture
def cache(conn):
    snapshots = SnapshotCache(conn, deadline=1.0)
    yield snapshots
    snapshots.stop()


# --- contents ---------------------------------------------------------------

def test_contents_of_test_default():
    with hvmon.open_readonly("test:///default") as ro:  # the daemon's cache is read-only
        snap = ro.get_snapshot()
    assert snap.schema_version == SCHEMA_VERSION and snap.generation == 1
    assert abs(snap.timestamp - time.time()) < 5 and 0 <= snap.duration < 5
    host = snap.host
    assert (host.uri, host.driver, host.hostname) == ("test:///default", "test",
                                                      socket.gethostname())
    assert (host.cpu_model, host.cpus, host.mhz, host.memory_kib) == ("i686", 16, 1400, 3145728)
    assert (host.numa_nodes, host.sockets, host.cores, host.threads) == (2, 2, 2, 2)
    assert host.arch == "i686" and host.host_uuid and "hvm" in host.guest_os_types
    assert set(host.guest_arches) == {"i686", "x86_64"}
    # 3 GiB of host memory less the running domain's 2 GiB current memory
    assert host.free_memory_kib == 3145728 - 2097152
    assert host.hypervisor_version == "0.0.2"  # libvirt's test driver reports 2 too

    dom = snap.domain("test")
    assert dom is snap.domain(TEST_UUID) and snap.domain("nope") is None
    assert (dom.uuid, dom.name, dom.id, dom.active, dom.persistent, dom.autostart) == (
        TEST_UUID, "test", 1, True, True, False)
    assert (dom.state, dom.reason, dom.state_label, dom.reason_label) == (1, 1, "running",
                                                                          "booted")
    assert (dom.os_type, dom.arch, dom.machine) == ("hvm", "i686", "")
    assert (dom.vcpus, dom.max_vcpus, dom.memory_kib, dom.max_memory_kib) == (
        2, 2, 2097152, 8388608)
    assert dom.stats["cpu.time"] > 0 and dom.stats["block.0.name"] == "vda"
    assert dom.stats["state.state"] == 1 and dom.stats["net.0.name"] == "testnet0"
    assert dom.job.type == 0 and not dom.job.active
    assert not dom.stale and dom.error is None and dom.age == 0.0
    assert dom.nics == (NicSnapshot("aa:bb:cc:dd:ee:ff", "network", "default", "testnet0"),)
    assert dom.nic("testnet0", 5) is dom.nics[0] and dom.nic("vnet9", 1) is None
    assert dom.collected_at == snap.timestamp

    pool = snap.pool("default-pool")
    assert (pool.active, pool.persistent, pool.autostart, pool.state_label) == (
        True, True, False, "running")
    assert pool.capacity == 100 << 30 and pool.allocation == 0
    assert pool.available == 100 << 30 and pool.volume_count == 0 and snap.volumes == ()

    net = snap.network("default")
    assert (net.active, net.persistent, net.autostart, net.bridge, net.forward_mode) == (
        True, True, False, "virbr0", "nat")
    assert net.dhcp_leases == 1 and net.dhcp_range_size == 253
    assert set(snap.events) == {"defined", "undefined", "started", "suspended", "resumed",
                                "stopped", "shutdown", "pmsuspended", "crashed"}


def test_volumes_and_inactive_objects(conn, cache):
    pool = conn.lookup_pool_by_name("default-pool")
    pool.create_volume_xml("<volume><name>d1.img</name><capacity unit='M'>8</capacity></volume>")
    conn.lookup_network_by_name("default").destroy()
    conn.lookup_domain_by_name("test").destroy()
    snap = cache.get()
    (vol,) = snap.pool_volumes("default-pool")
    assert (vol.name, vol.path, vol.type_label) == ("d1.img", "/default-pool/d1.img", "file")
    assert vol.capacity == 8 << 20 and snap.pool("default-pool").volume_count == 1
    assert snap.pool("default-pool").allocation == vol.allocation > 0
    net = snap.network("default")
    assert not net.active and net.dhcp_leases == 0 and net.dhcp_range_size == 253
    dom = snap.domain("test")
    assert (dom.active, dom.id, dom.state_label, dom.reason_label) == (
        False, -1, "shut off", "destroyed")
    assert dom.memory_kib == 2097152 and dom.vcpus == 2 and "cpu.time" not in dom.stats


def test_job_info_from_the_driver(tmp_path, control):
    control({"jobs": {"test": {"total": 1000, "rate": 10}}})
    with hvmon.open_readonly(f"test:///default?control={control.path}") as ro:
        job = ro.get_snapshot().domain("test").job
    assert job.active and job.type == 2 and job.operation == "migration"
    assert job.data_total == 1000 and job.data_remaining <= 1000


def test_redefinition_is_noticed(conn, cache):
    xml = ("<domain type='test'><name>fresh</name><memory>131072</memory><vcpu>1</vcpu>"
           "<os><type arch='x86_64' machine='{m}'>hvm</type></os></domain>")
    conn.define_domain_xml(xml.format(m="pc"))
    first = cache.get(0).domain("fresh")
    assert (first.machine, first.arch, first.active, first.persistent) == (
        "pc", "x86_64", False, True)
    conn.define_domain_xml(xml.format(m="q35"))
    assert cache.get(0).domain("fresh").machine == "q35"
    conn.lookup_domain_by_name("fresh").undefine()
    assert cache.get(0).domain("fresh") is None


# --- immutability and serialisation -----------------------------------------

def test_snapshot_is_immutable(cache):
    snap = cache.get()
    dom = snap.domains[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.generation = 7  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        dom.state = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        dom.stats["cpu.time"] = 0  # type: ignore[index]
    with pytest.raises(TypeError):
        snap.events["started"] = 9  # type: ignore[index]
    assert isinstance(snap.domains, tuple) and isinstance(snap.networks, tuple)


def test_round_trip_through_json(conn, cache):
    conn.lookup_pool_by_name("default-pool").create_volume_xml(
        "<volume><name>v.img</name><capacity unit='M'>1</capacity></volume>")
    snap = cache.get()
    text = json.dumps(snap.to_dict())
    back = Snapshot.from_dict(json.loads(text))
    assert back == snap
    assert back.to_dict() == snap.to_dict()
    assert back.domain("test").stats == snap.domain("test").stats
    assert isinstance(back.domains, tuple) and back.host.guest_arches == snap.host.guest_arches


def test_from_dict_rejects_bad_documents(cache):
    data = cache.get().to_dict()
    with pytest.raises(InvalidArgument, match="schema version 2"):
        Snapshot.from_dict({**data, "schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(InvalidArgument, match="schema_version"):
        Snapshot.from_dict({k: v for k, v in data.items() if k != "schema_version"})
    with pytest.raises(InvalidArgument, match="domains must be a list"):
        Snapshot.from_dict({**data, "domains": "nope"})
    broken = json.loads(json.dumps(data))
    del broken["domains"][0]["uuid"]
    with pytest.raises(InvalidArgument, match=r"domains\[0\] lacks 'uuid'"):
        Snapshot.from_dict(broken)
    broken = json.loads(json.dumps(data))
    broken["domains"][0]["id"] = "one"
    with pytest.raises(InvalidArgument, match=r"domains\[0\]\.id must be int"):
        Snapshot.from_dict(broken)
    with pytest.raises(InvalidArgument):
        Snapshot.from_dict([1, 2])
    # a newer minor revision may add keys: they are ignored
    assert Snapshot.from_dict({**data, "added_later": 1}).generation == data["generation"]


# --- refresh rules ------------------------------------------------------------

def test_max_age_reuse_and_refresh(cache):
    assert cache.current() is None and cache.generation == 0
    first = cache.get()
    assert cache.get() is first and cache.get(max_age=60) is first
    assert cache.generation == first.generation == 1 and cache.current() is first
    fresh = cache.get(max_age=0)
    assert fresh is not first and fresh.generation == 2
    time.sleep(0.06)
    assert cache.get(max_age=0.05).generation == 3
    assert cache.refresh().generation == 4
    assert cache.get().timestamp >= first.timestamp


def test_cache_rejects_bad_settings(conn):
    for kwargs in ({"max_age": -1}, {"interval": 0}, {"deadline": 0}, {"max_age": "soon"}):
        with pytest.raises(InvalidArgument):
            SnapshotCache(conn, **kwargs)
    with pytest.raises(InvalidArgument):
        SnapshotCache(conn).get(max_age=-0.5)


def test_single_flight(conn, monkeypatch):
    calls = []

    def slow_collect(*args, **kwargs):
        calls.append(threading.current_thread().name)
        time.sleep(0.3)
        return collect_snapshot(*args, **kwargs)

    monkeypatch.setattr(cache_mod, "collect_snapshot", slow_collect)
    snapshots = SnapshotCache(conn)
    barrier = threading.Barrier(8)
    results: list[Snapshot] = []

    def ask() -> None:
        barrier.wait()
        results.append(snapshots.get(max_age=0))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    snapshots.stop()
    assert len(calls) == 1 and len(results) == 8
    assert all(r is results[0] for r in results) and snapshots.generation == 1


def test_failed_refresh_reaches_every_waiter(conn, monkeypatch):
    def broken(*args, **kwargs):
        time.sleep(0.1)
        raise OperationFailed("collector broke")

    monkeypatch.setattr(cache_mod, "collect_snapshot", broken)
    snapshots = SnapshotCache(conn)
    errors = []

    def ask() -> None:
        try:
            snapshots.get()
        except OperationFailed as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(errors) == 3 and snapshots.generation == 0 and snapshots.current() is None


def test_background_refresh(conn):
    snapshots = SnapshotCache(conn, interval=0.05)
    seen = []
    snapshots.add_listener(lambda snap: seen.append(snap.generation))
    snapshots.start()
    snapshots.start()  # already running: no second thread
    try:
        wait_for(lambda: snapshots.generation >= 3)
    finally:
        snapshots.stop()
    stopped_at = snapshots.generation
    snapshots.stop()  # idempotent
    time.sleep(0.15)
    assert snapshots.generation == stopped_at
    assert seen == list(range(1, stopped_at + 1))
    assert not [t for t in threading.enumerate() if t.name == "hvmon-snapshot"]


def test_no_interval_means_no_thread(conn):
    snapshots = SnapshotCache(conn)
    snapshots.start()
    assert not [t for t in threading.enumerate() if t.name == "hvmon-snapshot"]
    snapshots.stop()


def test_connection_close_stops_its_cache():
    conn = hvmon.open("test:///default")
    snap = conn.get_snapshot(max_age=60)
    assert conn.get_snapshot(max_age=60) is snap
    assert conn.get_snapshot(max_age=0).generation == 2
    conn.close()


# --- listeners and events -------------------------------------------------------

def test_listener_errors_are_isolated(cache, caplog):
    got = []

    def broken(snap):
        raise RuntimeError("listener bug")

    bad = cache.add_listener(broken)
    good = cache.add_listener(got.append)
    with caplog.at_level(logging.ERROR, logger="hvmon.core.snapshot.cache"):
        snap = cache.refresh()
    assert got == [snap]
    assert any("listener" in r.getMessage() for r in caplog.records)
    cache.remove_listener(bad)
    cache.remove_listener(good)
    cache.refresh()
    assert got == [snap]
    with pytest.raises(InvalidArgument):
        cache.remove_listener(good)


def test_event_counters_advance(conn, cache):
    before = cache.get().events
    dom = conn.lookup_domain_by_name("test")
    dom.suspend()
    paused = cache.get(0)
    assert paused.domain("test").state_label == "paused"
    dom.resume()
    after = cache.get(0).events
    assert after["suspended"] == before["suspended"] + 1
    assert after["resumed"] == before["resumed"] + 1
    assert after["started"] == before["started"]


# --- staleness ------------------------------------------------------------------

def test_stalled_domain_keeps_previous_values(node_file, control):
    uri = f"test://{node_file}?control={control.path}"
    with hvmon.open_readonly(uri) as ro:
        snapshots = SnapshotCache(ro, deadline=0.1)
        good = snapshots.get(0)
        good_b = good.domain("b")
        assert not good_b.stale and good_b.stats["cpu.time"] > 0
        control({"stall": {"b": 0.6}})
        time.sleep(0.05)
        first = snapshots.get(0)
        second = snapshots.get(0)
        snapshots.stop()
    for snap in (first, second):
        b, a = snap.domain("b"), snap.domain("a")
        assert b.stale and "timed out" in b.error and b.error_code == OperationTimeout.code
        assert b.stats == good_b.stats and b.collected_at == good_b.collected_at
        assert b.age == pytest.approx(snap.timestamp - good_b.collected_at)
        assert (b.state, b.memory_kib, b.os_type) == (good_b.state, good_b.memory_kib, "hvm")
        assert not a.stale and a.collected_at == snap.timestamp and a.error is None
        assert a.stats["cpu.time"] >= good.domain("a").stats["cpu.time"]
    assert 0 < first.domain("b").age < second.domain("b").age
    # round trip keeps the staleness marks
    assert Snapshot.from_dict(json.loads(json.dumps(second.to_dict()))) == second


def test_domain_stalled_from_the_start_is_stale_and_empty(node_file):
    with hvmon.open_readonly(f"test://{node_file}?stall=b:0.6") as ro:
        snapshots = SnapshotCache(ro, deadline=0.1)
        snap = snapshots.get()
        snapshots.stop()
    b = snap.domain("b")
    assert b.stale and b.stats == {} and "timed out" in b.error
    assert (b.os_type, b.max_memory_kib, b.max_vcpus) == ("hvm", 262144, 1)
    assert b.age == 0.0 and b.collected_at == snap.timestamp
    assert not snap.domain("a").stale and snap.domain("a").machine == "pc"


def test_failing_domain(control):
    with hvmon.open_readonly("test:///default?fail=test:disk%20gone") as ro:
        snap = SnapshotCache(ro).get()
    dom = snap.domain("test")
    assert dom.stale and dom.stats == {} and "disk gone" in dom.error
    assert dom.error_code == OperationFailed.code

    with hvmon.open_readonly(f"test:///default?control={control.path}") as ro:
        snapshots = SnapshotCache(ro)
        good = snapshots.get().domain("test")
        control({"fail": {"test": "qmp gone"}})
        time.sleep(0.02)
        bad = snapshots.get(0).domain("test")
        control({})
        healed = snapshots.get(0).domain("test")
    assert bad.stale and "qmp gone" in bad.error and bad.stats == good.stats
    assert bad.age > 0
    assert not healed.stale and healed.error is None
    assert healed.stats["cpu.time"] >= good.stats["cpu.time"]


# --- documentation ----------------------------------------------------------------

def test_every_field_is_documented_and_the_example_parses():
    from hvmon.core.snapshot import model

    doc = (Path(__file__).resolve().parents[2] / "docs" / "snapshot.md").read_text()
    classes = (model.Snapshot, model.HostFacts, model.DomainSnapshot, model.JobSnapshot,
               model.PoolSnapshot, model.VolumeSnapshot, model.NetworkSnapshot)
    missing = [f"{cls.__name__}.{f.name}" for cls in classes for f in dataclasses.fields(cls)
               if f.init and f"`{f.name}`" not in doc]
    assert not missing, f"fields missing from docs/snapshot.md: {missing}"
    assert f"SCHEMA_VERSION = {SCHEMA_VERSION}" in doc
    example = doc.split("```json", 1)[1].split("```", 1)[0]
    snap = Snapshot.from_dict(json.loads(example))
    assert snap.domain("test").stats["block.0.name"] == "vda"


NICS_XML = """<domain type="test"><name>nics</name><memory>1024</memory>
  <os><type>hvm</type></os><devices>
    <interface type="bridge"><mac address="52:54:00:AA:00:01"/><source bridge="br0"/>
      <model type="virtio"/></interface>
    <interface type="direct"><mac address="52:54:00:aa:00:02"/>
      <source dev="eth0" mode="vepa"/></interface>
    <interface type="user"><mac address="52:54:00:aa:00:03"/></interface>
  </devices></domain>"""


def collect(conn: hvmon.Connection, previous: Snapshot | None = None,
            changed: frozenset[str] | None = None) -> Snapshot:
    return collect_snapshot(conn, previous=previous, generation=1 if previous is None else 2,
                            deadline=5.0, changed=changed)


def test_nics_come_from_the_xml_and_follow_a_redefinition() -> None:
    with hvmon.open("test:///default") as conn:
        conn.define_domain_xml(NICS_XML)
        nics = collect(conn).domain("nics").nics
        assert [(n.mac, n.source_type, n.source, n.target, n.model) for n in nics] == [
            ("52:54:00:aa:00:01", "bridge", "br0", "", "virtio"),
            ("52:54:00:aa:00:02", "direct", "eth0", "", ""),
            ("52:54:00:aa:00:03", "user", "", "", "")]
        # an inactive domain's NICs have no target: the index finds them
        assert nics[0].mac == "52:54:00:aa:00:01"
        snap = collect(conn)
        assert snap.domain("nics").nic("", 1) is snap.domain("nics").nics[1]
        conn.define_domain_xml(NICS_XML.replace('bridge="br0"', 'bridge="br1"'))
        again = collect(conn, previous=snap, changed=frozenset({snap.domain("nics").uuid}))
        assert again.domain("nics").nics[0].source == "br1"
        assert Snapshot.from_dict(again.to_dict()) == again
