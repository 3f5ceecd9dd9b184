"""Semantic comparison of XML trees: tags, attributes and text, in order.

Comments, processing instructions and whitespace-only text are ignored;
other text is compared with surrounding whitespace stripped. Attribute order
does not matter; the order of child elements does.
"""

from __future__ import annotations

from lxml import etree


def _text(value: str | None) -> str:
    return (value or "").strip()


def _elements(parent: etree._Element) -> list[etree._Element]:
    return [c for c in parent if isinstance(c.tag, str)]


def _label(el: etree._Element) -> str:
    local = etree.QName(el).localname
    return local if el.prefix is None else f"{el.prefix}:{local}"


def _child_paths(parent: etree._Element, path: str) -> list[tuple[etree._Element, str]]:
    children = _elements(parent)
    counts: dict[object, int] = {}
    for child in children:
        counts[child.tag] = counts.get(child.tag, 0) + 1
    seen: dict[object, int] = {}
    out = []
    for child in children:
        seen[child.tag] = seen.get(child.tag, 0) + 1
        suffix = f"[{seen[child.tag]}]" if counts[child.tag] > 1 else ""
        out.append((child, f"{path}/{_label(child)}{suffix}"))
    return out


def _diff(a: etree._Element, b: etree._Element, path: str, out: list[str]) -> None:
    if a.tag != b.tag:
        out.append(f"{path}: element <{a.tag}> != <{b.tag}>")
        return
    for name in sorted(set(a.attrib) | set(b.attrib)):
        va, vb = a.get(name), b.get(name)
        if va != vb:
            out.append(f"{path}/@{name}: {va!r} != {vb!r}")
    if _text(a.text) != _text(b.text):
        out.append(f"{path}: text {_text(a.text)!r} != {_text(b.text)!r}")
    kids_a, kids_b = _child_paths(a, path), _child_paths(b, path)
    for (ca, pa), (cb, _pb) in zip(kids_a, kids_b, strict=False):
        _diff(ca, cb, pa, out)
        if _text(ca.tail) != _text(cb.tail):
            out.append(f"{pa}: tail text {_text(ca.tail)!r} != {_text(cb.tail)!r}")
    for _child, p in kids_a[len(kids_b):]:
        out.append(f"{p}: only in the first document")
    for _child, p in kids_b[len(kids_a):]:
        out.append(f"{p}: only in the second document")


def semantic_diff(a: etree._Element, b: etree._Element) -> list[str]:
    """Differences between ``a`` and ``b`` as ``path: what`` lines; ``[]`` when equal."""
    out: list[str] = []
    _diff(a, b, "/" + _label(a), out)
    return out


def _missing(orig: etree._Element, new: etree._Element, path: str, out: list[str]) -> None:
    for name, value in orig.attrib.items():
        if new.get(name) != value:
            out.append(f"{path}/@{name}: {value!r} became {new.get(name)!r}")
    if _text(orig.text) and _text(orig.text) != _text(new.text):
        out.append(f"{path}: text {_text(orig.text)!r} became {_text(new.text)!r}")
    candidates = _child_paths(new, path)
    position = 0
    for child, child_path in _child_paths(orig, path):
        while position < len(candidates) and candidates[position][0].tag != child.tag:
            position += 1
        if position == len(candidates):
            out.append(f"{child_path}: missing or moved")
            return
        _missing(child, candidates[position][0], child_path, out)
        position += 1


def lost_in(orig: etree._Element, new: etree._Element) -> list[str]:
    """What ``orig`` has that ``new`` lost or changed; ``[]`` when ``new`` only adds.

    Children are matched in order by tag, so additions anywhere are allowed but
    reordering of the original elements is reported.
    """
    out: list[str] = []
    if orig.tag != new.tag:
        return [f"/{_label(orig)}: root became <{new.tag}>"]
    _missing(orig, new, "/" + _label(orig), out)
    return out
