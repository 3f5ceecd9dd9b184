"""Shared test helpers for suites that drive real tools.

The house rule lives here once: a test whose installable tool is missing
skips on a developer's machine and fails when ``CI=true`` (a skipped
integration test would hide a missing install step in the Makefile).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

#: where Debian puts daemons (snmpd, nagios4, collectd) that a user's PATH may lack
SBIN_DIRS = "/usr/sbin:/sbin"


def in_ci() -> bool:
    """True when running in CI, where a missing tool is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def need(condition: bool, message: str) -> None:
    """Skip (fail when CI=true) unless ``condition``."""
    if not condition:
        if in_ci():
            pytest.fail(f"{message} (required when CI=true)")
        pytest.skip(message)


def need_tool(name: str, hint: str = "") -> str:
    """The path of program ``name`` (PATH, then the sbin directories); skip or fail without it.

    ``hint`` names the Debian package(s), quoted in the message.
    """
    path = shutil.which(name) or shutil.which(name, path=SBIN_DIRS)
    need(path is not None, f"{name} is not installed" + (f" ({hint})" if hint else ""))
    assert path is not None
    return path


def wait_for(probe: Callable[[], T | None], timeout: float, what: str,
             interval: float = 0.1) -> T:
    """Call ``probe`` until it returns something other than None; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def stop_process(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """Stop a process a test started, by its PID: SIGTERM, then SIGKILL after ``grace`` s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
