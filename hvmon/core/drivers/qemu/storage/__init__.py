"""Storage for the QEMU driver: pools (dir, fs, netfs, logical, iscsi, iscsi-direct),
volumes, source discovery, and the start hook resolving ``<disk type='volume'>``.
"""

from __future__ import annotations

from hvmon.core.drivers.qemu.storage.ops import StorageMixin

__all__ = ["StorageMixin"]
