"""What a QEMU binary can do, probed once over QMP and cached.

:func:`probe` starts the binary with ``-machine none`` (no guest), asks it over
QMP for its version, machine types (with aliases such as ``pc``), commands,
device and object types, CPU models and whether KVM works, then quits it.
:class:`CapsCache` keeps one JSON file per binary, keyed on its real path,
size and mtime, so a QEMU upgrade is noticed and re-probed. The XML documents
(``capabilities``, ``domcapabilities``) are built from a :class:`QemuCaps`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hvmon.core.errors import OperationFailed, Unsupported

#: where distributions put QEMU besides $PATH
_BINARY_DIRS = ("/usr/bin", "/usr/libexec", "/usr/local/bin")
#: QEMU versions before this get the legacy ``-drive`` syntax (libvirt's own cut-off
#: for -blockdev: 4.2 is the first release whose blockdev-add covers every case)
BLOCKDEV_MIN_VERSION = (4, 2, 0)
#: bumped when the probed data or its interpretation changes: old cache files are re-probed
CACHE_FORMAT = 2  # 2: unusable_cpu_models


@dataclass(frozen=True)
class MachineType:
    """One entry of ``query-machines``."""

    name: str
    alias: str = ""
    is_default: bool = False
    deprecated: bool = False
    cpu_max: int = 0


@dataclass(frozen=True)
class QemuCaps:
    """The probed facts about one QEMU binary (immutable; JSON via to_dict/from_dict)."""

    binary: str
    version: tuple[int, int, int]
    package: str
    arch: str
    machines: tuple[MachineType, ...]
    commands: frozenset[str]
    devices: frozenset[str]
    objects: frozenset[str]
    cpu_models: tuple[str, ...]
    kvm: bool
    accelerators: tuple[str, ...] = ("tcg",)
    #: QEMU's own words when KVM was not usable ("" when it was)
    kvm_reason: str = ""
    #: command-line option groups (``query-command-line-options``: sandbox, vnc, ...)
    options: frozenset[str] = frozenset()
    #: CPU models this host cannot run under the probed accelerator (features missing)
    unusable_cpu_models: frozenset[str] = frozenset()
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    # --- derived facts -------------------------------------------------------

    @property
    def version_number(self) -> int:
        """libvirt's encoding: major * 1,000,000 + minor * 1,000 + micro."""
        major, minor, micro = self.version
        return major * 1_000_000 + minor * 1_000 + micro

    @property
    def version_string(self) -> str:
        return ".".join(str(part) for part in self.version)

    @property
    def blockdev(self) -> bool:
        """``-blockdev`` + ``-device`` usable (else the legacy ``-drive`` syntax)."""
        return "blockdev-add" in self.commands and self.version >= BLOCKDEV_MIN_VERSION

    @property
    def debug_threads(self) -> bool:
        """``-name guest=...,debug-threads=on`` (vCPU thread names) is understood."""
        return self.version >= (2, 5, 0)

    @property
    def sandbox(self) -> bool:
        """``-sandbox`` (seccomp) is built in."""
        return "sandbox" in self.options

    @property
    def default_machine(self) -> MachineType | None:
        return next((m for m in self.machines if m.is_default), None)

    def machine(self, name: str) -> MachineType | None:
        """The machine type called ``name`` (exact name, not alias)."""
        return next((m for m in self.machines if m.name == name), None)

    def has_device(self, name: str) -> bool:
        return name in self.devices

    # --- serialisation -------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "binary": self.binary,
            "version": list(self.version),
            "package": self.package,
            "arch": self.arch,
            "machines": [
                {"name": m.name, "alias": m.alias, "is_default": m.is_default,
                 "deprecated": m.deprecated, "cpu_max": m.cpu_max}
                for m in self.machines
            ],
            "commands": sorted(self.commands),
            "devices": sorted(self.devices),
            "objects": sorted(self.objects),
            "cpu_models": list(self.cpu_models),
            "kvm": self.kvm,
            "accelerators": list(self.accelerators),
            "kvm_reason": self.kvm_reason,
            "options": sorted(self.options),
            "unusable_cpu_models": sorted(self.unusable_cpu_models),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QemuCaps:
        """Rebuild from :meth:`to_dict` output; ValueError/KeyError/TypeError on bad data."""
        version = tuple(int(v) for v in data["version"])
        if len(version) != 3:
            raise ValueError(f"bad version {data['version']!r}")
        machines = tuple(
            MachineType(str(m["name"]), str(m.get("alias", "")), bool(m.get("is_default")),
                        bool(m.get("deprecated")), int(m.get("cpu_max", 0)))
            for m in data["machines"]
        )
        return cls(
            binary=str(data["binary"]),
            version=(version[0], version[1], version[2]),
            package=str(data.get("package", "")),
            arch=str(data["arch"]),
            machines=machines,
            commands=frozenset(str(c) for c in data["commands"]),
            devices=frozenset(str(d) for d in data["devices"]),
            objects=frozenset(str(o) for o in data.get("objects", ())),
            cpu_models=tuple(str(c) for c in data.get("cpu_models", ())),
            kvm=bool(data.get("kvm", False)),
            accelerators=tuple(str(a) for a in data.get("accelerators", ("tcg",))),
            kvm_reason=str(data.get("kvm_reason", "")),
            options=frozenset(str(o) for o in data.get("options", ())),
            unusable_cpu_models=frozenset(str(m) for m in data.get("unusable_cpu_models", ())),
            extra=dict(data.get("extra", {})),
        )


# --- finding and probing binaries ----------------------------------------------


def find_binary(arch: str = "x86_64") -> str:
    """The path of ``qemu-system-ARCH``: $PATH first, then the usual directories."""
    name = f"qemu-system-{arch}"
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(_BINARY_DIRS))
    if found is None and arch == "x86_64":  # RHEL's /usr/libexec/qemu-kvm
        candidate = "/usr/libexec/qemu-kvm"
        found = candidate if os.access(candidate, os.X_OK) else None
    if found is None:
        raise Unsupported(f"no QEMU binary '{name}' found in PATH or {', '.join(_BINARY_DIRS)} "
                          "(Debian: apt-get install qemu-system-x86)")
    return found


def kvm_device_usable(path: str = "/dev/kvm") -> bool:
    """True when this process can open ``/dev/kvm`` read-write."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def probe_argv(binary: str, socket: Path) -> list[str]:
    """The command line of a probe process (no guest, no defaults, QMP on ``socket``)."""
    return [binary, "-S", "-nodefaults", "-no-user-config", "-nographic",
            "-machine", "none,accel=kvm:tcg",
            "-qmp", f"unix:{qemu_escape(str(socket))},server=on,wait=off"]


def qemu_escape(value: str) -> str:
    """Escape a value for QEMU's ``key=value,...`` syntax (``,`` becomes ``,,``)."""
    return value.replace(",", ",,")


def probe(binary: str, workdir: Path, timeout: float = 30.0) -> QemuCaps:
    """Start ``binary`` without a guest, ask it everything over QMP, stop it.

    Any failure (binary missing, QEMU exits, QMP error, timeout) raises
    :class:`OperationFailed` with one line; the process is always killed and
    reaped.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    socket = workdir / "probe.sock"
    log = workdir / "probe.log"
    with contextlib.suppress(FileNotFoundError):
        socket.unlink()
    try:
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                probe_argv(binary, socket), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
            )
    except OSError as exc:
        raise OperationFailed(f"cannot run QEMU binary '{binary}': {exc.strerror or exc}") from None
    try:
        replies = asyncio.run(_query(proc, socket, timeout))
    except OperationFailed as exc:
        raise OperationFailed(f"probing QEMU binary '{binary}' failed: {exc.message}"
                              f"{_log_tail(log)}") from None
    except Exception as exc:  # noqa: BLE001 - qemu.qmp raises many kinds
        raise OperationFailed(f"probing QEMU binary '{binary}' failed: "
                              f"{type(exc).__name__}: {exc}{_log_tail(log)}") from None
    finally:
        _stop(proc)
        with contextlib.suppress(FileNotFoundError):
            socket.unlink()
    try:
        return caps_from_replies(binary, replies, kvm_device=kvm_device_usable())
    except (KeyError, TypeError, ValueError) as exc:
        raise OperationFailed(f"probing QEMU binary '{binary}' failed: unexpected QMP "
                              f"reply ({type(exc).__name__}: {exc})") from None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill the probe process by its PID (if still running) and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, 9)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _log_tail(log: Path) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return f" (QEMU said: {lines[-1][:300]})" if lines else ""


#: (reply key, command, arguments)
_QUERIES: tuple[tuple[str, str, dict[str, Any] | None], ...] = (
    ("version", "query-version", None),
    ("target", "query-target", None),
    ("machines", "query-machines", None),
    ("commands", "query-commands", None),
    ("devices", "qom-list-types", {"implements": "device", "abstract": False}),
    ("objects", "qom-list-types", {"implements": "user-creatable", "abstract": False}),
    ("accels", "qom-list-types", {"implements": "accel", "abstract": False}),
    ("kvm", "query-kvm", None),
    ("options", "query-command-line-options", None),
)


async def _query(proc: subprocess.Popen[bytes], socket: Path, timeout: float) -> dict[str, Any]:
    from qemu.qmp import ExecuteError, QMPClient

    client = QMPClient("hvmon-probe")
    replies: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout):
            await _connect(client, proc, socket)
            for key, command, args in _QUERIES:
                replies[key] = await client.execute(command, args)
            try:
                replies["cpus"] = await client.execute("query-cpu-definitions")
            except ExecuteError:  # not every target has CPU models
                replies["cpus"] = []
            with contextlib.suppress(Exception):
                await client.execute("quit")
    except TimeoutError:
        raise OperationFailed(f"no answer within {timeout:g}s") from None
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()
    return replies


async def _connect(client: Any, proc: subprocess.Popen[bytes], socket: Path) -> None:
    """Connect once the socket exists; fail at once if QEMU exits first."""
    while True:
        if proc.poll() is not None:
            raise OperationFailed(f"QEMU exited with status {proc.returncode}")
        if socket.exists():
            with contextlib.suppress(Exception):  # not listening yet: retry
                await client.connect(str(socket))
                return
        await asyncio.sleep(0.02)


def caps_from_replies(binary: str, replies: dict[str, Any], *, kvm_device: bool) -> QemuCaps:
    """Turn the raw QMP replies of :func:`probe` into a :class:`QemuCaps`."""
    qemu = replies["version"]["qemu"]
    version = (int(qemu["major"]), int(qemu["minor"]), int(qemu["micro"]))
    machines = tuple(
        MachineType(
            name=str(m["name"]), alias=str(m.get("alias", "")),
            is_default=bool(m.get("is-default", False)),
            deprecated=bool(m.get("deprecated", False)), cpu_max=int(m.get("cpu-max", 0)),
        )
        for m in sorted(replies["machines"], key=lambda m: str(m["name"]))
    )
    accel_types = {str(t["name"]) for t in replies.get("accels", [])}
    kvm_reply = replies.get("kvm") or {}
    kvm_enabled = bool(kvm_reply.get("enabled")) and bool(kvm_reply.get("present"))
    kvm = kvm_enabled and kvm_device
    if kvm:
        reason = ""
    elif "kvm-accel" not in accel_types and accel_types:
        reason = "QEMU was built without KVM"
    elif not kvm_device:
        reason = "/dev/kvm cannot be opened"
    else:
        reason = "query-kvm reports KVM disabled"
    return QemuCaps(
        binary=binary,
        version=version,
        package=str(replies["version"].get("package", "")).strip(),
        arch=str(replies["target"]["arch"]),
        machines=machines,
        commands=frozenset(str(c["name"]) for c in replies["commands"]),
        devices=frozenset(str(t["name"]) for t in replies["devices"]),
        objects=frozenset(str(t["name"]) for t in replies["objects"]),
        cpu_models=tuple(sorted(str(c["name"]) for c in replies.get("cpus", []))),
        kvm=kvm,
        accelerators=("kvm", "tcg") if kvm else ("tcg",),
        kvm_reason=reason,
        options=frozenset(str(o["option"]) for o in replies.get("options", []) if o.get("option")),
        unusable_cpu_models=frozenset(str(c["name"]) for c in replies.get("cpus", [])
                                      if c.get("unavailable-features")),
    )


# --- the cache -------------------------------------------------------------------


def _hvmon_version() -> str:
    from hvmon import __version__

    return __version__


class CapsCache:
    """One JSON file per binary under ``cache_dir``, re-probed when the binary changes.

    The key is the binary's real path, size and mtime (ns), hvmon's version and
    the cache format. A missing, unreadable or corrupt file means a new probe,
    never an error. Results are also kept in memory for the process's life.
    """

    def __init__(self, cache_dir: Path, *, timeout: float = 30.0) -> None:
        self.cache_dir = Path(cache_dir)
        self.timeout = timeout
        self.probes = 0  # how many real probes ran (tests and stats read it)
        self._memory: dict[str, tuple[dict[str, Any], QemuCaps]] = {}
        self._lock = threading.Lock()

    def key_for(self, binary: str) -> dict[str, Any]:
        real = os.path.realpath(binary)
        try:
            st = os.stat(real)
        except OSError as exc:
            raise OperationFailed(f"cannot stat QEMU binary '{binary}': "
                                  f"{exc.strerror or exc}") from None
        return {"path": real, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                "hvmon": _hvmon_version(), "format": CACHE_FORMAT}

    def path_for(self, binary: str) -> Path:
        digest = hashlib.sha256(os.path.realpath(binary).encode()).hexdigest()[:24]
        return self.cache_dir / f"{digest}.json"

    def get(self, binary: str) -> QemuCaps:
        """The capabilities of ``binary``: from memory, the cache file, or a new probe."""
        with self._lock:
            key = self.key_for(binary)
            held = self._memory.get(binary)
            if held is not None and held[0] == key:
                return held[1]
            caps = self._load(binary, key)
            if caps is None:
                caps = self._probe(binary)
                self._store(binary, key, caps)
            self._memory[binary] = (key, caps)
            return caps

    def invalidate(self, binary: str) -> None:
        """Forget ``binary`` (memory and file): the next :meth:`get` probes again."""
        with self._lock:
            self._memory.pop(binary, None)
            with contextlib.suppress(OSError):
                self.path_for(binary).unlink()

    def _probe(self, binary: str) -> QemuCaps:
        self.probes += 1
        # a short private directory: the socket path must fit in 107 bytes
        with tempfile.TemporaryDirectory(prefix="hvmon-probe-") as tmp:
            return probe(binary, Path(tmp), self.timeout)

    def _load(self, binary: str, key: dict[str, Any]) -> QemuCaps | None:
        try:
            data = json.loads(self.path_for(binary).read_text())
            if data.get("key") != key:
                return None
            caps = QemuCaps.from_dict(data["caps"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # missing, unreadable or corrupt: probe again
        return caps if caps.binary == binary else None

    def _store(self, binary: str, key: dict[str, Any], caps: QemuCaps) -> None:
        path = self.path_for(binary)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"key": key, "caps": caps.to_dict()}, indent=1))
            os.replace(tmp, path)
        except OSError:  # an unwritable cache directory only costs a probe next time
            with contextlib.suppress(OSError):
                tmp.unlink()


# --- XML documents -----------------------------------------------------------------

#: hvmon's command-line generator handles these (domcapabilities lists them)
DISK_DEVICES = ("disk", "cdrom")
DISK_BUSES = {"virtio": "virtio-blk-pci", "ide": "ide-hd", "sata": "ide-hd", "scsi": "scsi-hd"}
VIDEO_MODELS = {"vga": "VGA", "cirrus": "cirrus-vga", "virtio": "virtio-vga",
                "bochs": "bochs-display", "qxl": "qxl-vga", "none": ""}
NIC_MODELS = {"virtio": "virtio-net-pci", "e1000": "e1000", "e1000e": "e1000e",
              "rtl8139": "rtl8139"}


def _host_facts(host_uuid: str, host_arch: str, cpu_model: str) -> Any:
    """Host facts for ``<capabilities>`` from /proc (one NUMA cell, as /proc tells it)."""
    from hvmon.core.xml.capabilities import HostFacts

    cpus = os.cpu_count() or 1
    vendor = ""
    memory_kib = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("vendor_id"):
                vendor = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
                break
    vendor = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}.get(vendor, vendor or "unknown")
    return HostFacts(uuid=host_uuid, arch=host_arch, model=cpu_model, vendor=vendor,
                     sockets=1, cores=cpus, threads=1, cells=1, memory_kib=memory_kib,
                     cpus=cpus)


def _natural(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting ``pc-i440fx-2.10`` after ``pc-i440fx-2.9``."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p)


def _wordsize(arch: str) -> int:
    return 32 if arch in ("i686", "i386", "armv7l", "ppc", "mips", "mipsel") else 64


def capabilities_xml(caps: QemuCaps, *, host_uuid: str, host_arch: str, cpu_model: str,
                     host: Any = None) -> str:
    """libvirt's ``<capabilities>`` for one QEMU binary.

    One ``<guest>`` (os type ``hvm``) for the binary's architecture listing
    every machine type (aliases with ``canonical='...'``, ``maxCpus``,
    ``deprecated``), domain type ``qemu`` always and ``kvm`` only when KVM is
    usable. ``host`` (a :class:`hvmon.core.xml.capabilities.HostFacts`)
    overrides the facts read from /proc.
    """
    from lxml import etree

    from hvmon.core.xml.capabilities import GuestArch, build_capabilities
    from hvmon.core.xml.parser import parse_xml, to_string

    machines: list[str | tuple[str, str]] = []
    ordered = sorted((m for m in caps.machines if m.name != "none"),
                     key=lambda m: (not m.is_default, not m.alias, _natural(m.name)))
    for m in ordered:
        machines.append(m.name)
        if m.alias:
            machines.append((m.alias, m.name))
    guest = GuestArch("hvm", caps.arch, _wordsize(caps.arch), caps.binary, machines,
                      ["qemu", "kvm"] if caps.kvm else ["qemu"])
    facts = host if host is not None else _host_facts(host_uuid, host_arch, cpu_model)
    root = parse_xml(build_capabilities(facts, [guest]), what="capabilities XML")
    by_name = {m.name: m for m in caps.machines}
    for element in root.iter("machine"):
        m = by_name.get(element.get("canonical") or (element.text or ""))
        if m is None:
            continue
        if m.cpu_max > 0:
            element.set("maxCpus", str(m.cpu_max))
        if m.deprecated:
            element.set("deprecated", "yes")
    for domain in root.iter("domain"):
        if domain.get("type") == "kvm":
            etree.SubElement(domain, "emulator").text = caps.binary
    etree.indent(root, space="  ")
    return to_string(root)


def domcapabilities_xml(caps: QemuCaps, machine: str | None, virt_type: str) -> str:
    """libvirt's ``<domainCapabilities>`` for ``machine`` (alias or name) and ``virt_type``.

    Lists what hvmon can start with this binary: disk devices and buses, NIC,
    video and graphics types, the memory balloon, RNG backends, CPU modes.
    """
    from lxml import etree

    from hvmon.core.drivers.qemu.machine import canonical_machine, machine_family
    from hvmon.core.errors import InvalidArgument
    from hvmon.core.xml.parser import to_string

    if virt_type not in ("qemu", "kvm"):
        raise InvalidArgument(f"virtualization type '{virt_type}' is not supported by the "
                              "QEMU driver (use qemu or kvm)")
    if virt_type == "kvm" and not caps.kvm:
        raise Unsupported(f"KVM is not usable with {caps.binary} on this host "
                          f"({caps.kvm_reason or 'unknown reason'}); use virt type 'qemu'")
    canonical = canonical_machine(machine, caps)
    info = caps.machine(canonical)
    family = machine_family(canonical)

    root = etree.Element("domainCapabilities")

    def sub(parent: Any, tag: str, text: str | None = None, **attrs: str) -> Any:
        element = etree.SubElement(parent, tag, attrs)
        element.text = text
        return element

    def enum(parent: Any, name: str, values: list[str]) -> None:
        holder = sub(parent, "enum", name=name)
        for value in values:
            sub(holder, "value", value)

    sub(root, "path", caps.binary)
    sub(root, "domain", virt_type)
    sub(root, "machine", canonical)
    sub(root, "arch", caps.arch)
    sub(root, "vcpu", max=str(info.cpu_max if info and info.cpu_max else 1))
    sub(root, "iothreads", supported="yes" if "iothread" in caps.objects else "no")
    os_el = sub(root, "os", supported="yes")
    enum(os_el, "firmware", ["bios"])
    cpu = sub(root, "cpu")
    sub(cpu, "mode", name="host-passthrough",
        supported="yes" if virt_type == "kvm" else "no")
    sub(cpu, "mode", name="maximum", supported="yes" if "max" in caps.cpu_models else "no")
    custom = sub(cpu, "mode", name="custom", supported="yes" if caps.cpu_models else "no")
    for model in caps.cpu_models:
        if model not in ("host", "max", "base"):
            usable = "no" if model in caps.unusable_cpu_models else "yes"
            sub(custom, "model", model, usable=usable if virt_type == "kvm" or not caps.kvm
                else "unknown")

    devices = sub(root, "devices")
    disk = sub(devices, "disk", supported="yes")
    enum(disk, "diskDevice", list(DISK_DEVICES))
    buses = [bus for bus, dev in DISK_BUSES.items() if caps.has_device(dev)]
    if family == "q35":
        buses = [b for b in buses if b != "ide"]
    elif "sata" in buses and not caps.has_device("ich9-ahci"):
        buses.remove("sata")
    enum(disk, "bus", buses)
    graphics = sub(devices, "graphics", supported="yes")
    enum(graphics, "type", ["vnc"])
    video = sub(devices, "video", supported="yes")
    enum(video, "modelType",
         [m for m, dev in VIDEO_MODELS.items() if not dev or caps.has_device(dev)])
    sub(devices, "hostdev", supported="no")
    rng = sub(devices, "rng", supported="yes" if caps.has_device("virtio-rng-pci") else "no")
    enum(rng, "model", ["virtio"])
    enum(rng, "backendModel", ["random"] if "rng-random" in caps.objects else [])
    iface = sub(devices, "interface", supported="yes")
    enum(iface, "backendType", ["default"])
    enum(iface, "type", ["user"])
    enum(iface, "model", [m for m, dev in NIC_MODELS.items() if caps.has_device(dev)])
    sub(devices, "memballoon", supported="yes" if caps.has_device("virtio-balloon-pci") else "no")

    features = sub(root, "features")
    sub(features, "gic", supported="no")
    sub(features, "vmcoreinfo", supported="yes" if caps.has_device("vmcoreinfo") else "no")
    sub(features, "genid", supported="yes" if caps.has_device("vmgenid") else "no")
    sub(features, "backingStoreInput", supported="yes" if caps.blockdev else "no")
    sub(features, "backup", supported="no")
    sub(features, "sev", supported="no")
    etree.indent(root, space="  ")
    return to_string(root)
