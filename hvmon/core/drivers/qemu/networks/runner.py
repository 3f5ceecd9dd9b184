"""Running the host tools of virtual networks (``ip``, ``nft``, ``dnsmasq``).

Every command is an argv list (never a shell). With a network namespace
(``qemu:///embed?root=DIR&netns=NAME``) each one runs as
``ip netns exec NAME ...``, so the driver touches only that namespace.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass

from hvmon.core.errors import OperationFailed

log = logging.getLogger("hvmon.qemu.network")

#: where Debian installs ip, nft and dnsmasq; a daemon's PATH may lack it
_SBIN = "/usr/sbin:/sbin:/usr/bin:/bin"
_NETNS_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: the package to install, per tool, for the error message
PACKAGES = {"ip": "iproute2", "nft": "nftables", "dnsmasq": "dnsmasq-base", "sysctl": "procps"}


def find_tool(name: str) -> str:
    """The path of ``name``; OperationFailed naming the Debian package when missing."""
    path = shutil.which(name) or shutil.which(name, path=_SBIN)
    if path is None:
        raise OperationFailed(f"'{name}' is not installed (Debian package "
                              f"{PACKAGES.get(name, name)}); virtual networks need it")
    return path


@dataclass(frozen=True)
class Runner:
    """Runs tools on the host, or inside network namespace ``netns``."""

    netns: str | None = None
    timeout: float = 20.0

    def __post_init__(self) -> None:
        if self.netns is not None and not _NETNS_NAME.fullmatch(self.netns):
            raise ValueError(f"invalid network namespace name '{self.netns}'")

    def argv(self, tool: str, *args: str) -> list[str]:
        """The full argv of ``tool args`` (prefixed with ``ip netns exec`` in a namespace)."""
        command = [find_tool(tool), *args]
        if self.netns is None:
            return command
        return [find_tool("ip"), "netns", "exec", self.netns, *command]

    def run(self, tool: str, *args: str, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run and wait; OperationFailed quotes the tool's last error line."""
        argv = self.argv(tool, *args)
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                  timeout=self.timeout, check=False,
                                  env={"PATH": _SBIN, "LC_ALL": "C"})
        except subprocess.TimeoutExpired:
            raise OperationFailed(f"'{tool} {' '.join(args[:3])}' did not finish within "
                                  f"{self.timeout:g} s") from None
        except OSError as exc:
            raise OperationFailed(f"cannot run {tool}: {exc.strerror or exc}") from None
        if check and done.returncode != 0:
            lines = [ln for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
            last = lines[-1].strip() if lines else f"exit {done.returncode}"
            raise OperationFailed(f"'{tool} {' '.join(args[:4])}' failed: {last}"
                                  f"{_hint(tool, last)}")
        return done

    def ok(self, tool: str, *args: str) -> bool:
        """True when the command exits 0 (for probes)."""
        return self.run(tool, *args, check=False).returncode == 0


def _hint(tool: str, message: str) -> str:
    """What a failure most likely means: missing root, or a kernel without the feature."""
    if "Operation not permitted" in message or "Permission denied" in message:
        return " (virtual networks need root: CAP_NET_ADMIN)"
    if tool == "nft" and ("Protocol not supported" in message or
                          "Could not process rule" in message):
        return " (does this kernel have nf_tables with the needed modules?)"
    if "Cannot open network namespace" in message:
        return " (create it first: ip netns add NAME)"
    return ""
