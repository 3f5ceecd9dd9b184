"""Wall time of one ``check_hvmon domain test`` run, interpreter start included.

Each run is a new process, as Nagios starts it: a launcher script with the
console script's code (``from hvmon.plugins.nagios.main import run; run()``)
under this venv's Python. Targets:

* ``daemon``: an hvmond subprocess serving ``test:///default`` (a config file
  with no agents), reached on its read-only socket;
* ``in-process``: ``-U test:///default`` (the embedded driver in the check's
  own process);
* for reference, ``python -c pass`` and ``python -c "import hvmon"``.

Bytecode: an installed package has its ``.pyc`` files, so the runs use a
bytecode cache in a temporary ``PYTHONPYCACHEPREFIX`` (filled by the warm-up
run; nothing is written to the source tree). One row repeats the daemon run
with ``PYTHONDONTWRITEBYTECODE=1`` and no cache prefix: hvmon's modules (which
have no ``__pycache__`` then) are compiled from source on every run, as in a
checkout whose environment sets that variable.

Then one ``python -X importtime`` run against the daemon lists the modules
whose own import time is largest, to show what dominates.

Goal: daemon run < 250 ms median.

Usage: ``python benchmarks/bench_check_hvmon.py [--repeat 20]`` (other
arguments, such as ``--sizes`` from benchmarks/run.py, are ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchkit import hvmond  # sibling module: benchmarks/ is sys.path[0]

GOAL = 0.250
PYTHON = sys.executable


def p90(times: list[float]) -> float:
    """The 90th percentile (the largest value under 10 samples)."""
    if len(times) < 10:
        return max(times)
    return statistics.quantiles(times, n=10)[8]


def timed(argv: list[str], repeat: int, env: dict[str, str]) -> list[float]:
    """Wall times of ``repeat`` runs of ``argv`` after one warm-up run."""
    subprocess.run(argv, capture_output=True, env=env, check=False, timeout=60)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, env=env, check=False, timeout=60)
        times.append(time.perf_counter() - start)
        if done.returncode not in (0, 1, 2):
            raise RuntimeError(f"{argv[-3:]} exited {done.returncode}: {done.stdout!r:.300}")
    return times


@contextlib.contextmanager
def daemon(root: Path) -> Iterator[str]:
    """An hvmond serving test:///default; yields its read-only URI; stopped by PID."""
    with hvmond("test:///default", root, timeout=30):
        yield f"test+unix:///default?socket={root}/run/hvmon-sock-ro"


def import_breakdown(argv: list[str], env: dict[str, str], top: int = 12) -> list[str]:
    """The ``top`` modules by own import time (µs) in one ``-X importtime`` run."""
    done = subprocess.run([PYTHON, "-X", "importtime", *argv], capture_output=True, text=True,
                          env=env, check=False, timeout=60)
    rows = []
    total = 0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, raw = line[12:].split("|")
        rows.append((int(own), raw.strip()))
        if not raw[1:].startswith(" "):  # a top-level import (no indentation)
            total += int(cumulative)
    rows.sort(reverse=True)
    lines = [f"imports, all top-level: {total / 1000:.1f} ms (importtime adds overhead)"]
    lines += [f"  {own / 1000:6.1f} ms  {name}" for own, name in rows[:top]]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args, _ = parser.parse_known_args(argv)
    root = Path(tempfile.mkdtemp(prefix="hvb-", dir="/tmp"))  # short: socket paths
    base = {k: v for k, v in os.environ.items()
            if k not in ("HVMON_DEFAULT_URI", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    base["HVMON_NAGIOS_STATE_DIR"] = str(root / "cookies")
    env = {**base, "PYTHONPYCACHEPREFIX": str(root / "pycache")}
    no_bytecode = {**base, "PYTHONDONTWRITEBYTECODE": "1"}  # stdlib .pyc still used
    launcher = root / "check_hvmon"
    launcher.write_text(f"#!{PYTHON}\nfrom hvmon.plugins.nagios.main import run\nrun()\n")
    launcher.chmod(0o755)
    print(f"== check_hvmon: wall time per run, {args.repeat} runs each ==", flush=True)
    rows: list[tuple[str, list[float]]] = []
    try:
        with daemon(root) as uri:
            check = [str(launcher), "-U", uri, "domain", "test"]
            rows.append(("check_hvmon domain test (daemon, ro socket)",
                         timed(check, args.repeat, env)))
            rows.append(("  same, hvmon without bytecode (compiled each run)",
                         timed(check, args.repeat, no_bytecode)))
            rows.append(("check_hvmon domain test (in-process test:///default)",
                         timed([str(launcher), "-U", "test:///default", "domain", "test"],
                               args.repeat, env)))
            rows.append(("python -c pass", timed([PYTHON, "-c", "pass"], args.repeat, env)))
            rows.append(("python -c 'import hvmon'",
                         timed([PYTHON, "-c", "import hvmon"], args.repeat, env)))
            breakdown = import_breakdown(check, env)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    width = max(len(name) for name, _ in rows)
    print(f"{'run':<{width}} | median ms |  p90 ms | goal")
    print(f"{'-' * width}-+-----------+---------+---------")
    for i, (name, times) in enumerate(rows):
        goal = f"< {GOAL * 1000:.0f} ms" if i == 0 else ""
        print(f"{name:<{width}} | {statistics.median(times) * 1000:9.1f} | "
              f"{p90(times) * 1000:7.1f} | {goal}")
    print()
    median = statistics.median(rows[0][1])
    verdict = "met" if median < GOAL else "NOT met"
    print(f"goal check_hvmon domain (daemon) < {GOAL * 1000:.0f} ms median: "
          f"{median * 1000:.1f} ms -> {verdict}")
    print()
    print("\n".join(breakdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
