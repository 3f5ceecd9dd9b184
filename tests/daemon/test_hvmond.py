"""hvmond as a real process: defaults, reload, graceful stop, bad config, JSON logs."""

from __future__ import annotations

import json
import re
import shlex
import signal
import socket
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

from .conftest import HVMON, DaemonProcess, daemon_env, wait_until

Start = Callable[..., DaemonProcess]


def dirs(tmp_path: Path) -> list[str]:
    return ["--run-dir", str(tmp_path / "run"), "--state-dir", str(tmp_path / "state")]


def test_no_config_serves_test_default_and_prints_where_it_listens(
        start_hvmond: Start, tmp_path: Path) -> None:
    daemon = start_hvmond("--no-config", *dirs(tmp_path))
    banner = daemon.wait_ready()
    run = tmp_path / "run"
    assert f"serving test:///default (driver test), pid {daemon.proc.pid}" in banner
    assert f"read-write socket: {run / 'hvmon-sock'}" in banner
    assert f"read-only socket:  {run / 'hvmon-sock-ro'}" in banner
    assert stat.S_IMODE((run / "hvmon-sock").stat().st_mode) == 0o600
    assert stat.S_IMODE((run / "hvmon-sock-ro").stat().st_mode) == 0o666
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    # the hint is a command that works as printed
    hint = next(line for line in banner.splitlines() if line.startswith("try: "))
    argv = shlex.split(hint.removeprefix("try: "))
    assert argv[:2] == ["hvmon", "-c"]
    listing = subprocess.run([str(HVMON), *argv[1:]], capture_output=True, text=True,
                             timeout=30, env=daemon_env(), check=True).stdout
    assert re.search(r"^\s*1\s+test\s+running", listing, re.M)
    assert daemon.stop(signal.SIGINT) == 0
    assert not (run / "hvmon-sock").exists() and not (run / "hvmon-sock-ro").exists()
    assert "Traceback" not in daemon.stderr


def test_hvmon_serve_is_the_same_daemon(start_hvmond: Start, tmp_path: Path) -> None:
    daemon = start_hvmond("serve", "--no-config", *dirs(tmp_path), command=[str(HVMON)])
    assert "read-write socket:" in daemon.wait_ready()
    assert daemon.stop() == 0


def test_bad_config_is_one_line_and_a_nonzero_exit(start_hvmond: Start, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[daemon]\nlog_format = "xml"\nuri = "test:///default"\ncolour = 1\n'
                      '[agents.nobody]\nenabled = true\n')
    daemon = start_hvmond("--config", str(config), *dirs(tmp_path))
    assert daemon.proc.wait(30) == 2
    lines = daemon.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"hvmond: error: invalid configuration {config}: ")
    for problem in ("daemon.log_format: must be one of text, json",
                    "daemon.colour: unknown key", "agents.nobody: unknown agent"):
        assert problem in lines[0]
    assert daemon.stdout == ""
    assert not (tmp_path / "run").exists()  # refused before creating anything


def test_a_busy_socket_is_a_one_line_failure(start_hvmond: Start, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(str(run / "hvmon-sock"))
    live.listen()
    try:
        daemon = start_hvmond("--no-config", *dirs(tmp_path))
        assert daemon.proc.wait(30) == 1
    finally:
        live.close()
    errors = [line for line in daemon.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "another daemon is listening on" in errors[0]
    assert "Traceback" not in daemon.stderr


def _config(tmp_path: Path, quiet_greeting: str, *, extra: str = "") -> Path:
    path = tmp_path / "hvmon.toml"
    path.write_text(f"""
[daemon]
uri = "test:///default"
log_format = "json"
log_level = "info"
restart_delay = 0.1
snapshot_interval = 0

[agents.tiny]
enabled = true
listen = "127.0.0.1:0"
greeting = "hi there"

[agents.tiny-quiet]
enabled = true
greeting = "{quiet_greeting}"
{extra}
""")
    return path


def _log(run: Path, name: str) -> list[str]:
    path = run / f"{name}.log"
    return path.read_text().splitlines() if path.exists() else []


def test_sighup_restarts_only_the_changed_agent_and_sigterm_stops_cleanly(
        start_hvmond: Start, tmp_path: Path, tiny_site: Path) -> None:
    run = tmp_path / "run"
    config = _config(tmp_path, "psst")
    daemon = start_hvmond("--config", str(config), *dirs(tmp_path), site=tiny_site)
    banner = daemon.wait_ready()
    assert re.search(r"agent tiny: listening on 127\.0\.0\.1:\d+", banner)
    assert "agent tiny-quiet: ok" in banner
    assert [line.split()[0] for line in _log(run, "tiny")] == ["start"]
    assert "greeting=psst" in _log(run, "tiny-quiet")[0]

    # change only tiny-quiet, reload
    _config(tmp_path, "shh")
    daemon.send(signal.SIGHUP)
    wait_until(lambda: len(_log(run, "tiny-quiet")) == 3, 10, "tiny-quiet to restart")
    quiet = _log(run, "tiny-quiet")
    assert [line.split()[0] for line in quiet] == ["start", "stop", "start"]
    assert "greeting=shh" in quiet[2]
    assert [line.split()[0] for line in _log(run, "tiny")] == ["start"]  # untouched

    # a bad config on reload is reported and the running one kept
    config.write_text("[daemon]\nlog_format = 7\n")
    daemon.send(signal.SIGHUP)
    wait_until(lambda: "reload refused" in daemon.stderr, 10, "the refused reload")
    assert daemon.proc.poll() is None
    assert len(_log(run, "tiny-quiet")) == 3 and len(_log(run, "tiny")) == 1

    assert daemon.stop(signal.SIGTERM) == 0
    assert not (run / "hvmon-sock").exists() and not (run / "hvmon-sock-ro").exists()
    assert _log(run, "tiny")[-1].startswith("stop") and _log(run, "tiny-quiet")[-1].startswith(
        "stop")

    # every stderr line is one JSON object
    records = [json.loads(line) for line in daemon.stderr.splitlines()]
    assert records and all({"ts", "level", "logger", "message"} <= set(r) for r in records)
    refused = [r for r in records if "reload refused" in r["message"]]
    assert refused[0]["level"] == "error" and refused[0]["logger"] == "hvmon.daemon"
    assert "daemon.log_format: must be one of text, json, got 7" in refused[0]["message"]
    assert any(r["logger"] == "hvmon.agent.tiny" and r["message"] == "tiny agent tiny started"
               for r in records)
    assert any("restarting agent tiny-quiet" in r["message"] for r in records)
    assert not any("restarting agent tiny " in r["message"] + " " for r in records)
