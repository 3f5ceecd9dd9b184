"""hvmond as users run it: the ``collectd`` agent found through its entry point, set up
from the TOML file, pushing signed packets to a real collectd."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from toolcheck import stop_process

from .conftest import Collectd, free_udp_port, wait_for
from .test_collectd_network import network_conf

BIN = Path(sys.executable).parent
PUSH_HOST = "hvmond-push"


@pytest.fixture
def hvmond(tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """``start(config_text)``: an hvmond with that config; stopped by PID afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if k not in ("HVMON_DISABLE_PLUGINS",
                                                            "PYTHONPATH")}

    def start(text: str) -> subprocess.Popen[bytes]:
        config = tmp_path / "hvmon.toml"
        config.write_text(text)
        log = (tmp_path / "hvmond.log").open("wb")
        proc = subprocess.Popen([str(BIN / "hvmond"), "--config", str(config),
                                 "--run-dir", str(tmp_path / "run"),
                                 "--state-dir", str(tmp_path / "state")],
                                stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)
        log.close()
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            stop_process(proc, grace=10)


def test_hvmond_pushes_to_collectd_from_its_config_file(
        start_collectd: Callable[..., Collectd], hvmond: Callable[[str], Any],
        tmp_path: Path) -> None:
    port = free_udp_port("127.0.0.1")
    authfile = tmp_path / "passwd"
    authfile.write_text("hvmon: s3cret\n")
    collectd = start_collectd(network_conf("127.0.0.1", port, "Sign", authfile))
    proc = hvmond(f"""[daemon]
uri = "test:///default"
snapshot_interval = 0

[agents.collectd]
enabled = true
interval = 0.5
hostname = "{PUSH_HOST}"
[[agents.collectd.servers]]
address = "127.0.0.1:{port}"
security_level = "sign"
username = "hvmon"
password = "s3cret"
""")
    log = tmp_path / "hvmond.log"

    def ready() -> bool | None:
        if proc.poll() is not None:
            pytest.fail(f"hvmond exited: {log.read_text()[-2000:]}")
        return True if "\nready " in "\n" + log.read_text() else None

    wait_for(ready, 20, "hvmond to be ready")
    assert "agent collectd: ok" in log.read_text()
    rows = wait_for(lambda: r if len(r := collectd.csv_rows("virt-test/virt_cpu_total",
                                                            host=PUSH_HOST)) >= 2 else None,
                    20, "two pushes in collectd's csv")
    cpu = [int(float(row[1])) for row in rows]
    assert cpu == sorted(cpu) and cpu[-1] > cpu[0]
    assert "s3cret" not in log.read_text()
    assert "mismatch" not in collectd.log.lower()

    plugins = subprocess.run([str(BIN / "hvmon"), "plugins"], capture_output=True, text=True,
                             timeout=60, check=True, env={**os.environ,
                                                          "HVMON_DISABLE_PLUGINS": ""})
    assert any(line.split()[:1] == ["collectd"] for line in plugins.stdout.splitlines()), \
        plugins.stdout
