"""Declarative XML model: one class per element, properties mapped by path.

Modelled on virt-manager's ``xmlbuilder``: an :class:`XmlObject` wraps an lxml
element and its properties read and write that tree in place, so everything a
class does not model (unknown elements, ``<metadata>`` namespaces, comments)
survives a round trip untouched.

Paths are a small subset of XPath: ``name``, ``os/type``, ``os/type/@arch``,
``@type``. Setting a property creates the elements on its path; setting it to
None removes the attribute or element.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

from lxml import etree

from hvmon.core.errors import InvalidXML
from hvmon.core.xml.parser import parse_xml, to_string

T = TypeVar("T")
X = TypeVar("X", bound="XmlObject")


def _split(path: str) -> tuple[list[str], str | None]:
    """Split ``a/b/@c`` into (["a", "b"], "c")."""
    parts = [p for p in path.split("/") if p and p != "."]
    attr = None
    if parts and parts[-1].startswith("@"):
        attr = parts.pop()[1:]
    return parts, attr


def _find(element: etree._Element, steps: list[str]) -> etree._Element | None:
    node: etree._Element | None = element
    for step in steps:
        if node is None:
            return None
        # iterchildren(tag) matches in C: about twice as fast as find(step)
        node = next(node.iterchildren(step), None)
    return node


def _ensure(element: etree._Element, steps: list[str]) -> etree._Element:
    node = element
    for step in steps:
        child = node.find(step)
        if child is None:
            child = etree.SubElement(node, step)
        node = child
    return node


def _prune(element: etree._Element, steps: list[str]) -> None:
    """Remove now-empty elements along ``steps`` (deepest first)."""
    for depth in range(len(steps), 0, -1):
        node = _find(element, steps[:depth])
        if node is None:
            continue
        if len(node) or node.attrib or (node.text or "").strip():
            return
        parent = node.getparent()
        if parent is not None:
            parent.remove(node)


# --- converters -----------------------------------------------------------


def yes_no(value: str) -> bool:
    return value.strip().lower() in ("yes", "on", "true", "1")


def to_int(value: str) -> int:
    return int(value.strip(), 0) if value.strip().lower().startswith("0x") else int(value)


Reader = Callable[[str], Any]
Writer = Callable[[Any], str]

_WRITERS: dict[Any, Writer] = {
    yes_no: lambda v: "yes" if v else "no",
}


class XmlProperty(Generic[T]):
    """A property stored as an element's text or an attribute."""

    def __init__(
        self,
        path: str,
        read: Reader = str,
        default: Any = None,
        write: Writer | None = None,
    ) -> None:
        self.path = path
        self.steps, self.attr = _split(path)
        self.read = read
        self.default = default
        self.write = write or _WRITERS.get(read, str)
        self.name = path

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> XmlProperty[T]: ...
    @overload
    def __get__(self, obj: XmlObject, owner: type) -> T: ...
    def __get__(self, obj: XmlObject | None, owner: type) -> Any:
        if obj is None:
            return self
        node = _find(obj.element, self.steps)
        if node is None:
            return self.default
        raw = node.get(self.attr) if self.attr else node.text
        if raw is None:
            return self.default
        try:
            return self.read(raw)
        except (ValueError, TypeError):
            raise InvalidXML(
                f"invalid value '{raw}' for {obj.ROOT}/{self.path}"
            ) from None

    def __set__(self, obj: XmlObject, value: Any) -> None:
        if value is None:
            node = _find(obj.element, self.steps)
            if node is None:
                return
            if self.attr:
                node.attrib.pop(self.attr, None)
            else:
                node.text = None
            _prune(obj.element, self.steps)
            return
        node = _ensure(obj.element, self.steps)
        text = self.write(value)
        if self.attr:
            node.set(self.attr, text)
        else:
            node.text = text


class XmlChild(Generic[X]):
    """An optional child element wrapped in its own :class:`XmlObject` class."""

    def __init__(self, cls: type[X], path: str) -> None:
        self.cls = cls
        self.steps, _ = _split(path)

    def __get__(self, obj: XmlObject | None, owner: type) -> Any:
        if obj is None:
            return self
        node = _find(obj.element, self.steps)
        return None if node is None else self.cls(node)


class XmlChildren(Generic[X]):
    """A list of child elements (``devices/disk``) wrapped in a class."""

    def __init__(self, cls: type[X], path: str) -> None:
        self.cls = cls
        self.steps, _ = _split(path)

    def __get__(self, obj: XmlObject | None, owner: type) -> Any:
        if obj is None:
            return self
        parent = _find(obj.element, self.steps[:-1])
        if parent is None:
            return []
        return [self.cls(node) for node in parent.findall(self.steps[-1])]


class XmlObject:
    """Wraps one lxml element; subclasses declare properties."""

    ROOT: ClassVar[str] = ""

    def __init__(self, element: etree._Element | None = None) -> None:
        if element is None:
            element = etree.Element(self.ROOT)
        self.element = element

    @classmethod
    def from_xml(cls, text: str | bytes) -> Self:
        """Parse a document whose root must be ``<ROOT>``."""
        root = parse_xml(text, what=f"{cls.ROOT} XML")
        if root.tag != cls.ROOT:
            raise InvalidXML(
                f"XML error: expected <{cls.ROOT}> root element, found <{root.tag}>"
            )
        return cls(root)

    def to_xml(self) -> str:
        return to_string(self.element)

    def copy(self) -> Self:
        element = copy.deepcopy(self.element)
        element.tail = None
        return type(self)(element)

    def ensure(self, path: str) -> etree._Element:
        """The element at ``path``, created if missing."""
        return _ensure(self.element, _split(path)[0])

    def find(self, path: str) -> etree._Element | None:
        return _find(self.element, _split(path)[0])

    def iter_tag(self, tag: str) -> Iterator[etree._Element]:
        return self.element.iter(tag)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ROOT}>"


# --- sizes ----------------------------------------------------------------

_UNIT_SCALE = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4,
               "p": 1024**5, "e": 1024**6}


def unit_scale(unit: str | None, default: str) -> int:
    """Bytes per ``unit`` using libvirt's rules (``KiB``/``k`` = 1024, ``KB`` = 1000)."""
    unit = (unit or default).strip()
    if unit.lower() in ("b", "byte", "bytes"):
        return 1
    first = unit[:1].lower()
    if first not in _UNIT_SCALE:
        raise InvalidXML(f"unknown unit '{unit}'")
    rest = unit[1:]
    if rest in ("", "iB", "ib"):
        return _UNIT_SCALE[first]
    if rest in ("B", "b"):
        power = "bkmgtpe".index(first)
        return 1000**power
    raise InvalidXML(f"unknown unit '{unit}'")


def read_size(element: etree._Element | None, default_unit: str, out_unit: str = "b") -> int | None:
    """Size held by ``element`` (text plus ``unit``/``units`` attribute) in ``out_unit``."""
    if element is None or element.text is None or not element.text.strip():
        return None
    unit = element.get("unit") or element.get("units")
    try:
        value = int(element.text.strip())
    except ValueError:
        raise InvalidXML(f"invalid size '{element.text.strip()}' in <{element.tag}>") from None
    return value * unit_scale(unit, default_unit) // unit_scale(None, out_unit)


def write_size(element: etree._Element, value: int, unit: str) -> None:
    """Store ``value`` (already in ``unit``) in ``element`` with that unit."""
    element.text = str(int(value))
    element.set("unit", unit)
