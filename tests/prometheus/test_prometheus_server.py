"""A real Prometheus server scrapes the exporter, evaluates the alert rules and the dashboard.

Debian's ``prometheus`` runs with a 1 s scrape and evaluation interval,
loopback-only, its TSDB in a temporary directory, and is stopped by PID.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from toolcheck import stop_process, wait_for

import hvmon
from hvmon.core.snapshot.cache import SnapshotCache
from hvmon.plugins.prometheus.httpserver import MetricsServer
from hvmon.plugins.prometheus.scrape import Scraper

from .conftest import (
    GIB,
    REPO_ROOT,
    TEST_UUID,
    fetch,
    free_port,
    need_tool,
    start_process,
    try_fetch,
)

ALERTS = REPO_ROOT / "contrib" / "prometheus" / "alerts.yml"
DASHBOARD = REPO_ROOT / "contrib" / "grafana" / "hvmon.json"


@dataclass
class Prom:
    """A running Prometheus scraping one exporter."""

    api: str  # http://127.0.0.1:PORT/api/v1
    instance: str  # the exporter's target, as the instance label says
    proc: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urlencode(params)}" if params else ""
        answer = fetch(f"{self.api}/{path}{query}")
        assert answer.status == 200, answer.text
        body = json.loads(answer.body)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("query", query=expr)
        return data["result"]

    def value(self, expr: str) -> float:
        result = self.query(expr)
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited {self.proc.returncode}: "
                                 f"{self.log.read_text(errors='replace')[-800:]}")


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    """Prometheus (1 s interval, alerts.yml loaded) scraping hvmon on test:///default."""
    binary = need_tool("prometheus")
    work = tmp_path_factory.mktemp("prometheus")
    conn = hvmon.open("test:///default")
    cache = SnapshotCache(conn, max_age=0.5, deadline=0.3)
    server = MetricsServer("127.0.0.1", 0, scrape=Scraper(cache.get).scrape,
                           health=lambda: (True, "ok"))
    proc = None
    try:
        server.start()
        instance = f"127.0.0.1:{server.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [{"job_name": "hvmon",
                                "static_configs": [{"targets": [instance]}]}],
        }
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        log = work / "prometheus.log"
        proc = start_process([
            binary, f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--web.console.templates={work}", f"--web.console.libraries={work}",
        ], log)
        handle = Prom(f"http://127.0.0.1:{port}/api/v1", instance, proc, log)

        def has_up() -> bool | None:
            handle.alive()
            ready = try_fetch(f"http://127.0.0.1:{port}/-/ready")
            if ready is None or ready.status != 200:
                return None
            return True if handle.query("hvmon_up") else None

        wait_for(has_up, 20, "Prometheus to scrape hvmon_up", interval=0.25)
        yield handle
    finally:
        if proc is not None:
            stop_process(proc)
        server.stop()
        cache.stop()
        conn.close()


def test_prometheus_scrapes_hvmon(prom: Prom) -> None:
    assert prom.value("hvmon_up") == 1
    assert prom.value('up{job="hvmon"}') == 1
    test = f'domain="test", uuid="{TEST_UUID}"'
    assert prom.value(f"hvmon_domain_vcpus{{{test}}}") == 2
    assert prom.value(f"hvmon_domain_memory_maximum_bytes{{{test}}}") == 8 * GIB
    assert prom.value(f"hvmon_domain_memory_current_bytes{{{test}}}") == 2 * GIB
    assert prom.value(f"hvmon_domain_state{{{test}}}") == 1
    assert prom.value('hvmon_pool_capacity_bytes{pool="default-pool"}') == 100 * GIB
    assert prom.value('hvmon_network_active{network="default"}') == 1
    assert prom.value("hvmon_host_cpus") == 16
    series = prom.query(f"hvmon_domain_vcpus{{{test}}}")[0]["metric"]
    assert series["instance"] == prom.instance and series["job"] == "hvmon"
    targets = prom.get("targets")["activeTargets"]
    assert [(t["health"], t["lastError"]) for t in targets] == [("up", "")]


def test_counters_advance_between_scrapes(prom: Prom) -> None:
    expr = f'rate(hvmon_domain_cpu_time_seconds_total{{domain="test",uuid="{TEST_UUID}"}}[10s])'

    def rate() -> float | None:
        result = prom.query(expr)
        return float(result[0]["value"][1]) if result else None

    assert wait_for(rate, 10, "two samples of the cpu counter") > 0


def test_alert_rules_load_and_stay_quiet_on_a_healthy_host(prom: Prom) -> None:
    wanted = {rule["alert"] for group in yaml.safe_load(ALERTS.read_text())["groups"]
              for rule in group["rules"]}

    def evaluated() -> list[dict[str, Any]] | None:
        rules = [rule for group in prom.get("rules")["groups"] for rule in group["rules"]]
        done = rules and all(rule.get("lastEvaluation", "").startswith("2") and
                             not rule["lastEvaluation"].startswith("0001") for rule in rules)
        return rules if done else None

    rules = wait_for(evaluated, 10, "the alert rules to be evaluated")
    assert {rule["name"] for rule in rules} == wanted
    assert [(rule["name"], rule["health"], rule.get("lastError", "")) for rule in rules
            if rule["health"] != "ok"] == []
    assert prom.get("alerts")["alerts"] == []


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every dashboard query."""
    board = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in board["panels"]
            for target in panel.get("targets", [])]


def test_dashboard_queries_return_data(prom: Prom) -> None:
    substitutions = {"$__rate_interval": "10s", "$instance": prom.instance,
                     "$domain": ".*"}
    empty = []
    for title, expr in dashboard_exprs():
        for variable, value in substitutions.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unknown variable in {title}: {expr}"

        def answer(query: str = expr) -> list[dict[str, Any]] | None:
            return prom.query(query) or None  # rates need two samples: retry a little

        try:
            wait_for(answer, 5, f"data for {title}")
        except pytest.fail.Exception:
            empty.append((title, expr))
    assert empty == []
