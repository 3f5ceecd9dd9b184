"""``domain NAME``: state, CPU usage between two runs, memory.

State verdicts (``--state STATE=LEVEL`` overrides): running/blocked OK,
paused/pmsuspended/shutdown WARNING, shutoff/crashed CRITICAL, nostate
UNKNOWN, ``missing`` (no such domain) CRITICAL. Statistics that are stale
(the domain did not answer in time) are a WARNING. ``-w``/``-c`` apply to
the CPU usage in percent of the domain's vCPUs; ``--memory-warning``/
``--memory-critical`` to the guest's memory usage in percent (when the
balloon driver reports it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from nagiosplugin import Check, Metric, Ok, Unknown, Warn

from hvmon.plugins.nagios.contexts import LEVELS, FindingContext, ModeSummary, Probe, Threshold
from hvmon.plugins.nagios.options import Options, default_cookie_dir
from hvmon.plugins.nagios.perfdata import format_number, safe_text, show_name
from hvmon.plugins.nagios.source import Source

if TYPE_CHECKING:
    from hvmon.core.snapshot.model import DomainSnapshot

GIB = 1 << 30


def _size(nbytes: int) -> str:
    if nbytes >= GIB:
        return f"{format_number(round(nbytes / GIB, 2))} GiB"
    return f"{format_number(round(nbytes / (1 << 20), 1))} MiB"


class DomainProbe(Probe):
    """One domain of the snapshot."""

    def __init__(self, options: Options, source: Source) -> None:
        super().__init__()
        assert options.name is not None
        self.domain_name = options.name
        self.options = options
        self.source = source

    def measure(self) -> Iterator[Metric]:
        from hvmon.core.types import DomainState

        snap = self.source.snapshot()
        dom = snap.domain(self.domain_name)
        states = self.options.states
        if dom is None:
            yield self.finding(LEVELS[states["missing"]],
                               f"domain {show_name(self.domain_name)} is not defined")
            return
        try:
            key = DomainState(dom.state).name.lower()
        except ValueError:
            key = "nostate"
        who = show_name(dom.name)
        yield self.finding(LEVELS[states[key]],
                           f"{who} is {dom.state_label} ({dom.reason_label})")
        if dom.stale:
            yield self.finding(Warn, f"statistics are {format_number(round(dom.age, 1))} s "
                                     f"old: {safe_text(dom.error or 'no answer')}")
        if not dom.active:
            return
        yield from self._cpu(dom)
        memory = dom.memory_kib * 1024
        yield self.metric(f"{dom.name}_memory", memory,
                          f"memory {_size(memory)} of {_size(dom.max_memory_kib * 1024)}",
                          uom="B", min=0, max=dom.max_memory_kib * 1024, context="size")
        available, usable = dom.stats.get("balloon.available"), dom.stats.get("balloon.usable")
        if isinstance(available, int) and isinstance(usable, int) and available > 0:
            used = round(max(available - usable, 0) / available * 100.0, 2)
            yield self.metric(f"{dom.name}_memory_usage", used,
                              f"guest memory {format_number(used)}% used", uom="%",
                              min=0, max=100, context="memory")

    def _cpu(self, dom: DomainSnapshot) -> Iterator[Metric]:
        from hvmon.plugins.nagios.cpu import cookie_path, read_cpu

        directory = self.options.cookie_dir or default_cookie_dir()
        try:
            reading = read_cpu(cookie_path(directory, self.source.uri, self.domain_name), dom)
        except OSError as exc:
            yield self.finding(Unknown, f"cannot keep CPU samples in "
                                        f"{safe_text(str(directory))}: "
                                        f"{safe_text(exc.strerror or str(exc))}")
            return
        if reading.usage is None:
            yield self.finding(Ok, f"CPU: {reading.note}")
            return
        yield self.metric(f"{dom.name}_cpu", reading.usage,
                          f"CPU {format_number(reading.usage)}%", uom="%", min=0, max=100,
                          context="cpu")


def build(options: Options, source: Source) -> Check:
    return Check(
        DomainProbe(options, source), FindingContext(), Threshold("size"),
        Threshold("cpu", options.warning, options.critical),
        Threshold("memory", options.memory_warning, options.memory_critical),
        ModeSummary(), name="hvmon domain",
    )
