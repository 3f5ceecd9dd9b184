"""``etc/qemu.conf`` under a driver root: who QEMU runs as, which namespaces it gets.

TOML, like libvirt's ``qemu.conf`` in spirit::

    user = "nobody"            # user name or uid; absent: QEMU runs as the daemon
    group = "nogroup"          # group name or gid; absent: the user's primary group
    user_range = [200000, 1000]  # each guest its own uid (= gid) from this range instead
    extra_groups = ["kvm"]     # supplementary groups (default: kvm when it exists)
    namespaces = ["mount", "pid"]  # private mount namespace (and PID namespace) per QEMU
    dynamic_ownership = true   # chown disk images to the guest's user at start, back at stop
    cgroups = true             # a cgroup per guest with <cputune>/<memtune>/<blkiotune>

Defaults: ``qemu:///embed`` and ``qemu:///session`` keep QEMU as the daemon's
user with no namespaces and no cgroups (today's behaviour); ``qemu:///system``
runs QEMU as ``hvmon-qemu:hvmon-qemu`` in its own mount namespace and cgroup.
"""

from __future__ import annotations

import contextlib
import grp
import pwd
import tomllib
from dataclasses import dataclass
from pathlib import Path

from hvmon.core.errors import NoConnect

#: the largest qemu.conf read (it is a handful of lines)
MAX_CONF_BYTES = 64 * 1024
#: namespace kinds the driver can give QEMU
NAMESPACES = ("mount", "pid")
#: uids below this are system accounts: never handed to guests by user_range
MIN_RANGE_UID = 1000
#: the largest uid user_range may reach (ids are 32-bit; -1 means "unchanged")
MAX_RANGE_UID = 2**31 - 1
SYSTEM_USER = "hvmon-qemu"


@dataclass(frozen=True)
class IsolationConfig:
    """Resolved isolation settings (ids, not names)."""

    uid: int | None = None
    gid: int | None = None
    extra_gids: tuple[int, ...] = ()
    namespaces: tuple[str, ...] = ()
    dynamic_ownership: bool = True
    cgroups: bool = False
    #: (first uid, count): each guest gets a uid (and the same gid) of its own
    user_range: tuple[int, int] | None = None
    #: the user as configured (for messages)
    user: str = ""
    #: why guests cannot start with these settings (the system user is missing)
    error: str = ""

    @property
    def drops_privileges(self) -> bool:
        return self.uid is not None or self.user_range is not None


def conf_path(config_dir: Path) -> Path:
    """``etc/qemu.conf`` beside the ``etc/qemu/`` definitions directory."""
    return config_dir.parent / "qemu.conf"


def load(config_dir: Path, *, system: bool) -> IsolationConfig:
    """The settings of the root whose definitions live in ``config_dir``; NoConnect if bad."""
    path = conf_path(config_dir)
    data: dict[str, object] = {}
    if system:
        data = {"user": SYSTEM_USER, "group": SYSTEM_USER, "namespaces": ["mount"],
                "cgroups": True}
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raw = b""
    except OSError as exc:
        raise NoConnect(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_CONF_BYTES:
        raise NoConnect(f"{path}: larger than {MAX_CONF_BYTES} bytes")
    try:
        own = tomllib.loads(raw.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise NoConnect(f"{path}: not valid TOML: {exc}") from None
    if "user_range" in own and "user" not in own:  # per-guest ids replace the default user
        data.pop("user", None)
        data.pop("group", None)
    data.update(own)
    try:
        return _resolve(path, data)
    except NoConnect as exc:
        if not system or "user" in own:
            raise
        # the secure default names a user this host lacks: refuse starts, not connections
        return IsolationConfig(error=f"{exc}; create it (useradd --system {SYSTEM_USER}) "
                                     "or set 'user' there")


def _resolve(path: Path, data: dict[str, object]) -> IsolationConfig:
    unknown = set(data) - {"user", "group", "extra_groups", "namespaces", "dynamic_ownership",
                          "cgroups", "user_range"}
    if unknown:
        raise NoConnect(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
    user, group = data.get("user"), data.get("group")
    uid = gid = None
    if user is not None:
        uid, primary = _user(path, user)
        gid = _group(path, group) if group is not None else primary
    elif group is not None:
        raise NoConnect(f"{path}: 'group' needs 'user'")
    user_range = _range(path, data.get("user_range"))
    if user_range is not None and user is not None:
        raise NoConnect(f"{path}: 'user' and 'user_range' exclude each other")
    extra = data.get("extra_groups")
    if extra is None:  # used whenever QEMU drops privileges (a DAC <seclabel> too)
        extra_gids: tuple[int, ...] = ()
        with contextlib.suppress(KeyError):
            extra_gids = (grp.getgrnam("kvm").gr_gid,)
    elif isinstance(extra, list):
        extra_gids = tuple(_group(path, g) for g in extra)
    else:
        raise NoConnect(f"{path}: 'extra_groups' must be a list")
    spaces = data.get("namespaces", [])
    if not isinstance(spaces, list) or any(s not in NAMESPACES for s in spaces):
        raise NoConnect(f"{path}: 'namespaces' must be a list of {', '.join(NAMESPACES)}")
    if "pid" in spaces and "mount" not in spaces:
        raise NoConnect(f"{path}: namespace 'pid' needs 'mount' (QEMU's private /dev)")
    dynamic, cgroups = data.get("dynamic_ownership", True), data.get("cgroups", False)
    for key, flag in (("dynamic_ownership", dynamic), ("cgroups", cgroups)):
        if not isinstance(flag, bool):
            raise NoConnect(f"{path}: '{key}' must be true or false")
    return IsolationConfig(uid=uid, gid=gid, extra_gids=extra_gids,
                           namespaces=tuple(dict.fromkeys(spaces)),
                           dynamic_ownership=bool(dynamic), cgroups=bool(cgroups),
                           user_range=user_range, user=str(user or ""))


def _range(path: Path, value: object) -> tuple[int, int] | None:
    """``user_range = [first, count]``: checked, or None when absent."""
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise NoConnect(f"{path}: 'user_range' must be [first uid, count]")
    first, count = value
    if first < MIN_RANGE_UID or count < 1 or first + count - 1 > MAX_RANGE_UID:
        raise NoConnect(f"{path}: 'user_range' must start at {MIN_RANGE_UID} or above, hold "
                        f"at least one uid and end by {MAX_RANGE_UID}")
    return first, count


def _user(path: Path, user: object) -> tuple[int, int]:
    try:
        entry = pwd.getpwuid(user) if isinstance(user, int) else pwd.getpwnam(str(user))
    except KeyError:
        if isinstance(user, int) and not isinstance(user, bool) and user > 0:
            return user, user
        raise NoConnect(f"{path}: user '{user}' does not exist on this host") from None
    return entry.pw_uid, entry.pw_gid


def _group(path: Path, group: object) -> int:
    if isinstance(group, int) and not isinstance(group, bool) and group >= 0:
        return group
    try:
        return grp.getgrnam(str(group)).gr_gid
    except KeyError:
        raise NoConnect(f"{path}: group '{group}' does not exist on this host") from None
