"""Snapshot refresh cost at 1,000 and 10,000 test-driver domains.

For each size N a node file is generated with :mod:`nodegen` (the same files
``bench_testdriver.py`` uses) and opened read-only, as the daemon's cache
does. Figures, in seconds unless marked:

* ``cold``: the first refresh (every domain's XML is read once);
* ``refresh``: median of ``--repeat`` later refreshes (``get(max_age=0)``);
* ``µs/domain``: ``refresh`` divided by N;
* ``stats``: median of ``get_all_domain_stats()`` alone, the floor a refresh
  stands on, so ``refresh - stats`` is what the snapshot itself costs;
* ``peak RSS Δ``: rise of the process's peak RSS over the refreshes (MiB,
  Linux: the peak is reset through ``/proc/self/clear_refs`` first);
* ``held``: RSS the cache holds afterwards, two snapshots' worth at most (MiB).

Usage: ``python benchmarks/bench_snapshot.py [--sizes 1000 10000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import gc
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from bench_testdriver import median_time, node_file  # sibling script

MIB = 1 << 20


@dataclass
class Row:
    n: int
    cold: float
    refresh: float
    stats: float
    peak_delta: float | None  # MiB
    held: float  # MiB

    @property
    def per_domain_us(self) -> float:
        return self.refresh / max(self.n, 1) * 1e6


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0); False when unavailable."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss() -> int | None:
    """VmHWM in bytes, or None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def measure(n: int, repeat: int) -> Row:
    """Time snapshot refreshes over a node file with ``n`` domains."""
    import hvmon
    from hvmon.core.snapshot import SnapshotCache

    uri = f"test://{node_file(n)}"
    process = psutil.Process()
    with hvmon.open_readonly(uri) as conn:
        stats = median_time(conn.get_all_domain_stats, repeat)
        cache = SnapshotCache(conn)
        gc.collect()
        rss_before = process.memory_info().rss
        peak_ok = _reset_peak()
        peak_before = _peak_rss() if peak_ok else None
        start = time.perf_counter()
        first = cache.get(max_age=0)
        cold = time.perf_counter() - start
        if len(first.domains) != n:
            raise RuntimeError(f"snapshot holds {len(first.domains)} domains, expected {n}")
        refresh = median_time(lambda: cache.get(max_age=0), repeat, warmup=False)
        peak_after = _peak_rss() if peak_ok else None
        gc.collect()
        held = (process.memory_info().rss - rss_before) / MIB
        cache.stop()
    peak = None
    if peak_before is not None and peak_after is not None:
        peak = (peak_after - peak_before) / MIB
    return Row(n, cold, refresh, stats, peak, held)


def render(rows: list[Row]) -> str:
    """The result table as aligned text."""
    header = ("domains", "cold s", "refresh s", "µs/domain", "stats s", "peak RSS Δ MiB",
              "held MiB")
    lines = [
        (str(r.n), f"{r.cold:.3f}", f"{r.refresh:.3f}", f"{r.per_domain_us:.0f}",
         f"{r.stats:.3f}", "n/a" if r.peak_delta is None else f"{r.peak_delta:.1f}",
         f"{r.held:.1f}")
        for r in rows
    ]
    widths = [max(len(col) for col in column) for column in zip(header, *lines, strict=False)]
    fmt = " | ".join(f"{{:>{w}}}" for w in widths)
    out = [fmt.format(*header), "-+-".join("-" * w for w in widths)]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="snapshot refresh cost")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    args = parser.parse_args(argv)
    print(f"== snapshot refresh (test driver, median of {args.repeat} runs) ==", flush=True)
    rows = []
    for n in args.sizes:
        rows.append(measure(n, args.repeat))
    print(render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
