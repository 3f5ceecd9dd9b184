"""A third-party plugin installed from a real wheel: discovered, listed, its agent run."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

from .conftest import HVMON, DaemonProcess, daemon_env

Start = Callable[..., DaemonProcess]


def hvmon(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HVMON), *args], capture_output=True, text=True, timeout=30,
                          env=daemon_env(site), check=False)


def test_the_wheel_is_installed_like_any_package(tiny_site: Path) -> None:
    info = tiny_site / "hvmon_tiny-1.2.3.dist-info"
    assert (info / "entry_points.txt").read_text().startswith("[hvmon.plugins]")
    assert (info / "RECORD").is_file() and (tiny_site / "hvmon_tiny" / "__init__.py").is_file()


def test_hvmond_discovers_and_runs_the_third_party_agent(
        start_hvmond: Start, tmp_path: Path, tiny_site: Path) -> None:
    config = tmp_path / "hvmon.toml"
    config.write_text('[agents.tiny]\nenabled = true\nlisten = "127.0.0.1:0"\n'
                      'greeting = "hello from a wheel"\n')
    run = tmp_path / "run"
    daemon = start_hvmond("--config", str(config), "--run-dir", str(run),
                          "--state-dir", str(tmp_path / "state"), site=tiny_site)
    banner = daemon.wait_ready()
    match = re.search(r"agent tiny: listening on 127\.0\.0\.1:(\d+)", banner)
    assert match, banner
    assert "tiny-quiet" not in banner  # not enabled in the file
    started = (run / "tiny.log").read_text().splitlines()
    assert len(started) == 1 and started[0].startswith(f"start {daemon.proc.pid} ")
    assert "greeting=hello from a wheel readonly=True" in started[0]
    with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=5) as conn:
        assert conn.makefile().readline() == "hello from a wheel\n"
    # the broken plugin of the same wheel is one warning line, not fatal
    warnings = [line for line in daemon.stderr.splitlines() if "tiny-broken" in line]
    assert len(warnings) == 1 and "failed to load: ImportError: this plugin is broken" \
        in warnings[0]
    assert daemon.stop() == 0
    assert (run / "tiny.log").read_text().splitlines()[-1].startswith("stop")


def test_hvmon_plugins_lists_version_package_and_enabled_agents(
        tiny_site: Path, tmp_path: Path) -> None:
    config = tmp_path / "hvmon.toml"
    config.write_text("[agents.tiny]\nenabled = true\n[tiny]\nmotto = \"less\"\n")
    result = hvmon(tiny_site, "plugins", "--config", str(config))
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("\n\n")[0].splitlines()
    rows = {line.split()[0]: line for line in table[2:]}
    assert re.match(r"\s*tiny\s+1\.2\.3\s+hvmon-tiny\s+tiny \(enabled\), tiny-quiet "
                    r"\(disabled\)$", rows["tiny"])
    assert re.match(r"\s*builtin\s+0\.1\.0\s+hvmon\s+-$", rows["builtin"])
    assert f"Configuration: {config}" in result.stdout
    # the broken plugin is listed as a problem (a built-in command loads no plugin commands,
    # so no warning line; a plugin's command warns, see below)
    assert "tiny-broken" not in result.stderr
    assert "Problems:\n  plugin 'tiny-broken' (hvmon_tiny_broken) failed to load" \
        in result.stdout

    as_json = json.loads(hvmon(tiny_site, "plugins", "--no-config", "--json").stdout)
    tiny = next(p for p in as_json["plugins"] if p["name"] == "tiny")
    assert (tiny["version"], tiny["package"], tiny["module"]) == ("1.2.3", "hvmon-tiny",
                                                                  "hvmon_tiny")
    # without a config only in-tree agents run: the third-party ones stay off
    assert {a["name"]: a["enabled"] for a in tiny["agents"]} == {"tiny": False,
                                                                 "tiny-quiet": False}
    assert as_json["config"] is None

    bad = tmp_path / "bad.toml"
    bad.write_text("[tiny]\nmotto = 1\n")
    result = hvmon(tiny_site, "plugins", "--config", str(bad))
    assert result.returncode == 1
    assert "error: invalid configuration" in result.stderr and "tiny.motto: must be a string" \
        in result.stderr
    assert "tiny-quiet (?)" in result.stdout


def test_plugin_cli_commands_join_hvmon(tiny_site: Path) -> None:
    result = hvmon(tiny_site, "tiny-hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("hello from hvmon-tiny\n")
    assert result.stderr.count("warning: plugin 'tiny-broken'") == 1
    assert "tiny-hello" in hvmon(tiny_site, "help").stdout
    # HVMON_DISABLE_PLUGINS takes the plugin (and its command) away
    env = {**daemon_env(tiny_site), "HVMON_DISABLE_PLUGINS": "tiny,tiny-broken"}
    disabled = subprocess.run([str(HVMON), "tiny-hello"], capture_output=True, text=True,
                              timeout=30, env=env, check=False)
    assert disabled.returncode == 2 and "invalid choice: 'tiny-hello'" in disabled.stderr
    assert "tiny-broken" not in disabled.stderr
