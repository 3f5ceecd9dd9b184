"""nftables rules of a virtual network, in a table of its own (``inet hvmon_net_<uuid>``).

One table per network makes start and stop atomic: ``nft -f`` loads the whole
table in one transaction and stopping deletes it; nothing else on the host is
touched. The rules follow libvirt's:

- every mode with hvmon's bridge accepts DHCP and DNS from the bridge (input);
- ``nat``: forwarding from the subnet out, replies back in (conntrack), between
  guests on the bridge; everything else to or from the bridge rejected;
  masquerading of the subnet's traffic to other networks (not to multicast or
  broadcast), only out of ``<forward dev>`` when one is named;
- ``route``: the same forwarding without conntrack and without masquerading;
- ``isolated``: traffic only between guests on the bridge (and to the host);
- ``open``: no forwarding rules at all.
"""

from __future__ import annotations

from hvmon.core.drivers.qemu.networks.config import NetPlan
from hvmon.core.drivers.qemu.networks.runner import Runner

FAMILY = "inet"


def table_name(plan: NetPlan) -> str:
    return "hvmon_net_" + plan.uuid.replace("-", "")[:12]


def _q(name: str) -> str:
    return f'"{name}"'


def render(plan: NetPlan) -> str:
    """The ``nft -f`` script creating the network's table (empty for ``open``/``bridge``)."""
    if plan.mode in ("open", "bridge"):
        return ""
    br = _q(plan.bridge)
    table = table_name(plan)
    lines = [f"table {FAMILY} {table} {{",
             "  chain input {", "    type filter hook input priority 0; policy accept;",
             f"    iifname {br} udp dport {{ 53, 67, 547 }} accept",
             f"    iifname {br} tcp dport 53 accept", "  }",
             "  chain forward {", "    type filter hook forward priority 0; policy accept;",
             f"    iifname {br} oifname {br} accept"]
    out_dev = f" oifname {_q(plan.forward_dev)}" if plan.forward_dev else ""
    if plan.mode in ("nat", "route"):
        for ip in plan.ips:
            fam = "ip6" if ip.interface.version == 6 else "ip"
            subnet = str(ip.network)
            stateful = ip.interface.version == 4 and plan.mode == "nat"
            state = " ct state established,related" if stateful else ""
            lines.append(f"    oifname {br} {fam} daddr {subnet}{state} accept")
            in_dev = f" iifname {br}" if not plan.forward_dev else \
                f" iifname {br}{out_dev}"
            lines.append(f"   {in_dev} {fam} saddr {subnet} accept")
    lines += [f"    iifname {br} reject", f"    oifname {br} reject", "  }"]
    if plan.mode == "nat":
        lines += ["  chain postrouting {",
                  "    type nat hook postrouting priority 100; policy accept;"]
        for ip in plan.ips:
            if ip.interface.version != 4:
                continue
            subnet = str(ip.network)
            lines += [f"    ip saddr {subnet} ip daddr 224.0.0.0/24 return",
                      f"    ip saddr {subnet} ip daddr 255.255.255.255 return",
                      f"   {out_dev} ip saddr {subnet} ip daddr != {subnet} masquerade"]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


class Firewall:
    """Loads and removes one network's table."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def exists(self, plan: NetPlan) -> bool:
        return self.runner.ok("nft", "list", "table", FAMILY, table_name(plan))

    def apply(self, plan: NetPlan) -> None:
        script = render(plan)
        if not script:
            return
        self.remove(plan)
        self.runner.run("nft", "-f", "-", stdin=script)

    def remove(self, plan: NetPlan) -> None:
        if self.exists(plan):
            self.runner.run("nft", "delete", "table", FAMILY, table_name(plan), check=False)
