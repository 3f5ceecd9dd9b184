"""Connection.get_free_memory: host memory minus what running domains hold."""

from __future__ import annotations

import hvmon


def test_free_memory_follows_running_domains(conn: hvmon.Connection) -> None:
    total = conn.node_info().memory * 1024
    dom = conn.lookup_domain_by_name("test")
    held = dom.info().memory * 1024
    assert conn.get_free_memory() == total - held
    dom.destroy()
    assert conn.get_free_memory() == total
    dom.create()
    conn.get_all_domain_stats()  # builds the stats profile the driver's accounting reads
    assert conn.get_free_memory() == total - held
    dom.set_memory(1024 * 1024)
    assert conn.get_free_memory() == total - 1024**3


def test_free_memory_is_allowed_read_only(conn: hvmon.Connection) -> None:
    ro = hvmon.open_readonly("test:///default")
    try:
        assert ro.get_free_memory() > 0
    finally:
        ro.close()
