"""The prometheus agent inside a real hvmond: defaults, config, busy ports, reloads."""

from __future__ import annotations

import errno
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import DaemonProcess, wait_until

Start = Callable[..., DaemonProcess]
DEFAULT_PORT = 9177


def dirs(tmp_path: Path) -> list[str]:
    return ["--run-dir", str(tmp_path / "run"), "--state-dir", str(tmp_path / "state")]


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:  # refused: nothing listens (yet)
        return 0, str(exc)


def listening(banner: str, agent: str = "prometheus") -> list[str]:
    found = re.search(rf"^  agent {agent}: listening on (.+)$", banner, re.M)
    return found.group(1).split(", ") if found else []


def port_is_free(port: int) -> bool:
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the exporter binds
    try:
        probe.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def test_no_config_daemon_serves_metrics_on_loopback_9177(start_hvmond: Start,
                                                         tmp_path: Path) -> None:
    """What `make run` starts: the exporter on 127.0.0.1:9177 (never a public address)."""
    free = port_is_free(DEFAULT_PORT)
    daemon = start_hvmond("--no-config", *dirs(tmp_path))
    banner = daemon.wait_ready()
    if not free:  # someone else's exporter: the agent reports it in one line and retries
        print(f"port {DEFAULT_PORT} is taken on this machine; checking the failure path")
        wait_until(lambda: "cannot listen on 127.0.0.1:9177" in daemon.stderr, 15,
                   "the busy-port error")
        assert daemon.stop() == 0
        return
    assert listening(banner) == [f"127.0.0.1:{DEFAULT_PORT}"]
    status, body = fetch(f"http://127.0.0.1:{DEFAULT_PORT}/metrics")
    assert status == 200
    assert "hvmon_up 1" in body.splitlines()
    assert re.search(r'^hvmon_domain_state\{domain="test",uuid="[0-9a-f-]{36}"\} 1$', body, re.M)
    assert fetch(f"http://127.0.0.1:{DEFAULT_PORT}/healthz") == (200, "ok\n")
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.stderr


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "hvmon.toml"
    path.write_text('[daemon]\nuri = "test:///default"\nsnapshot_interval = 0.5\n'
                    "restart_delay = 0.2\n\n[agents.prometheus]\nenabled = true\n" + body)
    return path


def test_configured_addresses_collectors_and_compat(start_hvmond: Start,
                                                   tmp_path: Path) -> None:
    config = _config(tmp_path, 'listen = ["127.0.0.1:0", "[::1]:0"]\ncompat = "both"\n'
                               'collectors = ["host", "domain"]\nsnapshot_max_age = 0.0\n')
    daemon = start_hvmond("--config", str(config), *dirs(tmp_path))
    addresses = listening(daemon.wait_ready())
    assert len(addresses) == 2
    assert addresses[0].startswith("127.0.0.1:") and addresses[1].startswith("[::1]:")
    for address in addresses:
        status, body = fetch(f"http://{address}/metrics")
        assert status == 200
        assert "hvmon_host_cpus 16" in body and "libvirt_up 1" in body
        assert "hvmon_pool_" not in body  # the pool group is not enabled
    status, body = fetch(f"http://{addresses[0]}/metrics?collect[]=pool")
    assert (status, body) == (400, "collector 'pool' is disabled\n")
    # snapshot_max_age = 0: every scrape is served by a new snapshot
    generation = re.compile(r"^hvmon_snapshot_generation (\d+)", re.M)
    first = int(generation.findall(fetch(f"http://{addresses[0]}/metrics")[1])[0])
    second = int(generation.findall(fetch(f"http://{addresses[0]}/metrics")[1])[0])
    assert second > first
    assert daemon.stop() == 0


@pytest.mark.parametrize(("body", "problems"), [
    ('compat = "prometheus"\n', ["agents.prometheus: compat: must be one of hvmon, libvirt, both"]),
    ('collectors = ["host", "gpu"]\n', ["agents.prometheus: collectors: unknown collector 'gpu'"]),
    ("collectors = []\n", ["collectors: must name at least one collector group"]),
    ("snapshot_max_age = -1\n", ["snapshot_max_age: must be a number of seconds >= 0"]),
    ('snapshot_max_age = "soon"\n', ["snapshot_max_age: must be a number of seconds >= 0"]),
    ('web_config_file = "/nonexistent/web.yml"\n', ["agents.prometheus: web_config_file: "]),
    ('listen = ["0.0.0.0:x"]\n', ["agents.prometheus.listen"]),
])
def test_bad_options_are_one_line_and_nothing_starts(start_hvmond: Start, tmp_path: Path,
                                                     body: str, problems: list[str]) -> None:
    config = _config(tmp_path, body)
    daemon = start_hvmond("--config", str(config), *dirs(tmp_path))
    assert daemon.proc.wait(30) == 2
    lines = daemon.stderr.splitlines()
    assert len(lines) == 1, lines
    for problem in problems:
        assert problem in lines[0]
    assert not (tmp_path / "run").exists()


def test_a_busy_port_is_one_line_and_the_agent_comes_back(start_hvmond: Start,
                                                         tmp_path: Path) -> None:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    port = squatter.getsockname()[1]
    config = _config(tmp_path, f'listen = ["127.0.0.1:{port}"]\n')
    try:
        daemon = start_hvmond("--config", str(config), *dirs(tmp_path))
        daemon.wait_ready()
        wait_until(lambda: f"cannot listen on 127.0.0.1:{port}" in daemon.stderr, 15,
                   "the busy-port error")
        error = next(line for line in daemon.stderr.splitlines()
                     if f"cannot listen on 127.0.0.1:{port}" in line)
        assert "Address already in use" in error or errno.errorcode[errno.EADDRINUSE] in error
    finally:
        squatter.close()
    # the supervisor restarts the agent once the port is free
    wait_until(lambda: fetch(f"http://127.0.0.1:{port}/healthz")[0] == 200, 20,
               "the agent to come back")
    assert fetch(f"http://127.0.0.1:{port}/metrics")[0] == 200
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.stderr
