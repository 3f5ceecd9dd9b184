"""Run every benchmark script (``benchmarks/bench_*.py``); optionally write the report.

Usage::

    python benchmarks/run.py [ARGS...]                    # print every table
    python benchmarks/run.py --report benchmarks/report.md [--quick] [--runs K]

Without ``--report`` the ARGS go to every script (e.g. ``--sizes 1000 --repeat
1``), as before. With ``--report PATH`` each script runs ``--runs`` times
(default 3; 2 with ``--quick``) with its own full or quick arguments and
``--json``; :mod:`report` folds the runs into medians and spread and writes
the Markdown report at PATH plus PNG plots of the scaling curves beside it.
A script that fails, times out or skips gets a line in the report; the run
goes on. ``--only NAME...`` limits the run to some scripts.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402  (sibling module)

#: Per-script arguments of a quick run (the whole run stays under two minutes).
QUICK_ARGS: dict[str, list[str]] = {
    "bench_amqp.py": ["--sizes", "100", "--repeat", "2", "--calls", "50"],
    "bench_check_hvmon.py": ["--repeat", "3"],
    "bench_cim.py": ["--sizes", "1000", "--repeat", "2"],
    "bench_collectd.py": ["--sizes", "1000", "--repeat", "2"],
    "bench_libvirt_exporter.py": ["--sizes", "100", "1000", "--repeat", "3"],
    "bench_migration.py": ["--sizes", "64", "--repeat", "1"],
    "bench_prometheus.py": ["--sizes", "100", "1000", "--repeat", "3"],
    "bench_qemu.py": ["--guests", "1", "--cycles", "1", "--repeat", "2"],
    "bench_qemu_agents.py": ["--guests", "1", "--repeat", "2", "--interval", "0.25",
                             "--intervals", "8", "--settle", "0.5"],
    "bench_scaling.py": ["--quick"],
    "bench_security.py": ["--calls", "50", "--repeat", "1"],
    "bench_snapshot.py": ["--sizes", "1000", "--repeat", "2"],
    "bench_snmp.py": ["--sizes", "1000", "--repeat", "2"],
    "bench_snmp_agentx.py": ["--sizes", "100", "--repeat", "1"],
    "bench_snmp_iftable.py": ["--sizes", "1000", "--repeat", "2"],
    "bench_testdriver.py": ["--sizes", "1000", "--repeat", "2"],
}
#: Runs of a quick report for scripts that would not fit twice in two minutes.
QUICK_RUNS: dict[str, int] = {"bench_qemu_agents.py": 1, "bench_scaling.py": 1,
                               "bench_snmp_iftable.py": 1, "bench_testdriver.py": 1}
#: Per-script arguments of a full report run (the scripts' defaults otherwise).
FULL_ARGS: dict[str, list[str]] = {}
TIMEOUT = 1800.0
QUICK_TIMEOUT = 120.0


def scripts() -> list[Path]:
    """The benchmark scripts, in name order."""
    return sorted(HERE.glob("bench_*.py"))


def supports_json(script: Path) -> bool:
    """Whether the script takes ``--json FILE`` (it mentions the option)."""
    try:
        return '"--json"' in script.read_text(encoding="utf-8")
    except OSError:
        return False


def run_plain(args: list[str]) -> int:
    """Print every script's table (the pre-report behaviour)."""
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


def run_once(script: Path, argv: list[str], json_path: Path | None,
             timeout: float) -> tuple[dict | None, str]:
    """One run of ``script``: (its result or a failed/skipped one, its printed output)."""
    cmd = [sys.executable, str(script), *argv]
    if json_path is not None:
        cmd += ["--json", str(json_path)]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              check=False, cwd=HERE.parent)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        out = out.decode(errors="replace") if isinstance(out, bytes) else out
        return ({"script": script.name, "status": "failed",
                 "note": f"timed out after {timeout:.0f} s"}, out)
    elapsed = time.perf_counter() - start
    output = done.stdout + (f"\n[stderr]\n{done.stderr[-2000:]}" if done.returncode else "")
    print(done.stdout, end="", flush=True)
    print(f"### {script.name}: exit {done.returncode} in {elapsed:.1f} s", flush=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines()
                or ["no output"])[-1]
        return ({"script": script.name, "status": "failed",
                 "note": f"exit {done.returncode}: {last[:300]}"}, output)
    if json_path is None:
        skipped = "skipped" in done.stdout.lower() and len(done.stdout.splitlines()) <= 3
        return ({"script": script.name, "status": "skipped" if skipped else "ok",
                 "note": done.stdout.strip()[:300] if skipped else ""}, output)
    try:
        return report.load(json_path), output
    except ValueError as exc:
        return ({"script": script.name, "status": "failed", "note": str(exc)}, output)


def run_report(path: Path, quick: bool, runs: int, only: list[str]) -> int:
    """Run the scripts, fold their runs, write the report and plots; 0 when all ran."""
    chosen = [s for s in scripts() if not only or s.name in only or s.stem in only]
    outcomes: list[report.Outcome] = []
    timeout = QUICK_TIMEOUT if quick else TIMEOUT
    with tempfile.TemporaryDirectory(prefix="hvmon-bench-") as tmp:
        for script in chosen:
            argv = (QUICK_ARGS if quick else FULL_ARGS).get(script.name, [])
            use_json = supports_json(script)
            results, output = [], ""
            print(f"### {script.name} {' '.join(argv)}", flush=True)
            count = min(runs, QUICK_RUNS.get(script.name, runs)) if quick else runs
            for index in range(count if use_json else 1):
                json_path = Path(tmp) / f"{script.stem}-{index}.json" if use_json else None
                result, output = run_once(script, argv, json_path, timeout)
                results.append(result)
                if result.get("status") != "ok":
                    break
            outcome = report.aggregate(results)
            if not outcome.tables:
                outcome.output = output
            outcomes.append(outcome)
    path.parent.mkdir(parents=True, exist_ok=True)
    series = [s for o in outcomes for s in o.series]
    plots = report.plot_series(series, path.parent / f"{path.stem}-plots")
    path.write_text(report.render(outcomes, plots=plots, report_dir=path.parent, quick=quick,
                                  runs=runs), encoding="utf-8")
    print(f"report: {path}" + (f" (+ {len(plots)} plots)" if plots else ""), flush=True)
    return 0 if all(o.status != "failed" for o in outcomes) else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--report" not in args:
        return run_plain(args)
    parser = argparse.ArgumentParser(description="run the benchmarks and write a report")
    parser.add_argument("--report", type=Path, required=True, help="Markdown file to write")
    parser.add_argument("--quick", action="store_true",
                        help="reduced sizes and repeats (under two minutes)")
    parser.add_argument("--runs", type=int, default=None,
                        help="runs per script for median and spread (3; quick: 2)")
    parser.add_argument("--only", nargs="+", default=[], help="script names to run")
    opts = parser.parse_args(args)
    runs = opts.runs if opts.runs is not None else (2 if opts.quick else 3)
    if runs < 1:
        parser.error("--runs must be at least 1")
    return run_report(opts.report, opts.quick, runs, opts.only)


if __name__ == "__main__":
    raise SystemExit(main())
