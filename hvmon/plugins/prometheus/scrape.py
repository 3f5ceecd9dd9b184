"""One scrape: pick the groups, get a snapshot, render (cached per generation).

The rendered body of the snapshot's families is cached per (generation,
groups, compat): scrapes between two snapshot refreshes only add the small
exporter families (``hvmon_up``, durations, snapshot age) to cached bytes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hvmon.core.errors import HvmonError, InvalidArgument
from hvmon.core.snapshot.model import Snapshot
from hvmon.plugins.prometheus import compat as compat_mod
from hvmon.plugins.prometheus.collector import BUILDERS, build_info
from hvmon.plugins.prometheus.exposition import Family, PrefixMemo, render
from hvmon.plugins.prometheus.families import EXPORTER

COMPAT_MODES = ("hvmon", "libvirt", "both")
#: series prefixes kept between scrapes (about 150 bytes each): enough for 10,000 domains
PREFIX_MEMO_LIMIT = 400_000
#: ``source(max_age)`` returns a snapshot (the daemon's cache ``get``)
Source = Callable[[float | None], Snapshot]

log = logging.getLogger("hvmon.agent.prometheus")


@dataclass(frozen=True)
class _Rendered:
    body: bytes
    durations: tuple[tuple[str, float, bool], ...]  # (group, seconds, success)


class Scraper:
    """Renders ``/metrics`` bodies for a snapshot source."""

    def __init__(self, source: Source, *, groups: Iterable[str] = BUILDERS,
                 compat: str = "hvmon", max_age: float | None = None) -> None:
        self.enabled = frozenset(groups)
        unknown = self.enabled - set(BUILDERS)
        if unknown:
            raise InvalidArgument(f"unknown collector group(s): {', '.join(sorted(unknown))}")
        if compat not in COMPAT_MODES:
            raise InvalidArgument(f"compat must be one of {', '.join(COMPAT_MODES)}")
        self._source, self.compat, self.max_age = source, compat, max_age
        self._cache: dict[tuple[int, frozenset[str]], _Rendered] = {}
        # rendered series prefixes survive snapshot generations: a cold scrape
        # then formats only the values (see exposition.render_family)
        self._prefixes: PrefixMemo = {}
        self._lock = threading.Lock()

    def groups_for(self, requested: frozenset[str] | None) -> frozenset[str]:
        """The groups a scrape serves; unknown or disabled requests are one-line errors."""
        if requested is None:
            return self.enabled
        unknown = requested - set(BUILDERS)
        if unknown:
            raise InvalidArgument(f"unknown collector '{sorted(unknown)[0]}' "
                                  f"(known: {', '.join(BUILDERS)})")
        disabled = requested - self.enabled
        if disabled:
            raise InvalidArgument(f"collector '{sorted(disabled)[0]}' is disabled")
        return requested

    def scrape(self, requested: frozenset[str] | None = None) -> bytes:
        started = time.perf_counter()
        groups = self.groups_for(requested)
        try:
            snap = self._source(self.max_age)
        except HvmonError as exc:
            log.warning("no snapshot for this scrape: %s", exc)
            families = self._exporter(None, (), started, up=False)
            if self.compat != "hvmon":
                families.append(Family(compat_mod.UP, [((), 0)]))
            return render(families)
        rendered = self._rendered(snap, groups)
        head = render(self._exporter(snap, rendered.durations, started, up=True))
        return head + rendered.body

    def _rendered(self, snap: Snapshot, groups: frozenset[str]) -> _Rendered:
        key = (snap.generation, groups)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        parts: list[bytes] = []
        durations = []
        for name, builder in BUILDERS.items():
            if name not in groups or self.compat == "libvirt":
                continue
            begun = time.perf_counter()
            try:
                parts.append(render(builder(snap), self._prefixes))
                ok = True
            except Exception:  # one broken group must not cost the whole scrape
                log.exception("collector group %s failed", name)
                ok = False
            durations.append((name, time.perf_counter() - begun, ok))
        if self.compat in ("libvirt", "both"):
            begun = time.perf_counter()
            parts.append(render(compat_mod.libvirt_families(snap, up=True), self._prefixes))
            durations.append(("libvirt", time.perf_counter() - begun, True))
        if len(self._prefixes) > PREFIX_MEMO_LIMIT:
            self._prefixes = {}  # domains came and went: start again
        rendered = _Rendered(b"".join(parts), tuple(durations))
        with self._lock:
            if any(k[0] != snap.generation for k in self._cache):
                self._cache.clear()
            self._cache[key] = rendered
        return rendered

    def _exporter(self, snap: Snapshot | None, durations: Iterable[tuple[str, float, bool]],
                  started: float, up: bool) -> list[Family]:
        f = {key: Family(spec) for key, spec in EXPORTER.items()}
        f["up"].add((), 1 if up else 0)
        for name, seconds, ok in durations:
            f["collector_success"].add((name,), 1 if ok else 0)
            f["collector_duration"].add((name,), seconds)
        if snap is not None:
            f["snapshot_age"].add((), snap.age())
            f["snapshot_generation"].add((), snap.generation)
            f["snapshot_duration"].add((), snap.duration)
        out = [f[key] for key in ("up", "collector_success", "collector_duration",
                                  "snapshot_age", "snapshot_generation", "snapshot_duration")]
        out.append(build_info())
        f["scrape_duration"].add((), time.perf_counter() - started)
        out.append(f["scrape_duration"])
        return out
