"""``dir`` pools: volumes are image files in the target directory."""

from __future__ import annotations

import os
import stat

from hvmon.core.drivers.base import Progress
from hvmon.core.drivers.qemu.storage.backends.base import Backend, Usage
from hvmon.core.drivers.qemu.storage.model import Vol
from hvmon.core.drivers.qemu.storage.qemuimg import FORMATS
from hvmon.core.errors import InvalidArgument, InvalidXML, OperationFailed, OperationInvalid
from hvmon.core.types import VolumeType
from hvmon.core.xml.pool import Pool as PoolXML
from hvmon.core.xml.volume import Volume as VolumeXML

_QCOW2_MAGIC = b"QFI\xfb"
_LUKS_MAGIC = b"LUKS\xba\xbe"


def _magic(path: str) -> bytes:
    try:
        with open(path, "rb") as stream:
            return stream.read(6)
    except OSError:
        return b""


def _check_name(name: str | None) -> str:
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise InvalidArgument(f"invalid volume name '{name}': a volume of a directory pool is "
                              "a file name without '/'")
    return name


class DirBackend(Backend):
    """A directory of image files made and read with ``qemu-img``."""

    kind = "dir"
    volume_ops = True

    def check(self, pool: PoolXML) -> None:
        if not pool.target_path:
            raise InvalidXML("missing storage pool target path")

    def target(self, pool: PoolXML) -> str:
        return os.path.normpath(pool.target_path or "")

    def build(self, pool: PoolXML) -> None:
        try:
            os.makedirs(self.target(pool), mode=0o755, exist_ok=True)
        except OSError as exc:
            raise OperationFailed(f"cannot create directory '{self.target(pool)}': "
                                  f"{exc.strerror}") from None

    def start(self, pool: PoolXML) -> None:
        if not os.path.isdir(self.target(pool)):
            raise OperationFailed(f"cannot open directory '{self.target(pool)}': No such file "
                                  "or directory (build the pool first)")

    def delete(self, pool: PoolXML) -> None:
        try:
            os.rmdir(self.target(pool))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OperationFailed(f"cannot remove directory '{self.target(pool)}': "
                                  f"{exc.strerror}") from None

    # --- reading ----------------------------------------------------------------------
    def describe(self, path: str, name: str) -> Vol | None:
        """The volume a file is (None for what is not a regular file)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        magic = _magic(path)
        vol = Vol(name, path, path, VolumeType.FILE, st.st_size, st.st_blocks * 512)
        if magic.startswith(_QCOW2_MAGIC) or magic == _LUKS_MAGIC:
            try:
                info = self.tools.qemu_img.info(path)
            except OperationFailed:
                return vol  # a half-written image: shown as raw bytes
            vol.format, vol.capacity, vol.backing = info.format, info.capacity, info.backing
            if info.backing:
                vol.backing_format = "qcow2" if _magic(info.backing).startswith(
                    _QCOW2_MAGIC) else "raw"
            if info.encrypted:
                vol.secret = ""  # encrypted; the pool table fills the secret's UUID
        return vol

    def refresh(self, pool: PoolXML) -> tuple[list[Vol], Usage]:
        target = self.target(pool)
        try:
            names = sorted(os.listdir(target))
        except OSError as exc:
            raise OperationFailed(f"cannot read directory '{target}': {exc.strerror}") from None
        vols = [v for n in names if not n.startswith(".")
                and (v := self.describe(os.path.join(target, n), n)) is not None]
        return vols, self.usage(pool)

    def usage(self, pool: PoolXML) -> Usage:
        """The filesystem's sizes (statvfs), as libvirt reports a directory pool's."""
        fs = os.statvfs(self.target(pool))
        capacity = fs.f_blocks * fs.f_frsize
        return Usage(capacity, capacity - fs.f_bfree * fs.f_frsize, fs.f_bavail * fs.f_frsize)

    # --- volumes ----------------------------------------------------------------------
    def volume_path_for(self, pool: PoolXML, name: str) -> str:
        return os.path.join(self.target(pool), _check_name(name))

    def create_volume(self, pool: PoolXML, vol: VolumeXML, secret: str | None,
                      explicit_allocation: bool) -> None:
        path = self.volume_path_for(pool, vol.name or "")
        fmt = vol.target_format or "raw"
        if fmt not in FORMATS:
            raise InvalidArgument(f"volume format '{fmt}' is not supported in a {self.kind} "
                                  f"pool ({', '.join(FORMATS)})")
        capacity = vol.capacity or 0
        allocation = vol.allocation if vol.allocation is not None else capacity
        # raw files are allocated as libvirt does (allocation = capacity unless said);
        # qcow2 only when the XML asks for all of it
        preallocate = allocation >= capacity > 0 and (fmt == "raw" or explicit_allocation)
        passphrase = self.tools.secrets.value(secret) if secret else None
        backing = vol.backing_path
        backing_format = vol.find("backingStore/format")
        if backing and not os.path.exists(backing):
            raise InvalidArgument(f"backing store '{backing}' does not exist")
        self.tools.qemu_img.create(
            path, fmt, capacity, preallocate=preallocate and not backing, backing=backing,
            backing_format=backing_format.get("type") if backing_format is not None else
            ("qcow2" if _magic(backing or "").startswith(_QCOW2_MAGIC) else "raw"),
            luks_passphrase=passphrase)

    def clone_volume(self, pool: PoolXML, vol: VolumeXML, source: Vol,
                     progress: Progress | None) -> None:
        path = self.volume_path_for(pool, vol.name or "")
        if source.secret is not None:
            raise OperationInvalid(f"cloning encrypted volume '{source.name}' is not supported")
        if source.type != VolumeType.FILE:
            raise OperationInvalid(f"volume '{source.name}' is not a file: it cannot be "
                                   f"cloned into a {self.kind} pool")
        fmt = vol.target_format or source.format
        if fmt not in FORMATS:
            raise InvalidArgument(f"volume format '{fmt}' is not supported ({', '.join(FORMATS)})")
        self.tools.qemu_img.convert(source.path, source.format, path, fmt, progress,
                                    source.allocation or source.capacity)
        if vol.capacity and vol.capacity > source.capacity:
            self.tools.qemu_img.resize(path, fmt, vol.capacity)

    def delete_volume(self, pool: PoolXML, vol: Vol) -> None:
        try:
            os.unlink(vol.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OperationFailed(f"cannot remove '{vol.path}': {exc.strerror}") from None

    def resize_volume(self, pool: PoolXML, vol: Vol, capacity: int) -> None:
        passphrase = self.tools.secrets.value(vol.secret) if vol.secret else None
        self.tools.qemu_img.resize(vol.path, vol.format, capacity,
                                   shrink=capacity < vol.capacity, luks_passphrase=passphrase)

    def wipe_volume(self, pool: PoolXML, vol: Vol) -> None:
        """Zero the data: a raw file becomes all zeros (sparse); an image is made empty anew."""
        if vol.format == "raw" and vol.secret is None:
            with open(vol.path, "r+b") as stream:
                stream.truncate(0)
                stream.truncate(vol.capacity)
            return
        tmp = vol.path + ".wipe"
        passphrase = self.tools.secrets.value(vol.secret) if vol.secret else None
        self.tools.qemu_img.create(tmp, vol.format, vol.capacity, backing=vol.backing,
                                   backing_format=vol.backing_format,
                                   luks_passphrase=passphrase)
        os.replace(tmp, vol.path)

    def local_path(self, vol: Vol) -> str:
        return vol.path
