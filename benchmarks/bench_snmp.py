"""SNMP agent: ``snmpbulkwalk`` varbinds per second, next to net-snmp's ``snmpd``.

For each size N a node file of N test-driver domains is generated with
:mod:`nodegen` and opened read-only; a ``SnapshotCache`` feeds
``HvmonView``, and the standalone ``SnmpEngine`` serves it on a free
127.0.0.1 UDP port (its own event loop in a thread, as in the daemon). The
real ``snmpbulkwalk`` (v2c, ``-Cr<reps>``, numeric quiet output) walks the
guest table:

* ``first``: the first walk of a snapshot generation (each varbind encoded
  on first use and cached in the table's scratch);
* ``warm``: the following walks (answers assembled from cached bytes).

In the same run, net-snmp's ``snmpd`` (started on a free port with a temp
config, ``-f -C -c conf -Lf log -p pid``, state in a temp directory) is
bulkwalked over its mib-2 tree (1.3.6.1.2.1) with the same options. The
agent's process RSS is read after the walks at each size; "(SNMP)" is its
growth over the RSS with the driver and snapshot loaded (the OID table, the
cached encodings and the engine).

Goal: warm rate >= 50% of snmpd's.

Usage: ``python benchmarks/bench_snmp.py [--sizes 1000 10000] [--repeat 3] [--reps 50]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench_testdriver import node_file  # sibling script
from benchkit import LoopThread

GOAL = 0.5


@dataclass
class Row:
    name: str
    varbinds: int
    first: float
    warm: float
    rss_mib: float | None = None
    base_mib: float | None = None


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bulkwalk(port: int, oid: str, reps: int,
             prefix: Sequence[str] = ()) -> tuple[int, float]:
    """(varbinds, seconds) of one ``snmpbulkwalk`` of ``oid`` (run under ``prefix``, if any)."""
    tool = shutil.which("snmpbulkwalk")
    if tool is None:
        raise SystemExit("snmpbulkwalk is not installed (Debian package snmp)")
    argv = [*prefix, tool, "-v2c", "-c", "public", f"-Cr{reps}", "-On", "-Oq", "-m", "", "-t", "5",
            "-r", "1", f"127.0.0.1:{port}", oid]
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"snmpbulkwalk failed: {result.stderr.strip()[:300]}")
    return len(result.stdout.splitlines()), elapsed


def walks(port: int, oid: str, reps: int, repeat: int,
          prefix: Sequence[str] = ()) -> tuple[int, float, float]:
    """(varbinds, first rate, best warm rate of ``repeat`` walks)."""
    count, first = bulkwalk(port, oid, reps, prefix)
    warm = [bulkwalk(port, oid, reps, prefix)[1] for _ in range(repeat)]
    return count, count / first, count / min(warm)


def measure_hvmon(n: int, reps: int, repeat: int) -> Row:
    import hvmon
    from hvmon.core.snapshot import SnapshotCache
    from hvmon.plugins.snmp import oids
    from hvmon.plugins.snmp.engine import SnmpEngine
    from hvmon.plugins.snmp.mibview import HvmonView
    from hvmon.plugins.snmp.types import format_oid
    from hvmon.plugins.snmp.vacm import read_only

    runner = LoopThread()
    with hvmon.open_readonly(f"test://{node_file(n)}") as conn:
        cache = SnapshotCache(conn, max_age=3600)
        try:
            snap = cache.get(max_age=0)
            if len(snap.domains) != n:
                raise RuntimeError(f"snapshot holds {len(snap.domains)} domains, expected {n}")
            base = rss_mib()  # the driver and its snapshot, before any SNMP structure
            view = HvmonView(cache.get, max_age=3600)
            engine = SnmpEngine(view, communities={"public": read_only("public")},
                                refresh_interval=3600)
            port = free_udp_port()
            runner.call(engine.start([("127.0.0.1", port)]))
            try:
                count, first, warm = walks(port, format_oid(oids.GUEST_TABLE), reps, repeat)
                memory = rss_mib()
            finally:
                runner.call(engine.stop())
        finally:
            cache.stop()
            runner.close()
    return Row(f"hvmon guest table, {n} domains", count, first, warm, memory, base)


def measure_snmpd(reps: int, repeat: int) -> Row | None:
    binary = shutil.which("snmpd") or "/usr/sbin/snmpd"
    if not os.access(binary, os.X_OK):
        print("snmpd is not installed (Debian package snmpd): no comparison")
        return None
    port = free_udp_port()
    with tempfile.TemporaryDirectory(prefix="bench-snmpd-") as tmp:
        conf = Path(tmp) / "snmpd.conf"
        conf.write_text("rocommunity public 127.0.0.1\n")  # the address is on the command line
        env = {**os.environ, "SNMP_PERSISTENT_DIR": tmp}
        argv = [binary, "-f", "-C", "-c", str(conf), "-Lf", str(Path(tmp) / "snmpd.log"),
                "-p", str(Path(tmp) / "snmpd.pid"), f"udp:127.0.0.1:{port}"]
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    bulkwalk(port, "1.3.6.1.2.1.1", reps)
                    break
                except RuntimeError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.2)
            count, first, warm = walks(port, "1.3.6.1.2.1", reps, repeat)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    return Row("net-snmp snmpd mib-2", count, first, warm)


def render(rows: list[Row], reference: Row | None) -> str:
    lines = [f"{'walk':<34} {'varbinds':>9} {'first/s':>9} {'warm/s':>9} {'vs snmpd':>9} "
             f"{'RSS MiB':>8} {'(SNMP)':>7}"]
    for row in rows:
        ratio = f"{row.warm / reference.warm:>8.0%}" if reference else "       -"
        rss = "       -        -"
        if row.rss_mib is not None and row.base_mib is not None:
            rss = f"{row.rss_mib:8.0f} {row.rss_mib - row.base_mib:+8.0f}"
        lines.append(f"{row.name:<34} {row.varbinds:>9} {row.first:>9.0f} {row.warm:>9.0f} "
                     f"{ratio:>9} {rss}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SNMP agent bulkwalk rate")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3, help="warm walks per size")
    parser.add_argument("--reps", type=int, default=50, help="snmpbulkwalk -Cr")
    parser.add_argument("--json", type=Path, help="write the results here (benchmarks/report.py)")
    args, _ = parser.parse_known_args(argv)
    repeat = max(1, min(args.repeat, 5))
    reference = measure_snmpd(args.reps, repeat)
    rows = [measure_hvmon(n, args.reps, repeat) for n in args.sizes]
    if reference is not None:
        rows.append(reference)
    print(render(rows, reference))
    if reference is not None:
        worst = min(r.warm for r in rows if r is not reference)
        verdict = "met" if worst >= GOAL * reference.warm else "NOT met"
        print(f"goal: warm bulkwalk >= {GOAL:.0%} of snmpd ({GOAL * reference.warm:.0f}/s): "
              f"{verdict} (slowest: {worst:.0f}/s)")
    if args.json:
        write_json(args.json, rows, reference)
    return 0


def write_json(path: Path, rows: list[Row], reference: Row | None) -> None:
    """The walks, the goal (>= 0.5x snmpd) and hvmon/snmpd ratios (benchmarks/report.py)."""
    import report  # sibling module

    columns = ("walk", "varbinds", "first varbinds/s", "warm varbinds/s", "RSS MiB")
    lines = [{"walk": r.name, "varbinds": r.varbinds, "first varbinds/s": r.first,
              "warm varbinds/s": r.warm, "RSS MiB": r.rss_mib} for r in rows]
    ours = [r for r in rows if r is not reference]
    worst = min(r.warm for r in ours) if ours else None
    share = worst / reference.warm if reference and worst is not None else None
    goals = [report.goal("SNMP warm bulkwalk rate, slowest size, as a share of snmpd's", share,
                         ">=", GOAL, "x")]
    ratios = [report.ratio(r.name, "snmpd mib-2", r.warm, reference.warm if reference else None,
                           "varbinds/s", higher_is_better=True, limit=1 / GOAL) for r in ours]
    report.write_result(path, "bench_snmp.py", title="SNMP bulkwalk vs net-snmp snmpd",
                        note="" if reference else "snmpd not installed: no comparison",
                        tables=[report.table("snmpbulkwalk", columns, lines)], goals=goals,
                        ratios=ratios)


if __name__ == "__main__":
    raise SystemExit(main())
