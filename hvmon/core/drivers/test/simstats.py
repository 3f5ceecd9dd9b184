"""Simulated, deterministic statistics for test-driver domains.

Each domain gets a profile of rates drawn from ``random.Random(seed, uuid)``.
Every device (the CPU, each vCPU, disk and NIC) has one activity wave: its
counters grow with the domain's running time at their rate times a factor
that swings between 50% and 150%, so they are monotonic, move together as real
I/O bursts do, and are the same for the same seed and clock.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass
from typing import Any, NamedTuple

_TAU = 2 * math.pi

BLOCK_RATES = (
    ("rd.reqs", 5, 200), ("rd.bytes", 20e3, 8e6), ("rd.times", 1e5, 5e7),
    ("wr.reqs", 2, 100), ("wr.bytes", 10e3, 4e6), ("wr.times", 1e5, 9e7),
    ("fl.reqs", 0.1, 5), ("fl.times", 1e4, 1e6),
)
NET_RATES = (
    ("rx.bytes", 1e3, 2e6), ("rx.pkts", 5, 2000), ("rx.errs", 0, 0.001), ("rx.drop", 0, 0.01),
    ("tx.bytes", 1e3, 1e6), ("tx.pkts", 5, 1500), ("tx.errs", 0, 0.001), ("tx.drop", 0, 0.01),
)


class Wave:
    """Activity over time: ``integral(t)`` of 1 + 0.5·sin(ωs + φ) over [0, t]."""

    __slots__ = ("omega", "phase", "start")

    def __init__(self, rnd: random.Random) -> None:
        self.omega = _TAU / (30.0 + 570.0 * rnd.random())
        self.phase = _TAU * rnd.random()
        self.start = math.cos(self.phase)

    def integral(self, t: float) -> float:
        if t <= 0:
            return 0.0
        return t + 0.5 * (self.start - math.cos(self.omega * t + self.phase)) / self.omega


def _rates(rnd: random.Random, table: tuple[tuple[str, float, float], ...]
           ) -> tuple[tuple[str, float], ...]:
    r = rnd.random
    return tuple((key, low + (high - low) * r()) for key, low, high in table)


@dataclass(frozen=True)
class DeviceNames:
    """What the stats need to know about a domain's devices."""

    disks: tuple[tuple[str, str], ...]  # (target dev, source path)
    nics: tuple[str, ...]  # target dev names


@dataclass(frozen=True)
class Facts:
    """Definition facts the stats report, read once from the XML."""

    max_kib: int
    current_kib: int
    vcpus_max: int
    vcpus_current: int


class Profile:
    """The rates of one domain; built once per definition."""

    __slots__ = ("balloon_phase", "block", "cpu", "cpu_rate", "cpu_user_share", "devices",
                 "facts", "net", "vcpus")

    def __init__(self, seed: int, uuid: str, facts: Facts, devices: DeviceNames) -> None:
        rnd = random.Random(f"{seed}:{uuid}")  # noqa: S311 - a repeatable simulation
        r = rnd.random
        self.facts = facts
        self.devices = devices
        self.cpu = Wave(rnd)
        self.cpu_rate = 0.05e9 + 0.85e9 * max(1, facts.vcpus_max) * r()
        self.cpu_user_share = 0.6 + 0.3 * r()
        self.vcpus = [(Wave(rnd), 0.02e9 + 0.78e9 * r(), 1e6 + 4.9e7 * r())
                      for _ in range(max(1, facts.vcpus_max))]
        self.block = [(Wave(rnd), _rates(rnd, BLOCK_RATES)) for _ in devices.disks]
        self.net = [(Wave(rnd), _rates(rnd, NET_RATES)) for _ in devices.nics]
        self.balloon_phase = _TAU * r()

    def cpu_time(self, t: float) -> int:
        return int(self.cpu_rate * self.cpu.integral(t))


class Snapshot(NamedTuple):
    """The state of one domain at one instant."""

    state: int
    reason: int
    active: bool
    running_seconds: float
    now: float
    capacity: dict[str, int]  # disk target -> capacity bytes


STATE_ONLY = ("state",)


@functools.lru_cache(maxsize=8192)
def _key(group: str, index: int, suffix: str) -> str:
    """``vcpu.0.time``: one string object per key for every domain (10,000 domains
    hold ~80 keys each in the daemon's snapshot)."""
    return f"{group}.{index}.{suffix}"


def domain_stats(profile: Profile | None, snap: Snapshot, groups: tuple[str, ...]
                 ) -> dict[str, Any]:
    """libvirt bulk-stats keys for the requested groups (``profile`` may be None
    only when ``groups`` is :data:`STATE_ONLY`)."""
    out: dict[str, Any] = {}
    if "state" in groups:
        out["state.state"] = snap.state
        out["state.reason"] = snap.reason
    if profile is None:
        return out
    facts = profile.facts
    t = snap.running_seconds
    if not snap.active:
        if "balloon" in groups:
            out["balloon.current"] = facts.current_kib
            out["balloon.maximum"] = facts.max_kib
        if "vcpu" in groups:
            out["vcpu.current"] = facts.vcpus_current
            out["vcpu.maximum"] = facts.vcpus_max
        return out
    if "cpu-total" in groups:
        total = profile.cpu_time(t)
        user = int(total * profile.cpu_user_share)
        out["cpu.time"] = total
        out["cpu.user"] = user
        out["cpu.system"] = total - user
    if "balloon" in groups:
        _balloon(out, profile, snap)
    if "vcpu" in groups:
        out["vcpu.current"] = facts.vcpus_current
        out["vcpu.maximum"] = facts.vcpus_max
        for i in range(facts.vcpus_current):
            wave, time_rate, wait_rate = profile.vcpus[i % len(profile.vcpus)]
            w = wave.integral(t)
            out[_key("vcpu", i, "state")] = 1
            out[_key("vcpu", i, "time")] = int(time_rate * w)
            out[_key("vcpu", i, "wait")] = int(wait_rate * w)
            out[_key("vcpu", i, "delay")] = int(wait_rate * w) // 4
    if "interface" in groups:
        out["net.count"] = len(profile.devices.nics)
        for i, (name, (wave, rates)) in enumerate(zip(profile.devices.nics, profile.net,
                                                      strict=True)):
            w = wave.integral(t)
            out[_key("net", i, "name")] = name
            for key, rate in rates:
                out[_key("net", i, key)] = int(rate * w)
    if "block" in groups:
        _block(out, profile, snap, t)
    return out


def _block(out: dict[str, Any], profile: Profile, snap: Snapshot, t: float) -> None:
    out["block.count"] = len(profile.devices.disks)
    for i, ((name, path), (wave, rates)) in enumerate(zip(profile.devices.disks, profile.block,
                                                          strict=True)):
        w = wave.integral(t)
        out[_key("block", i, "name")] = name
        if path:
            out[_key("block", i, "path")] = path
        for key, rate in rates:
            out[_key("block", i, key)] = int(rate * w)
        capacity = snap.capacity.get(name, 10 << 30)
        allocation = min(capacity, capacity // 8 + out[_key("block", i, "wr.bytes")])
        out[_key("block", i, "allocation")] = allocation
        out[_key("block", i, "capacity")] = capacity
        out[_key("block", i, "physical")] = allocation


def _balloon(out: dict[str, Any], profile: Profile, snap: Snapshot) -> None:
    current = profile.facts.current_kib
    used = int(current * (0.5 + 0.15 * math.sin(snap.now / 90.0 + profile.balloon_phase)))
    t = snap.running_seconds
    out["balloon.current"] = current
    out["balloon.maximum"] = profile.facts.max_kib
    out["balloon.swap_in"] = 0
    out["balloon.swap_out"] = 0
    out["balloon.major_fault"] = int(t * 0.5)
    out["balloon.minor_fault"] = int(t * 250)
    out["balloon.unused"] = current - used
    out["balloon.available"] = current
    out["balloon.usable"] = current - used + used // 4
    out["balloon.disk_caches"] = used // 4
    out["balloon.rss"] = min(current, used + 65536)
    out["balloon.last-update"] = int(snap.now)
