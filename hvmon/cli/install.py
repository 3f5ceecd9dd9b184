"""``hvmon install``: virt-install's way of making a guest (build the XML, define, start).

``--disk`` takes virt-install's comma list: ``vol=POOL/VOL`` (a pool volume,
``<disk type='volume'>``, resolved by the driver at start), ``size=GiB,pool=P``
(a new qcow2 volume ``NAME.qcow2`` made in pool ``P``), or ``path=FILE`` (an
existing file or block device), each with ``perms=rw|sh|ro``, ``bus=`` and
``format=``. ``--network`` (repeatable) takes ``network=NAME``, ``bridge=BR``
or ``user``, each with ``model=``, ``mac=`` and ``filterref=``. ``--pxe``
boots from the network (from the first ``--network``, else a user-mode NIC
is added), ``--boot hd`` from the first disk. ``--print-xml`` only prints the
domain XML.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lxml import etree

from hvmon.cli import lookup
from hvmon.cli.command import Command
from hvmon.cli.inputs import CliError
from hvmon.cli.xmldoc import find_text
from hvmon.core.errors import NoSuchVolume

if TYPE_CHECKING:
    from hvmon.cli.context import CliContext
    from hvmon.core.api import Connection

GROUP = "Domain Management"
_BUSES = ("virtio", "ide", "sata", "scsi")
_PERMS = ("rw", "sh", "ro")
_FORMATS = ("raw", "qcow2")
_DISK_KEYS = ("vol", "pool", "size", "path", "perms", "bus", "format", "device")


@dataclass
class DiskSpec:
    """One ``--disk`` value."""

    vol: str = ""
    pool: str = ""
    size: float = 0.0
    path: str = ""
    perms: str = "rw"
    bus: str = "virtio"
    format: str = ""
    device: str = "disk"
    #: the volume ``size=`` creates (filled when the command runs)
    new_volume: str = field(default="", repr=False)


def parse_disk(text: str) -> DiskSpec:
    """``vol=P/V,perms=sh`` and friends; argparse ``type=`` (errors are usage errors)."""
    spec = DiskSpec()
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep:
            if key and not spec.path:  # virt-install allows a bare path first
                spec.path = key
                continue
            raise argparse.ArgumentTypeError(f"invalid --disk part '{part}' (expected key=value)")
        if key not in _DISK_KEYS:
            raise argparse.ArgumentTypeError(f"unknown --disk option '{key}' "
                                             f"({', '.join(_DISK_KEYS)})")
        if key == "size":
            try:
                spec.size = float(value)
            except ValueError:
                raise argparse.ArgumentTypeError(f"invalid disk size '{value}' "
                                                 "(GiB, e.g. 8 or 0.5)") from None
            if spec.size <= 0:
                raise argparse.ArgumentTypeError("disk size must be positive")
        else:
            setattr(spec, key, value)
    if spec.perms not in _PERMS:
        raise argparse.ArgumentTypeError(f"invalid perms '{spec.perms}' (rw, sh, ro)")
    if spec.bus not in _BUSES:
        raise argparse.ArgumentTypeError(f"invalid bus '{spec.bus}' ({', '.join(_BUSES)})")
    if spec.format and spec.format not in _FORMATS:
        raise argparse.ArgumentTypeError(f"invalid format '{spec.format}' (raw, qcow2)")
    if spec.device not in ("disk", "cdrom"):
        raise argparse.ArgumentTypeError(f"invalid device '{spec.device}' (disk, cdrom)")
    if spec.vol and ("/" not in spec.vol or spec.vol.startswith("/") or spec.vol.endswith("/")):
        raise argparse.ArgumentTypeError(f"--disk vol= wants POOL/VOLUME, not '{spec.vol}'")
    chosen = [k for k in ("vol", "path") if getattr(spec, k)] + (["size"] if spec.size and
                                                                 not spec.path else [])
    if len(chosen) != 1:
        raise argparse.ArgumentTypeError("--disk needs exactly one of vol=POOL/VOL, "
                                         "size=GiB,pool=POOL or path=FILE")
    if spec.size and not spec.path and not spec.pool:
        raise argparse.ArgumentTypeError("--disk size= needs pool=POOL (where to create it)")
    return spec


@dataclass(frozen=True)
class NetworkSpec:
    """One ``--network``: the interface type, its source, and options."""

    kind: str  # network, bridge or user
    source: str = ""
    model: str = "virtio"
    mac: str = ""
    filterref: str = ""


def parse_network(text: str) -> NetworkSpec:
    """``network=NAME|bridge=BR|user[,model=M][,mac=AA:..][,filterref=F]``."""
    first, *rest = [part.strip() for part in text.split(",")]
    key, _, value = first.partition("=")
    if first == "user":
        kind, source = "user", ""
    elif key in ("network", "bridge") and value:
        kind, source = key, value
    else:
        raise argparse.ArgumentTypeError(f"--network {text!r}: start with network=NAME, "
                                         "bridge=BRIDGE or user")
    options: dict[str, str] = {}
    for part in rest:
        name, _, val = part.partition("=")
        if name not in ("model", "mac", "filterref") or not val:
            raise argparse.ArgumentTypeError(f"--network {text!r}: unknown option {part!r} "
                                             "(model=, mac=, filterref=)")
        options[name] = val
    return NetworkSpec(kind, source, options.get("model", "virtio"), options.get("mac", ""),
                       options.get("filterref", ""))


def _interface(spec: NetworkSpec) -> etree._Element:
    iface = etree.Element("interface", type=spec.kind)
    if spec.mac:
        etree.SubElement(iface, "mac", address=spec.mac)
    if spec.kind != "user":
        etree.SubElement(iface, "source", **{spec.kind: spec.source})
    etree.SubElement(iface, "model", type=spec.model)
    if spec.filterref:
        etree.SubElement(iface, "filterref", filter=spec.filterref)
    return iface


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", "-n", required=True, help="name of the guest")
    parser.add_argument("--memory", "--ram", "-r", type=_positive, required=True,
                        metavar="MiB", help="memory in MiB")
    parser.add_argument("--vcpus", type=_positive, default=1, help="number of vCPUs")
    parser.add_argument("--disk", type=parse_disk, action="append", default=[],
                        help="vol=POOL/VOL | size=GiB,pool=POOL | path=FILE, "
                             "with [,perms=rw|sh|ro][,bus=virtio|ide|sata|scsi][,format=F]")
    boot = parser.add_mutually_exclusive_group()
    boot.add_argument("--pxe", action="store_true", help="boot from the network (PXE)")
    parser.add_argument("--network", "-w", type=parse_network, action="append", default=[],
                        help="network=NAME, bridge=BRIDGE or user, with ,model=, ,mac=, "
                             ",filterref= (repeatable)")
    boot.add_argument("--boot", choices=("hd", "network", "cdrom"), help="boot device")
    parser.add_argument("--graphics", choices=("vnc", "none"), default=None,
                        help="graphical display (default none)")
    parser.add_argument("--vnc", action="store_const", const="vnc", dest="graphics",
                        help="same as --graphics vnc")
    parser.add_argument("--virt-type", choices=("kvm", "qemu"),
                        help="hypervisor (default: kvm when the host offers it)")
    parser.add_argument("--machine", help="machine type (default: the driver's)")
    parser.add_argument("--print-xml", action="store_true",
                        help="print the domain XML instead of defining and starting it")
    for flag in ("--noautoconsole", "--accelerate", "--hvm"):
        parser.add_argument(flag, action="store_true", help=argparse.SUPPRESS)


def _virt_type(conn: Connection, asked: str | None) -> str:
    if asked:
        return asked
    caps = conn.capabilities()
    return "kvm" if "type='kvm'" in caps or 'type="kvm"' in caps else "qemu"


def _disk_element(conn: Connection, spec: DiskSpec, name: str, index: int,
                  create: bool) -> etree._Element:
    disk = etree.Element("disk", device=spec.device)
    driver = etree.SubElement(disk, "driver", name="qemu")
    if spec.vol or spec.size and not spec.path:
        pool_name, vol_name = spec.vol.split("/", 1) if spec.vol else (spec.pool, "")
        pool = lookup.pool(conn, pool_name)
        if spec.vol:
            try:
                vol = pool.lookup_volume_by_name(vol_name)
            except NoSuchVolume:
                raise CliError(f"volume '{vol_name}' not found in pool '{pool_name}'") from None
            fmt = spec.format or find_text(vol.xml_desc(), "target/format/@type", "raw")
        else:
            fmt = spec.format or "qcow2"
            vol_name = f"{name}.qcow2" if index == 0 else f"{name}-{index}.qcow2"
            if create:
                _create_volume(pool, vol_name, spec.size, fmt)
            spec.new_volume = f"{pool_name}/{vol_name}"
        disk.set("type", "volume")
        driver.set("type", fmt if fmt in _FORMATS else "raw")
        etree.SubElement(disk, "source", pool=pool_name, volume=vol_name)
    else:
        path = os.path.abspath(spec.path)
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            raise CliError(f"disk '{path}': {exc.strerror}") from None
        block = stat.S_ISBLK(mode)
        disk.set("type", "block" if block else "file")
        driver.set("type", spec.format or "raw")
        etree.SubElement(disk, "source", {"dev" if block else "file": path})
    cdrom_on_virtio = spec.device == "cdrom" and spec.bus == "virtio"
    etree.SubElement(disk, "target", bus="ide" if cdrom_on_virtio else spec.bus)
    if spec.perms == "sh":
        etree.SubElement(disk, "shareable")
    elif spec.perms == "ro" or spec.device == "cdrom":
        etree.SubElement(disk, "readonly")
    return disk


def _create_volume(pool: object, vol_name: str, size_gib: float, fmt: str) -> None:
    root = etree.Element("volume")
    etree.SubElement(root, "name").text = vol_name
    etree.SubElement(root, "capacity", unit="bytes").text = str(int(size_gib * 1024**3))
    etree.SubElement(root, "allocation", unit="bytes").text = "0"
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "format", type=fmt)
    pool.create_volume_xml(etree.tostring(root, encoding="unicode"))  # type: ignore[attr-defined]


def build_xml(conn: Connection, args: argparse.Namespace, create: bool = False) -> str:
    """The domain XML the arguments describe (``create``: make ``size=`` volumes now)."""
    root = etree.Element("domain", type=_virt_type(conn, args.virt_type))
    etree.SubElement(root, "name").text = args.name
    etree.SubElement(root, "memory", unit="MiB").text = str(args.memory)
    etree.SubElement(root, "vcpu").text = str(args.vcpus)
    os_el = etree.SubElement(root, "os")
    os_type = etree.SubElement(os_el, "type", arch="x86_64")
    os_type.text = "hvm"
    if args.machine:
        os_type.set("machine", args.machine)
    boot = "network" if args.pxe else (args.boot or "hd")
    etree.SubElement(os_el, "boot", dev=boot)
    features = etree.SubElement(root, "features")
    etree.SubElement(features, "acpi")
    etree.SubElement(features, "apic")
    etree.SubElement(root, "clock", offset="utc")
    for tag, value in (("on_poweroff", "destroy"), ("on_reboot", "restart"),
                       ("on_crash", "destroy")):
        etree.SubElement(root, tag).text = value
    devices = etree.SubElement(root, "devices")
    for index, spec in enumerate(args.disk):
        devices.append(_disk_element(conn, spec, args.name, index, create))
    for spec in args.network:
        devices.append(_interface(spec))
    if boot == "network" and not args.network:  # PXE needs a NIC: a user-mode one
        iface = etree.SubElement(devices, "interface", type="user")
        etree.SubElement(iface, "model", type="virtio")
    if args.graphics == "vnc":
        etree.SubElement(devices, "graphics", type="vnc", port="-1", autoport="yes",
                         listen="127.0.0.1")
        video = etree.SubElement(devices, "video")
        etree.SubElement(video, "model", type="vga")
    etree.SubElement(devices, "memballoon", model="virtio")
    etree.indent(root, space="  ")
    return etree.tostring(root, encoding="unicode") + "\n"


def cmd_install(ctx: CliContext, args: argparse.Namespace) -> None:
    if not args.disk and args.boot in (None, "hd") and not args.pxe:
        raise CliError("nothing to boot from: give --disk, or --pxe")
    conn = ctx.conn
    if args.print_xml:
        ctx.write(build_xml(conn, args))
        return
    xml = build_xml(conn, args, create=True)
    dom = conn.define_domain_xml(xml)
    try:
        dom.create()
    except Exception:
        with contextlib.suppress(Exception):
            dom.undefine()  # no half-made guest left defined
        raise
    made = [s.new_volume for s in args.disk if s.new_volume]
    if made:
        ctx.say(f"Created volume(s) {', '.join(made)}")
    ctx.say(f"Domain '{dom.name}' defined and started")


def commands() -> list[Command]:
    return [Command("install", "create a guest from a few options, virt-install style "
                    "(defines and starts it)", cmd_install, _arguments, group=GROUP)]
