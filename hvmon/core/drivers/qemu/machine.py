"""Machine types: aliases resolved to the versioned type, for a stable guest ABI.

``pc`` and ``q35`` follow each QEMU release; ``pc-i440fx-7.2`` stays the same
machine in every later QEMU. A domain is defined with the versioned name, so an
upgrade of QEMU never changes what its guest sees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hvmon.core.errors import InvalidArgument

if TYPE_CHECKING:
    from hvmon.core.drivers.qemu.caps import QemuCaps

#: how many supported names an error message lists before "..."
_LISTED = 12


def canonical_machine(requested: str | None, caps: QemuCaps) -> str:
    """The versioned machine type for ``requested`` (an alias, a versioned name, or none).

    None or "" means QEMU's default machine. An alias resolves to the machine
    that carries it; a versioned name is kept. Anything else is
    :class:`InvalidArgument` naming the supported types.
    """
    name = (requested or "").strip()
    if not name:
        default = caps.default_machine
        if default is None:
            raise InvalidArgument(f"QEMU binary {caps.binary} has no default machine type; "
                                  "give one in <os><type machine='...'>")
        return default.name
    for machine in caps.machines:
        if machine.name == name:
            return machine.name
    for machine in caps.machines:
        if machine.alias == name:
            return machine.name
    raise InvalidArgument(
        f"machine type '{name}' not supported by {caps.binary}, supported: "
        f"{_supported_list(caps)}"
    )


def _supported_list(caps: QemuCaps) -> str:
    names = [m.alias for m in caps.machines if m.alias] + [
        m.name for m in caps.machines if m.name != "none" and not m.deprecated
    ]
    names = list(dict.fromkeys(names))
    shown = ", ".join(names[:_LISTED])
    return shown + (f", ... ({len(names) - _LISTED} more)" if len(names) > _LISTED else "")


def machine_family(machine: str) -> str:
    """``"i440fx"``, ``"q35"`` or ``"other"`` for a machine type name or alias."""
    name = machine.strip().lower()
    if name == "q35" or name.startswith("pc-q35"):
        return "q35"
    if name == "pc" or name.startswith("pc-i440fx") or (
        name.startswith("pc-") and name[3:4].isdigit()
    ):
        return "i440fx"
    return "other"


def is_deprecated(machine: str, caps: QemuCaps) -> bool:
    """True when QEMU marks ``machine`` (name or alias) deprecated."""
    canonical = canonical_machine(machine, caps)
    found = caps.machine(canonical)
    return bool(found and found.deprecated)
