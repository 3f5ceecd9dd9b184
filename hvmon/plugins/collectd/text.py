"""collectd's plain-text protocol (Exec plugin, unixsock): ``PUTVAL`` and ``PUTNOTIF`` lines.

Identifiers and option values are always double-quoted, with ``\\`` and ``"``
escaped by a backslash — the quoting collectd's command parser reads — so a
domain name with spaces or quotes stays one field.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from hvmon.plugins.collectd.values import SEVERITY_NAMES, Notification, ValueList


def quote(text: str) -> str:
    """``text`` in double quotes with ``\\`` and ``"`` escaped."""
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def putval_lines(values: Iterable[ValueList], time: float, interval: float) -> Iterator[str]:
    """One ``PUTVAL "host/plugin-inst/type-inst" interval=I T:v[:v]`` line per value list."""
    stamp = f"{time:.3f}"
    options = f"interval={interval:.3f}"
    quoted: dict[tuple[str, str, str], str] = {}
    for vl in values:
        key = (vl.host, vl.plugin, vl.plugin_instance)
        prefix = quoted.get(key)
        if prefix is None:  # one domain's lists share host and plugin: quote them once
            plugin = f"{vl.plugin}-{vl.plugin_instance}" if vl.plugin_instance else vl.plugin
            prefix = quoted[key] = quote(f"{vl.host}/{plugin}/")[:-1]
        kind = f"{vl.type}-{vl.type_instance}" if vl.type_instance else vl.type
        if "\\" in kind or '"' in kind:
            kind = quote(kind)[1:-1]
        data = ":".join(map(str, vl.values))  # ints for counters, floats (repr) for gauges
        yield f'PUTVAL {prefix}{kind}" {options} {stamp}:{data}\n'


def putnotif_line(note: Notification) -> str:
    """``PUTNOTIF severity=... time=... host=... ... message="..."`` (message last)."""
    parts = [f"PUTNOTIF severity={SEVERITY_NAMES[note.severity]}", f"time={note.time:.3f}"]
    for key, value in (("host", note.host), ("plugin", note.plugin),
                       ("plugin_instance", note.plugin_instance), ("type", note.type),
                       ("type_instance", note.type_instance)):
        if value:
            parts.append(f"{key}={quote(value)}")
    parts.append(f"message={quote(note.message)}")
    return " ".join(parts) + "\n"
