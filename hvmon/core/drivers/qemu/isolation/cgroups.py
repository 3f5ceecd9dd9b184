"""A cgroup per guest (cgroup v1 controllers, as on hybrid hosts) with libvirt's tunables.

Each guest gets ``<daemon's cgroup>/hvmon-qemu/<uuid>`` in the ``cpu``,
``cpuacct``, ``memory`` and ``blkio`` hierarchies, limits from the live XML
(``<cputune><shares>``, ``<memtune><hard_limit>/<soft_limit>``,
``<blkiotune><weight>`` and ``<device>`` throttles; ``<numatune><memory
mode='strict'>`` as ``cpuset.mems`` in the ``cpuset`` hierarchy) written before QEMU
starts, and QEMU's pid moved in right after it is spawned (so QEMU's own
start-up allocations are charged to the daemon's cgroup). The unified (v2)
hierarchy is not used yet.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from pathlib import Path

from hvmon.core.errors import OperationFailed
from hvmon.core.xml.domain import Domain as DomainXML

CONTROLLERS = ("cpu", "cpuacct", "memory", "blkio")
#: only joined when the domain has <numatune> (it needs cpuset.cpus/mems set first)
CPUSET = "cpuset"
NODES = Path("/sys/devices/system/node")
GROUP = "hvmon-qemu"
_UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024**2, "mib": 1024**2,
          "mb": 1000**2, "g": 1024**3, "gib": 1024**3, "gb": 1000**3}


def mounts() -> dict[str, Path]:
    """Mount points of the cgroup v1 controllers this module uses."""
    found: dict[str, Path] = {}
    with contextlib.suppress(OSError), open("/proc/self/mounts") as table:
        for line in table:
            fields = line.split()
            if len(fields) > 3 and fields[2] == "cgroup":
                for opt in fields[3].split(","):
                    if opt in (*CONTROLLERS, CPUSET):
                        found.setdefault(opt, Path(fields[1].replace("\\040", " ")))
    return found


def _membership(pid: int | str) -> dict[str, str]:
    out: dict[str, str] = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/cgroup") as table:
        for line in table:
            _, names, path = line.rstrip("\n").split(":", 2)
            for name in names.split(","):
                out[name] = path
    return out


def guest_dirs(uuid: str) -> dict[str, Path]:
    """Where ``uuid``'s cgroups are, per controller (under the daemon's own cgroup)."""
    own = _membership("self")
    return {c: base / own.get(c, "/").lstrip("/") / GROUP / uuid for c, base in mounts().items()}


def missing() -> list[str]:
    """The controllers this host lacks (empty: per-guest cgroups work)."""
    have = mounts()
    return [c for c in CONTROLLERS if c not in have]


def settings(live: DomainXML) -> list[tuple[str, str, str]]:
    """(controller, file, value) for the live XML's tunables."""
    el = live.element
    out: list[tuple[str, str, str]] = []
    shares = el.findtext("cputune/shares")
    if shares:
        out.append(("cpu", "cpu.shares", str(_int(shares, "<cputune><shares>"))))
    for tag, name in (("hard_limit", "memory.limit_in_bytes"),
                      ("soft_limit", "memory.soft_limit_in_bytes")):
        node = el.find(f"memtune/{tag}")
        if node is not None and node.text:
            out.append(("memory", name, str(_bytes(node.text, node.get("unit", "KiB"),
                                                   f"<memtune><{tag}>"))))
    weight = el.findtext("blkiotune/weight")
    if weight:
        out.append(("blkio", "blkio.weight", str(_int(weight, "<blkiotune><weight>"))))
    for device in el.iterfind("blkiotune/device"):
        numbers = _device_numbers(device.findtext("path") or "")
        for tag, name in (("read_bytes_sec", "read_bps_device"),
                          ("write_bytes_sec", "write_bps_device"),
                          ("read_iops_sec", "read_iops_device"),
                          ("write_iops_sec", "write_iops_device")):
            value = device.findtext(tag)
            if value:
                out.append(("blkio", f"blkio.throttle.{name}",
                            f"{numbers} {_int(value, f'<blkiotune><device><{tag}>')}"))
    memory = el.find("numatune/memory")
    if memory is not None:
        if memory.get("mode", "strict") != "strict":
            raise OperationFailed(f"<numatune><memory mode='{memory.get('mode')}'>: only "
                                  "mode='strict' is supported (cgroup cpuset.mems)")
        nodeset = memory.get("nodeset", "")
        nodes = {int(p.name[4:]) for p in NODES.glob("node[0-9]*")} or {0}
        try:
            wanted = {int(n) for part in nodeset.split(",")
                      for n in _span(part.strip())}
        except ValueError:
            raise OperationFailed(f"<numatune><memory nodeset='{nodeset}'>: bad nodeset") \
                from None
        if not wanted or not wanted <= nodes:
            raise OperationFailed(f"<numatune><memory nodeset='{nodeset}'>: this host has "
                                  f"NUMA node(s) {','.join(map(str, sorted(nodes)))}")
        out.append((CPUSET, "cpuset.mems", ",".join(map(str, sorted(wanted)))))
    return out


def _span(part: str) -> range:
    first, _, last = part.partition("-")
    low, high = int(first), int(last or first)
    if low < 0 or high < low:
        raise ValueError(part)
    return range(low, high + 1)


def create(uuid: str, live: DomainXML) -> None:
    """Make ``uuid``'s cgroups and write the limits; one-line OperationFailed otherwise."""
    lacking = missing()
    if lacking:
        raise OperationFailed("per-guest cgroups need the cgroup v1 controller(s) "
                              f"{', '.join(lacking)}, not mounted here")
    wanted = settings(live)
    dirs = guest_dirs(uuid)
    if not any(c == CPUSET for c, _, _ in wanted):
        dirs.pop(CPUSET, None)
    elif CPUSET not in dirs:
        raise OperationFailed("<numatune> needs the cgroup v1 cpuset controller, "
                              "not mounted here")
    try:
        for directory in dirs.values():
            directory.mkdir(parents=True, exist_ok=True)
        if CPUSET in dirs:  # a new cpuset is empty: inherit the CPUs down the new levels
            for level in (dirs[CPUSET].parent, dirs[CPUSET]):
                (level / "cpuset.cpus").write_text((level.parent / "cpuset.cpus").read_text())
                (level / "cpuset.mems").write_text((level.parent / "cpuset.mems").read_text())
        for controller, name, value in wanted:
            target = dirs[controller] / name
            if not target.exists():
                raise OperationFailed(f"this host's {controller} cgroup has no {name} "
                                      f"(needed for the domain's tuning)")
            target.write_text(value)
    except OSError as exc:
        remove(uuid)
        raise OperationFailed(f"cannot set up the guest's cgroup {exc.filename}: "
                              f"{exc.strerror}") from None
    except OperationFailed:
        remove(uuid)
        raise


def attach(uuid: str, pid: int) -> None:
    """Move process ``pid`` (all its threads) into ``uuid``'s cgroups."""
    for directory in guest_dirs(uuid).values():
        if not directory.exists():  # cpuset: only with <numatune>
            continue
        try:
            (directory / "cgroup.procs").write_text(str(pid))
        except OSError as exc:
            raise OperationFailed(f"cannot move QEMU into {directory}: {exc.strerror}") \
                from None


def remove(uuid: str, wait: float = 2.0) -> None:
    """Remove ``uuid``'s cgroups once empty (the exited QEMU can linger briefly); no raise."""
    end = time.monotonic() + wait
    for directory in guest_dirs(uuid).values():
        while directory.exists():
            try:
                directory.rmdir()
            except OSError:
                if time.monotonic() > end:
                    break
                time.sleep(0.01)


def cpu_time_ns(pid: int) -> int | None:
    """Total CPU time of a guest's cgroup (cpuacct.usage); None if QEMU is not in one."""
    path = _membership(pid).get("cpuacct", "")
    base = mounts().get("cpuacct")
    if base is None or f"/{GROUP}/" not in path + "/":
        return None
    try:
        return int((base / path.lstrip("/") / "cpuacct.usage").read_text())
    except (OSError, ValueError):
        return None


def _int(text: str, what: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise OperationFailed(f"{what} must be a whole number, not '{text.strip()}'") from None
    if value < 0:
        raise OperationFailed(f"{what} must not be negative")
    return value


def _bytes(text: str, unit: str, what: str) -> int:
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise OperationFailed(f"{what}: unknown unit '{unit}'")
    return _int(text, what) * factor


def _device_numbers(path: str) -> str:
    try:
        info = os.stat(path)
    except OSError as exc:
        raise OperationFailed(f"<blkiotune><device><path> '{path}': {exc.strerror}") from None
    if not stat.S_ISBLK(info.st_mode):
        raise OperationFailed(f"<blkiotune><device><path> '{path}' is not a block device")
    return f"{os.major(info.st_rdev)}:{os.minor(info.st_rdev)}"
