"""Run inside QEMU's new mount namespace: a private /dev, drop to the guest's uid, exec QEMU.

``python -m hvmon.core.drivers.qemu.isolation.nsexec [--dev PATH]... [--uid N] -- ARGV``
is started through ``unshare --mount --propagation private`` (as root, already
with the guest's gid and groups); it mounts a tmpfs on /dev holding only the
basic character devices plus each ``--dev`` (bind mounts), sets the uid and
``exec``s QEMU, which keeps the pid. Any failure is one line on stderr (QEMU's
log) and exit status 127.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

#: always present in QEMU's /dev
BASIC = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
MS_NOSUID, MS_NOEXEC, MS_BIND = 2, 8, 4096


def _mount(libc: ctypes.CDLL, source: str, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    if libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                  flags, data.encode() if data else None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def private_dev(devices: list[str]) -> None:
    """Replace /dev (in this mount namespace) by a tmpfs holding ``devices`` only."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    keep = [d for d in dict.fromkeys([*BASIC, *devices]) if os.path.exists(d)]
    # hold each device by an O_PATH descriptor: the tmpfs hides the old /dev
    held = {device: os.open(device, os.O_PATH) for device in keep}
    _mount(libc, "tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k")
    for device, fd in held.items():
        os.makedirs(os.path.dirname(device), mode=0o755, exist_ok=True)
        os.close(os.open(device, os.O_WRONLY | os.O_CREAT, 0o600))
        _mount(libc, f"/proc/self/fd/{fd}", device, None, MS_BIND)
        os.close(fd)


def main(argv: list[str]) -> int:
    devices: list[str] = []
    uid: int | None = None
    try:
        split = argv.index("--")
        opts, command = argv[:split], argv[split + 1:]
        while opts:
            flag, value, opts = opts[0], opts[1], opts[2:]
            if flag == "--dev":
                devices.append(value)
            elif flag == "--uid":
                uid = int(value)
            else:
                raise ValueError(f"unknown option {flag}")
        if not command:
            raise ValueError("no command")
        private_dev(devices)
        if uid is not None:
            os.setuid(uid)
        os.execv(command[0], command)  # noqa: S606 - an argv list: becomes QEMU, same pid
    except (OSError, ValueError, IndexError) as exc:
        print(f"isolation helper: cannot isolate QEMU: {exc}", file=sys.stderr)
        return 127
    return 127  # not reached: execv does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
