"""Live migration: hvmon's QEMU driver next to bare QEMU migration over QMP.

For an idle 64 MiB and 512 MiB guest (no OS, ``--sizes``), on this machine:

* **hvmon**: two embedded QEMU drivers (two roots: "host A" and "host B") in this
  process, B having probed its QEMU already (as a daemon does at start);
  ``dom.migrate(b, live=True)`` runs the five phases, the checks, a fresh
  incoming QEMU, the stream and the clean-up. Timed from the call to its
  return (the guest runs on B, the source is shut off; its QEMU, paused for
  good, exits and is reaped in the background, as bare QEMU's source is not
  stopped within its timing at all).
* **bare QEMU**: the physical limit. The QEMU command line hvmon's driver
  builds for this guest (so the machines are identical), started by hand; the
  destination started with ``-incoming defer`` and reached over QMP
  (``qemu.qmp``), ``migrate-incoming``, ``migrate``, ``query-migrate`` every
  5 ms until completed, ``cont`` on the destination. Timed from starting the
  destination QEMU (every migration needs one) to the destination running.

Downtime is QEMU's own figure (``query-migrate`` ``downtime``, ms) for both.
The runs alternate (hvmon, bare, hvmon, ...) so that a change in the machine's
load hits both alike; the median time of each phase (hvmon) and step (bare:
start = spawn + QMP connected, migrate, cont) is printed too.
Goal (issue 13): hvmon's migration time within 10% of bare QEMU's.

Usage: ``python benchmarks/bench_migration.py [--sizes 64 512] [--repeat 3] [--tcg]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL = 1.10


def kvm_usable() -> bool:
    try:
        with open("/dev/kvm", "r+b"):
            return True
    except OSError:
        return False


def guest_xml(name: str, kind: str, mib: int) -> str:
    return f"""<domain type='{kind}'><name>{name}</name>
  <memory unit='MiB'>{mib}</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features>
  <devices><memballoon model='virtio'/></devices></domain>"""


def remove_root(root: Path) -> None:
    from hvmon.core.drivers.qemu import process

    for status in (root / "run/qemu").glob("*.status.json"):
        found = process.read_status(status)
        if found is not None:
            with contextlib.suppress(Exception):
                process.terminate(found.pid, found.uuid)
    shutil.rmtree(root, ignore_errors=True)


#: one run: (seconds, downtime ms, milliseconds per step)
Run = tuple[float, float, dict[str, float]]

HVMON_STEPS = ("begin", "prepare", "perform", "finish", "confirm")
BARE_STEPS = ("start", "migrate", "cont")


def hvmon_once(kind: str, mib: int, n: int) -> Run:
    """(seconds, downtime ms, ms per phase) of one hvmon live migration A -> B."""
    import hvmon

    roots = [Path(tempfile.mkdtemp(prefix=f"hvbm{h}-")) for h in "ab"]
    try:
        with hvmon.open(f"qemu:///embed?root={roots[0]}") as a, \
                hvmon.open(f"qemu:///embed?root={roots[1]}") as b:
            b.capabilities()  # host B probed its QEMU when it started, as a daemon does
            dom = a.define_domain_xml(guest_xml(f"mig{n}", kind, mib))
            dom.create()
            time.sleep(0.2)  # the guest runs (an idle, never-booted machine)
            downtimes: list[float] = []
            steps: dict[str, float] = {}

            def timed(owner: Any, phase: str) -> None:  # the phases' own time, and downtime
                call = getattr(owner, f"migrate_{phase}")

                def wrapper(*args: Any) -> Any:
                    begun = time.perf_counter()
                    result = call(*args)
                    steps[phase] = (time.perf_counter() - begun) * 1000
                    if phase == "perform":
                        downtimes.append(float(result.get("downtime_ms", 0)))
                    return result

                setattr(owner, f"migrate_{phase}", wrapper)

            for phase in HVMON_STEPS:
                timed(b if phase in ("prepare", "finish") else dom, phase)
            start = time.perf_counter()
            moved = dom.migrate(b, live=True)
            elapsed = time.perf_counter() - start
            assert moved is not None
            return elapsed, downtimes[0], steps
    finally:
        for root in roots:
            remove_root(root)


async def _qmp(path: Path) -> Any:
    from qemu.qmp import QMPClient

    client = QMPClient("bench")
    for _ in range(500):
        try:
            await client.connect(str(path))
            return client
        except Exception:  # noqa: BLE001 - not listening yet
            await asyncio.sleep(0.01)
    raise RuntimeError(f"no QMP at {path}")


def bare_argv(kind: str, mib: int, tmp: Path) -> list[str]:
    """The argv hvmon's driver builds for this guest (same machine on both sides)."""
    import hvmon
    from hvmon.core.drivers.qemu.cmdline import build_command
    from hvmon.core.xml.domain import Domain as DomainXML

    with hvmon.open(f"qemu:///embed?root={tmp / 'argv-root'}") as conn:
        dom = conn.define_domain_xml(guest_xml("bare", kind, mib))
        live = DomainXML.from_xml(dom.xml_desc())
        caps = conn.driver.caps()
    return build_command(live, caps, monitor=Path("MONITOR"),
                         accel="kvm" if kind == "kvm" else "tcg")


async def bare_once(argv: list[str], tmp: Path) -> Run:
    """(seconds, downtime ms, ms per step) of a migration to a hand-started QEMU.

    Timed from starting the destination QEMU (a migration needs one, as hvmon's
    Prepare starts one) to the destination running.
    """
    procs = []
    clients = []
    start = 0.0
    try:
        for side in ("src", "dst"):
            if side == "dst":
                await clients[0].execute("cont")
                await asyncio.sleep(0.2)
                start = time.perf_counter()
            sock = tmp / f"{side}.qmp"
            line = [a if a != "unix:MONITOR,server=on,wait=off" else
                    f"unix:{sock},server=on,wait=off" for a in argv]
            line = [a.replace("MONITOR", str(sock)) for a in line]
            if side == "dst":
                line += ["-incoming", "defer"]
            procs.append(subprocess.Popen(line, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True))
            clients.append(await _qmp(sock))
        started = time.perf_counter()
        src, dst = clients
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        uri = f"tcp:127.0.0.1:{port}"
        await dst.execute("migrate-incoming", {"uri": uri})
        await src.execute("migrate", {"uri": uri})
        while True:
            info = await src.execute("query-migrate")
            if info.get("status") == "completed":
                break
            if info.get("status") in ("failed", "cancelled"):
                raise RuntimeError(f"bare migration {info.get('status')}")
            await asyncio.sleep(0.005)
        migrated = time.perf_counter()
        await dst.execute("cont")
        end = time.perf_counter()
        steps = {"start": (started - start) * 1000, "migrate": (migrated - started) * 1000,
                 "cont": (end - migrated) * 1000}
        return end - start, float(info.get("downtime", 0)), steps
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.disconnect()
        for proc in procs:
            proc.kill()
            proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 512], help="guest MiB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tcg", action="store_true", help="TCG even when KVM works")
    parser.add_argument("--json", type=Path, help="write the results here (benchmarks/report.py)")
    args, _unknown = parser.parse_known_args(argv)  # run.py passes its own options too
    if shutil.which("qemu-system-x86_64") is None:
        print("qemu-system-x86_64 is not installed (Debian package qemu-system-x86): skipped")
        return 0
    kind = "kvm" if kvm_usable() and not args.tcg else "qemu"
    print(f"== live migration, idle guest, {'KVM' if kind == 'kvm' else 'TCG'}, "
          f"median of {args.repeat} ==", flush=True)
    rows = []
    profiles: list[tuple[int, dict[str, float], dict[str, float]]] = []
    for mib in args.sizes:
        with tempfile.TemporaryDirectory(prefix="hvbm-") as tmp_name:
            tmp = Path(tmp_name)
            argv_line = bare_argv(kind, mib, tmp)
            ours: list[Run] = []
            theirs: list[Run] = []
            for i in range(args.repeat):  # alternate: a load change hits both alike
                ours.append(hvmon_once(kind, mib, i))
                theirs.append(asyncio.run(bare_once(argv_line, tmp)))
        t_ours = statistics.median(t for t, _, _ in ours)
        t_bare = statistics.median(t for t, _, _ in theirs)
        d_ours = statistics.median(d for _, d, _ in ours)
        d_bare = statistics.median(d for _, d, _ in theirs)
        rows.append((mib, t_ours, t_bare, d_ours, d_bare))
        profiles.append((mib, _medians(ours, HVMON_STEPS), _medians(theirs, BARE_STEPS)))
    print(f"{'guest':>8} {'hvmon s':>9} {'bare s':>9} {'ratio':>7} {'goal':>6} "
          f"{'hvmon downtime ms':>18} {'bare downtime ms':>17}")
    for mib, t_ours, t_bare, d_ours, d_bare in rows:
        ratio = t_ours / t_bare if t_bare else float("inf")
        print(f"{mib:>5} MiB {t_ours:>9.3f} {t_bare:>9.3f} {ratio:>7.2f} "
              f"{'met' if ratio <= GOAL else 'NO':>6} {d_ours:>18.0f} {d_bare:>17.0f}")
    print("both: from starting the destination QEMU to the guest running there; hvmon adds "
          "the five phases, checks and clean-up. Goal: ratio <= 1.10.")
    print("where the time goes (median ms):")
    for mib, ours_ms, bare_ms in profiles:
        print(f"{mib:>5} MiB hvmon " + " ".join(f"{k} {v:.1f}" for k, v in ours_ms.items())
              + " | bare " + " ".join(f"{k} {v:.1f}" for k, v in bare_ms.items()))
    if args.json:
        write_json(args.json, rows, kind)
    return 0


def _medians(runs: list[Run], steps: tuple[str, ...]) -> dict[str, float]:
    return {step: statistics.median(r[2].get(step, 0.0) for r in runs) for step in steps}


def write_json(path: Path, rows: list[tuple[int, float, float, float, float]],
               kind: str) -> None:
    """Times, downtimes and ratios with the goal (within 10%) (benchmarks/report.py)."""
    import report  # sibling module

    columns = ("guest MiB", "hvmon s", "bare QEMU s", "hvmon downtime ms", "bare downtime ms")
    lines = [dict(zip(columns, row, strict=True)) for row in rows]
    ratios = [report.ratio(f"live migration, {mib} MiB guest (goal: within 10%)",
                           "bare QEMU (QMP)", t_ours, t_bare, limit=GOAL)
              for mib, t_ours, t_bare, _, _ in rows]
    report.write_result(path, "bench_migration.py",
                        title=f"live migration vs bare QEMU ({'KVM' if kind == 'kvm' else 'TCG'})",
                        tables=[report.table("idle guest, median", columns, lines)],
                        ratios=ratios)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    raise SystemExit(main())
