"""Listening UNIX sockets with the right mode from the first moment they accept.

A socket is bound under a temporary name, given its mode, then renamed into
place, so no client ever sees it with the umask's permissions. A live socket
at the path (another daemon answering) is never replaced; a stale one is.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import stat
from pathlib import Path

from hvmon.core.errors import NoConnect

#: longest AF_UNIX path Linux accepts (sun_path is 108 bytes with the NUL)
MAX_PATH = 107


def refuse_live(path: Path) -> None:
    """Raise if ``path`` exists and is not a stale socket."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise NoConnect(f"refusing to replace {path}: it is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return  # stale: nobody listens
    except OSError as exc:
        raise NoConnect(f"cannot check socket {path}: {exc.strerror or exc}") from None
    finally:
        probe.close()
    raise NoConnect(f"another daemon is listening on {path}")


def bind_unix(path: Path, mode: int) -> tuple[socket.socket, tuple[int, int]]:
    """A listening socket at ``path`` with ``mode``; returns it and the file's identity."""
    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_live(path)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(3)}")
    direct = len(os.fsencode(temp)) > MAX_PATH
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if direct:  # no room for a temporary name: bind in place, chmod at once
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            sock.bind(str(path))
            os.chmod(path, mode)
        else:
            sock.bind(str(temp))
            os.chmod(temp, mode)
            os.replace(temp, path)
        sock.listen(128)
        sock.setblocking(False)
        info = path.stat()
    except OSError as exc:
        sock.close()
        with contextlib.suppress(OSError):
            temp.unlink()
        raise NoConnect(f"cannot listen on {path}: {exc.strerror or exc}") from None
    return sock, (info.st_dev, info.st_ino)


def unlink_if_ours(path: Path, identity: tuple[int, int]) -> None:
    """Remove the socket file unless another daemon has replaced it since."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if (info.st_dev, info.st_ino) == identity:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
