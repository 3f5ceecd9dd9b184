"""The real command in a child process: exit codes and no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def _hvmon(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "HVMON_DEFAULT_URI"} | env
    return subprocess.run([sys.executable, "-m", "hvmon.cli", *args], capture_output=True,
                          text=True, timeout=60, env=environ, check=False)


def test_success_exit_code_and_output():
    result = _hvmon("list")
    assert result.returncode == 0, result.stderr
    assert " 1    test   running" in result.stdout
    assert result.stderr == ""


def test_errors_exit_1_without_traceback():
    result = _hvmon("dominfo", "nosuch")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: failed to get domain 'nosuch'")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr

    result = _hvmon("-r", "destroy", "test")
    assert result.returncode == 1
    assert result.stderr.startswith("error: read-only connection: ")
    assert "Traceback" not in result.stderr


def test_usage_error_exits_2_and_default_uri_from_environment():
    assert _hvmon("frobnicate").returncode == 2
    result = _hvmon("uri", HVMON_DEFAULT_URI="test:///default")
    assert result.returncode == 0 and result.stdout.startswith("test:///default")
    result = _hvmon("list", HVMON_DEFAULT_URI="bogus")
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_ctrl_c_ends_event_loop_quietly():
    environ = {k: v for k, v in os.environ.items() if k != "HVMON_DEFAULT_URI"}
    proc = subprocess.Popen([sys.executable, "-m", "hvmon.cli", "event", "--loop"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environ)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert "Traceback" not in err
    assert proc.returncode in (0, 130)
    if proc.returncode == 0:
        assert "events received: 0" in out
