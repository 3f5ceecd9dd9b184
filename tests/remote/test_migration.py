"""Migration between two daemons on the test driver: client-driven and peer to peer."""

from __future__ import annotations

from pathlib import Path

import pytest

import hvmon
from hvmon.core.types import DomainState, ShutoffReason

from .conftest import DaemonFactory


def uri_of(daemon: object) -> str:
    return daemon.uri()  # type: ignore[attr-defined]


@pytest.fixture
def two(start_daemon: DaemonFactory, tmp_path: Path) -> tuple[object, object]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = start_daemon(tmp_path / "a"), start_daemon(tmp_path / "b")
    b.local.lookup_domain_by_name("test").destroy()  # host B has no guest of its own
    b.local.lookup_domain_by_name("test").undefine()
    return a, b


def test_client_driven_migration_between_daemons(two: tuple[object, object]) -> None:
    a, b = two
    with hvmon.open(uri_of(a)) as src, hvmon.open(uri_of(b)) as dst:
        moved = src.lookup_domain_by_name("test").migrate(dst, live=True, persistent=True)
        assert moved is not None and moved.state()[0] == DomainState.RUNNING
        assert moved.is_persistent()
    assert a.local.lookup_domain_by_name("test").state() == (  # type: ignore[attr-defined]
        DomainState.SHUTOFF, ShutoffReason.MIGRATED)


def test_peer_to_peer_the_source_daemon_drives(two: tuple[object, object]) -> None:
    a, b = two
    with hvmon.open(uri_of(a)) as src:
        reports: list[tuple[int, int]] = []
        result = src.lookup_domain_by_name("test").migrate(
            uri_of(b), live=True, p2p=True, undefine_source=True,
            progress=lambda done, total: reports.append((done, total)))
        assert result is None
        assert src.list_all_domains() == []  # undefined on the source after success
    got = b.local.lookup_domain_by_name("test")  # type: ignore[attr-defined]
    assert got.state()[0] == DomainState.RUNNING and not got.is_persistent()
    with hvmon.open(uri_of(b), readonly=True) as ro, pytest.raises(hvmon.OperationDenied):
        ro.lookup_domain_by_name("test").migrate(uri_of(a), p2p=True)  # read-only: refused


def test_tunnelled_the_stream_goes_over_the_daemons_connection(
        two: tuple[object, object]) -> None:
    a, b = two
    with hvmon.open(uri_of(a)) as src:
        assert src.lookup_domain_by_name("test").migrate(uri_of(b), live=True, p2p=True,
                                                         tunnelled=True) is None
    got = b.local.lookup_domain_by_name("test")  # type: ignore[attr-defined]
    assert got.state()[0] == DomainState.RUNNING
    with hvmon.open(uri_of(a)) as src, pytest.raises(hvmon.InvalidArgument,
                                                     match="tunnelled migration needs p2p"):
        src.lookup_domain_by_name("test").migrate(uri_of(b), tunnelled=True)
