"""Who each guest's QEMU runs as: qemu.conf's user, a ``<seclabel model='dac'>``, or a uid
of its own from ``user_range``.

libvirt's DAC labels: ``<seclabel type='static' model='dac' relabel='yes'>
<label>+UID:+GID</label></seclabel>`` (or ``user:group`` names) runs the guest as
that uid/gid (``relabel='no'``: its files are not chowned); ``type='dynamic'``
(the default) gives it a uid of its own from qemu.conf's ``user_range``, like
systemd's DynamicUser, with the same number as gid; without a range it is
qemu.conf's ``user``, as in libvirt. Other models (``selinux``, ``apparmor``)
refuse the start unless ``type='none'``. A guest's uid is kept in
``etc/qemu/dac-ids.json`` so it stays the same across starts and daemon
restarts; it is released when the domain is undefined (or a transient one
stops), and ids of domains the driver no longer knows are reclaimed on the next
allocation. The live XML shows the label in
effect (``<seclabel type='dynamic' model='dac' relabel='yes'><label>+UID:+GID``).
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from hvmon.core.drivers.qemu.isolation.config import IsolationConfig
from hvmon.core.errors import InvalidArgument, OperationFailed, OperationInvalid
from hvmon.core.xml.domain import Domain as DomainXML
from hvmon.core.xml.domain import SecLabel


@dataclass(frozen=True)
class Identity:
    """The uid/gid a guest's QEMU runs as and whether its files are chowned to them."""

    uid: int
    gid: int
    relabel: bool

    @property
    def label(self) -> str:
        return f"+{self.uid}:+{self.gid}"


def parse_label(text: str) -> tuple[int, int]:
    """``+UID:+GID`` or ``user:group`` (names looked up here) -> (uid, gid)."""
    user, sep, group = text.strip().partition(":")
    if not sep or not user or not group:
        raise InvalidArgument(f"DAC label '{text}' must be +UID:+GID or user:group")
    return _id(user, "user"), _id(group, "group")


def _id(text: str, kind: str) -> int:
    if text.startswith("+"):
        if not text[1:].isdigit() or int(text[1:]) > 2**31 - 1:
            raise InvalidArgument(f"DAC label: '{text}' is not a {kind} id")
        return int(text[1:])
    try:
        return pwd.getpwnam(text).pw_uid if kind == "user" else grp.getgrnam(text).gr_gid
    except KeyError:
        raise InvalidArgument(f"DAC label: {kind} '{text}' does not exist on this host") \
            from None


class Identities:
    """Per-guest identities of one driver root; the registry lock serialises callers."""

    def __init__(self, store: Path, config: IsolationConfig,
                 known: Callable[[str], bool] = lambda uuid: True) -> None:
        self.store = store
        self.config = config
        self.known = known
        self._lock = threading.Lock()

    def resolve(self, uuid: str, name: str, live: DomainXML) -> Identity | None:
        """The identity ``live`` runs with (None: the daemon's own); shows it in ``live``.

        Idempotent: the start hooks that need it (taps, DAC) may each ask.
        """
        cfg = self.config
        labels = live.seclabels
        for other in labels:
            if other.model not in ("dac", None) and other.type != "none":
                raise OperationInvalid(f"domain '{name}': security model '{other.model}' is "
                                       "not available here (the QEMU driver has 'dac')")
        dac = next((label for label in labels if label.model == "dac"), None)
        relabel = cfg.dynamic_ownership and (dac is None or dac.relabels)
        if dac is not None and dac.type == "none":
            raise OperationInvalid(f"domain '{name}': <seclabel type='none' model='dac'> is "
                                   "not supported (use static or dynamic)")
        if dac is not None and dac.type == "static":
            if not dac.label:
                raise InvalidArgument(f"domain '{name}': <seclabel type='static' model='dac'> "
                                      "needs <label>+UID:+GID</label>")
            uid, gid = parse_label(dac.label)
            found = Identity(uid, gid, relabel)
        elif cfg.user_range is not None:
            uid = self._allocate(uuid, name)
            found = Identity(uid, uid, relabel)
        elif cfg.uid is not None and cfg.gid is not None:
            found = Identity(cfg.uid, cfg.gid, relabel)
        else:  # QEMU runs as the daemon: a dynamic label (say, from a migration) says so
            if dac is not None:
                self._show(live, dac, Identity(os.geteuid(), os.getegid(), False))
            return None
        self._show(live, dac, found)
        return found

    @staticmethod
    def _show(live: DomainXML, dac: SecLabel | None, found: Identity) -> None:
        """Write the label in effect into the live XML (libvirt's live seclabel)."""
        if dac is None:
            element = etree.SubElement(live.element, "seclabel", type="dynamic", model="dac")
            dac = SecLabel(element)
        if dac.type != "static":
            dac.label = found.label
        dac.relabel = "yes" if found.relabel else "no"
        dac.imagelabel = found.label if found.relabel else None

    # --- the persisted uids of user_range -----------------------------------------
    def _read(self) -> dict[str, int]:
        try:
            data = json.loads(self.store.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise OperationFailed(f"cannot read the guests' uids in {self.store}: {exc}") \
                from None
        if not isinstance(data, dict):
            raise OperationFailed(f"{self.store}: not a uuid -> uid map")
        return {str(k): int(v) for k, v in data.items()}

    def _write(self, ids: dict[str, int]) -> None:
        tmp = self.store.with_name(self.store.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(ids, out, indent=1, sort_keys=True)
        os.replace(tmp, self.store)

    def _allocate(self, uuid: str, name: str) -> int:
        assert self.config.user_range is not None
        first, count = self.config.user_range
        with self._lock:
            ids = self._read()
            uid = ids.get(uuid)
            if uid is not None and first <= uid < first + count:
                return uid
            ids = {k: v for k, v in ids.items() if k == uuid or self.known(k)}
            used = set(ids.values())
            uid = next((u for u in range(first, first + count) if u not in used), None)
            if uid is None:
                raise OperationFailed(f"domain '{name}': no free uid in user_range "
                                      f"[{first}, {count}] of qemu.conf ({count} guests "
                                      "hold one)")
            ids[uuid] = uid
            self._write(ids)
            return uid

    def uid_of(self, uuid: str) -> int | None:
        """The uid ``user_range`` gave the domain, if any."""
        with self._lock:
            return self._read().get(uuid)

    def forget(self, uuid: str) -> None:
        """Release the domain's uid (undefined, or a transient domain stopped)."""
        with self._lock, contextlib.suppress(OperationFailed):
            ids = self._read()
            if ids.pop(uuid, None) is not None:
                self._write(ids)
