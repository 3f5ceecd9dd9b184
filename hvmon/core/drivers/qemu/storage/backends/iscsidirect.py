"""``iscsi-direct`` pools: LUNs found in user space with libiscsi's tools (no kernel initiator).

Start and refresh run ``iscsi-ls -s`` (login, REPORT LUNS, INQUIRY) and
``iscsi-readcapacity16 -s`` per disk LUN. CHAP credentials travel in
libiscsi's ``LIBISCSI_CHAP_USERNAME``/``LIBISCSI_CHAP_PASSWORD`` environment
variables, never in an argv. Volumes are named and keyed as libvirt names
them (``unit:0:0:<lun>``, ``ip-<host>:<port>-iscsi-<iqn>-lun-<n>``) and are
network volumes QEMU opens itself (``iscsi://host:port/iqn/lun``).
"""

from __future__ import annotations

import re

from hvmon.core.drivers.qemu.storage.backends.base import Backend, Usage, chap, need_source_host
from hvmon.core.drivers.qemu.storage.model import Vol
from hvmon.core.errors import InvalidXML, OperationFailed
from hvmon.core.types import VolumeType
from hvmon.core.xml.pool import Pool as PoolXML

DEFAULT_PORT = 3260
_TARGET = re.compile(r"^Target:(\S+)\s+Portal:(\S+)")
_LUN = re.compile(r"^Lun:(\d+)\s+Type:(\S+)")


def portal_of(pool: PoolXML) -> str:
    host, port = need_source_host(pool)
    return f"{host}:{port or DEFAULT_PORT}"


def parse_targets(text: str) -> dict[str, list[tuple[int, str]]]:
    """``iscsi-ls -s`` output: target IQN -> [(lun, device type), ...]."""
    out: dict[str, list[tuple[int, str]]] = {}
    current: list[tuple[int, str]] | None = None
    for line in text.splitlines():
        line = line.strip()
        if match := _TARGET.match(line):
            current = out.setdefault(match.group(1), [])
        elif (match := _LUN.match(line)) and current is not None:
            current.append((int(match.group(1)), match.group(2)))
    return out


class IscsiDirectBackend(Backend):
    kind = "iscsi-direct"

    def check(self, pool: PoolXML) -> None:
        need_source_host(pool)
        if not pool.source_iqn:
            raise InvalidXML("missing storage pool source device path")
        if not pool.initiator_iqn:
            raise InvalidXML("missing storage pool initiator iqn")

    def _env(self, pool: PoolXML) -> dict[str, str] | None:
        creds = chap(pool, self.tools.secrets)
        if creds is None:
            return None
        return {"LIBISCSI_CHAP_USERNAME": creds[0],
                "LIBISCSI_CHAP_PASSWORD": creds[1].decode(errors="replace")}

    def luns(self, pool: PoolXML) -> list[tuple[int, int]]:
        """(lun, capacity in bytes) of the target's disk LUNs."""
        portal, iqn, initiator = portal_of(pool), pool.source_iqn, pool.initiator_iqn or ""
        env = self._env(pool)
        listing = self.tools.runner.run(["iscsi-ls", "-i", initiator, "-s",
                                         f"iscsi://{portal}"], env=env, timeout=30)
        targets = parse_targets(listing.stdout)
        if iqn not in targets:
            raise OperationFailed(f"iSCSI target '{iqn}' is not offered by portal {portal} "
                                  f"(found: {', '.join(sorted(targets)) or 'none'})")
        out = []
        for lun, kind in targets[iqn]:
            if kind != "DIRECT_ACCESS":
                continue
            size = self.tools.runner.run(
                ["iscsi-readcapacity16", "-i", initiator, "-s",
                 f"iscsi://{portal}/{iqn}/{lun}"], env=env, timeout=30)
            try:
                out.append((lun, int(size.stdout.split()[0])))
            except (ValueError, IndexError):
                raise OperationFailed(f"iscsi-readcapacity16 gave no size for LUN {lun} of "
                                      f"'{iqn}'") from None
        return out

    def start(self, pool: PoolXML) -> None:
        self.luns(pool)  # logs in once: a wrong portal, IQN or CHAP fails the start

    def refresh(self, pool: PoolXML) -> tuple[list[Vol], Usage]:
        portal, iqn = portal_of(pool), pool.source_iqn
        vols = [Vol(f"unit:0:0:{lun}", f"ip-{portal}-iscsi-{iqn}-lun-{lun}",
                    f"iscsi://{portal}/{iqn}/{lun}", VolumeType.NETWORK, size, size)
                for lun, size in self.luns(pool)]
        total = sum(v.capacity for v in vols)
        return vols, Usage(total, total, 0)
