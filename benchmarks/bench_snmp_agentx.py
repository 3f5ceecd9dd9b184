"""AgentX subagent cost: the responder in-process, and ``snmpbulkwalk`` through a real snmpd.

Table 1 (no sockets): the subagent's handler answering GetNext PDUs (one
varbind, as net-snmp's master sends them) and GetBulk PDUs (25 repetitions)
over the HVMON-MIB guest table of N test-driver domains — decode, lookup,
encode; the table and its encoding cache are warm.

Table 2: ``snmpbulkwalk -v2c -Cr<R>`` of hvmonGuestTable through Debian's
``snmpd`` (``master agentx``, UNIX socket in a temp dir) with the subagent
registered, in varbinds per second, next to the same snmpd bulkwalking its
own mib-2 tree in the same run. net-snmp's master turns a GETBULK into one
AgentX GetNext per repetition, so the rate is bound by round trips between
snmpd and the subagent, not by the subagent's table.

snmpd runs with ``-C -c conf`` and its persistent state in the temp dir, on
free loopback ports; it is stopped by PID at the end.

Usage: ``python benchmarks/bench_snmp_agentx.py [--sizes 1000] [--reps 25] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_testdriver import node_file  # sibling script
from benchkit import LoopThread

from hvmon.plugins.snmp import oids
from hvmon.plugins.snmp.types import format_oid

MIB2 = "1.3.6.1.2.1"


def _table(header: tuple[str, ...], lines: list[tuple[str, ...]]) -> str:
    widths = [max(len(col) for col in column) for column in zip(header, *lines, strict=False)]
    fmt = " | ".join(f"{{:>{w}}}" for w in widths)
    out = [fmt.format(*header), "-+-".join("-" * w for w in widths)]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)


# --- table 1: the responder alone ---------------------------------------------------------

def responder_costs(view: Any, rounds: int = 20000) -> dict[str, float]:
    """Microseconds per GetNext (1 varbind) and per GetBulk (25 repetitions) handled."""
    from hvmon.plugins.snmp.agentx import pdu
    from hvmon.plugins.snmp.agentx.subagent import AgentxSubagent

    sub = AgentxSubagent(view, "/nonexistent", logger=logging.getLogger("bench"))
    table = sub._table = view.table()  # what start() would have fetched
    start, stop = table.within(oids.GUEST_TABLE)
    names = table.oids[start:stop] or table.oids

    class Sink:
        session_id = 1
        sent = 0

        def send(self, data: bytes) -> None:
            self.sent += len(data)

    sink = Sink()
    end = oids.GUEST_TABLE[:-1] + (oids.GUEST_TABLE[-1] + 1,)
    requests = {
        "GetNext (1 varbind)": [
            pdu.encode(pdu.GetNext((pdu.SearchRange(names[i % len(names)], end),)),
                       session_id=1, packet_id=i) for i in range(min(rounds, 5000))],
        "GetBulk (25 repetitions)": [
            pdu.encode(pdu.GetBulk(0, 25, (pdu.SearchRange(names[(25 * i) % len(names)],
                                                           end),)),
                       session_id=1, packet_id=i) for i in range(min(rounds, 2000))],
    }
    costs = {}
    for label, encoded in requests.items():
        parsed = [(pdu.decode_header(data), data[20:]) for data in encoded]
        for header, payload in parsed:  # warm the encoding cache
            sub._on_request(sink, header, payload)  # type: ignore[arg-type]
        begin = time.perf_counter()
        for header, payload in parsed:
            sub._on_request(sink, header, payload)  # type: ignore[arg-type]
        costs[label] = (time.perf_counter() - begin) / len(parsed) * 1e6
    return costs


# --- table 2: through snmpd -----------------------------------------------------------------

def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        raise SystemExit(f"{name} is not installed (apt-get install snmp snmpd)")
    return path


class Snmpd:
    """snmpd as an AgentX master in a temp dir; stopped by PID."""

    def __init__(self, home: Path) -> None:
        self.port = _free_udp_port()
        self.socket = home / "agentx.sock"
        (home / "persist").mkdir()
        conf = home / "snmpd.conf"
        conf.write_text(f"master agentx\nagentXSocket unix:{self.socket}\nagentXTimeout 10\n"
                        f"agentaddress udp:127.0.0.1:{self.port}\n"
                        "rocommunity public 127.0.0.1\ndontLogTCPWrappersConnects yes\n")
        env = dict(os.environ, SNMP_PERSISTENT_DIR=str(home / "persist"))
        self.proc = subprocess.Popen(
            [_tool("snmpd"), "-f", "-C", "-c", str(conf), "-m", "", "-Lf",
             str(home / "snmpd.log"), "-p", str(home / "snmpd.pid")],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit("snmpd did not start (see its log)")
            time.sleep(0.05)

    def bulkwalk(self, oid: str, reps: int) -> tuple[int, float]:
        """(varbinds, seconds) of one snmpbulkwalk of ``oid``."""
        argv = [_tool("snmpbulkwalk"), "-v2c", "-c", "public", "-m", "", "-On", "-t", "10",
                f"-Cr{reps}", f"udp:127.0.0.1:{self.port}", oid]
        begin = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        seconds = time.perf_counter() - begin
        if done.returncode != 0:
            raise RuntimeError(f"snmpbulkwalk failed: {done.stderr.strip()[:200]}")
        return len(done.stdout.splitlines()), seconds

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def through_snmpd(n: int, reps: int, repeat: int) -> tuple[dict[str, Any], dict[str, float]]:
    """Walk results for ``n`` domains: the subagent's guest table and snmpd's mib-2."""
    import hvmon
    from hvmon.core.snapshot import SnapshotCache
    from hvmon.plugins.snmp.agentx.subagent import AgentxSubagent
    from hvmon.plugins.snmp.mibview import HvmonView

    with tempfile.TemporaryDirectory(prefix="bench-agentx-") as tmp, \
            hvmon.open_readonly(f"test://{node_file(n)}") as conn:
        cache = SnapshotCache(conn, max_age=3600)
        snap = cache.get(max_age=0)
        if len(snap.domains) != n:
            raise RuntimeError(f"snapshot holds {len(snap.domains)} domains, expected {n}")
        view = HvmonView(cache.get, libvirt_compat=True)
        view.table()
        snmpd = Snmpd(Path(tmp))
        runner = LoopThread("bench-agentx")
        sub = None
        try:
            async def make() -> AgentxSubagent:
                return AgentxSubagent(view, str(snmpd.socket),
                                      logger=logging.getLogger("bench"), timeout=10)
            sub = runner.call(make())
            runner.call(sub.start())
            if not sub.health()[0]:
                raise RuntimeError(sub.health()[1])
            guest = format_oid(oids.GUEST_TABLE)
            snmpd.bulkwalk(guest, reps)  # warm-up: table build and encoding cache
            results: dict[str, Any] = {}
            for label, oid in (("hvmon subagent, hvmonGuestTable", guest),
                               ("snmpd itself, mib-2", MIB2)):
                runs = [snmpd.bulkwalk(oid, reps) for _ in range(repeat)]
                varbinds = runs[0][0]
                rate = statistics.median(count / seconds for count, seconds in runs)
                results[label] = (varbinds, rate)
            costs = responder_costs(view)
        finally:
            if sub is not None:
                runner.call(sub.stop())
            runner.close()
            snmpd.stop()
            cache.stop()
    return results, costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="AgentX subagent behind snmpd")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--reps", type=int, default=25, help="snmpbulkwalk -Cr")
    parser.add_argument("--repeat", type=int, default=3, help="walks per measurement")
    args = parser.parse_args(argv)
    print("== AgentX subagent (test driver, HVMON-MIB + LIBVIRT-MIB view) ==", flush=True)
    walks, costs_rows = [], []
    for n in args.sizes:
        results, costs = through_snmpd(n, args.reps, args.repeat)
        costs_rows.append((f"{n:,}", *(f"{us:.1f}" for us in costs.values())))
        for label, (varbinds, rate) in results.items():
            walks.append((f"{n:,}", label, f"{varbinds:,}", f"{rate:,.0f}"))
        print(f"  {n:,} domains done", flush=True)
        cost_header = ("domains", *(f"{label} us" for label in costs))
    print("\nTable 1: the responder in-process (decode + lookup + encode, warm cache)")
    print(_table(cost_header, costs_rows))
    print(f"\nTable 2: snmpbulkwalk -v2c -Cr{args.reps} through snmpd (median of "
          f"{args.repeat})")
    print(_table(("domains", "walk", "varbinds", "varbinds/s"), walks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
