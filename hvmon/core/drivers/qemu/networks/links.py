"""Bridges, tap devices and routes through ``ip`` (iproute2), inside the runner's namespace."""

from __future__ import annotations

import json
import re

from hvmon.core.drivers.qemu.networks.config import NetPlan
from hvmon.core.drivers.qemu.networks.runner import Runner
from hvmon.core.errors import InvalidArgument, OperationFailed

_TAP = re.compile(r"vnet(\d+)")


class Links:
    """Network devices of the namespace the runner works in."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def _json(self, *args: str) -> list[dict[str, object]]:
        out = self.runner.run("ip", "-j", *args).stdout
        try:
            data = json.loads(out or "[]")
        except ValueError:
            raise OperationFailed(f"cannot read the output of 'ip {' '.join(args)}'") from None
        return data if isinstance(data, list) else []

    def names(self) -> set[str]:
        return {str(item.get("ifname")) for item in self._json("link", "show")}

    def exists(self, name: str) -> bool:
        return self.runner.ok("ip", "link", "show", "dev", name)

    def is_bridge(self, name: str) -> bool:
        items = self._json("-d", "link", "show", "dev", name) if self.exists(name) else []
        info = items[0].get("linkinfo", {}) if items else {}
        return isinstance(info, dict) and info.get("info_kind") == "bridge"

    def master(self, name: str) -> str | None:
        items = self._json("link", "show", "dev", name) if self.exists(name) else []
        master = items[0].get("master") if items else None
        return str(master) if master else None

    def routes(self) -> list[tuple[str, str]]:
        """(destination, device) of every IPv4 and IPv6 route of the main table."""
        found = []
        for family in ("-4", "-6"):
            for item in self._json(family, "route", "show"):
                found.append((str(item.get("dst", "")), str(item.get("dev", ""))))
        return [(dst if dst != "default" else "0.0.0.0/0", dev) for dst, dev in found]

    # --- bridges ------------------------------------------------------------------
    def create_bridge(self, plan: NetPlan) -> None:
        """The network's bridge with its MAC and addresses, up; removed again on failure."""
        if self.exists(plan.bridge):
            raise InvalidArgument(f"network '{plan.name}': a device named '{plan.bridge}' "
                                  "already exists on the host")
        self.runner.run("ip", "link", "add", "name", plan.bridge, "type", "bridge",
                        "forward_delay", str(plan.delay * 100))
        try:
            if plan.stp:
                self.runner.run("ip", "link", "set", "dev", plan.bridge, "type", "bridge",
                                "stp_state", "1")
            if plan.mac:
                self.runner.run("ip", "link", "set", "dev", plan.bridge, "address", plan.mac)
            for ip in plan.ips:
                extra = ["nodad"] if ip.interface.version == 6 else []
                self.runner.run("ip", "addr", "add", str(ip.interface), "dev", plan.bridge,
                                *extra)
            self.runner.run("ip", "link", "set", "dev", plan.bridge, "up")
        except BaseException:
            self.delete(plan.bridge)
            raise

    def delete(self, name: str) -> None:
        """Remove device ``name`` if it exists (never raises for a missing one)."""
        if self.exists(name):
            self.runner.run("ip", "link", "del", "dev", name, check=False)

    # --- taps ---------------------------------------------------------------------
    def free_tap_name(self) -> str:
        """The lowest ``vnetN`` not in use (libvirt's names)."""
        used = {int(m.group(1)) for n in self.names() if (m := _TAP.fullmatch(n))}
        index = 0
        while index in used:
            index += 1
        return f"vnet{index}"

    def create_tap(self, name: str, mac: str, bridge: str,
                   owner: tuple[int, int] | None = None) -> None:
        """A persistent tap for QEMU to open by name, plugged into ``bridge`` and up.

        Its own MAC is the guest's with the first byte ``fe`` (libvirt's rule), so
        the bridge never takes the guest's address as its own. ``owner`` (uid, gid):
        the tap belongs to them (TUNSETOWNER/TUNSETGROUP), so an unprivileged QEMU
        running as that user can attach to it.
        """
        extra = [] if owner is None else ["user", str(owner[0]), "group", str(owner[1])]
        self.runner.run("ip", "tuntap", "add", "dev", name, "mode", "tap", *extra)
        try:
            self.runner.run("ip", "link", "set", "dev", name, "address", "fe" + mac[2:])
            self.plug(name, bridge)
        except BaseException:
            self.delete(name)
            raise

    def plug(self, port: str, bridge: str) -> None:
        self.runner.run("ip", "link", "set", "dev", port, "master", bridge, "up")
