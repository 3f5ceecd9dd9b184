"""The one XML parser hvmon uses: no entities, no DTDs, no network."""

from __future__ import annotations

from lxml import etree

from hvmon.core.errors import InvalidXML

_MAX_BYTES = 64 * 1024 * 1024


def _make_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        collect_ids=False,
    )


def parse_xml(text: str | bytes, what: str = "document") -> etree._Element:
    """Parse ``text`` safely and return its root element.

    Documents that declare a DOCTYPE (and so entities: XXE, billion laughs) are
    refused, as are empty or oversized inputs. Errors are :class:`InvalidXML`
    with the line and the problem.
    """
    if isinstance(text, str):
        data = text.encode("utf-8")
    elif isinstance(text, bytes | bytearray):
        data = bytes(text)
    else:
        raise InvalidXML(f"XML error in {what}: expected text, got {type(text).__name__}")
    if not data.strip():
        raise InvalidXML(f"XML error in {what}: empty document")
    if len(data) > _MAX_BYTES:
        raise InvalidXML(f"XML error in {what}: document larger than {_MAX_BYTES} bytes")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise InvalidXML(
            f"XML error in {what}: DOCTYPE and entity declarations are not allowed"
        )
    try:
        root = etree.fromstring(data, _make_parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or 0
        raise InvalidXML(f"XML error in {what} at line {line}: {exc.msg}") from None
    if root is None:
        raise InvalidXML(f"XML error in {what}: no root element")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        # the byte check above misses declarations in other encodings (UTF-16...)
        raise InvalidXML(
            f"XML error in {what}: DOCTYPE and entity declarations are not allowed"
        )
    return root


def to_string(element: etree._Element) -> str:
    """Serialise an element as libvirt does: no declaration, trailing newline."""
    text = etree.tostring(element, encoding="unicode", pretty_print=True)
    return text if text.endswith("\n") else text + "\n"
