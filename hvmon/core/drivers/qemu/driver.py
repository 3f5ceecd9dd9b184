"""The QEMU/KVM driver: real ``qemu-system-x86_64`` guests (``qemu:///system``,
``qemu:///session``, ``qemu:///embed?root=DIR``).

Definitions live in ``etc/qemu`` under the driver's root, running domains in
status files under ``run/qemu`` (see :mod:`.paths`); opening the driver
reattaches to every QEMU a previous instance left running. Closing it leaves
the guests running, as restarting libvirtd does.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from hvmon.core.cpuset import parse_cpuset
from hvmon.core.drivers import host, impact
from hvmon.core.drivers.base import DomainRef, Driver, Listing
from hvmon.core.drivers.qemu import process, stats
from hvmon.core.drivers.qemu.addresses import assign_addresses
from hvmon.core.drivers.qemu.aliases import assign_aliases
from hvmon.core.drivers.qemu.caps import (
    CapsCache,
    QemuCaps,
    capabilities_xml,
    domcapabilities_xml,
    find_binary,
)
from hvmon.core.drivers.qemu.hotplug import Hotplug, find_device, parse_device
from hvmon.core.drivers.qemu.isolation import pinning
from hvmon.core.drivers.qemu.isolation.hook import isolation_hook
from hvmon.core.drivers.qemu.lifecycle import Lifecycle, Options
from hvmon.core.drivers.qemu.locks import LockMixin
from hvmon.core.drivers.qemu.machine import canonical_machine
from hvmon.core.drivers.qemu.migration import MigrationOps
from hvmon.core.drivers.qemu.networks.part import NetworkPart
from hvmon.core.drivers.qemu.paths import paths_for
from hvmon.core.drivers.qemu.registry import Registry
from hvmon.core.drivers.qemu.secrets import SecretMixin
from hvmon.core.drivers.qemu.state import QemuDomain
from hvmon.core.drivers.qemu.storage import StorageMixin
from hvmon.core.errors import InvalidArgument, NoConnect, OperationInvalid
from hvmon.core.events import DefinedDetail, EventBus, LifecycleEvent, UndefinedDetail
from hvmon.core.types import DomainInfo, DomainState, NodeInfo, VcpuInfo
from hvmon.core.uri import ConnectURI
from hvmon.core.xml import cputune, defaults, schema
from hvmon.core.xml.domain import Domain as DomainXML

_SECURE_ATTRS = ("passwd",)
_OPTION_KEYS = {"shutdown_timeout", "reboot_timeout", "start_timeout", "monitor_timeout"}
_TEXT_OPTIONS = {"migration_address", "cpu_models"}


def parse_options(query: dict[str, str]) -> Options:
    """Driver options from the URI query; NoConnect names a bad one."""
    values: dict[str, Any] = {}
    known = sorted({"root", "netns", *_OPTION_KEYS, *_TEXT_OPTIONS})
    for key, text in query.items():
        if key in ("root", "netns"):  # netns: see the networks part
            continue
        if key in _TEXT_OPTIONS:
            values[key] = tuple(m for m in text.split(",") if m) if key == "cpu_models" \
                else text
            continue
        if key not in _OPTION_KEYS:
            raise NoConnect(f"unknown qemu driver option '{key}' (known: {', '.join(known)})")
        try:
            values[key] = float(text)
        except ValueError:
            raise NoConnect(f"qemu driver option {key}={text!r} is not a number") from None
        if values[key] < 0:
            raise NoConnect(f"qemu driver option {key} must be >= 0")
    return Options(**values)


class QemuDriver(StorageMixin, SecretMixin, LockMixin, MigrationOps, NetworkPart, Driver):
    """Domains backed by QEMU processes on this host."""

    name = "qemu"
    stats_workers = 4  # mostly waiting on QMP sockets and /proc

    def __init__(self, uri: ConnectURI) -> None:
        Driver.__init__(self)
        self._uri = uri
        self.paths = paths_for(uri)
        options = parse_options(uri.query)
        self.paths.create()
        self._lock_fd = self.paths.lock()
        self.binary = find_binary()
        self._caps_cache = CapsCache(self.paths.cache / "capabilities")
        self._caps: QemuCaps | None = None
        self.events = EventBus()
        self.registry = Registry(self.paths, self.events)
        self.options = options
        self.lifecycle = Lifecycle(self.registry, self.paths, self.caps, options)
        self.hotplug = Hotplug(self.lifecycle.execute, self.registry.macs)
        self.lifecycle.on_device_deleted = self.hotplug.device_deleted
        self.lifecycle.hooks.append(self.network_hook())
        self.lifecycle.hooks.append(self.storage_hook())
        self.locks = self.lock_hook()
        self.lifecycle.hooks.append(self.locks)
        self.isolation = isolation_hook(self.paths, system=uri.path == "/system",
                                        known=lambda uuid: uuid in self.registry.domains)
        self.tap_owner = self.isolation.tap_owner  # taps belong to the guest's QEMU user
        self.lifecycle.hooks.append(self.isolation)
        self._load()

    # --- set-up ---------------------------------------------------------------------
    def caps(self) -> QemuCaps:
        """The probed capabilities of the emulator (cached on disk by path, size, mtime)."""
        if self._caps is None:
            self._caps = self._caps_cache.get(self.binary)
        return self._caps

    def _load(self) -> None:
        registry = self.registry
        with registry.locked():
            for xml in registry.load_configs():
                if xml.uuid in registry.domains:
                    continue
                dom = QemuDomain(xml.uuid, xml.name, xml)
                dom.autostart = self.paths.autostart_marker(xml.name).exists()
                registry.domains[dom.uuid] = dom
                registry.macs.update(i.mac.lower() for i in xml.interfaces if i.mac)
            for path in sorted(self.paths.run.glob("*.status.json")):
                status = process.read_status(path)
                if status is None:
                    continue
                dom = registry.domains.get(status.uuid)
                if dom is None:
                    if not status.transient:
                        path.unlink(missing_ok=True)
                        continue
                    dom = QemuDomain(status.uuid, status.name, None)
                    registry.domains[dom.uuid] = dom
                if not self.lifecycle.reattach(dom, status) and dom.config is None:
                    registry.domains.pop(dom.uuid, None)

    def close(self) -> None:
        self.lifecycle.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    # --- host -------------------------------------------------------------------------
    def uri(self) -> str:
        return self._uri.raw

    def hostname(self) -> str:
        return socket.gethostname()

    def node_info(self) -> NodeInfo:
        return host.node_info()

    def node_free_memory(self) -> int:
        return host.free_memory()

    def hypervisor_version(self) -> int:
        return self.caps().version_number

    def capabilities_xml(self) -> str:
        return capabilities_xml(self.caps(), host_uuid=host.host_uuid(),
                                host_arch=self.caps().arch, cpu_model=host.cpu_model())

    def domain_capabilities_xml(self, machine: str | None, virt_type: str | None) -> str:
        caps = self.caps()
        kind = virt_type or ("kvm" if caps.kvm else "qemu")
        if kind not in ("kvm", "qemu"):
            raise InvalidArgument(f"virt type '{kind}' is not served by the qemu driver "
                                  "(kvm, qemu)")
        if kind == "kvm" and not caps.kvm:
            raise InvalidArgument("virt type 'kvm' is not usable on this host (no usable "
                                  "/dev/kvm)")
        return domcapabilities_xml(caps, canonical_machine(machine, caps), kind)

    # --- domains: listing and lookup ---------------------------------------------------
    def list_domains(self) -> list[Listing]:
        with self.registry.locked():
            return [dom.listing() for dom in self.registry.domains.values()]

    def lookup_domain(self, by: str, value: str | int) -> DomainRef:
        return self.registry.find(by, value).ref()

    def domain_ref(self, uuid: str) -> DomainRef:
        with self.registry.locked():
            return self.registry.get(uuid).ref()

    def domain_flags(self, uuid: str) -> Listing:
        with self.registry.locked():
            return self.registry.get(uuid).listing()

    def domain_state(self, uuid: str) -> tuple[DomainState, int]:
        with self.registry.locked():
            dom = self.registry.get(uuid)
            return dom.state, int(dom.reason)

    def domain_info(self, uuid: str) -> DomainInfo:
        with self.registry.locked():
            dom = self.registry.get(uuid)
            definition, pid = dom.current(), dom.pid if dom.active else 0
            state = dom.state
        ticks = process.cpu_ticks(pid) if pid else None
        cpu = sum(ticks) * process.TICK_NS if ticks else 0
        return DomainInfo(state, definition.memory_kib, definition.current_memory_kib,
                          definition.active_vcpus, cpu)

    def domain_xml(self, uuid: str, secure: bool = False, inactive: bool = False) -> str:
        with self.registry.locked():
            dom = self.registry.get(uuid)
            source = dom.config if inactive and dom.config is not None else dom.current()
            copy = source.copy()
            if dom.active and source is dom.live:
                attrs = dict(copy.element.attrib)
                copy.element.attrib.clear()
                copy.element.set("type", attrs.pop("type", "qemu"))
                copy.element.set("id", str(dom.id))
                for key, value in attrs.items():
                    copy.element.set(key, value)
        if not secure:
            for node in copy.element.iter():
                for attr in _SECURE_ATTRS:
                    node.attrib.pop(attr, None)
        return copy.to_xml()

    # --- domains: definitions -------------------------------------------------------
    def _parse(self, xml: str) -> DomainXML:
        dom = DomainXML.from_xml(xml)
        schema.validate(dom.element, "domain")
        if dom.type not in ("qemu", "kvm"):
            raise InvalidArgument(f"domain type '{dom.type}' is not served by the qemu "
                                  "driver (use 'kvm' or 'qemu')")
        existing = next((d for d in self.registry.domains.values() if d.name == dom.name), None)
        if not dom.uuid and existing is not None:
            dom.uuid = existing.uuid  # a redefinition by name keeps its identity
        defaults.fill_domain(dom, used_macs=self.registry.macs)
        dom.element.attrib.pop("id", None)
        for alias in dom.element.iterfind("devices/*/alias"):  # live-only names
            alias.getparent().remove(alias)
        caps = self.caps()
        machine = canonical_machine(dom.machine, caps)  # the stable ABI: stored versioned
        dom.machine = machine
        if not dom.arch:
            dom.arch = caps.arch
        if not dom.emulator:
            dom.ensure("devices/emulator").text = caps.binary
        assign_addresses(dom, machine)
        return dom

    def define_domain(self, xml: str) -> DomainRef:
        with self.registry.locked():
            parsed = self._parse(xml)
            dom = self.registry.identity(parsed)
            if dom is None:
                dom = QemuDomain(parsed.uuid, parsed.name, parsed)
                self.registry.domains[dom.uuid] = dom
                detail = DefinedDetail.ADDED
            else:
                dom.config = parsed
                detail = DefinedDetail.UPDATED
            self.registry.save_config(dom)
            self.registry.queue_event(dom, LifecycleEvent.DEFINED, detail)
            return dom.ref()

    def create_domain(self, xml: str) -> DomainRef:
        with self.registry.locked():
            parsed = self._parse(xml)
            dom = self.registry.identity(parsed)
            if dom is not None and dom.active:
                raise OperationInvalid(f"domain '{dom.name}' is already running")
            added = dom is None
            if dom is None:
                dom = QemuDomain(parsed.uuid, parsed.name, None)
                self.registry.domains[dom.uuid] = dom
            try:
                self._start(dom, parsed)
            except BaseException:
                if added:
                    self.registry.domains.pop(dom.uuid, None)
                raise
            return dom.ref()

    def _start(self, dom: QemuDomain, definition: DomainXML, paused: bool = False) -> None:
        live = definition.copy()
        assign_aliases(live)
        self.lifecycle.start(dom, live, paused=paused)

    # --- domains: lifecycle -----------------------------------------------------------
    def domain_lifecycle(self, uuid: str, action: str) -> None:
        if action in ("shutdown",):  # waits for the guest: not under the registry lock
            with self.registry.locked():
                dom = self.registry.get(uuid)
            self.lifecycle.shutdown(dom)
            return
        with self.registry.locked():
            dom = self.registry.get(uuid)
            if action in ("start", "start_paused"):
                if dom.active:
                    raise OperationInvalid(f"domain '{dom.name}' is already running")
                assert dom.config is not None  # a transient domain is always active
                self._start(dom, dom.config, paused=action == "start_paused")
            elif action == "destroy":
                self.lifecycle.destroy(dom)
            elif action == "suspend":
                self.lifecycle.suspend(dom)
            elif action == "resume":
                self.lifecycle.resume(dom)
            elif action == "reboot":
                self.lifecycle.reboot(dom)
            elif action == "undefine":
                self._undefine(dom)
            else:
                raise InvalidArgument(f"unknown domain action '{action}'")

    def _undefine(self, dom: QemuDomain) -> None:
        if dom.config is None:
            raise OperationInvalid(f"cannot undefine transient domain '{dom.name}'")
        self.registry.remove_config(dom)
        self.registry.queue_event(dom, LifecycleEvent.UNDEFINED, UndefinedDetail.REMOVED)
        dom.config, dom.autostart = None, False
        if dom.active:
            self.lifecycle.save_status(dom)  # now transient: keep it across a restart
        else:
            self.registry.domains.pop(dom.uuid, None)
            self.isolation.forget(dom.uuid)  # its uid from user_range (running: at stop)

    def domain_set_autostart(self, uuid: str, autostart: bool) -> None:
        with self.registry.locked():
            dom = self.registry.get(uuid)
            if dom.config is None:
                raise OperationInvalid(f"cannot set autostart for transient domain "
                                       f"'{dom.name}'")
            self.registry.set_autostart(dom, autostart)

    def domain_set_memory(self, uuid: str, kib: int) -> None:
        """The balloon target of a running domain, else the definition's currentMemory."""
        with self.registry.locked():
            dom = self.registry.get(uuid)
            definition = dom.current()
            if not 0 < kib <= definition.memory_kib:
                raise InvalidArgument(f"memory {kib} KiB is outside 1..{definition.memory_kib} "
                                      f"KiB (the domain's maximum)")
            if dom.active:
                self.lifecycle.execute(dom, "balloon", {"value": kib * 1024})
                definition.current_memory_kib = kib
                self.lifecycle.save_status(dom)
            else:
                definition.current_memory_kib = kib
                self.registry.save_config(dom)

    def domain_core_dump(self, uuid: str, path: str) -> None:
        """QMP ``dump-guest-memory`` to ``path`` (ELF, no paging: what ``crash`` reads)."""
        if not path.startswith("/"):
            raise InvalidArgument(f"dump file '{path}' must be an absolute path")
        with self.registry.locked():
            dom = self.registry.get(uuid)
            if not dom.active:
                raise OperationInvalid(f"domain '{dom.name}' is not running")
        dom_monitor = dom.monitor
        if dom_monitor is None:
            raise OperationInvalid(f"domain '{dom.name}' is not running")
        timeout = max(60.0, dom.current().memory_kib / 1024 / 50)  # >= 50 MiB/s
        dom_monitor.execute("dump-guest-memory", {"paging": False, "protocol": f"file:{path}",
                                                  "format": "elf"}, timeout)

    def domain_attach_device(self, uuid: str, xml: str) -> None:
        """Hot-plug into a running domain; add to the definition of an inactive one."""
        element = parse_device(xml)
        with self.registry.locked():
            dom = self.registry.get(uuid)
            if dom.active:
                token = self.locks.extend(dom, element) if element.tag == "disk" else ""
                try:  # an isolated guest's QEMU can open the disk once it is its user's
                    handed = self.isolation.hand_over(dom, element) \
                        if element.tag == "disk" else []
                except BaseException:
                    self.locks.undo(dom, token)
                    raise
                try:
                    self.hotplug.attach(dom, element, self.caps())
                except BaseException:
                    self.isolation.take_back(dom, handed)
                    self.locks.undo(dom, token)
                    raise
                self.lifecycle.save_status(dom)
                return
            assert dom.config is not None
            config = dom.config.copy()
            if find_device(config, element) is not None:
                raise InvalidArgument(f"domain '{dom.name}' already has this <{element.tag}>")
            config.ensure("devices").append(element)
            defaults.fill_domain(config, used_macs=self.registry.macs)
            assign_addresses(config, config.machine)
            dom.config = config
            self.registry.save_config(dom)

    def domain_detach_device(self, uuid: str, xml: str) -> None:
        """Hot-unplug (waits for the guest to release it); remove from an inactive definition."""
        element = parse_device(xml)
        with self.registry.locked():
            dom = self.registry.get(uuid)
            if not dom.active:
                assert dom.config is not None
                config = dom.config.copy()
                device = find_device(config, element)
                if device is None:
                    raise InvalidArgument(f"domain '{dom.name}' has no matching "
                                          f"<{element.tag}>")
                device.getparent().remove(device)
                dom.config = config
                self.registry.save_config(dom)
                return
            done = self.hotplug.request_detach(dom, element,
                                               lambda: self.lifecycle.save_status(dom))
        self.hotplug.wait(dom, done, f"<{element.tag}>")

    def domain_set_vcpus(self, uuid: str, count: int) -> None:
        """vCPUs online: hot-plugged into a running guest (up to its maximum), else the
        count an inactive domain boots with."""
        with self.registry.locked():
            dom = self.registry.get(uuid)
            definition = dom.current()
            if not 1 <= count <= definition.vcpus:
                raise InvalidArgument(f"vCPU count {count} is outside 1..{definition.vcpus} "
                                      "(the domain's maximum)")
            if dom.active:
                self.hotplug.set_vcpus(dom, count)
                definition.ensure("vcpu").set("current", str(count))
                self.lifecycle.save_status(dom)
                return
            assert dom.config is not None
            config = dom.config.copy()
            config.ensure("vcpu").set("current", str(count))
            dom.config = config
            self.registry.save_config(dom)

    # --- statistics -------------------------------------------------------------------
    def domain_stats(self, uuid: str, groups: tuple[str, ...]) -> dict[str, Any]:
        with self.registry.locked():
            dom = self.registry.get(uuid)
        return stats.domain_stats(dom, groups, lambda cmd, args: self.lifecycle.execute(
            dom, cmd, args))

    def domain_pin_vcpu(self, uuid: str, vcpu: int, cpuset: str, live: bool,
                        config: bool) -> None:
        """sched_setaffinity on the vCPU's thread (live) and/or ``<vcpupin>`` (config)."""
        with self.registry.locked():
            dom = self.registry.get(uuid)
            live, config = impact.affected(dom.name, dom.active, dom.config is not None,
                                           live, config)
            what = f"<vcpupin vcpu='{vcpu}'>"
            cpus = set(parse_cpuset(cpuset, os.cpu_count() or 1, what))
            if not 0 <= vcpu < dom.current().vcpus:
                raise InvalidArgument(f"{what}: the domain has no vCPU {vcpu}")
            if live:
                pinning.pin_vcpu(vcpu, cpus, lambda cmd, args: self.lifecycle.execute(
                    dom, cmd, args))
                assert dom.live is not None
                cputune.set_vcpu_pin(dom.live, vcpu, cpuset)
                self.lifecycle.save_status(dom)
            if config:
                assert dom.config is not None
                changed = dom.config.copy()
                cputune.set_vcpu_pin(changed, vcpu, cpuset)
                dom.config = changed
                self.registry.save_config(dom)

    def domain_vcpu_info(self, uuid: str) -> list[VcpuInfo]:
        with self.registry.locked():
            dom = self.registry.get(uuid)
        return stats.vcpu_info(dom, lambda cmd, args: self.lifecycle.execute(dom, cmd, args))

    # --- helpers for tests and the daemon ----------------------------------------------
    def running_pids(self) -> dict[str, int]:
        """Name -> QEMU pid of every running domain."""
        with self.registry.locked():
            return {d.name: d.pid for d in self.registry.domains.values() if d.active}
