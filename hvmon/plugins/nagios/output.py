"""The plugin's output: one status line with all perfdata, then extra lines.

``HVMON <MODE> <STATE> - <text> | <perfdata> time=<s>s;;;0`` — perfdata stays
on the status line at every verbosity (nagiosplugin's own Output moves it to
the last line with ``-v``); ``-v`` adds one line per result, ``-vv`` the
connection, ``-vvv`` the timings.
"""

from __future__ import annotations

from collections.abc import Sequence

from hvmon.plugins.nagios.perfdata import Perf, safe_text


def status_line(mode: str, state: str, text: str, perfdata: Sequence[str] = ()) -> str:
    """``HVMON MODE STATE - text | perfdata`` (no ``|`` without perfdata)."""
    line = f"HVMON {mode.upper()} {state.upper()} - {safe_text(text).strip() or state.lower()}"
    return line + (" | " + " ".join(perfdata) if perfdata else "")


def timing(seconds: float) -> str:
    """The ``time`` perfdata every check run ends with."""
    return str(Perf("time", round(seconds, 4), "s", min=0))


def render(lines: Sequence[str]) -> str:
    """Join output lines; extra lines lose any ``|`` (it would start perfdata)."""
    head, *rest = lines
    return "\n".join([head, *(safe_text(line) for line in rest)]) + "\n"
