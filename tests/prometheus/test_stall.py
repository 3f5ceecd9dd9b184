"""A domain whose statistics stall: the scrape stays fast and complete, the domain is marked."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import hvmon
from hvmon.core.snapshot.cache import SnapshotCache
from hvmon.plugins.prometheus.scrape import Scraper

from .conftest import TEST_UUID, ServeFactory, family_names, fetch

#: long against the 0.3 s deadline, short enough to wait out at teardown
STALL = 2.5
WEB1_XML = """<domain type='test'>
  <name>web1</name>
  <memory unit='KiB'>1048576</memory>
  <vcpu>1</vcpu>
  <os><type arch='i686'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <source file='/guest/web1.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'><source network='default'/></interface>
  </devices>
</domain>"""


@contextlib.contextmanager
def _stalling(uri: str) -> Iterator[SnapshotCache]:
    before = set(threading.enumerate())
    conn = hvmon.open(uri)
    conn.define_domain_xml(WEB1_XML).create()
    cache = SnapshotCache(conn, deadline=0.3)
    try:
        yield cache
    finally:
        cache.stop()
        conn.close()
        # the abandoned stats worker sleeps out the stall: wait for it, leave nothing behind
        for thread in set(threading.enumerate()) - before:
            thread.join(timeout=STALL + 2)
            assert not thread.is_alive(), f"thread {thread.name} still running"


@pytest.fixture
def stalled_cache() -> Iterator[SnapshotCache]:
    """test:///default where `test` stalls STALL s, plus a running `web1` that answers."""
    with _stalling(f"test:///default?stall=test:{STALL:g}") as cache:
        yield cache


@pytest.fixture
def controlled_cache(tmp_path: Path) -> Iterator[tuple[SnapshotCache, Path]]:
    """Like ``stalled_cache`` but the stall is switched on later through a control file."""
    control = tmp_path / "controls.json"
    control.write_text("{}")
    with _stalling(f"test:///default?control={control}") as cache:
        yield cache, control


def _value(text: str, prefix: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, (prefix, lines)
    return lines[0].rsplit(" ", 1)[1]


def test_stalled_domain_is_marked_and_scrape_stays_fast(
        stalled_cache: SnapshotCache, serve: ServeFactory) -> None:
    server = serve(Scraper(stalled_cache.get, compat="both", max_age=60))
    started = time.monotonic()
    answer = fetch(server.url)
    took = time.monotonic() - started
    assert answer.status == 200
    assert took < 1.0, f"scrape took {took:.2f}s with a {STALL:g}s stall"
    text = answer.text
    test_key = f'{{domain="test",uuid="{TEST_UUID}"}}'
    assert _value(text, f"hvmon_domain_timed_out{test_key}") == "1"
    assert _value(text, f"libvirt_domain_timed_out{test_key}") == "1"
    assert _value(text, 'hvmon_domain_timed_out{domain="web1",') == "0"
    assert _value(text, 'libvirt_domain_timed_out{domain="web1",') == "0"
    # the other domain is complete: its counters are there
    assert float(_value(text, 'hvmon_domain_cpu_time_seconds_total{domain="web1",')) > 0
    assert float(_value(text, 'hvmon_domain_block_read_bytes_total{domain="web1",')) >= 0
    assert 'hvmon_domain_cpu_time_seconds_total{domain="test",' not in text
    # and so is the rest of the host
    assert _value(text, 'hvmon_pool_capacity_bytes{pool="default-pool",') == str(100 << 30)
    assert _value(text, 'hvmon_network_active{network="default",') == "1"
    assert _value(text, 'libvirt_storage_pool_capacity_bytes{storage_pool="default-pool"}') \
        == str(100 << 30)
    assert _value(text, "hvmon_up ") == "1"
    assert _value(text, "libvirt_domains_number ") == "2"
    # never seen before, `test` has no state yet (docs/snapshot.md, the staleness rule)
    assert 'hvmon_domain_state{domain="test",' in text
    assert 'hvmon_host_domains{state="running"} 1' in text
    assert {"hvmon_domain_vcpus", "hvmon_host_cpus"} <= family_names(answer.body)

    # a libvirt-only scraper on the same (now cached) snapshot says the same, at once
    compat_only = serve(Scraper(stalled_cache.get, compat="libvirt", max_age=60))
    started = time.monotonic()
    again = fetch(compat_only.url).text
    assert time.monotonic() - started < 0.5
    assert _value(again, f"libvirt_domain_timed_out{test_key}") == "1"
    assert "hvmon_domain_timed_out" not in again


def test_domain_stalling_later_keeps_its_last_values_with_their_age(
        controlled_cache: tuple[SnapshotCache, Path], serve: ServeFactory) -> None:
    cache, control = controlled_cache
    server = serve(Scraper(cache.get, compat="both", max_age=0))  # every scrape refreshes
    fresh = fetch(server.url).text
    test_key = f'{{domain="test",uuid="{TEST_UUID}"}}'
    assert _value(fresh, f"hvmon_domain_timed_out{test_key}") == "0"
    cpu_before = _value(fresh, f"hvmon_domain_cpu_time_seconds_total{test_key}")

    staged = control.with_suffix(".tmp")
    staged.write_text(json.dumps({"stall": {"test": STALL}}))
    os.replace(staged, control)  # atomically, as docs/test-driver.md asks
    time.sleep(0.05)  # let the stall be collected at least a little after the fresh values
    started = time.monotonic()
    text = fetch(server.url).text
    assert time.monotonic() - started < 1.0
    assert _value(text, f"hvmon_domain_timed_out{test_key}") == "1"
    assert _value(text, f"libvirt_domain_timed_out{test_key}") == "1"
    assert float(_value(text, f"hvmon_domain_stats_age_seconds{test_key}")) > 0
    # last good values, not zeros: state and counters as the fresh scrape saw them
    assert _value(text, f"hvmon_domain_state{test_key}") == "1"
    assert _value(text, f"hvmon_domain_cpu_time_seconds_total{test_key}") == cpu_before
    assert _value(text, 'hvmon_domain_timed_out{domain="web1",') == "0"
    assert _value(text, "hvmon_snapshot_generation ") == "2"
