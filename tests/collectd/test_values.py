"""Value lists from a snapshot: the virt plugin's identifiers, types.db's data sets, staleness."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

import hvmon
from hvmon.core.events import LifecycleEvent
from hvmon.core.snapshot.model import Snapshot
from hvmon.plugins.collectd.text import putnotif_line, putval_lines, quote
from hvmon.plugins.collectd.values import (
    DATASETS,
    FAILURE,
    KIND_NAMES,
    OKAY,
    WARNING,
    Naming,
    ValueList,
    event_notification,
    id_field,
    naming_problems,
    snapshot_values,
)

from .conftest import TEST_UUID, TYPES_DB, need, parse_types_db


@pytest.fixture
def snap() -> Iterator[Snapshot]:
    with hvmon.open_readonly("test:///default") as conn:
        yield conn.get_snapshot(0)


def by_id(values: list[ValueList]) -> dict[str, ValueList]:
    ids = [vl.identifier for vl in values]
    assert len(ids) == len(set(ids)), "identifiers must be unique"
    return dict(zip(ids, values, strict=True))


def test_types_match_types_db() -> None:
    """Every type sent exists in collectd's types.db with the same data sources and kinds."""
    need(TYPES_DB.is_file(), "collectd's types.db is not installed (collectd-core)")
    types = parse_types_db()
    for name, sources in DATASETS.items():
        assert name in types, name
        assert types[name] == [(ds, KIND_NAMES[kind]) for ds, kind in sources], name


def test_identifiers_and_values_match_the_snapshot(snap: Snapshot) -> None:
    values = by_id(snapshot_values(snap, Naming("hv1")))
    dom = snap.domain("test")
    assert dom is not None
    stats = dom.stats
    expected = {
        "hv1/virt-test/virt_cpu_total": (stats["cpu.time"],),
        "hv1/virt-test/virt_vcpu-0": (stats["vcpu.0.time"],),
        "hv1/virt-test/virt_vcpu-1": (stats["vcpu.1.time"],),
        "hv1/virt-test/disk_octets-vda": (stats["block.0.rd.bytes"], stats["block.0.wr.bytes"]),
        "hv1/virt-test/disk_ops-vda": (stats["block.0.rd.reqs"], stats["block.0.wr.reqs"]),
        "hv1/virt-test/disk_time-vda": (stats["block.0.rd.times"], stats["block.0.wr.times"]),
        "hv1/virt-test/if_octets-testnet0": (stats["net.0.rx.bytes"], stats["net.0.tx.bytes"]),
        "hv1/virt-test/if_packets-testnet0": (stats["net.0.rx.pkts"], stats["net.0.tx.pkts"]),
        "hv1/virt-test/if_errors-testnet0": (stats["net.0.rx.errs"], stats["net.0.tx.errs"]),
        "hv1/virt-test/if_dropped-testnet0": (stats["net.0.rx.drop"], stats["net.0.tx.drop"]),
        "hv1/virt-test/memory-total": (2 * 1024**3,),
        "hv1/virt-test/memory-actual_balloon": (stats["balloon.current"] * 1024,),
        "hv1/virt-test/memory-rss": (stats["balloon.rss"] * 1024,),
        "hv1/virt-test/memory-major_fault": (stats["balloon.major_fault"],),
        "hv1/virt-test/domain_state": (1, 1),
        "hv1/df-pool-default-pool/df_complex-used": (0,),
        "hv1/df-pool-default-pool/df_complex-free": (100 * 1024**3,),
        "hv1/df-pool-default-pool/df_complex-reserved": (0,),
        "hv1/hvmon/count-domains": (1,),
        "hv1/hvmon/count-domains_active": (1,),
        "hv1/hvmon/count-domains_stale": (0,),
    }
    for identifier, wanted in expected.items():
        assert values[identifier].values == wanted, identifier
    for vl in values.values():  # kinds as types.db says; counters are exact integers
        assert len(vl.values) == len(DATASETS[vl.type])
        for value, kind in zip(vl.values, vl.kinds, strict=True):
            assert isinstance(value, float if KIND_NAMES[kind] == "GAUGE" else int), vl


@pytest.mark.parametrize(("hostname_format", "instance_format", "identifier"), [
    ("hostname", "name", "hv1/virt-test/virt_cpu_total"),
    ("hostname", "uuid", f"hv1/virt-{TEST_UUID}/virt_cpu_total"),
    ("name", "none", "test/virt/virt_cpu_total"),  # the virt plugin's defaults
    ("uuid", "name", f"{TEST_UUID}/virt-test/virt_cpu_total"),
])
def test_naming_formats(snap: Snapshot, hostname_format: str, instance_format: str,
                        identifier: str) -> None:
    values = by_id(snapshot_values(snap, Naming("hv1", hostname_format, instance_format)))
    assert identifier in values
    assert "hv1/hvmon/count-domains" in values  # host values keep the host's name


def test_bad_naming_is_one_line_each() -> None:
    assert naming_problems("fqdn", "name") == [
        "hostname_format: must be one of hostname, name, uuid, got 'fqdn'"]
    assert naming_problems("hostname", "none") == [
        "plugin_instance_format: 'none' needs hostname_format 'name' or 'uuid' (else every "
        "domain gets the same identifiers)"]
    with pytest.raises(ValueError, match="plugin_instance_format"):
        Naming("hv1", "hostname", "tag")


def test_names_are_made_safe_for_identifiers() -> None:
    assert id_field("web/1\n") == "web_1_"
    long = "é" * 100
    assert len(id_field(long).encode()) <= 127 and id_field(long).startswith("é")
    assert id_field("db-1") == "db-1"


def _stale(snap: Snapshot, name: str, *, stats: bool = True) -> Snapshot:
    domains = tuple(dataclasses.replace(d, stale=True, error="timed out", stats=d.stats
                                        if stats else {}) if d.name == name else d
                    for d in snap.domains)
    return dataclasses.replace(snap, domains=domains)


def test_stale_domains_are_skipped_or_sent_with_their_last_values(snap: Snapshot) -> None:
    stalled = _stale(snap, "test")
    skipped = by_id(snapshot_values(stalled, Naming("hv1")))
    assert not [i for i in skipped if "/virt-" in i]
    assert skipped["hv1/hvmon/count-domains_stale"].values == (1,)
    last = by_id(snapshot_values(stalled, Naming("hv1"), stale="last"))
    dom = snap.domain("test")
    assert dom is not None
    assert last["hv1/virt-test/virt_cpu_total"].values == (dom.stats["cpu.time"],)
    # never collected: nothing to send, even with "last"
    empty = by_id(snapshot_values(_stale(snap, "test", stats=False), Naming("hv1"), stale="last"))
    assert not [i for i in empty if "/virt-" in i]


def test_inactive_domains_send_only_their_state() -> None:
    with hvmon.open("test:///default") as conn:
        conn.lookup_domain_by_name("test").destroy()
        values = by_id(snapshot_values(conn.get_snapshot(0), Naming("hv1")))
    assert [i for i in values if "/virt-" in i] == ["hv1/virt-test/domain_state"]
    assert values["hv1/virt-test/domain_state"].values == (5.0, 2.0)  # shut off, destroyed


@pytest.mark.parametrize(("event", "detail", "severity", "message"), [
    (LifecycleEvent.STARTED, 0, OKAY, "Domain state: running. Reason: booted"),
    (LifecycleEvent.SUSPENDED, 0, WARNING, "Domain state: paused. Reason: paused"),
    (LifecycleEvent.CRASHED, 0, FAILURE, "Domain state: crashed. Reason: panicked"),
    (LifecycleEvent.STOPPED, 1, OKAY, "Domain state: shut off. Reason: destroyed"),
    (LifecycleEvent.DEFINED, 0, OKAY, "Domain defined: added"),
])
def test_lifecycle_notifications(event: LifecycleEvent, detail: int, severity: int,
                                 message: str) -> None:
    note = event_notification("test", TEST_UUID, event, detail, 1700000000.5, Naming("hv1"))
    assert (note.severity, note.message, note.host, note.plugin, note.plugin_instance,
            note.type, note.type_instance) == (severity, message, "hv1", "virt", "test",
                                               "domain_state", "")


def test_putval_and_putnotif_lines_quote_as_collectd_reads() -> None:
    vls = [ValueList("hv1", "virt", 'my "vm" \\ 1', "disk_octets", "vda", (1, 2)),
           ValueList("hv1", "virt", "web", "memory", "total", (2048.0,))]
    assert list(putval_lines(vls, 1700000000.25, 10)) == [
        'PUTVAL "hv1/virt-my \\"vm\\" \\\\ 1/disk_octets-vda" interval=10.000 '
        '1700000000.250:1:2\n',
        'PUTVAL "hv1/virt-web/memory-total" interval=10.000 1700000000.250:2048.0\n',
    ]
    note = event_notification("web 1", TEST_UUID, LifecycleEvent.SUSPENDED, 0, 1700000000.5,
                              Naming("hv1"))
    assert putnotif_line(note) == (
        'PUTNOTIF severity=warning time=1700000000.500 host="hv1" plugin="virt" '
        'plugin_instance="web 1" type="domain_state" '
        'message="Domain state: paused. Reason: paused"\n')
    assert quote('a"b') == '"a\\"b"'
