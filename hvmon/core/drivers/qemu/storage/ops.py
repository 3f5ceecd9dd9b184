"""The storage half of the Driver interface for :class:`QemuDriver` (pools and volumes)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator

from hvmon.core.drivers.base import Listing, PoolRef, Progress, VolumeRef
from hvmon.core.drivers.identity import find_named
from hvmon.core.drivers.qemu.paths import QemuPaths
from hvmon.core.drivers.qemu.secrets import SecretStore
from hvmon.core.drivers.qemu.storage.discovery import find_sources
from hvmon.core.drivers.qemu.storage.diskhook import DiskHook
from hvmon.core.drivers.qemu.storage.model import PoolObj, Vol
from hvmon.core.drivers.qemu.storage.pools import PoolTable
from hvmon.core.errors import InvalidArgument, NoSuchPool, NoSuchVolume, OperationInvalid
from hvmon.core.types import PoolInfo, PoolState, VolumeInfo

#: chunk size of volume downloads
STREAM_CHUNK = 256 * 1024


def _ref(obj: PoolObj, vol: Vol) -> VolumeRef:
    return VolumeRef(obj.name, vol.name, vol.key, vol.path)


def _listing(obj: PoolObj) -> Listing:
    return Listing(PoolRef(obj.uuid, obj.name), obj.active, obj.persistent, obj.autostart)


class StorageMixin:
    """Pools and volumes of :class:`QemuDriver`; ``storage_open`` runs once at open."""

    paths: QemuPaths
    secret_store: SecretStore
    _pool_table: PoolTable | None = None

    @property
    def pool_table(self) -> PoolTable:
        if self._pool_table is None:
            self._pool_table = PoolTable(self.paths, self.secret_store)
        return self._pool_table

    def storage_hook(self) -> DiskHook:
        """Load pools (re-activate active ones, start autostart ones); the start hook.

        The driver registers it with ``self.lifecycle.hooks.append(self.storage_hook())``.
        """
        self.pool_table.load()
        return DiskHook(self.paths, self.pool_table, self.secret_store)

    # --- pools ----------------------------------------------------------------------
    def list_pools(self) -> list[Listing]:
        table = self.pool_table
        with table.lock:
            return [_listing(p) for p in table.pools.values()]

    def lookup_pool(self, by: str, value: str) -> PoolRef:
        table = self.pool_table
        with table.lock:
            obj = find_named(table.pools.values(), by, value)
            if obj is not None:
                return PoolRef(obj.uuid, obj.name)
        raise NoSuchPool(f"storage pool not found: no pool with matching {by} '{value}'")

    def pool_flags(self, uuid: str) -> Listing:
        table = self.pool_table
        with table.lock:
            return _listing(table.get(uuid))

    def define_pool(self, xml: str) -> PoolRef:
        table = self.pool_table
        with table.lock:
            obj = table.define(xml)
            return PoolRef(obj.uuid, obj.name)

    def create_pool(self, xml: str) -> PoolRef:
        table = self.pool_table
        with table.lock:
            obj = table.create(xml)
            return PoolRef(obj.uuid, obj.name)

    def pool_action(self, uuid: str, action: str) -> None:
        table = self.pool_table
        with table.lock:
            table.action(table.get(uuid), action)

    def pool_info(self, uuid: str) -> PoolInfo:
        table = self.pool_table
        with table.lock:
            obj = table.get(uuid)
            if not obj.active:
                return PoolInfo(PoolState.INACTIVE, 0, 0, 0)
            return PoolInfo(PoolState.RUNNING, obj.capacity, obj.allocation, obj.available)

    def pool_xml(self, uuid: str, inactive: bool = False) -> str:
        table = self.pool_table
        with table.lock:
            obj = table.get(uuid)
            source = obj.config if inactive and obj.config is not None else obj.live
            out = source.copy()
            out.capacity, out.allocation, out.available = (
                (obj.capacity, obj.allocation, obj.available) if obj.active else (0, 0, 0))
            return out.to_xml()

    def pool_set_autostart(self, uuid: str, autostart: bool) -> None:
        table = self.pool_table
        with table.lock:
            table.set_autostart(table.get(uuid), autostart)

    def find_pool_sources(self, kind: str, spec: str | None = None) -> str:
        """``<sources>`` XML of the pools of type ``kind`` a host offers (iscsi, netfs)."""
        return find_sources(kind, spec, self.pool_table.tools)

    # --- volumes --------------------------------------------------------------------
    def pool_list_volumes(self, uuid: str) -> list[VolumeRef]:
        table = self.pool_table
        with table.lock:
            obj = table.active(table.get(uuid))
            return [_ref(obj, v) for v in obj.volumes.values()]

    def lookup_volume(self, by: str, value: str, pool_uuid: str | None = None) -> VolumeRef:
        table = self.pool_table
        with table.lock:
            if by == "name":
                obj = table.active(table.get(pool_uuid or ""))
                vol = obj.volumes.get(value)
                if vol is not None:
                    return _ref(obj, vol)
            elif by in ("key", "path"):
                for obj in table.pools.values():
                    for vol in obj.volumes.values() if obj.active else ():
                        if getattr(vol, by) == value:
                            return _ref(obj, vol)
            else:
                raise InvalidArgument(f"cannot look up a volume by {by}")
        raise NoSuchVolume(f"storage volume not found: no volume with matching {by} '{value}'")

    def pool_create_volume(self, uuid: str, xml: str) -> VolumeRef:
        table = self.pool_table
        with table.lock:
            obj = table.active(table.get(uuid))
            vol, explicit, secret = table.parse_volume(obj, xml)
            table.backend(obj.live).create_volume(obj.live, vol, secret, explicit)
            return _ref(obj, table.add_volume(obj, vol.name or "", secret))

    def pool_clone_volume(self, uuid: str, xml: str, source: VolumeRef,
                          progress: Progress | None = None) -> VolumeRef:
        table = self.pool_table
        with table.lock:
            obj = table.active(table.get(uuid))
            _, src = table.volume(source)
            vol, _, secret = table.parse_volume(obj, xml)
            if secret:
                raise InvalidArgument("a clone cannot be encrypted here")
            if vol.capacity is not None and vol.capacity < src.capacity:
                raise InvalidArgument(f"capacity of '{vol.name}' is smaller than its source "
                                      f"'{src.name}'")
            backend = table.backend(obj.live)
            if vol.backing_path:  # a qcow2 overlay on the named backing store: no copy
                backend.create_volume(obj.live, vol, None, False)
            else:
                try:
                    backend.clone_volume(obj.live, vol, src, progress)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(backend.volume_path_for(obj.live, vol.name or ""))
                    raise
            return _ref(obj, table.add_volume(obj, vol.name or "", None))

    def volume_info(self, ref: VolumeRef) -> VolumeInfo:
        table = self.pool_table
        with table.lock:
            _, vol = table.volume(ref)
            return VolumeInfo(vol.type, vol.capacity, vol.allocation)

    def volume_xml(self, ref: VolumeRef) -> str:
        table = self.pool_table
        with table.lock:
            return table.volume(ref)[1].to_xml()

    def volume_delete(self, ref: VolumeRef) -> None:
        table = self.pool_table
        with table.lock:
            obj, vol = table.volume(ref)
            backend = table.backend(obj.live)
            if not backend.volume_ops:
                raise OperationInvalid(f"storage pool '{obj.name}' does not support volume "
                                       "deletion")
            backend.delete_volume(obj.live, vol)
            obj.volumes.pop(vol.name, None)
            if vol.path in table.vol_secrets:
                table.note_secret(vol.path, None)

    def volume_wipe(self, ref: VolumeRef) -> None:
        table = self.pool_table
        with table.lock:
            obj, vol = table.volume(ref)
            table.backend(obj.live).wipe_volume(obj.live, vol)
            table.update_volume(obj, vol.name)

    def volume_resize(self, ref: VolumeRef, capacity: int) -> None:
        table = self.pool_table
        with table.lock:
            obj, vol = table.volume(ref)
            if capacity <= 0:
                raise InvalidArgument("the new capacity must be positive")
            table.backend(obj.live).resize_volume(obj.live, vol, capacity)
            table.update_volume(obj, vol.name)

    def _span(self, ref: VolumeRef, offset: int, length: int) -> tuple[str, int]:
        table = self.pool_table
        with table.lock:
            obj, vol = table.volume(ref)
            path = table.backend(obj.live).local_path(vol)
            size = vol.capacity if vol.format == "raw" and vol.secret is None else \
                os.stat(path).st_size
        if offset < 0 or length < 0:
            raise InvalidArgument("offset and length must not be negative")
        end = size if length == 0 else offset + length
        if offset > size or end > size:
            raise InvalidArgument(f"range {offset}..{end} is past the end of volume "
                                  f"'{ref.name}' ({size} bytes)")
        return path, end

    def volume_download(self, ref: VolumeRef, offset: int, length: int) -> Iterator[bytes]:
        path, end = self._span(ref, offset, length)
        return _read_chunks(path, offset, end)

    def volume_upload(self, ref: VolumeRef, offset: int, length: int,
                      chunks: Iterable[bytes]) -> int:
        path, limit = self._span(ref, offset, length)
        position = offset
        with open(path, "r+b") as out:
            out.seek(offset)
            for chunk in chunks:
                if position + len(chunk) > limit:
                    raise InvalidArgument(f"upload to volume '{ref.name}' is longer than "
                                          f"{limit - offset} bytes")
                out.write(chunk)
                position += len(chunk)
        table = self.pool_table
        with table.lock:
            obj, vol = table.volume(ref)
            table.update_volume(obj, vol.name)
        return position - offset


def _read_chunks(path: str, offset: int, end: int) -> Iterator[bytes]:
    with open(path, "rb") as stream:
        stream.seek(offset)
        while offset < end:
            chunk = stream.read(min(STREAM_CHUNK, end - offset))
            if not chunk:
                chunk = bytes(min(STREAM_CHUNK, end - offset))
            yield chunk
            offset += len(chunk)
