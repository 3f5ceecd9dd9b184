"""CIM agent: EnumerateInstances of KVM_ComputerSystem at 1,000 and 10,000 domains.

For each size N a node file of N test-driver domains is generated with
:mod:`nodegen` and opened read-only; a ``SnapshotCache`` feeds the WBEM
server (its own event loop in a thread, as in the daemon) on a free
127.0.0.1 port. Measured per size:

* ``first``: the first EnumerateInstances after the server starts (instance
  writer built, model view created), raw HTTP with ``http.client``;
* ``warm``: the best of ``--repeat`` further raw requests (server latency:
  request parse, instances built from the snapshot, CIM-XML written, sent);
* ``bytes``: the size of the CIM-XML response;
* ``pywbem``: the best end-to-end ``WBEMConnection.EnumerateInstances``
  (the client's XML parsing included), when pywbem is installed.

Usage: ``python benchmarks/bench_cim.py [--sizes 1000 10000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import http.client
import time
from dataclasses import dataclass

from bench_testdriver import node_file  # sibling script
from benchkit import LoopThread

BODY = (b'<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0">'
        b'<MESSAGE ID="1" PROTOCOLVERSION="1.0"><SIMPLEREQ><IMETHODCALL NAME="EnumerateInstances">'
        b'<LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="virt"/>'
        b'</LOCALNAMESPACEPATH><IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="KVM_ComputerSystem"/>'
        b"</IPARAMVALUE></IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>")
HEADERS = {"Content-Type": 'application/xml; charset="utf-8"', "CIMOperation": "MethodCall",
           "CIMMethod": "EnumerateInstances", "CIMObject": "root%2Fvirt"}


@dataclass
class Row:
    domains: int
    instances: int
    first: float
    warm: float
    size: int
    pywbem: float | None


def enumerate_raw(conn: http.client.HTTPConnection) -> tuple[float, bytes]:
    start = time.perf_counter()
    conn.request("POST", "/cimom", BODY, HEADERS)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200 or b"<ERROR" in body[:2000]:
        raise RuntimeError(f"EnumerateInstances failed: HTTP {response.status} {body[:300]!r}")
    return elapsed, body


def enumerate_pywbem(port: int, repeat: int) -> float | None:
    try:
        import pywbem
    except ImportError:
        return None
    conn = pywbem.WBEMConnection(f"http://127.0.0.1:{port}", default_namespace="root/virt",
                                 timeout=600)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        conn.EnumerateInstances("KVM_ComputerSystem")
        best = min(best, time.perf_counter() - start)
    return best


def measure(n: int, repeat: int) -> Row:
    import hvmon
    from hvmon.core.snapshot import SnapshotCache
    from hvmon.plugins.cim.server import CimServer

    runner = LoopThread()
    with hvmon.open_readonly(f"test://{node_file(n)}") as conn:
        cache = SnapshotCache(conn, max_age=3600)
        try:
            snap = cache.get(max_age=0)
            if len(snap.domains) != n:
                raise RuntimeError(f"snapshot holds {len(snap.domains)} domains, expected {n}")

            async def start() -> CimServer:
                server = CimServer(conn, cache.get, cache.refresh)
                await server.listen([("127.0.0.1", 0)])
                return server

            server = runner.call(start())
            port = server.servers[0].port
            try:
                client = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
                first, body = enumerate_raw(client)
                warm = min(enumerate_raw(client)[0] for _ in range(repeat))
                client.close()
                end_to_end = enumerate_pywbem(port, repeat)
            finally:
                runner.call(server.stop())
        finally:
            cache.stop()
            runner.close()
    return Row(n, body.count(b"<VALUE.NAMEDINSTANCE>"), first, warm, len(body), end_to_end)


def render(rows: list[Row]) -> str:
    lines = [f"{'EnumerateInstances KVM_ComputerSystem':<40} {'inst':>6} {'first ms':>9} "
             f"{'warm ms':>8} {'inst/s':>8} {'bytes':>10} {'B/inst':>7} {'pywbem ms':>10}"]
    for row in rows:
        client = f"{row.pywbem * 1000:10.1f}" if row.pywbem is not None else "         -"
        lines.append(f"{f'{row.domains} domains':<40} {row.instances:>6} "
                     f"{row.first * 1000:9.1f} {row.warm * 1000:8.1f} "
                     f"{row.instances / row.warm:8.0f} {row.size:>10} "
                     f"{row.size // max(row.instances, 1):>7} {client}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CIM agent EnumerateInstances latency")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    args, _ = parser.parse_known_args(argv)
    repeat = max(1, min(args.repeat, 5))
    print(render([measure(n, repeat) for n in args.sizes]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
