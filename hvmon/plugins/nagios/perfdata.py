"""Perfdata labels, values and status text that survive any object name.

Object names are data: a domain may be called ``it's a "vm"; rm -rf | x=y``.
Labels follow the Monitoring Plugins rules: single-quoted unless they are
plain word characters, an embedded ``'`` doubled; ``=`` and ``|`` (which no
label may hold) and control characters become ``_``. In status text ``|``
(Nagios's perfdata separator) becomes ``¦`` and control characters a space.
"""

from __future__ import annotations

import re

from nagiosplugin import Performance

_WORD = re.compile(r"^\w+$", re.ASCII)
_LABEL_BAD = re.compile(r"[=|\x00-\x1f\x7f]")
_TEXT_BAD = re.compile(r"[\x00-\x1f\x7f]")


def quote_label(label: str) -> str:
    """``label`` as a perfdata label: bare when plain, else quoted with ``'`` doubled."""
    label = _LABEL_BAD.sub("_", label)
    if _WORD.match(label):
        return label
    return "'" + label.replace("'", "''") + "'"


def safe_text(text: str) -> str:
    """``text`` fit for the status line: no ``|``, no line breaks or control characters."""
    return _TEXT_BAD.sub(" ", text.replace("|", "\u00a6"))


def show_name(name: str) -> str:
    """An object name as shown in status text: ``'name'``."""
    return "'" + safe_text(name) + "'"


def format_number(value: object) -> str:
    """Ints as they are; floats with at most 4 decimals and never an exponent."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.4f}".rstrip("0").rstrip(".")
        return "0" if text in ("", "-0") else text
    return str(value)


def format_range(limit: object) -> str:
    """A threshold as perfdata writes it; '' for none.

    nagiosplugin's own ``str(Range('@0:'))`` is ``@``, which no reader parses;
    this keeps ``0:`` whenever the end is open.
    """
    if limit is None or limit == "":
        return ""
    if isinstance(limit, str):
        return limit
    invert, start, end = limit  # a nagiosplugin Range (a namedtuple)
    if not invert and start == 0 and end == float("inf"):
        return ""
    text = "@" if invert else ""
    if start == float("-inf"):
        text += "~:"
    elif start != 0 or end == float("inf"):
        text += f"{format_number(start)}:"
    if end != float("inf"):
        text += format_number(end)
    return text


class Perf(Performance):
    """A :class:`nagiosplugin.Performance` whose label may hold any character.

    nagiosplugin 1.4 refuses ``'`` in labels and does not double it; this
    subclass quotes by the Monitoring Plugins rules instead (:func:`quote_label`).
    """

    def __new__(cls, label: str, value: object, uom: str = "", warn: object = "",
                crit: object = "", min: object = "", max: object = "") -> Perf:  # noqa: A002
        fields = (uom, warn, crit, min, max)
        return tuple.__new__(cls, (label, value, *("" if f is None else f for f in fields)))

    def __str__(self) -> str:
        parts = [f"{quote_label(self.label)}={format_number(self.value)}{self.uom}",
                 format_range(self.warn), format_range(self.crit),
                 "" if self.min == "" else format_number(self.min),
                 "" if self.max == "" else format_number(self.max)]
        while parts[-1] == "":
            parts.pop()
        return ";".join(parts)
