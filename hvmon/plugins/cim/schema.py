"""Class definitions served by the agent: the shipped MOF, parsed and resolved per namespace.

``root/virt`` holds every class; ``root/interop`` the CIM classes and the
profile registration classes. The ``KVM_`` prefix of the shipped MOF becomes
the configured ``class_prefix``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from importlib import resources

from hvmon.plugins.cim.errors import CIMError, Status
from hvmon.plugins.cim.mof import InstanceDecl, MofDocument, parse_mof
from hvmon.plugins.cim.objects import ClassDecl, Feature, Qualifier, QualifierDecl

VIRT = "root/virt"
INTEROP = "root/interop"
#: the MOF files of each namespace, in compile order
NAMESPACE_FILES: Mapping[str, tuple[str, ...]] = {
    VIRT: ("qualifiers.mof", "cim_schema.mof", "virt.mof", "interop.mof"),
    INTEROP: ("qualifiers.mof", "cim_schema.mof", "interop.mof"),
}
SHIPPED_PREFIX = "KVM_"


def mof_text(name: str) -> str:
    """The text of a shipped MOF file."""
    return resources.files("hvmon.plugins.cim").joinpath("mof", name).read_text("utf-8")


class Schema:
    """The resolved classes of one namespace."""

    def __init__(self, namespace: str, local: Iterable[ClassDecl],
                 qualifiers: Mapping[str, QualifierDecl]) -> None:
        self.namespace = namespace
        self.qualifiers = dict(qualifiers)
        self.local: dict[str, ClassDecl] = {}
        for cls in local:
            if cls.superclass and cls.superclass.lower() not in self.local:
                raise ValueError(f"class {cls.name}: superclass {cls.superclass} is not declared "
                                 "before it")
            self.local[cls.name.lower()] = cls
        self.resolved: dict[str, ClassDecl] = {}
        for name in self.local:
            self.resolved[name] = self._resolve(self.local[name])
        self.children: dict[str, list[str]] = {name: [] for name in self.local}
        for cls in self.local.values():
            if cls.superclass:
                self.children[cls.superclass.lower()].append(cls.name)

    def _resolve(self, cls: ClassDecl) -> ClassDecl:
        if not cls.superclass:
            return copy.deepcopy(cls)
        base = self.resolved[cls.superclass.lower()]
        out = ClassDecl(cls.name, cls.superclass)
        for qual in base.qualifiers.values():
            decl = self.qualifiers.get(qual.name.lower())
            if decl is None or decl.tosubclass:
                out.qualifiers[qual.name.lower()] = Qualifier(qual.name, qual.type, qual.value,
                                                              qual.is_array, True)
        out.qualifiers.update(copy.deepcopy(cls.qualifiers))
        for kind in ("properties", "methods"):
            inherited: dict[str, Feature] = getattr(base, kind)
            target: dict[str, Feature] = getattr(out, kind)
            for key, feature in inherited.items():
                item = copy.deepcopy(feature)
                item.propagated = True
                item.qualifiers = self._inherited_quals(feature.qualifiers)
                target[key] = item
            for key, feature in getattr(cls, kind).items():
                item = copy.deepcopy(feature)
                if key in inherited:
                    quals = self._inherited_quals(inherited[key].qualifiers)
                    quals.update(item.qualifiers)
                    item.qualifiers = quals
                target[key] = item
        return out

    def _inherited_quals(self, quals: Mapping[str, Qualifier]) -> dict[str, Qualifier]:
        out = {}
        for key, qual in quals.items():
            decl = self.qualifiers.get(key)
            if decl is not None and not decl.tosubclass:
                continue
            out[key] = Qualifier(qual.name, qual.type, qual.value, qual.is_array, True)
        return out

    # --- lookups ------------------------------------------------------------
    def get(self, name: str) -> ClassDecl:
        """The resolved class, or CIM_ERR_INVALID_CLASS."""
        cls = self.resolved.get(name.lower())
        if cls is None:
            raise CIMError(Status.INVALID_CLASS, f"no class {name} in namespace {self.namespace}")
        return cls

    def find(self, name: str) -> ClassDecl | None:
        return self.resolved.get(name.lower())

    def has(self, name: str) -> bool:
        return name.lower() in self.resolved

    def subclasses(self, name: str | None, deep: bool) -> list[str]:
        """Class names below ``name`` (None: the top classes), in declaration order."""
        if name is None:
            top = [c.name for c in self.local.values() if not c.superclass]
            if not deep:
                return top
            return [n for t in top for n in (t, *self.subclasses(t, True))]
        out: list[str] = []
        for child in self.children[name.lower()]:
            out.append(child)
            if deep:
                out.extend(self.subclasses(child, True))
        return out

    def is_a(self, name: str, ancestor: str) -> bool:
        """Whether class ``name`` is ``ancestor`` or one of its subclasses."""
        target = ancestor.lower()
        current = self.local.get(name.lower())
        while current is not None:
            if current.name.lower() == target:
                return True
            current = self.local.get(current.superclass.lower()) if current.superclass else None
        return False


def _rename(name: str, prefix: str) -> str:
    if prefix != SHIPPED_PREFIX and name.startswith(SHIPPED_PREFIX):
        return prefix + name[len(SHIPPED_PREFIX):]
    return name


def _apply_prefix(doc: MofDocument, prefix: str) -> None:
    for cls in doc.classes:
        cls.name = _rename(cls.name, prefix)
        cls.superclass = _rename(cls.superclass, prefix)
        for feature in (*cls.properties.values(), *cls.methods.values()):
            feature.class_origin = _rename(feature.class_origin, prefix)
            feature.refclass = _rename(feature.refclass, prefix)
            for param in feature.params:
                param.refclass = _rename(param.refclass, prefix)


def load_schemas(prefix: str = SHIPPED_PREFIX) -> dict[str, Schema]:
    """Every namespace's schema from the shipped MOF (parsed once per file)."""
    docs: dict[str, MofDocument] = {}
    qualifiers: dict[str, QualifierDecl] = {}
    for name in ("qualifiers.mof", "cim_schema.mof", "virt.mof", "interop.mof"):
        doc = parse_mof(mof_text(name), qualifiers)
        qualifiers = doc.qualifiers
        _apply_prefix(doc, prefix)
        docs[name] = doc
    return {ns: Schema(ns, [c for f in files for c in docs[f].classes], qualifiers)
            for ns, files in NAMESPACE_FILES.items()}


def parse_instance_mof(text: str, qualifiers: Mapping[str, QualifierDecl]) -> InstanceDecl:
    """One ``instance of Class { ... };`` declaration (an embedded instance written in MOF)."""
    doc = parse_mof(text, dict(qualifiers))
    if len(doc.instances) != 1 or doc.classes:
        raise ValueError("expected exactly one instance declaration")
    return doc.instances[0]
