"""``network NAME`` / ``network --all``: active, DHCP range exhaustion.

DHCP usage = current leases / addresses in the network's DHCP ranges, in
percent; ``-w``/``-c`` apply to it (defaults 80, 90). A network without a
DHCP range reports no usage. An inactive network is CRITICAL, an unknown
NAME CRITICAL.
"""

from __future__ import annotations

from collections.abc import Iterator

from nagiosplugin import Check, Critical, Metric, Ok

from hvmon.plugins.nagios.contexts import FindingContext, ModeSummary, Probe, Threshold
from hvmon.plugins.nagios.options import Options
from hvmon.plugins.nagios.perfdata import format_number, show_name
from hvmon.plugins.nagios.source import Source


class Networks(Probe):
    def __init__(self, options: Options, source: Source) -> None:
        super().__init__()
        self.options = options
        self.source = source

    def measure(self) -> Iterator[Metric]:
        snap = self.source.snapshot()
        name = None if self.options.all else self.options.name
        networks, ending = self.selected("network", name, snap.networks, snap.network)
        if ending is not None:
            yield ending
            return
        for net in networks:
            who = show_name(net.name)
            if not net.active:
                yield self.finding(Critical, f"network {who} is inactive")
                continue
            if net.dhcp_range_size <= 0:
                yield self.finding(Ok, f"network {who} is active, no DHCP range")
                continue
            usage = round(net.dhcp_leases / net.dhcp_range_size * 100.0, 2)
            yield self.metric(f"{net.name}_dhcp_usage", usage,
                              f"network {who} DHCP {format_number(usage)}% used "
                              f"({net.dhcp_leases} of {net.dhcp_range_size})", uom="%",
                              min=0, max=100, context="usage")
            yield self.metric(f"{net.name}_dhcp_leases", net.dhcp_leases, "", min=0,
                              max=net.dhcp_range_size, context="count")


def build(options: Options, source: Source) -> Check:
    return Check(
        Networks(options, source), FindingContext(), Threshold("count"),
        Threshold("usage", options.warning, options.critical),
        ModeSummary(), name="hvmon network",
    )
