"""Scaling on the test driver: 10 -> 100 -> 1,000 -> 10,000 domains, cost per domain.

For each size N (``--sizes``; ``--quick``: 10, 100, 1,000) the node file of
:mod:`nodegen` is used by each part, reusing the other scripts' measurements:

* ``open``: ``hvmon.open`` of the node file (median, :mod:`bench_testdriver`);
* ``define``: ``define_domain_xml`` of N generated domains into a fresh
  ``test:///default`` (one run, total);
* ``snapshot refresh``: ``SnapshotCache.get(max_age=0)`` (:mod:`bench_snapshot`);
* ``prometheus warm`` / ``cold``: scrapes through the HTTP server
  (:mod:`bench_prometheus`, medians);
* ``snmp bulkwalk``: ``snmpbulkwalk`` of the guest table (:mod:`bench_snmp`),
  warm varbinds/s, shown as seconds per walk for the curve;
* ``cim enumerate``: raw EnumerateInstances of KVM_ComputerSystem, best warm
  (:mod:`bench_cim`);
* ``collectd exec``: CPU seconds of one exec interval (:mod:`bench_collectd`);
* ``amqp publish``: one full snapshot round published with confirms on the
  machine's RabbitMQ (127.0.0.1:5672) under a unique prefix, deleted
  afterwards (:mod:`bench_amqp`'s daemon); best of ``--repeat``;
* ``daemon RSS``: an ``hvmond`` subprocess serving the node file (no agents),
  RSS after its first snapshot and one stats call through its socket; stopped
  by PID. ``--rss-at`` adds sizes measured for this figure only (``--quick``:
  10,000, the goal's size).

A part that cannot run here (tool missing, no broker) is recorded as skipped
with its reason; the others go on. ``--json FILE`` writes every figure and
its cost per domain (:mod:`report`). Goal: daemon RSS at 10,000 < 300 MB.

Usage: ``python benchmarks/bench_scaling.py [--sizes 10 100 1000 10000] [--repeat 3]
[--quick] [--rss-at 10000] [--json FILE]``
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_amqp  # sibling scripts: benchmarks/ is sys.path[0] when run as a script
import bench_cim
import bench_collectd
import bench_prometheus
import bench_snapshot
import bench_snmp
import nodegen
import report
from bench_testdriver import median_time, node_file
from benchkit import HVMOND, hvmond

MB = 1_000_000
RSS_GOAL_MB = 300.0
RSS_GOAL_AT = 10000

#: (key, label, unit) of each figure; times are totals for N domains.
PARTS = (
    ("open", "open", "s"),
    ("define", "define N domains", "s"),
    ("refresh", "snapshot refresh", "s"),
    ("prom_warm", "Prometheus scrape warm", "s"),
    ("prom_cold", "Prometheus scrape cold", "s"),
    ("snmp_walk", "SNMP bulkwalk (one walk)", "s"),
    ("snmp_rate", "SNMP bulkwalk rate", "varbinds/s"),
    ("cim", "CIM EnumerateInstances", "s"),
    ("collectd", "collectd exec interval CPU", "s"),
    ("amqp", "AMQP snapshot publish", "s"),
    ("rss", "daemon RSS", "MB"),
)


def time_open(n: int, repeat: int) -> float:
    import hvmon

    uri = f"test://{node_file(n)}"

    def open_close() -> None:
        hvmon.open(uri).close()

    return median_time(open_close, repeat)


def time_define(n: int) -> float:
    import hvmon

    xmls = [nodegen._domain(i).replace("bench", "scal") for i in range(1, n + 1)]
    with hvmon.open("test:///default") as conn:
        start = time.perf_counter()
        for xml in xmls:
            conn.define_domain_xml(xml)
        return time.perf_counter() - start


def amqp_publish(n: int, repeat: int) -> float:
    """Best time of one full data round published with confirms (RabbitMQ on loopback)."""

    async def run() -> float:
        from hvmon.plugins.amqp.config import BrokerSettings

        prefix = f"hvmonscale-{uuid.uuid4().hex[:8]}"
        settings = BrokerSettings()
        with tempfile.TemporaryDirectory() as tmp:
            daemon, agents = bench_amqp._agent_daemon(f"test://{node_file(n)}", prefix,
                                                      Path(tmp))
            await daemon.start()
            try:
                agent = agents[-1]
                if agent.publisher is None:
                    raise RuntimeError("the amqp agent did not start (is RabbitMQ running?)")
                snap = daemon.snapshots.get()
                totals = []
                for _ in range(repeat):
                    start = time.perf_counter()
                    await agent.publisher.send_data(snap, full=True)
                    totals.append(time.perf_counter() - start)
            finally:
                await daemon.stop()
                await bench_amqp.cleanup(prefix, settings)
        return min(totals)

    return asyncio.run(run())


def rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` in MB (10^6 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / MB
    raise RuntimeError(f"no VmRSS for pid {pid}")


def daemon_rss(n: int) -> float:
    """RSS of an hvmond serving ``n`` domains, after its first snapshot (read through it)."""
    import hvmon

    if not Path(HVMOND).exists():
        raise RuntimeError(f"{HVMOND} is not installed")
    with tempfile.TemporaryDirectory(prefix="hvsc-") as tmp:
        root = Path(tmp)
        path = node_file(n)
        with hvmond(f"test://{path}", root) as daemon:
            pid = daemon.pid
            ro = f"test+unix://{path}?socket={root}/run/hvmon-sock-ro"
            with hvmon.open_readonly(ro) as conn:
                conn.get_all_domain_stats(groups=["state"])
            time.sleep(0.2)
            return rss_mb(pid)


def measure(n: int, repeat: int, reps: int, skipped: dict[str, str]) -> dict[str, Any]:
    """Every part at size ``n``; a part that fails is recorded in ``skipped``."""
    row: dict[str, Any] = {"domains": n}

    def part(key: str, fn: Callable[[], Any]) -> None:
        try:
            row[key] = fn()
        except (Exception, SystemExit) as exc:  # one part failing never ends the run
            row[key] = None
            skipped.setdefault(key, f"{type(exc).__name__}: {str(exc)[:200]}")

    part("open", lambda: time_open(n, repeat))
    part("define", lambda: time_define(n))
    part("refresh", lambda: bench_snapshot.measure(n, repeat).refresh)
    prom: list[Any] = []
    part("prom_warm", lambda: prom.append(bench_prometheus.measure(n, repeat)[0])
         or bench_prometheus.statistics.median(prom[0].warm))
    row["prom_cold"] = (bench_prometheus.statistics.median(prom[0].cold) if prom else None)
    if shutil.which("snmpbulkwalk") is None:
        skipped.setdefault("snmp_rate", "snmpbulkwalk is not installed (Debian package snmp)")
        row["snmp_rate"] = row["snmp_walk"] = None
    else:
        snmp: list[Any] = []
        part("snmp_rate", lambda: snmp.append(bench_snmp.measure_hvmon(n, reps, repeat))
             or snmp[0].warm)
        row["snmp_walk"] = snmp[0].varbinds / snmp[0].warm if snmp and snmp[0].warm else None
    part("cim", lambda: bench_cim.measure(n, repeat).warm)
    part("collectd", lambda: bench_collectd.measure(n, repeat)["exec"])
    part("amqp", lambda: amqp_publish(n, repeat))
    part("rss", lambda: daemon_rss(n))
    return row


def render(rows: list[dict[str, Any]]) -> str:
    """Totals and µs per domain, one line per size."""
    header = ["part"] + [f"{r['domains']:,}" for r in rows]
    lines = []
    for key, label, unit in PARTS:
        cells = []
        for r in rows:
            value = r.get(key)
            cells.append("n/a" if value is None else f"{value:.4g}")
        lines.append([f"{label} ({unit})", *cells])
        if unit == "s":
            per = ["n/a" if r.get(key) is None else f"{r[key] / r['domains'] * 1e6:.3g}"
                   for r in rows]
            lines.append(["  per domain (µs)", *per])
    widths = [max(len(c) for c in col) for col in zip(header, *lines, strict=False)]
    fmt = " | ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    out = [fmt.format(*header), "-+-".join("-" * w for w in widths)]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)


def result_tables(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Total and per-domain tables for the report."""
    labels = {key: f"{label} ({unit})" for key, label, unit in PARTS}
    columns = ["domains", *labels.values()]
    totals = [{"domains": r["domains"], **{labels[k]: r.get(k) for k, _, _ in PARTS}}
              for r in rows]
    per_cols = ["domains"] + [f"{label} µs/domain" for key, label, unit in PARTS if unit == "s"]
    per = []
    for r in rows:
        line: dict[str, Any] = {"domains": r["domains"]}
        for key, label, unit in PARTS:
            if unit == "s":
                value = r.get(key)
                line[f"{label} µs/domain"] = (None if value is None
                                              else value / r["domains"] * 1e6)
        per.append(line)
    return [report.table("totals", columns, totals),
            report.table("cost per domain (flat = linear total)", per_cols, per)]


def result_series(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Curves for the plots: every time figure and the RSS, against domains."""
    series = []
    for key, label, unit in PARTS:
        if unit not in ("s", "MB"):
            continue
        points = [[r["domains"], r[key]] for r in rows if r.get(key) is not None]
        series.append({"name": label, "unit": unit, "points": points})
    return series


def result_goals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    goals = []
    by_n = {r["domains"]: r for r in rows}
    if 1000 in by_n:
        warm = by_n[1000].get("prom_warm")
        goals.append(report.goal("warm Prometheus scrape, 1,000 domains",
                                 None if warm is None else warm * 1000, "<", 50.0, "ms"))
    rss = by_n.get(RSS_GOAL_AT, {}).get("rss")
    goals.append(report.goal(f"daemon RSS at {RSS_GOAL_AT:,} test domains", rss, "<",
                             RSS_GOAL_MB, "MB"))
    return goals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="scaling on the test driver")
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure")
    parser.add_argument("--reps", type=int, default=50, help="snmpbulkwalk -Cr")
    parser.add_argument("--quick", action="store_true", help="sizes 10 to 1,000, 2 repeats")
    parser.add_argument("--rss-at", type=int, nargs="*", default=None,
                        help="extra sizes with the daemon RSS only (quick: 10000)")
    parser.add_argument("--json", type=Path, help="write the results here (benchmarks/report.py)")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([10, 100, 1000] if args.quick else [10, 100, 1000, 10000])
    rss_at = args.rss_at if args.rss_at is not None else ([RSS_GOAL_AT] if args.quick else [])
    repeat = min(args.repeat, 2) if args.quick else args.repeat
    print(f"== scaling on the test driver ({', '.join(f'{n:,}' for n in sizes)} domains, "
          f"{repeat} repeats) ==", flush=True)
    rows, skipped = [], {}
    for n in sizes:
        rows.append(measure(n, repeat, args.reps, skipped))
        print(f"  {n:,} domains done", flush=True)
    for n in sorted(set(rss_at) - set(sizes)):
        row: dict[str, Any] = {"domains": n}
        try:
            row["rss"] = daemon_rss(n)
        except (Exception, SystemExit) as exc:
            row["rss"] = None
            skipped.setdefault("rss", f"{type(exc).__name__}: {str(exc)[:200]}")
        rows.append(row)
        print(f"  {n:,} domains (daemon RSS only) done", flush=True)
    print(render(rows))
    for key, reason in skipped.items():
        print(f"skipped {key}: {reason}")
    if args.json:
        note = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        report.write_result(args.json, "bench_scaling.py",
                            title="scaling on the test driver", note=note,
                            tables=result_tables(rows), goals=result_goals(rows),
                            series=result_series(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
