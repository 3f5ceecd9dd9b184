"""The benchmark report generator (benchmarks/report.py, run.py --report) on canned data.

No real benchmark runs here: results are written by hand, and run.py drives
tiny stand-in bench scripts in a temp directory.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from toolcheck import need

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def report(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """benchmarks/report.py, imported by path (benchmarks/ is not a package)."""
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location("report", BENCH_DIR / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "report", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run(report: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", BENCH_DIR / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_run", module)
    spec.loader.exec_module(module)
    return module


INFO = {"CPU": "Test CPU 9000", "cores": "2", "accelerator": "TCG (no usable /dev/kvm)",
        "date": "2026-01-01 00:00 UTC", "hvmon": "0.1.0"}


def canned(report: ModuleType, warm_ms: float, ours: float, rate: float) -> dict:
    tables = [report.table("scrapes", ["domains", "warm ms", "bytes"],
                           [{"domains": 1000, "warm ms": warm_ms, "bytes": 5000}])]
    goals = [report.goal("warm scrape, 1,000 domains", warm_ms, "<", 50.0, "ms")]
    ratios = [report.ratio("open", "libvirt test driver", ours, 0.3),
              report.ratio("walk", "snmpd", rate, 100.0, "varbinds/s",
                           higher_is_better=True, limit=2.0)]
    series = [{"name": "open", "unit": "s", "points": [[10, ours / 100], [1000, ours]]}]
    return {"script": "bench_x.py", "title": "canned", "status": "ok", "note": "",
            "tables": tables, "goals": goals, "ratios": ratios, "series": series}


def test_write_and_load_round_trip(report: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    data = canned(report, 2.0, 0.1, 150.0)
    report.write_result(path, "bench_x.py", title="canned", tables=data["tables"],
                        goals=data["goals"], ratios=data["ratios"], series=data["series"])
    assert report.load(path) == data


def test_load_rejects_bad_files(report: ModuleType, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read result"):
        report.load(bad)
    bad.write_text(json.dumps({"tables": []}))
    with pytest.raises(ValueError, match="no 'script'"):
        report.load(bad)
    with pytest.raises(ValueError, match="cannot read result"):
        report.load(tmp_path / "missing.json")


def test_goal_rejects_unknown_operator(report: ModuleType) -> None:
    with pytest.raises(ValueError, match="unknown goal operator"):
        report.goal("x", 1.0, "=~", 2.0)


def test_aggregate_takes_median_and_spread(report: ModuleType) -> None:
    runs = [canned(report, w, o, r) for w, o, r in ((2.0, 0.1, 150.0), (4.0, 0.2, 50.0),
                                                    (3.0, 0.3, 100.0))]
    out = report.aggregate(runs)
    assert out.runs == 3
    cell = out.tables[0]["rows"][0]["warm ms"]
    assert cell.median == 3.0
    assert cell.spread == pytest.approx(1 / 3)
    assert cell.text() == "3.000 ±33%"
    assert out.tables[0]["rows"][0]["domains"] == 1000  # same int in every run: kept as is
    assert out.tables[0]["rows"][0]["bytes"] == 5000
    assert report.goal_met(out.goals[0]) is True
    open_ratio, walk_ratio = out.ratios
    assert report.cost_ratio(open_ratio) == pytest.approx(0.2 / 0.3)
    assert report.cost_ratio(walk_ratio) == pytest.approx(1.0)  # 100/100, rate inverted
    assert out.series[0]["points"] == [(10, 0.002), (1000, 0.2)]


def test_aggregate_ignores_failed_runs(report: ModuleType) -> None:
    failed = {"script": "bench_x.py", "status": "failed", "note": "exit 1: boom"}
    out = report.aggregate([canned(report, 2.0, 0.1, 150.0), failed])
    assert out.status == "ok" and out.runs == 1
    only_failed = report.aggregate([failed])
    assert only_failed.status == "failed" and only_failed.note == "exit 1: boom"
    with pytest.raises(ValueError):
        report.aggregate([])


def test_goals_and_ratios_judged(report: ModuleType) -> None:
    assert report.goal_met(report.goal("g", 60.0, "<", 50.0)) is False
    assert report.goal_met(report.goal("g", 0.6, ">=", 0.5)) is True
    assert report.goal_met(report.goal("g", None, "<", 50.0)) is None
    assert report.cost_ratio(report.ratio("r", "p", 2.0, 1.0)) == 2.0
    assert report.cost_ratio(report.ratio("r", "p", None, 1.0)) is None
    assert report.cost_ratio(report.ratio("r", "p", 10.0, 40.0, higher_is_better=True)) == 4.0


def test_render_states_machine_goals_ratios_and_problems(
        report: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "NOT_MEASURED", ("SNMP over AgentX vs snmpd's own tables",))
    good = report.aggregate([canned(report, 2.0, 0.6, 40.0), canned(report, 2.2, 0.6, 40.0)])
    missed = report.aggregate([canned(report, 80.0, 0.1, 150.0)])
    missed.script = "bench_y.py"
    broken = report.aggregate([{"script": "bench_z.py", "status": "failed",
                                "note": "exit 2: no snmpd"}])
    skipped = report.Outcome("bench_w.py", status="skipped", note="qemu not installed",
                             output="qemu not installed: skipped\n")
    text = report.render([good, missed, broken, skipped], info=INFO, runs=2, quick=True)
    assert "| CPU | Test CPU 9000 |" in text
    assert "| accelerator | TCG (no usable /dev/kvm) |" in text
    assert "quick" in text and "run 2 time(s)" in text
    assert "| bench_x.py | warm scrape, 1,000 domains | 2.100 ±5% ms | < 50.00 ms | met |" in text
    assert "| bench_y.py | warm scrape, 1,000 domains | 80.00 ms | < 50.00 ms | **MISSED** |" \
        in text
    # open 0.6 s vs 0.3 s: ratio 2.0 > 1.0; walk 40/s vs snmpd 100/s: 2.5 > 2.0
    assert "open: hvmon/libvirt test driver cost ratio | 2.00 | <= 1.00 | **MISSED** |" in text
    assert "walk: hvmon/snmpd cost ratio | 2.50 | <= 2.00 | **MISSED** |" in text
    assert "open: hvmon/libvirt test driver cost ratio | 0.33 | <= 1.00 | met |" in text
    assert "- `bench_z.py`: **FAILED**: exit 2: no snmpd" in text
    assert "- `bench_w.py`: **SKIPPED**: qemu not installed" in text
    assert "2 script(s) failed or skipped" in text
    assert "| - | SNMP over AgentX vs snmpd's own tables | - | - | not measured |" in text
    assert "| domains | warm ms | bytes |" in text
    assert "qemu not installed: skipped" in text  # printed output kept when no tables


def test_machine_names_cpu_cores_and_accelerator(report: ModuleType) -> None:
    info = report.machine()
    assert {"CPU", "cores", "accelerator", "date", "hvmon"} <= info.keys()
    assert info["accelerator"].startswith(("KVM", "TCG"))


def test_plots_are_written(report: ModuleType, tmp_path: Path) -> None:
    need(importlib.util.find_spec("matplotlib") is not None,
         "matplotlib is not installed (pip install matplotlib)")
    series = [{"name": "open", "unit": "s", "points": [(10, 0.001), (100, 0.01), (1000, 0.1)]},
              {"name": "one point", "unit": "s", "points": [(10, 0.5)]},
              {"name": "daemon RSS", "unit": "MB", "points": [(10, 40.0), (1000, 80.0)]}]
    paths = report.plot_series(series, tmp_path / "plots")
    assert [p.name for p in paths] == ["scaling-total.png", "scaling-per-domain.png",
                                       "scaling-mb.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.plot_series(series[1:2], tmp_path / "none") == []


STAND_INS = {
    "bench_a_json.py": """
        import sys, report
        path = sys.argv[sys.argv.index("--json") + 1]
        report.write_result(path, "bench_a_json.py", tables=[report.table(
            "t", ["n", "s"], [{"n": 10, "s": 0.5}])],
            goals=[report.goal("fast", 0.5, "<", 1.0, "s")])
        print("table of a")
        # "--json" supported
    """,
    "bench_b_fails.py": """
        import sys
        print("starting b")
        sys.exit("b: cannot reach the broker")
    """,
    "bench_c_skips.py": """
        print("qemu-system-x86_64 is not installed: skipped")
    """,
    "bench_d_bad_json.py": """
        import sys
        open(sys.argv[sys.argv.index("--json") + 1], "w").write("[1, 2")
        # "--json"
    """,
}


def test_run_report_survives_failing_and_skipping_scripts(
        run: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for name, body in STAND_INS.items():
        (scripts / name).write_text(textwrap.dedent(body))
    monkeypatch.setattr(run, "HERE", scripts)
    monkeypatch.setenv("PYTHONPATH", str(BENCH_DIR))
    monkeypatch.setattr(run.report, "plot_series", lambda series, directory: [])
    out = tmp_path / "out" / "report.md"
    status = run.main(["--report", str(out), "--runs", "2"])
    text = out.read_text()
    assert status == 1  # b and d failed
    assert "- `bench_a_json.py`: ok" in text
    assert "| bench_a_json.py | fast | 0.5000 ±0% s | < 1.000 s | met |" in text
    assert "- `bench_b_fails.py`: **FAILED**: exit 1: b: cannot reach the broker" in text
    assert "- `bench_c_skips.py`: **SKIPPED**: qemu-system-x86_64 is not installed" in text
    assert "- `bench_d_bad_json.py`: **FAILED**: cannot read result" in text


def test_run_report_only_selects_scripts(
        run: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for name, body in STAND_INS.items():
        (scripts / name).write_text(textwrap.dedent(body))
    monkeypatch.setattr(run, "HERE", scripts)
    monkeypatch.setenv("PYTHONPATH", str(BENCH_DIR))
    out = tmp_path / "report.md"
    assert run.main(["--report", str(out), "--quick", "--only", "bench_a_json"]) == 0
    text = out.read_text()
    assert "bench_a_json.py" in text and "bench_b_fails.py" not in text
    with pytest.raises(SystemExit):
        run.main(["--report", str(out), "--runs", "0"])


def test_scaling_results_from_canned_rows(report: ModuleType) -> None:
    spec = importlib.util.spec_from_file_location("bench_scaling", BENCH_DIR / "bench_scaling.py")
    assert spec is not None and spec.loader is not None
    scaling = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scaling)
    rows = [{"domains": 10, "open": 0.001, "prom_warm": 0.0002, "rss": 40.0},
            {"domains": 1000, "open": 0.1, "prom_warm": 0.06, "rss": 80.0},
            {"domains": 10000, "rss": 310.0}]
    tables = scaling.result_tables(rows)
    per = tables[1]["rows"]
    assert per[0]["open µs/domain"] == pytest.approx(100.0)
    assert per[2]["open µs/domain"] is None
    goals = {g["name"]: g for g in scaling.result_goals(rows)}
    assert report.goal_met(goals["warm Prometheus scrape, 1,000 domains"]) is False  # 60 ms
    assert report.goal_met(goals["daemon RSS at 10,000 test domains"]) is False  # 310 MB
    series = {s["name"]: s["points"] for s in scaling.result_series(rows)}
    assert series["open"] == [[10, 0.001], [1000, 0.1]]
    assert series["daemon RSS"] == [[10, 40.0], [1000, 80.0], [10000, 310.0]]
    text = scaling.render(rows)
    assert "daemon RSS (MB)" in text and "n/a" in text
