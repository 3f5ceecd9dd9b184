"""Metric families as plain rows, rendered to the text exposition format fast.

prometheus_client's ``generate_latest`` builds a ``Sample`` object per value
and formats it generically; at thousands of domains that dominates a scrape.
A :class:`Family` here is a name, a type, its label names and a list of
``(label values, value)`` rows; :func:`render` writes format 0.0.4 directly.
:func:`to_client_family` converts a family for prometheus_client's registry,
which the collector class uses so ``registry.get_sample_value`` works.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Row = tuple[tuple[str, ...], float]


@dataclass(frozen=True)
class FamilySpec:
    """What a family is, independent of any scrape: ``describe()`` yields these."""

    name: str
    type: str  # "gauge", "counter" or "info"
    help: str
    labels: tuple[str, ...] = ()

    @property
    def exposed_name(self) -> str:
        """The sample name: counters end in ``_total``, info metrics in ``_info``."""
        if self.type == "counter":
            return self.name + "_total"
        if self.type == "info":
            return self.name + "_info"
        return self.name


@dataclass
class Family:
    """One family's values for one scrape."""

    spec: FamilySpec
    rows: list[Row] = field(default_factory=list)

    def add(self, values: Sequence[str], value: float) -> None:
        self.rows.append((values if type(values) is tuple else tuple(values), value))


def _escape_label(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")
    return value


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def format_value(value: float) -> str:
    """A sample value as Go's ``strconv.FormatFloat`` would write it."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


#: rendered ``name{labels} `` sample prefixes by (sample name, label values)
PrefixMemo = dict[tuple[str, tuple[str, ...]], str]


def render_family(family: Family, out: list[str], memo: PrefixMemo | None = None) -> None:
    """Append ``family``'s HELP, TYPE and sample lines to ``out``.

    ``memo`` caches each series' rendered ``name{labels} `` prefix; kept from
    one scrape to the next, only the values are formatted for a new snapshot.
    """
    spec = family.spec
    name = spec.exposed_name
    kind = "gauge" if spec.type == "info" else spec.type
    out.append(f"# HELP {name} {_escape_help(spec.help)}\n# TYPE {name} {kind}\n")
    labels = spec.labels
    if not labels:
        out.extend(f"{name} {format_value(value)}\n" for _, value in family.rows)
        return
    memo = {} if memo is None else memo
    append, fmt = out.append, format_value
    for values, value in family.rows:
        key = (name, values)
        prefix = memo.get(key)
        if prefix is None:
            pairs = ",".join(f'{label}="{_escape_label(text)}"'
                             for label, text in zip(labels, values, strict=True))
            prefix = memo[key] = f"{name}{{{pairs}}} "
        append(prefix)
        append(str(value) if type(value) is int else fmt(value))
        append("\n")


def render(families: Iterable[Family], memo: PrefixMemo | None = None) -> bytes:
    """The text exposition (format 0.0.4) of ``families``; empty families are skipped.

    ``memo`` (see :func:`render_family`) may be kept by the caller across scrapes.
    """
    out: list[str] = []
    memo = {} if memo is None else memo
    for family in families:
        if family.rows:
            render_family(family, out, memo)
    return "".join(out).encode()


def to_client_family(family: Family) -> Metric:
    """The same family as a prometheus_client metric family."""
    spec = family.spec
    if spec.type == "info":
        info = InfoMetricFamily(spec.name, spec.help, labels=[])
        for values, _ in family.rows:
            info.add_metric([], dict(zip(spec.labels, values, strict=True)))
        return info
    cls = CounterMetricFamily if spec.type == "counter" else GaugeMetricFamily
    metric = cls(spec.name, spec.help, labels=list(spec.labels))
    for values, value in family.rows:
        metric.add_metric(list(values), value)
    return metric
