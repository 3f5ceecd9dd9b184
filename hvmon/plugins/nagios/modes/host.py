"""``host``: the connection is alive, domains by state, memory and vCPU overcommit.

* memory overcommit = current memory of the active domains / host memory
  (``--memory-warning``/``--memory-critical``, defaults 1 and 1.5);
* vCPU overcommit = vCPUs of the active domains / host CPUs
  (``--vcpu-warning``/``--vcpu-critical``, defaults 4 and 8).

``-w``/``-c`` set both ratios' ranges when the specific options are absent.
No answer from the host is CRITICAL here (it is what this mode checks).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from nagiosplugin import Check, Critical, Metric, Ok

from hvmon.plugins.nagios.contexts import FindingContext, ModeSummary, Probe, Threshold
from hvmon.plugins.nagios.options import Options
from hvmon.plugins.nagios.perfdata import format_number, safe_text
from hvmon.plugins.nagios.source import Source

STATE_KEYS = ("running", "blocked", "paused", "shutdown", "shutoff", "crashed", "pmsuspended",
              "nostate")


class Host(Probe):
    """The host's snapshot, summarised."""

    def __init__(self, source: Source) -> None:
        super().__init__()
        self.source = source

    def measure(self) -> Iterator[Metric]:
        from hvmon import HvmonError
        from hvmon.core.types import DomainState

        try:
            snap = self.source.snapshot()
        except HvmonError as exc:
            yield self.finding(Critical, f"no answer from {safe_text(self.source.uri)}: "
                                         f"{safe_text(str(exc))}")
            return
        host = snap.host
        counts: Counter[str] = Counter()
        for dom in snap.domains:
            try:
                counts[DomainState(dom.state).name.lower()] += 1
            except ValueError:
                counts["nostate"] += 1
        total = len(snap.domains)
        shown = ", ".join(f"{counts[k]} {k}" for k in STATE_KEYS if counts[k])
        yield self.finding(Ok, f"{safe_text(host.hostname)}: {total} domains"
                               + (f" ({shown})" if shown else ""))
        for key in STATE_KEYS:
            yield self.metric(f"domains_{key}", counts[key], "", min=0, context="count")
        yield self.metric("domains_total", total, "", min=0, context="count")

        active = [d for d in snap.domains if d.active]
        host_bytes = host.memory_kib * 1024
        committed = sum(d.memory_kib for d in active) * 1024
        memory_ratio = committed / host_bytes if host_bytes else 0.0
        yield self.metric("memory_overcommit", round(memory_ratio, 4),
                          f"memory overcommit {format_number(round(memory_ratio, 2))}",
                          min=0, context="memory")
        yield self.metric("memory_committed", committed, "", uom="B", min=0, max=host_bytes,
                          context="count")
        vcpus = sum(d.vcpus for d in active)
        vcpu_ratio = vcpus / host.cpus if host.cpus else 0.0
        yield self.metric("vcpu_overcommit", round(vcpu_ratio, 4),
                          f"vCPU overcommit {format_number(round(vcpu_ratio, 2))} "
                          f"({vcpus} vCPUs on {host.cpus} CPUs)", min=0, context="vcpu")


def build(options: Options, source: Source) -> Check:
    return Check(
        Host(source), FindingContext(), Threshold("count"),
        Threshold("memory", options.memory_warning, options.memory_critical),
        Threshold("vcpu", options.vcpu_warning, options.vcpu_critical),
        ModeSummary(), name="hvmon host",
    )
