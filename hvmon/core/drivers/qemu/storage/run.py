"""Running the host tools storage backends need (qemu-img, iscsi-ls, iscsiadm, lvm, mount).

Every command goes through one :class:`Runner`: argv lists only, a timeout,
and a failure becomes one :class:`OperationFailed` line quoting the tool's
last error line. Tests swap in a recording runner to check the command lines
of backends this machine cannot run for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hvmon.core.errors import OperationFailed

#: where Debian keeps admin tools (iscsiadm, lvcreate, mount.nfs)
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_TIMEOUT = 120.0


def find_tool(name: str) -> str:
    """The path of ``name`` (PATH, then the sbin directories); OperationFailed without it."""
    path = shutil.which(name) or shutil.which(name, path=SBIN_PATH)
    if path is None:
        raise OperationFailed(f"'{name}' is not installed on this host")
    return path


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


class Runner:
    """Runs tools for real. ``run`` raises on a non-zero exit unless ``check=False``."""

    def run(self, argv: Sequence[str], *, check: bool = True, timeout: float = DEFAULT_TIMEOUT,
            input: bytes | None = None, env: dict[str, str] | None = None) -> Result:
        """Run ``argv``; ``env`` adds variables (CHAP credentials travel this way)."""
        tool = find_tool(argv[0]) if "/" not in argv[0] else argv[0]
        full_env = {**os.environ, **env} if env else None
        try:
            proc = subprocess.run([tool, *argv[1:]], capture_output=True, timeout=timeout,
                                  input=input, check=False, env=full_env)
        except subprocess.TimeoutExpired:
            raise OperationFailed(f"'{argv[0]}' did not finish within {timeout:g} s") from None
        except OSError as exc:
            raise OperationFailed(f"cannot run '{argv[0]}': {exc.strerror}") from None
        result = Result(proc.returncode, proc.stdout.decode(errors="replace"),
                        proc.stderr.decode(errors="replace"))
        if check and proc.returncode != 0:
            why = last_line(result.stderr) or last_line(result.stdout) or \
                f"exit status {proc.returncode}"
            raise OperationFailed(f"{argv[0]} failed: {why}")
        return result


@dataclass
class RecordingRunner(Runner):
    """Records argv lists and answers from ``replies`` (tool name -> callable or Result)."""

    calls: list[list[str]] = field(default_factory=list)
    replies: dict[str, Callable[[list[str]], Result] | Result] = field(default_factory=dict)

    envs: list[dict[str, str] | None] = field(default_factory=list)

    def run(self, argv: Sequence[str], *, check: bool = True, timeout: float = DEFAULT_TIMEOUT,
            input: bytes | None = None, env: dict[str, str] | None = None) -> Result:
        args = list(argv)
        self.calls.append(args)
        self.envs.append(env)
        reply = self.replies.get(args[0], Result(0, "", ""))
        result = reply(args) if callable(reply) else reply
        if check and result.returncode != 0:
            raise OperationFailed(f"{args[0]} failed: {last_line(result.stderr)}")
        return result
