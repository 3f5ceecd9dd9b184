"""The benchmark report: machine-readable results in, ``report.md`` (+ PNG plots) out.

Each bench script given ``--json FILE`` writes one *result* (:func:`write_result`)::

    {"script": "bench_x.py", "title": "...", "status": "ok" | "skipped" | "failed",
     "note": "...",
     "tables": [{"title": "...", "columns": ["domains", "warm ms"], "rows": [{...}]}],
     "goals": [{"name": "...", "value": 2.0, "unit": "ms", "op": "<", "target": 50.0}],
     "ratios": [{"name": "...", "peer": "snmpd", "hvmon": 1.0, "other": 2.0,
                 "unit": "s", "higher_is_better": false}],
     "series": [{"name": "...", "unit": "s", "points": [[10, 0.001], [100, 0.01]]}]}

``benchmarks/run.py`` runs each script one or more times; :func:`aggregate`
folds the runs into medians with their spread, and :func:`render` writes the
Markdown report (machine, tables, goals met/missed, hvmon/peer ratios, a line
for every script that failed or was skipped). :func:`plot_series` draws the
scaling curves (matplotlib, Agg backend) when matplotlib is installed.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OPS = {"<": lambda v, t: v < t, "<=": lambda v, t: v <= t,
       ">": lambda v, t: v > t, ">=": lambda v, t: v >= t}

#: Issue 15's goals with no figure in any script yet (printed as "not measured").
NOT_MEASURED: tuple[str, ...] = ()


# --- writing (used by the bench scripts) ------------------------------------

def write_result(path: str | Path, script: str, *, title: str = "", status: str = "ok",
                 note: str = "", tables: Sequence[dict[str, Any]] = (),
                 goals: Sequence[dict[str, Any]] = (), ratios: Sequence[dict[str, Any]] = (),
                 series: Sequence[dict[str, Any]] = ()) -> None:
    """Write one script's result as JSON to ``path`` (see the module docstring)."""
    data = {"script": script, "title": title, "status": status, "note": note,
            "tables": list(tables), "goals": list(goals), "ratios": list(ratios),
            "series": list(series)}
    Path(path).write_text(json.dumps(data, indent=1, default=_jsonable) + "\n",
                          encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def table(title: str, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A table entry for :func:`write_result`."""
    return {"title": title, "columns": list(columns), "rows": [dict(r) for r in rows]}


def goal(name: str, value: float | None, op: str, target: float, unit: str = "") -> dict[str, Any]:
    """A goal entry: ``value op target`` (e.g. ``2.0 < 50`` ms)."""
    if op not in OPS:
        raise ValueError(f"unknown goal operator {op!r}")
    return {"name": name, "value": value, "op": op, "target": target, "unit": unit}


def ratio(name: str, peer: str, hvmon: float | None, other: float | None, unit: str = "s",
          higher_is_better: bool = False, limit: float = 1.0) -> dict[str, Any]:
    """An hvmon/peer comparison; the report turns it into a cost ratio (goal <= ``limit``).

    ``limit`` is 1.0 (hvmon at least as fast) unless the issue sets another
    bound for this peer (migration: 1.10 of bare QEMU; SNMP: 0.5x snmpd's rate,
    a cost ratio of 2.0).
    """
    return {"name": name, "peer": peer, "hvmon": hvmon, "other": other, "unit": unit,
            "higher_is_better": higher_is_better, "limit": limit}


# --- reading and folding runs -----------------------------------------------

@dataclass
class Figure:
    """A number over repeated runs: its median and spread."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> float:
        """Half the range over runs, relative to the median (0 with one run)."""
        if len(self.values) < 2 or self.median == 0:
            return 0.0
        return (max(self.values) - min(self.values)) / 2 / abs(self.median)

    def text(self, digits: int = 4) -> str:
        out = _num(self.median, digits)
        if len(self.values) > 1:
            out += f" ±{self.spread * 100:.0f}%"
        return out


@dataclass
class Outcome:
    """One script's folded runs."""

    script: str
    title: str = ""
    status: str = "ok"
    note: str = ""
    runs: int = 0
    tables: list[dict[str, Any]] = field(default_factory=list)
    goals: list[dict[str, Any]] = field(default_factory=list)
    ratios: list[dict[str, Any]] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)
    output: str = ""  # printed table, for scripts without --json


def load(path: str | Path) -> dict[str, Any]:
    """Read one result file; raises ValueError with a one-line reason when it is bad."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read result {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("script"), str):
        raise ValueError(f"result {path} has no 'script' field")
    return data


def _fold(values: list[Any]) -> Any:
    """Numbers that vary become a Figure; anything else keeps the first run's value."""
    present = [v for v in values if v is not None]
    if present and all(type(v) is int and v == present[0] for v in present):
        return present[0]  # a size, a count: no spread to show
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)]
    if nums and len(nums) == len([v for v in values if v is not None]):
        return Figure(nums)
    return values[0] if values else None


def aggregate(results: Sequence[dict[str, Any]]) -> Outcome:
    """Fold the results of repeated runs of one script (same shape) into one Outcome."""
    if not results:
        raise ValueError("no results to aggregate")
    first = results[0]
    ok = [r for r in results if r.get("status", "ok") == "ok"] or [first]
    out = Outcome(first["script"], first.get("title", ""), ok[0].get("status", "ok"),
                  ok[0].get("note", ""), runs=len(ok))
    for t_index, tab in enumerate(ok[0].get("tables", [])):
        rows = []
        for r_index, row in enumerate(tab.get("rows", [])):
            folded = {}
            for key in row:
                folded[key] = _fold([_at(r, "tables", t_index, "rows", r_index, key)
                                     for r in ok])
            rows.append(folded)
        out.tables.append({"title": tab.get("title", ""), "columns": tab.get("columns", []),
                           "rows": rows})
    for name, keys in (("goals", ("value",)), ("ratios", ("hvmon", "other"))):
        for index, item in enumerate(ok[0].get(name, [])):
            folded = dict(item)
            for key in keys:
                folded[key] = _fold([_at(r, name, index, key) for r in ok])
            getattr(out, name).append(folded)
    for index, item in enumerate(ok[0].get("series", [])):
        points = []
        for p_index, (n, _) in enumerate(item.get("points", [])):
            fig = _fold([_at(r, "series", index, "points", p_index, 1) for r in ok])
            points.append((n, fig.median if isinstance(fig, Figure) else fig))
        out.series.append({**item, "points": points})
    return out


def _at(data: Any, *path: Any) -> Any:
    for key in path:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return None
    return data


# --- judging ----------------------------------------------------------------

def _median(value: Any) -> float | None:
    if isinstance(value, Figure):
        return value.median
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def goal_met(item: dict[str, Any]) -> bool | None:
    """True/False when the goal's figure exists, None when it was not measured."""
    value = _median(item.get("value"))
    if value is None:
        return None
    return OPS[item["op"]](value, item["target"])


def cost_ratio(item: dict[str, Any]) -> float | None:
    """hvmon's cost over the peer's (<= 1.0: hvmon at least as fast), or None."""
    ours, theirs = _median(item.get("hvmon")), _median(item.get("other"))
    if ours is None or theirs is None:
        return None
    if item.get("higher_is_better"):
        ours, theirs = theirs, ours
    if theirs == 0:
        return None if ours == 0 else math.inf
    return ours / theirs


# --- machine ------------------------------------------------------------------

def machine() -> dict[str, str]:
    """CPU model, cores, KVM or TCG, date, kernel, Python and hvmon version."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from hvmon import __version__ as version
    except ImportError:
        version = "unknown"
    kvm = os.access("/dev/kvm", os.R_OK | os.W_OK)
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count() or "?"),
        "accelerator": "KVM (/dev/kvm usable)" if kvm else "TCG (no usable /dev/kvm)",
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "hvmon": version,
    }


# --- plots ------------------------------------------------------------------

def plot_series(series: Sequence[dict[str, Any]], directory: Path) -> list[Path]:
    """Draw the curves against domains (log-log); [] without matplotlib or data.

    Time series (unit ``s``) give two plots, total and per domain
    (``scaling-total.png``, ``scaling-per-domain.png``); each other unit (the
    daemon RSS in MB) gets its own total plot (``scaling-<unit>.png``).
    """
    usable = [s for s in series
              if len([p for p in s.get("points", []) if _positive(p)]) >= 2]
    if not usable:
        return []
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    directory.mkdir(parents=True, exist_ok=True)
    units = sorted({s.get("unit", "") for s in usable}, key=lambda u: (u != "s", u))
    plans = []
    for unit in units:
        group = [s for s in usable if s.get("unit", "") == unit]
        if unit == "s":
            plans.append((group, False, "scaling-total.png", "total time (s)"))
            plans.append((group, True, "scaling-per-domain.png", "time per domain (s)"))
        else:
            slug = "".join(c for c in unit.lower() if c.isalnum()) or "value"
            plans.append((group, False, f"scaling-{slug}.png", unit or "value"))
    paths = []
    for group, per_domain, name, ylabel in plans:
        fig, ax = plt.subplots(figsize=(8, 5))
        for item in group:
            points = sorted(p for p in item["points"] if _positive(p))
            xs = [p[0] for p in points]
            ys = [p[1] / p[0] if per_domain else p[1] for p in points]
            ax.plot(xs, ys, marker="o", label=item["name"])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("domains")
        ax.set_ylabel(ylabel)
        ax.set_title("hvmon scaling on the test driver"
                     + (": cost per domain (flat = linear total)" if per_domain else ""))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        path = directory / name
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def _positive(point: Sequence[Any]) -> bool:
    return (len(point) == 2 and isinstance(point[1], (int, float))
            and point[0] > 0 and point[1] > 0)


# --- rendering ----------------------------------------------------------------

def _num(value: float, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0 or math.isinf(value) or math.isnan(value):
        return str(value)
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{min(decimals, 6)}f}"


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, Figure):
        return value.text()
    return _num(value).replace("|", "\\|")


def _md_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _unit(unit: str) -> str:
    return f" {unit}" if unit else ""


def goal_line(item: dict[str, Any]) -> str:
    """``met``/``MISSED``/``not measured`` with the figure, as one table row."""
    met = goal_met(item)
    verdict = "not measured" if met is None else ("met" if met else "**MISSED**")
    value = item.get("value")
    figure = _cell(value) + _unit(item.get("unit", "")) if value is not None else "n/a"
    target = f"{item['op']} {_num(item['target'])}{_unit(item.get('unit', ''))}"
    return f"| {item['name']} | {figure} | {target} | {verdict} |"


def render(outcomes: Sequence[Outcome], info: dict[str, str] | None = None,
           plots: Sequence[Path] = (), report_dir: Path | None = None,
           quick: bool = False, runs: int = 1) -> str:
    """The whole report as Markdown."""
    info = machine() if info is None else info
    out = ["# hvmon benchmark report", ""]
    mode = "quick (reduced sizes and repeats)" if quick else "full"
    out += [f"Run: {mode}; each script run {runs} time(s); figures are medians over the "
            "runs, ± is half the range relative to the median. Each script's own figures "
            "are already medians (or bests, as its header says) of its internal repeats.", ""]
    out += ["## Machine", ""]
    out += _md_table(("", ""), ((key, value) for key, value in info.items()))
    out += [""]

    goals = [g for o in outcomes for g in _tagged(o, o.goals)]
    ratios = [r for o in outcomes for r in _tagged(o, o.ratios)]
    out += ["## Goals", ""]
    out += ["| script | goal | figure | target | verdict |", "|---|---|---|---|---|"]
    for item in goals:
        out.append(f"| {item['script']} " + goal_line(item))
    for item in ratios:
        value = cost_ratio(item)
        limit = item.get("limit", 1.0)
        name = f"| {item['script']} | {item['name']}: hvmon/{item['peer']} cost ratio"
        if value is None:
            out.append(f"{name} | n/a | <= {limit:.2f} | not measured |")
        else:
            verdict = "met" if value <= limit else "**MISSED**"
            out.append(f"{name} | {value:.2f} | <= {limit:.2f} | {verdict} |")
    for text in NOT_MEASURED:
        out.append(f"| - | {text} | - | - | not measured |")
    out += [""]

    if ratios:
        out += ["## hvmon / peer", "",
                "Cost ratio: hvmon's time over the peer's (for rates, the peer's rate over "
                "hvmon's); below 1.0 hvmon is faster.", ""]
        rows = []
        for item in ratios:
            value = cost_ratio(item)
            unit = item.get("unit", "")
            rows.append((item["script"], item["name"], item["peer"],
                         _cell(item.get("hvmon")) + _unit(unit),
                         _cell(item.get("other")) + _unit(unit),
                         "n/a" if value is None else f"{value:.2f}"))
        out += _md_table(("script", "figure", "peer", "hvmon", "peer figure", "ratio"), rows)
        out += [""]

    problems = [o for o in outcomes if o.status != "ok"]
    out += ["## Scripts", ""]
    for o in outcomes:
        state = o.status if o.status == "ok" else f"**{o.status.upper()}**"
        if o.status == "ok" and o.tables and 0 < o.runs != runs:
            state += f" ({o.runs} run{'s' if o.runs > 1 else ''})"  # e.g. run.py's QUICK_RUNS
        note = f": {o.note}" if o.note else ""
        out.append(f"- `{o.script}`: {state}{note}")
    out += [""]
    if problems:
        out += [f"{len(problems)} script(s) failed or skipped; see their lines above.", ""]

    if plots:
        out += ["## Scaling curves", ""]
        for path in plots:
            shown = os.path.relpath(path, report_dir) if report_dir else str(path)
            out.append(f"![{path.stem}]({shown})")
            out.append("")

    for o in outcomes:
        out += [f"## {o.script}" + (f": {o.title}" if o.title else ""), ""]
        if o.status != "ok":
            out += [f"**{o.status}**: {o.note or 'no detail'}", ""]
        for tab in o.tables:
            if tab.get("title"):
                out += [f"### {tab['title']}", ""]
            columns = tab.get("columns") or sorted({k for r in tab["rows"] for k in r})
            out += _md_table(columns, ([_cell(r.get(c)) for c in columns] for r in tab["rows"]))
            out += [""]
        if not o.tables and o.output.strip():
            out += ["```", o.output.rstrip(), "```", ""]
    return "\n".join(out).rstrip() + "\n"


def _tagged(outcome: Outcome, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**item, "script": outcome.script} for item in items]
