"""``compat = "libvirt"`` against Debian's prometheus-libvirt-exporter on libvirt's test driver.

libvirt's ``test:///default`` and hvmon's hold the same objects, so every
series name Debian's exporter emits, with the same label names, must be in
hvmon's compat output.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from toolcheck import wait_for

from hvmon.core.snapshot.cache import SnapshotCache
from hvmon.plugins.prometheus.scrape import Scraper

from .conftest import ServeFactory, fetch, free_port, need_tool, try_fetch

Shapes = dict[str, set[frozenset[str]]]


def shapes(text: str) -> Shapes:
    """Series name -> the label-name sets it is exposed with."""
    out: Shapes = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, set()).add(frozenset(sample.labels))
    return out


def test_hvmon_compat_covers_debians_libvirt_exporter(
        tmp_path: Path, cache: SnapshotCache, serve: ServeFactory,
        processes: Callable[[list[str], Path], subprocess.Popen[bytes]]) -> None:
    binary = need_tool("prometheus-libvirt-exporter")
    port = free_port()
    proc = processes([binary, f"--web.listen-address=127.0.0.1:{port}",
                      "--libvirt.uri=test:///default"], tmp_path / "libvirt-exporter.log")

    def scraped() -> str | None:
        if proc.poll() is not None:
            log = (tmp_path / "libvirt-exporter.log").read_text(errors="replace")
            raise AssertionError(f"libvirt exporter exited {proc.returncode}: {log[-500:]}")
        answer = try_fetch(f"http://127.0.0.1:{port}/metrics")
        return answer.text if answer is not None and answer.status == 200 else None

    their_text = wait_for(scraped, 15, "Debian's libvirt exporter")
    theirs = shapes(their_text)
    libvirt_names = {name for name in theirs if name.startswith("libvirt_")}
    assert theirs.get("libvirt_up") == {frozenset()}, "libvirt exporter could not reach libvirt"
    # libvirt's test driver answers with the default objects: more than a bare `up`
    assert "libvirt_domain_info_virtual_cpus" in libvirt_names

    server = serve(Scraper(cache.get, compat="libvirt"))
    our_text = fetch(server.url).text
    ours = shapes(our_text)
    missing = sorted(name for name in libvirt_names if name not in ours)
    assert not missing, f"hvmon compat lacks {missing}"
    wrong = {name: (theirs[name], ours[name]) for name in libvirt_names
             if not theirs[name] <= ours[name]}
    assert not wrong, f"label names differ: {wrong}"

    # and the same objects give the same static values
    static = ("libvirt_up", "libvirt_domains_number", "libvirt_domain_state_code",
              "libvirt_domain_info_virtual_cpus", "libvirt_domain_info_maximum_memory_bytes",
              "libvirt_domain_info_memory_usage_bytes")
    assert values(their_text, static) == values(our_text, static)


def values(text: str, names: tuple[str, ...]) -> dict[tuple[str, frozenset[tuple[str, str]]],
                                                      float]:
    """The samples of ``names``: (name, labels) -> value."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples if s.name in names}
