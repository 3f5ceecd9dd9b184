"""``daemon``: hvmond answers and its snapshot is fresh.

One ``daemon_info`` call. No answer is CRITICAL; a daemon without a snapshot
yet is a WARNING; a failed agent is a WARNING; ``-w``/``-c`` apply to the
age of the daemon's current snapshot in seconds (defaults 60, 300). On an
in-process URI (``test:///...``) there is no daemon: UNKNOWN.
"""

from __future__ import annotations

from collections.abc import Iterator

from nagiosplugin import Check, Critical, Metric, Ok, Unknown, Warn

from hvmon.plugins.nagios.contexts import FindingContext, ModeSummary, Probe, Threshold
from hvmon.plugins.nagios.options import Options
from hvmon.plugins.nagios.perfdata import format_number, safe_text, show_name
from hvmon.plugins.nagios.source import Source


class Daemon(Probe):
    def __init__(self, source: Source) -> None:
        super().__init__()
        self.source = source

    def measure(self) -> Iterator[Metric]:
        from hvmon import HvmonError, Unsupported

        try:
            info = self.source.daemon_info()
        except Unsupported:
            yield self.finding(Unknown, f"{safe_text(self.source.uri)} is not served by a "
                                        "daemon (use a daemon URI such as qemu:///system)")
            return
        except HvmonError as exc:
            yield self.finding(Critical, f"no answer: {safe_text(str(exc))}")
            return
        yield self.finding(Ok, f"hvmond {safe_text(str(info.get('version', '?')))} serving "
                               f"{safe_text(str(info.get('uri', '?')))}")
        agents = info.get("agents") or {}
        failed = sorted(name for name, view in agents.items()
                        if isinstance(view, dict) and view.get("status") == "failed")
        for name in failed:
            message = agents[name].get("message") or "failed"
            yield self.finding(Warn, f"agent {show_name(name)} failed: "
                                     f"{safe_text(str(message))}")
        snapshot = info.get("snapshot") or {}
        age = snapshot.get("age") if isinstance(snapshot, dict) else None
        if isinstance(age, int | float):
            yield self.metric("snapshot_age", float(age),
                              f"snapshot {format_number(round(float(age), 1))} s old",
                              uom="s", min=0, context="age")
        else:
            yield self.finding(Warn, "no snapshot collected yet")
        uptime = info.get("uptime")
        if isinstance(uptime, int | float):
            yield self.metric("uptime", float(uptime), "", uom="s", min=0, context="count")
        clients = info.get("clients")
        if isinstance(clients, int):
            yield self.metric("clients", clients, "", min=0, context="count")
        yield self.metric("agents_failed", len(failed), "", min=0, max=len(agents),
                          context="count")


def build(options: Options, source: Source) -> Check:
    return Check(
        Daemon(source), FindingContext(), Threshold("count"),
        Threshold("age", options.warning, options.critical),
        ModeSummary(), name="hvmon daemon",
    )
