"""Prometheus exporter scrape cost at 10 to 10,000 test-driver domains.

For each size N a node file is generated with :mod:`nodegen` (the files the
other benchmarks use) and opened read-only, as the daemon does. Scrapes go
through the real HTTP server (``MetricsServer`` on a loopback port, one
keep-alive client connection), so each latency includes the request, the
render and reading the whole body:

* ``warm``: scrapes served from one snapshot (``max_age`` of an hour): the
  cached body of the snapshot's families plus the exporter's own families;
* ``cold``: ``max_age = 0``, so every scrape refreshes the snapshot (bulk
  stats of every domain) and renders every family;
* ``bytes``: size of one scrape's body, and gzipped (``Accept-Encoding``);
* at 1,000 domains, rendering the same snapshot's families with hvmon's
  renderer and with prometheus_client's ``generate_latest`` over
  ``SnapshotCollector``, for comparison (no HTTP, no refresh).

Goals: warm scrape at 1,000 domains < 50 ms, cold < 300 ms (median).

``--repeat R`` sets the cold scrapes per size (default 20; at most 5 at
10,000 domains) and 10 R warm scrapes (at most 50 at 10,000).

Usage: ``python benchmarks/bench_prometheus.py [--sizes 10 100 1000 10000] [--repeat 20]``
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench_testdriver import median_time, node_file  # sibling script

if TYPE_CHECKING:
    from hvmon.core.snapshot import Snapshot, SnapshotCache
    from hvmon.plugins.prometheus.httpserver import MetricsServer

GOALS = {("warm", 1000): 0.050, ("cold", 1000): 0.300}
COMPARE_AT = 1000


@dataclass
class Row:
    n: int
    warm: list[float]
    cold: list[float]
    size: int
    gzipped: int
    series: int


def p99(times: list[float]) -> float:
    """The 99th percentile (the largest value when there are few samples)."""
    if len(times) < 100:
        return max(times)
    return statistics.quantiles(times, n=100)[98]


class Client:
    """One keep-alive HTTP connection to the exporter."""

    def __init__(self, port: int) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, gzip: bool = False) -> bytes:
        headers = {"Accept-Encoding": "gzip"} if gzip else {}
        self._conn.request("GET", "/metrics", headers=headers)
        answer = self._conn.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"scrape answered {answer.status}: {body[:200]!r}")
        return body

    def timed(self, count: int) -> list[float]:
        times = []
        for _ in range(count):
            start = time.perf_counter()
            self.get()
            times.append(time.perf_counter() - start)
        return times

    def close(self) -> None:
        self._conn.close()


def _served(cache: SnapshotCache, max_age: float) -> MetricsServer:
    from hvmon.plugins.prometheus.httpserver import MetricsServer
    from hvmon.plugins.prometheus.scrape import Scraper

    server = MetricsServer("127.0.0.1", 0, scrape=Scraper(cache.get, max_age=max_age).scrape,
                           health=lambda: (True, "ok"))
    server.start()
    return server


def measure(n: int, repeat: int) -> tuple[Row, dict[str, float] | None]:
    """Scrape timings over a node file of ``n`` domains (and the comparison at 1,000)."""
    import hvmon
    from hvmon.core.snapshot import SnapshotCache

    cold_count = max(1, min(repeat, 5) if n >= 10000 else repeat)
    warm_count = max(10, min(10 * repeat, 50) if n >= 10000 else 10 * repeat)
    with hvmon.open_readonly(f"test://{node_file(n)}") as conn:
        cache = SnapshotCache(conn, max_age=3600)
        snap = cache.get(max_age=0)  # the first refresh reads every domain's XML once
        if len(snap.domains) != n:
            raise RuntimeError(f"snapshot holds {len(snap.domains)} domains, expected {n}")
        warm_server, cold_server = _served(cache, 3600), _served(cache, 0)
        warm, cold = Client(warm_server.port), Client(cold_server.port)
        try:
            body = warm.get()  # renders and caches the body for this generation
            gzipped = len(warm.get(gzip=True))
            warm_times = warm.timed(warm_count)
            cold.get()
            cold_times = cold.timed(cold_count)
        finally:
            warm.close()
            cold.close()
            warm_server.stop()
            cold_server.stop()
            cache.stop()
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        compare = compare_renderers(cache.current() or snap, repeat) if n == COMPARE_AT else None
    return Row(n, warm_times, cold_times, len(body), gzipped, series), compare


def compare_renderers(snap: Snapshot, repeat: int) -> dict[str, float]:
    """Median seconds to render ``snap``'s families: hvmon's renderer, prometheus_client's."""
    from prometheus_client import CollectorRegistry, generate_latest

    from hvmon.plugins.prometheus.collector import BUILDERS, SnapshotCollector
    from hvmon.plugins.prometheus.exposition import render

    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: snap))
    runs = max(3, repeat // 2)

    def ours() -> bytes:
        return render(itertools.chain.from_iterable(b(snap) for b in BUILDERS.values()))

    return {"hvmon render()": median_time(ours, runs),
            "prometheus_client generate_latest()": median_time(
                lambda: generate_latest(registry), runs)}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def render_table(rows: list[Row]) -> str:
    """The result table as aligned text (latencies in ms)."""
    header = ("domains", "warm med ms", "warm p99 ms", "cold med ms", "cold p99 ms",
              "bytes", "gzip bytes", "series", "scrapes w/c")
    lines = [(f"{r.n:,}", _ms(statistics.median(r.warm)), _ms(p99(r.warm)),
              _ms(statistics.median(r.cold)), _ms(p99(r.cold)), f"{r.size:,}",
              f"{r.gzipped:,}", f"{r.series:,}", f"{len(r.warm)}/{len(r.cold)}")
             for r in rows]
    widths = [max(len(col) for col in column) for column in zip(header, *lines, strict=False)]
    fmt = " | ".join(f"{{:>{w}}}" for w in widths)
    out = [fmt.format(*header), "-+-".join("-" * w for w in widths)]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)


def goal_lines(rows: list[Row]) -> list[str]:
    """One line per goal: the figure measured next to the goal."""
    out = []
    for (kind, n), goal in GOALS.items():
        row = next((r for r in rows if r.n == n), None)
        if row is None:
            out.append(f"goal {kind} scrape at {n:,} domains < {_ms(goal)} ms: not measured")
            continue
        figure = statistics.median(row.warm if kind == "warm" else row.cold)
        verdict = "met" if figure < goal else "NOT MET"
        out.append(f"goal {kind} scrape at {n:,} domains < {_ms(goal)} ms: "
                   f"{_ms(figure)} ms median -> {verdict}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Prometheus exporter scrape cost")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=20,
                        help="cold scrapes per size (10x as many warm ones)")
    parser.add_argument("--json", type=Path, help="write the results here (benchmarks/report.py)")
    args = parser.parse_args(argv)
    print("== Prometheus exporter: scrapes through the HTTP server (test driver) ==",
          flush=True)
    rows, compare = [], None
    for n in args.sizes:
        row, compared = measure(n, args.repeat)
        rows.append(row)
        compare = compare or compared
        print(f"  {n:,} domains done", flush=True)
    print(render_table(rows))
    print()
    for line in goal_lines(rows):
        print(line)
    if compare is not None:
        print(f"\nrendering one snapshot of {COMPARE_AT:,} domains (every group, median):")
        for name, seconds in compare.items():
            print(f"  {name:38s} {_ms(seconds):>8} ms")
    if args.json:
        write_json(args.json, rows, compare)
    return 0


def write_json(path: Path, rows: list[Row], compare: dict[str, float] | None) -> None:
    """Medians per size, the goals and the renderer comparison (benchmarks/report.py)."""
    import report  # sibling module

    columns = ("domains", "warm ms", "warm p99 ms", "cold ms", "cold p99 ms", "bytes", "series")
    lines = [{"domains": r.n, "warm ms": statistics.median(r.warm) * 1000,
              "warm p99 ms": p99(r.warm) * 1000, "cold ms": statistics.median(r.cold) * 1000,
              "cold p99 ms": p99(r.cold) * 1000, "bytes": r.size, "series": r.series}
             for r in rows]
    goals = []
    for (kind, n), limit in GOALS.items():
        found = [r for r in rows if r.n == n]
        value = statistics.median(getattr(found[0], kind)) * 1000 if found else None
        goals.append(report.goal(f"{kind} Prometheus scrape, {n:,} domains", value, "<",
                                 limit * 1000, "ms"))
    ratios = []
    if compare:
        names = list(compare)
        ratios.append(report.ratio(f"render {COMPARE_AT:,} domains", "prometheus_client",
                                   compare[names[0]], compare[names[-1]]))
    report.write_result(path, "bench_prometheus.py", title="Prometheus exporter scrapes",
                        tables=[report.table("scrapes through the HTTP server", columns, lines)],
                        goals=goals, ratios=ratios)


if __name__ == "__main__":
    raise SystemExit(main())
