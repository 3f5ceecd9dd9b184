"""A tiny real guest for graceful shutdown and reboot: a Debian kernel and a busybox initramfs.

The image is built from what Debian packages installed on this machine:

* the kernel: ``/boot/vmlinuz-VERSION`` (``linux-image-amd64``, or the host's own kernel
  when ``/boot`` holds it and it is readable), with the ACPI ``button`` and ``evdev``
  modules from ``/lib/modules/VERSION`` when its config builds them as modules;
* ``/bin/busybox`` from ``busybox-static`` (statically linked: nothing else is needed).

The initramfs (a gzip'd ``newc`` cpio written here, no ``cpio`` tool needed) holds busybox,
the two modules and an ``/init`` that mounts ``/proc``, ``/sys`` and ``/dev``, loads the
modules, starts busybox ``acpid`` (the power button's input event runs
``/etc/acpi/PWRF/00000080``: ``poweroff -f``) and then prints :data:`BOOT_MARKER` on the
serial console. A test waits for the marker before pressing the button (a press before
``acpid`` runs would be lost) and counts markers to see a reboot.

Built once per machine and cached under ``/tmp/hvmon-test-guest/KEY`` where KEY hashes the
kernel and busybox package versions (or the files' size and mtime without dpkg), so a
package upgrade builds a new image.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from toolcheck import need

#: printed on the serial console once the guest handles the ACPI power button
BOOT_MARKER = "HVMON-TINY-GUEST-READY"
KERNEL_PACKAGES = "Debian package linux-image-amd64"
BUSYBOX_PACKAGES = "Debian package busybox-static"
CACHE_ROOT = Path(tempfile.gettempdir()) / "hvmon-test-guest"
#: bump when the initramfs layout or /init changes
FORMAT = 1
#: the kernel command line: serial console, quiet (a TCG boot prints slowly)
CMDLINE = "console=ttyS0 quiet loglevel=3 rdinit=/init"

INIT = f"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /bin /sbin /usr/bin /usr/sbin /etc/acpi/PWRF /var/run
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in /lib/modules/*.ko; do
  [ -e "$module" ] && insmod "$module"
done
tries=0
while ! ls /dev/input/event* >/dev/null 2>&1 && [ $tries -lt 100 ]; do
  sleep 0.05; tries=$((tries + 1))
done
acpid -d -c /etc/acpi -p /var/run/acpid.pid 2>/dev/console &
sleep 0.2
echo "{BOOT_MARKER} input=$(ls /dev/input 2>/dev/null | tr '\\n' ' ')"
while true; do sleep 3600; done
"""

POWER_BUTTON = """#!/bin/sh
echo "hvmon tiny guest: ACPI power button, powering off"
poweroff -f
"""


@dataclass(frozen=True)
class GuestImage:
    """A bootable kernel + initramfs pair and the command line to boot them with."""

    kernel: Path
    initrd: Path
    cmdline: str = CMDLINE


def _is_static(path: Path) -> bool:
    """Whether an ELF file has no program interpreter (a static binary)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit only
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != 3  # PT_INTERP
               for i in range(phnum))


def _config_value(version: str, option: str) -> str:
    """``y``, ``m`` or ``""`` for a kernel config option (``y`` when the config is unreadable)."""
    config = Path(f"/boot/config-{version}")
    try:
        text = config.read_text(errors="replace")
    except OSError:
        return "y"
    for line in text.splitlines():
        if line.startswith(f"{option}="):
            return line.split("=", 1)[1].strip()
    return ""


def _module(version: str, option: str, relative: str) -> Path | None:
    """The module file for ``option`` when the kernel builds it as a module, else None."""
    if _config_value(version, option) != "m":
        return None
    path = Path(f"/lib/modules/{version}/kernel/{relative}")
    return path if path.is_file() else None


def find_kernel() -> tuple[str, Path] | None:
    """(version, path) of a readable ``/boot/vmlinuz-*`` with what the guest needs, newest first."""
    found = []
    for path in Path("/boot").glob("vmlinuz-*"):
        version = path.name.removeprefix("vmlinuz-")
        if not os.access(path, os.R_OK):
            continue
        needs = [("CONFIG_ACPI_BUTTON", "drivers/acpi/button.ko"),
                 ("CONFIG_INPUT_EVDEV", "drivers/input/evdev.ko")]
        if any(_config_value(version, opt) == "m" and _module(version, opt, rel) is None
               for opt, rel in needs):
            continue
        found.append((path.stat().st_mtime, version, path))
    if not found:
        return None
    _, version, path = max(found)
    return version, path


def _package_version(package: str, path: Path) -> str:
    """The installed version of a Debian package, or the file's size and mtime."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                                capture_output=True, text=True, timeout=30, check=False)
        if result.returncode == 0 and result.stdout.strip():
            return f"{package}={result.stdout.strip()}"
    stat = path.stat()
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns}"


def _cpio(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A ``newc`` cpio archive of (name, mode, data) entries, with its trailer."""
    out = io.BytesIO()

    def add(ino: int, name: str, mode: int, data: bytes) -> None:
        encoded = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
        out.write(b"070701" + b"".join(b"%08X" % value for value in fields) + encoded)
        out.write(b"\0" * (-(110 + len(encoded)) % 4))
        out.write(data)
        out.write(b"\0" * (-len(data) % 4))

    for ino, (name, mode, data) in enumerate(entries, start=1):
        add(ino, name, mode, data)
    add(0, "TRAILER!!!", 0, b"")
    return out.getvalue()


def build_initramfs(busybox: Path, modules: list[Path]) -> bytes:
    """The gzip'd initramfs: busybox, the modules (in load order) and /init."""
    directory, executable, regular = 0o040755, 0o100755, 0o100644
    entries: list[tuple[str, int, bytes]] = [
        (name, directory, b"") for name in
        ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "etc", "etc/acpi",
         "etc/acpi/PWRF", "lib", "lib/modules", "var", "var/run", "var/log")]
    entries.append(("bin/busybox", executable, busybox.read_bytes()))
    for index, module in enumerate(modules):
        entries.append((f"lib/modules/{index}-{module.name}", regular, module.read_bytes()))
    entries.append(("etc/acpi/PWRF/00000080", executable, POWER_BUTTON.encode()))
    entries.append(("init", executable, INIT.encode()))
    return gzip.compress(_cpio(entries), compresslevel=6, mtime=0)


def tiny_guest_image(cache_root: Path = CACHE_ROOT) -> GuestImage:
    """Build (or reuse) the tiny guest; skip, or fail under CI, when a package is missing."""
    kernel = find_kernel()
    need(kernel is not None, "no readable /boot/vmlinuz-* with the ACPI button and evdev "
         f"drivers ({KERNEL_PACKAGES})")
    assert kernel is not None
    version, kernel_path = kernel
    busybox = Path("/bin/busybox")
    need(busybox.is_file() and _is_static(busybox),
         f"no statically linked /bin/busybox ({BUSYBOX_PACKAGES})")
    modules = [m for m in (_module(version, "CONFIG_ACPI_BUTTON", "drivers/acpi/button.ko"),
                           _module(version, "CONFIG_INPUT_EVDEV", "drivers/input/evdev.ko"))
               if m is not None]
    key_text = "\n".join([f"format={FORMAT}", version,
                          _package_version(f"linux-image-{version}", kernel_path),
                          _package_version("busybox-static", busybox)])
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    target = cache_root / key
    image = GuestImage(target / "vmlinuz", target / "initrd.gz")
    if image.kernel.is_file() and image.initrd.is_file():
        return image
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=cache_root))
    try:
        shutil.copyfile(kernel_path, staging / "vmlinuz")
        (staging / "initrd.gz").write_bytes(build_initramfs(busybox, modules))
        (staging / "KEY").write_text(key_text + "\n")
        for path in staging.iterdir():
            path.chmod(0o644)
        staging.chmod(0o755)
        try:
            staging.rename(target)
        except OSError:  # another session built it first: use theirs
            if not (image.kernel.is_file() and image.initrd.is_file()):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return image


def tiny_guest_xml(name: str, kind: str, image: GuestImage, serial_log: Path, *,
                   memory_mib: int = 128) -> str:
    """A guest booting ``image`` directly, with ACPI and its serial console in a file."""
    return f"""<domain type='{kind}'>
  <name>{name}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{image.kernel}</kernel>
    <initrd>{image.initrd}</initrd>
    <cmdline>{image.cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='file'>
      <source path='{serial_log}'/>
      <target port='0'/>
    </serial>
    <console type='file'>
      <source path='{serial_log}'/>
      <target type='serial' port='0'/>
    </console>
    <memballoon model='none'/>
  </devices>
</domain>"""
