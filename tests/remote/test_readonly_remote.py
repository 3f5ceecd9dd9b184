"""The generated read-only test, again over the daemon's sockets.

Every mutating or secure method is refused by the daemon with OperationDenied
even though the client's own gate is read-write, and nothing changes
(fingerprinted through the daemon's own connection). Helpers come from
tests/core/test_readonly_registry.py.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator

import pytest
from registrytests import readonly_registry

import hvmon
from hvmon.core.access import AccessGate
from hvmon.core.api import Connection
from hvmon.core.drivers import open_driver

from .conftest import Daemon

core = readonly_registry()
MODES = ["ro-socket", "rw-socket-asking-readonly"]


def open_refusing(daemon: Daemon, mode: str) -> Connection:
    """A connection whose client-side gate is read-write but the daemon's is read-only."""
    if mode == "ro-socket":
        return hvmon.open(daemon.uri(readonly_socket=True), readonly=False)
    return Connection(open_driver(daemon.uri(), readonly=True), AccessGate(readonly=False))


@pytest.fixture(params=MODES)
def pair(daemon: Daemon, request: pytest.FixtureRequest) -> Iterator[tuple[Connection,
                                                                          Connection]]:
    """(the daemon's own rw connection, a remote connection the daemon treats read-only)."""
    rw = daemon.local
    core.populate(rw)
    ro = open_refusing(daemon, request.param)
    assert not ro.readonly and ro.driver.server_readonly
    yield rw, ro
    ro.close()


@pytest.mark.parametrize("name", core.GUARDED)
def test_mutating_or_secure_method_is_refused_by_the_daemon(pair, name: str) -> None:
    rw, ro = pair
    cls_name, method = name.split(".")
    target = core.target_for(cls_name, ro)
    fn = getattr(type(target), method)
    before = core.fingerprint(rw)
    with pytest.raises(hvmon.OperationDenied, match="read-only connection: .* is not allowed"):
        getattr(target, method)(**core.args_for(name, fn, ro))
    assert core.fingerprint(rw) == before


@pytest.mark.parametrize("name", core.SECURE_WHEN)
def test_secure_flag_is_refused_but_plain_read_works(pair, name: str) -> None:
    _, ro = pair
    target = core.target_for(name.split(".")[0], ro)
    method = getattr(target, name.split(".")[1])
    flag = hvmon.api_registry()[name].secure_flag
    with pytest.raises(hvmon.OperationDenied):
        method(**{flag: True})
    assert method(**{flag: False})


def test_reads_work_on_the_read_only_socket(pair) -> None:
    rw, ro = pair
    before = core.fingerprint(rw)
    assert [d.name for d in ro.list_all_domains()] == ["test"]
    assert ro.lookup_pool_by_name("default-pool").lookup_volume_by_name("v1").info()
    assert ro.daemon_info()["driver"] == "test:///default"
    assert ro.get_snapshot().domain("test") is not None
    callback = ro.domain_event_register(lambda event: None)
    ro.domain_event_deregister(callback)
    assert core.fingerprint(rw) == before


def test_socket_modes(daemon: Daemon) -> None:
    assert stat.S_ISSOCK(daemon.rw_path.stat().st_mode)
    assert stat.S_IMODE(daemon.rw_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(daemon.ro_path.stat().st_mode) == 0o666
    assert sorted(p.name for p in daemon.rw_path.parent.iterdir()) == [
        "hvmon-sock", "hvmon-sock-ro"]
