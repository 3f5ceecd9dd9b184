"""``pool NAME`` / ``pool --all``: active, usage (allocation / capacity).

An inactive pool is CRITICAL, an unknown NAME CRITICAL, an empty ``--all``
OK. ``-w``/``-c`` apply to each pool's usage in percent (defaults 80, 90).
"""

from __future__ import annotations

from collections.abc import Iterator

from nagiosplugin import Check, Critical, Metric, Ok

from hvmon.plugins.nagios.contexts import FindingContext, ModeSummary, Probe, Threshold
from hvmon.plugins.nagios.options import Options
from hvmon.plugins.nagios.perfdata import format_number, show_name
from hvmon.plugins.nagios.source import Source


class Pools(Probe):
    def __init__(self, options: Options, source: Source) -> None:
        super().__init__()
        self.options = options
        self.source = source

    def measure(self) -> Iterator[Metric]:
        snap = self.source.snapshot()
        name = None if self.options.all else self.options.name
        pools, ending = self.selected("pool", name, snap.pools, snap.pool)
        if ending is not None:
            yield ending
            return
        for pool in pools:
            who = show_name(pool.name)
            if not pool.active:
                yield self.finding(Critical, f"pool {who} is {pool.state_label}")
                continue
            if pool.capacity <= 0:
                yield self.finding(Ok, f"pool {who} is {pool.state_label}, no capacity")
                continue
            usage = round(pool.allocation / pool.capacity * 100.0, 2)
            yield self.metric(f"{pool.name}_usage", usage,
                              f"pool {who} {format_number(usage)}% used", uom="%",
                              min=0, max=100, context="usage")
            yield self.metric(f"{pool.name}_used", pool.allocation, "", uom="B", min=0,
                              max=pool.capacity, context="size")


def build(options: Options, source: Source) -> Check:
    return Check(
        Pools(options, source), FindingContext(), Threshold("size"),
        Threshold("usage", options.warning, options.critical),
        ModeSummary(), name="hvmon pool",
    )
