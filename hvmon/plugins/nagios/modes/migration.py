"""``migration``: no migration has been running for too long.

Every domain whose job is a migration (the snapshot's ``job``) is reported
with its elapsed time and how much memory is left; ``-w``/``-c`` apply to the
longest running one, in seconds (defaults 600 and 1800). No migration
running is OK.
"""

from __future__ import annotations

from collections.abc import Iterator

from nagiosplugin import Check, Metric

from hvmon.plugins.nagios.contexts import FindingContext, ModeSummary, Probe, Threshold
from hvmon.plugins.nagios.options import Options
from hvmon.plugins.nagios.perfdata import format_number, show_name
from hvmon.plugins.nagios.source import Source


class Migrations(Probe):
    def __init__(self, options: Options, source: Source) -> None:
        super().__init__()
        self.options = options
        self.source = source

    def measure(self) -> Iterator[Metric]:
        snap = self.source.snapshot()
        jobs = [d for d in snap.domains if d.job.active and "migrat" in d.job.operation]
        longest = max((d.job.time_elapsed_ms / 1000 for d in jobs), default=0.0)
        parts = []
        for dom in sorted(jobs, key=lambda d: -d.job.time_elapsed_ms):
            seconds = dom.job.time_elapsed_ms / 1000
            left = dom.job.data_remaining / (1 << 20)
            parts.append(f"{show_name(dom.name)} {format_number(round(seconds, 1))} s "
                         f"({format_number(round(left, 1))} MiB left)")
            yield self.metric(f"{dom.name}_migration_seconds", round(seconds, 3), "", uom="s",
                              min=0, context="count")
        text = (f"{len(jobs)} migration(s) running: {', '.join(parts)}" if jobs
                else "no migration running")
        yield self.metric("migrations", len(jobs), "", min=0, context="count")
        yield self.metric("longest_migration", round(longest, 3), text, uom="s", min=0,
                          context="longest")


def build(options: Options, source: Source) -> Check:
    return Check(
        Migrations(options, source), FindingContext(), Threshold("count"),
        Threshold("longest", options.warning, options.critical),
        ModeSummary(), name="hvmon migration",
    )
