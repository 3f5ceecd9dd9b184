"""Bulk statistics: libvirt key names, live values, per-domain deadlines."""

from __future__ import annotations

import time

import pytest

import hvmon
from hvmon.core import stats as stats_mod

NODE = """<node>
  <domain type='test'><name>a</name><memory>524288</memory><vcpu>2</vcpu>
    <os><type>hvm</type></os>
    <devices><disk type='file' device='disk'><source file='/a.img'/>
      <target dev='vda' bus='virtio'/></disk>
      <interface type='network'><mac address='52:54:00:00:00:0a'/>
        <source network='default'/></interface></devices></domain>
  <domain type='test'><name>b</name><memory>524288</memory><vcpu>1</vcpu>
    <os><type>hvm</type></os></domain>
  <domain type='test'><name>c</name><memory>524288</memory><vcpu>1</vcpu>
    <os><type>hvm</type></os></domain>
</node>"""


@pytest.fixture()
def node_file(tmp_path):
    path = tmp_path / "node.xml"
    path.write_text(NODE)
    return path


def by_name(results):
    return {r.domain.name: r for r in results}


def test_keys_follow_libvirt(node_file):
    with hvmon.open(f"test://{node_file}?clock=manual") as conn:
        conn.driver.state.clock.advance(60)
        rec = by_name(conn.get_all_domain_stats())["a"]
    s = rec.stats
    assert rec.ok
    for key in ("state.state", "state.reason", "cpu.time", "cpu.user", "cpu.system",
                "balloon.current", "balloon.maximum", "balloon.rss", "balloon.usable",
                "balloon.last-update", "vcpu.current", "vcpu.maximum", "vcpu.0.state",
                "vcpu.0.time", "vcpu.1.wait", "vcpu.1.delay", "net.count", "net.0.name",
                "net.0.rx.bytes", "net.0.rx.pkts", "net.0.rx.errs", "net.0.rx.drop",
                "net.0.tx.bytes", "block.count", "block.0.name", "block.0.path",
                "block.0.rd.reqs", "block.0.rd.bytes", "block.0.rd.times", "block.0.wr.bytes",
                "block.0.fl.reqs", "block.0.allocation", "block.0.capacity", "block.0.physical"):
        assert key in s, key
    assert s["state.state"] == 1 and s["vcpu.maximum"] == 2 and s["balloon.maximum"] == 524288
    assert s["block.0.name"] == "vda" and s["block.0.path"] == "/a.img"
    assert s["net.0.name"] == "vnet0"
    assert s["cpu.time"] == s["cpu.user"] + s["cpu.system"]


def test_groups_select_keys(conn=None):
    with hvmon.open("test:///default") as conn:
        s = conn.get_all_domain_stats(groups=["state", "vcpu"])[0].stats
        assert set(k.split(".")[0] for k in s) == {"state", "vcpu"}
        with pytest.raises(hvmon.InvalidArgument, match="unknown stats group"):
            conn.get_all_domain_stats(groups=["bogus"])


def test_counters_advance_with_the_clock_and_are_deterministic(node_file):
    def sample(seed, seconds):
        with hvmon.open(f"test://{node_file}?clock=manual&seed={seed}") as conn:
            out = []
            for step in seconds:
                conn.driver.state.clock.set(step)
                out.append(by_name(conn.get_all_domain_stats(groups=["cpu-total", "block"]))["a"]
                           .stats)
            return out

    first = sample(1, [10, 20, 30])
    assert first == sample(1, [10, 20, 30])
    assert first != sample(2, [10, 20, 30])
    cpu = [s["cpu.time"] for s in first]
    rd = [s["block.0.rd.bytes"] for s in first]
    assert cpu[0] < cpu[1] < cpu[2]
    assert rd[0] < rd[1] < rd[2]


def test_paused_domain_counters_stop(node_file):
    with hvmon.open(f"test://{node_file}?clock=manual") as conn:
        dom = conn.lookup_domain_by_name("b")
        dom.suspend()
        before = conn.get_all_domain_stats(domains=[dom])[0].stats["cpu.time"]
        conn.driver.state.clock.advance(100)
        after = conn.get_all_domain_stats(domains=[dom])[0].stats
        assert after["cpu.time"] == before and after["state.state"] == 3
        dom.destroy()
        inactive = conn.get_all_domain_stats(domains=[dom])[0].stats
        assert inactive["state.state"] == 5 and "cpu.time" not in inactive


def test_inactive_and_active_filter(node_file):
    with hvmon.open(f"test://{node_file}") as conn:
        conn.lookup_domain_by_name("c").destroy()
        names = [r.domain.name for r in conn.get_all_domain_stats(active=True)]
        assert sorted(names) == ["a", "b"]


def test_stalled_domain_times_out_alone(node_file):
    with hvmon.open(f"test://{node_file}?stall=b:30") as conn:
        t0 = time.monotonic()
        results = by_name(conn.get_all_domain_stats(deadline=0.5))
        elapsed = time.monotonic() - t0
    assert elapsed < 5
    assert isinstance(results["b"].error, hvmon.OperationTimeout)
    assert "timed out" in str(results["b"].error) and results["b"].stats == {}
    assert results["a"].ok and results["c"].ok
    assert results["a"].stats["state.state"] == 1


def test_failing_domain_reports_its_error_only(node_file):
    with hvmon.open(f"test://{node_file}?fail=a:disk%20on%20fire") as conn:
        results = by_name(conn.get_all_domain_stats())
    assert isinstance(results["a"].error, hvmon.OperationFailed)
    assert "disk on fire" in str(results["a"].error)
    assert results["b"].ok and results["c"].ok


def test_collect_keeps_order_and_survives_many_stalls():
    def fetch(i):
        if i % 50 == 7:
            time.sleep(2)
        if i == 3:
            raise RuntimeError("bug")
        return {"i": i}

    out = stats_mod.collect(list(range(300)), fetch, deadline=0.3, workers=2, chunk=32)
    assert len(out) == 300
    assert out[0] == {"i": 0} and out[299] == {"i": 299}
    assert isinstance(out[3], hvmon.HvmonError) and "bug" in str(out[3])
    timeouts = [i for i, v in enumerate(out) if isinstance(v, hvmon.OperationTimeout)]
    assert timeouts == [7, 57, 107, 157, 207, 257]
