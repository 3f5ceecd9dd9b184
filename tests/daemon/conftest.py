"""Fixtures: the tiny plugin wheel installed in a temporary site, hvmond subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from leaks import threads_joined

from . import tinyplugin

BIN = Path(sys.executable).parent
HVMOND = BIN / "hvmond"
HVMON = BIN / "hvmon"


def wait_until(predicate: Callable[[], object], timeout: float = 10.0,
               what: str = "condition") -> None:
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture(scope="session")
def tiny_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``hvmon-tiny`` built as a wheel and pip-installed into its own target directory."""
    root = tmp_path_factory.mktemp("tiny")
    wheel = tinyplugin.build_wheel(root)
    site = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        check=True, capture_output=True, timeout=120,
    )
    return site


def daemon_env(site: Path | None = None) -> dict[str, str]:
    """The environment for hvmond/hvmon: no disabled plugins, the tiny site when given."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("HVMON_DISABLE_PLUGINS", "PYTHONPATH", "HVMON_DEBUG")}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return env


class DaemonProcess:
    """An hvmond subprocess whose stdout and stderr go to files in ``workdir``."""

    def __init__(self, argv: list[str], workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.stdout_path = workdir / "hvmond.out"
        self.stderr_path = workdir / "hvmond.err"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         env=env, cwd=workdir)

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_ready(self, timeout: float = 15.0) -> str:
        """The banner, once hvmond printed its ``ready`` line."""
        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"hvmond exited with {self.proc.returncode}: {self.stderr[-2000:]}")
            return "\nready " in "\n" + self.stdout
        wait_until(ready, timeout, "hvmond to be ready")
        return self.stdout

    def send(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``signum`` and return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def start_hvmond(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Start hvmond subprocesses (``hvmond`` + args); each is killed by PID afterwards."""
    started: list[DaemonProcess] = []

    def start(*args: str, site: Path | None = None, command: list[str] | None = None,
              workdir: Path | None = None) -> DaemonProcess:
        argv = (command or [str(HVMOND)]) + list(args)
        process = DaemonProcess(argv, workdir or tmp_path, daemon_env(site))
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.kill()


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    """Every thread an in-process daemon starts is gone after the test."""
    with threads_joined():
        yield
