"""URI rules: which URIs open in-process, which reach a daemon, and on which socket."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import hvmon
from hvmon.core.drivers import open_driver
from hvmon.core.drivers.remote import RemoteDriver
from hvmon.core.drivers.test.driver import TestDriver
from hvmon.core.paths import default_run_dir, socket_path

from .conftest import Daemon, DaemonFactory


@pytest.fixture
def user_run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An unprivileged user's default run directory, under tmp_path."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg"))
    run_dir = default_run_dir()
    assert run_dir == tmp_path / "xdg" / "hvmon"
    return run_dir


def test_test_uri_opens_in_process() -> None:
    driver = open_driver("test:///default")
    try:
        assert isinstance(driver, TestDriver)
    finally:
        driver.close()


def test_unix_transport_reaches_the_daemon(daemon: Daemon) -> None:
    with daemon.open() as conn:
        assert isinstance(conn.driver, RemoteDriver)
        assert conn.get_uri() == daemon.uri()
        assert conn.driver.served_uri == "test:///default"
        assert [d.name for d in conn.list_all_domains()] == ["test"]


def test_missing_socket_is_one_line_no_connect(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "hvmon-sock"
    with pytest.raises(hvmon.NoConnect) as exc:
        hvmon.open(f"test+unix:///default?socket={path}")
    assert str(exc.value) == f"cannot connect to daemon at {path}: No such file or directory"
    assert exc.value.code == 5


def test_daemon_serving_another_driver_refuses(daemon: Daemon) -> None:
    with pytest.raises(hvmon.NoConnect) as exc:
        hvmon.open(f"qemu+unix:///system?socket={daemon.rw_path}")
    assert str(exc.value) == (
        f"daemon at {daemon.rw_path} serves test:///default, not qemu:///system")
    assert daemon.wait_for(lambda: daemon.server.client_count == 0)


@pytest.mark.parametrize("readonly", [False, True])
def test_qemu_uris_use_the_default_socket(
    start_daemon: DaemonFactory, user_run_dir: Path, readonly: bool
) -> None:
    daemon = start_daemon(user_run_dir, served="qemu:///system")
    expected = socket_path(user_run_dir, readonly)
    assert expected == (daemon.ro_path if readonly else daemon.rw_path)
    for uri in ("qemu:///system", "qemu+unix:///system"):
        driver = open_driver(uri, readonly=readonly)
        try:
            assert isinstance(driver, RemoteDriver)
            assert driver.socket_path == expected
            assert driver.server_readonly is readonly
            assert driver.node_info().cpus == 16
        finally:
            driver.close()
    with pytest.raises(hvmon.NoConnect, match="serves qemu:///system, not qemu:///session"):
        open_driver("qemu:///session", readonly=readonly)


def test_hvmon_open_readonly_picks_the_read_only_socket(
    start_daemon: DaemonFactory, user_run_dir: Path
) -> None:
    start_daemon(user_run_dir, served="qemu:///system")
    with hvmon.open_readonly("qemu:///system") as conn:
        assert conn.driver.socket_path == user_run_dir / "hvmon-sock-ro"
        assert conn.driver.server_readonly is True
        assert conn.readonly
    with hvmon.open("qemu:///system") as conn:
        assert conn.driver.socket_path == user_run_dir / "hvmon-sock"
        assert conn.driver.server_readonly is False


def test_qemu_without_a_daemon_names_the_default_socket(user_run_dir: Path) -> None:
    with pytest.raises(hvmon.NoConnect) as exc:
        hvmon.open("qemu:///system")
    assert str(exc.value) == (f"cannot connect to daemon at {user_run_dir / 'hvmon-sock'}: "
                              "No such file or directory")


def test_socket_query_overrides_the_default(
    start_daemon: DaemonFactory, user_run_dir: Path, tmp_path: Path
) -> None:
    daemon = start_daemon(tmp_path / "elsewhere", served="qemu:///system")
    with hvmon.open(f"qemu:///system?socket={daemon.rw_path}") as conn:
        assert conn.driver.socket_path == daemon.rw_path
        assert conn.get_hostname()


@pytest.mark.parametrize("uri", [
    "test+tls://host/default", "test+ssh://host/default", "qemu+unix://host/system",
    "test+unix:///default?socket=", "bogus:///x", "qemu://host/system",
])
def test_unsupported_remote_uris_are_one_line_errors(uri: str) -> None:
    with pytest.raises(hvmon.NoConnect) as exc:
        hvmon.open(uri)
    assert "\n" not in str(exc.value)
