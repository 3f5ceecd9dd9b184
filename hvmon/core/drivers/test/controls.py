"""Test controls: knobs a test sets to make the test driver misbehave on purpose.

They come from three places, merged in this order:

* the URI query: ``test:///default?seed=7&clock=manual&stall=web1:5&fail=db2``
  (also ``control=/path/controls.json``);
* the node file: ``<hvmon:controls>`` in namespace ``urn:hvmon:test:1`` under
  ``<node>``, and per-object ``<hvmon:stats>``/``<hvmon:job>``/``<hvmon:lease>``
  inside a domain's or network's ``<metadata>``;
* a JSON control file, re-read whenever it changes, so a test can steer a
  daemon running in another process: ``{"clock": 120, "stall": {"web1": 5},
  "fail": {"db2": "disk on fire"}, "jobs": {"web1": {...}}, "leases":
  {"default": [...]}, "crash": ["web3"]}``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from hvmon.core.errors import InvalidArgument

NS = "urn:hvmon:test:1"


@dataclass
class JobSpec:
    """A simulated job (e.g. an outgoing migration) on a domain."""

    operation: str = "migration"
    total: int = 1 << 30
    rate: float = 64 << 20  # bytes per second
    started: float | None = None  # clock time; None = when first seen


@dataclass
class LeaseSpec:
    mac: str
    ip: str
    hostname: str = ""
    expiry: int = 0
    prefix: int = 24
    clientid: str = ""


@dataclass
class Controls:
    """Everything a test can set; empty means a well-behaved host."""

    seed: int = 0
    manual_clock: bool = False
    clock: float | None = None
    stall: dict[str, float] = field(default_factory=dict)
    fail: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, JobSpec] = field(default_factory=dict)
    leases: dict[str, list[LeaseSpec]] = field(default_factory=dict)
    crash: list[str] = field(default_factory=list)
    control_file: str | None = None

    def merge(self, data: dict[str, Any]) -> None:
        """Apply a JSON-like mapping (from a control file)."""
        if "seed" in data:
            self.seed = int(data["seed"])
        if "clock" in data and data["clock"] is not None:
            self.manual_clock = True
            self.clock = float(data["clock"])
        for name, seconds in (data.get("stall") or {}).items():
            self.stall[str(name)] = float(seconds)
        for name, message in (data.get("fail") or {}).items():
            self.fail[str(name)] = str(message or "simulated failure")
        for name in data.get("unstall") or []:
            self.stall.pop(str(name), None)
        for name in data.get("unfail") or []:
            self.fail.pop(str(name), None)
        for name, job in (data.get("jobs") or {}).items():
            if job is None:
                self.jobs.pop(str(name), None)
            else:
                self.jobs[str(name)] = JobSpec(**{k: job[k] for k in job if k in _JOB_KEYS})
        for net, leases in (data.get("leases") or {}).items():
            self.leases[str(net)] = [
                LeaseSpec(**{k: lease[k] for k in lease if k in _LEASE_KEYS}) for lease in leases
            ]
        self.crash = [str(name) for name in data.get("crash") or []]


_JOB_KEYS = {"operation", "total", "rate", "started"}
_LEASE_KEYS = {"mac", "ip", "hostname", "expiry", "prefix", "clientid"}


def _pairs(text: str) -> dict[str, str]:
    """``a:5,b:3`` -> {"a": "5", "b": "3"}; a bare name maps to ""."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition(":")
        out[name] = value
    return out


def from_query(query: dict[str, str]) -> Controls:
    """Controls from a URI query string; unknown keys are refused."""
    known = {"seed", "clock", "stall", "fail", "control"}
    unknown = sorted(set(query) - known)
    if unknown:
        raise InvalidArgument(f"unknown test driver URI parameter '{unknown[0]}'")
    controls = Controls()
    try:
        if "seed" in query:
            controls.seed = int(query["seed"])
        clock = query.get("clock")
        if clock:
            controls.manual_clock = True
            controls.clock = 0.0 if clock == "manual" else float(clock)
        for name, value in _pairs(query.get("stall", "")).items():
            controls.stall[name] = float(value or 3600)
        for name, value in _pairs(query.get("fail", "")).items():
            controls.fail[name] = value or "simulated failure"
    except ValueError as exc:
        raise InvalidArgument(f"invalid test driver URI parameter: {exc}") from None
    controls.control_file = query.get("control") or None
    return controls


class ControlFile:
    """A JSON control file, re-read when its mtime or size changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None

    def poll(self) -> dict[str, Any] | None:
        """The new content if the file changed since the last poll, else None."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp:
            return None
        try:
            with open(self.path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            return None  # half-written: try again at the next poll
        self._stamp = stamp
        return data if isinstance(data, dict) else None
