"""The few XML reads and writes the CLI does itself (volume XML, one-field reads).

Parsing goes through hvmon's one safe parser; documents are built with lxml
elements, so names are escaped, never interpolated into markup.
"""

from __future__ import annotations

from lxml import etree

from hvmon.core.xml.parser import parse_xml, to_string


def find_text(xml: str, path: str, default: str = "") -> str:
    """Text (or ``@attr``) at a simple ``a/b`` or ``a/b/@c`` path."""
    root = parse_xml(xml)
    steps = path.split("/")
    attr = steps.pop()[1:] if steps[-1].startswith("@") else None
    node = root.find("/".join(steps)) if steps else root
    if node is None:
        return default
    value = node.get(attr) if attr else node.text
    return value.strip() if value else default


def volume_xml(name: str, capacity: int, allocation: int | None = None,
               fmt: str | None = None) -> str:
    """A ``<volume>`` document as virsh vol-create-as builds it."""
    root = etree.Element("volume")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "capacity", unit="bytes").text = str(capacity)
    if allocation is not None:
        etree.SubElement(root, "allocation", unit="bytes").text = str(allocation)
    if fmt:
        target = etree.SubElement(root, "target")
        etree.SubElement(target, "format", type=fmt)
    return to_string(root)


def clone_xml(source_xml: str, new_name: str) -> str:
    """The source volume's XML renamed, without its key and path (the pool picks)."""
    root = parse_xml(source_xml, "volume XML")
    name = root.find("name")
    if name is None:
        name = etree.SubElement(root, "name")
    name.text = new_name
    for path in ("key", "target/path"):
        node = root.find(path)
        if node is not None:
            node.getparent().remove(node)
    return to_string(root)
