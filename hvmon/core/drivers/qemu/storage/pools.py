"""The pool table of the QEMU driver: definitions, active state, backends.

Pools are kept as libvirt keeps them: persistent definitions in
``etc/storage/NAME.xml`` (autostart markers in ``etc/storage/autostart``),
the live definition of an active pool in ``run/storage/NAME.xml`` so a new
driver instance finds it active (and refreshes it). Every operation runs
under one lock; the backend of the pool's type does the host work.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from pathlib import Path

from lxml import etree

from hvmon.core.drivers.base import VolumeRef
from hvmon.core.drivers.identity import check_identity, find_named
from hvmon.core.drivers.qemu.paths import QemuPaths
from hvmon.core.drivers.qemu.secrets import SecretStore
from hvmon.core.drivers.qemu.storage.backends import Backend, DirBackend, Tools, backend_for
from hvmon.core.drivers.qemu.storage.model import PoolObj, Vol
from hvmon.core.drivers.qemu.storage.run import Runner
from hvmon.core.errors import (
    AlreadyExists,
    HvmonError,
    InvalidArgument,
    InvalidXML,
    NoSuchPool,
    NoSuchVolume,
    OperationInvalid,
)
from hvmon.core.xml import defaults, schema
from hvmon.core.xml.pool import Pool as PoolXML
from hvmon.core.xml.volume import Volume as VolumeXML

log = logging.getLogger("hvmon.qemu.storage")


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class PoolTable:
    """The pools of one driver root, their files and their backends."""

    def __init__(self, paths: QemuPaths, secrets: SecretStore, runner: Runner | None = None):
        self.config = paths.config.parent / "storage"
        self.autostart_dir = self.config / "autostart"
        self.run = paths.run.parent / "storage"
        for path in (self.config, self.autostart_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.run.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.tools = Tools(runner or Runner(), secrets)
        self.lock = threading.RLock()
        self.pools: dict[str, PoolObj] = {}
        self._vol_secrets_file = self.config / "volume-secrets.json"
        try:
            self.vol_secrets: dict[str, str] = json.loads(self._vol_secrets_file.read_text())
        except (OSError, ValueError):
            self.vol_secrets = {}

    # --- loading --------------------------------------------------------------------
    def load(self) -> None:
        """Read definitions, re-activate pools left active, start autostart pools."""
        with self.lock:
            for path in sorted(self.config.glob("*.xml")):
                self._load_one(path, persistent=True)
            for path in sorted(self.run.glob("*.xml")):
                obj = self._load_one(path, persistent=False)
                if obj is None:
                    continue
                try:
                    self.refresh(obj)
                    obj.active = True
                except HvmonError as exc:
                    log.warning("storage pool '%s' could not be re-activated: %s",
                                obj.name, exc)
                    path.unlink(missing_ok=True)
                    if not obj.persistent:
                        self.pools.pop(obj.uuid, None)
            for obj in list(self.pools.values()):
                if obj.autostart and not obj.active:
                    try:
                        self.start(obj)
                    except HvmonError as exc:
                        log.warning("autostart of storage pool '%s' failed: %s", obj.name, exc)

    def _load_one(self, path: Path, persistent: bool) -> PoolObj | None:
        try:
            xml = PoolXML.from_xml(path.read_text())
        except (OSError, HvmonError) as exc:
            log.warning("ignoring pool file %s: %s", path, exc)
            return None
        obj = self.pools.get(xml.uuid)
        if obj is None:
            obj = PoolObj(xml.uuid, xml.name, xml if persistent else None, xml)
            self.pools[obj.uuid] = obj
        else:
            obj.live = xml
        obj.autostart = (self.autostart_dir / xml.name).exists()
        return obj

    # --- lookups --------------------------------------------------------------------
    def get(self, uuid: str) -> PoolObj:
        obj = self.pools.get(uuid)
        if obj is None:
            raise NoSuchPool(f"storage pool not found: no pool with matching uuid '{uuid}'")
        return obj

    def by_name(self, name: str) -> PoolObj:
        obj = find_named(self.pools.values(), "name", name)
        if obj is None:
            raise NoSuchPool(f"storage pool not found: no pool with matching name '{name}'")
        return obj

    def active(self, obj: PoolObj) -> PoolObj:
        if not obj.active:
            raise OperationInvalid(f"storage pool '{obj.name}' is not active")
        return obj

    def backend(self, pool: PoolXML) -> Backend:
        return backend_for(pool.type, self.tools)

    def volume(self, ref: VolumeRef) -> tuple[PoolObj, Vol]:
        for obj in self.pools.values():
            if obj.name == ref.pool and obj.active:
                vol = obj.volumes.get(ref.name)
                if vol is not None:
                    return obj, vol
        raise NoSuchVolume(f"storage volume not found: no volume with matching name "
                           f"'{ref.name}'")

    # --- definitions ----------------------------------------------------------------
    def parse(self, text: str) -> PoolXML:
        pool = PoolXML.from_xml(text)
        schema.validate(pool.element, "pool")
        self.backend(pool).check(pool)
        if not pool.uuid:
            existing = find_named(self.pools.values(), "name", pool.name or "")
            if existing is not None:  # a redefinition by name keeps its identity
                name = pool.find("name")
                assert name is not None
                name.addnext(etree.Element("uuid"))
                pool.uuid = existing.uuid
        defaults.fill_pool(pool)
        return pool

    def define(self, text: str) -> PoolObj:
        pool = self.parse(text)
        obj = check_identity(self.pools.values(), "pool", pool.name or "", pool.uuid or "")
        if obj is None:
            obj = PoolObj(pool.uuid, pool.name, pool, pool.copy())
            self.pools[obj.uuid] = obj
        else:
            obj.config = pool
            if not obj.active:
                obj.live = pool.copy()
        _write(self.config / f"{obj.name}.xml", pool.to_xml())
        return obj

    def create(self, text: str) -> PoolObj:
        pool = self.parse(text)
        if check_identity(self.pools.values(), "pool", pool.name or "",
                          pool.uuid or "") is not None:
            raise AlreadyExists(f"pool '{pool.name}' already exists")
        obj = PoolObj(pool.uuid, pool.name, None, pool)
        self.pools[obj.uuid] = obj
        try:
            self.start(obj)
        except BaseException:
            self.pools.pop(obj.uuid, None)
            raise
        return obj

    # --- actions --------------------------------------------------------------------
    def start(self, obj: PoolObj) -> None:
        if obj.active:
            raise OperationInvalid(f"storage pool '{obj.name}' is already active")
        if obj.config is not None:
            obj.live = obj.config.copy()
        backend = self.backend(obj.live)
        backend.start(obj.live)
        try:
            self.refresh(obj)
        except BaseException:
            with contextlib.suppress(HvmonError):
                backend.stop(obj.live)
            raise
        obj.active = True
        _write(self.run / f"{obj.name}.xml", obj.live.to_xml())

    def refresh(self, obj: PoolObj) -> None:
        vols, usage = self.backend(obj.live).refresh(obj.live)
        for vol in vols:
            self._fill_secret(vol)
        obj.volumes = {v.name: v for v in vols}
        obj.capacity, obj.allocation, obj.available = (usage.capacity, usage.allocation,
                                                       usage.available)

    def _fill_secret(self, vol: Vol) -> None:
        if vol.secret is not None:
            vol.secret = self.vol_secrets.get(vol.path) or self._secret_for_path(vol.path) or ""

    def update_volume(self, obj: PoolObj, name: str) -> None:
        """Read one volume again (a file pool), else the whole pool."""
        backend = self.backend(obj.live)
        if not isinstance(backend, DirBackend):
            self.refresh(obj)
            return
        vol = backend.describe(backend.volume_path_for(obj.live, name), name)
        if vol is None:
            obj.volumes.pop(name, None)
        else:
            self._fill_secret(vol)
            obj.volumes[name] = vol
        usage = backend.usage(obj.live)
        obj.capacity, obj.allocation, obj.available = (usage.capacity, usage.allocation,
                                                       usage.available)

    def _secret_for_path(self, path: str) -> str | None:
        for ref in self.tools.secrets.refs():
            if ref.usage_type == "volume" and ref.usage_id == path:
                return ref.uuid
        return None

    def stop(self, obj: PoolObj) -> None:
        self.active(obj)
        self.backend(obj.live).stop(obj.live)
        obj.active = False
        obj.volumes = {}
        (self.run / f"{obj.name}.xml").unlink(missing_ok=True)
        if not obj.persistent:
            self.pools.pop(obj.uuid, None)

    def action(self, obj: PoolObj, action: str) -> None:
        if action == "start":
            self.start(obj)
        elif action == "stop":
            self.stop(obj)
        elif action == "refresh":
            self.refresh(self.active(obj))
        elif action in ("build", "delete", "undefine"):
            if obj.active:
                raise OperationInvalid(f"storage pool '{obj.name}' is still active")
            if action == "build":
                self.backend(obj.live).build(obj.live)
            elif action == "delete":
                self.backend(obj.live).delete(obj.live)
            else:
                if not obj.persistent:
                    raise OperationInvalid(f"cannot undefine transient pool '{obj.name}'")
                (self.config / f"{obj.name}.xml").unlink(missing_ok=True)
                (self.autostart_dir / obj.name).unlink(missing_ok=True)
                self.pools.pop(obj.uuid, None)
        else:
            raise InvalidArgument(f"unknown pool action '{action}'")

    def set_autostart(self, obj: PoolObj, autostart: bool) -> None:
        if not obj.persistent:
            raise OperationInvalid(f"cannot set autostart for transient pool '{obj.name}'")
        marker = self.autostart_dir / obj.name
        if autostart:
            marker.touch()
        else:
            marker.unlink(missing_ok=True)
        obj.autostart = autostart

    # --- volumes --------------------------------------------------------------------
    def note_secret(self, path: str, secret: str | None) -> None:
        if secret:
            self.vol_secrets[path] = secret
        else:
            self.vol_secrets.pop(path, None)
        _write(self._vol_secrets_file, json.dumps(self.vol_secrets))

    def parse_volume(self, obj: PoolObj, text: str) -> tuple[VolumeXML, bool, str | None]:
        """(volume XML, allocation given explicitly, LUKS secret UUID)."""
        vol = VolumeXML.from_xml(text)
        schema.validate(vol.element, "volume")
        backend = self.backend(obj.live)
        if not backend.volume_ops:
            raise OperationInvalid(f"storage pool '{obj.name}' does not support volume "
                                   "creation")
        if not vol.name:
            raise InvalidXML("missing volume name")
        if vol.name in obj.volumes:
            raise AlreadyExists(f"storage volume '{vol.name}' exists already")
        if vol.capacity is None:
            raise InvalidXML("missing capacity element in volume XML")
        explicit = vol.allocation is not None
        secret = None
        enc = vol.find("target/encryption")
        if enc is not None:
            if enc.get("format") != "luks":
                raise InvalidArgument(f"volume encryption format '{enc.get('format')}' is not "
                                      "supported (luks)")
            ref = enc.find("secret")
            if ref is None or not ref.get("uuid"):
                raise InvalidXML("a luks <encryption> needs <secret type='passphrase' "
                                 "uuid='...'/>")
            secret = self.tools.secrets.lookup("uuid", ref.get("uuid", "")).uuid
            self.tools.secrets.value(secret)  # it must have a value now
        vol.key = vol.target_path = None
        path = backend.volume_path_for(obj.live, vol.name)
        if os.path.lexists(path):
            raise AlreadyExists(f"storage volume '{vol.name}' exists already ({path})")
        return vol, explicit, secret

    def add_volume(self, obj: PoolObj, name: str, secret: str | None) -> Vol:
        path = self.backend(obj.live).volume_path_for(obj.live, name)
        self.note_secret(path, secret)
        self.update_volume(obj, name)
        vol = obj.volumes.get(name)
        if vol is None:
            raise NoSuchVolume(f"storage volume '{name}' was created but is not in pool "
                               f"'{obj.name}'")
        return vol
