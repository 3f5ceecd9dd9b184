"""SNMP on tables of the same size: hvmon's guest table next to snmpd's ifTable, in a netns.

:mod:`bench_snmp` compares hvmon's guest table with snmpd's mib-2 of this
machine, whatever its size. Here both agents serve a table of N rows:

* a network namespace of its own (``ip netns add hvbench<pid>``) gets N - 1
  interfaces besides ``lo`` (``dummy`` when the kernel has it, else ``veth``
  pairs with both ends inside, plus one ``bridge`` for an odd count), so
  net-snmp's ``snmpd`` (``-f -C -c conf``, run with ``ip netns exec``) has an
  ``ifTable`` (and ``ifXTable``) of N rows;
* hvmon's standalone SNMP engine serves ``hvmonGuestTable`` of N test-driver
  domains (:mod:`nodegen`'s node file) from a process started the same way in
  the same namespace.

Both listen on the namespace's own 127.0.0.1; every ``snmpbulkwalk`` (v2c,
``-Cr<reps>``) runs with ``ip netns exec`` too, so both walks pay the same
process start. Figures as in :mod:`bench_snmp`: ``first`` walk and best of
``--repeat`` warm walks, in varbinds per second. The namespace is deleted
afterwards (with every interface in it); the host's network is never touched.

Goal (issue 15): hvmon's warm rate >= 0.5x snmpd's ifTable rate on the same
number of rows.

Usage: ``python benchmarks/bench_snmp_iftable.py [--sizes 100 1000] [--repeat 3] [--reps 50]
[--json FILE]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench_snmp import GOAL, LoopThread, bulkwalk, walks  # sibling script
from bench_testdriver import node_file

IF_TABLE = "1.3.6.1.2.1.2.2"
IFX_TABLE = "1.3.6.1.2.1.31.1.1"
HVMON_PORT, SNMPD_PORT = 1161, 1162  # inside the namespace: nothing else listens there
READY = 30.0


@dataclass
class Walk:
    name: str
    rows: int
    varbinds: int
    first: float
    warm: float


def interface_commands(count: int, dummy: bool) -> list[str]:
    """``ip -batch`` lines adding ``count`` interfaces (dummy, or veth pairs + one bridge)."""
    if dummy:
        return [f"link add hb{i} type dummy" for i in range(count)]
    lines = [f"link add hb{i}a type veth peer name hb{i}b" for i in range(count // 2)]
    if count % 2:
        lines.append("link add hbx type bridge")
    return lines


def table_rows(varbinds: int, columns: int) -> int:
    """Rows of a walked table from its varbind count (one varbind per column and row)."""
    return varbinds // columns if columns else 0


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check,
                          timeout=120)


@contextlib.contextmanager
def namespace(interfaces: int, tmp: Path) -> Iterator[tuple[str, str]]:
    """A new netns with ``lo`` up and ``interfaces`` more; yields (name, kind)."""
    name = f"hvbench{os.getpid()}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        dummy = _ip("-n", name, "link", "add", "hbprobe", "type", "dummy",
                    check=False).returncode == 0
        if dummy:
            _ip("-n", name, "link", "del", "hbprobe")
        batch = tmp / "links.batch"
        batch.write_text("\n".join(interface_commands(interfaces, dummy)) + "\n")
        if interfaces:
            _ip("-n", name, "-batch", str(batch))
        yield name, "dummy" if dummy else "veth"
    finally:
        for pid in _ip("netns", "pids", name, check=False).stdout.split():
            with contextlib.suppress(OSError, ValueError):  # only processes this script began
                os.kill(int(pid), signal.SIGKILL)
        _ip("netns", "del", name, check=False)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@contextlib.contextmanager
def snmpd(ns: str, tmp: Path) -> Iterator[None]:
    """net-snmp's snmpd in ``ns`` on 127.0.0.1:SNMPD_PORT; stopped by PID."""
    binary = shutil.which("snmpd") or "/usr/sbin/snmpd"
    conf = tmp / "snmpd.conf"
    conf.write_text("rocommunity public 127.0.0.1\n")
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(tmp)}
    proc = subprocess.Popen(["ip", "netns", "exec", ns, binary, "-f", "-C", "-c", str(conf),
                             "-Lf", str(tmp / "snmpd.log"), "-p", str(tmp / "snmpd.pid"),
                             f"udp:127.0.0.1:{SNMPD_PORT}"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + READY
        log = tmp / "snmpd.log"
        while not (log.exists() and "NET-SNMP version" in log.read_text(errors="replace")):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("snmpd did not start in the namespace")
            time.sleep(0.02)  # logged once it listens: no walk lost to a 5 s timeout
        bulkwalk(SNMPD_PORT, "1.3.6.1.2.1.1", 10, ["ip", "netns", "exec", ns])
        yield
    finally:
        _stop(proc)


@contextlib.contextmanager
def hvmon_agent(ns: str, n: int) -> Iterator[None]:
    """This script's ``--serve N PORT`` in ``ns``: hvmon's engine over N test domains."""
    node_file(n)  # generated here, not in the child
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, str(Path(__file__)),
                             "--serve", str(n), str(HVMON_PORT)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], READY)
        if not ready or proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("hvmon's SNMP engine did not start in the namespace")
        yield
    finally:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # the child exits at EOF
        _stop(proc)


def serve(n: int, port: int) -> int:
    """Serve hvmonGuestTable of ``n`` test domains on 127.0.0.1:port until stdin closes."""
    import hvmon
    from hvmon.core.snapshot import SnapshotCache
    from hvmon.plugins.snmp.engine import SnmpEngine
    from hvmon.plugins.snmp.mibview import HvmonView
    from hvmon.plugins.snmp.vacm import read_only

    runner = LoopThread()
    with hvmon.open_readonly(f"test://{node_file(n)}") as conn:
        cache = SnapshotCache(conn, max_age=3600)
        try:
            cache.get(max_age=0)
            view = HvmonView(cache.get, max_age=3600)
            engine = SnmpEngine(view, communities={"public": read_only("public")},
                                refresh_interval=3600)
            runner.call(engine.start([("127.0.0.1", port)]))
            try:
                print("ready", flush=True)
                sys.stdin.read()
            finally:
                runner.call(engine.stop())
        finally:
            cache.stop()
            runner.close()
    return 0


def measure(n: int, reps: int, repeat: int) -> list[Walk]:
    """Walk hvmon's guest table and snmpd's ifTable/ifXTable, N rows each."""
    from hvmon.plugins.snmp import oids
    from hvmon.plugins.snmp.types import format_oid

    out = []
    with tempfile.TemporaryDirectory(prefix="bench-snmpns-") as tmp, \
            namespace(n - 1, Path(tmp)) as (ns, kind):
        prefix = ["ip", "netns", "exec", ns]
        with hvmon_agent(ns, n):
            count, first, warm = walks(HVMON_PORT, format_oid(oids.GUEST_TABLE), reps, repeat,
                                       prefix)
            out.append(Walk(f"hvmon hvmonGuestTable, {n} domains", n, count, first, warm))
        with snmpd(ns, Path(tmp)):
            for label, oid in (("ifTable", IF_TABLE), ("ifXTable", IFX_TABLE)):
                count, first, warm = walks(SNMPD_PORT, oid, reps, repeat, prefix)
                rows = bulkwalk(SNMPD_PORT, oid + ".1.1", reps, prefix)[0]  # the index column
                out.append(Walk(f"snmpd {label}, {rows} {kind}/lo interfaces", rows, count,
                                first, warm))
    return out


def render(walked: list[Walk]) -> str:
    lines = [f"{'walk':<40} {'rows':>6} {'varbinds':>9} {'first/s':>9} {'warm/s':>9} "
             f"{'hvmon/snmpd':>12}"]
    hv = next((w for w in walked if w.name.startswith("hvmon")), None)
    for w in walked:
        share = f"{hv.warm / w.warm:>11.0%}" if hv and w is not hv else "           -"
        lines.append(f"{w.name:<40} {w.rows:>6} {w.varbinds:>9} {w.first:>9.0f} "
                     f"{w.warm:>9.0f} {share:>12}")
    return "\n".join(lines)


def write_json(path: Path, sizes: list[int], results: dict[int, list[Walk]]) -> None:
    """The walks, hvmon/snmpd-ifTable ratios (limit 2.0) and the >= 0.5x goal."""
    import report  # sibling module

    columns = ("size", "walk", "rows", "varbinds", "first varbinds/s", "warm varbinds/s")
    lines, ratios, shares = [], [], []
    for n in sizes:
        walked = results[n]
        lines += [{"size": n, "walk": w.name, "rows": w.rows, "varbinds": w.varbinds,
                   "first varbinds/s": w.first, "warm varbinds/s": w.warm} for w in walked]
        hv, iftable = walked[0], walked[1]
        ratios.append(report.ratio(f"hvmonGuestTable vs ifTable, {n} rows", "snmpd ifTable",
                                   hv.warm, iftable.warm, "varbinds/s", higher_is_better=True,
                                   limit=1 / GOAL))
        shares.append(hv.warm / iftable.warm)
    goals = [report.goal("SNMP warm bulkwalk, same-size table, slowest size, as a share of "
                         "snmpd's ifTable", min(shares) if shares else None, ">=", GOAL, "x")]
    report.write_result(path, "bench_snmp_iftable.py",
                        title="SNMP bulkwalk vs snmpd's ifTable of the same size (netns)",
                        tables=[report.table("snmpbulkwalk", columns, lines)], goals=goals,
                        ratios=ratios)


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["--serve"]:
        return serve(int(args_list[1]), int(args_list[2]))
    parser = argparse.ArgumentParser(description="SNMP bulkwalk on same-size tables (netns)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeat", type=int, default=3, help="warm walks per size")
    parser.add_argument("--reps", type=int, default=50, help="snmpbulkwalk -Cr")
    parser.add_argument("--json", type=Path, help="write the results here (benchmarks/report.py)")
    args, _ = parser.parse_known_args(args_list)
    missing = [tool for tool in ("ip", "snmpbulkwalk") if shutil.which(tool) is None]
    if not (shutil.which("snmpd") or os.access("/usr/sbin/snmpd", os.X_OK)):
        missing.append("snmpd")
    why = ("needs " + ", ".join(missing) + " (Debian packages iproute2, snmp, snmpd)" if missing
           else "needs root for ip netns" if os.geteuid() != 0 else "")
    if why:
        print(f"{why}: skipped")
        if args.json:
            import report  # sibling module

            report.write_result(args.json, "bench_snmp_iftable.py", status="skipped", note=why)
        return 0
    sizes = sorted({max(1, n) for n in args.sizes})
    repeat = max(1, min(args.repeat, 5))
    print(f"== SNMP bulkwalk on same-size tables in a netns (best of {repeat} warm walks) ==",
          flush=True)
    results = {n: measure(n, args.reps, repeat) for n in sizes}
    for n in sizes:
        print(render(results[n]))
    if args.json:
        write_json(args.json, sizes, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
