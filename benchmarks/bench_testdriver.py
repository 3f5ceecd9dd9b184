"""hvmon's test driver next to libvirt's on the same generated node file.

For each size N (default 1,000 and 10,000 domains) a node file is generated
with :mod:`nodegen` and both drivers load it as ``test:///abs/path.xml``.
Each figure is the median of ``--repeat`` runs after one untimed warm-up
run, in seconds.

hvmon is timed in this process, through the Python API (and the ``hvmon``
CLI's ``main()`` when it exists, with its output discarded). libvirt is timed
through ``virsh``, so each of its figures includes starting the virsh process
and opening the node file. ``virsh -c URI uri`` does nothing but that, so its
time is listed as libvirt's *open*. libvirt's API rows (marked ``~``) run the
command 1 and 1+B times in one virsh process and divide the difference by B,
so process start and open cancel out. The CLI rows compare whole
commands: hvmon's includes its open but not a process start.

libvirt's test driver answers ``domstats`` with the ``state`` group only, so
stats are timed for hvmon twice: all groups, and ``state`` alone (the like for
like figure; the goal is judged on it).

Goal (issue 2): open and stats no slower than libvirt's test driver.

Usage: ``python benchmarks/bench_testdriver.py [--sizes 1000 10000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nodegen  # sibling script: benchmarks/ is sys.path[0] when run as a script

OUT_DIR = Path(__file__).resolve().parent / "out"
VIRSH_TIMEOUT = 600.0


def batch_size(n: int) -> int:
    """Extra calls per virsh process used to time one call without its open.

    Enough calls that they stand out of the open's run-to-run noise (tens of
    ms at 1,000 domains, hundreds at 10,000): 50 at 1,000 domains, 20 at 10,000.
    """
    return min(50, max(20, 50000 // max(n, 1)))


@dataclass
class Row:
    """One line of the result table."""

    operation: str
    n: int
    hvmon: float | None
    libvirt: float | None
    goal: bool = False  # judged against the goal
    derived: bool = False  # libvirt figure is a difference of two timings
    note: str = ""


def median_time(fn: Callable[[], object], repeat: int, warmup: bool = True) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs (after a warm-up run), in seconds."""
    if warmup:
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def node_file(n: int) -> Path:
    """The generated node file for ``n`` domains (made once, kept in benchmarks/out)."""
    path = OUT_DIR / f"node-{n}.xml"
    if not path.exists():
        nodegen.write_node(path, n)
    return path


# --- hvmon ------------------------------------------------------------------

def _cli_main() -> Callable[[list[str]], object] | None:
    try:
        from hvmon.cli.main import main
    except ImportError:
        return None
    return main


def _run_cli(main: Callable[[list[str]], object], argv: list[str]) -> None:
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            status = main(argv)
        except SystemExit as exc:
            status = exc.code
    if status not in (0, None):
        raise RuntimeError(f"hvmon {' '.join(argv)} exited {status}: {sink.getvalue()[-300:]}")


def time_hvmon(uri: str, n: int, repeat: int) -> dict[str, float]:
    """hvmon's timings for one node file, keyed by operation."""
    import hvmon

    results: dict[str, float] = {}

    def open_close() -> None:
        conn = hvmon.open(uri)
        conn.close()

    results["open"] = median_time(open_close, repeat)
    with hvmon.open(uri) as conn:
        found = len(conn.list_all_domains())
        if found != n:
            raise RuntimeError(f"hvmon found {found} domains in {uri}, expected {n}")
        results["list"] = median_time(conn.list_all_domains, repeat)
        results["stats-state"] = median_time(
            lambda: conn.get_all_domain_stats(groups=["state"]), repeat)
        results["stats-all"] = median_time(conn.get_all_domain_stats, repeat)
    main = _cli_main()
    if main is not None:
        results["cli-list"] = median_time(
            lambda: _run_cli(main, ["-c", uri, "list", "--all"]), repeat)
        results["cli-domstats"] = median_time(
            lambda: _run_cli(main, ["-c", uri, "domstats", "--raw"]), repeat)
    return results


# --- libvirt ----------------------------------------------------------------

def _virsh(virsh: str, uri: str, command: str, times: int = 1) -> None:
    """Run ``command`` ``times`` times in one virsh process (one open)."""
    script = "; ".join([command] * times)
    subprocess.run([virsh, "-q", "-c", uri, script], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=VIRSH_TIMEOUT)


def time_virsh(virsh: str, uri: str, n: int, repeat: int) -> dict[str, float]:
    """libvirt's timings, keyed by operation.

    ``open`` and ``cli-*`` are whole virsh runs (process start + open + command).
    ``api-*`` is one more call of the command inside the same virsh process:
    (time of 1 + B calls - time of 1 call) / B with B = :func:`batch_size`, so
    open and process start cancel out.
    """
    batch = batch_size(n)

    def timed(command: str, times: int = 1) -> float:
        return median_time(lambda: _virsh(virsh, uri, command, times), repeat, warmup=False)

    results = {"open": timed("uri")}
    for key, command in (("list", "list --all"), ("domstats", "domstats --raw")):
        once = timed(command)
        results[f"cli-{key}"] = once
        results[f"api-{key}"] = max(timed(command, 1 + batch) - once, 0.0) / batch
    return results


# --- table ------------------------------------------------------------------

def build_rows(n: int, ours: dict[str, float], theirs: dict[str, float]) -> list[Row]:
    """Pair the two drivers' figures into table rows."""

    return [
        Row("open", n, ours.get("open"), theirs.get("open"), goal=True,
            note="libvirt: virsh uri (process start + open)"),
        Row("list_all_domains()", n, ours.get("list"), theirs.get("api-list"), derived=True),
        Row("get_all_domain_stats(state)", n, ours.get("stats-state"), theirs.get("api-domstats"),
            goal=True, derived=True),
        Row("get_all_domain_stats(all groups)", n, ours.get("stats-all"),
            theirs.get("api-domstats"), derived=True,
            note="libvirt's test driver reports only the state group"),
        Row("list --all (CLI, with open)", n, ours.get("cli-list"), theirs.get("cli-list")),
        Row("domstats --raw (CLI, with open)", n, ours.get("cli-domstats"),
            theirs.get("cli-domstats")),
    ]


def _cell(value: float | None, derived: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{'~' if derived else ''}{value:.4f}"


def _verdict(row: Row) -> str:
    if row.hvmon is None or row.libvirt is None:
        return "n/a"
    if not row.goal:
        return "-"
    return "yes" if row.hvmon <= row.libvirt else "NO"


def render(rows: list[Row]) -> str:
    """The result table as aligned text."""
    header = ("operation", "N", "hvmon s", "libvirt s", "goal met?")
    lines = [(r.operation, str(r.n), _cell(r.hvmon), _cell(r.libvirt, r.derived), _verdict(r))
             for r in rows]
    widths = [max(len(str(col)) for col in column) for column in zip(header, *lines,
                                                                       strict=False)]
    fmt = " | ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    out = [fmt.format(*header), "-+-".join("-" * w for w in widths)]
    out += [fmt.format(*line) for line in lines]
    notes = sorted({r.note for r in rows if r.note})
    out += ["", "~ libvirt API time: (virsh running the command 1+B times - once) / B,",
            "  in one process, so process start and open cancel (B = 50000/N, 20 to 50)"]
    out += [f"note: {note}" for note in notes]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="hvmon vs libvirt test driver")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--json", type=Path, help="write the results here (benchmarks/report.py)")
    args = parser.parse_args(argv)

    virsh = shutil.which("virsh")
    print("== test driver: hvmon vs libvirt (seconds, median of "
          f"{args.repeat} runs) ==")
    if virsh is None:
        print("virsh: not available (install libvirt-clients to compare)")
    rows: list[Row] = []
    failed = False
    for n in args.sizes:
        path = node_file(n)
        uri = f"test://{path}"
        try:
            ours = time_hvmon(uri, n, args.repeat)
        except Exception as exc:  # report the driver's state, keep the libvirt side
            print(f"hvmon: cannot benchmark {uri}: {type(exc).__name__}: {exc}")
            ours, failed = {}, True
        theirs: dict[str, float] = {}
        if virsh is not None:
            try:
                theirs = time_virsh(virsh, uri, n, args.repeat)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                detail = getattr(exc, "stderr", b"") or b""
                print(f"virsh: failed on {uri}: {exc} {detail.decode(errors='replace')}")
        rows += build_rows(n, ours, theirs)
    print(render(rows))
    if args.json:
        write_json(args.json, rows, virsh is not None)
    return 1 if failed else 0


def write_json(path: Path, rows: list[Row], have_virsh: bool) -> None:
    """The rows, and each goal row as an hvmon/libvirt ratio (benchmarks/report.py)."""
    import report  # sibling module

    columns = ("operation", "N", "hvmon s", "libvirt s")
    lines = [{"operation": r.operation, "N": r.n, "hvmon s": r.hvmon,
              "libvirt s": r.libvirt} for r in rows]
    ratios = [report.ratio(f"{r.operation}, {r.n:,} domains", "libvirt test driver", r.hvmon,
                           r.libvirt) for r in rows if r.goal]
    report.write_result(path, "bench_testdriver.py", title="test driver vs libvirt's",
                        note="" if have_virsh else "virsh not installed: no libvirt figures",
                        tables=[report.table("seconds (libvirt API rows: derived)", columns,
                                             lines)], ratios=ratios)


if __name__ == "__main__":
    raise SystemExit(main())
