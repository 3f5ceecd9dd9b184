"""check_hvmon against a real hvmond: its read-only socket, in process and as a command."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import hvmon
from hvmon.plugins.nagios.source import Source

from .conftest import SPECIAL, STATUS_RE, Check, Daemon, run_launcher


def test_domain_over_the_read_only_socket(check: Check, daemon: Daemon) -> None:
    result = check("-U", daemon.uri(), "domain", "test")
    assert result.code == 0
    assert STATUS_RE.match(result.status)
    assert result.status.startswith("HVMON DOMAIN OK - 'test' is running (booted)")
    assert result.perfdata["test_memory"] == "2147483648B;;;0;8589934592"
    time.sleep(0.05)
    again = check("-U", daemon.uri(), "domain", "test", "--max-age", "0")
    value = again.perfdata["test_cpu"].split(";")[0]
    assert value.endswith("%") and 0 <= float(value[:-1]) <= 100


@pytest.mark.parametrize(("argv", "start"), [
    (["host"], "HVMON HOST OK - vm: 1 domains (1 running)"),
    (["domains"], "HVMON DOMAINS OK - no autostart domains"),
    (["pool", "--all"], "HVMON POOL OK - pool 'default-pool' 0% used"),
    (["network", "default"], "HVMON NETWORK OK - network 'default' DHCP 0.4% used"),
    (["daemon"], "HVMON DAEMON OK - hvmond 0.1.0 serving test:///default, snapshot "),
])
def test_every_mode_over_the_socket(check: Check, daemon: Daemon, argv: list[str],
                                    start: str) -> None:
    result = check("-U", daemon.uri(), *argv)
    assert result.code == 0, result.out
    assert STATUS_RE.match(result.status)
    assert result.status.startswith(start)


def test_daemon_mode_perfdata_and_thresholds(check: Check, daemon: Daemon) -> None:
    result = check("-U", daemon.uri(), "daemon", "-vv")
    perf = result.perfdata
    age, warn, crit, low = perf["snapshot_age"].split(";")
    assert age.endswith("s") and (warn, crit, low) == ("60", "300", "0")
    assert perf["uptime"].endswith("s;;;0")
    assert int(perf["clients"].split(";")[0]) >= 1
    assert perf["agents_failed"] == "0;;;0;0"
    assert any(line.startswith("daemon: hvmond 0.1.0, pid ") for line in result.lines)
    stale = check("-U", daemon.uri(), "daemon", "-w", "@0:")
    assert stale.code == 1 and "(inside range 0:)" in stale.status
    assert stale.perfdata["snapshot_age"].split(";")[1] == "@0:"


def test_the_read_write_socket_still_gives_a_read_only_connection(daemon: Daemon) -> None:
    source = Source(daemon.uri(readonly=False))
    try:
        conn = source.connection
        assert conn.readonly
        with pytest.raises(hvmon.OperationDenied):
            conn.lookup_domain_by_name("test").destroy()
    finally:
        source.close()


def test_the_command(launcher: Path, daemon: Daemon) -> None:
    result = run_launcher(launcher, "-U", daemon.uri(), "domain", "test")
    assert result.code == 0 and STATUS_RE.match(result.status)
    env = {"HVMON_DEFAULT_URI": daemon.uri()}
    assert run_launcher(launcher, "pool", "default-pool", env=env).code == 0
    help_ = run_launcher(launcher, "--help")
    assert help_.code == 3 and help_.out.startswith("usage: check_hvmon")
    bad = run_launcher(launcher, "domain", "-w", "x:y", "test")
    assert bad.code == 3
    assert bad.lines[0] == ("HVMON DOMAIN UNKNOWN - argument -w/--warning: invalid range "
                            "'x:y' (expected [@][start:][end])")
    assert bad.lines[1].startswith("Usage: check_hvmon")


def test_the_command_times_out_on_a_stalled_daemon(
        launcher: Path, start_daemon: Callable[..., Daemon]) -> None:
    stalled = start_daemon("test:///default?stall=test:3")
    started = time.monotonic()
    result = run_launcher(launcher, "-U", stalled.uri(), "-t", "1", "--max-age", "0",
                          "domain", "test")
    assert time.monotonic() - started < 2.5
    assert result.code == 3
    assert result.status.startswith("HVMON DOMAIN UNKNOWN - timeout: no result after 1 s | "
                                    "time=")


def test_stale_domain_statistics_from_the_daemon(
        check: Check, start_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    control = tmp_path / "controls.json"
    control.write_text("{}")
    served = start_daemon(f"test:///default?control={control}", "snapshot_deadline = 0.3\n")
    uri = served.uri()
    assert check("-U", uri, "--max-age", "0", "domain", "test").code == 0
    staging = tmp_path / "controls.tmp"
    staging.write_text(json.dumps({"stall": {"test": 1}}))
    staging.rename(control)
    result = check("-U", uri, "--max-age", "0", "domain", "test")
    assert result.code == 1
    assert "statistics are " in result.status and " s old: " in result.status


def test_a_name_with_shell_characters_through_daemon_and_command(
        launcher: Path, start_daemon: Callable[..., Daemon], node_file: Path) -> None:
    served = start_daemon(f"test://{node_file}")
    result = run_launcher(launcher, "-U", served.uri(served=f"test://{node_file}"), "domain",
                          SPECIAL)
    assert result.code == 0, result.out
    assert STATUS_RE.match(result.status)
    label = SPECIAL.replace("|", "_").replace("=", "_")
    assert result.perfdata[f"{label}_memory"] == "2147483648B;;;0;4294967296"
