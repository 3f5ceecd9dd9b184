"""CIM-XML writer (DSP0201): instances, paths, classes and the response envelopes.

Written as strings, every element with an explicit end tag (Debian's wbemcli
rejects self-closing ``<PROPERTY .../>``). An instance is written from its
class definition, so every PROPERTY has its TYPE and properties without a
value are sent as NULL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hvmon.plugins.cim.objects import ClassDecl, Feature, Instance, InstancePath, Qualifier
from hvmon.plugins.cim.values import escape, to_text

XML_HEAD = '<?xml version="1.0" encoding="utf-8" ?>\n'
CIM_OPEN = '<CIM CIMVERSION="2.0" DTDVERSION="2.0">'


# --- values and paths -------------------------------------------------------

def value(cimtype: str, val: Any) -> str:
    return f"<VALUE>{escape(to_text(cimtype, val))}</VALUE>"


def value_array(cimtype: str, vals: Iterable[Any]) -> str:
    inner = "".join("<VALUE.NULL></VALUE.NULL>" if v is None else value(cimtype, v)
                    for v in vals)
    return f"<VALUE.ARRAY>{inner}</VALUE.ARRAY>"


def localnamespacepath(namespace: str) -> str:
    parts = "".join(f'<NAMESPACE NAME="{escape(p)}"></NAMESPACE>'
                    for p in namespace.split("/") if p)
    return f"<LOCALNAMESPACEPATH>{parts}</LOCALNAMESPACEPATH>"


def _keyvalue(val: Any) -> str:
    if isinstance(val, bool):
        return f'<KEYVALUE VALUETYPE="boolean">{"TRUE" if val else "FALSE"}</KEYVALUE>'
    if isinstance(val, int | float):
        return f'<KEYVALUE VALUETYPE="numeric">{val}</KEYVALUE>'
    return f'<KEYVALUE VALUETYPE="string">{escape(str(val))}</KEYVALUE>'


def instancename(path: InstancePath, host: str = "") -> str:
    out = [f'<INSTANCENAME CLASSNAME="{escape(path.classname)}">']
    for name, val in path.keys:
        inner = value_reference(val, host) if isinstance(val, InstancePath) else _keyvalue(val)
        out.append(f'<KEYBINDING NAME="{escape(name)}">{inner}</KEYBINDING>')
    out.append("</INSTANCENAME>")
    return "".join(out)


def instancepath(path: InstancePath, host: str) -> str:
    """``INSTANCEPATH`` (with a host) or ``LOCALINSTANCEPATH`` (without)."""
    name = instancename(path, host)
    if host or path.host:
        return (f"<INSTANCEPATH><NAMESPACEPATH><HOST>{escape(path.host or host)}</HOST>"
                f"{localnamespacepath(path.namespace)}</NAMESPACEPATH>{name}</INSTANCEPATH>")
    return f"<LOCALINSTANCEPATH>{localnamespacepath(path.namespace)}{name}</LOCALINSTANCEPATH>"


def value_reference(path: InstancePath, host: str = "") -> str:
    if not path.namespace:
        return f"<VALUE.REFERENCE>{instancename(path)}</VALUE.REFERENCE>"
    return f"<VALUE.REFERENCE>{instancepath(path, host)}</VALUE.REFERENCE>"


def objectpath(path: InstancePath, host: str) -> str:
    return f"<OBJECTPATH>{instancepath(path, host)}</OBJECTPATH>"


# --- qualifiers and classes ---------------------------------------------------

@dataclass(frozen=True)
class Flags:
    """What to include: qualifiers, class origin, and a property list (None: all)."""

    qualifiers: bool = False
    class_origin: bool = False
    properties: frozenset[str] | None = None


def qualifier(qual: Qualifier, flavors: Mapping[str, tuple[bool, bool]]) -> str:
    attrs = f'NAME="{escape(qual.name)}" TYPE="{qual.type}"'
    if qual.propagated:
        attrs += ' PROPAGATED="true"'
    tosubclass, overridable = flavors.get(qual.name.lower(), (True, True))
    if not overridable:
        attrs += ' OVERRIDABLE="false"'
    if not tosubclass:
        attrs += ' TOSUBCLASS="false"'
    if qual.value is None:
        body = ""
    elif qual.is_array:
        items = qual.value if isinstance(qual.value, list) else [qual.value]
        body = value_array(qual.type, items)
    else:
        body = value(qual.type, qual.value)
    return f"<QUALIFIER {attrs}>{body}</QUALIFIER>"


def _quals(quals: Mapping[str, Qualifier], flavors: Mapping[str, tuple[bool, bool]]) -> str:
    return "".join(qualifier(q, flavors) for q in quals.values())


def _origin(feature: Feature, flags: Flags) -> str:
    out = ""
    if flags.class_origin and feature.class_origin:
        out += f' CLASSORIGIN="{escape(feature.class_origin)}"'
    if feature.propagated:
        out += ' PROPAGATED="true"'
    return out


def _embedded_attr(feature: Feature) -> str:
    if feature.qualifier("EmbeddedInstance"):
        return ' EmbeddedObject="instance"'
    if feature.qualifier("EmbeddedObject"):
        return ' EmbeddedObject="object"'
    return ""


def property_decl(feature: Feature, flags: Flags,
                  flavors: Mapping[str, tuple[bool, bool]], val: Any = None) -> str:
    """A PROPERTY, PROPERTY.ARRAY or PROPERTY.REFERENCE with ``val`` (or its default)."""
    quals = _quals(feature.qualifiers, flavors) if flags.qualifiers else ""
    name = escape(feature.name)
    attrs = _origin(feature, flags)
    if feature.type == "reference":
        body = value_reference(val) if isinstance(val, InstancePath) else ""
        return (f'<PROPERTY.REFERENCE NAME="{name}" REFERENCECLASS="{escape(feature.refclass)}"'
                f"{attrs}>{quals}{body}</PROPERTY.REFERENCE>")
    attrs += _embedded_attr(feature)
    if feature.is_array:
        body = "" if val is None else value_array(feature.type, val)
        return (f'<PROPERTY.ARRAY NAME="{name}" TYPE="{feature.type}"{attrs}>{quals}{body}'
                "</PROPERTY.ARRAY>")
    body = "" if val is None else value(feature.type, val)
    return f'<PROPERTY NAME="{name}" TYPE="{feature.type}"{attrs}>{quals}{body}</PROPERTY>'


def _parameter(param: Feature, flags: Flags, flavors: Mapping[str, tuple[bool, bool]]) -> str:
    quals = _quals(param.qualifiers, flavors) if flags.qualifiers else ""
    name = escape(param.name)
    if param.type == "reference":
        tag = "PARAMETER.REFARRAY" if param.is_array else "PARAMETER.REFERENCE"
        return f'<{tag} NAME="{name}" REFERENCECLASS="{escape(param.refclass)}">{quals}</{tag}>'
    tag = "PARAMETER.ARRAY" if param.is_array else "PARAMETER"
    return f'<{tag} NAME="{name}" TYPE="{param.type}">{quals}</{tag}>'


def class_xml(cls: ClassDecl, flags: Flags, flavors: Mapping[str, tuple[bool, bool]],
              local_only: bool) -> str:
    """A CLASS element (features of the class itself only when ``local_only``)."""
    sup = f' SUPERCLASS="{escape(cls.superclass)}"' if cls.superclass else ""
    out = [f'<CLASS NAME="{escape(cls.name)}"{sup}>']
    if flags.qualifiers:
        out.append(_quals({k: q for k, q in cls.qualifiers.items() if not q.propagated},
                          flavors))
    for lname, prop in cls.properties.items():
        if local_only and prop.propagated:
            continue
        if flags.properties is not None and lname not in flags.properties:
            continue
        out.append(property_decl(prop, flags, flavors, prop.default))
    for method in cls.methods.values():
        if local_only and method.propagated:
            continue
        quals = _quals(method.qualifiers, flavors) if flags.qualifiers else ""
        params = "".join(_parameter(p, flags, flavors) for p in method.params)
        out.append(f'<METHOD NAME="{escape(method.name)}" TYPE="{method.type}"'
                   f"{_origin(method, flags)}>{quals}{params}</METHOD>")
    out.append("</CLASS>")
    return "".join(out)


# --- instances ------------------------------------------------------------------

class InstanceWriter:
    """Writes instances of one class fast: the tags are computed once per class and flags."""

    def __init__(self, cls: ClassDecl, flags: Flags,
                 flavors: Mapping[str, tuple[bool, bool]]) -> None:
        self.classname = cls.name
        self.flags = flags
        self.flavors = flavors
        self.features: list[tuple[str, Feature, str, str]] = []
        for lname, prop in cls.properties.items():
            if flags.properties is not None and lname not in flags.properties:
                continue
            empty = property_decl(prop, Flags(flags.qualifiers, flags.class_origin), flavors)
            # split "<PROPERTY ...>quals" from "</PROPERTY>" to insert the value
            cut = empty.rindex("</")
            self.features.append((lname, prop, empty[:cut], empty[cut:]))
        self.head = f'<INSTANCE CLASSNAME="{escape(cls.name)}">'

    def write(self, inst: Instance, host: str = "") -> str:
        lowered = {k.lower(): v for k, v in inst.values.items()}
        out = [self.head]
        append = out.append
        for lname, prop, opener, closer in self.features:
            val = lowered.get(lname)
            if val is None:
                append(opener + closer)
            elif prop.type == "reference":
                append(opener + value_reference(val, host) + closer)
            elif prop.is_array:
                append(opener + value_array(prop.type, val) + closer)
            elif isinstance(val, str):
                append(f"{opener}<VALUE>{escape(val)}</VALUE>{closer}")
            else:
                append(f"{opener}<VALUE>{escape(to_text(prop.type, val))}</VALUE>{closer}")
        append("</INSTANCE>")
        return "".join(out)


# --- envelopes --------------------------------------------------------------------

def _message(msgid: str, body: str, kind: str = "SIMPLERSP") -> str:
    return (f'{XML_HEAD}{CIM_OPEN}<MESSAGE ID="{escape(msgid)}" PROTOCOLVERSION="1.0">'
            f"<{kind}>{body}</{kind}></MESSAGE></CIM>")


def imethod_response(msgid: str, name: str, parts: Sequence[str] | None) -> str:
    """An IMETHODRESPONSE; ``parts`` None: no IRETURNVALUE (DeleteInstance ...)."""
    inner = "" if parts is None else f"<IRETURNVALUE>{''.join(parts)}</IRETURNVALUE>"
    return _message(msgid, f'<IMETHODRESPONSE NAME="{escape(name)}">{inner}</IMETHODRESPONSE>')


def error_xml(code: int, description: str) -> str:
    return f'<ERROR CODE="{code}" DESCRIPTION="{escape(description)}"></ERROR>'


def imethod_error(msgid: str, name: str, code: int, description: str) -> str:
    return _message(msgid, f'<IMETHODRESPONSE NAME="{escape(name)}">'
                           f"{error_xml(code, description)}</IMETHODRESPONSE>")


def method_error(msgid: str, name: str, code: int, description: str) -> str:
    return _message(msgid, f'<METHODRESPONSE NAME="{escape(name)}">'
                           f"{error_xml(code, description)}</METHODRESPONSE>")


def out_param(param: Feature, val: Any, host: str) -> str:
    name = escape(param.name)
    if param.type == "reference":
        if param.is_array:
            refs = "".join(value_reference(v, host) for v in val)
            return (f'<PARAMVALUE NAME="{name}" PARAMTYPE="reference">'
                    f"<VALUE.REFARRAY>{refs}</VALUE.REFARRAY></PARAMVALUE>")
        return (f'<PARAMVALUE NAME="{name}" PARAMTYPE="reference">'
                f"{value_reference(val, host)}</PARAMVALUE>")
    body = value_array(param.type, val) if param.is_array else value(param.type, val)
    return f'<PARAMVALUE NAME="{name}" PARAMTYPE="{param.type}">{body}</PARAMVALUE>'


def method_response(msgid: str, name: str, return_type: str, result: Any,
                    outputs: Sequence[str]) -> str:
    ret = f'<RETURNVALUE PARAMTYPE="{return_type}">{value(return_type, result)}</RETURNVALUE>'
    return _message(msgid, f'<METHODRESPONSE NAME="{escape(name)}">{ret}{"".join(outputs)}'
                           "</METHODRESPONSE>")


def export_indication(msgid: str, instance_xml: str) -> str:
    """An ExportIndication request (DSP0200 ch. 5.4) carrying one indication."""
    body = ('<EXPMETHODCALL NAME="ExportIndication"><EXPPARAMVALUE NAME="NewIndication">'
            f"{instance_xml}</EXPPARAMVALUE></EXPMETHODCALL>")
    return _message(msgid, body, "SIMPLEEXPREQ")
