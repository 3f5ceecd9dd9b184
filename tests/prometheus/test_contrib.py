"""contrib/: the alert rules (promtool), the Grafana dashboard, and the names both use."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import hvmon
from hvmon.plugins.prometheus.scrape import Scraper

from .conftest import REPO_ROOT, family_names, need_tool, run_tool

CONTRIB = REPO_ROOT / "contrib"
ALERTS = CONTRIB / "prometheus" / "alerts.yml"
RULE_TESTS = sorted((CONTRIB / "prometheus" / "tests").glob("*.yml"))
DASHBOARD = CONTRIB / "grafana" / "hvmon.json"
METRIC_NAME = re.compile(r"\b(?:hvmon|libvirt)_[a-z_]+")
GRAFANA_VARS = {"$__rate_interval": "5m", "$instance": ".*", "$domain": ".*"}


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"]
            for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def variable_queries() -> list[str]:
    return [var["query"]["query"] for var in dashboard()["templating"]["list"]
            if var["type"] == "query"]


@pytest.fixture(scope="module")
def exposed() -> set[str]:
    """Every series name a scrape of test:///default (hvmon and libvirt names) holds."""
    conn = hvmon.open("test:///default")
    try:
        snap = conn.get_snapshot(max_age=0)
    finally:
        conn.close()
    return family_names(Scraper(lambda _age: snap, compat="both").scrape())


# --- alert rules ------------------------------------------------------------------

def test_promtool_check_rules() -> None:
    promtool = need_tool("promtool")
    result = run_tool([promtool, "check", "rules", str(ALERTS)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_test_rules() -> None:
    promtool = need_tool("promtool")
    assert RULE_TESTS, "no promtool unit tests in contrib/prometheus/tests"
    result = run_tool([promtool, "test", "rules", *map(str, RULE_TESTS)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_every_alert_fires_in_a_unit_test() -> None:
    fired = set()
    for path in RULE_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                if case.get("exp_alerts"):
                    fired.add(case["alertname"])
    assert fired == {rule["alert"] for rule in alert_rules()}


def test_rule_unit_tests_can_fail(tmp_path: Path) -> None:
    """A fixture expecting silence from a crashed domain fails: the tests above have teeth."""
    promtool = need_tool("promtool")
    bad = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": 'hvmon_domain_state{domain="web1", uuid="u"}',
                              "values": "6 6 6"}],
            "alert_rule_test": [{"eval_time": "1m", "alertname": "HvmonDomainCrashed",
                                 "exp_alerts": []}],
        }],
    }
    path = tmp_path / "bad_test.yml"
    path.write_text(yaml.safe_dump(bad))
    assert run_tool([promtool, "test", "rules", str(path)]).returncode != 0


def test_alerts_cover_the_required_conditions() -> None:
    exprs = {rule["alert"]: " ".join(rule["expr"].split()) for rule in alert_rules()}
    joined = " | ".join(exprs.values())
    assert "hvmon_up == 0" in joined and "up{" in joined
    assert "hvmon_domain_state == 6" in joined
    assert "hvmon_pool_available_bytes / hvmon_pool_capacity_bytes < 0.1" in joined
    assert "hvmon_domain_timed_out == 1" in joined
    assert "hvmon_snapshot_age_seconds" in joined
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
    stale = next(rule for rule in alert_rules() if "hvmon_domain_timed_out" in rule["expr"])
    assert stale["for"] == "5m"


# --- names --------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["alerts", "rule tests", "dashboard"])
def test_metric_names_exist_in_the_exposition(source: str, exposed: set[str]) -> None:
    if source == "alerts":
        texts = [rule["expr"] for rule in alert_rules()]
    elif source == "rule tests":
        texts = [series["series"] for path in RULE_TESTS
                 for test in yaml.safe_load(path.read_text())["tests"]
                 for series in test["input_series"]]
    else:
        texts = dashboard_exprs() + variable_queries()
    used = {name for text in texts for name in METRIC_NAME.findall(text)}
    assert used, f"no metric names found in the {source}"
    assert sorted(used - exposed) == []


# --- dashboard ------------------------------------------------------------------------

def test_dashboard_is_an_importable_grafana_dashboard() -> None:
    board = dashboard()
    for key in ("title", "uid", "panels", "templating", "schemaVersion", "time", "version"):
        assert key in board, key
    assert board["id"] is None  # importable: Grafana assigns the id
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", board["uid"])
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    variables = {var["name"]: var for var in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["domain"]["multi"] and variables["domain"]["includeAll"]
    for panel in panels():
        assert panel["type"] in ("stat", "timeseries", "table", "bargauge"), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24 and pos["w"] > 0 and pos["h"] > 0


def test_dashboard_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        pos = panel["gridPos"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_dashboard_has_the_required_views() -> None:
    by_title = {panel["title"]: panel for panel in panels()}
    rows = [panel["title"] for panel in dashboard()["panels"] if panel["type"] == "row"]
    assert rows == ["Host overview", "Domains", "Per domain ($domain)",
                    "Storage pools and networks", "Exporter health"]
    assert by_title["Domain state"]["type"] == "table"
    per_domain = ["CPU usage", "Memory", "Disk throughput", "Network traffic"]
    for title in per_domain:
        assert all("$domain" in t["expr"] for t in by_title[title]["targets"]), title
    assert "hvmon_pool_capacity_bytes" in by_title["Pool fill"]["targets"][0]["expr"]
    assert "hvmon_network_dhcp_leases" in by_title["DHCP leases"]["targets"][0]["expr"]
    assert "hvmon_snapshot_age_seconds" in by_title["Snapshot age"]["targets"][0]["expr"]
    assert "hvmon_up" in by_title["Exporter"]["targets"][0]["expr"]


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every query (variables substituted) as a recording rule."""
    promtool = need_tool("promtool")
    rules = []
    for index, expr in enumerate(dashboard_exprs()):
        for variable, value in GRAFANA_VARS.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_tool([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
