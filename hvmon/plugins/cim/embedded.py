"""Embedded instances in method parameters: CIM-XML ``<INSTANCE>`` text, an INSTANCE
element, or MOF ``instance of Class { ... };`` (what libvirt-cim's users send)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hvmon.plugins.cim.errors import CIMError, Status
from hvmon.plugins.cim.mof import MofError
from hvmon.plugins.cim.objects import QualifierDecl
from hvmon.plugins.cim.schema import parse_instance_mof
from hvmon.plugins.cim.values import coerce
from hvmon.plugins.cim.xmlparse import ParsedInstance, parse_instance_xml


@dataclass
class Settings:
    """An embedded instance: its class and its values by lower-case name (raw)."""

    classname: str
    values: dict[str, Any]
    where: str

    def text(self, name: str) -> str | None:
        val = self.values.get(name.lower())
        if val is None:
            return None
        return coerce("string", False, val if not isinstance(val, bool) else str(val),
                      f"{self.where}.{name}")

    def number(self, name: str, cimtype: str = "uint64") -> int | None:
        val = self.values.get(name.lower())
        return None if val is None else coerce(cimtype, False, val, f"{self.where}.{name}")

    def is_class(self, suffix: str) -> bool:
        return self.classname.lower().endswith(suffix.lower())


def parse_settings(raw: Any, where: str, qualifiers: Mapping[str, QualifierDecl]) -> Settings:
    """One embedded instance from a parameter value."""
    if isinstance(raw, ParsedInstance):
        return Settings(raw.classname, {k: p.value for k, p in raw.properties.items()}, where)
    if not isinstance(raw, str) or not raw.strip():
        raise CIMError(Status.INVALID_PARAMETER, f"{where}: expected an embedded instance")
    text = raw.strip()
    if text.startswith("<"):
        inst = parse_instance_xml(text)
        return Settings(inst.classname, {k: p.value for k, p in inst.properties.items()}, where)
    try:
        decl = parse_instance_mof(text if text.endswith(";") else text + ";", qualifiers)
    except (MofError, ValueError) as exc:
        raise CIMError(Status.INVALID_PARAMETER, f"{where}: not a CIM-XML or MOF instance "
                                                 f"({exc})") from None
    return Settings(decl.classname, {k.lower(): v for k, v in decl.values.items()}, where)


def parse_settings_list(raw: Any, where: str,
                        qualifiers: Mapping[str, QualifierDecl]) -> list[Settings]:
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    return [parse_settings(item, f"{where}[{i}]", qualifiers) for i, item in enumerate(items)]
