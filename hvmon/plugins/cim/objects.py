"""CIM objects the server handles: instance paths, instances and class declarations.

Names are case-insensitive in CIM: lookups go through lower-cased keys, while
the spelling from the class definition is what goes on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: CIM intrinsic data types (DSP0004), plus ``reference``
INT_RANGES: Mapping[str, tuple[int, int]] = {
    "uint8": (0, 2**8 - 1), "sint8": (-2**7, 2**7 - 1),
    "uint16": (0, 2**16 - 1), "sint16": (-2**15, 2**15 - 1),
    "uint32": (0, 2**32 - 1), "sint32": (-2**31, 2**31 - 1),
    "uint64": (0, 2**64 - 1), "sint64": (-2**63, 2**63 - 1),
}
TYPES = frozenset({*INT_RANGES, "real32", "real64", "boolean", "string", "char16",
                   "datetime", "reference"})


@dataclass(frozen=True)
class InstancePath:
    """An instance name: class, key bindings (str/int/bool/InstancePath values), namespace."""

    classname: str
    keys: tuple[tuple[str, Any], ...]
    namespace: str = ""
    host: str = ""

    def key(self, name: str) -> Any:
        """The value bound to key ``name`` (case-insensitive), or None."""
        lname = name.lower()
        return next((v for k, v in self.keys if k.lower() == lname), None)

    def identity(self) -> tuple[Any, ...]:
        """What two paths to the same instance share (class, keys; case-insensitive names)."""
        return (self.classname.lower(),
                tuple(sorted((k.lower(), _ident(v)) for k, v in self.keys)))

    def in_namespace(self, namespace: str) -> InstancePath:
        return InstancePath(self.classname, self.keys, namespace, self.host)

    def __str__(self) -> str:
        keys = ",".join(f'{k}="{v}"' if isinstance(v, str) else f"{k}={v}" for k, v in self.keys)
        prefix = f"{self.namespace}:" if self.namespace else ""
        return f"{prefix}{self.classname}.{keys}"


def _ident(value: Any) -> Any:
    if isinstance(value, InstancePath):
        return value.identity()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class Instance:
    """An instance: its class, its path and its property values by (any-case) name."""

    classname: str
    path: InstancePath
    values: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        lname = name.lower()
        return next((v for k, v in self.values.items() if k.lower() == lname), None)


@dataclass(frozen=True)
class Qualifier:
    """A qualifier value (``type`` from its declaration)."""

    name: str
    type: str
    value: Any
    is_array: bool = False
    propagated: bool = False


@dataclass(frozen=True)
class QualifierDecl:
    """``Qualifier Name : type [= default], Scope(...), Flavor(...)``."""

    name: str
    type: str
    is_array: bool
    default: Any
    scopes: tuple[str, ...] = ()
    tosubclass: bool = True
    overridable: bool = True


@dataclass
class Feature:
    """A property, method or parameter declaration."""

    name: str
    type: str
    is_array: bool = False
    refclass: str = ""
    qualifiers: dict[str, Qualifier] = field(default_factory=dict)
    default: Any = None
    class_origin: str = ""
    propagated: bool = False
    params: list[Feature] = field(default_factory=list)
    is_method: bool = False

    def qualifier(self, name: str) -> Any:
        qual = self.qualifiers.get(name.lower())
        return None if qual is None else qual.value

    @property
    def is_key(self) -> bool:
        return bool(self.qualifier("key"))


@dataclass
class ClassDecl:
    """A class as declared (local features) or resolved (with every inherited feature)."""

    name: str
    superclass: str = ""
    qualifiers: dict[str, Qualifier] = field(default_factory=dict)
    properties: dict[str, Feature] = field(default_factory=dict)
    methods: dict[str, Feature] = field(default_factory=dict)

    def qualifier(self, name: str) -> Any:
        qual = self.qualifiers.get(name.lower())
        return None if qual is None else qual.value

    def prop(self, name: str) -> Feature | None:
        return self.properties.get(name.lower())

    def method(self, name: str) -> Feature | None:
        return self.methods.get(name.lower())

    @property
    def key_names(self) -> list[str]:
        return [p.name for p in self.properties.values() if p.is_key]

    @property
    def is_association(self) -> bool:
        return bool(self.qualifier("association"))
