"""Run every benchmark script (``benchmarks/bench_*.py``) and print its table.

Usage: ``python benchmarks/run.py [ARGS...]``; ARGS go to every script
(e.g. ``--sizes 1000 --repeat 1`` for a quick run).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scripts() -> list[Path]:
    """The benchmark scripts, in name order."""
    return sorted(HERE.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    failures = []
    for script in scripts():
        print(f"### {script.name}", flush=True)
        start = time.perf_counter()
        result = subprocess.run([sys.executable, str(script), *args], check=False)
        print(f"### {script.name}: exit {result.returncode} "
              f"in {time.perf_counter() - start:.1f} s\n", flush=True)
        if result.returncode != 0:
            failures.append(script.name)
    if failures:
        print(f"benchmarks failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
