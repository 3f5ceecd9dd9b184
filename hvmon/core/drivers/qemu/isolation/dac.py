"""DAC: hand a guest's files to its QEMU user at start and give them back at stop.

The original owner and mode of every file changed are recorded in
``run/qemu/NAME.dac.json`` (0600) before the change, so a restarted daemon still
restores them. Disk images become ``uid:gid`` mode 0600 (0400 read-only), so a
QEMU running as another uid cannot open them. Disks hot-plugged into a running
guest are added to its record (:func:`take` with ``more``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
from pathlib import Path

from hvmon.core.errors import OperationFailed
from hvmon.core.xml.domain import Domain as DomainXML

log = logging.getLogger("hvmon.qemu.isolation")


def guest_files(live: DomainXML) -> list[tuple[Path, bool]]:
    """The local files QEMU opens for ``live``'s disks: (path, read-only)."""
    out: list[tuple[Path, bool]] = []
    for disk in live.element.iterfind("devices/disk"):
        source = disk.find("source")
        path = None if source is None else (source.get("file") or source.get("dev"))
        if path:
            out.append((Path(path), disk.find("readonly") is not None))
    return out


def take(record: Path, files: list[tuple[Path, bool]], extra: list[Path], uid: int,
         gid: int, *, more: bool = False) -> None:
    """chown ``files`` (0600/0400) and ``extra`` (directories and their files) to uid:gid.

    ``more``: add to the record of a running guest (a hot-plugged disk) instead of
    starting it; a failure then gives back only what this call changed.
    """
    saved: list[list[object]] = _saved(record) if more else []
    kept = len(saved)
    plan: list[tuple[Path, int]] = []
    for path, readonly in files:
        plan.append((path, 0o400 if readonly else 0o600))
    for directory in extra:
        if directory.is_dir():
            plan.append((directory, 0o700))
            plan += [(child, 0o600) for child in sorted(directory.iterdir())]
    try:
        for path, mode in plan:
            info = os.stat(path)
            if stat.S_ISBLK(info.st_mode) or stat.S_ISCHR(info.st_mode):
                mode = 0o660 if mode != 0o400 else 0o440
            saved.append([str(path), info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)])
            _write(record, saved)
            os.chown(path, uid, gid)
            os.chmod(path, mode)
    except OSError as exc:
        if more:
            give_back(record, [Path(str(entry[0])) for entry in saved[kept:]])
        else:
            restore(record)
        raise OperationFailed(f"cannot hand {exc.filename} to the guest's user "
                              f"{uid}:{gid}: {exc.strerror}") from None


def restore(record: Path) -> None:
    """Give back every file ``record`` lists (missing files are skipped); never raises."""
    _give(_saved(record))
    with contextlib.suppress(OSError):
        record.unlink()


def give_back(record: Path, paths: list[Path]) -> None:
    """Give back ``paths`` only (a hot-plug that failed) and drop them from ``record``."""
    wanted = {str(path) for path in paths}
    saved = _saved(record)
    _give([entry for entry in saved if str(entry[0]) in wanted])
    with contextlib.suppress(OSError):
        _write(record, [entry for entry in saved if str(entry[0]) not in wanted])


def _saved(record: Path) -> list[list[object]]:
    try:
        saved = json.loads(record.read_text())
    except (OSError, ValueError):
        return []
    return saved if isinstance(saved, list) else []


def _give(saved: list[list[object]]) -> None:
    for path, uid, gid, mode in reversed(saved):
        try:
            os.chown(path, uid, gid)  # type: ignore[arg-type]
            os.chmod(path, mode)  # type: ignore[arg-type]
        except FileNotFoundError:
            continue
        except (OSError, TypeError) as exc:
            log.warning("cannot restore the owner of %s: %s", path, exc)


def _write(record: Path, saved: list[list[object]]) -> None:
    tmp = record.with_name(record.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(saved, out)
    os.replace(tmp, record)
