"""libvirt's cpuset syntax (``0-3,^2,5``): parsing against a host, and printing."""

from __future__ import annotations

from collections.abc import Iterable

from hvmon.core.errors import InvalidArgument


def parse_cpuset(text: str, host_cpus: int, what: str = "cpuset") -> frozenset[int]:
    """The CPUs ``text`` names, each below ``host_cpus``; one-line :class:`InvalidArgument`."""
    chosen: set[int] = set()
    excluded: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        target = excluded if part.startswith("^") else chosen
        part = part.lstrip("^")
        first, _, last = part.partition("-")
        try:
            low, high = int(first), int(last or first)
        except ValueError:
            raise InvalidArgument(f"{what}: bad cpuset '{text}'") from None
        if low < 0 or high < low:
            raise InvalidArgument(f"{what}: bad cpuset '{text}'")
        target.update(range(low, high + 1))
    result = chosen - excluded
    if not result:
        raise InvalidArgument(f"{what}: cpuset '{text}' is empty")
    if max(result) >= host_cpus:
        raise InvalidArgument(f"{what}: CPU {max(result)} does not exist on this host "
                              f"({host_cpus} CPUs)")
    return frozenset(result)


def format_cpuset(cpus: Iterable[int]) -> str:
    """``{0, 1, 2, 5}`` -> ``0-2,5`` (virsh's ranges)."""
    ordered = sorted(set(cpus))
    parts: list[str] = []
    start = prev = None
    for cpu in [*ordered, None]:
        if cpu is not None and prev is not None and cpu == prev + 1:
            prev = cpu
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = cpu
    return ",".join(parts)


def cpu_map(cpus: Iterable[int], host_cpus: int) -> str:
    """virsh vcpuinfo's affinity string: ``y`` or ``-`` per host CPU."""
    chosen = set(cpus)
    return "".join("y" if n in chosen else "-" for n in range(host_cpus))
