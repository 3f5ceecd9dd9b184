"""The QEMU command line for a domain, in the best practice the probed QEMU allows.

Rules (libvirt's): no defaults (``-nodefaults``, ``-no-user-config``), every
device created explicitly with ``-device`` and an id (the ``<alias>`` of the
live XML, libvirt's names: ``virtio-disk0``, ``net0``/``hostnet0``,
``balloon0``, ``serial0``/``charserial0``), at the PCI address stored in the
XML. Disks use ``-blockdev`` (a protocol node ``libvirt-N-storage`` and a
format node ``libvirt-N-format``) when :attr:`QemuCaps.blockdev`, else the
legacy ``-drive ...,if=none,id=drive-ALIAS``. The guest starts stopped
(``-S``); the caller sends ``cont``. Secrets (the VNC password) never appear
here: the caller sets them over QMP. Values given by the user are escaped for
QEMU's ``key=value`` syntax (``,`` becomes ``,,``).

Anything in the XML this generator cannot honour is refused with one line
(:class:`Unsupported` or :class:`InvalidArgument`) instead of being ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from hvmon.core.drivers.qemu.addresses import bus_id, pci_address_of
from hvmon.core.drivers.qemu.caps import NIC_MODELS, VIDEO_MODELS, QemuCaps, qemu_escape
from hvmon.core.drivers.qemu.machine import canonical_machine, machine_family
from hvmon.core.errors import InvalidArgument, Unsupported
from hvmon.core.xml.domain import Domain

#: the seccomp sandbox libvirt uses by default
SANDBOX = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
#: default NIC model (libvirt's default on x86 is rtl8139; virtio is the fast choice)
DEFAULT_NIC_MODEL = "rtl8139"
_FORMATS = ("raw", "qcow2", "qed", "vmdk", "vdi", "vpc", "vhdx")
_CACHE_MODES = {  # <driver cache> -> (cache.direct, cache.no-flush)
    "default": (False, False), "writeback": (False, False), "none": (True, False),
    "writethrough": (False, False), "directsync": (True, False), "unsafe": (False, True),
}
_USB_CONTROLLERS = {"piix3-uhci": "piix3-usb-uhci", "piix4-uhci": "piix4-usb-uhci",
                    "qemu-xhci": "qemu-xhci", "nec-xhci": "nec-usb-xhci",
                    "ich9-ehci1": "ich9-usb-ehci1"}
_SCSI_CONTROLLERS = {"virtio-scsi": "virtio-scsi-pci", "lsilogic": "lsi53c895a"}
#: devices x86 machines provide themselves: nothing to add to the command line
_IMPLICIT_INPUTS = {("mouse", "ps2"), ("keyboard", "ps2")}
_IGNORED_TAGS = {"emulator", "alias", "console", "audio"}


@dataclass
class DeviceArgs:
    """What starts one device: backends (``-blockdev``/``-netdev``/...) and the ``-device``.

    ``device`` holds QMP ``device_add`` properties (``driver``, ``id``, ...);
    ``blockdevs`` QMP ``blockdev-add`` arguments; ``netdev`` ``netdev_add``
    arguments; ``drive`` a legacy ``-drive`` string; ``chardev``/``objects``
    command-line option strings. The same data serves a cold start and
    hot-plug.
    """

    device: dict[str, Any] | None = None
    blockdevs: list[dict[str, Any]] = field(default_factory=list)
    netdev: dict[str, Any] | None = None
    drive: str = ""
    chardev: str = ""
    objects: list[str] = field(default_factory=list)

    def argv(self) -> list[str]:
        out: list[str] = []
        for obj in self.objects:
            out += ["-object", obj]
        if self.chardev:
            out += ["-chardev", self.chardev]
        for node in self.blockdevs:
            out += ["-blockdev", json.dumps(node, separators=(",", ":"))]
        if self.drive:
            out += ["-drive", self.drive]
        if self.netdev is not None:
            out += ["-netdev", opts_string(self.netdev, first="type")]
        if self.device is not None:
            out += ["-device", opts_string(self.device, first="driver")]
        return out


def opts_string(props: dict[str, Any], first: str | None = None) -> str:
    """QEMU ``key=value,...`` syntax; ``first``'s value leads bare (``virtio-blk-pci,...``)."""
    parts: list[str] = []
    if first is not None and first in props:
        parts.append(qemu_escape(str(props[first])))
    for key, value in props.items():
        if key == first:
            continue
        if isinstance(value, bool):
            text = "on" if value else "off"
        elif isinstance(value, int):
            text = str(value)
        else:
            text = qemu_escape(str(value))
        parts.append(f"{key}={text}")
    return ",".join(parts)


def _alias(device: etree._Element) -> str:
    alias = device.find("alias")
    return alias.get("name", "") if alias is not None else ""


def _with_aliases(dom: Domain) -> Domain:
    """A copy of ``dom`` whose devices all carry ``<alias>`` (existing ones kept)."""
    from hvmon.core.drivers.qemu.aliases import assign_aliases

    live = dom.copy()
    assign_aliases(live)
    return live


def _need_device(caps: QemuCaps, name: str, what: str) -> str:
    if not caps.has_device(name):
        raise Unsupported(f"{what} needs QEMU device '{name}', which {caps.binary} "
                          f"({caps.version_string}) does not provide")
    return name


def _pci_props(device: etree._Element, family: str) -> dict[str, Any]:
    address = pci_address_of(device)
    if address is None:
        return {}
    addr = f"0x{address.slot:x}" + (f".0x{address.function:x}" if address.function else "")
    props: dict[str, Any] = {"bus": bus_id(address, family), "addr": addr}
    element = device.find("address")
    if element is not None and element.get("multifunction") == "on":
        props["multifunction"] = True
    return props


def _disk_index(dev: str) -> int:
    """``vda`` -> 0, ``hdc`` -> 2, ``sdaa`` -> 26 (libvirt's virDiskNameToIndex)."""
    stem = dev
    for prefix in ("xvd", "vd", "hd", "sd", "fd"):
        if dev.startswith(prefix):
            stem = dev[len(prefix):]
            break
    index = 0
    for char in stem:
        if not "a" <= char <= "z":
            raise InvalidArgument(f"invalid disk target '{dev}'")
        index = index * 26 + (ord(char) - ord("a") + 1)
    if index == 0:
        raise InvalidArgument(f"invalid disk target '{dev}'")
    return index - 1


class _Context:
    """What every device builder needs: the domain, the caps and boot order."""

    def __init__(self, dom: Domain, caps: QemuCaps, family: str) -> None:
        self.dom = dom
        self.caps = caps
        self.family = family
        self.devices = dom.find("devices")
        self.boot_order = _boot_indexes(dom)
        #: where the driver wrote this domain's secret files (None: secrets refused)
        self.secrets: Path | None = None

    def bootindex(self, device: etree._Element) -> int | None:
        """The ``bootindex`` of ``device`` (None: not bootable)."""
        return next((order for el, order in self.boot_order if el is device), None)

    def controller(self, kind: str, index: int = 0) -> etree._Element | None:
        if self.devices is None:
            return None
        for ctl in self.devices.findall("controller"):
            if ctl.get("type") == kind and int(ctl.get("index", "0"), 0) == index:
                return ctl
        return None


def _boot_indexes(dom: Domain) -> list[tuple[etree._Element, int]]:
    """(device, bootindex) from ``<boot order>`` or ``<os><boot dev>``.

    The list holds the element proxies themselves: lxml keeps one proxy per node
    only while it is referenced, so identity is checked with ``is``.
    """
    devices = dom.find("devices")
    result: list[tuple[etree._Element, int]] = []
    if devices is None:
        return result
    per_device = [(d, d.find("boot")) for d in devices if isinstance(d.tag, str)]
    explicit = [(d, b) for d, b in per_device if b is not None]
    os_boot = dom.element.findall("os/boot")
    if explicit and os_boot:
        raise InvalidArgument("per-device <boot order> cannot be combined with <os><boot dev>")
    if explicit:
        for device, boot in explicit:
            try:
                result.append((device, int(boot.get("order", ""))))
            except ValueError:
                raise InvalidArgument(f"invalid boot order '{boot.get('order')}'") from None
        return result
    order = 1
    for boot in os_boot:
        dev = boot.get("dev", "")
        candidates: Iterable[etree._Element]
        if dev == "hd":
            candidates = (d for d in devices.findall("disk") if d.get("device", "disk") == "disk")
        elif dev == "cdrom":
            candidates = (d for d in devices.findall("disk") if d.get("device") == "cdrom")
        elif dev == "network":
            candidates = iter(devices.findall("interface"))
        elif dev == "fd":
            raise Unsupported("booting from a floppy is not supported")
        else:
            raise InvalidArgument(f"unknown boot device '{dev}'")
        first = next(iter(candidates), None)
        if first is not None and all(el is not first for el, _ in result):
            result.append((first, order))
            order += 1
    return result


# --- disks -------------------------------------------------------------------------


def disk_args(disk: etree._Element, ctx: _Context, node_index: int) -> DeviceArgs:
    """Backends and ``-device`` of one ``<disk>``; ``node_index`` numbers its nodes."""
    caps = ctx.caps
    alias = _alias(disk)
    kind = disk.get("type", "file")
    device_kind = disk.get("device", "disk")
    target = disk.find("target")
    dev = target.get("dev", "") if target is not None else ""
    bus = (target.get("bus") if target is not None else None) or "virtio"
    label = f"disk '{dev or alias}'"
    if device_kind not in ("disk", "cdrom"):
        raise Unsupported(f"{label}: device '{device_kind}' is not supported (disk, cdrom)")
    if kind not in ("file", "block", "network"):
        raise Unsupported(f"{label}: disk type '{kind}' is not supported yet (file, block, "
                          "network; volume disks are resolved by the driver at start)")
    source = disk.find("source")
    path = ""
    if kind == "network":
        network = network_source(source, label, ctx.secrets, alias)
        path = network.uri
    elif source is not None:
        path = source.get("file" if kind == "file" else "dev") or ""
    if not path and device_kind == "disk":
        raise InvalidArgument(f"{label} has no source {'file' if kind == 'file' else 'dev'}")
    driver = disk.find("driver")
    fmt = (driver.get("type") if driver is not None else None) or "raw"
    if fmt not in _FORMATS:
        raise Unsupported(f"{label}: format '{fmt}' is not supported ({', '.join(_FORMATS)})")
    cache = (driver.get("cache") if driver is not None else None) or "default"
    if cache not in _CACHE_MODES:
        raise InvalidArgument(f"{label}: unknown cache mode '{cache}'")
    readonly = disk.find("readonly") is not None or device_kind == "cdrom"
    direct, no_flush = _CACHE_MODES[cache]

    args = DeviceArgs()
    drive_ref = ""
    luks = disk_luks_secret(disk, label)
    if path:
        if caps.blockdev:
            storage = f"libvirt-{node_index}-storage"
            fmt_node = f"libvirt-{node_index}-format"
            protocol = "file" if kind == "file" else (
                "host_cdrom" if device_kind == "cdrom" else "host_device")
            base: dict[str, Any] = {"driver": protocol, "filename": path, "node-name": storage,
                                    "auto-read-only": True, "discard": "unmap"}
            if kind == "network":
                base = {**network.blockdev, "node-name": storage, "auto-read-only": True,
                        "discard": "unmap"}
                args.objects += network.objects
            if direct or no_flush:
                base["cache"] = {"direct": direct, "no-flush": no_flush}
            fmt_dict: dict[str, Any] = {"node-name": fmt_node, "read-only": readonly,
                                        "driver": fmt, "file": storage}
            if luks:
                secret_id = f"{alias}-luks-secret0"
                args.objects.append(secret_object(secret_id, _need_secrets(ctx, label)))
                if fmt == "raw":
                    fmt_dict.update({"driver": "luks", "key-secret": secret_id})
                elif fmt == "qcow2":
                    fmt_dict["encrypt"] = {"format": "luks", "key-secret": secret_id}
                else:
                    raise Unsupported(f"{label}: LUKS encryption needs format raw or qcow2")
            if direct or no_flush:
                fmt_dict["cache"] = {"direct": direct, "no-flush": no_flush}
            args.blockdevs = [base, fmt_dict]
            drive_ref = fmt_node
        else:
            if luks or (kind == "network" and network.objects):
                raise Unsupported(f"{label}: encrypted or authenticated disks need -blockdev "
                                  f"(QEMU >= 4.2)")
            drive_id = f"drive-{alias}"
            props: dict[str, Any] = {"file": path, "format": fmt, "if": "none", "id": drive_id}
            if readonly:
                props["readonly"] = True
            if device_kind == "cdrom":
                props["media"] = "cdrom"
            if cache != "default":
                props["cache"] = cache
            args.drive = opts_string(props)
            drive_ref = drive_id

    device: dict[str, Any]
    if bus == "virtio":
        if device_kind == "cdrom":
            raise Unsupported(f"{label}: a cdrom cannot be on the virtio bus")
        device = {"driver": _need_device(caps, "virtio-blk-pci", label)}
        device.update(_pci_props(disk, ctx.family))
    elif bus in ("ide", "sata"):
        index = _disk_index(dev)
        name = "ide-cd" if device_kind == "cdrom" else "ide-hd"
        device = {"driver": _need_device(caps, name, label)}
        if bus == "ide":
            if ctx.family != "i440fx":
                raise Unsupported(f"{label}: IDE disks need an i440fx (pc) machine; "
                                  "use bus='sata' on q35")
            if index > 3:
                raise InvalidArgument(f"{label}: IDE has 4 units (hda-hdd)")
            device.update({"bus": f"ide.{index // 2}", "unit": index % 2})
        else:
            if ctx.family != "q35":
                raise Unsupported(f"{label}: SATA disks need a q35 machine; use bus='ide' on pc")
            if index > 5:
                raise InvalidArgument(f"{label}: the q35 SATA controller has 6 ports (sda-sdf)")
            device.update({"bus": f"ide.{index}"})
    elif bus == "scsi":
        ctl = ctx.controller("scsi", 0)
        if ctl is None:
            raise InvalidArgument(f"{label} is on the SCSI bus but the domain has no "
                                  "<controller type='scsi' index='0'>")
        name = "scsi-cd" if device_kind == "cdrom" else "scsi-hd"
        device = {"driver": _need_device(caps, name, label),
                  "bus": f"{_alias(ctl) or 'scsi0'}.0", "channel": 0, "scsi-id": 0,
                  "lun": _disk_index(dev)}
    else:
        raise Unsupported(f"{label}: bus '{bus}' is not supported (virtio, ide, sata, scsi)")
    if drive_ref:
        device["drive"] = drive_ref
    if disk.find("shareable") is not None:
        device["share-rw"] = True  # several guests write it: QEMU's image locking allows it
    device["id"] = alias
    boot = ctx.bootindex(disk)
    if boot is not None:
        device["bootindex"] = boot
    # a read-only disk is a read-only node (QEMU 7.2's virtio-blk-pci has no such property)
    args.device = device
    return args


# --- secrets and network disks -------------------------------------------------------


def secrets_dir(monitor: Path) -> Path:
    """Where the driver writes a domain's secret files for QEMU: beside its QMP socket.

    The run directory is 0700 and the files 0600; QEMU reads each through a
    ``secret`` object (:func:`secret_object`), so no value is on a command line.
    """
    return monitor.with_name(monitor.name.rsplit(".", 1)[0] + ".secrets")


def secret_object(object_id: str, directory: Path) -> str:
    """``-object`` value of a QEMU secret read from ``directory/object_id``."""
    return opts_string({"qom-type": "secret", "id": object_id,
                        "file": str(directory / object_id), "format": "raw"}, first="qom-type")


def _need_secrets(ctx: _Context, label: str) -> Path:
    if ctx.secrets is None:
        raise Unsupported(f"{label}: a disk needing a secret cannot be added this way "
                          "(only at start)")
    return ctx.secrets


def disk_luks_secret(disk: etree._Element, label: str) -> str | None:
    """The secret UUID of a disk's ``<encryption format='luks'>`` (in ``<source>`` or not)."""
    enc = disk.find("source/encryption")
    if enc is None:
        enc = disk.find("encryption")
    if enc is None:
        return None
    if enc.get("format") != "luks":
        raise Unsupported(f"{label}: encryption format '{enc.get('format')}' is not "
                          "supported (luks)")
    secret = enc.find("secret")
    if secret is None or not secret.get("uuid"):
        raise InvalidArgument(f"{label}: <encryption> needs <secret type='passphrase' uuid=.../>")
    return secret.get("uuid")


@dataclass
class NetworkSource:
    """An ``iscsi`` network disk: its URL, blockdev protocol node and secret objects."""

    uri: str
    blockdev: dict[str, Any]
    objects: list[str] = field(default_factory=list)


def network_source(source: etree._Element | None, label: str, secrets: Path | None,
                   alias: str) -> NetworkSource:
    """``<source protocol='iscsi' name='IQN/LUN'><host/>[<initiator>][<auth>]``."""
    if source is None or source.get("protocol") != "iscsi":
        protocol = source.get("protocol") if source is not None else None
        raise Unsupported(f"{label}: disk type 'network' with protocol '{protocol}' is not "
                          "supported (iscsi)")
    iqn, _, lun = (source.get("name") or "").rpartition("/")
    host = source.find("host")
    if not iqn or not lun.isdigit() or host is None or not host.get("name"):
        raise InvalidArgument(f"{label}: an iscsi source needs name='IQN/LUN' and <host name>")
    portal = f"{host.get('name')}:{host.get('port') or 3260}"
    node: dict[str, Any] = {"driver": "iscsi", "transport": "tcp", "portal": portal,
                            "target": iqn, "lun": int(lun)}
    initiator = source.find("initiator/iqn")
    if initiator is not None and initiator.get("name"):
        node["initiator-name"] = initiator.get("name")
    out = NetworkSource(f"iscsi://{portal}/{iqn}/{lun}", node)
    auth = source.find("auth")
    if auth is not None:
        if secrets is None:
            raise Unsupported(f"{label}: an authenticated iscsi disk can only be opened at "
                              "start")
        secret_id = f"{alias}-auth-secret0"
        node["user"] = auth.get("username", "")
        node["password-secret"] = secret_id
        out.objects.append(secret_object(secret_id, secrets))
    return out


# --- other devices --------------------------------------------------------------


def interface_args(iface: etree._Element, ctx: _Context) -> DeviceArgs:
    """``-netdev`` and ``-device`` of one ``<interface>``.

    ``user``: QEMU's user-mode network. ``network`` and ``bridge``: the tap device
    the driver's network part created and named in ``<target dev>``, opened by
    name (``-netdev tap,ifname=...,script=no,downscript=no``).
    """
    kind = iface.get("type", "")
    alias = _alias(iface)
    if kind not in ("user", "network", "bridge"):
        raise Unsupported(f"interface type '{kind}' is not supported yet (user, network, "
                          "bridge)")
    netdev = _interface_backend(iface, kind, f"host{alias}")
    mac_el = iface.find("mac")
    mac = mac_el.get("address", "") if mac_el is not None else ""
    if not mac:
        raise InvalidArgument(f"interface '{alias}' has no MAC address")
    model_el = iface.find("model")
    model = (model_el.get("type") if model_el is not None else None) or DEFAULT_NIC_MODEL
    if model not in NIC_MODELS:
        raise Unsupported(f"NIC model '{model}' is not supported ({', '.join(NIC_MODELS)})")
    hostnet = f"host{alias}"
    device: dict[str, Any] = {"driver": _need_device(ctx.caps, NIC_MODELS[model],
                                                     f"NIC model '{model}'"),
                              "netdev": hostnet, "id": alias, "mac": mac}
    device.update(_pci_props(iface, ctx.family))
    boot = ctx.bootindex(iface)
    if boot is not None:
        device["bootindex"] = boot
    return DeviceArgs(device=device, netdev=netdev)


def _interface_backend(iface: etree._Element, kind: str, hostnet: str) -> dict[str, Any]:
    """The ``-netdev`` of a NIC; a tap NIC needs the tap its start hook created."""
    if kind == "user":
        return {"type": "user", "id": hostnet}
    target = iface.find("target")
    tap = target.get("dev", "") if target is not None else ""
    if not tap:
        raise Unsupported(f"interface type '{kind}' needs its tap device in <target dev> "
                          "(created when the driver starts the guest)")
    return {"type": "tap", "id": hostnet, "ifname": tap, "script": "no", "downscript": "no"}


def controller_args(ctl: etree._Element, ctx: _Context) -> DeviceArgs | None:
    kind, model = ctl.get("type", ""), ctl.get("model") or ""
    alias = _alias(ctl)
    label = f"controller type='{kind}'" + (f" model='{model}'" if model else "")
    if kind == "pci":
        if model in ("pci-root", "pcie-root"):
            return None
        if model == "pcie-root-port":
            target = ctl.find("target")
            device = {"driver": _need_device(ctx.caps, "pcie-root-port", label)}
            if target is not None and target.get("port"):
                device["port"] = target.get("port")
            if target is not None and target.get("chassis"):
                device["chassis"] = int(target.get("chassis", "0"), 0)
        elif model == "pcie-to-pci-bridge":
            device = {"driver": _need_device(ctx.caps, "pcie-pci-bridge", label)}
        elif model == "pci-bridge":
            device = {"driver": _need_device(ctx.caps, "pci-bridge", label),
                      "chassis_nr": int(ctl.get("index", "1"), 0)}
        else:
            raise Unsupported(f"{label} is not supported (pcie-root-port, pci-bridge, "
                              "pcie-to-pci-bridge)")
    elif kind == "usb":
        if model == "none":
            return None
        model = model or ("qemu-xhci" if ctx.family == "q35" else "piix3-uhci")
        if model not in _USB_CONTROLLERS:
            raise Unsupported(f"{label} is not supported ({', '.join(_USB_CONTROLLERS)})")
        device = {"driver": _need_device(ctx.caps, _USB_CONTROLLERS[model], label)}
    elif kind == "scsi":
        model = model or "virtio-scsi"
        if model not in _SCSI_CONTROLLERS:
            raise Unsupported(f"{label} is not supported ({', '.join(_SCSI_CONTROLLERS)})")
        device = {"driver": _need_device(ctx.caps, _SCSI_CONTROLLERS[model], label)}
    elif kind == "virtio-serial":
        device = {"driver": _need_device(ctx.caps, "virtio-serial-pci", label)}
    elif kind == "ide" and ctx.family == "i440fx":
        return None  # the PIIX3's own
    elif kind == "sata" and ctx.family == "q35" and ctl.get("index", "0") in ("0", "0x0"):
        return None  # the ICH9's own AHCI
    elif kind == "fdc":
        return None
    else:
        raise Unsupported(f"{label} is not supported on a {ctx.family} machine")
    device["id"] = alias
    device.update(_pci_props(ctl, ctx.family))
    return DeviceArgs(device=device)


def serial_args(serial: etree._Element, ctx: _Context) -> DeviceArgs:
    kind = serial.get("type", "pty")
    alias = _alias(serial)
    target = serial.find("target")
    target_type = (target.get("type") if target is not None else None) or "isa-serial"
    if target_type != "isa-serial":
        raise Unsupported(f"serial target type '{target_type}' is not supported (isa-serial)")
    charid = f"char{alias}"
    source = serial.find("source")
    log = serial.find("log")
    chardev: dict[str, Any]
    if kind == "pty":
        chardev = {"backend": "pty", "id": charid}
    elif kind == "file":
        path = source.get("path", "") if source is not None else ""
        if not path:
            raise InvalidArgument(f"serial '{alias}' of type 'file' needs <source path>")
        chardev = {"backend": "file", "id": charid, "path": path}
        if source is not None and source.get("append") == "on":
            chardev["append"] = True
    elif kind == "null":
        chardev = {"backend": "null", "id": charid}
    elif kind == "unix":
        path = source.get("path", "") if source is not None else ""
        if not path:
            raise InvalidArgument(f"serial '{alias}' of type 'unix' needs <source path>")
        server = source is None or source.get("mode", "bind") == "bind"
        chardev = {"backend": "socket", "id": charid, "path": path, "server": server}
        if server:
            chardev["wait"] = False
    else:
        raise Unsupported(f"serial type '{kind}' is not supported (pty, file, unix, null)")
    if log is not None and log.get("file"):
        chardev["logfile"] = log.get("file")
        chardev["logappend"] = log.get("append", "off") == "on"
    port = target.get("port", "0") if target is not None else "0"
    device = {"driver": _need_device(ctx.caps, "isa-serial", "a serial port"),
              "chardev": charid, "id": alias, "index": int(port)}
    return DeviceArgs(device=device, chardev=opts_string(chardev, first="backend"))


def video_args(video: etree._Element, ctx: _Context, primary: bool) -> DeviceArgs | None:
    model_el = video.find("model")
    model = (model_el.get("type") if model_el is not None else None) or "vga"
    if model == "none":
        return None
    if model not in VIDEO_MODELS:
        raise Unsupported(f"video model '{model}' is not supported ({', '.join(VIDEO_MODELS)})")
    name = VIDEO_MODELS[model]
    if not primary:
        if model != "virtio":
            raise Unsupported(f"a secondary video device must be virtio, not '{model}'")
        name = "virtio-gpu-pci"
    device: dict[str, Any] = {"driver": _need_device(ctx.caps, name, f"video model '{model}'"),
                              "id": _alias(video)}
    if model_el is not None and model in ("qxl", "vga", "bochs") and model_el.get("vram"):
        key = "vgamem_mb" if model == "vga" else ("vram_size" if model == "qxl" else "vgamem")
        vram_kib = int(model_el.get("vram", "0"))
        device[key] = vram_kib // 1024 if key == "vgamem_mb" else vram_kib * 1024
    device.update(_pci_props(video, ctx.family))
    return DeviceArgs(device=device)


def balloon_args(balloon: etree._Element, ctx: _Context) -> DeviceArgs | None:
    model = balloon.get("model", "virtio")
    if model == "none":
        return None
    if model not in ("virtio", "virtio-transitional", "virtio-non-transitional"):
        raise Unsupported(f"memballoon model '{model}' is not supported (virtio, none)")
    device: dict[str, Any] = {"driver": _need_device(ctx.caps, "virtio-balloon-pci",
                                                     "the memory balloon"),
                              "id": _alias(balloon)}
    device.update(_pci_props(balloon, ctx.family))
    return DeviceArgs(device=device)


def rng_args(rng: etree._Element, ctx: _Context) -> DeviceArgs:
    if rng.get("model", "virtio") != "virtio":
        raise Unsupported(f"rng model '{rng.get('model')}' is not supported (virtio)")
    alias = _alias(rng)
    backend = rng.find("backend")
    kind = backend.get("model", "random") if backend is not None else "random"
    objid = f"obj{alias}"
    if kind == "random":
        path = (backend.text or "").strip() if backend is not None else ""
        obj = opts_string({"qom-type": "rng-random", "id": objid,
                           "filename": path or "/dev/urandom"}, first="qom-type")
    elif kind == "builtin":
        obj = opts_string({"qom-type": "rng-builtin", "id": objid}, first="qom-type")
    else:
        raise Unsupported(f"rng backend '{kind}' is not supported (random, builtin)")
    device: dict[str, Any] = {"driver": _need_device(ctx.caps, "virtio-rng-pci", "an RNG"),
                              "rng": objid, "id": alias}
    device.update(_pci_props(rng, ctx.family))
    return DeviceArgs(device=device, objects=[obj])


def input_args(inp: etree._Element, ctx: _Context) -> DeviceArgs | None:
    kind, bus = inp.get("type", ""), inp.get("bus", "ps2")
    if (kind, bus) in _IMPLICIT_INPUTS:
        return None
    if bus == "usb" and kind in ("tablet", "mouse", "keyboard"):
        ctl = ctx.controller("usb", 0)
        if ctl is None or ctl.get("model") == "none":
            raise InvalidArgument(f"USB input '{kind}' needs a USB controller")
        name = {"tablet": "usb-tablet", "mouse": "usb-mouse", "keyboard": "usb-kbd"}[kind]
        device = {"driver": _need_device(ctx.caps, name, f"a USB {kind}"),
                  "id": _alias(inp), "bus": f"{_alias(ctl) or 'usb'}.0"}
        return DeviceArgs(device=device)
    raise Unsupported(f"input type '{kind}' on bus '{bus}' is not supported")


def vnc_args(graphics: etree._Element, vnc_port: int | None) -> list[str]:
    """``-vnc`` on loopback unless the XML names another address; never the password."""
    listen_el = graphics.find("listen")
    listen_type = listen_el.get("type", "address") if listen_el is not None else "address"
    if listen_type == "none":
        return ["-vnc", "none"]
    if listen_type == "socket":
        path = listen_el.get("socket", "") if listen_el is not None else ""
        if not path:
            raise InvalidArgument("VNC listen type 'socket' needs a socket path")
        opts = f"unix:{qemu_escape(path)}"
    elif listen_type == "address":
        address = graphics.get("listen") or (
            listen_el.get("address") if listen_el is not None else None) or "127.0.0.1"
        port = vnc_port
        if port is None:
            raw = graphics.get("port", "-1")
            port = int(raw) if raw.lstrip("-").isdigit() and int(raw) >= 0 else None
        if port is None:
            raise InvalidArgument("VNC graphics need a port: give port= or let the driver "
                                  "pick one (autoport)")
        if not 5900 <= port <= 65535:
            raise InvalidArgument(f"VNC port {port} is out of range (5900-65535)")
        host = f"[{address}]" if ":" in address else address
        opts = f"{qemu_escape(host)}:{port - 5900}"
    else:
        raise Unsupported(f"VNC listen type '{listen_type}' is not supported "
                          "(address, socket, none)")
    if graphics.get("passwd") is not None:
        opts += ",password=on"
    return ["-vnc", opts]


# --- the whole command line ---------------------------------------------------------


def _cpu_args(dom: Domain, caps: QemuCaps, accel: str) -> list[str]:
    cpu = dom.find("cpu")
    if cpu is None:
        return []
    mode = cpu.get("mode", "custom")
    if mode in ("host-passthrough", "host-model"):
        if accel == "kvm":
            return ["-cpu", "host"]
        if mode == "host-passthrough":
            raise Unsupported("CPU mode 'host-passthrough' needs KVM (domain type 'kvm')")
        return ["-cpu", "max"] if "max" in caps.cpu_models else []
    if mode == "maximum":
        return ["-cpu", "max"]
    model_el = cpu.find("model")
    model = (model_el.text or "").strip() if model_el is not None else ""
    if not model:
        return []
    if caps.cpu_models and model not in caps.cpu_models:
        raise InvalidArgument(f"CPU model '{model}' is not known to {caps.binary}")
    return ["-cpu", model]


def _smp_args(dom: Domain, caps: QemuCaps, machine: str) -> list[str]:
    maximum = dom.vcpus
    current = dom.active_vcpus
    if maximum < 1 or current < 1 or current > maximum:
        raise InvalidArgument(f"invalid vCPU count {current} of {maximum}")
    info = caps.machine(machine)
    if info is not None and info.cpu_max and maximum > info.cpu_max:
        raise InvalidArgument(f"{maximum} vCPUs exceed the {info.cpu_max} of machine "
                              f"'{machine}'")
    topo = dom.find("cpu/topology")
    sockets, cores, threads = maximum, 1, 1
    if topo is not None:
        try:
            sockets = int(topo.get("sockets", "1"))
            cores = int(topo.get("cores", "1"))
            threads = int(topo.get("threads", "1"))
        except ValueError:
            raise InvalidArgument("invalid CPU topology") from None
        if sockets * cores * threads != maximum:
            raise InvalidArgument(f"CPU topology {sockets}x{cores}x{threads} does not match "
                                  f"{maximum} vCPUs")
    text = f"{current},maxcpus={maximum},sockets={sockets},cores={cores},threads={threads}"
    return ["-smp", text]


def _memory_args(dom: Domain) -> list[str]:
    kib = dom.memory_kib
    if kib < 1024:
        raise InvalidArgument("domain memory must be at least 1 MiB")
    if dom.find("maxMemory") is not None:
        raise Unsupported("memory hot-plug (<maxMemory>) is not supported yet")
    return ["-m", str(kib // 1024) if kib % 1024 == 0 else f"size={kib}k"]


def _machine_args(dom: Domain, machine: str, accel: str, family: str) -> list[str]:
    props: dict[str, Any] = {"type": machine, "accel": accel, "usb": False,
                             "dump-guest-core": False}
    features = dom.find("features")
    if features is None or features.find("acpi") is None:
        props["acpi"] = False  # libvirt: no <acpi/> means no ACPI
    if family == "i440fx" or family == "q35":
        vmport = features.find("vmport") if features is not None else None
        if vmport is not None:
            props["vmport"] = vmport.get("state", "on") == "on"
    return ["-machine", opts_string(props, first="type")]


#: domain elements that change what the guest sees: refused rather than silently dropped
_UNSUPPORTED_PATHS = {
    "os/loader": "firmware <loader> (UEFI)",
    "os/nvram": "firmware <nvram>",
    "cpu/numa": "guest NUMA (<cpu><numa>)",
    "cpu/feature": "CPU <feature> lists",
    "memoryBacking": "<memoryBacking> (huge pages, shared memory)",
    "features/hyperv": "Hyper-V enlightenments",
}


def _check_domain(dom: Domain) -> None:
    for path, what in _UNSUPPORTED_PATHS.items():
        if dom.find(path) is not None:
            raise Unsupported(f"{what} is not supported by the QEMU driver yet")


def _os_args(dom: Domain) -> list[str]:
    """Direct kernel boot (``<os><kernel>/<initrd>/<cmdline>``) and reboot policy."""
    out: list[str] = []
    kernel = (dom.element.findtext("os/kernel") or "").strip()
    initrd = (dom.element.findtext("os/initrd") or "").strip()
    cmdline = dom.element.findtext("os/cmdline")
    if (initrd or cmdline) and not kernel:
        raise InvalidArgument("<initrd> and <cmdline> need a <kernel>")
    if kernel:
        out += ["-kernel", kernel]
    if initrd:
        out += ["-initrd", initrd]
    if cmdline:
        out += ["-append", cmdline]
    if (dom.on_reboot or "restart") == "destroy":
        out.append("-no-reboot")
    return out


def _clock_args(dom: Domain) -> list[str]:
    clock = dom.find("clock")
    offset = clock.get("offset", "utc") if clock is not None else "utc"
    if offset not in ("utc", "localtime"):
        raise Unsupported(f"clock offset '{offset}' is not supported (utc, localtime)")
    return ["-rtc", f"base={offset}"]


def build_command(dom: Domain, caps: QemuCaps, *, monitor: Path, accel: str,
                  vnc_port: int | None = None) -> list[str]:
    """The argv that starts ``dom`` (stopped: ``-S``) under ``caps.binary``.

    ``accel`` is ``kvm`` or ``tcg``; ``monitor`` the QMP socket path;
    ``vnc_port`` the TCP port of a ``<graphics type='vnc'>`` (the XML's port
    when None). Devices without ``<alias>`` get libvirt's names on a copy; the
    caller's XML is not changed.
    """
    if accel not in ("kvm", "tcg"):
        raise InvalidArgument(f"unknown accelerator '{accel}' (kvm, tcg)")
    if accel == "kvm" and not caps.kvm:
        raise Unsupported(f"KVM is not usable with {caps.binary} "
                          f"({caps.kvm_reason or 'unknown reason'})")
    if (dom.os_type or "hvm") != "hvm":
        raise Unsupported(f"OS type '{dom.os_type}' is not supported (hvm)")
    if dom.arch and dom.arch != caps.arch:
        raise Unsupported(f"architecture '{dom.arch}' is not served by {caps.binary} "
                          f"({caps.arch})")
    if not dom.name or not dom.uuid:
        raise InvalidArgument("the domain needs a name and a UUID")
    _check_domain(dom)
    machine = canonical_machine(dom.machine, caps)
    family = machine_family(machine)
    live = _with_aliases(dom)
    ctx = _Context(live, caps, family)
    ctx.secrets = secrets_dir(monitor)

    argv = [caps.binary]
    name = f"guest={qemu_escape(live.name)}"
    if caps.debug_threads:
        name += ",debug-threads=on"
    argv += ["-name", name, "-uuid", live.uuid, "-S"]
    argv += _machine_args(live, machine, accel, family)
    argv += _cpu_args(live, caps, accel)
    argv += _memory_args(live)
    argv += _smp_args(live, caps, machine)
    argv += ["-no-user-config", "-nodefaults"]
    if caps.sandbox:
        argv += ["-sandbox", SANDBOX]
    argv += ["-msg", "timestamp=on"]
    argv += ["-qmp", f"unix:{qemu_escape(str(monitor))},server=on,wait=off"]
    argv += _clock_args(live)
    argv += _os_args(live)
    argv += ["-boot", "strict=on"]
    argv += _device_argv(live, ctx, vnc_port)
    return argv


def _device_argv(dom: Domain, ctx: _Context, vnc_port: int | None) -> list[str]:
    devices = ctx.devices
    if devices is None:
        return ["-display", "none"]
    out: list[str] = []
    graphics = devices.findall("graphics")
    videos = devices.findall("video")
    primary_video = next((v for v in videos if (m := v.find("model")) is not None
                          and m.get("primary") == "yes"), videos[0] if videos else None)
    # controllers first: other devices sit on their buses
    for ctl in sorted(devices.findall("controller"), key=_controller_rank):
        args = controller_args(ctl, ctx)
        if args is not None:
            out += args.argv()
    node_index = 0
    for device in devices:
        tag = device.tag
        if not isinstance(tag, str) or tag in _IGNORED_TAGS or tag == "controller":
            continue
        args: DeviceArgs | None
        if tag == "disk":
            node_index += 1
            args = disk_args(device, ctx, node_index)
        elif tag == "interface":
            args = interface_args(device, ctx)
        elif tag == "serial":
            args = serial_args(device, ctx)
        elif tag == "video":
            args = video_args(device, ctx, device is primary_video)
        elif tag == "memballoon":
            args = balloon_args(device, ctx)
        elif tag == "rng":
            args = rng_args(device, ctx)
        elif tag == "input":
            args = input_args(device, ctx)
        elif tag == "graphics":
            continue
        else:
            raise Unsupported(f"device <{tag}> is not supported by the QEMU driver yet")
        if args is not None:
            out += args.argv()
    _check_consoles(devices)
    vnc = [g for g in graphics if g.get("type") == "vnc"]
    other = [g.get("type") for g in graphics if g.get("type") != "vnc"]
    if other:
        raise Unsupported(f"graphics type '{other[0]}' is not supported (vnc)")
    if len(vnc) > 1:
        raise Unsupported("only one VNC display is supported")
    if vnc:
        out += vnc_args(vnc[0], vnc_port)
    else:
        out += ["-display", "none"]
    return out


def _controller_rank(ctl: etree._Element) -> tuple[int, int]:
    """PCI buses by index first (a port must exist before what sits on it), then the rest."""
    try:
        index = int(ctl.get("index", "0"), 0)
    except ValueError:
        raise InvalidArgument(f"invalid controller index '{ctl.get('index')}'") from None
    return (0 if ctl.get("type") == "pci" else 1, index)


def _check_consoles(devices: etree._Element) -> None:
    """A ``<console>`` must be the serial port it mirrors (libvirt's default shape)."""
    serials = devices.findall("serial")
    for console in devices.findall("console"):
        target = console.find("target")
        kind = (target.get("type") if target is not None else None) or "serial"
        if kind != "serial":
            raise Unsupported(f"console target type '{kind}' is not supported (serial)")
        if not serials:
            raise Unsupported("a <console> without a <serial> device is not supported")


def device_args_for_hotplug(dom: Domain, device: etree._Element, caps: QemuCaps, *,
                            node_index: int) -> DeviceArgs:
    """The backends and ``device_add`` properties to hot-plug ``device`` (a disk or NIC).

    ``device`` must already carry its ``<alias>`` and PCI address (see
    :func:`hvmon.core.drivers.qemu.addresses.assign_addresses` with
    ``hotplug=True``); ``node_index`` must be unused in the running QEMU.
    """
    if not _alias(device):
        raise InvalidArgument(f"<{device.tag}> to hot-plug has no <alias> (its QEMU id)")
    if pci_address_of(device) is None:
        raise InvalidArgument(f"<{device.tag}> to hot-plug has no PCI address")
    machine = canonical_machine(dom.machine, caps)
    ctx = _Context(dom, caps, machine_family(machine))
    ctx.boot_order = []
    if device.tag == "disk":
        return disk_args(device, ctx, node_index)
    if device.tag == "interface":
        if device.get("type") in ("network", "bridge"):  # taps are made at guest start only
            raise Unsupported(f"hot-plug of an interface of type '{device.get('type')}' is "
                              "not supported yet (user)")
        return interface_args(device, ctx)
    raise Unsupported(f"hot-plug of <{device.tag}> is not supported (disk, interface)")

