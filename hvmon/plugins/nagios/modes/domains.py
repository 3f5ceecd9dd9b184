"""``domains``: every autostart domain is running.

``--include``/``--exclude`` glob patterns (fnmatch, case-sensitive, repeatable)
pick the domains; an include list keeps only the names matching one of its
patterns, then the excludes drop names. ``-w``/``-c`` apply to the number of
selected autostart domains not running (default critical ``0``: any).
"""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase

from nagiosplugin import Check, Metric

from hvmon.plugins.nagios.contexts import FindingContext, ModeSummary, Probe, Threshold
from hvmon.plugins.nagios.options import Options
from hvmon.plugins.nagios.perfdata import show_name
from hvmon.plugins.nagios.source import Source

RUNNING_STATES = (1, 2)  # running, blocked (idle): the guest runs


def selected(name: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    """True when ``name`` passes the include and exclude patterns."""
    if include and not any(fnmatchcase(name, p) for p in include):
        return False
    return not any(fnmatchcase(name, p) for p in exclude)


class Autostart(Probe):
    def __init__(self, options: Options, source: Source) -> None:
        super().__init__()
        self.options = options
        self.source = source

    def measure(self) -> Iterator[Metric]:
        snap = self.source.snapshot()
        doms = [d for d in snap.domains if d.autostart
                and selected(d.name, self.options.include, self.options.exclude)]
        down = [d for d in doms if d.state not in RUNNING_STATES]
        for dom in doms:
            yield self.metric(f"{dom.name}_running", int(dom not in down), "", min=0, max=1,
                              context="count")
        total = len(doms)
        if down:
            names = ", ".join(f"{show_name(d.name)} ({d.state_label})" for d in down)
            text = f"{len(down)} of {total} autostart domains not running: {names}"
        elif total:
            text = f"all {total} autostart domains running"
        else:
            text = "no autostart domains"
        yield self.metric("autostart", total, "", min=0, context="count")
        yield self.metric("autostart_not_running", len(down), text, min=0, max=total,
                          context="down")


def build(options: Options, source: Source) -> Check:
    return Check(
        Autostart(options, source), FindingContext(), Threshold("count"),
        Threshold("down", options.warning, options.critical),
        ModeSummary(), name="hvmon domains",
    )
