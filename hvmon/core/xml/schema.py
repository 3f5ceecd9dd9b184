"""RelaxNG validation with one-line errors, and a fast structural check.

Schemas live in ``schemas/<kind>.rng`` and are compiled on first use, once per
process. libxml2's RelaxNG validator is not safe to share between threads, so
each compiled schema is used under its own lock.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

from lxml import etree

from hvmon.core.errors import InvalidArgument, InvalidXML
from hvmon.core.xml.checks import ROOT_TAGS, iter_problems

SCHEMA_DIR = Path(__file__).with_name("schemas")
KINDS: tuple[str, ...] = tuple(ROOT_TAGS)


def schema_path(kind: str) -> Path:
    """Path of the ``.rng`` file for ``kind``."""
    _root_tag(kind)
    return SCHEMA_DIR / f"{kind}.rng"


def _root_tag(kind: str) -> str:
    try:
        return ROOT_TAGS[kind]
    except KeyError:
        raise InvalidArgument(
            f"unknown XML kind '{kind}' (expected one of: {', '.join(ROOT_TAGS)})"
        ) from None


@functools.cache
def _compiled(kind: str) -> tuple[etree.RelaxNG, threading.Lock]:
    path = schema_path(kind)
    try:
        schema = etree.RelaxNG(file=str(path))
    except (OSError, etree.RelaxNGParseError) as exc:  # a packaging bug, not user input
        raise InvalidXML(f"cannot load schema {path.name}: {exc}") from None
    return schema, threading.Lock()


def _as_element(element: etree._Element | etree._ElementTree) -> etree._Element:
    if isinstance(element, etree._ElementTree):
        return element.getroot()
    return element


def _fail(kind: str, line: int | None, problem: str) -> InvalidXML:
    where = f" at line {line}" if line else ""
    return InvalidXML(f"XML error in {kind} XML{where}: {problem}")


def _locate(root: etree._Element, log: list[etree._LogEntry]) -> tuple[int | None, str]:
    """Turn libxml2's interleave messages into the element that was refused."""
    extra = next((e for e in log if e.message.startswith("Extra element ")), None)
    failed = next((e for e in log if e.line and e.message.startswith("Element ")), None)
    if extra is not None and failed is not None:
        tag = extra.message.split()[2]
        parent_tag = failed.message.split()[1]
        for parent in root.iter(parent_tag):
            if parent.sourceline != failed.line and parent is not root:
                continue
            child = parent.find(tag)
            if child is None:
                continue
            value = (child.text or "").strip() if len(child) == 0 else ""
            shown = f" (value '{value[:40]}')" if value else ""
            return (child.sourceline or failed.line,
                    f"element <{tag}> in <{parent_tag}> does not match the schema{shown}")
    entry = failed or (log[-1] if log else None)
    if entry is None:
        return root.sourceline, "document does not match the schema"
    return entry.line or root.sourceline, entry.message.rstrip(".")


def validate(element: etree._Element | etree._ElementTree, kind: str) -> None:
    """Validate ``element`` against the ``kind`` schema; raise :class:`InvalidXML`.

    The message names the line and the value at fault where it can
    (``XML error in domain XML at line 3: invalid UUID 'zz' in <uuid>``).
    """
    root = _as_element(element)
    expected = _root_tag(kind)
    if root.tag != expected:
        found = root.tag if isinstance(root.tag, str) else "non-element node"
        raise _fail(kind, root.sourceline, f"expected <{expected}> root element, found <{found}>")
    schema, lock = _compiled(kind)
    with lock:
        if schema.validate(root):
            return
        log = list(schema.error_log)
    problem = next(iter_problems(root, kind), None)
    if problem is None:
        problem = _locate(root, log)
    raise _fail(kind, *problem)


def quick_check(element: etree._Element | etree._ElementTree, kind: str) -> None:
    """Fast structural check: root tag, names, UUIDs, MACs and sizes.

    Meant for large documents (a node file with thousands of domains) where full
    RelaxNG validation would dominate loading time. Raises :class:`InvalidXML`.
    """
    root = _as_element(element)
    _root_tag(kind)
    problem = next(iter_problems(root, kind, quick=True), None)
    if problem is not None:
        raise _fail(kind, *problem)
