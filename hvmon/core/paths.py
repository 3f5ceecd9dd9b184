"""Where the daemon keeps its sockets and state, by libvirt's conventions."""

from __future__ import annotations

import os
from pathlib import Path

RW_SOCKET = "hvmon-sock"
RO_SOCKET = "hvmon-sock-ro"


def _is_root() -> bool:
    return os.geteuid() == 0


def default_run_dir() -> Path:
    """``/run/hvmon`` for root, ``$XDG_RUNTIME_DIR/hvmon`` otherwise.

    Without ``XDG_RUNTIME_DIR`` an unprivileged user falls back to
    ``~/.cache/hvmon/run`` (libvirt does the same with ``~/.cache``).
    """
    if _is_root():
        return Path("/run/hvmon")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "hvmon"
    return Path.home() / ".cache" / "hvmon" / "run"


def default_state_dir() -> Path:
    """``/var/lib/hvmon`` for root, ``$XDG_DATA_HOME/hvmon`` (``~/.local/share``) otherwise."""
    if _is_root():
        return Path("/var/lib/hvmon")
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "hvmon"


def socket_path(run_dir: Path, readonly: bool) -> Path:
    """The read-write (``hvmon-sock``) or read-only (``hvmon-sock-ro``) socket in ``run_dir``."""
    return run_dir / (RO_SOCKET if readonly else RW_SOCKET)
