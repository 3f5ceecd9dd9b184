"""``fs`` (a block device with a filesystem) and ``netfs`` (NFS) pools.

Both mount their source on the target directory at start and unmount it at
stop; their volumes are files, handled as a ``dir`` pool's.
"""

from __future__ import annotations

import os

from hvmon.core.drivers.qemu.storage.backends.base import need_source_host
from hvmon.core.drivers.qemu.storage.backends.dirpool import DirBackend
from hvmon.core.errors import InvalidXML
from hvmon.core.xml.pool import Pool as PoolXML


def mounted(target: str, mounts: str = "/proc/mounts") -> bool:
    """Whether ``target`` is a mount point according to ``mounts``."""
    try:
        with open(mounts) as stream:
            lines = stream.read().splitlines()
    except OSError:
        return False
    wanted = os.path.normpath(target)
    for line in lines:
        fields = line.split()
        if len(fields) > 1 and fields[1].replace("\\040", " ") == wanted:
            return True
    return False


class FsBackend(DirBackend):
    kind = "fs"

    def check(self, pool: PoolXML) -> None:
        super().check(pool)
        if not pool.source_device:
            raise InvalidXML("missing source device")

    def fs_type(self, pool: PoolXML) -> str:
        fmt = pool.source_format or "auto"
        return fmt

    def source(self, pool: PoolXML) -> str:
        return pool.source_device or ""

    def build(self, pool: PoolXML) -> None:
        super().build(pool)
        fmt = self.fs_type(pool)
        if self.kind == "fs" and fmt != "auto":
            self.tools.runner.run(["mkfs", "-t", fmt, self.source(pool)], timeout=600)

    def start(self, pool: PoolXML) -> None:
        target = self.target(pool)
        if mounted(target):
            return
        super().start(pool)
        argv = ["mount"]
        if self.fs_type(pool) != "auto":
            argv += ["-t", self.fs_type(pool)]
        self.tools.runner.run([*argv, self.source(pool), target])

    def stop(self, pool: PoolXML) -> None:
        if mounted(self.target(pool)):
            self.tools.runner.run(["umount", self.target(pool)])


class NetfsBackend(FsBackend):
    kind = "netfs"

    def check(self, pool: PoolXML) -> None:
        DirBackend.check(self, pool)
        need_source_host(pool)
        if not pool.source_dir:
            raise InvalidXML("missing storage pool source path")

    def fs_type(self, pool: PoolXML) -> str:
        fmt = pool.source_format or "auto"
        return "nfs" if fmt == "auto" else fmt

    def source(self, pool: PoolXML) -> str:
        host, _ = need_source_host(pool)
        return f"{host}:{pool.source_dir}"
