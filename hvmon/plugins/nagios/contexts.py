"""The nagiosplugin building blocks every mode shares.

* :class:`Probe` — a Resource that records a human sentence per metric and
  turns an :class:`hvmon.HvmonError` into UNKNOWN (one line, no traceback);
* :class:`Finding` / :class:`FindingContext` — a verdict decided by the
  probe itself (a domain's state, an inactive pool, a dead connection);
* :class:`Threshold` — a ScalarContext for numbers checked against ``-w``/``-c``
  style ranges; an empty range checks nothing;
* :class:`ModeSummary` — the status text: every result when all is well,
  the problems (worst first) otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from nagiosplugin import (
    CheckError,
    Context,
    Critical,
    Metric,
    Ok,
    Range,
    Resource,
    Result,
    Results,
    ScalarContext,
    Summary,
    Unknown,
    Warn,
)
from nagiosplugin.state import ServiceState

from hvmon.plugins.nagios.perfdata import Perf, safe_text, show_name

LEVELS: dict[str, ServiceState] = {
    "ok": Ok, "warning": Warn, "critical": Critical, "unknown": Unknown,
}

FINDING = "finding"


@dataclass(frozen=True)
class Finding:
    """A verdict and its sentence; the value of a metric in :data:`FINDING` context."""

    state: ServiceState
    text: str


class FindingContext(Context):
    """Evaluates a :class:`Finding` to its own state; no perfdata."""

    def __init__(self) -> None:
        super().__init__(FINDING)

    def evaluate(self, metric: Metric, resource: Any) -> Result:
        return Result(metric.value.state, metric=metric)

    def describe(self, metric: Metric) -> str:
        return str(metric.value.text)


class Threshold(ScalarContext):
    """Numbers against warning/critical ranges; perfdata through :class:`Perf`."""

    def __init__(self, name: str, warning: Range | str | None = None,
                 critical: Range | str | None = None) -> None:
        super().__init__(name, warning or "", critical or "", fmt_metric=_sentence)

    def evaluate(self, metric: Metric, resource: Any) -> Result:
        if str(self.critical) and not self.critical.match(metric.value):
            return Result(Critical, violation(self.critical), metric)
        if str(self.warning) and not self.warning.match(metric.value):
            return Result(Warn, violation(self.warning), metric)
        return Result(Ok, None, metric)

    def performance(self, metric: Metric, resource: Any) -> Perf:
        return Perf(metric.name, metric.value, metric.uom or "", self.warning, self.critical,
                    metric.min, metric.max)


def violation(limit: Range) -> str:
    """Why a value fails ``limit``: ``outside range 0:80`` or ``inside range 10:20``."""
    if limit.invert:
        return "inside range " + Range(str(limit)[1:])._format(False)
    return limit.violation


def _sentence(metric: Metric, context: Context) -> str:
    resource = metric.resource
    if isinstance(resource, Probe):
        return resource.texts.get(metric.name, metric.name)
    return f"{metric.name} is {metric.valueunit}"


T = TypeVar("T")


class Probe(Resource):
    """A Resource whose :meth:`measure` may raise :class:`hvmon.HvmonError`.

    Subclasses yield metrics built with :meth:`metric` / :meth:`finding`, which
    remember the sentence each metric shows in the status text.
    """

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self._findings = 0

    def measure(self) -> Iterable[Metric]:  # pragma: no cover - every mode overrides it
        raise NotImplementedError

    def probe(self) -> Iterator[Metric]:
        from hvmon import HvmonError

        try:
            yield from self.measure()
        except HvmonError as exc:
            raise CheckError(safe_text(str(exc)).strip() or type(exc).__name__) from None

    def metric(self, label: str, value: float, text: str, *, uom: str | None = None,
               min: float | None = None, max: float | None = None,  # noqa: A002
               context: str) -> Metric:
        """A measured number; ``label`` is its perfdata label, ``text`` its sentence."""
        self.texts[label] = text
        return Metric(label, value, uom, min, max, context=context)

    def finding(self, state: ServiceState, text: str) -> Metric:
        """A verdict shown as ``text`` (no perfdata)."""
        self._findings += 1
        return Metric(f"finding {self._findings}", Finding(state, text), context=FINDING)

    def selected(self, kind: str, name: str | None, every: Iterable[T],
                 lookup: Callable[[str], T | None]) -> tuple[list[T], Metric | None]:
        """The objects a mode checks: all of them (``name`` None, ``--all``) or the one
        named; else the finding that ends the check (none at all: OK; an unknown
        name: CRITICAL)."""
        if name is None:
            found = list(every)
            return found, None if found else self.finding(Ok, f"no {kind}s")
        one = lookup(name)
        if one is None:
            return [], self.finding(Critical, f"{kind} {show_name(name)} is not defined")
        return [one], None


class ModeSummary(Summary):
    """All results when OK; otherwise the non-OK ones, worst first."""

    def ok(self, results: Results) -> str:
        return ", ".join(text for r in results if (text := str(r)))

    def problem(self, results: Results) -> str:
        return ", ".join(text for r in results if r.state != Ok and (text := str(r)))

    def verbose(self, results: Results) -> list[str]:
        return [f"{r.state}: {r}" for r in results if str(r)]

    def empty(self) -> str:
        return "nothing to check"
