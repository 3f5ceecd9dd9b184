"""Storage pool backends by pool type."""

from __future__ import annotations

from hvmon.core.drivers.qemu.storage.backends.base import Backend, Tools
from hvmon.core.drivers.qemu.storage.backends.dirpool import DirBackend
from hvmon.core.drivers.qemu.storage.backends.fs import FsBackend, NetfsBackend
from hvmon.core.drivers.qemu.storage.backends.iscsi import IscsiBackend
from hvmon.core.drivers.qemu.storage.backends.iscsidirect import IscsiDirectBackend
from hvmon.core.drivers.qemu.storage.backends.logical import LogicalBackend
from hvmon.core.errors import Unsupported

BACKENDS: dict[str, type[Backend]] = {
    b.kind: b for b in (DirBackend, FsBackend, NetfsBackend, IscsiBackend, IscsiDirectBackend,
                        LogicalBackend)
}


def backend_for(kind: str | None, tools: Tools) -> Backend:
    """The backend of a pool type; Unsupported names the ones served."""
    cls = BACKENDS.get(kind or "")
    if cls is None:
        raise Unsupported(f"storage pool type '{kind}' is not supported by the qemu driver "
                          f"({', '.join(sorted(BACKENDS))})")
    return cls(tools)
