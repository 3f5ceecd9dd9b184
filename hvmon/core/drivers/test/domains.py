"""Domains in the test driver: definitions, the lifecycle state machine, stats."""

from __future__ import annotations

import copy
import time
import uuid as uuidlib
from typing import Any

from lxml import etree

from hvmon.core import cpuset
from hvmon.core.drivers import impact
from hvmon.core.drivers.base import DomainRef, Listing
from hvmon.core.drivers.identity import check_identity
from hvmon.core.drivers.test import simstats
from hvmon.core.drivers.test.base import TestPart
from hvmon.core.drivers.test.controls import NS
from hvmon.core.drivers.test.state import DomainObj
from hvmon.core.errors import (
    InvalidArgument,
    InvalidXML,
    NoSuchDomain,
    OperationFailed,
    OperationInvalid,
)
from hvmon.core.events import (
    CrashedDetail,
    DefinedDetail,
    LifecycleEvent,
    ResumedDetail,
    ShutdownDetail,
    StartedDetail,
    StoppedDetail,
    SuspendedDetail,
    UndefinedDetail,
)
from hvmon.core.types import (
    CrashedReason,
    DomainInfo,
    DomainState,
    JobInfo,
    PausedReason,
    RunningReason,
    ShutoffReason,
    VcpuInfo,
)
from hvmon.core.xml import cputune, defaults, schema
from hvmon.core.xml.domain import Domain as DomainXML
from hvmon.core.xml.parser import parse_xml

_DEVICE_TAGS = {
    "disk", "interface", "controller", "hostdev", "graphics", "video", "sound", "input",
    "serial", "parallel", "console", "channel", "watchdog", "rng", "memballoon", "tpm",
    "filesystem", "smartcard", "redirdev", "hub", "panic", "shmem", "memory", "vsock",
}
_SECURE_ATTRS = ("passwd",)


def _canonical_uuid(value: str) -> str:
    try:
        return str(uuidlib.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument(f"invalid UUID '{value}'") from None


def metadata_controls(dom: DomainXML) -> dict[str, Any]:
    """``<hvmon:stats stall= fail=>`` and ``<hvmon:job>`` from a domain's metadata."""
    out: dict[str, Any] = {}
    metadata = dom.find("metadata")
    if metadata is None:
        return out
    stats = metadata.find(f"{{{NS}}}stats")
    if stats is not None:
        if stats.get("stall"):
            out["stall"] = float(stats.get("stall"))
        if stats.get("fail"):
            out["fail"] = stats.get("fail")
    job = metadata.find(f"{{{NS}}}job")
    if job is not None:
        out["job"] = {k: job.get(k) for k in ("operation", "total", "rate") if job.get(k)}
    return out


class DomainOps(TestPart):
    """The domain half of the Driver interface."""

    # --- lookups ------------------------------------------------------------
    def list_domains(self) -> list[Listing]:
        with self._locked() as st:
            return [
                Listing(DomainRef(o.uuid, o.name, o.id), o.active, o.persistent, o.autostart)
                for o in st.domains.values()
            ]

    def lookup_domain(self, by: str, value: str | int) -> DomainRef:
        with self._locked() as st:
            obj: DomainObj | None
            if by == "name":
                obj = st.domains_by_name.get(str(value))
            elif by == "uuid":
                obj = st.domains.get(_canonical_uuid(str(value)))
            elif by == "id":
                obj = st.domains_by_id.get(int(value))
            else:
                raise InvalidArgument(f"cannot look up a domain by {by}")
            if obj is None:
                raise NoSuchDomain(f"domain not found: no domain with matching {by} '{value}'")
            return DomainRef(obj.uuid, obj.name, obj.id)

    def domain_ref(self, uuid: str) -> DomainRef:
        with self._locked():
            obj = self._dom(uuid)
            return DomainRef(obj.uuid, obj.name, obj.id)

    def domain_flags(self, uuid: str) -> Listing:
        with self._locked():
            obj = self._dom(uuid)
            return Listing(DomainRef(obj.uuid, obj.name, obj.id), obj.active, obj.persistent,
                           obj.autostart)

    # --- definitions --------------------------------------------------------
    def _parse_domain(self, xml: str) -> DomainXML:
        dom = DomainXML.from_xml(xml)
        schema.validate(dom.element, "domain")
        existing = self.state.domains_by_name.get(dom.name or "")
        if not dom.uuid and existing is not None:
            dom.uuid = existing.uuid  # a redefinition by name keeps its identity
        defaults.fill_domain(dom, rng=self.state.rng, used_macs=self.state.macs)
        dom.element.attrib.pop("id", None)
        return dom

    def _check_identity(self, dom: DomainXML) -> DomainObj | None:
        """The existing object ``dom`` redefines, or None; refuse clashes."""
        st = self.state
        uuid = _canonical_uuid(dom.uuid)
        dom.uuid = uuid
        candidates = [o for o in (st.domains.get(uuid), st.domains_by_name.get(dom.name)) if o]
        return check_identity(candidates, "domain", dom.name, uuid)

    def _add(self, obj: DomainObj) -> None:
        st = self.state
        st.domains[obj.uuid] = obj
        st.domains_by_name[obj.name] = obj
        if obj.id >= 0:
            st.domains_by_id[obj.id] = obj

    def _remove(self, obj: DomainObj) -> None:
        st = self.state
        st.domains.pop(obj.uuid, None)
        st.domains_by_name.pop(obj.name, None)
        st.domains_by_id.pop(obj.id, None)

    def define_domain(self, xml: str) -> DomainRef:
        with self._locked():
            dom = self._parse_domain(xml)
            obj = self._check_identity(dom)
            if obj is None:
                obj = DomainObj(dom.uuid, dom.name, dom)
                obj.metadata_controls = metadata_controls(dom)
                self._add(obj)
                detail = DefinedDetail.ADDED
            else:
                if obj.active and obj.live is None:
                    obj.live = obj.config  # the running definition stays as it was
                if not obj.active:
                    obj.profile = None
                obj.config = dom
                obj.metadata_controls = metadata_controls(dom)
                detail = DefinedDetail.UPDATED
            self._queue_event(obj, LifecycleEvent.DEFINED, detail)
            return DomainRef(obj.uuid, obj.name, obj.id)

    def create_domain(self, xml: str) -> DomainRef:
        with self._locked():
            dom = self._parse_domain(xml)
            obj = self._check_identity(dom)
            if obj is not None and obj.active:
                raise OperationInvalid(f"domain '{obj.name}' is already running")
            if obj is None:
                obj = DomainObj(dom.uuid, dom.name, None, live=dom)
                self._add(obj)
            else:
                obj.live = dom
            obj.metadata_controls = metadata_controls(dom)
            self._start(obj, RunningReason.BOOTED)
            return DomainRef(obj.uuid, obj.name, obj.id)

    # --- state machine ------------------------------------------------------
    def _start(self, obj: DomainObj, reason: int) -> None:
        st = self.state
        obj.id = st.next_id
        st.next_id += 1
        st.domains_by_id[obj.id] = obj
        obj.state, obj.reason = DomainState.RUNNING, reason
        obj.run_base, obj.run_started = 0.0, st.clock.now()
        obj.profile = None
        self._assign_nic_targets(obj)
        self._queue_event(obj, LifecycleEvent.STARTED, StartedDetail.BOOTED)

    def _assign_nic_targets(self, obj: DomainObj) -> None:
        """Give interfaces without a target a ``vnetN`` name, as libvirt does."""
        taken = self.state.nic_targets
        if all(i.target_dev for i in obj.current().interfaces):
            taken.update(i.target_dev for i in obj.current().interfaces)
            return
        for iface in obj.own_live().interfaces:
            if not iface.target_dev:
                while f"vnet{self.state.next_vnet}" in taken:
                    self.state.next_vnet += 1
                iface.target_dev = f"vnet{self.state.next_vnet}"
            taken.add(iface.target_dev)

    def _stop(self, obj: DomainObj, reason: ShutoffReason, detail: StoppedDetail) -> None:
        st = self.state
        self._queue_event(obj, LifecycleEvent.STOPPED, detail)
        st.domains_by_id.pop(obj.id, None)
        st.nic_targets.difference_update(i.target_dev for i in obj.current().interfaces)
        obj.id = -1
        obj.state, obj.reason = DomainState.SHUTOFF, int(reason)
        obj.run_base, obj.run_started = 0.0, None
        obj.profile = None
        obj.live = None
        if not obj.persistent:
            self._remove(obj)

    def _crash(self, obj: DomainObj) -> None:
        if obj.state not in (DomainState.RUNNING, DomainState.PAUSED):
            return
        if (obj.current().on_crash or "destroy") in ("preserve", "coredump-preserve"):
            obj.run_base = obj.running_seconds(self.state.clock.now())
            obj.run_started = None
            obj.state, obj.reason = DomainState.CRASHED, CrashedReason.PANICKED
            self._queue_event(obj, LifecycleEvent.CRASHED, CrashedDetail.PANICKED)
        else:
            self._queue_event(obj, LifecycleEvent.CRASHED, CrashedDetail.PANICKED)
            self._stop(obj, ShutoffReason.CRASHED, StoppedDetail.CRASHED)

    def domain_lifecycle(self, uuid: str, action: str) -> None:
        with self._locked() as st:
            obj = self._dom(uuid)
            now = st.clock.now()
            if action in ("start", "start_paused"):
                if obj.active:
                    raise OperationInvalid(f"domain '{obj.name}' is already running")
                self._start(obj, RunningReason.BOOTED)
                if action == "start_paused":
                    obj.run_base, obj.run_started = obj.running_seconds(now), None
                    obj.state, obj.reason = DomainState.PAUSED, PausedReason.USER
                    self._queue_event(obj, LifecycleEvent.SUSPENDED, SuspendedDetail.PAUSED)
            elif action == "shutdown":
                self._require(obj, DomainState.RUNNING, "not running")
                self._queue_event(obj, LifecycleEvent.SHUTDOWN, ShutdownDetail.FINISHED)
                self._stop(obj, ShutoffReason.SHUTDOWN, StoppedDetail.SHUTDOWN)
            elif action == "destroy":
                if not obj.active:
                    raise OperationInvalid(f"domain '{obj.name}' is not running")
                self._stop(obj, ShutoffReason.DESTROYED, StoppedDetail.DESTROYED)
            elif action == "suspend":
                self._require(obj, DomainState.RUNNING, "not running")
                obj.run_base, obj.run_started = obj.running_seconds(now), None
                obj.state, obj.reason = DomainState.PAUSED, PausedReason.USER
                self._queue_event(obj, LifecycleEvent.SUSPENDED, SuspendedDetail.PAUSED)
            elif action == "resume":
                self._require(obj, DomainState.PAUSED, "not paused")
                obj.run_started = now
                obj.state, obj.reason = DomainState.RUNNING, RunningReason.UNPAUSED
                self._queue_event(obj, LifecycleEvent.RESUMED, ResumedDetail.UNPAUSED)
            elif action == "reboot":
                self._require(obj, DomainState.RUNNING, "not running")
            elif action == "undefine":
                if not obj.persistent:
                    raise OperationInvalid(f"cannot undefine transient domain '{obj.name}'")
                self._queue_event(obj, LifecycleEvent.UNDEFINED, UndefinedDetail.REMOVED)
                if obj.active:
                    if obj.live is None:
                        obj.live = obj.config
                    obj.config = None
                else:
                    self._remove(obj)
            else:
                raise InvalidArgument(f"unknown domain action '{action}'")

    @staticmethod
    def _require(obj: DomainObj, state: DomainState, wording: str) -> None:
        if obj.state != state:
            raise OperationInvalid(f"domain '{obj.name}' is {wording}")

    # --- XML and facts ------------------------------------------------------
    def domain_xml(self, uuid: str, secure: bool = False, inactive: bool = False) -> str:
        with self._locked():
            obj = self._dom(uuid)
            use_config = inactive and obj.config is not None
            source = obj.config if use_config else obj.current()
            assert source is not None
            element = copy.deepcopy(source.element)
            if obj.active and not use_config:
                attrs = dict(element.attrib)
                element.attrib.clear()
                element.set("type", attrs.pop("type", "test"))
                element.set("id", str(obj.id))
                for key, value in attrs.items():
                    element.set(key, value)
        if not secure:
            for node in element.iter():
                for attr in _SECURE_ATTRS:
                    node.attrib.pop(attr, None)
        return DomainXML(element).to_xml()

    def domain_info(self, uuid: str) -> DomainInfo:
        with self._locked() as st:
            obj = self._dom(uuid)
            dom = obj.current()
            cpu = 0
            if obj.active:
                cpu = self._profile(obj).cpu_time(obj.running_seconds(st.clock.now()))
            return DomainInfo(obj.state, dom.memory_kib, dom.current_memory_kib,
                              dom.active_vcpus, cpu)

    def domain_state(self, uuid: str) -> tuple[DomainState, int]:
        with self._locked():
            obj = self._dom(uuid)
            return obj.state, int(obj.reason)

    def domain_set_autostart(self, uuid: str, autostart: bool) -> None:
        with self._locked():
            obj = self._dom(uuid)
            if not obj.persistent:
                raise OperationInvalid(f"cannot set autostart for transient domain '{obj.name}'")
            obj.autostart = autostart

    def domain_set_memory(self, uuid: str, kib: int) -> None:
        with self._locked():
            obj = self._dom(uuid)
            dom = obj.own_live() if obj.active else obj.current()
            if kib <= 0 or kib > dom.memory_kib:
                raise InvalidArgument(
                    f"cannot set memory of domain '{obj.name}' to {kib} KiB: "
                    f"must be between 1 and the maximum {dom.memory_kib} KiB"
                )
            dom.current_memory_kib = kib
            obj.profile = None

    def domain_set_vcpus(self, uuid: str, count: int) -> None:
        with self._locked():
            obj = self._dom(uuid)
            dom = obj.own_live() if obj.active else obj.current()
            if count < 1 or count > dom.vcpus:
                raise InvalidArgument(
                    f"requested vcpus {count} is out of range for domain '{obj.name}' "
                    f"(1 to {dom.vcpus})"
                )
            dom.vcpus_current = count if count != dom.vcpus else None
            obj.profile = None

    # --- devices ------------------------------------------------------------
    def _device(self, xml: str) -> etree._Element:
        element = parse_xml(xml, what="device XML")
        if element.tag not in _DEVICE_TAGS:
            raise InvalidXML(f"XML error: unknown device type <{element.tag}>")
        return element

    def _target(self, obj: DomainObj) -> DomainXML:
        return obj.own_live() if obj.active else obj.current()

    def domain_attach_device(self, uuid: str, xml: str) -> None:
        with self._locked():
            obj = self._dom(uuid)
            element = self._device(xml)
            dom = self._target(obj)
            probe = DomainXML(etree.fromstring(etree.tostring(dom.element)))
            probe.ensure("devices").append(element)
            schema.validate(probe.element, "domain")
            defaults.fill_domain(probe, rng=self.state.rng, used_macs=self.state.macs)
            if element.tag == "disk":
                target = element.find("target")
                dev = target.get("dev") if target is not None else None
                if dev and sum(1 for d in probe.disks if d.target_dev == dev) > 1:
                    raise OperationFailed(f"target {dev} already exists")
            dom.ensure("devices").append(element)
            obj.profile = None

    def domain_detach_device(self, uuid: str, xml: str) -> None:
        with self._locked():
            obj = self._dom(uuid)
            wanted = self._device(xml)
            dom = self._target(obj)
            devices = dom.find("devices")
            match = None if devices is None else _find_device(devices, wanted)
            if match is None:
                raise OperationFailed(f"device <{wanted.tag}> not found in domain '{obj.name}'")
            devices.remove(match)  # type: ignore[union-attr]
            obj.profile = None

    # --- jobs and stats -----------------------------------------------------
    def domain_job_info(self, uuid: str) -> JobInfo:
        with self._locked() as st:
            obj = self._dom(uuid)
            spec = st.controls.jobs.get(obj.name) or st.controls.jobs.get(obj.uuid)
            if spec is None or not obj.active:
                return JobInfo()
            now = st.clock.now()
            if spec.started is None:
                spec.started = now
            elapsed = max(0.0, now - spec.started)
            done = min(spec.total, int(spec.rate * elapsed))
            if done >= spec.total:
                return JobInfo()
            remaining = spec.total - done
            return JobInfo(
                type=2, operation=spec.operation, time_elapsed_ms=int(elapsed * 1000),
                time_remaining_ms=int(remaining / spec.rate * 1000) if spec.rate else 0,
                data_total=spec.total, data_processed=done, data_remaining=remaining,
            )

    def domain_pin_vcpu(self, uuid: str, vcpu: int, cpuset_text: str, live: bool,
                        config: bool) -> None:
        with self._locked() as st:
            obj = self._dom(uuid)
            live, config = impact.affected(obj.name, obj.active, obj.persistent, live, config)
            what = f"<vcpupin vcpu='{vcpu}'>"
            cpuset.parse_cpuset(cpuset_text, st.node.cpus, what)
            if not 0 <= vcpu < obj.current().vcpus:
                raise InvalidArgument(f"{what}: the domain has no vCPU {vcpu}")
            if live:
                cputune.set_vcpu_pin(obj.own_live(), vcpu, cpuset_text)
            if config:
                assert obj.config is not None
                if obj.active and obj.live is None:
                    obj.live = obj.config  # the running definition stays as it was
                changed = obj.config.copy()
                cputune.set_vcpu_pin(changed, vcpu, cpuset_text)
                obj.config = changed

    def domain_vcpu_info(self, uuid: str) -> list[VcpuInfo]:
        """Simulated: the stats' vCPU times, each vCPU on a CPU of its ``<vcpupin>``."""
        with self._locked() as st:
            obj = self._dom(uuid)
            if not obj.active:
                raise OperationInvalid(f"domain '{obj.name}' is not running")
            host = st.node.cpus
            pins = {int(pin.get("vcpu", -1)): pin.get("cpuset", "")
                    for pin in obj.current().element.iterfind("cputune/vcpupin")}
        stats = self.domain_stats(uuid, ("vcpu",))
        out = []
        for n in range(int(stats.get("vcpu.current", 0))):
            allowed = sorted(cpuset.parse_cpuset(pins[n], host, f"<vcpupin vcpu='{n}'>")
                             if n in pins else range(host))
            out.append(VcpuInfo(n, int(stats.get(f"vcpu.{n}.state", 1)),
                                int(stats.get(f"vcpu.{n}.time", 0)),
                                allowed[n % len(allowed)], tuple(allowed)))
        return out

    def _profile(self, obj: DomainObj) -> simstats.Profile:
        """The domain's stats profile, rebuilt after any change to its definition."""
        if obj.profile is None:
            dom = obj.current()
            devices = simstats.DeviceNames(
                disks=tuple((d.target_dev or f"disk{i}", d.source_path)
                            for i, d in enumerate(dom.disks)),
                nics=tuple(i.target_dev or f"vnet{n}" for n, i in enumerate(dom.interfaces)),
            )
            facts = simstats.Facts(dom.memory_kib, dom.current_memory_kib, dom.vcpus,
                                   dom.active_vcpus)
            obj.profile = simstats.Profile(self.state.controls.seed, obj.uuid, facts, devices)
        return obj.profile

    def _capacity(self, profile: simstats.Profile) -> dict[str, int]:
        """Capacity of each disk backed by a known volume, by the disk's stats name."""
        out = {}
        paths = self.state.volume_paths
        for name, path in profile.devices.disks:
            vol = paths.get(path) if path else None
            if vol is not None:
                out[name] = vol.capacity
        return out

    def _misbehaviour(self, obj: DomainObj) -> tuple[float | None, str | None]:
        """The stall (seconds) and failure message test controls set for ``obj``."""
        controls, meta = self.state.controls, obj.metadata_controls
        if not (controls.stall or controls.fail or meta):
            return None, None
        stall = controls.stall.get(obj.name, controls.stall.get(obj.uuid, meta.get("stall")))
        fail = controls.fail.get(obj.name, controls.fail.get(obj.uuid, meta.get("fail")))
        return stall, fail

    def domain_stats(self, uuid: str, groups: tuple[str, ...]) -> dict[str, Any]:
        st = self.state
        with st.lock:
            obj = self._dom(uuid)
            stall, fail = self._misbehaviour(obj)
            if groups == simstats.STATE_ONLY and not (stall or fail):
                return {"state.state": int(obj.state), "state.reason": int(obj.reason)}
            now = st.clock.now()
            profile = None if groups == simstats.STATE_ONLY else self._profile(obj)
            snap = simstats.Snapshot(
                state=int(obj.state), reason=int(obj.reason), active=obj.active,
                running_seconds=obj.running_seconds(now), now=now,
                capacity=self._capacity(profile) if profile is not None and obj.active
                and st.volume_paths and "block" in groups else {},
            )
        if stall:
            time.sleep(stall)
        if fail:
            raise OperationFailed(f"cannot get stats of domain '{obj.name}': {fail}")
        return simstats.domain_stats(profile, snap, groups)


def _find_device(devices: etree._Element, wanted: etree._Element) -> etree._Element | None:
    """The device in ``devices`` that ``wanted`` names (disk target, NIC MAC, or equal XML)."""
    for candidate in devices.findall(wanted.tag):
        if wanted.tag == "disk":
            w, c = wanted.find("target"), candidate.find("target")
            if w is not None and c is not None and w.get("dev") == c.get("dev"):
                return candidate
        elif wanted.tag == "interface":
            w, c = wanted.find("mac"), candidate.find("mac")
            if w is not None and c is not None and \
                    (w.get("address") or "").lower() == (c.get("address") or "").lower():
                return candidate
        elif etree.tostring(candidate).split() == etree.tostring(wanted).split():
            return candidate
    return None
