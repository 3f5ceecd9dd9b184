"""The exporter's HTTP endpoint: pages, health, gzip, collector groups and errors."""

from __future__ import annotations

import gzip
import http.client
import statistics
import time
from urllib.parse import urlsplit

import pytest

from hvmon.core.errors import InvalidArgument
from hvmon.core.snapshot.cache import SnapshotCache
from hvmon.plugins.prometheus import families as fam
from hvmon.plugins.prometheus.httpserver import MetricsServer
from hvmon.plugins.prometheus.scrape import Scraper

from .conftest import ServeFactory, family_names, fetch


def base(server: MetricsServer) -> str:
    parts = urlsplit(server.url)
    return f"{parts.scheme}://{parts.netloc}"


def exposed(*tables: dict[str, fam.FamilySpec]) -> set[str]:
    return {spec.exposed_name for table in tables for spec in table.values()}


EXPORTER_NAMES = exposed(fam.EXPORTER)


def test_metrics_serves_every_group(exporter: MetricsServer) -> None:
    answer = fetch(exporter.url)
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert int(answer.headers["content-length"]) == len(answer.body)
    assert "hvmon_up 1\n" in answer.text
    names = family_names(answer.body)
    for group, tables in fam.GROUPS.items():
        if group in ("job", "volume"):  # nothing to report on test:///default
            continue
        assert names & exposed(*tables), f"no family of group {group}"
    assert 'hvmon_domain_vcpus{domain="test",' in answer.text


def test_landing_page_links_metrics(exporter: MetricsServer) -> None:
    answer = fetch(base(exporter) + "/")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "href='/metrics'" in answer.text


def test_unknown_path_is_404(exporter: MetricsServer) -> None:
    answer = fetch(base(exporter) + "/nope")
    assert answer.status == 404
    assert fetch(base(exporter) + "/metricsx").status == 404


def test_healthz(cache: SnapshotCache, serve: ServeFactory) -> None:
    state = {"healthy": True}

    def health() -> tuple[bool, str]:
        if state["healthy"]:
            return True, "ok"
        return False, "snapshot is 120 s old"

    server = serve(Scraper(cache.get), health=health)
    ok = fetch(base(server) + "/healthz")
    assert (ok.status, ok.text) == (200, "ok\n")
    state["healthy"] = False
    sick = fetch(base(server) + "/healthz")
    assert (sick.status, sick.text) == (503, "snapshot is 120 s old\n")


def test_gzip_only_when_asked(exporter: MetricsServer) -> None:
    zipped = fetch(exporter.url, headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.status == 200
    assert zipped.headers.get("content-encoding") == "gzip"
    text = gzip.decompress(zipped.body).decode()
    assert "hvmon_up 1\n" in text
    assert len(zipped.body) < len(text)
    plain = fetch(exporter.url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.body.startswith(b"# HELP")


def test_collect_param_limits_groups(exporter: MetricsServer) -> None:
    answer = fetch(exporter.url + "?collect[]=domain&collect[]=pool")
    assert answer.status == 200
    names = family_names(answer.body)
    allowed = EXPORTER_NAMES | exposed(fam.DOMAIN, fam.POOL_FAMILIES)
    assert names <= allowed, names - allowed
    assert names & exposed(fam.DOMAIN) and names & exposed(fam.POOL_FAMILIES)
    assert "hvmon_up" in names
    assert 'hvmon_scrape_collector_success{collector="pool"} 1' in answer.text
    assert 'collector="vcpu"' not in answer.text


def test_config_groups_limit_every_scrape(cache: SnapshotCache, serve: ServeFactory) -> None:
    server = serve(Scraper(cache.get, groups=["host", "network"]))
    names = family_names(fetch(server.url).body)
    assert names <= EXPORTER_NAMES | exposed(fam.HOST, fam.NETWORK)
    assert "hvmon_host_cpus" in names and "hvmon_network_active" in names
    narrowed = family_names(fetch(server.url + "?collect[]=network").body)
    assert narrowed <= EXPORTER_NAMES | exposed(fam.NETWORK)
    assert "hvmon_network_active" in narrowed


@pytest.mark.parametrize(("query", "message"), [
    ("collect[]=vcpu", "collector 'vcpu' is disabled"),
    ("collect[]=host&collect[]=bogus", "unknown collector 'bogus'"),
])
def test_bad_collect_param_is_400(cache: SnapshotCache, serve: ServeFactory, query: str,
                                  message: str) -> None:
    server = serve(Scraper(cache.get, groups=["host", "domain"]))
    answer = fetch(f"{server.url}?{query}")
    assert answer.status == 400
    assert answer.text.endswith("\n") and answer.text.count("\n") == 1
    assert message in answer.text


def test_bad_scraper_config_is_one_line() -> None:
    with pytest.raises(InvalidArgument, match="unknown collector group") as caught:
        Scraper(lambda _age: None, groups=["domain", "gpu"])  # type: ignore[arg-type,return-value]
    assert "\n" not in str(caught.value)
    with pytest.raises(InvalidArgument, match="compat must be one of"):
        Scraper(lambda _age: None, compat="kumina")  # type: ignore[arg-type,return-value]


def test_failing_source_serves_up_zero(serve: ServeFactory) -> None:
    def broken(_age: float | None):  # type: ignore[no-untyped-def]
        raise InvalidArgument("connection lost")

    server = serve(Scraper(broken, compat="both"))
    answer = fetch(server.url)
    assert answer.status == 200
    assert "hvmon_up 0\n" in answer.text and "libvirt_up 0\n" in answer.text
    assert "hvmon_domain_" not in answer.text


def test_warm_scrapes_share_one_snapshot(cache: SnapshotCache, serve: ServeFactory) -> None:
    server = serve(Scraper(cache.get, max_age=60))
    first, second = fetch(server.url).text, fetch(server.url).text
    assert "hvmon_snapshot_generation 1\n" in first
    assert "hvmon_snapshot_generation 1\n" in second
    cold = serve(Scraper(cache.get, max_age=0))
    assert "hvmon_snapshot_generation 2\n" in fetch(cold.url).text


def test_keep_alive_scrapes_are_fast(exporter: MetricsServer) -> None:
    """Small answers on one connection take no Nagle/delayed-ACK penalty (~40 ms each)."""
    conn = http.client.HTTPConnection("127.0.0.1", exporter.port, timeout=10)
    try:
        times = []
        for _ in range(6):
            started = time.perf_counter()
            conn.request("GET", "/healthz")
            answer = conn.getresponse()
            assert answer.status == 200 and answer.read() == b"ok\n"
            times.append(time.perf_counter() - started)
    finally:
        conn.close()
    assert statistics.median(times[1:]) < 0.02, times
