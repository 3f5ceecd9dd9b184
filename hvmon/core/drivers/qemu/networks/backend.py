"""Starting and stopping one network on the host: bridge, dnsmasq, nftables table.

Start is all-or-nothing: a failing step undoes the steps before it, so a
refused start leaves the host as it was. Stop removes everything start made
and never raises (what could not be removed is logged).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from hvmon.core.drivers.qemu.networks.config import NetPlan, check_routes
from hvmon.core.drivers.qemu.networks.dnsmasq import Dnsmasq
from hvmon.core.drivers.qemu.networks.firewall import Firewall
from hvmon.core.drivers.qemu.networks.links import Links
from hvmon.core.drivers.qemu.networks.runner import Runner
from hvmon.core.errors import HvmonError, InvalidArgument

log = logging.getLogger("hvmon.qemu.network")


class Backend:
    """Carries out network plans in the runner's namespace."""

    def __init__(self, runner: Runner, rundir: Path) -> None:
        self.runner = runner
        self.rundir = rundir
        self.links = Links(runner)
        self.firewall = Firewall(runner)

    def dnsmasq(self, name: str) -> Dnsmasq:
        return Dnsmasq(self.runner, self.rundir, name)

    def start(self, plan: NetPlan, active: Iterable[NetPlan] = ()) -> None:
        """Create what ``plan`` needs; undo it all when a step fails."""
        if not plan.own_bridge:
            if not self.links.is_bridge(plan.bridge):
                raise InvalidArgument(f"network '{plan.name}': host bridge '{plan.bridge}' "
                                      "does not exist (mode 'bridge' uses an existing bridge)")
            return
        own = {ip.network for other in active for ip in other.ips}
        check_routes(plan, [(dst, dev) for dst, dev in self.links.routes()
                            if dst not in {str(n) for n in own}])
        self.links.create_bridge(plan)
        try:
            if plan.forwards:
                self._enable_forwarding(plan)
            self.firewall.apply(plan)
            if plan.needs_dnsmasq:
                self.dnsmasq(plan.name).start(plan)
        except BaseException:
            self.stop(plan)
            raise

    def _enable_forwarding(self, plan: NetPlan) -> None:
        """IP forwarding on (as libvirt does); left on at stop, like libvirt."""
        if any(ip.interface.version == 4 for ip in plan.ips):
            self.runner.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        if any(ip.interface.version == 6 for ip in plan.ips):
            self.runner.run("sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")

    def stop(self, plan: NetPlan) -> None:
        """Remove dnsmasq, the rules and the bridge; never raises."""
        if not plan.own_bridge:
            return
        for step in (self.dnsmasq(plan.name).stop, lambda: self.firewall.remove(plan),
                     lambda: self.links.delete(plan.bridge)):
            try:
                step()
            except (HvmonError, OSError) as exc:
                log.error("network '%s': cleanup step failed: %s", plan.name, exc)

    def running(self, plan: NetPlan) -> bool:
        """Whether ``plan``'s bridge is there (after a daemon restart)."""
        return self.links.is_bridge(plan.bridge)
