"""The daemon's own answers, its sockets, the procedure table and the CLI through it."""

from __future__ import annotations

import inspect
import socket
import threading
from pathlib import Path

import pytest

import hvmon
from hvmon.cli.main import main
from hvmon.core.api import Connection, api_registry
from hvmon.core.drivers.base import Driver
from hvmon.core.drivers.remote import RemoteDriver
from hvmon.core.snapshot.model import Snapshot
from hvmon.daemon.rpc.procedures import procedure_table

from .conftest import Daemon, DaemonFactory


def test_daemon_info(remote: Connection) -> None:
    info = remote.daemon_info()
    assert info["version"] == hvmon.__version__ and info["driver"] == "test:///default"
    assert info["agents"] == {"test": "ok"} and info["clients"] == 1
    assert set(info["snapshot"]) == {"generation", "age"}


def test_get_snapshot_is_served_and_encoded_once_per_generation(
    remote: Connection, daemon: Daemon
) -> None:
    snap = remote.get_snapshot()
    assert isinstance(snap, Snapshot) and snap.domain("test") is not None
    assert snap.to_dict() == daemon.snapshots.current().to_dict()
    encodes = daemon.server.snapshot_encodes
    results: list[Snapshot] = []
    readers = [threading.Thread(target=lambda: results.append(remote.get_snapshot(60.0)))
               for _ in range(10)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    assert {s.generation for s in results} == {snap.generation}
    assert daemon.server.snapshot_encodes == encodes
    fresh = remote.get_snapshot(0)
    assert fresh.generation > snap.generation
    assert daemon.server.snapshot_encodes == encodes + 1
    with pytest.raises(hvmon.InvalidArgument):
        remote.get_snapshot(-1)


def test_without_a_snapshot_cache_get_snapshot_is_unsupported(
    start_daemon: DaemonFactory,
) -> None:
    daemon = start_daemon(snapshots=False)
    with daemon.open() as conn, pytest.raises(hvmon.Unsupported):
        conn.get_snapshot()


def test_every_driver_method_has_a_procedure() -> None:
    public = {name for name, value in vars(Driver).items()
              if callable(value) and not name.startswith("_")}
    table = procedure_table()
    assert public - set(table) == set()
    assert table["close"].kind == "session"  # ends the client's session only
    internal = {"open", "events_start", "events_stop"}
    assert set(table) - public == internal
    for name in public - {"close"}:
        assert callable(getattr(RemoteDriver, name))
        if name not in ("uri", "get_snapshot", "volume_download", "volume_upload",
                        "pool_clone_volume", "migrate_tunnel_in"):
            assert getattr(RemoteDriver, name).__wrapped__ is getattr(Driver, name)


def test_every_procedure_maps_to_a_declared_api_rule() -> None:
    registry = api_registry()
    for proc in procedure_table().values():
        for spec in ([proc.spec] if proc.spec else []) + list(proc.choices.values()):
            assert spec in registry, (proc.name, spec)
    table = procedure_table()
    assert all(registry[s].mutates for s in table["domain_lifecycle"].choices.values())
    assert all(registry[s].mutates for s in table["pool_action"].choices.values())
    assert all(registry[s].mutates for s in table["network_action"].choices.values())
    assert registry[table["secret_get_value"].spec].secure
    assert registry[table["volume_download"].spec].secure
    assert registry[table["volume_upload"].spec].mutates
    assert registry[table["domain_xml"].spec].secure_flag == "secure"
    assert "secure" in inspect.signature(Driver.domain_xml).parameters
    for name in ("define_domain", "secret_set_value", "volume_delete", "pool_create_volume"):
        assert registry[table[name].spec].mutates


def test_a_live_socket_is_never_replaced(daemon: Daemon, start_daemon: DaemonFactory) -> None:
    with pytest.raises(hvmon.NoConnect) as exc:
        start_daemon(daemon.rw_path.parent)
    assert str(exc.value) == f"another daemon is listening on {daemon.rw_path}"
    with daemon.open() as conn:
        assert conn.get_hostname()


def test_a_stale_socket_is_replaced(tmp_path: Path, start_daemon: DaemonFactory) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "hvmon-sock"))
    stale.close()  # the file stays, nobody listens
    daemon = start_daemon(tmp_path)
    with daemon.open() as conn:
        assert conn.get_hostname()


def test_a_regular_file_is_not_replaced(tmp_path: Path, start_daemon: DaemonFactory) -> None:
    (tmp_path / "hvmon-sock-ro").write_text("keep me")
    with pytest.raises(hvmon.NoConnect, match="refusing to replace .* not a socket"):
        start_daemon(tmp_path)
    assert (tmp_path / "hvmon-sock-ro").read_text() == "keep me"
    assert not (tmp_path / "hvmon-sock").exists()  # the rw socket was cleaned up


def test_stop_removes_the_sockets(daemon: Daemon) -> None:
    daemon.stop()
    assert not daemon.rw_path.exists() and not daemon.ro_path.exists()


def test_cli_through_the_daemon(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", daemon.uri(), "list"]) == 0
    out = capsys.readouterr().out
    assert "test" in out and "running" in out
    assert main(["-c", daemon.uri(), "destroy", "test"]) == 0
    assert not daemon.local.lookup_domain_by_name("test").is_active()
    assert main(["-c", daemon.uri(readonly_socket=True), "start", "test"]) == 1
    assert "read-only connection" in capsys.readouterr().err
    assert daemon.wait_for(lambda: daemon.server.client_count == 0)


def test_cli_without_a_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hvmon-sock"
    assert main(["-c", f"test+unix:///default?socket={path}", "list"]) == 1
    assert capsys.readouterr().err == (
        f"error: cannot connect to daemon at {path}: No such file or directory\n")
