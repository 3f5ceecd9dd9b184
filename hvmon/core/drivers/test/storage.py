"""Storage pools and volumes in the test driver (simulated: no files).

``dir``-like pools keep capacity and allocation accounting; ``iscsi`` and
``iscsi-direct`` pools list simulated LUNs named as libvirt names them, and
like libvirt refuse to create or delete volumes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from xml.sax.saxutils import escape

from hvmon.core.drivers.base import Listing, PoolRef, Progress, VolumeRef
from hvmon.core.drivers.identity import check_identity, find_named
from hvmon.core.drivers.test.base import TestPart
from hvmon.core.drivers.test.defaults import DEFAULT_POOL_CAPACITY
from hvmon.core.drivers.test.state import PoolObj, VolumeObj
from hvmon.core.errors import (
    AlreadyExists,
    InvalidArgument,
    InvalidXML,
    NoSuchPool,
    NoSuchVolume,
    OperationFailed,
    OperationInvalid,
    Unsupported,
)
from hvmon.core.types import PoolInfo, PoolState, VolumeInfo, VolumeType
from hvmon.core.xml import defaults, schema
from hvmon.core.xml.parser import parse_xml
from hvmon.core.xml.pool import Pool as PoolXML
from hvmon.core.xml.volume import Volume as VolumeXML

LUN_POOLS = ("iscsi", "iscsi-direct", "scsi", "mpath")
SIMULATED_LUNS = ((1, 10 * 1024**3), (2, 10 * 1024**3))
CLONE_STEPS = 16
#: chunk size of volume downloads
STREAM_CHUNK = 256 * 1024


def check_pool_source(pool: PoolXML) -> None:
    """The checks libvirt makes when it parses a pool, per pool type."""
    kind = pool.type
    if kind in ("iscsi", "iscsi-direct"):
        if not pool.source_hosts or not pool.source_hosts[0].name:
            raise InvalidXML("missing storage pool source host name")
        if not pool.source_iqn:
            raise InvalidXML("missing storage pool source device path")
    if kind == "iscsi-direct" and not pool.initiator_iqn:
        raise InvalidXML("missing storage pool initiator iqn")
    if kind in ("dir", "fs", "netfs") and not pool.target_path:
        raise InvalidXML("missing storage pool target path")


def lun_volumes(pool: PoolXML) -> list[VolumeObj]:
    """The simulated LUNs of an iSCSI-style pool, named and keyed as libvirt does."""
    host = pool.source_hosts[0]
    portal = f"{host.name}:{host.port or 3260}"
    iqn = pool.source_iqn
    out = []
    for lun, size in SIMULATED_LUNS:
        name = f"unit:0:0:{lun}"
        if pool.type == "iscsi-direct":
            key = f"ip-{portal}-iscsi-{iqn}-lun-{lun}"
            path = f"iscsi://{portal}/{iqn}/{lun}"
            kind = VolumeType.NETWORK
        else:
            base = pool.target_path or "/dev/disk/by-path"
            path = key = f"{base}/ip-{portal}-iscsi-{iqn}-lun-{lun}"
            kind = VolumeType.BLOCK
        xml = VolumeXML()
        xml.element.set("type", kind.label)
        xml.name, xml.key, xml.target_path = name, key, path
        xml.capacity, xml.allocation = size, size
        out.append(VolumeObj(xml, name, key, path, size, size, int(kind)))
    return out


class StorageOps(TestPart):
    """The storage half of the Driver interface."""

    # --- lookups --------------------------------------------------------------
    def _pool(self, uuid: str) -> PoolObj:
        obj = self.state.pools.get(uuid)
        if obj is None:
            raise NoSuchPool(f"storage pool not found: no pool with matching uuid '{uuid}'")
        return obj

    def _active_pool(self, uuid: str) -> PoolObj:
        obj = self._pool(uuid)
        if not obj.active:
            raise OperationInvalid(f"storage pool '{obj.name}' is not active")
        return obj

    def list_pools(self) -> list[Listing]:
        with self._locked() as st:
            return [Listing(PoolRef(p.uuid, p.name), p.active, p.persistent, p.autostart)
                    for p in st.pools.values()]

    def lookup_pool(self, by: str, value: str) -> PoolRef:
        with self._locked() as st:
            obj = find_named(st.pools.values(), by, value)
            if obj is not None:
                return PoolRef(obj.uuid, obj.name)
        raise NoSuchPool(f"storage pool not found: no pool with matching {by} '{value}'")

    def pool_flags(self, uuid: str) -> Listing:
        with self._locked():
            p = self._pool(uuid)
            return Listing(PoolRef(p.uuid, p.name), p.active, p.persistent, p.autostart)

    # --- definitions ----------------------------------------------------------
    def _parse_pool(self, xml: str) -> PoolXML:
        pool = PoolXML.from_xml(xml)
        schema.validate(pool.element, "pool")
        check_pool_source(pool)
        defaults.fill_pool(pool, rng=self.state.rng)
        return pool

    def _claim(self, pool: PoolXML) -> PoolObj | None:
        return check_identity(self.state.pools.values(), "pool", pool.name, pool.uuid)

    def add_pool(self, pool: PoolXML, persistent: bool) -> PoolObj:
        """Register a parsed pool (also used by the node-file loader)."""
        obj = PoolObj(pool.uuid, pool.name, pool if persistent else None, copy.copy(pool),
                      capacity=pool.capacity or DEFAULT_POOL_CAPACITY)
        self.state.pools[obj.uuid] = obj
        return obj

    def define_pool(self, xml: str) -> PoolRef:
        with self._locked():
            pool = self._parse_pool(xml)
            obj = self._claim(pool)
            if obj is None:
                obj = self.add_pool(pool, persistent=True)
            else:
                obj.config = pool
                if not obj.active:
                    obj.live = pool
            return PoolRef(obj.uuid, obj.name)

    def create_pool(self, xml: str) -> PoolRef:
        with self._locked():
            pool = self._parse_pool(xml)
            if self._claim(pool) is not None:
                raise AlreadyExists(f"pool '{pool.name}' already exists")
            obj = self.add_pool(pool, persistent=False)
            self.start_pool(obj)
            return PoolRef(obj.uuid, obj.name)

    def start_pool(self, obj: PoolObj) -> None:
        """Activate a pool; LUN pools list their simulated LUNs."""
        obj.active = True
        if obj.live.type in LUN_POOLS:
            self._set_volumes(obj, lun_volumes(obj.live))
            obj.capacity = sum(v.capacity for v in obj.volumes.values())

    def _set_volumes(self, obj: PoolObj, volumes: list[VolumeObj]) -> None:
        for vol in obj.volumes.values():
            self.state.volume_paths.pop(vol.path, None)
        obj.volumes = {v.name: v for v in volumes}
        for vol in volumes:
            self.state.volume_paths[vol.path] = vol

    def pool_action(self, uuid: str, action: str) -> None:
        with self._locked() as st:
            obj = self._pool(uuid)
            if action == "start":
                if obj.active:
                    raise OperationInvalid(f"storage pool '{obj.name}' is already active")
                self.start_pool(obj)
            elif action == "stop":
                self._active_pool(uuid)
                obj.active = False
                if obj.live.type in LUN_POOLS:
                    self._set_volumes(obj, [])
                if not obj.persistent:
                    st.pools.pop(obj.uuid)
            elif action in ("build", "delete", "undefine"):
                if obj.active:
                    raise OperationInvalid(f"storage pool '{obj.name}' is still active")
                if action == "build":
                    obj.built = True
                elif action == "delete":
                    obj.built = False
                    self._set_volumes(obj, [])
                else:
                    if not obj.persistent:
                        raise OperationInvalid(f"cannot undefine transient pool '{obj.name}'")
                    self._set_volumes(obj, [])
                    st.pools.pop(obj.uuid)
            elif action == "refresh":
                self._active_pool(uuid)
                if obj.live.type in LUN_POOLS:
                    self._set_volumes(obj, lun_volumes(obj.live))
            else:
                raise InvalidArgument(f"unknown pool action '{action}'")

    def pool_info(self, uuid: str) -> PoolInfo:
        with self._locked():
            obj = self._pool(uuid)
            state = PoolState.RUNNING if obj.active else PoolState.INACTIVE
            allocation = obj.allocation
            return PoolInfo(state, obj.capacity, allocation, max(0, obj.capacity - allocation))

    def pool_xml(self, uuid: str, inactive: bool = False) -> str:
        with self._locked():
            obj = self._pool(uuid)
            source = obj.config if inactive and obj.config is not None else obj.live
            out = source.copy()
            out.capacity = obj.capacity
            out.allocation = obj.allocation
            out.available = max(0, obj.capacity - obj.allocation)
            return out.to_xml()

    def pool_set_autostart(self, uuid: str, autostart: bool) -> None:
        with self._locked():
            obj = self._pool(uuid)
            if not obj.persistent:
                raise OperationInvalid(f"cannot set autostart for transient pool '{obj.name}'")
            obj.autostart = autostart

    # --- volumes --------------------------------------------------------------
    def _vol_ref(self, obj: PoolObj, vol: VolumeObj) -> VolumeRef:
        return VolumeRef(obj.name, vol.name, vol.key, vol.path)

    def _vol(self, ref: VolumeRef) -> tuple[PoolObj, VolumeObj]:
        for obj in self.state.pools.values():
            if obj.name == ref.pool:
                vol = obj.volumes.get(ref.name)
                if vol is not None:
                    return obj, vol
        raise NoSuchVolume(f"storage volume not found: no volume with matching name '{ref.name}'")

    def pool_list_volumes(self, uuid: str) -> list[VolumeRef]:
        with self._locked():
            obj = self._active_pool(uuid)
            return [self._vol_ref(obj, v) for v in obj.volumes.values()]

    def lookup_volume(self, by: str, value: str, pool_uuid: str | None = None) -> VolumeRef:
        with self._locked() as st:
            if by == "name":
                obj = self._active_pool(pool_uuid or "")
                vol = obj.volumes.get(value)
                if vol is not None:
                    return self._vol_ref(obj, vol)
            elif by in ("key", "path"):
                for obj in st.pools.values():
                    if not obj.active:
                        continue
                    for vol in obj.volumes.values():
                        if getattr(vol, by) == value:
                            return self._vol_ref(obj, vol)
            else:
                raise InvalidArgument(f"cannot look up a volume by {by}")
        raise NoSuchVolume(f"storage volume not found: no volume with matching {by} '{value}'")

    def _new_volume(self, obj: PoolObj, xml: str) -> VolumeObj:
        if obj.live.type in LUN_POOLS:
            raise Unsupported(f"storage pool '{obj.name}' does not support volume creation")
        vol = VolumeXML.from_xml(xml)
        schema.validate(vol.element, "volume")
        if vol.name in obj.volumes:
            raise AlreadyExists(f"storage volume '{vol.name}' exists already")
        if vol.capacity is None:
            raise InvalidXML("missing capacity element in volume XML")
        allocation = vol.allocation if vol.allocation is not None else vol.capacity
        if allocation > obj.capacity - obj.allocation:
            raise OperationFailed(
                f"not enough free space in pool '{obj.name}' for volume '{vol.name}'"
            )
        vol.key = vol.target_path = None  # the pool decides where its volumes live
        defaults.fill_volume(vol, obj.live.target_path or "/" + obj.name)
        path = vol.target_path
        vol.capacity, vol.allocation = vol.capacity, allocation
        if vol.element.get("type") is None:
            vol.element.set("type", "file")
        return VolumeObj(vol, vol.name, path, path, vol.capacity, allocation)

    def _store(self, obj: PoolObj, vol: VolumeObj) -> VolumeRef:
        obj.volumes[vol.name] = vol
        self.state.volume_paths[vol.path] = vol
        return self._vol_ref(obj, vol)

    def pool_create_volume(self, uuid: str, xml: str) -> VolumeRef:
        with self._locked():
            obj = self._active_pool(uuid)
            return self._store(obj, self._new_volume(obj, xml))

    def pool_clone_volume(
        self, uuid: str, xml: str, source: VolumeRef, progress: Progress | None = None
    ) -> VolumeRef:
        with self._locked():
            obj = self._active_pool(uuid)
            _, src = self._vol(source)
            vol = self._new_volume(obj, xml)
            if vol.capacity < src.capacity:
                raise InvalidArgument(
                    f"capacity of '{vol.name}' is smaller than its source '{src.name}'"
                )
            total = src.allocation
            for step in range(1, CLONE_STEPS + 1):
                if progress is not None:
                    progress(total * step // CLONE_STEPS, total)
            return self._store(obj, vol)

    def volume_info(self, ref: VolumeRef) -> VolumeInfo:
        with self._locked():
            _, vol = self._vol(ref)
            return VolumeInfo(VolumeType(vol.type), vol.capacity, vol.allocation)

    def volume_xml(self, ref: VolumeRef) -> str:
        with self._locked():
            _, vol = self._vol(ref)
            out = vol.xml.copy()
            out.capacity, out.allocation = vol.capacity, vol.allocation
            return out.to_xml()

    def volume_delete(self, ref: VolumeRef) -> None:
        with self._locked():
            obj, vol = self._vol(ref)
            if obj.live.type in LUN_POOLS:
                raise Unsupported(f"storage pool '{obj.name}' does not support volume deletion")
            del obj.volumes[vol.name]
            self.state.volume_paths.pop(vol.path, None)

    def volume_wipe(self, ref: VolumeRef) -> None:
        with self._locked():
            _, vol = self._vol(ref)
            vol.data = bytearray()

    def _span(self, vol: VolumeObj, offset: int, length: int) -> int:
        """The end offset of an I/O of ``length`` bytes at ``offset`` (0: to capacity)."""
        if offset < 0 or length < 0:
            raise InvalidArgument("offset and length must not be negative")
        end = vol.capacity if length == 0 else offset + length
        if offset > vol.capacity or end > vol.capacity:
            raise InvalidArgument(
                f"range {offset}..{end} is past the end of volume '{vol.name}' "
                f"({vol.capacity} bytes)"
            )
        return end

    def volume_download(self, ref: VolumeRef, offset: int, length: int) -> Iterator[bytes]:
        with self._locked():
            _, vol = self._vol(ref)
            end = self._span(vol, offset, length)
        return self._read_chunks(ref, offset, end)

    def _read_chunks(self, ref: VolumeRef, offset: int, end: int) -> Iterator[bytes]:
        while offset < end:
            size = min(STREAM_CHUNK, end - offset)
            with self._locked():
                _, vol = self._vol(ref)
                chunk = bytes(vol.data[offset:offset + size])
            yield chunk + bytes(size - len(chunk))
            offset += size

    def volume_upload(
        self, ref: VolumeRef, offset: int, length: int, chunks: Iterable[bytes]
    ) -> int:
        with self._locked():
            _, vol = self._vol(ref)
            limit = self._span(vol, offset, length)
        position = offset
        for chunk in chunks:
            if position + len(chunk) > limit:
                raise InvalidArgument(
                    f"upload to volume '{ref.name}' is longer than {limit - offset} bytes"
                )
            with self._locked():
                _, vol = self._vol(ref)
                if len(vol.data) < position:
                    vol.data.extend(bytes(position - len(vol.data)))
                vol.data[position:position + len(chunk)] = chunk
            position += len(chunk)
        return position - offset

    def volume_resize(self, ref: VolumeRef, capacity: int) -> None:
        with self._locked():
            obj, vol = self._vol(ref)
            if obj.live.type in LUN_POOLS:
                raise Unsupported(f"storage pool '{obj.name}' does not support volume resize")
            if capacity < vol.allocation:
                raise InvalidArgument(
                    f"cannot shrink volume '{vol.name}' below its allocation of "
                    f"{vol.allocation} bytes"
                )
            vol.capacity = capacity

    # --- source discovery (what libvirt's test driver answers) ---------------------
    def find_pool_sources(self, kind: str, spec: str | None = None) -> str:
        """``logical``: two volume groups; ``netfs``: one export of the host asked for."""
        if kind == "logical":
            return ("<sources>\n  <source>\n    <name>testvg1</name>\n"
                    "    <format type='lvm2'/>\n  </source>\n  <source>\n"
                    "    <name>testvg2</name>\n    <format type='lvm2'/>\n  </source>\n"
                    "</sources>\n")
        if kind == "netfs":
            host = "localhost"
            if spec:
                node = parse_xml(spec, what="source XML").find("host")
                host = node.get("name", host) if node is not None else host
            return (f"<sources>\n  <source>\n    <host name='{escape(host)}'/>\n"
                    "    <dir path='/exports/hvmon'/>\n    <format type='nfs'/>\n"
                    "  </source>\n</sources>\n")
        raise Unsupported(f"this function is not supported by the test driver: "
                          f"find_pool_sources of type '{kind}' (logical, netfs)")
