"""Value patterns shared by the checks, the defaults and the schemas' Python side.

Keep these in step with ``schemas/common.rng``.
"""

from __future__ import annotations

import re

UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{32}"
)
MAC_RE = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}")
UNIT_RE = re.compile(r"[bB](?:[yY][tT][eE][sS]?)?|[kKmMgGtTpPeE](?:[iI]?[bB])?")
NAME_RE = re.compile(r"\s*[^/\n\r\s][^/\n\r]*")
ULONG_MAX = 2**64 - 1


def is_uuid(value: str | None) -> bool:
    """True for 32 hex digits, plain or dashed 8-4-4-4-12 (surrounding blanks allowed)."""
    return value is not None and UUID_RE.fullmatch(value.strip()) is not None


def is_mac(value: str | None) -> bool:
    """True for six colon-separated hex pairs."""
    return value is not None and MAC_RE.fullmatch(value) is not None


def is_unit(value: str | None) -> bool:
    """True for a libvirt size unit (``KiB``, ``k``, ``GB``, ``bytes``...)."""
    return value is not None and UNIT_RE.fullmatch(value) is not None


def is_name(value: str | None) -> bool:
    """True for a usable object name: not blank, no ``/``, one line."""
    return value is not None and NAME_RE.fullmatch(value) is not None


def is_uint(value: str | None, maximum: int = ULONG_MAX) -> bool:
    """True for a decimal unsigned integer no larger than ``maximum``."""
    if value is None:
        return False
    text = value.strip()
    return text.isascii() and text.isdigit() and int(text) <= maximum


def normalise_mac(value: str) -> str:
    """Lower-case form used to compare MAC addresses."""
    return value.strip().lower()
