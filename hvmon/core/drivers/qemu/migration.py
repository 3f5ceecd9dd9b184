"""Migration phases of the QEMU driver (see :mod:`hvmon.core.migration`).

The source sends the live definition (secure: a VNC password must arrive too)
with its aliases and PCI addresses, so the destination starts the very same
machine: same versioned machine type, same slots. Before anything starts the
destination checks what would make the guest fail or change under it: the
machine type, the CPU model, KVM for a ``kvm`` domain, the disk paths. The
stream goes over TCP to the destination's ``migration_address`` (a free port
per migration), the incoming QEMU waiting with ``-incoming defer``. With
``copy_storage_all`` the disks go first, over NBD (:mod:`.nbdcopy`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from hvmon.core.drivers import host
from hvmon.core.drivers.base import DomainRef, VolumeRef
from hvmon.core.drivers.qemu import nbdcopy, process
from hvmon.core.drivers.qemu.state import QemuDomain
from hvmon.core.errors import (
    HvmonError,
    InvalidArgument,
    NoSuchPool,
    NoSuchVolume,
    OperationFailed,
    OperationInvalid,
)
from hvmon.core.events import (
    DefinedDetail,
    LifecycleEvent,
    ResumedDetail,
    StartedDetail,
    StoppedDetail,
    SuspendedDetail,
    UndefinedDetail,
)
from hvmon.core.types import (
    CpuCompareResult,
    DomainState,
    JobInfo,
    PausedReason,
    RunningReason,
    ShutoffReason,
)
from hvmon.core.xml.domain import Domain as DomainXML
from hvmon.core.xml.parser import parse_xml

if TYPE_CHECKING:
    from hvmon.core.drivers.qemu.caps import QemuCaps
    from hvmon.core.drivers.qemu.lifecycle import Lifecycle, Options
    from hvmon.core.drivers.qemu.locks import LockHook
    from hvmon.core.drivers.qemu.registry import Registry

log = logging.getLogger("hvmon.migration")

#: how often Perform asks QEMU how far it got, between its MIGRATION events
POLL_INTERVAL = 0.1
#: MIGRATION event statuses Perform acts on at once (the others wait for the stats time)
_DECISIVE = frozenset({"", "completed", "failed", "cancelled", "pre-switchover"})
MiB = 1024 * 1024


class MigrationOps:
    """The five migration phases, mixed into :class:`QemuDriver`."""

    registry: Registry
    lifecycle: Lifecycle
    options: Options
    locks: LockHook
    #: disks a storage migration's Prepare created, by incoming domain name
    _precreated: dict[str, list[tuple[str, ...]]] | None = None

    def caps(self) -> QemuCaps:  # provided by the driver
        raise NotImplementedError

    # provided by the driver's storage part
    def lookup_pool(self, by: str, value: str) -> Any:
        raise NotImplementedError

    def lookup_volume(self, by: str, value: str, pool_uuid: str | None = None) -> VolumeRef:
        raise NotImplementedError

    def pool_create_volume(self, uuid: str, xml: str) -> VolumeRef:
        raise NotImplementedError

    def volume_delete(self, ref: VolumeRef) -> None:
        raise NotImplementedError

    def _qmp(self, dom: QemuDomain) -> nbdcopy.Execute:
        return lambda command, arguments: self.lifecycle.execute(dom, command, arguments)

    def _volume_at(self, path: str) -> tuple[str, str] | None:
        try:
            ref = self.lookup_volume("path", path)
        except NoSuchVolume:
            return None
        return ref.pool, ref.name

    # --- 1. Begin (source) ---------------------------------------------------------
    def migrate_begin(self, uuid: str, flags: dict[str, Any]) -> dict[str, Any]:
        with self.registry.locked():
            dom = self.registry.get(uuid)
            if flags.get("offline"):
                if dom.config is None:
                    raise OperationInvalid(f"domain '{dom.name}' is transient: offline "
                                           "migration moves only a definition")
                source = dom.config
            else:
                if not dom.active or dom.live is None:
                    raise OperationInvalid(f"domain '{dom.name}' is not running (use offline "
                                           "migration for a definition)")
                if dom.migrating:
                    raise OperationInvalid(f"domain '{dom.name}' is already migrating")
                source = dom.live
            xml = source.copy()
            xml.element.attrib.pop("id", None)
            cookie = {"hostname": socket.gethostname(), "host_uuid": host.host_uuid(),
                      "host_cpu": host.cpu_model(),
                      "persistent_xml": dom.config.to_xml() if dom.config is not None else ""}
            if flags.get("copy_storage_all") and not flags.get("offline"):
                cookie["storage"] = nbdcopy.plan(source, self._qmp(dom), self._volume_at)
            if not flags.get("offline"):
                dom.migrating = True
            return {"xml": xml.to_xml(), "cookie": cookie}

    # --- 2. Prepare (destination) -----------------------------------------------------
    def migrate_prepare(self, xml: str, cookie: dict[str, Any],
                        flags: dict[str, Any]) -> dict[str, Any]:
        live = DomainXML.from_xml(xml)
        if flags.get("dest_name"):
            live.name = str(flags["dest_name"])
        storage: list[dict[str, Any]] = []
        if flags.get("copy_storage_all") and not flags.get("offline"):
            storage = list(cookie.get("storage") or [])
            nbdcopy.as_volume_disks(live, storage)  # resolved in this host's pools
        with self.registry.locked():
            existing = self.registry.identity(live)
            if existing is not None and existing.active:
                raise OperationInvalid(f"domain '{live.name}' is already running on the "
                                       "destination")
            self._check_compatible(live, cookie, creating={
                d["path"] for d in storage if d["type"] == "file" and not d["pool"]})
            if flags.get("offline"):
                return {"uri": "", "cookie": {}}
            dom = existing or QemuDomain(live.uuid, live.name, None)
            added = existing is None
            if added:
                self.registry.domains[dom.uuid] = dom
            port = _free_port(self.options.migration_address)
            dom.migrating = True  # the start hooks see an incoming guest (no locks yet)
            created: list[tuple[str, ...]] = []
            self._created()[live.name] = created  # Finish removes them on failure
            nbd: dict[str, Any] = {}
            try:
                self._precreate(live.name, storage, created)
                self.lifecycle.start(dom, live, incoming=True)
                if flags.get("tunnelled"):  # the stream comes through migrate_tunnel_in
                    dom.incoming_socket = str(self.paths.run / f"{dom.name}.incoming")
                    uri = f"unix:{dom.incoming_socket}"
                else:
                    uri = f"tcp:{_host_part(self.options.migration_address)}:{port}"
                self.lifecycle.execute(dom, "migrate-incoming", {"uri": uri})
                if storage:
                    address = self.options.migration_address
                    nbd = nbdcopy.start_server(self._qmp(dom), address, _free_port(address),
                                               storage)
                    created.append(("nbd",))  # Finish stops it (with the QEMU on failure)
            except BaseException:
                dom.migrating = False
                if dom.active:
                    with contextlib.suppress(HvmonError):
                        self._kill_incoming(dom)
                elif added:
                    self.registry.domains.pop(dom.uuid, None)
                self._remove_created(live.name)
                raise
            back: dict[str, Any] = {"hostname": socket.gethostname()}
            if nbd:
                back["nbd"] = nbd
            return {"uri": "tunnel" if flags.get("tunnelled") else uri, "cookie": back}

    # --- storage migration: the destination's disks ------------------------------------
    def _created(self) -> dict[str, list[tuple[str, ...]]]:
        """What Prepare created for each incoming domain (by name), until Finish:
        ``("volume", pool, name)``, ``("file", path)``, ``("nbd",)`` (the NBD server)."""
        if self._precreated is None:
            self._precreated = {}
        return self._precreated

    def _precreate(self, name: str, storage: list[dict[str, Any]],
                   created: list[tuple[str, ...]]) -> None:
        """Create each disk to copy that is missing here; ``created`` records them."""
        from hvmon.core.drivers.qemu.storage.qemuimg import QemuImg

        for disk in storage:
            what = f"cannot migrate '{name}': disk {disk['target']}"
            if disk["pool"]:
                try:
                    pool = self.lookup_pool("name", disk["pool"])
                except NoSuchPool:
                    raise OperationInvalid(f"{what}: storage pool '{disk['pool']}' does not "
                                           "exist on the destination") from None
                try:
                    self.lookup_volume("name", disk["volume"], pool.uuid)
                    continue  # there already: the copy goes into it
                except NoSuchVolume:
                    pass
                ref = self.pool_create_volume(pool.uuid, _volume_xml(disk))
                created.append(("volume", ref.pool, ref.name))
            elif disk["type"] == "file" and not os.path.exists(disk["path"]):
                if not os.path.isdir(os.path.dirname(disk["path"])):
                    raise OperationInvalid(f"{what}: directory {os.path.dirname(disk['path'])}"
                                           " does not exist on the destination")
                QemuImg().create(disk["path"], disk["format"], int(disk["capacity"]))
                created.append(("file", disk["path"]))

    def _remove_created(self, name: str) -> None:
        """A failed storage migration: delete what Prepare created, and nothing else."""
        for kind, *what in reversed(self._created().pop(name, [])):
            if kind == "nbd":  # ended with the incoming QEMU
                continue
            try:
                if kind == "file":
                    os.unlink(what[0])
                else:
                    pool = self.lookup_pool("name", what[0])
                    self.volume_delete(self.lookup_volume("name", what[1], pool.uuid))
            except (OSError, HvmonError) as exc:
                log.warning("migration of '%s': cannot remove the %s %s: %s", name, kind,
                            "/".join(what), exc)

    def migrate_tunnel_in(self, name: str, chunks: Iterable[bytes]) -> int:
        """Write a tunnelled migration's stream into the incoming QEMU's socket."""
        with self.registry.locked():
            dom = next((d for d in self.registry.domains.values()
                        if d.name == name and d.migrating and d.incoming_socket), None)
        if dom is None:
            raise OperationInvalid(f"no tunnelled incoming migration of '{name}' here")
        written = 0
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(dom.incoming_socket)
                for chunk in chunks:
                    sock.sendall(chunk)
                    written += len(chunk)
                sock.shutdown(socket.SHUT_WR)
            except OSError as exc:
                raise OperationFailed(f"tunnelled migration of '{name}': the incoming QEMU "
                                      f"went away ({exc.strerror or exc})") from None
        return written

    def _check_compatible(self, live: DomainXML, cookie: dict[str, Any],
                          creating: set[str] | None = None) -> None:
        """Refuse, with the reason, a guest this host cannot run unchanged (``creating``:
        disk files a storage migration creates)."""
        caps = self.caps()
        if caps.machine(live.machine or "") is None:
            raise OperationInvalid(f"cannot migrate '{live.name}': machine type "
                                   f"'{live.machine}' is not supported by the destination's "
                                   f"QEMU ({caps.binary} {caps.version_string})")
        if live.type == "kvm" and not caps.kvm:
            raise OperationInvalid(f"cannot migrate '{live.name}': the destination cannot use "
                                   "KVM")
        verdict, why = self._cpu_fits(live.element.find("cpu"), live.type or "qemu",
                                      cookie.get("host_cpu", ""))
        if verdict == CpuCompareResult.INCOMPATIBLE:
            raise OperationInvalid(f"cannot migrate '{live.name}': {why}")
        for disk in live.disks:
            path = disk.source_path
            if disk.type in ("file", "block") and path and not os.path.exists(path) \
                    and path not in (creating or ()):
                raise OperationInvalid(f"cannot migrate '{live.name}': disk "
                                       f"{disk.target_dev} ({path}) does not exist on the "
                                       "destination")

    def _cpu_fits(self, cpu: Any, virt_type: str,
                  source_host_cpu: str = "") -> tuple[CpuCompareResult, str]:
        """How a ``<cpu>`` element fits this host, and why not when it does not.

        ``host-passthrough``/``host-model`` fit only the host they came from
        (``source_host_cpu``; empty: this one). A named model must be one the
        binary knows and the ``cpu_models`` option allows; under KVM also one
        the host CPU has every feature of (QEMU's ``unavailable-features``; TCG
        emulates them all).
        """
        caps = self.caps()
        mode = cpu.get("mode", "custom") if cpu is not None else "none"
        here = host.cpu_model()
        if mode in ("host-passthrough", "host-model"):
            if source_host_cpu and source_host_cpu != here:
                return (CpuCompareResult.INCOMPATIBLE, f"its CPU is the source host's "
                        f"({source_host_cpu}), the destination has {here or 'another CPU'}")
            return CpuCompareResult.IDENTICAL, ""
        model = (cpu.findtext("model") or "").strip() if cpu is not None else ""
        if not model:
            return CpuCompareResult.SUPERSET, ""  # QEMU's default model runs anywhere
        allowed = self.options.cpu_models or caps.cpu_models
        lacking = virt_type == "kvm" and caps.kvm and model in caps.unusable_cpu_models
        if model not in allowed or lacking:
            return (CpuCompareResult.INCOMPATIBLE,
                    f"CPU model '{model}' is not available on the destination")
        return CpuCompareResult.SUPERSET, ""

    def compare_cpu(self, xml: str) -> int:
        """virsh cpu-compare: a ``<cpu>`` against this host's CPU (KVM), or a ``<domain>``'s
        ``<cpu>`` for that domain's type (``qemu``: TCG emulates every model)."""
        root = parse_xml(xml, what="CPU XML")
        cpu = root if root.tag == "cpu" else root.find("cpu")
        if cpu is None:
            raise InvalidArgument("no <cpu> element in the XML given")
        kind = root.get("type", "kvm") if root.tag == "domain" else "kvm"
        return int(self._cpu_fits(cpu, kind)[0])

    def _kill_incoming(self, dom: QemuDomain) -> None:
        dom.stopping = "destroy"
        process.terminate(dom.pid, dom.uuid)
        with self.registry.locked():
            self.lifecycle.stopped(dom, ShutoffReason.FAILED, StoppedDetail.FAILED,
                                   quiet=True)

    # --- 3. Perform (source) -------------------------------------------------------------
    def migrate_perform(self, uuid: str, uri: str, cookie: dict[str, Any],
                        flags: dict[str, Any]) -> dict[str, Any]:
        if flags.get("offline"):
            return {"cookie": {}}  # only the definition moves, in Finish
        mirrors: nbdcopy.Mirrors | None = None
        with self.registry.locked():
            dom = self.registry.get(uuid)
            if not dom.active or not dom.migrating:
                raise OperationInvalid(f"domain '{dom.name}' is not being migrated")
            was_running = dom.state == DomainState.RUNNING
            dom.resume_after_failure = was_running
            bandwidth = int(flags.get("bandwidth") or 0) * MiB
            if bandwidth:
                self.lifecycle.execute(dom, "migrate-set-parameters",
                                       {"max-bandwidth": bandwidth})
            if not flags.get("live") and was_running:  # libvirt: offline copy, guest paused
                self.lifecycle.execute(dom, "stop")
            disks = nbdcopy.plan(dom.current(), self._qmp(dom), lambda path: None) \
                if flags.get("copy_storage_all") else []
            if disks:  # none (only shared, read-only or network disks): memory alone
                if not cookie.get("nbd"):
                    raise OperationFailed(f"storage migration of '{dom.name}': the "
                                          "destination started no NBD server")
                mirrors = nbdcopy.Mirrors(self._qmp(dom), disks, cookie["nbd"], bandwidth)
            dom.job = JobInfo(type=2, operation="migration out")
        started = time.monotonic()
        try:
            if mirrors is not None:
                self._copy_disks(dom, mirrors, started)
            return self._perform_memory(dom, uri, flags, started, mirrors)
        except BaseException:
            dom.job = JobInfo()
            if mirrors is not None:  # stop the copy, leave the source as it was
                self._cancel_migration(dom)
                mirrors.abort()
            raise

    def _cancel_migration(self, dom: QemuDomain, deadline: float = 10.0) -> None:
        """``migrate_cancel`` and wait until QEMU has ended the migration (never raises)."""
        end = time.monotonic() + deadline
        try:
            self.lifecycle.execute(dom, "migrate_cancel")
            while time.monotonic() < end:
                status = self.lifecycle.execute(dom, "query-migrate").get("status", "")
                if status in ("", "none", "cancelled", "failed", "completed"):
                    return
                time.sleep(0.01)
        except HvmonError as exc:
            log.warning("migration of '%s': cancelling it failed: %s", dom.name, exc)

    def _copy_disks(self, dom: QemuDomain, mirrors: nbdcopy.Mirrors, started: float) -> None:
        """Mirror every disk to the destination and wait until all are in sync."""
        dom.migration_event.clear()
        mirrors.start()
        while True:
            ready = mirrors.poll()
            dom.job = _job({}, started, mirrors)
            if ready:
                return
            dom.migration_event.wait(POLL_INTERVAL)  # a block job event, or time for stats
            dom.migration_event.clear()

    def _perform_memory(self, dom: QemuDomain, uri: str, flags: dict[str, Any],
                        started: float, mirrors: nbdcopy.Mirrors | None) -> dict[str, Any]:
        """``migrate`` and wait for it; with disks mirrored, QEMU pauses before the
        switch-over so that the mirror jobs end on a paused guest."""
        with self.registry.locked():
            self.lifecycle.execute(dom, "migrate-set-capabilities", {"capabilities": [
                {"capability": "events", "state": True},
                {"capability": "pause-before-switchover", "state": mirrors is not None}]})
            dom.migration_event.clear()
            dom.migration_status = ""
            self.lifecycle.execute(dom, "migrate", {"uri": uri})
        suspended = False
        asked = time.monotonic()
        while True:
            woke = dom.migration_event.wait(POLL_INTERVAL)  # a status change, or stats time
            dom.migration_event.clear()
            if woke and dom.migration_status not in _DECISIVE \
                    and time.monotonic() - asked < POLL_INTERVAL:
                continue  # QEMU announced a step (setup, active, ...): nothing to do yet
            asked = time.monotonic()
            info = self.lifecycle.execute(dom, "query-migrate")
            status = info.get("status", "")
            dom.job = _job(info, started, mirrors)
            if status == "completed":
                break
            if status in ("failed", "cancelled"):
                raise OperationFailed(f"migration of '{dom.name}' {status}: "
                                      f"{info.get('error-desc', 'no reason given')}")
            if status == "pre-switchover" and mirrors is not None and mirrors.jobs:
                mirrors.poll()  # the last figures, then the paused guest's copy is complete
                mirrors.finish(self._waiter(dom))
                self.lifecycle.execute(dom, "migrate-continue", {"state": "pre-switchover"})
                continue
            timeout = flags.get("timeout")
            if timeout and not suspended and time.monotonic() - started > float(timeout):
                self.lifecycle.execute(dom, "stop")  # libvirt's --timeout: converge paused
                suspended = True
        final, dom.job = dom.job, JobInfo()
        with self.registry.locked():  # paused for good here: the destination takes the disks
            self.locks.release(dom, dom.current())
        return {"cookie": {}, "total": final.data_total,
                "downtime_ms": int(info.get("downtime", 0)),
                "disk_total": final.disk_total}

    @staticmethod
    def _waiter(dom: QemuDomain) -> Any:
        def wait(seconds: float) -> None:
            dom.migration_event.wait(seconds)
            dom.migration_event.clear()
        return wait

    # --- 4. Finish (destination) --------------------------------------------------------
    def migrate_finish(self, name: str, cookie: dict[str, Any], flags: dict[str, Any],
                       success: bool) -> DomainRef | None:
        with self.registry.locked():
            dom = next((d for d in self.registry.domains.values() if d.name == name), None)
            if flags.get("offline"):
                return self._finish_offline(dom, name, cookie, success)
            if dom is None or not dom.migrating:
                if not success:  # the incoming QEMU died: what Prepare created goes too
                    self._remove_created(name)
                    return None
                raise OperationFailed(f"no incoming migration of '{name}' here")
            dom.migrating = False
            if not success:
                if dom.active:
                    self._kill_incoming(dom)
                self._remove_created(name)
                return None
            try:
                if ("nbd",) in self._created().get(name, []):  # copied: no more writers
                    nbdcopy.stop_server(self._qmp(dom))
                self.locks.take(dom)  # the source let its disks go at the end of Perform
            except BaseException:
                if dom.active:
                    with contextlib.suppress(HvmonError):
                        self._kill_incoming(dom)
                self._remove_created(name)
                raise
            self._created().pop(name, None)  # the guest's disks now
            if flags.get("suspend"):
                dom.state, dom.reason = DomainState.PAUSED, PausedReason.USER
            else:
                self.lifecycle.execute(dom, "cont")
                dom.state, dom.reason = DomainState.RUNNING, RunningReason.MIGRATED
            self.registry.queue_event(dom, LifecycleEvent.STARTED, StartedDetail.MIGRATED)
            if flags.get("suspend"):
                self.registry.queue_event(dom, LifecycleEvent.SUSPENDED, SuspendedDetail.PAUSED)
            if flags.get("persistent"):
                self._define_from(dom, cookie, dom.live)
            self.lifecycle.save_status(dom)
            return dom.ref()

    def _finish_offline(self, dom: QemuDomain | None, name: str, cookie: dict[str, Any],
                        success: bool) -> DomainRef | None:
        if not success:
            return None
        xml = cookie.get("persistent_xml") or ""
        if not xml:
            raise OperationFailed(f"offline migration of '{name}' carried no definition")
        definition = DomainXML.from_xml(xml)
        definition.name = name
        if dom is None:
            dom = QemuDomain(definition.uuid, name, None)
            self.registry.domains[dom.uuid] = dom
        self._define_from(dom, {"persistent_xml": definition.to_xml()}, None)
        return dom.ref()

    def _define_from(self, dom: QemuDomain, cookie: dict[str, Any],
                     live: DomainXML | None) -> None:
        text = cookie.get("persistent_xml") or (live.to_xml() if live is not None else "")
        config = DomainXML.from_xml(text)
        config.name = dom.name
        for alias in config.element.iterfind("devices/*/alias"):
            alias.getparent().remove(alias)
        detail = DefinedDetail.UPDATED if dom.config is not None else DefinedDetail.ADDED
        dom.config = config
        self.registry.save_config(dom)
        self.registry.queue_event(dom, LifecycleEvent.DEFINED, detail)

    # --- 5. Confirm (source) ---------------------------------------------------------------
    def migrate_confirm(self, uuid: str, cookie: dict[str, Any], flags: dict[str, Any],
                        success: bool) -> None:
        with self.registry.locked():
            dom = self.registry.get(uuid)
            if flags.get("offline"):
                if success and flags.get("undefine_source") and dom.config is not None:
                    self._undefine_source(dom)
                return
            dom.migrating, dom.job = False, JobInfo()
            if not dom.active:
                return
            if success:  # shut off now; QEMU exits (and is reaped) in the background
                self.lifecycle.stop_detached(dom, ShutoffReason.MIGRATED,
                                             StoppedDetail.MIGRATED)
                if flags.get("undefine_source") and dom.config is not None:
                    self._undefine_source(dom)
                return
            status = self.lifecycle.execute(dom, "query-status")
            if status.get("status") == "postmigrate":  # Perform ended: take the disks back
                self.locks.take(dom)
            if dom.resume_after_failure and not status.get("running"):
                self.lifecycle.execute(dom, "cont")
                dom.state, dom.reason = DomainState.RUNNING, RunningReason.MIGRATION_CANCELED
                self.registry.queue_event(dom, LifecycleEvent.RESUMED, ResumedDetail.MIGRATED)
                self.lifecycle.save_status(dom)

    def _undefine_source(self, dom: QemuDomain) -> None:
        self.registry.remove_config(dom)
        self.registry.queue_event(dom, LifecycleEvent.UNDEFINED, UndefinedDetail.REMOVED)
        dom.config = None
        if not dom.active:
            self.registry.domains.pop(dom.uuid, None)

    def domain_job_info(self, uuid: str) -> JobInfo:
        with self.registry.locked():
            return self.registry.get(uuid).job


def _job(info: dict[str, Any], started: float,
         mirrors: nbdcopy.Mirrors | None = None) -> JobInfo:
    """virDomainJobInfo from QEMU's ``query-migrate`` (unbounded: memory keeps changing)
    and the disks' mirror jobs; ``data_*`` are both together, as libvirt's."""
    ram = info.get("ram") or {}
    total = int(ram.get("total", 0))
    remaining = int(ram.get("remaining", 0))
    processed = int(ram.get("transferred", 0))
    disk_total = mirrors.total if mirrors is not None else 0
    disk_done = mirrors.processed if mirrors is not None else 0
    elapsed = (time.monotonic() - started) * 1000
    return JobInfo(type=2, operation="migration out", time_elapsed_ms=int(elapsed),
                   data_total=total + disk_total, data_processed=processed + disk_done,
                   data_remaining=remaining + disk_total - disk_done,
                   mem_total=total, mem_processed=processed, mem_remaining=remaining,
                   disk_total=disk_total, disk_processed=disk_done,
                   disk_remaining=disk_total - disk_done)


def _volume_xml(disk: dict[str, Any]) -> str:
    """A ``<volume>`` like the source's disk: name, virtual size, format."""
    from lxml import etree

    root = etree.Element("volume")
    etree.SubElement(root, "name").text = str(disk["volume"])
    etree.SubElement(root, "capacity", unit="bytes").text = str(int(disk["capacity"]))
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "format", type=str(disk["format"]))
    return etree.tostring(root, encoding="unicode")


def _free_port(address: str) -> int:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((address.strip("[]"), 0))
        return int(probe.getsockname()[1])


def _host_part(address: str) -> str:
    if ":" in address and not address.startswith("["):
        return f"[{address}]"
    return address
