"""CIM-XML request reader (DSP0201), on hvmon's hardened XML parser.

No DTDs, no entities, no network, no huge trees (``hvmon.core.xml.parser``);
the HTTP layer has already capped the body size. A body that is not XML is
``request-not-well-formed``, a wrong envelope ``request-not-valid`` (HTTP
400 with a ``CIMError`` header); a bad parameter inside a well-formed call
is CIM_ERR_INVALID_PARAMETER in the method's response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from hvmon.core.errors import InvalidXML
from hvmon.core.xml.parser import parse_xml
from hvmon.plugins.cim.errors import CIMError, ProtocolError, Status
from hvmon.plugins.cim.objects import InstancePath


@dataclass(frozen=True)
class ClassName:
    """A CLASSNAME parameter value."""

    name: str


@dataclass
class PropValue:
    """A property as received: its declared type (may be empty) and its raw value."""

    name: str
    type: str
    value: Any
    is_array: bool = False
    embedded: str = ""


@dataclass
class ParsedInstance:
    """An INSTANCE as received (values raw, types as declared in the XML)."""

    classname: str
    properties: dict[str, PropValue] = field(default_factory=dict)
    path: InstancePath | None = None

    def get(self, name: str) -> Any:
        prop = self.properties.get(name.lower())
        return None if prop is None else prop.value


@dataclass
class Param:
    name: str
    value: Any
    paramtype: str = ""
    embedded: str = ""


@dataclass
class Request:
    """One method call: intrinsic (``imethod``) or extrinsic (``method``)."""

    msgid: str
    kind: str
    name: str
    namespace: str
    target: InstancePath | ClassName | None = None
    params: dict[str, Param] = field(default_factory=dict)

    def param(self, name: str, default: Any = None) -> Any:
        found = self.params.get(name.lower())
        return default if found is None else found.value


def _invalid(message: str) -> ProtocolError:
    return ProtocolError(400, "request-not-valid", message)


def _children(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def _attr(el: etree._Element, name: str) -> str:
    found = el.get(name)
    if found is None:
        raise CIMError(Status.INVALID_PARAMETER, f"<{el.tag}> lacks the {name} attribute")
    return found


def namespace_of(el: etree._Element) -> str:
    """``root/virt`` from a LOCALNAMESPACEPATH."""
    parts = [_attr(c, "NAME") for c in _children(el) if c.tag == "NAMESPACE"]
    if not parts:
        raise CIMError(Status.INVALID_NAMESPACE, "empty LOCALNAMESPACEPATH")
    return "/".join(parts)


def _keyvalue(el: etree._Element) -> Any:
    text = el.text or ""
    kind = el.get("VALUETYPE", "string")
    if kind == "boolean":
        return text.strip().upper() == "TRUE"
    if kind == "numeric":
        try:
            return int(text.strip(), 0) if text.strip().lstrip("+-")[:2].lower() == "0x" \
                else int(text.strip())
        except ValueError:
            try:
                return float(text)
            except ValueError:
                raise CIMError(Status.INVALID_PARAMETER,
                               f"key value {text[:40]!r} is not numeric") from None
    return text


def instance_name(el: etree._Element, namespace: str = "", host: str = "") -> InstancePath:
    """An INSTANCENAME element as a path."""
    classname = _attr(el, "CLASSNAME")
    keys: list[tuple[str, Any]] = []
    for child in _children(el):
        if child.tag == "KEYBINDING":
            inner = _children(child)
            if len(inner) != 1:
                raise CIMError(Status.INVALID_PARAMETER, "KEYBINDING needs one value")
            if inner[0].tag == "KEYVALUE":
                keys.append((_attr(child, "NAME"), _keyvalue(inner[0])))
            elif inner[0].tag == "VALUE.REFERENCE":
                ref = reference(inner[0])
                if not isinstance(ref, InstancePath):
                    raise CIMError(Status.INVALID_PARAMETER, "a key reference names a class")
                keys.append((_attr(child, "NAME"), ref))
            else:
                raise CIMError(Status.INVALID_PARAMETER, f"unexpected <{inner[0].tag}> in a key")
        elif child.tag == "KEYVALUE":  # a single unnamed key
            keys.append(("", _keyvalue(child)))
        elif child.tag == "VALUE.REFERENCE":
            ref = reference(child)
            if isinstance(ref, InstancePath):
                keys.append(("", ref))
        else:
            raise CIMError(Status.INVALID_PARAMETER, f"unexpected <{child.tag}> in INSTANCENAME")
    return InstancePath(classname, tuple(keys), namespace, host)


def reference(el: etree._Element) -> InstancePath | ClassName:
    """The target of a VALUE.REFERENCE element."""
    inner = _children(el)
    if len(inner) != 1:
        raise CIMError(Status.INVALID_PARAMETER, "VALUE.REFERENCE needs one path")
    return object_path(inner[0])


def object_path(el: etree._Element) -> InstancePath | ClassName:
    tag = el.tag
    kids = _children(el)
    if tag == "INSTANCENAME":
        return instance_name(el)
    if tag == "CLASSNAME":
        return ClassName(_attr(el, "NAME"))
    if tag == "LOCALINSTANCEPATH" and len(kids) == 2:
        return instance_name(kids[1], namespace_of(kids[0]))
    if tag == "INSTANCEPATH" and len(kids) == 2:
        host, ns = _namespacepath(kids[0])
        return instance_name(kids[1], ns, host)
    if tag in ("LOCALCLASSPATH", "CLASSPATH") and len(kids) == 2:
        return ClassName(_attr(kids[1], "NAME"))
    if tag == "OBJECTPATH" and len(kids) == 1:
        return object_path(kids[0])
    raise CIMError(Status.INVALID_PARAMETER, f"<{tag}> is not a valid object path")


def _namespacepath(el: etree._Element) -> tuple[str, str]:
    kids = _children(el)
    if el.tag != "NAMESPACEPATH" or len(kids) != 2 or kids[0].tag != "HOST":
        raise CIMError(Status.INVALID_PARAMETER, "invalid NAMESPACEPATH")
    return (kids[0].text or "").strip(), namespace_of(kids[1])


def _value_array(el: etree._Element) -> list[Any]:
    out: list[Any] = []
    for child in _children(el):
        if child.tag == "VALUE":
            out.append(child.text or "")
        elif child.tag == "VALUE.NULL":
            out.append(None)
        else:
            raise CIMError(Status.INVALID_PARAMETER, f"unexpected <{child.tag}> in VALUE.ARRAY")
    return out


def instance(el: etree._Element) -> ParsedInstance:
    """An INSTANCE element."""
    inst = ParsedInstance(_attr(el, "CLASSNAME"))
    for child in _children(el):
        if child.tag == "QUALIFIER":
            continue
        name = _attr(child, "NAME")
        kids = [k for k in _children(child) if k.tag != "QUALIFIER"]
        embedded = child.get("EmbeddedObject", child.get("EMBEDDEDOBJECT", ""))
        if child.tag == "PROPERTY":
            val = (kids[0].text or "") if kids and kids[0].tag == "VALUE" else None
            inst.properties[name.lower()] = PropValue(name, child.get("TYPE", ""), val,
                                                      embedded=embedded)
        elif child.tag == "PROPERTY.ARRAY":
            val = _value_array(kids[0]) if kids and kids[0].tag == "VALUE.ARRAY" else None
            inst.properties[name.lower()] = PropValue(name, child.get("TYPE", ""), val, True,
                                                      embedded)
        elif child.tag == "PROPERTY.REFERENCE":
            val = reference(kids[0]) if kids and kids[0].tag == "VALUE.REFERENCE" else None
            inst.properties[name.lower()] = PropValue(name, "reference", val)
        else:
            raise CIMError(Status.INVALID_PARAMETER, f"unexpected <{child.tag}> in INSTANCE")
    return inst


def param_value(el: etree._Element) -> Any:
    """The value of an IPARAMVALUE or PARAMVALUE (None when it has no child)."""
    kids = _children(el)
    if not kids:
        return None
    if len(kids) > 1:
        raise CIMError(Status.INVALID_PARAMETER,
                       f"parameter {el.get('NAME', '?')!r} has more than one value")
    child = kids[0]
    tag = child.tag
    if tag == "VALUE":
        return child.text or ""
    if tag == "VALUE.ARRAY":
        return _value_array(child)
    if tag == "VALUE.REFERENCE":
        return reference(child)
    if tag == "VALUE.REFARRAY":
        return [reference(k) for k in _children(child)]
    if tag == "CLASSNAME":
        return ClassName(_attr(child, "NAME"))
    if tag == "INSTANCENAME":
        return instance_name(child)
    if tag == "INSTANCE":
        return instance(child)
    if tag == "VALUE.NAMEDINSTANCE":
        parts = _children(child)
        if len(parts) != 2:
            raise CIMError(Status.INVALID_PARAMETER, "VALUE.NAMEDINSTANCE needs a name and an "
                                                     "instance")
        inst = instance(parts[1])
        inst.path = instance_name(parts[0])
        return inst
    raise CIMError(Status.INVALID_PARAMETER, f"unsupported parameter value <{tag}>")


def parse_envelope(body: bytes) -> tuple[etree._Element, str]:
    """The method call element and the message ID, or a ProtocolError."""
    try:
        root = parse_xml(body, "CIM-XML request")
    except InvalidXML as exc:
        raise ProtocolError(400, "request-not-well-formed", str(exc)) from None
    if root.tag != "CIM":
        raise _invalid(f"root element is <{root.tag}>, expected <CIM>")
    if not (root.get("CIMVERSION") or "").startswith("2."):
        raise ProtocolError(400, "unsupported-cim-version",
                            f"CIMVERSION {root.get('CIMVERSION')!r:.20} is not 2.x")
    if not (root.get("DTDVERSION") or "").startswith("2."):
        raise ProtocolError(400, "unsupported-dtd-version",
                            f"DTDVERSION {root.get('DTDVERSION')!r:.20} is not 2.x")
    kids = _children(root)
    if len(kids) != 1 or kids[0].tag != "MESSAGE":
        raise _invalid("<CIM> must hold one <MESSAGE>")
    message = kids[0]
    msgid = message.get("ID")
    if msgid is None:
        raise _invalid("<MESSAGE> lacks an ID")
    if not (message.get("PROTOCOLVERSION") or "").startswith("1."):
        raise ProtocolError(400, "unsupported-protocol-version",
                            f"PROTOCOLVERSION {message.get('PROTOCOLVERSION')!r:.20} is not 1.x")
    kids = _children(message)
    if len(kids) != 1:
        raise _invalid("<MESSAGE> must hold one request")
    if kids[0].tag == "MULTIREQ":
        raise ProtocolError(501, "multiple-requests-unsupported",
                            "multiple requests in one message are not supported")
    if kids[0].tag != "SIMPLEREQ":
        raise _invalid(f"<{kids[0].tag}> is not a request")
    calls = [c for c in _children(kids[0]) if c.tag in ("IMETHODCALL", "METHODCALL")]
    if len(calls) != 1:
        raise _invalid("<SIMPLEREQ> must hold one IMETHODCALL or METHODCALL")
    if not calls[0].get("NAME"):
        raise _invalid(f"<{calls[0].tag}> lacks a NAME")
    return calls[0], msgid


def parse_call(call: etree._Element, msgid: str) -> Request:
    """The request of an IMETHODCALL/METHODCALL (CIMError on a bad path or parameter)."""
    name = call.get("NAME", "")
    kids = _children(call)
    if call.tag == "IMETHODCALL":
        if not kids or kids[0].tag != "LOCALNAMESPACEPATH":
            raise CIMError(Status.INVALID_NAMESPACE, f"{name}: no LOCALNAMESPACEPATH")
        req = Request(msgid, "imethod", name, namespace_of(kids[0]))
        for child in kids[1:]:
            if child.tag != "IPARAMVALUE":
                raise CIMError(Status.INVALID_PARAMETER, f"unexpected <{child.tag}> in {name}")
            pname = _attr(child, "NAME")
            if pname.lower() in req.params:
                raise CIMError(Status.INVALID_PARAMETER, f"parameter {pname} given twice")
            req.params[pname.lower()] = Param(pname, param_value(child))
        return req
    if not kids or kids[0].tag not in ("LOCALINSTANCEPATH", "LOCALCLASSPATH"):
        raise CIMError(Status.INVALID_PARAMETER, f"{name}: no LOCALINSTANCEPATH or LOCALCLASSPATH")
    path_kids = _children(kids[0])
    if len(path_kids) != 2 or path_kids[0].tag != "LOCALNAMESPACEPATH":
        raise CIMError(Status.INVALID_PARAMETER, f"{name}: invalid target path")
    namespace = namespace_of(path_kids[0])
    target: InstancePath | ClassName
    if kids[0].tag == "LOCALINSTANCEPATH":
        target = instance_name(path_kids[1], namespace)
    else:
        target = ClassName(_attr(path_kids[1], "NAME"))
    req = Request(msgid, "method", name, namespace, target)
    for child in kids[1:]:
        if child.tag != "PARAMVALUE":
            raise CIMError(Status.INVALID_PARAMETER, f"unexpected <{child.tag}> in {name}")
        pname = _attr(child, "NAME")
        if pname.lower() in req.params:
            raise CIMError(Status.INVALID_PARAMETER, f"parameter {pname} given twice")
        req.params[pname.lower()] = Param(
            pname, param_value(child), child.get("PARAMTYPE", ""),
            child.get("EmbeddedObject", child.get("EMBEDDEDOBJECT", "")))
    return req


def parse_instance_xml(text: str) -> ParsedInstance:
    """An embedded instance sent as CIM-XML text (``<INSTANCE ...>``)."""
    try:
        root = parse_xml(text, "embedded instance")
    except InvalidXML as exc:
        raise CIMError(Status.INVALID_PARAMETER, str(exc)) from None
    if root.tag != "INSTANCE":
        raise CIMError(Status.INVALID_PARAMETER,
                       f"embedded object is <{root.tag}>, expected <INSTANCE>")
    return instance(root)
