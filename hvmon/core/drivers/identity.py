"""Name and UUID rules every driver applies to its objects (libvirt's)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from hvmon.core.errors import AlreadyExists


class Named(Protocol):
    name: str
    uuid: str


N = TypeVar("N", bound=Named)


def find_named(objects: Iterable[N], by: str, value: str) -> N | None:
    """The object whose ``name`` or ``uuid`` (``by``) equals ``value``."""
    for obj in objects:
        if getattr(obj, by) == value:
            return obj
    return None


def check_identity(objects: Iterable[N], kind: str, name: str, uuid: str) -> N | None:
    """The object a definition with ``name`` and ``uuid`` redefines, or None.

    Refuses, as libvirt does, a name already held by another UUID and a UUID
    already held by another name.
    """
    found = None
    for obj in objects:
        if obj.name == name and obj.uuid != uuid:
            raise AlreadyExists(f"{kind} '{name}' already exists with uuid {obj.uuid}")
        if obj.uuid == uuid:
            if obj.name != name:
                raise AlreadyExists(f"{kind} '{obj.name}' is already defined with uuid {uuid}")
            found = obj
    return found
