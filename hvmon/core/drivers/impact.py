"""libvirt's modification impact (VIR_DOMAIN_AFFECT_CURRENT/LIVE/CONFIG)."""

from __future__ import annotations

from hvmon.core.errors import OperationInvalid


def affected(name: str, active: bool, persistent: bool, live: bool,
             config: bool) -> tuple[bool, bool]:
    """(change the running guest, change the definition); neither flag means current."""
    if not live and not config:
        live, config = active, not active
    if live and not active:
        raise OperationInvalid(f"domain '{name}' is not running")
    if config and not persistent:
        raise OperationInvalid(f"transient domain '{name}' has no persistent definition")
    return live, config
