"""``logical`` pools: an LVM volume group; volumes are logical volumes."""

from __future__ import annotations

import os

from hvmon.core.drivers.qemu.storage.backends.base import Backend, Usage
from hvmon.core.drivers.qemu.storage.model import Vol
from hvmon.core.errors import InvalidArgument, OperationFailed
from hvmon.core.types import VolumeType
from hvmon.core.xml.pool import Pool as PoolXML
from hvmon.core.xml.volume import Volume as VolumeXML

ZERO_CHUNK = 1024 * 1024


def zero_fill(path: str, length: int) -> None:
    """Write ``length`` zero bytes from the start of ``path`` (a block device)."""
    block = bytes(ZERO_CHUNK)
    with open(path, "r+b", buffering=0) as dev:
        done = 0
        while done < length:
            done += dev.write(block[:min(ZERO_CHUNK, length - done)])
        os.fsync(dev.fileno())


class LogicalBackend(Backend):
    kind = "logical"
    volume_ops = True

    def vg(self, pool: PoolXML) -> str:
        return pool.source_name or pool.name or ""

    def devices(self, pool: PoolXML) -> list[str]:
        return [d.get("path") for d in pool.element.iterfind("source/device") if d.get("path")]

    def build(self, pool: PoolXML) -> None:
        devices = self.devices(pool)
        if not devices:
            raise InvalidArgument(f"pool '{pool.name}': building a logical pool needs "
                                  "<source><device path=.../>")
        for dev in devices:
            self.tools.runner.run(["pvcreate", dev])
        self.tools.runner.run(["vgcreate", self.vg(pool), *devices])

    def start(self, pool: PoolXML) -> None:
        self.tools.runner.run(["vgchange", "-aay", self.vg(pool)])

    def stop(self, pool: PoolXML) -> None:
        self.tools.runner.run(["vgchange", "-aan", self.vg(pool)])

    def delete(self, pool: PoolXML) -> None:
        self.tools.runner.run(["vgremove", "-f", self.vg(pool)])
        for dev in self.devices(pool):
            self.tools.runner.run(["pvremove", dev])

    def refresh(self, pool: PoolXML) -> tuple[list[Vol], Usage]:
        vg = self.vg(pool)
        run = self.tools.runner.run
        sizes = run(["vgs", "--noheadings", "--units", "b", "--nosuffix", "--separator", ":",
                     "-o", "vg_size,vg_free", vg]).stdout.strip()
        try:
            size, free = (int(x) for x in sizes.split(":"))
        except ValueError:
            raise OperationFailed(f"vgs gave no sizes for volume group '{vg}'") from None
        listing = run(["lvs", "--noheadings", "--units", "b", "--nosuffix", "--separator", ":",
                       "-o", "lv_name,lv_path,lv_size,lv_uuid", vg]).stdout
        vols = []
        for line in listing.splitlines():
            parts = line.strip().split(":")
            if len(parts) != 4:
                continue
            name, path, lv_size, uuid = parts
            path = path or f"/dev/{vg}/{name}"
            vols.append(Vol(name, uuid, path, VolumeType.BLOCK, int(lv_size), int(lv_size)))
        return vols, Usage(size, size - free, free)

    def volume_path_for(self, pool: PoolXML, name: str) -> str:
        if not name or "/" in name:
            raise InvalidArgument(f"invalid logical volume name '{name}'")
        return f"/dev/{self.vg(pool)}/{name}"

    def create_volume(self, pool: PoolXML, vol: VolumeXML, secret: str | None,
                      explicit_allocation: bool) -> None:
        if (vol.target_format or "raw") != "raw" or secret:
            raise InvalidArgument("logical volumes are raw and unencrypted here")
        self.volume_path_for(pool, vol.name or "")
        capacity = vol.capacity or 0
        self.tools.runner.run(["lvcreate", "--yes", "--name", vol.name or "", "-L",
                               f"{capacity}b", self.vg(pool)])

    def delete_volume(self, pool: PoolXML, vol: Vol) -> None:
        self.tools.runner.run(["lvremove", "-f", f"{self.vg(pool)}/{vol.name}"])

    def resize_volume(self, pool: PoolXML, vol: Vol, capacity: int) -> None:
        argv = ["lvresize", "-L", f"{capacity}b", f"{self.vg(pool)}/{vol.name}"]
        if capacity < vol.capacity:
            argv.insert(1, "-f")
        self.tools.runner.run(argv)

    def wipe_volume(self, pool: PoolXML, vol: Vol) -> None:
        zero_fill(vol.path, vol.capacity)

    def local_path(self, vol: Vol) -> str:
        return vol.path
