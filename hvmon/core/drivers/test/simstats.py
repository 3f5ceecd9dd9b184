"""Simulated, deterministic statistics for test-driver domains.

Each domain gets a profile of rates drawn from ``random.Random(seed, uuid)``;
counters grow with the domain's running time at a rate that swings between
50% and 150% of the profile rate, so they are monotonic, look alive, and are
the same for the same seed and clock.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

_TAU = 2 * math.pi


def _wave_integral(rate: float, t: float, period: float, phase: float) -> float:
    """Integral over [0, t] of rate * (1 + 0.5 * sin(2πs/period + phase))."""
    w = _TAU / period
    return rate * (t + 0.5 * (math.cos(phase) - math.cos(w * t + phase)) / w)


@dataclass(frozen=True)
class Counter:
    rate: float
    period: float
    phase: float

    def at(self, t: float) -> int:
        return int(_wave_integral(self.rate, t, self.period, self.phase)) if t > 0 else 0


def _counter(rng: random.Random, low: float, high: float) -> Counter:
    return Counter(rng.uniform(low, high), rng.uniform(30.0, 600.0), rng.uniform(0, _TAU))


@dataclass(frozen=True)
class DeviceNames:
    """What the stats need to know about a domain's devices."""

    disks: tuple[tuple[str, str], ...]  # (target dev, source path)
    nics: tuple[str, ...]  # target dev names


class Profile:
    """The rates of one domain; built once per definition."""

    __slots__ = ("balloon_phase", "block", "cpu", "cpu_user_share", "devices", "net", "vcpus")

    def __init__(self, seed: int, uuid: str, vcpus: int, devices: DeviceNames) -> None:
        rng = random.Random(f"{seed}:{uuid}")  # noqa: S311 - a repeatable simulation
        self.devices = devices
        self.cpu = _counter(rng, 0.05e9, 0.9e9 * max(1, vcpus))
        self.cpu_user_share = rng.uniform(0.6, 0.9)
        self.vcpus = [(_counter(rng, 0.02e9, 0.8e9), _counter(rng, 1e6, 5e7))
                      for _ in range(max(1, vcpus))]
        self.block = [
            {key: _counter(rng, low, high) for key, (low, high) in _BLOCK_RATES.items()}
            for _ in devices.disks
        ]
        self.net = [
            {key: _counter(rng, low, high) for key, (low, high) in _NET_RATES.items()}
            for _ in devices.nics
        ]
        self.balloon_phase = rng.uniform(0, _TAU)


_BLOCK_RATES = {
    "rd.reqs": (5, 200), "rd.bytes": (20e3, 8e6), "rd.times": (1e5, 5e7),
    "wr.reqs": (2, 100), "wr.bytes": (10e3, 4e6), "wr.times": (1e5, 9e7),
    "fl.reqs": (0.1, 5), "fl.times": (1e4, 1e6),
}
_NET_RATES = {
    "rx.bytes": (1e3, 2e6), "rx.pkts": (5, 2000), "rx.errs": (0, 0.001), "rx.drop": (0, 0.01),
    "tx.bytes": (1e3, 1e6), "tx.pkts": (5, 1500), "tx.errs": (0, 0.001), "tx.drop": (0, 0.01),
}


@dataclass(frozen=True)
class Snapshot:
    """What the stats of one domain depend on at one instant."""

    state: int
    reason: int
    active: bool
    running_seconds: float
    now: float
    max_kib: int
    current_kib: int
    vcpus_max: int
    vcpus_current: int
    capacity: dict[str, int]  # disk target -> capacity bytes


def domain_stats(profile: Profile, snap: Snapshot, groups: tuple[str, ...]) -> dict[str, Any]:
    """libvirt bulk-stats keys for the requested groups."""
    out: dict[str, Any] = {}
    t = snap.running_seconds
    if "state" in groups:
        out["state.state"] = snap.state
        out["state.reason"] = snap.reason
    if not snap.active:
        if "balloon" in groups:
            out["balloon.current"] = snap.current_kib
            out["balloon.maximum"] = snap.max_kib
        if "vcpu" in groups:
            out["vcpu.current"] = snap.vcpus_current
            out["vcpu.maximum"] = snap.vcpus_max
        return out
    if "cpu-total" in groups:
        total = profile.cpu.at(t)
        user = int(total * profile.cpu_user_share)
        out["cpu.time"] = total
        out["cpu.user"] = user
        out["cpu.system"] = total - user
    if "balloon" in groups:
        _balloon(out, profile, snap)
    if "vcpu" in groups:
        out["vcpu.current"] = snap.vcpus_current
        out["vcpu.maximum"] = snap.vcpus_max
        for i in range(snap.vcpus_current):
            time_c, wait_c = profile.vcpus[i % len(profile.vcpus)]
            out[f"vcpu.{i}.state"] = 1
            out[f"vcpu.{i}.time"] = time_c.at(t)
            out[f"vcpu.{i}.wait"] = wait_c.at(t)
            out[f"vcpu.{i}.delay"] = wait_c.at(t) // 4
    if "interface" in groups:
        out["net.count"] = len(profile.devices.nics)
        for i, (name, counters) in enumerate(zip(profile.devices.nics, profile.net, strict=True)):
            out[f"net.{i}.name"] = name
            for key, counter in counters.items():
                out[f"net.{i}.{key}"] = counter.at(t)
    if "block" in groups:
        out["block.count"] = len(profile.devices.disks)
        for i, ((name, path), counters) in enumerate(
            zip(profile.devices.disks, profile.block, strict=True)
        ):
            out[f"block.{i}.name"] = name
            if path:
                out[f"block.{i}.path"] = path
            for key, counter in counters.items():
                out[f"block.{i}.{key}"] = counter.at(t)
            capacity = snap.capacity.get(name, 10 << 30)
            written = counters["wr.bytes"].at(t)
            out[f"block.{i}.allocation"] = min(capacity, (capacity // 8) + written)
            out[f"block.{i}.capacity"] = capacity
            out[f"block.{i}.physical"] = out[f"block.{i}.allocation"]
    return out


def _balloon(out: dict[str, Any], profile: Profile, snap: Snapshot) -> None:
    current = snap.current_kib
    swing = 0.5 + 0.15 * math.sin(snap.now / 90.0 + profile.balloon_phase)
    used = int(current * swing)
    t = snap.running_seconds
    out["balloon.current"] = current
    out["balloon.maximum"] = snap.max_kib
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
