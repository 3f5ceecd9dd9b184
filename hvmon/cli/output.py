"""Text shapes virsh prints (tables, ``Key:   value`` blocks, sizes) and JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A virsh ``vshTable``: one leading space, columns three spaces apart.

    The dashes line is as wide as every column plus three, as virsh draws it.
    """
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [_row(row, widths) for row in cells]
    lines.insert(1, "-" * sum(w + 3 for w in widths))
    return "\n".join(lines) + "\n"


def _row(row: Sequence[str], widths: Sequence[int]) -> str:
    last = len(row) - 1
    return "".join(
        " " + cell + ("" if i == last else " " * (widths[i] - len(cell) + 2))
        for i, cell in enumerate(row)
    )


def fields(pairs: Iterable[tuple[str, object]], width: int = 15) -> str:
    """``Label:  value`` lines, the label padded as virsh's ``%-15s %s``."""
    return "".join(f"{label:<{width}} {value}\n" for label, value in pairs)


def pretty_size(value: int) -> str:
    """virsh's ``vshPrettyCapacity`` with ``%.2lf %s``: ``100.00 GiB``."""
    amount = float(value)
    unit = 0
    while amount >= 1024 and unit < len(_UNITS) - 1:
        amount /= 1024
        unit += 1
    return f"{amount:.2f} {_UNITS[unit]}"


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def to_json(data: Any) -> str:
    """Stable JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


# --- sizes on the command line ----------------------------------------------

_SCALES = {
    "": 1, "b": 1, "byte": 1, "bytes": 1,
    "k": 1024, "kib": 1024, "kb": 1000,
    "m": 1024**2, "mib": 1024**2, "mb": 1000**2,
    "g": 1024**3, "gib": 1024**3, "gb": 1000**3,
    "t": 1024**4, "tib": 1024**4, "tb": 1000**4,
    "p": 1024**5, "pib": 1024**5, "pb": 1000**5,
    "e": 1024**6, "eib": 1024**6, "eb": 1000**6,
}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes from ``10G``, ``512M``, ``1GiB``, ``1GB`` (1000-based) or ``4096``.

    Single letters and ``*iB`` are powers of 1024, ``*B`` powers of 1000, as
    virsh's scaled integers; a bare number is bytes.
    """
    match = _SIZE_RE.match(text)
    scale = _SCALES.get(match.group(2).lower()) if match else None
    if match is None or scale is None:
        raise ValueError(f"invalid size '{text}': expected a number with an optional "
                         "unit such as 512M, 10G or 1GiB")
    return int(match.group(1)) * scale
