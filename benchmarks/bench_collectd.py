"""collectd integration: CPU time per interval at 1,000 and 10,000 test-driver domains.

For each size N a node file is generated with :mod:`nodegen` and opened
read-only; one snapshot is collected (its refresh cost is shown apart: the
daemon pays it once for every agent). Then, per interval, the process CPU time
(``time.process_time``) of:

* ``exec``: the value lists of the snapshot formatted as ``PUTVAL`` lines and
  written to ``/dev/null`` (what ``hvmon collectd-exec`` does every
  ``COLLECTD_INTERVAL``);
* ``push none|sign|encrypt``: the same value lists packed into <= 1452-byte
  packets, sealed for the security level and sent to a local UDP socket (what
  the ``collectd`` agent does every ``interval``).

``--repeat R`` intervals per mode and size (default 5); the median is shown.

Usage: ``python benchmarks/bench_collectd.py [--sizes 1000 10000] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time
from collections.abc import Callable

from bench_testdriver import node_file  # sibling script

MODES = ("exec", "push none", "push sign", "push encrypt")


def cpu_time(fn: Callable[[], object], repeat: int) -> float:
    """Median process CPU seconds of ``fn()`` over ``repeat`` runs (after a warm-up)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def measure(n: int, repeat: int) -> dict[str, object]:
    import hvmon
    from hvmon.core.gcpause import paused_gc
    from hvmon.plugins.collectd.network import Encoder, Security
    from hvmon.plugins.collectd.text import putval_lines
    from hvmon.plugins.collectd.values import Naming, snapshot_values

    uri = f"test://{node_file(n)}"
    with hvmon.open_readonly(uri) as conn:
        start = time.process_time()
        snap = conn.get_snapshot(0)
        refresh = time.process_time() - start
    naming = Naming("bench-host")
    row: dict[str, object] = {"n": n, "refresh": refresh}
    values = snapshot_values(snap, naming)
    row["lists"] = len(values)

    with open(os.devnull, "w") as sink:
        def exec_interval() -> None:  # as ExecRunner._tick
            with paused_gc():
                sink.writelines(putval_lines(snapshot_values(snap, naming), snap.timestamp,
                                             10.0))
            sink.flush()

        row["exec"] = cpu_time(exec_interval, repeat)
    row["exec bytes"] = sum(len(line) for line in putval_lines(values, snap.timestamp, 10.0))

    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.connect(receiver.getsockname())
    try:
        for level in ("none", "sign", "encrypt"):
            security = Security(level, "hvmon", "s3cret") if level != "none" else Security()
            encoder = Encoder(security)

            def push_interval(encoder: Encoder = encoder) -> None:  # as push_once
                with paused_gc():
                    for packet in encoder.encode(snapshot_values(snap, naming),
                                                 snap.timestamp, 10.0):
                        sender.send(packet)

            row[f"push {level}"] = cpu_time(push_interval, repeat)
            if level == "none":
                packets = encoder.encode(values, snap.timestamp, 10.0)
                row["packets"] = len(packets)
                row["push bytes"] = sum(map(len, packets))
    finally:
        sender.close()
        receiver.close()
    return row


def render(rows: list[dict[str, object]]) -> str:
    head = (f"{'domains':>8} {'value lists':>12} {'refresh ms':>11} "
            + " ".join(f"{m + ' ms':>17}" for m in MODES)
            + f" {'PUTVAL MB':>10} {'packets':>8} {'packet MB':>10}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['n']:>8,} {r['lists']:>12,} {float(r['refresh']) * 1e3:>11.0f} "  # type: ignore[arg-type]
            + " ".join(f"{float(r[m]) * 1e3:>17.1f}" for m in MODES)  # type: ignore[arg-type]
            + f" {int(r['exec bytes']) / 1e6:>10.2f} {r['packets']:>8,}"  # type: ignore[call-overload]
            f" {int(r['push bytes']) / 1e6:>10.2f}")  # type: ignore[call-overload]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="collectd exec and push CPU per interval")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5, help="intervals per mode and size")
    args = parser.parse_args(argv)
    print("== collectd: CPU time per interval (test driver, one snapshot per size) ==",
          flush=True)
    rows = []
    for n in args.sizes:
        rows.append(measure(n, max(1, args.repeat)))
        print(f"  {n:,} domains done", flush=True)
    print(render(rows))
    print("\nexec: PUTVAL lines to /dev/null; push: packets (<= 1452 bytes) sent to a local "
          "UDP socket.\nrefresh: collecting the snapshot itself (paid once by the daemon for "
          "every agent).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
