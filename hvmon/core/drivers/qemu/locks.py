"""Disk locks: a pluggable lock manager and its fcntl lockspace implementation.

A running domain holds a lock on every disk it uses: exclusive for a
writable disk, shared for ``<shareable/>`` and ``<readonly/>`` ones, so a
non-shareable disk (file, block device, iSCSI LUN) cannot be used by two
running domains, even of two daemons, as long as they share the lockspace
directory (libvirt's ``virtlockd`` file lockspace).

The locks are POSIX ``fcntl`` record locks on ``<lockspace>/<sha256 of the
disk's key>``, held by a small holder process per domain
(``python -m hvmon.core.drivers.qemu.locks``) that is not the daemon: a
restarted daemon leaves them in place, and the holder drops them itself when
the guest's QEMU is gone (it watches the domain's status file and pid), so a
guest that crashes while no daemon runs does not keep its disks locked.
``<hash>.owner.<uuid>`` files name the holders for the refusal message.

A domain already holding a disk (the source of a migration on this host or
a daemon sharing the lockspace) is let through for its own UUID; its new
holder takes the lock once the old one lets go.

Settings: ``etc/lockd.conf`` under the driver's root (``lock_manager = fcntl``
or ``nop``; ``file_lockspace_dir = /path``, default ``run/lockd``).
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lxml import etree

from hvmon.core.drivers.qemu.paths import QemuPaths
from hvmon.core.drivers.qemu.state import QemuDomain
from hvmon.core.errors import InvalidArgument, OperationFailed, OperationInvalid
from hvmon.core.xml.domain import Domain as DomainXML

log = logging.getLogger("hvmon.qemu.locks")

#: seconds a holder waits for its guest's status file before giving up
START_GRACE = 300.0
POLL = 0.5


@dataclass(frozen=True)
class Resource:
    """One lockable disk: its key (canonical path or ``iscsi://`` URL) and lock mode."""

    key: str
    shared: bool


class LockManager(Protocol):
    """What the driver asks of a lock manager (libvirt's lock driver API, reduced)."""

    def acquire(self, dom: QemuDomain, resources: Sequence[Resource]) -> None:
        """Take every lock for ``dom`` or none; OperationInvalid names a busy disk."""

    def release(self, dom: QemuDomain) -> None:
        """Drop ``dom``'s locks; never raises."""

    def acquire_more(self, dom: QemuDomain, resources: Sequence[Resource]) -> str:
        """Lock a hot-plugged disk too (``dom`` keeps its locks); a token for
        :meth:`release_more`. OperationInvalid names a busy disk."""

    def release_more(self, dom: QemuDomain, token: str) -> None:
        """Drop what one :meth:`acquire_more` took; never raises."""


class NopLockManager:
    """No locking at all (``lock_manager = nop``)."""

    def acquire(self, dom: QemuDomain, resources: Sequence[Resource]) -> None:
        return None

    def release(self, dom: QemuDomain) -> None:
        return None

    def acquire_more(self, dom: QemuDomain, resources: Sequence[Resource]) -> str:
        return ""

    def release_more(self, dom: QemuDomain, token: str) -> None:
        return None


def lock_file(lockspace: Path, key: str) -> Path:
    return lockspace / hashlib.sha256(key.encode()).hexdigest()


def owners(lockspace: Path, key: str) -> list[tuple[str, str]]:
    """(uuid, domain name) of the holders recorded for ``key``."""
    base = lock_file(lockspace, key)
    out = []
    for path in sorted(lockspace.glob(base.name + ".owner.*")):
        with contextlib.suppress(OSError):
            out.append((path.name.rsplit(".", 1)[1], path.read_text().split("\n", 1)[0]))
    return out


class FcntlLockspace:
    """fcntl locks in a lockspace directory, held by one holder process per domain."""

    def __init__(self, lockspace: Path, paths: QemuPaths) -> None:
        self.lockspace = lockspace
        self.paths = paths
        self.records = paths.run / "locks"
        lockspace.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.records.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def acquire(self, dom: QemuDomain, resources: Sequence[Resource]) -> None:
        if not resources:
            return
        self.release(dom)
        self._spawn(dom, resources, dom.uuid)

    def acquire_more(self, dom: QemuDomain, resources: Sequence[Resource]) -> str:
        """One more holder process for a hot-plugged disk (the others keep theirs)."""
        if not resources:
            return ""
        token = f"{dom.uuid}.more.{len(list(self.records.glob(dom.uuid + '.more.*')))}"
        while (self.records / f"{token}.json").exists():
            token += "x"
        self._spawn(dom, resources, token)
        return token

    def release_more(self, dom: QemuDomain, token: str) -> None:
        if token:
            self._stop_holder(dom, token)

    def _spawn(self, dom: QemuDomain, resources: Sequence[Resource], record: str) -> None:
        argv = [sys.executable, "-m", "hvmon.core.drivers.qemu.locks", str(self.lockspace),
                dom.uuid, dom.name, str(self.paths.status(dom.name))]
        argv += [("sh:" if r.shared else "ex:") + r.key for r in resources]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, start_new_session=True,
                                close_fds=True)
        assert proc.stdout is not None
        answer = proc.stdout.readline().decode(errors="replace").rstrip("\n")
        proc.stdout.close()
        if answer != "ok":
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            kind, _, detail = answer.partition("\t")
            if kind == "busy":
                holders = ", ".join(f"'{name}'" for uuid, name in owners(self.lockspace, detail)
                                    if uuid != dom.uuid) or "another process"
                raise OperationInvalid(f"disk '{detail}' of domain '{dom.name}' is in use by "
                                       f"running domain {holders} (not shareable)")
            raise OperationFailed(f"cannot lock the disks of domain '{dom.name}': "
                                  f"{detail or 'the lock holder failed to start'}")
        self._children[record] = proc
        (self.records / f"{record}.json").write_text(json.dumps({"pid": proc.pid,
                                                                 "uuid": dom.uuid}))

    def release(self, dom: QemuDomain) -> None:
        """Stop every holder of ``dom`` (its start's and its hot-plugged disks')."""
        for path in sorted(self.records.glob(f"{dom.uuid}.more.*.json")):
            self._stop_holder(dom, path.name.removesuffix(".json"))
        self._stop_holder(dom, dom.uuid)

    def _stop_holder(self, dom: QemuDomain, record: str) -> None:
        record_path = self.records / f"{record}.json"
        proc = self._children.pop(record, None)
        pid = proc.pid if proc is not None else 0
        if not pid:
            with contextlib.suppress(OSError, ValueError, KeyError):
                pid = int(json.loads(record_path.read_text())["pid"])
        if pid and _is_holder(pid, dom.uuid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
            else:
                _wait_gone(pid, 5.0)
        record_path.unlink(missing_ok=True)


def _is_holder(pid: int, uuid: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"hvmon.core.drivers.qemu.locks" in cmdline and uuid.encode() in cmdline


def _wait_gone(pid: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and Path(f"/proc/{pid}").exists():
        time.sleep(0.02)


def read_config(paths: QemuPaths) -> dict[str, str]:
    """``etc/lockd.conf``: ``key = value`` lines (quotes optional, ``#`` comments)."""
    path = paths.config.parent / "lockd.conf"
    values: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return values
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise InvalidArgument(f"{path}:{number}: expected 'key = value'")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def lock_manager_for(paths: QemuPaths) -> LockManager:
    config = read_config(paths)
    kind = config.get("lock_manager", "fcntl")
    if kind == "nop":
        return NopLockManager()
    if kind not in ("fcntl", "lockd"):
        raise InvalidArgument(f"unknown lock_manager '{kind}' in lockd.conf (fcntl, nop)")
    space = Path(config.get("file_lockspace_dir") or paths.run.parent / "lockd")
    if not space.is_absolute():
        raise InvalidArgument("file_lockspace_dir in lockd.conf must be an absolute path")
    return FcntlLockspace(space, paths)


# --- which disks a domain locks ------------------------------------------------------


def disk_resources(live: DomainXML) -> list[Resource]:
    """The lockable disks of a live definition (volumes already resolved)."""
    out: dict[str, Resource] = {}
    for disk in live.element.iterfind("devices/disk"):
        source = disk.find("source")
        if source is None:
            continue
        kind = disk.get("type", "file")
        if kind == "file" and source.get("file"):
            key = os.path.realpath(source.get("file", ""))
        elif kind == "block" and source.get("dev"):
            key = os.path.realpath(source.get("dev", ""))
        elif kind == "network" and source.get("protocol") == "iscsi":
            host = source.find("host")
            portal = f"{host.get('name')}:{host.get('port') or 3260}" if host is not None else ""
            key = f"iscsi://{portal}/{source.get('name')}"
        else:
            continue
        shared = disk.find("shareable") is not None or disk.find("readonly") is not None or \
            disk.get("device") == "cdrom"
        if key in out and not out[key].shared:
            continue
        out[key] = Resource(key, shared)
    return list(out.values())


class LockHook:
    """The start hook taking a domain's disk locks before QEMU starts."""

    def __init__(self, manager: LockManager) -> None:
        self.manager = manager

    def prepare(self, dom: QemuDomain, live: DomainXML) -> None:
        if dom.migrating:  # an incoming guest: its locks are taken at Finish (hand-over)
            return
        self.manager.acquire(dom, disk_resources(live))

    def take(self, dom: QemuDomain) -> None:
        """Take a running domain's locks (migration: the destination at Finish, the
        source again when a migration failed after it let them go)."""
        assert dom.live is not None
        self.manager.acquire(dom, disk_resources(dom.live))

    def release(self, dom: QemuDomain, live: DomainXML) -> None:
        try:
            self.manager.release(dom)
        except Exception:  # noqa: BLE001 - a release never raises
            log.exception("releasing the disk locks of domain '%s' failed", dom.name)

    def extend(self, dom: QemuDomain, disk: etree._Element) -> str:
        """Lock one disk about to be hot-plugged; a token to undo it if plugging fails."""
        holder = DomainXML.from_xml(b"<domain><devices/></domain>")
        holder.find("devices").append(copy.deepcopy(disk))
        return self.manager.acquire_more(dom, disk_resources(holder))

    def undo(self, dom: QemuDomain, token: str) -> None:
        try:
            self.manager.release_more(dom, token)
        except Exception:  # noqa: BLE001 - best effort, like release
            log.exception("releasing a disk lock of domain '%s' failed", dom.name)


class LockMixin:
    """Creates the driver's lock hook (``self.lifecycle.hooks.append(self.lock_hook())``)."""

    paths: QemuPaths

    def lock_hook(self) -> LockHook:
        return LockHook(lock_manager_for(self.paths))


# --- the holder process --------------------------------------------------------------


def _try_lock(fd: int, shared: bool) -> bool:
    try:
        fcntl.lockf(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _guest_alive(status: Path, uuid: str, seen: bool, started: float) -> tuple[bool, bool]:
    """(keep holding, status file seen)."""
    if not status.parent.is_dir():  # the driver's run directory is gone altogether
        return False, seen
    try:
        pid = int(json.loads(status.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        if seen:
            return False, True
        return time.monotonic() - started < START_GRACE, False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False, True
    return uuid.encode() in cmdline, True


def hold(lockspace: Path, uuid: str, name: str, status: Path, specs: list[str]) -> int:
    """Take the locks, answer ``ok`` (or ``busy\\tKEY``) on stdout, hold until told or orphaned."""
    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(0)  # unwinds through ``finally``: records removed, locks dropped

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    held: list[tuple[int, bool]] = []
    pending: list[tuple[int, bool]] = []
    records: list[Path] = []
    try:
        for spec in specs:
            mode, _, key = spec.partition(":")
            shared = mode == "sh"
            path = lock_file(lockspace, key)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            if _try_lock(fd, shared):
                held.append((fd, shared))
            elif owners(lockspace, key) and all(u == uuid for u, _ in owners(lockspace, key)):
                pending.append((fd, shared))  # this domain's own lock (a local migration)
            else:
                sys.stdout.write(f"busy\t{key}\n")
                sys.stdout.flush()
                return 1
            record = path.with_name(f"{path.name}.owner.{uuid}")
            record.write_text(f"{name}\n{key}\n")
            records.append(record)
        sys.stdout.write("ok\n")
        sys.stdout.flush()
        os.close(1)
        started, seen = time.monotonic(), False
        while True:
            alive, seen = _guest_alive(status, uuid, seen, started)
            if not alive:
                break
            for item in list(pending):
                if _try_lock(*item):
                    pending.remove(item)
                    held.append(item)
            time.sleep(POLL)
        return 0
    except OSError as exc:
        with contextlib.suppress(OSError):
            sys.stdout.write(f"error\t{exc.strerror}\n")
            sys.stdout.flush()
        return 1
    finally:
        for record in records:
            with contextlib.suppress(OSError):
                record.unlink()
        for fd, _ in held + pending:
            with contextlib.suppress(OSError):
                os.close(fd)


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        sys.stderr.write("usage: python -m hvmon.core.drivers.qemu.locks LOCKSPACE UUID NAME "
                         "STATUSFILE (ex|sh):KEY...\n")
        return 2
    lockspace, uuid, name, status, *specs = argv
    return hold(Path(lockspace), uuid, name, Path(status), specs)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
