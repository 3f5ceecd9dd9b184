"""Remote-protocol security costs: TLS vs UNIX socket, access rules, fsync'd audit records.

An ``RpcServer`` over a fresh test driver runs on its own event loop in a
thread (as in the daemon), with a throw-away PKI made with ``cryptography``
in a temp directory and a TLS listener on a free 127.0.0.1 port. For each
setup one client times:

* ``connect``: opening a connection (TLS: TCP + handshake + ``open``);
* ``read/s``: ``Domain.info`` calls per second (never audited);
* ``mutate/s``: ``Domain.suspend`` + ``Domain.resume`` calls per second
  (with an audit log: two fsync'd records each, SHA-256 chained).

The audit log lives in the temp directory, so its fsync cost is that of
the file system holding ``$TMPDIR``.

Usage: ``python benchmarks/bench_security.py [--calls 300] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import hvmon
from hvmon.core.api import api_registry
from hvmon.core.drivers.test.driver import TestDriver
from hvmon.core.uri import parse_uri
from hvmon.daemon.rpc import RpcServer
from hvmon.daemon.rpc.audit import AuditLog
from hvmon.daemon.rpc.rules import parse_rules
from hvmon.daemon.rpc.security import Security
from hvmon.daemon.rpc.tls import TlsListener, TlsSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "security"))
from pki import Authority, name  # noqa: E402 - the tests' PKI helper


def serve(base: Path, security: Security, tls: TlsSettings) -> tuple[Any, Any, Any, Any]:
    driver = TestDriver(parse_uri("test:///default"))
    server = RpcServer(driver, served_uri="test:///default", snapshots=None, info=dict,
                       security=security)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    if security.audit is not None:
        security.audit.open()

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    run(server.start(base / "sock", base / "sock-ro"))
    addresses = run(server.start_tls(tls))
    return server, loop, thread, (run, driver, addresses)


def measure(uri: str, calls: int) -> tuple[float, float, float]:
    start = time.perf_counter()
    conn = hvmon.open(uri)
    connect = time.perf_counter() - start
    dom = conn.lookup_domain_by_name("test")
    start = time.perf_counter()
    for _ in range(calls):
        dom.info()
    reads = calls / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(calls // 2):
        dom.suspend()
        dom.resume()
    mutates = calls / (time.perf_counter() - start)
    conn.close()
    return connect, reads, mutates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        ca = Authority.create(base / "ca")
        cert, key = ca.issue("server", name("Example", "localhost"), server=True)
        client = ca.client_dir("admin", name("Example", "admin"))
        tls = TlsSettings(cert, key, ca.cacert,
                          (TlsListener("127.0.0.1", 0, allowed_dns=("O=Example,CN=admin",)),))
        rules = parse_rules({"rule": [{"uid": os.getuid(), "allow": ["*"]},
                                      {"dn": "O=Example,CN=*", "allow": ["*"]}]},
                            api_registry())
        setups = [("plain", lambda d: Security()),
                  ("rules", lambda d: Security(rules)),
                  ("rules+audit", lambda d: Security(rules, AuditLog(d / "audit.jsonl")))]
        for index, (label, make) in enumerate(setups):
            folder = base / f"s{index}"
            folder.mkdir()
            security = make(folder)
            server, loop, thread, (run, driver, addresses) = serve(folder, security, tls)
            try:
                host, port = addresses[0]
                for transport, uri in (
                        ("unix", f"test+unix:///default?socket={folder / 'sock'}"),
                        ("tls", f"test+tls://{host}:{port}/default?pkipath={client}")):
                    best = max((measure(uri, args.calls) for _ in range(args.repeat)),
                               key=lambda r: r[2])
                    rows.append((label, transport, *best))
            finally:
                run(server.stop())
                loop.call_soon_threadsafe(loop.stop)
                thread.join(10)
                loop.close()
                driver.close()
                if security.audit is not None:
                    security.audit.close()
    print(f"{'setup':<12} {'transport':<9} {'connect ms':>10} {'read/s':>9} {'mutate/s':>9}")
    for label, transport, connect, reads, mutates in rows:
        print(f"{label:<12} {transport:<9} {connect * 1000:>10.1f} {reads:>9.0f} "
              f"{mutates:>9.0f}")


if __name__ == "__main__":
    main()
