"""Prometheus scrape: hvmon's exporter (libvirt names) next to Debian's prometheus-libvirt-exporter.

For each size N the node file of :mod:`nodegen` is served by:

* **hvmon**: the exporter's HTTP server (``compat = "libvirt"``, ``max_age =
  0``: every scrape refreshes the snapshot, as the libvirt exporter queries
  libvirt on every scrape) over a read-only ``test://`` connection;
* **libvirt**: Debian's ``prometheus-libvirt-exporter`` started on a free
  loopback port with ``--libvirt.uri=test:///abs/node.xml`` (libvirt's own
  test driver, in the exporter's process; stopped by PID).

Each is scraped over one keep-alive HTTP connection; the figure is the median
of ``--repeat`` scrapes after one warm-up scrape. Caveat: the libvirt exporter
opens a new libvirt connection on every scrape, which with the test driver
includes parsing the node file; the side by side through a private libvirtd
on real guests is not measured yet. libvirt's test driver may also hold fewer
domains than the file (the series counts are shown).

The ``libvirt_*`` metric names the libvirt exporter emits that hvmon's does
not are listed (goal: none); its Go runtime and process families are left out.

Usage: ``python benchmarks/bench_libvirt_exporter.py [--sizes 100 1000] [--repeat 5]
[--json FILE]``
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import time
from pathlib import Path

from bench_prometheus import Client  # sibling script
from bench_testdriver import node_file

EXPORTER = "prometheus-libvirt-exporter"


def metric_names(body: bytes) -> set[str]:
    """The metric names of a text exposition body."""
    names = set()
    for line in body.decode("utf-8", "replace").splitlines():
        if line and not line.startswith("#"):
            names.add(line.split("{", 1)[0].split(" ", 1)[0])
    return names


def series_count(body: bytes, prefix: str = "libvirt_domain_info_virtual_cpus") -> int:
    """How many domains a body covers (series of one per-domain metric)."""
    return sum(1 for line in body.decode("utf-8", "replace").splitlines()
               if line.startswith(prefix))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape_times(port: int, repeat: int) -> tuple[list[float], bytes]:
    client = Client(port)
    try:
        body = client.get()
        return client.timed(repeat), body
    finally:
        client.close()


def measure_hvmon(n: int, repeat: int) -> tuple[list[float], bytes]:
    import hvmon
    from hvmon.core.snapshot import SnapshotCache
    from hvmon.plugins.prometheus.httpserver import MetricsServer
    from hvmon.plugins.prometheus.scrape import Scraper

    with hvmon.open_readonly(f"test://{node_file(n)}") as conn:
        cache = SnapshotCache(conn, max_age=0)
        scraper = Scraper(cache.get, compat="libvirt", max_age=0)
        server = MetricsServer("127.0.0.1", 0, scrape=scraper.scrape,
                               health=lambda: (True, "ok"))
        server.start()
        try:
            return scrape_times(server.port, repeat)
        finally:
            server.stop()
            cache.stop()


def measure_exporter(binary: str, n: int, repeat: int, tmp: Path) -> tuple[list[float], bytes]:
    port = free_port()
    log = tmp / f"exporter-{n}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}",
                                 f"--libvirt.uri=test://{node_file(n)}"],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{EXPORTER} did not start: "
                                       f"{log.read_text(errors='replace')[-300:]}") from None
                time.sleep(0.05)
        return scrape_times(port, repeat)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description="hvmon exporter vs prometheus-libvirt-exporter")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the results here (benchmarks/report.py)")
    args, _ = parser.parse_known_args(argv)
    binary = shutil.which(EXPORTER)
    if binary is None:
        print(f"{EXPORTER} is not installed (Debian package {EXPORTER}): skipped")
        if args.json:
            import report  # sibling module

            report.write_result(args.json, "bench_libvirt_exporter.py", status="skipped",
                                note=f"{EXPORTER} is not installed")
        return 0
    print(f"== Prometheus scrape: hvmon (libvirt names) vs {EXPORTER} (test driver, "
          f"median of {args.repeat}) ==", flush=True)
    rows, missing = [], set()
    with tempfile.TemporaryDirectory(prefix="bench-lvexp-") as tmp:
        for n in args.sizes:
            ours, our_body = measure_hvmon(n, args.repeat)
            theirs, their_body = measure_exporter(binary, n, args.repeat, Path(tmp))
            missing |= {name for name in metric_names(their_body) - metric_names(our_body)
                        if name.startswith("libvirt_")}  # not go_*, process_*, promhttp_*
            rows.append({"domains": n, "hvmon ms": statistics.median(ours) * 1000,
                         "libvirt exporter ms": statistics.median(theirs) * 1000,
                         "hvmon domains": series_count(our_body),
                         "exporter domains": series_count(their_body),
                         "hvmon bytes": len(our_body), "exporter bytes": len(their_body)})
    print(f"{'domains':>8} {'hvmon ms':>9} {'exporter ms':>12} {'ratio':>6} "
          f"{'hvmon doms':>11} {'exporter doms':>14}")
    for r in rows:
        ratio = r["hvmon ms"] / r["libvirt exporter ms"]
        print(f"{r['domains']:>8} {r['hvmon ms']:>9.1f} {r['libvirt exporter ms']:>12.1f} "
              f"{ratio:>6.2f} {r['hvmon domains']:>11} {r['exporter domains']:>14}")
    print("libvirt exporter names hvmon does not emit: "
          + (", ".join(sorted(missing)) if missing else "none (goal met)"))
    if args.json:
        import report  # sibling module

        report.write_result(
            args.json, "bench_libvirt_exporter.py",
            title=f"Prometheus scrape vs {EXPORTER} (test driver)",
            note=("missing names: " + ", ".join(sorted(missing))) if missing else "",
            tables=[report.table("scrape, median", list(rows[0]), rows)] if rows else [],
            goals=[report.goal("libvirt exporter metric names hvmon does not emit",
                               len(missing), "<=", 0, "names")],
            ratios=[report.ratio(f"scrape, {r['domains']:,} domains in the node file",
                                 EXPORTER, r["hvmon ms"], r["libvirt exporter ms"], "ms")
                    for r in rows])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
