"""Disk images through ``qemu-img``: create (sparse, preallocated, backing, LUKS), info,
convert with progress, resize.

A LUKS passphrase reaches ``qemu-img`` as a ``secret`` object read from a 0600
file in a private temporary directory, removed as soon as the tool exits:
never on the command line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hvmon.core.drivers.qemu.storage.run import Runner, find_tool, last_line
from hvmon.core.errors import InvalidArgument, OperationFailed

FORMATS = ("raw", "qcow2")
LUKS_ATTEMPTS = 10
_CPU_USAGE = "Unable to get accurate CPU usage"
_PROGRESS = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


@dataclass(frozen=True)
class ImageInfo:
    format: str
    capacity: int
    allocation: int
    backing: str | None
    encrypted: bool


@contextmanager
def secret_file(value: bytes | None) -> Iterator[str | None]:
    """A 0600 file holding ``value`` in a 0700 temporary directory (None: no secret)."""
    if value is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="hvmon-sec-") as tmp:
        path = os.path.join(tmp, "secret")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(value)
        yield path


class QemuImg:
    """The ``qemu-img`` operations the pools use."""

    def __init__(self, runner: Runner | None = None) -> None:
        self.runner = runner or Runner()

    def create(self, path: str, fmt: str, capacity: int, *, preallocate: bool = False,
               backing: str | None = None, backing_format: str | None = None,
               luks_passphrase: bytes | None = None) -> None:
        """Create ``path``; ``preallocate`` allocates every byte (falloc), else sparse."""
        if fmt not in FORMATS:
            raise InvalidArgument(f"volume format '{fmt}' is not supported ({', '.join(FORMATS)})")
        if backing and fmt != "qcow2":
            raise InvalidArgument("a volume with a backing store must be qcow2")
        options: list[str] = []
        argv = ["qemu-img", "create", "-q"]
        image_format = fmt
        with secret_file(luks_passphrase) as secret:
            if secret is not None:
                argv += ["--object", f"secret,id=sec0,file={secret},format=raw"]
                if fmt == "raw":
                    image_format = "luks"
                    options.append("key-secret=sec0")
                else:
                    options += ["encrypt.format=luks", "encrypt.key-secret=sec0"]
            if preallocate:
                options.append("preallocation=falloc")
            if backing:
                argv += ["-b", backing, "-F", backing_format or "qcow2"]
            argv += ["-f", image_format]
            if options:
                argv += ["-o", ",".join(options)]
            argv += [path, str(capacity)]
            for attempt in range(LUKS_ATTEMPTS):
                try:
                    self.runner.run(argv)
                    return
                except OperationFailed as exc:
                    # LUKS key-slot set-up times PBKDF2 in CPU time; on a loaded host
                    # QEMU sometimes cannot measure it: try again
                    if _CPU_USAGE not in str(exc) or attempt == LUKS_ATTEMPTS - 1:
                        raise
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                    time.sleep(0.1 * (attempt + 1))  # let the CPU clock move on

    def info(self, path: str) -> ImageInfo:
        """Format, virtual size, bytes allocated on disk, backing file, encryption."""
        result = self.runner.run(["qemu-img", "info", "-U", "--output=json", path], timeout=30)
        try:
            data = json.loads(result.stdout)
        except ValueError:
            raise OperationFailed(f"qemu-img info gave no JSON for '{path}'") from None
        fmt = str(data.get("format", "raw"))
        encrypted = bool(data.get("encrypted")) or fmt == "luks"
        return ImageInfo("raw" if fmt == "luks" else fmt, int(data.get("virtual-size", 0)),
                         int(data.get("actual-size", 0)), data.get("backing-filename"),
                         encrypted)

    def resize(self, path: str, fmt: str, capacity: int, *, shrink: bool = False,
               luks_passphrase: bytes | None = None) -> None:
        with secret_file(luks_passphrase) as secret:
            argv = ["qemu-img", "resize", "-q"]
            if secret is not None:
                spec = (f"driver=luks,key-secret=sec0,file.filename={path}" if fmt == "raw"
                        else f"driver=qcow2,encrypt.key-secret=sec0,file.filename={path}")
                argv += ["--object", f"secret,id=sec0,file={secret},format=raw",
                         "--image-opts", spec]
            else:
                argv += ["-f", fmt, path]
            if shrink:
                argv.insert(3, "--shrink")
            argv.append(str(capacity))
            self.runner.run(argv)

    def convert(self, source: str, source_format: str, dest: str, dest_format: str,
                progress: Callable[[int, int], None] | None = None, total: int = 0) -> None:
        """Copy ``source`` into a new sparse ``dest``; progress in bytes of ``total``."""
        argv = [find_tool("qemu-img"), "convert", "-p", "-U", "-f", source_format,
                "-O", dest_format, source, dest]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        buffer = b""
        while True:
            chunk = proc.stdout.read1(4096)  # type: ignore[attr-defined]
            if not chunk:
                break
            buffer = (buffer + chunk)[-256:]
            for match in _PROGRESS.finditer(buffer):
                if progress is not None and total:
                    progress(int(total * float(match.group(1)) / 100), total)
            buffer = buffer[buffer.rfind(b"\r") + 1:] if b"\r" in buffer else buffer
        error = proc.stderr.read().decode(errors="replace")
        if proc.wait() != 0:
            raise OperationFailed(f"qemu-img convert failed: {last_line(error)}")
        if progress is not None and total:
            progress(total, total)
