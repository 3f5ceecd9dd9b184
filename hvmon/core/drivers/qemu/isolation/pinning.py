"""CPU pinning of QEMU's threads from ``<cputune><vcpupin>``/``<emulatorpin>``.

Applied with sched_setaffinity once the monitor is up (vCPU thread ids come
from ``query-cpus-fast``): each pinned vCPU thread to its cpuset, every other
QEMU thread (the main loop, I/O threads, workers) to ``<emulatorpin>``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from hvmon.core import cpuset
from hvmon.core.errors import InvalidArgument, OperationFailed
from hvmon.core.xml.domain import Domain as DomainXML

#: ``execute(command, arguments)`` on the new guest's monitor
Execute = Callable[[str, Mapping[str, Any] | None], Any]


def parse_cpuset(text: str, what: str) -> set[int]:
    """libvirt's cpuset syntax against this host's CPUs; one-line errors."""
    try:
        return set(cpuset.parse_cpuset(text, os.cpu_count() or 1, what))
    except InvalidArgument as exc:
        raise OperationFailed(str(exc)) from None


def plan(live: DomainXML) -> tuple[dict[int, set[int]], set[int] | None]:
    """(vCPU index -> cpus, emulator cpus) from the live XML; validated."""
    vcpus: dict[int, set[int]] = {}
    for pin in live.element.iterfind("cputune/vcpupin"):
        what = f"<vcpupin vcpu='{pin.get('vcpu')}'>"
        try:
            index = int(pin.get("vcpu", ""))
        except ValueError:
            raise OperationFailed(f"{what}: vcpu must be a number") from None
        vcpus[index] = parse_cpuset(pin.get("cpuset", ""), what)
    emulator = live.element.find("cputune/emulatorpin")
    emu = None if emulator is None else parse_cpuset(emulator.get("cpuset", ""),
                                                     "<emulatorpin>")
    return vcpus, emu


def apply(pid: int, live: DomainXML, execute: Execute) -> None:
    """Pin ``pid``'s threads as ``live`` says (nothing to do without <cputune> pins)."""
    vcpus, emulator = plan(live)
    if not vcpus and emulator is None:
        return
    threads = {int(cpu.get("cpu-index", -1)): int(cpu["thread-id"])
               for cpu in execute("query-cpus-fast", None)}
    for index, cpus in vcpus.items():
        if index not in threads:
            raise OperationFailed(f"<vcpupin vcpu='{index}'>: the guest has no such vCPU")
        _pin(threads[index], cpus)
    if emulator is not None:
        vcpu_tids = set(threads.values())
        for tid in _tasks(pid):
            if tid not in vcpu_tids:
                _pin(tid, emulator)


def pin_vcpu(index: int, cpus: set[int], execute: Execute) -> None:
    """Pin the running guest's vCPU ``index`` (its thread, from ``query-cpus-fast``)."""
    for cpu in execute("query-cpus-fast", None):
        if int(cpu.get("cpu-index", -1)) == index:
            _pin(int(cpu["thread-id"]), cpus)
            return
    raise OperationFailed(f"<vcpupin vcpu='{index}'>: the guest has no such vCPU online")


def _tasks(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return [pid]


def _pin(tid: int, cpus: set[int]) -> None:
    try:
        os.sched_setaffinity(tid, cpus)
    except ProcessLookupError:  # a short-lived worker thread ended meanwhile
        return
    except OSError as exc:
        raise OperationFailed(f"cannot pin QEMU thread {tid}: {exc.strerror}") from None
