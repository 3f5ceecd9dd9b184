"""``iscsi`` pools through the kernel initiator (``iscsiadm``): LUNs become block devices.

Start: ``sendtargets`` discovery on the portal, then a node login (through an
``iface`` carrying the pool's initiator IQN when the XML names one; CHAP
settings go into the node record, which is how ``iscsiadm`` takes them).
Volumes are the ``/dev/disk/by-path/ip-<host>:<port>-iscsi-<iqn>-lun-<n>``
links udev makes. Stop logs out.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re

from hvmon.core.drivers.qemu.storage.backends.base import Backend, Usage, chap, need_source_host
from hvmon.core.drivers.qemu.storage.backends.iscsidirect import portal_of
from hvmon.core.drivers.qemu.storage.model import Vol
from hvmon.core.errors import InvalidXML
from hvmon.core.types import VolumeType
from hvmon.core.xml.pool import Pool as PoolXML

BY_PATH = "/dev/disk/by-path"
_LUN = re.compile(r"-lun-(\d+)$")


def block_size(path: str) -> int:
    """The size of a block device (or file) in bytes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def iface_name(initiator: str) -> str:
    return "hvmon-iface-" + hashlib.sha256(initiator.encode()).hexdigest()[:8]


class IscsiBackend(Backend):
    kind = "iscsi"

    def check(self, pool: PoolXML) -> None:
        need_source_host(pool)
        if not pool.source_iqn:
            raise InvalidXML("missing storage pool source device path")

    def _node(self, pool: PoolXML) -> list[str]:
        return ["iscsiadm", "--mode", "node", "--targetname", pool.source_iqn,
                "--portal", portal_of(pool)]

    def start(self, pool: PoolXML) -> None:
        run = self.tools.runner.run
        portal = portal_of(pool)
        iface: list[str] = []
        if pool.initiator_iqn:
            name = iface_name(pool.initiator_iqn)
            if run(["iscsiadm", "--mode", "iface", "--interface", name], check=False).returncode:
                run(["iscsiadm", "--mode", "iface", "--interface", name, "--op", "new"])
            run(["iscsiadm", "--mode", "iface", "--interface", name, "--op", "update",
                 "--name", "iface.initiatorname", "--value", pool.initiator_iqn])
            iface = ["--interface", name]
        run(["iscsiadm", "--mode", "discovery", "--type", "sendtargets", "--portal", portal,
             *iface, "--op", "nonpersistent"])
        creds = chap(pool, self.tools.secrets)
        if creds is not None:
            for key, value in (("node.session.auth.authmethod", "CHAP"),
                               ("node.session.auth.username", creds[0]),
                               ("node.session.auth.password", creds[1].decode())):
                run([*self._node(pool), "--op", "update", "--name", key, "--value", value])
        run([*self._node(pool), *iface, "--login"])

    def stop(self, pool: PoolXML) -> None:
        self.tools.runner.run([*self._node(pool), "--logout"], check=False)

    def refresh(self, pool: PoolXML) -> tuple[list[Vol], Usage]:
        base = pool.target_path or BY_PATH
        prefix = f"ip-{portal_of(pool)}-iscsi-{pool.source_iqn}-lun-"
        vols = []
        for path in sorted(glob.glob(os.path.join(glob.escape(base), glob.escape(prefix)) + "*")):
            match = _LUN.search(path)
            if match is None:
                continue
            size = block_size(path)
            vols.append(Vol(f"unit:0:0:{match.group(1)}", path, path, VolumeType.BLOCK,
                            size, size))
        total = sum(v.capacity for v in vols)
        return vols, Usage(total, total, 0)
