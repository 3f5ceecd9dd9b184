"""Find objects the way virsh does: by id, UUID or name (domains), UUID or name."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from hvmon.core.errors import (
    HvmonError,
    InvalidArgument,
    NoSuchDomain,
    NoSuchNetwork,
    NoSuchPool,
    NoSuchSecret,
    NoSuchVolume,
)

if TYPE_CHECKING:
    from hvmon.core.api import Connection, Domain, Network, Secret, StoragePool, StorageVolume

T = TypeVar("T")

UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)
_MISSING = (NoSuchDomain, NoSuchNetwork, NoSuchPool, NoSuchSecret, NoSuchVolume, InvalidArgument)


def _first(attempts: list[Callable[[], T]], error: type[HvmonError], what: str) -> T:
    """The first attempt that finds the object; 'not found' errors fall through."""
    last: HvmonError | None = None
    for attempt in attempts:
        try:
            return attempt()
        except _MISSING as exc:
            last = exc
    detail = f": {last}" if last is not None else ""
    raise error(f"failed to get {what}{detail}")


def domain(conn: Connection, text: str) -> Domain:
    """A domain by id (when numeric), then UUID (when shaped like one), then name."""
    attempts: list[Callable[[], Domain]] = []
    if text.isdigit():
        attempts.append(lambda: conn.lookup_domain_by_id(int(text)))
    if UUID_RE.match(text):
        attempts.append(lambda: conn.lookup_domain_by_uuid(text))
    attempts.append(lambda: conn.lookup_domain_by_name(text))
    return _first(attempts, NoSuchDomain, f"domain '{text}'")


def pool(conn: Connection, text: str) -> StoragePool:
    """A pool by UUID (when shaped like one), then name."""
    attempts: list[Callable[[], StoragePool]] = []
    if UUID_RE.match(text):
        attempts.append(lambda: conn.lookup_pool_by_uuid(text))
    attempts.append(lambda: conn.lookup_pool_by_name(text))
    return _first(attempts, NoSuchPool, f"pool '{text}'")


def network(conn: Connection, text: str) -> Network:
    """A network by UUID (when shaped like one), then name."""
    attempts: list[Callable[[], Network]] = []
    if UUID_RE.match(text):
        attempts.append(lambda: conn.lookup_network_by_uuid(text))
    attempts.append(lambda: conn.lookup_network_by_name(text))
    return _first(attempts, NoSuchNetwork, f"network '{text}'")


def secret(conn: Connection, text: str) -> Secret:
    """A secret by UUID."""
    return _first([lambda: conn.lookup_secret_by_uuid(text)], NoSuchSecret,
                  f"secret '{text}'")


def volume(conn: Connection, text: str, pool_text: str | None = None) -> StorageVolume:
    """A volume by name in ``pool_text`` when given, then by key, then by path."""
    attempts: list[Callable[[], StorageVolume]] = []
    if pool_text is not None:
        owner = pool(conn, pool_text)
        attempts.append(lambda: owner.lookup_volume_by_name(text))
    attempts.append(lambda: conn.lookup_volume_by_key(text))
    attempts.append(lambda: conn.lookup_volume_by_path(text))
    return _first(attempts, NoSuchVolume, f"vol '{text}'")
