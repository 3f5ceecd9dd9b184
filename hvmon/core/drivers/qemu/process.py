"""QEMU processes: launch from an argv list, status files, liveness, stop.

QEMU runs in a session of its own; a restarted daemon finds its guests exactly
as the old one left them (the status file holds pid, monitor and live XML). A
pid is trusted only while ``/proc/PID/cmdline`` still names the domain's UUID,
so a reused pid is never mistaken for a guest.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from hvmon.core.errors import OperationFailed

log = logging.getLogger("hvmon.qemu.process")

#: the prefix of the lines the driver itself writes to a domain's log
_OWN = "hvmon: "


@dataclass
class Status:
    """What ``run/qemu/NAME.status.json`` records of a running domain."""

    uuid: str
    name: str
    id: int
    pid: int
    monitor: str
    state: int
    reason: int
    started_at: float
    live_xml: str
    transient: bool = False


class QemuProcess(Protocol):
    """The handle of a QEMU the driver started: a Popen, or QEMU in a PID namespace
    (isolation.hook.NamespacedQemu) whose ``pid`` is QEMU's host pid."""

    pid: int

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


def write_status(path: Path, status: Status) -> None:
    """Write atomically (temp file + rename), readable by the owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(status), out)
    os.replace(tmp, path)


def read_status(path: Path) -> Status | None:
    """The status in ``path``; None (logged) when it is unreadable or malformed."""
    try:
        data: Any = json.loads(path.read_text())
        return Status(**{k: data[k] for k in Status.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError) as exc:
        log.warning("ignoring unreadable status file %s: %s", path, exc)
        return None


def launch(argv: list[str], *, logfile: Path, user: int | None = None, group: int | None = None,
           extra_groups: list[int] | None = None,
           pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[bytes]:
    """Start QEMU in a session of its own, output to ``logfile``; the running process.

    QEMU is not daemonized (``-daemonize`` forks, which its ``spawn=deny``
    sandbox forbids): the driver keeps the handle to reap it, and a restarted
    daemon finds it by pid from the status file. ``user``/``group``/``extra_groups``
    start it unprivileged; ``pass_fds`` are the only descriptors it inherits
    besides stdin/stdout/stderr.
    """
    with logfile.open("ab") as log_out:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log_out.write(f"{_OWN}{stamp} starting {argv[0]}\n".encode())
        log_out.flush()
        try:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_out,
                                    stderr=log_out, close_fds=True, start_new_session=True,
                                    user=user, group=group, extra_groups=extra_groups,
                                    pass_fds=pass_fds)
        except OSError as exc:
            raise OperationFailed(f"cannot run {argv[0]}: {exc.strerror or exc}") from None


def exited(proc: QemuProcess, logfile: Path) -> OperationFailed:
    """The error for a QEMU that exited during start-up, in QEMU's own words."""
    code = proc.wait()
    how = f"signal {-code}" if code < 0 else f"exit {code}"
    return OperationFailed(f"QEMU failed to start ({how}): {last_error(logfile)}")


def last_error(logfile: Path) -> str:
    """The last non-empty line QEMU wrote to its log, for one-line errors."""
    try:
        lines = [line.strip() for line in logfile.read_text(errors="replace").splitlines()
                 if not line.startswith(_OWN)]
    except OSError:
        return "no log"
    return next((line for line in reversed(lines) if line), "no message")


def alive(pid: int, uuid: str) -> bool:
    """True while ``pid`` is a live (not zombie) process whose command line names ``uuid``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]:
        return False
    return uuid.encode() in cmdline


def terminate(pid: int, uuid: str, grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; returns once the process is gone."""
    for signum, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        if not alive(pid, uuid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if not alive(pid, uuid):
                return
            time.sleep(0.002)
    raise OperationFailed(f"QEMU pid {pid} did not exit after SIGKILL")


def cpu_ticks(pid: int, tid: int | None = None) -> tuple[int, int] | None:
    """(user, system) clock ticks of a process or one of its threads; None if gone."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]), int(fields[12])


def last_cpu(pid: int, tid: int) -> int:
    """The host CPU thread ``tid`` of ``pid`` last ran on (/proc stat field 39); -1 if gone."""
    try:
        fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[36])
    except (OSError, IndexError, ValueError):
        return -1


def sched_wait_delay(pid: int, tid: int) -> tuple[int, int]:
    """(wait, delay) of a thread in ns, as libvirt's vcpu.N.wait/.delay: the scheduler's
    ``wait_sum`` (0 where the kernel keeps no schedstats) and schedstat's run-queue time."""
    task = f"/proc/{pid}/task/{tid}/"
    wait = delay = 0
    try:
        with open(task + "schedstat") as fh:
            delay = int(fh.read().split()[1])
    except (OSError, IndexError, ValueError):
        pass
    try:
        with open(task + "sched") as fh:
            for line in fh:
                if line.lstrip().startswith(("se.statistics.wait_sum", "se.wait_sum")):
                    wait = int(float(line.rsplit(":", 1)[1]) * 1_000_000)  # ms -> ns
                    break
    except (OSError, ValueError):
        pass
    return wait, delay


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB (None if gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


#: nanoseconds per clock tick
TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
