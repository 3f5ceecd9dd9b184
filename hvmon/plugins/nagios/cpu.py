"""CPU usage of a domain between two runs, kept in a nagiosplugin Cookie.

Usage is ``Δcpu.time / (Δt × vCPUs)`` in percent of the domain's vCPUs, where
``Δt`` is the difference of the snapshot's ``collected_at``. One cookie file
per (URI, domain) in the cookie directory; it holds the last sample and the
last usage, so a run served the same snapshot again repeats the last usage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hvmon.core.snapshot.model import DomainSnapshot


@dataclass(frozen=True)
class CpuReading:
    """``usage`` in percent, or None with ``note`` saying why there is none yet."""

    usage: float | None
    note: str = ""


def cookie_path(directory: Path, uri: str, domain: str) -> Path:
    """The cookie of the check of ``domain`` on ``uri``: a file name safe for any name.

    URI and name are percent-encoded (readable, no ``/``); past 200 characters
    a SHA-256 digest names the file instead (hashlib is imported only then).
    """
    from urllib.parse import quote

    name = f"domain-{quote(uri, safe='')}-{quote(domain, safe='')}.json"
    if len(name) > 200:
        import hashlib

        digest = hashlib.sha256((uri + "\0" + domain).encode()).hexdigest()
        name = f"domain-{digest}.json"
    return directory / name


def read_cpu(path: Path, dom: DomainSnapshot) -> CpuReading:
    """Compare ``dom`` with the sample in ``path`` and store ``dom``'s.

    Raises OSError when the directory or file cannot be used.
    """
    from nagiosplugin import Cookie

    cpu_time = dom.stats.get("cpu.time")
    if not isinstance(cpu_time, int) or dom.vcpus <= 0:
        return CpuReading(None, "no CPU time reported")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    cookie = Cookie(str(path))
    try:
        cookie.open()
    except ValueError:  # a damaged file: nagiosplugin truncated it, start again
        cookie.close()
        cookie = Cookie(str(path)).open()
    try:
        reading = _compare(cookie.data, dom, cpu_time)
        if reading.usage is not None or cookie.data.get("at") != dom.collected_at:
            cookie.data.update(uuid=dom.uuid, cpu_time=cpu_time, at=dom.collected_at,
                               usage=reading.usage)
        cookie.commit()
    finally:
        cookie.close()
    return reading


def _compare(old: dict[str, object], dom: DomainSnapshot, cpu_time: int) -> CpuReading:
    first = CpuReading(None, "first sample, usage from the next run")
    before, at = old.get("cpu_time"), old.get("at")
    if old.get("uuid") != dom.uuid or not isinstance(before, int) or \
            not isinstance(at, int | float) or cpu_time < before:
        return first
    elapsed = dom.collected_at - at
    if elapsed <= 0:
        last = old.get("usage")
        if isinstance(last, int | float):
            return CpuReading(float(last))
        return CpuReading(None, "same sample as the last run, usage from the next run")
    usage = (cpu_time - before) / (elapsed * 1e9 * dom.vcpus) * 100.0
    return CpuReading(round(min(max(usage, 0.0), 100.0), 2))
