"""The side-by-side benchmarks' parsing and result logic on canned data (no daemons, no guests).

``bench_qemu_agents.py`` (domstats CLI, Prometheus, collectd on real guests) and
``bench_snmp_iftable.py`` (SNMP on a same-size ifTable in a netns) are imported
by path; their real runs are in ``make bench``.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location(name, BENCH_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def agents(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return _load("bench_qemu_agents", monkeypatch)


@pytest.fixture
def iftable(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return _load("bench_snmp_iftable", monkeypatch)


@pytest.fixture
def report(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return _load("report", monkeypatch)


VIRSH_DOMSTATS = """\
Domain: 'ag-0'
  state.state=1
  vcpu.current=1
  vcpu.0.time=123
  vcpu.0.wait=0
  balloon.current=65536
  block.count=0

Domain: 'ag-1'
  state.state=1
  net.10.rx.bytes=5

"""


def test_domstats_keys_are_normalized_per_domain(agents: ModuleType) -> None:
    assert agents.normalize_key("vcpu.0.time") == "vcpu.N.time"
    assert agents.normalize_key("net.10.rx.bytes") == "net.N.rx.bytes"
    assert agents.normalize_key("block.count") == "block.count"
    assert agents.normalize_key("cpu.cache.monitor.0") == "cpu.cache.monitor.N"
    parsed = agents.parse_domstats(VIRSH_DOMSTATS)
    assert set(parsed) == {"ag-0", "ag-1"}
    assert parsed["ag-0"] == {"state.state", "vcpu.current", "vcpu.N.time", "vcpu.N.wait",
                              "balloon.current", "block.count"}
    assert parsed["ag-1"] == {"state.state", "net.N.rx.bytes"}


def test_proc_stat_fields(agents: ModuleType) -> None:
    # comm with a space and a parenthesis; utime 150 and stime 50 ticks
    stat = ("4242 (my (odd) proc) S 17 4242 4242 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 3 0 "
            "100 1000 10 18446744073709551615")
    assert agents.proc_parent(stat) == 17
    assert agents.proc_cpu(stat) == pytest.approx(200 / agents.CLK_TCK)


def test_listval_counts_identifiers_and_guest_domains(agents: ModuleType) -> None:
    lines = ["4 Values found",
             "1700000000.000 bench/virt-ag-0/virt_cpu_total",
             "1700000000.000 bench/virt-ag-0/memory-total",
             "1700000000.000 bench/virt-ag-1/virt_vcpu-0",
             "1700000000.000 bench/hvmon/count-domains"]
    count, domains = agents.parse_listval(lines)
    assert count == 4 and domains == {"ag-0", "ag-1"}
    assert agents.parse_listval(["0 Values found"]) == (0, set())
    with pytest.raises(ValueError):
        agents.parse_listval(["-1 Error"])
    with pytest.raises(ValueError):
        agents.parse_listval([])


def test_collectd_configs(agents: ModuleType, tmp_path: Path) -> None:
    conf = agents.collectd_conf(tmp_path, 0.5, agents.virt_body("qemu:///session?socket=/s"),
                                 25826)
    assert "Interval 0.5" in conf and f'SocketFile "{tmp_path}/collectd.sock"' in conf
    assert 'Connection "qemu:///session?socket=/s"' in conf
    assert 'Server "127.0.0.1" "25826"' in conf
    assert 'ExtraStats "disk domain_state memory vcpu"' in conf
    assert "PluginInstanceFormat name" in conf
    body = agents.exec_body(tmp_path / "launch", "qemu+unix:///embed?root=/r&socket=/ro")
    assert body.startswith("LoadPlugin exec\n")
    assert (f'Exec "nobody:nogroup" "{tmp_path}/launch" "-c" '
            '"qemu+unix:///embed?root=/r&socket=/ro" "collectd-exec"') in body


def canned_results(agents: ModuleType) -> object:
    res = agents.Results()
    res.domstats.append({"guests": 1, "hvmon s": 0.25, "virsh s": 0.025,
                         "hvmon keys": 13, "virsh keys": 24})
    res.scrape.append({"guests": 1, "hvmon ms": 3.0, "libvirt exporter ms": 6.0,
                       "hvmon domains": 1, "exporter domains": 1, "hvmon bytes": 3000,
                       "exporter bytes": 7000})
    res.collectd.append({"guests": 1, "hvmon ms": 4.0, "virt ms": 5.0,
                         "exec side: collectd+child ms": 1.0, "hvmond ms": 3.0,
                         "virt side: collectd ms": 2.0, "libvirtd ms": 3.0,
                         "hvmon values": 9, "virt values": 3})
    res.missing_names = {"libvirt_domain_block_stats_read_bytes_total"}
    res.missing_keys = {"vcpu.N.wait"}
    return res


def test_real_guest_results_become_ratios_and_a_goal(agents: ModuleType, report: ModuleType,
                                                     tmp_path: Path) -> None:
    res = canned_results(agents)
    path = tmp_path / "r.json"
    agents.write_json(path, res, "libvirtd 9.0.0", "qemu")
    outcome = report.aggregate([report.load(path)])
    ratios = {r["name"]: report.cost_ratio(r) for r in outcome.ratios}
    assert ratios == {"domstats CLI, 1 real guest(s)": pytest.approx(10.0),
                      "Prometheus scrape, 1 real guest(s)": pytest.approx(0.5),
                      "collectd exec + hvmond CPU/interval, 1 real guest(s)":
                          pytest.approx(0.8)}
    assert [report.goal_met(g) for g in outcome.goals] == [False]  # one name missing
    text = report.render([outcome], info={"CPU": "x"})
    assert "domstats CLI, 1 real guest(s): hvmon/virsh domstats cost ratio | 10.00 | <= 1.00 " \
           "| **MISSED** |" in text
    assert "Prometheus scrape, 1 real guest(s): hvmon/prometheus-libvirt-exporter cost ratio " \
           "| 0.50 | <= 1.00 | met |" in text
    assert "libvirt_domain_block_stats_read_bytes_total" in text
    assert "### virsh domstats keys hvmon does not print (indexes as N)" in text
    assert "| vcpu.N.wait |" in text
    printed = agents.render(res, "libvirtd 9.0.0", "qemu", 0.5, 6)
    assert "10.00" in printed and "vcpu.N.wait" in printed


def test_missing_part_leaves_no_ratio(agents: ModuleType, report: ModuleType,
                                      tmp_path: Path) -> None:
    res = canned_results(agents)
    res.scrape.clear()
    res.missing_names = None
    res.notes.append("scrape: prometheus-libvirt-exporter not installed")
    path = tmp_path / "r.json"
    agents.write_json(path, res, "libvirtd 9.0.0", "qemu")
    data = report.load(path)
    assert not data["goals"] and len(data["ratios"]) == 2
    assert "not installed" in data["note"]
    assert "(not measured)" in agents.render(res, "v", "qemu", 1.0, 10)


def test_interfaces_for_a_table_of_n_rows(iftable: ModuleType) -> None:
    assert iftable.interface_commands(3, dummy=True) == [
        "link add hb0 type dummy", "link add hb1 type dummy", "link add hb2 type dummy"]
    veth = iftable.interface_commands(5, dummy=False)  # 2 pairs + 1 bridge = 5 links
    assert veth == ["link add hb0a type veth peer name hb0b",
                    "link add hb1a type veth peer name hb1b", "link add hbx type bridge"]
    assert iftable.interface_commands(0, dummy=False) == []
    assert iftable.table_rows(2200, 22) == 100 and iftable.table_rows(5, 0) == 0


def test_iftable_results_judge_half_of_snmpd(iftable: ModuleType, report: ModuleType,
                                             tmp_path: Path) -> None:
    walk = iftable.Walk
    results = {100: [walk("hvmon hvmonGuestTable, 100 domains", 100, 1300, 50e3, 60e3),
                     walk("snmpd ifTable, 100 veth/lo interfaces", 100, 2200, 70e3, 100e3),
                     walk("snmpd ifXTable, 100 veth/lo interfaces", 100, 1800, 90e3, 110e3)],
               1000: [walk("hvmon hvmonGuestTable, 1000 domains", 1000, 13000, 60e3, 80e3),
                      walk("snmpd ifTable, 1000 veth/lo interfaces", 1000, 22000, 2e5, 2e5),
                      walk("snmpd ifXTable, 1000 veth/lo interfaces", 1000, 18000, 2e5, 2e5)]}
    path = tmp_path / "s.json"
    iftable.write_json(path, [100, 1000], results)
    outcome = report.aggregate([report.load(path)])
    assert [report.cost_ratio(r) for r in outcome.ratios] == [pytest.approx(100 / 60),
                                                              pytest.approx(2.5)]
    assert [r["limit"] for r in outcome.ratios] == [2.0, 2.0]
    (goal,) = outcome.goals
    assert report._median(goal["value"]) == pytest.approx(0.4)  # the slowest size
    assert report.goal_met(goal) is False
    assert "40%" in iftable.render(results[1000])


def test_every_issue_15_part_has_a_script(report: ModuleType) -> None:
    assert report.NOT_MEASURED == ()
    for name in ("bench_qemu_agents.py", "bench_snmp_iftable.py"):
        assert '"--json"' in (BENCH_DIR / name).read_text()


def test_quick_runs_cap_a_slow_script(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    run = _load("run", monkeypatch)
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "bench_slow.py").write_text(textwrap.dedent("""
        import sys, report
        from pathlib import Path
        counter = Path(__file__).with_name("count")
        counter.write_text(str(int(counter.read_text() or 0) + 1) if counter.exists() else "1")
        report.write_result(sys.argv[sys.argv.index("--json") + 1], "bench_slow.py")
        # "--json"
    """))
    monkeypatch.setattr(run, "HERE", scripts)
    monkeypatch.setattr(run, "QUICK_RUNS", {"bench_slow.py": 1})
    monkeypatch.setenv("PYTHONPATH", str(BENCH_DIR))
    monkeypatch.setattr(run.report, "plot_series", lambda series, directory: [])
    assert run.main(["--report", str(tmp_path / "r.md"), "--quick"]) == 0
    assert (scripts / "count").read_text() == "1"
    assert "- `bench_slow.py`: ok\n" in (tmp_path / "r.md").read_text()  # no tables: no count
    assert run.main(["--report", str(tmp_path / "r.md"), "--runs", "3"]) == 0
    assert (scripts / "count").read_text() == "4"  # a full report runs it every time


def test_report_names_a_script_run_fewer_times(report: ModuleType) -> None:
    result = {"script": "bench_slow.py", "tables": [report.table("t", ["n"], [{"n": 1}])]}
    text = report.render([report.aggregate([result])], info={"CPU": "x"}, runs=2, quick=True)
    assert "- `bench_slow.py`: ok (1 run)" in text
    twice = report.render([report.aggregate([result, result])], info={"CPU": "x"}, runs=2)
    assert "- `bench_slow.py`: ok\n" in twice


def test_cpu_delta_prefers_thread_run_times(agents: ModuleType) -> None:
    sample = agents.CpuSample
    before = sample(1.00, {10: 5_000_000, 11: 1_000_000})
    grown = sample(1.01, {10: 7_500_000, 11: 1_000_000, 12: 500_000})  # a new thread
    assert agents.cpu_delta(before, grown) == pytest.approx(0.003)
    ended = sample(1.02, {10: 7_500_000})  # thread 11 ended: its time is only in the ticks
    assert agents.cpu_delta(before, ended) == pytest.approx(0.02)
    assert agents.cpu_delta(sample(1.0, {}), sample(1.05, {})) == pytest.approx(0.05)
    total = agents.cpu_between({1: before, 2: before, 3: None}, {1: grown, 2: None, 3: grown})
    assert total == pytest.approx(0.003)  # only processes alive at both ends


def test_cpu_sample_reads_this_process(agents: ModuleType) -> None:
    import os

    first = agents.cpu_sample(os.getpid())
    assert first is not None and os.getpid() in first.threads
    sum(range(200_000))
    second = agents.cpu_sample(os.getpid())
    assert second is not None and agents.cpu_delta(first, second) > 0
    assert agents.cpu_sample(2**22 + 1) is None  # above pid_max's default: no such process
