"""CIM values: typed Python values to CIM-XML text and back (DSP0201 / DSP0004).

Python forms: integers for the integer types, float for reals, bool,
str for string/char16/datetime, :class:`InstancePath` for references, lists
for arrays. Values received without a type (wbemcli sends none) are coerced
with :func:`coerce`, from the type in the class definition.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Any

from hvmon.plugins.cim.errors import CIMError, Status
from hvmon.plugins.cim.objects import INT_RANGES, InstancePath

_ESCAPE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                         "\r": "&#13;", "\t": "&#9;"})
_BAD_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_DATETIME_RE = re.compile(r"^(\d{14}\.\d{6}[+-]\d{3}|\d{8}\d{6}\.\d{6}:000)$")
_INT_RE = re.compile(r"^\s*[+-]?(0[xX][0-9A-Fa-f]+|0[bB][01]+|\d+)\s*$")


def escape(text: str) -> str:
    """Text safe inside an XML element or a double-quoted attribute."""
    out = text.translate(_ESCAPE)
    if _BAD_XML_CHARS.search(out):
        out = _BAD_XML_CHARS.sub("\ufffd", out)
    return out


def cim_datetime(timestamp: float) -> str:
    """A CIM datetime (``yyyymmddhhmmss.mmmmmm+000``, UTC) for a Unix time."""
    moment = _dt.datetime.fromtimestamp(timestamp, _dt.UTC)
    return moment.strftime("%Y%m%d%H%M%S.%f") + "+000"


def to_text(cimtype: str, value: Any) -> str:
    """The text of one scalar value (not escaped)."""
    if cimtype == "boolean":
        return "TRUE" if value else "FALSE"
    if cimtype in ("real32", "real64"):
        number = float(value)
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "INF" if number > 0 else "-INF"
        return repr(number)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


def _scalar(cimtype: str, value: Any, where: str) -> Any:
    if isinstance(value, InstancePath):
        if cimtype == "reference":
            return value
        raise CIMError(Status.INVALID_PARAMETER,
                       f"{where}: expected a {cimtype}, got a reference")
    if cimtype == "reference":
        raise CIMError(Status.INVALID_PARAMETER, f"{where}: expected a reference")
    if value is None:
        return None
    if cimtype in INT_RANGES:
        if isinstance(value, bool):
            raise CIMError(Status.INVALID_PARAMETER, f"{where}: expected {cimtype}, got a boolean")
        if isinstance(value, str):
            if not _INT_RE.match(value):
                raise CIMError(Status.INVALID_PARAMETER,
                               f"{where}: {value[:40]!r} is not a valid {cimtype}")
            text = value.strip()
            based = text.lstrip("+-")[:2].lower() in ("0x", "0b")
            number = int(text, 0) if based else int(text, 10)
        elif isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        else:
            raise CIMError(Status.INVALID_PARAMETER, f"{where}: expected {cimtype}")
        low, high = INT_RANGES[cimtype]
        if not low <= number <= high:
            raise CIMError(Status.INVALID_PARAMETER,
                           f"{where}: {number} is out of range for {cimtype}")
        return number
    if cimtype in ("real32", "real64"):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise CIMError(Status.INVALID_PARAMETER,
                           f"{where}: {str(value)[:40]!r} is not a valid {cimtype}") from None
    if cimtype == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise CIMError(Status.INVALID_PARAMETER, f"{where}: {text[:40]!r} is not a boolean")
    if cimtype == "char16":
        text = str(value)
        if len(text) != 1:
            raise CIMError(Status.INVALID_PARAMETER, f"{where}: a char16 is one character")
        return text
    if cimtype == "datetime":
        text = str(value)
        if not _DATETIME_RE.match(text):
            raise CIMError(Status.INVALID_PARAMETER,
                           f"{where}: {text[:40]!r} is not a CIM datetime")
        return text
    if isinstance(value, list):
        raise CIMError(Status.INVALID_PARAMETER, f"{where}: expected a scalar, got an array")
    return value if isinstance(value, str) else str(value)


def coerce(cimtype: str, is_array: bool, value: Any, where: str) -> Any:
    """``value`` (text, number, path or list as received) as a typed Python value.

    A wrong type, a number out of range or an array for a scalar (and the
    reverse) is CIM_ERR_INVALID_PARAMETER naming ``where``.
    """
    if value is None:
        return None
    if is_array:
        if not isinstance(value, list):
            value = [value]
        return [_scalar(cimtype, item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, list):
        if len(value) == 1:
            return _scalar(cimtype, value[0], where)
        raise CIMError(Status.INVALID_PARAMETER, f"{where}: expected a scalar, got an array")
    return _scalar(cimtype, value, where)
