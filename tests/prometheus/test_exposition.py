"""The text exposition: promtool's linter, prometheus_client's parser, label escaping."""

from __future__ import annotations

import itertools
import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import hvmon
from hvmon.core.snapshot.model import Snapshot
from hvmon.plugins.prometheus import compat, families
from hvmon.plugins.prometheus.collector import BUILDERS, SnapshotCollector
from hvmon.plugins.prometheus.exposition import Family, FamilySpec, format_value, render
from hvmon.plugins.prometheus.scrape import Scraper

from .conftest import GIB, TEST_UUID, need_tool, run_tool

WEIRD_NAME = 'we"ird\\back'
WEIRD_PATH = '/guest/new\nline "q" \\b.img'
WEIRD_XML = """<domain type='test'>
  <name>we"ird\\back</name>
  <memory unit='KiB'>1048576</memory>
  <vcpu>1</vcpu>
  <os><type arch='i686'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <source file='/guest/new&#10;line "q" \\b.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>"""

Sample = tuple[str, tuple[tuple[str, str], ...], float]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, parsed by prometheus_client: (name, labels) -> value."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in out, f"duplicate series {key}"
            out[key] = sample.value
    return out


def family_meta(text: str) -> dict[str, tuple[str, str]]:
    """Non-empty families: name -> (type, help)."""
    return {fam.name: (fam.type, fam.documentation)
            for fam in text_string_to_metric_families(text) if fam.samples}


def group_families(snap: Snapshot) -> list[Family]:
    return list(itertools.chain.from_iterable(builder(snap) for builder in BUILDERS.values()))


@pytest.fixture
def weird_snapshot(conn: hvmon.Connection) -> Snapshot:
    """test:///default plus a running domain whose labels need escaping."""
    conn.define_domain_xml(WEIRD_XML).create()
    snap = conn.get_snapshot(max_age=0)
    assert snap.domain(WEIRD_NAME) is not None
    return snap


@pytest.mark.parametrize("mode", ["hvmon", "libvirt", "both"])
def test_promtool_check_metrics_is_clean(mode: str, weird_snapshot: Snapshot) -> None:
    promtool = need_tool("promtool")
    body = Scraper(lambda _age: weird_snapshot, compat=mode).scrape()
    result = run_tool([promtool, "check", "metrics"], stdin=body)
    # exit 3 = lint findings; any output on stdout/stderr is a warning or an error
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""
    names = {name for name, _ in samples(body.decode())}
    assert "hvmon_up" in names
    assert ("libvirt_up" in names) == (mode != "hvmon")
    assert ("hvmon_domain_vcpus" in names) == (mode != "libvirt")


def test_promtool_flags_a_bad_exposition() -> None:
    """The linter check above can fail: promtool rejects a counter without _total."""
    promtool = need_tool("promtool")
    bad = Family(FamilySpec("hvmon_bad_bytes", "gauge", "x"), [((), 1)])
    body = render([bad]).replace(b"gauge", b"counter")
    result = run_tool([promtool, "check", "metrics"], stdin=body)
    assert result.returncode != 0


def test_render_agrees_with_prometheus_client(weird_snapshot: Snapshot) -> None:
    ours = render(group_families(weird_snapshot)).decode()
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: weird_snapshot))
    theirs = generate_latest(registry).decode()

    our_samples, their_samples = samples(ours), samples(theirs)
    assert our_samples.keys() == their_samples.keys()
    for key, value in our_samples.items():
        assert value == their_samples[key] or (math.isnan(value) and math.isnan(
            their_samples[key])), key
    assert family_meta(ours) == family_meta(theirs)
    assert len(our_samples) > 50


def test_label_escaping_round_trips(weird_snapshot: Snapshot) -> None:
    text = render(group_families(weird_snapshot)).decode()
    # one sample per line: the newline in the path is escaped, never raw
    assert all(line.startswith(("#", "hvmon_")) for line in text.splitlines())
    weird = [labels for name, labels in samples(text)
             if name == "hvmon_domain_block_read_bytes_total" and
             dict(labels)["domain"] == WEIRD_NAME]
    assert len(weird) == 1
    assert dict(weird[0])["source_file"] == WEIRD_PATH


def test_sample_values_for_the_default_host(conn: hvmon.Connection) -> None:
    snap = conn.get_snapshot(max_age=0)
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: snap))
    dom = {"domain": "test", "uuid": TEST_UUID}
    get = registry.get_sample_value
    assert get("hvmon_domain_vcpus", dom) == 2
    assert get("hvmon_domain_vcpus_maximum", dom) == 2
    assert get("hvmon_domain_memory_maximum_bytes", dom) == 8 * GIB
    assert get("hvmon_domain_memory_current_bytes", dom) == 2 * GIB
    assert get("hvmon_domain_state", dom) == 1
    assert get("hvmon_domain_timed_out", dom) == 0
    assert get("hvmon_domain_cpu_time_seconds_total", dom) > 0
    assert get("hvmon_domain_status_info", {**dom, "state": "running", "reason": "booted"}) == 1
    assert get("hvmon_domain_vcpu_time_seconds_total", {**dom, "vcpu": "1"}) > 0
    disk = {**dom, "target_device": "vda", "source_file": "/guest/diskimage1"}
    assert get("hvmon_domain_block_read_bytes_total", disk) > 0
    assert get("hvmon_host_cpus") == 16
    assert get("hvmon_host_cpu_frequency_hertz") == 1400 * 1_000_000
    assert get("hvmon_host_memory_bytes") == 3 * GIB
    assert get("hvmon_host_memory_free_bytes") == 1 * GIB
    assert get("hvmon_host_domains", {"state": "running"}) == 1
    assert get("hvmon_host_domains", {"state": "shut off"}) == 0
    pool = snap.pool("default-pool")
    assert pool is not None
    pool_labels = {"pool": "default-pool", "uuid": pool.uuid}
    assert get("hvmon_pool_capacity_bytes", pool_labels) == 100 * GIB
    assert get("hvmon_pool_state", pool_labels) == 2  # running
    net = snap.network("default")
    assert net is not None
    net_labels = {"network": "default", "uuid": net.uuid, "bridge": "virbr0"}
    assert get("hvmon_network_active", net_labels) == 1
    assert get("hvmon_network_dhcp_range_size", net_labels) == 253
    assert get("hvmon_network_dhcp_leases", net_labels) == 1  # the running `test` domain


def test_describe_lists_every_family_without_a_snapshot() -> None:
    def no_snapshot() -> Snapshot:
        raise AssertionError("describe() must not collect")

    described = {m.name for m in SnapshotCollector(no_snapshot).describe()}
    assert described == {spec.name for spec in families.all_specs()}


def test_compat_values_match_hvmon_values(conn: hvmon.Connection) -> None:
    snap = conn.get_snapshot(max_age=0)
    both = samples(Scraper(lambda _age: snap, compat="both").scrape().decode())
    dom = (("domain", "test"), ("uuid", TEST_UUID))
    pairs = [
        ("libvirt_domain_info_virtual_cpus", "hvmon_domain_vcpus"),
        ("libvirt_domain_info_maximum_memory_bytes", "hvmon_domain_memory_maximum_bytes"),
        ("libvirt_domain_info_memory_usage_bytes", "hvmon_domain_memory_current_bytes"),
        ("libvirt_domain_state_code", "hvmon_domain_state"),
        ("libvirt_domain_info_cpu_time_seconds_total", "hvmon_domain_cpu_time_seconds_total"),
    ]
    for theirs, ours in pairs:
        assert both[(theirs, dom)] == both[(ours, dom)], theirs
    assert both[("libvirt_domains_number", ())] == 1
    assert both[("libvirt_up", ())] == 1
    assert both[("libvirt_storage_pool_capacity_bytes",
                 (("storage_pool", "default-pool"),))] == 100 * GIB


def test_every_spec_name_is_unique_and_well_formed() -> None:
    specs = families.all_specs() + compat.all_specs()
    exposed = [spec.exposed_name for spec in specs]
    assert len(exposed) == len(set(exposed))
    for spec in specs:
        assert spec.type in ("gauge", "counter", "info")
        assert spec.name.startswith(("hvmon_", "libvirt_")), spec.name
        assert not spec.name.endswith("_total"), spec.name


@pytest.mark.parametrize("value", [0, 1, -3, 2**53 + 1, 0.5, 1e-9, 1e20, 123456789.125,
                                   float("inf"), float("-inf"), True])
def test_format_value_parses_back(value: float) -> None:
    text = format_value(value)
    assert float(text.replace("+Inf", "inf")) == float(value)


def test_format_value_nan() -> None:
    assert format_value(float("nan")) == "NaN"


def test_empty_families_are_not_rendered() -> None:
    spec = FamilySpec("hvmon_empty", "gauge", "nothing")
    assert render([Family(spec)]) == b""
