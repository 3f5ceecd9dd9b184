"""What this machine lets the driver do to isolate QEMU, as facts and one line."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
#: cgroup v1 controllers the issue's limits need
V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "blkio", "cpuset")


@dataclass(frozen=True)
class Probe:
    """Kernel and host facts that decide which isolation features can work."""

    root: bool
    unshare: str | None
    user_namespaces: bool
    seccomp: bool
    cgroup_v2: tuple[str, ...]
    cgroup_v1: tuple[str, ...]
    #: ``/proc/PID/task/TID/children`` exists (CONFIG_PROC_CHILDREN)
    proc_children: bool = False

    @property
    def mount_namespace(self) -> bool:
        """A private mount namespace per QEMU: needs root (CAP_SYS_ADMIN) and unshare(1)."""
        return self.root and self.unshare is not None

    @property
    def pid_namespace(self) -> bool:
        """QEMU as pid 1 of a PID namespace (``unshare --pid --fork``): root and the kernel's
        ``/proc/PID/task/TID/children`` (to learn QEMU's host pid)."""
        return self.mount_namespace and self.proc_children and Path("/proc/self/ns/pid").exists()

    def line(self) -> str:
        """One line for logs, errors and test output."""
        def yes(flag: bool) -> str:
            return "yes" if flag else "no"
        v2 = ",".join(self.cgroup_v2) or "none"
        v1 = ",".join(self.cgroup_v1) or "none"
        return (f"isolation probe: root={yes(self.root)} "
                f"mount-namespace={yes(self.mount_namespace)} "
                f"pid-namespace={yes(self.pid_namespace)} "
                f"user-namespaces={yes(self.user_namespaces)} seccomp={yes(self.seccomp)} "
                f"cgroup-v2-controllers={v2} cgroup-v1-controllers={v1}")


def probe() -> Probe:
    """Look at /proc and /sys (no side effects)."""
    return Probe(root=os.geteuid() == 0, unshare=shutil.which("unshare"),
                 user_namespaces=_userns(), seccomp=_seccomp(),
                 cgroup_v2=_v2_controllers(), cgroup_v1=_v1_controllers(),
                 proc_children=Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists())


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _userns() -> bool:
    if _read("/proc/sys/kernel/unprivileged_userns_clone").strip() == "0":
        return False
    return _read("/proc/sys/user/max_user_namespaces").strip() not in ("", "0")


def _seccomp() -> bool:
    return any(line.startswith("Seccomp:") for line in _read("/proc/self/status").splitlines())


def _v2_controllers() -> tuple[str, ...]:
    for base in (CGROUP, CGROUP / "unified"):
        text = _read(base / "cgroup.controllers")
        if text or (base / "cgroup.controllers").exists():
            return tuple(text.split())
    return ()


def _v1_controllers() -> tuple[str, ...]:
    mounts = _read("/proc/self/mounts").splitlines()
    found = set()
    for line in mounts:
        fields = line.split()
        if len(fields) > 3 and fields[2] == "cgroup":
            found.update(opt for opt in fields[3].split(",") if opt in V1_CONTROLLERS)
    return tuple(c for c in V1_CONTROLLERS if c in found)
