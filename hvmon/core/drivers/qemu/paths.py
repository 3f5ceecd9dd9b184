"""Where the QEMU driver keeps its files, from the connection URI.

``qemu:///embed?root=DIR`` (libvirt's embedded driver) keeps everything under
``DIR``; ``qemu:///system`` uses the system directories and ``qemu:///session``
the user's XDG directories. The layout under each root is the same::

    etc/qemu/NAME.xml            persistent definitions
    etc/qemu/autostart/NAME      autostart markers
    run/qemu/NAME.status.json    running domains (pid, monitor, live XML)
    run/qemu/NAME.monitor        QMP sockets
    log/qemu/NAME.log            QEMU's own output
    cache/qemu/capabilities/     probed binaries
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from hvmon.core.errors import NoConnect
from hvmon.core.uri import ConnectURI

#: UNIX socket paths are limited to 107 bytes on Linux
_SUN_PATH_MAX = 107


@dataclass(frozen=True)
class QemuPaths:
    """The driver's directories; :meth:`create` makes them (0700 for run/)."""

    config: Path
    autostart: Path
    run: Path
    log: Path
    cache: Path

    @classmethod
    def under(cls, root: Path, *, system: bool = False) -> QemuPaths:
        if system:
            return cls(Path("/etc/hvmon/qemu"), Path("/etc/hvmon/qemu/autostart"),
                       Path("/run/hvmon/qemu"), Path("/var/log/hvmon/qemu"),
                       Path("/var/cache/hvmon/qemu"))
        return cls(root / "etc/qemu", root / "etc/qemu/autostart", root / "run/qemu",
                   root / "log/qemu", root / "cache/qemu")

    def create(self) -> None:
        for path in (self.config, self.autostart, self.log, self.cache):
            path.mkdir(parents=True, exist_ok=True)
        self.run.mkdir(parents=True, exist_ok=True, mode=0o700)

    def definition(self, name: str) -> Path:
        return self.config / f"{name}.xml"

    def autostart_marker(self, name: str) -> Path:
        return self.autostart / name

    def status(self, name: str) -> Path:
        return self.run / f"{name}.status.json"

    def monitor(self, name: str) -> Path:
        path = self.run / f"{name}.monitor"
        if len(os.fsencode(path)) > _SUN_PATH_MAX:  # a long root: fall back to a short name
            digest = hashlib.sha256(name.encode()).hexdigest()[:16]
            path = self.run / f"{digest}.monitor"
        return path

    def logfile(self, name: str) -> Path:
        return self.log / f"{name}.log"

    def lock(self) -> int:
        """Take the root's driver lock (one driver per root, as libvirt's embed); the fd.

        NoConnect names the process holding it. The lock lasts until the fd closes.
        """
        path = self.run / "driver.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise NoConnect(f"the QEMU driver files under {self.run.parent.parent} are in use "
                            f"by another hvmon process (pid {holder}); connect through its "
                            "daemon instead") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd


def paths_for(uri: ConnectURI) -> QemuPaths:
    """The directories ``uri`` names; NoConnect for a path the driver does not serve."""
    if uri.path == "/embed":
        root = uri.query.get("root", "")
        if not root or not os.path.isabs(root):
            raise NoConnect(f"URI '{uri.raw}': qemu:///embed needs an absolute root= directory")
        return QemuPaths.under(Path(root))
    if uri.path == "/system":
        return QemuPaths.under(Path("/"), system=True)
    if uri.path == "/session":
        home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share")
        return QemuPaths.under(home / "hvmon")
    raise NoConnect(f"URI '{uri.raw}': the qemu driver serves /system, /session and "
                    "/embed?root=DIR")
