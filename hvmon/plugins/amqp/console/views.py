"""How the console prints: virsh-style tables for people, JSON for scripts."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from hvmon.cli.output import fields, table
from hvmon.plugins.amqp.console.client import HostView


def host_rows(views: Iterable[HostView], now: float | None = None) -> list[dict[str, Any]]:
    """One JSON-ready dict per host: its heartbeat facts, ``status`` and ``last_seen_ago``."""
    now = time.time() if now is None else now
    rows = []
    for view in sorted(views, key=lambda v: v.host):
        facts = view.facts
        stats = facts.get("statistics") or {}
        rows.append({
            "host": view.host, "status": "up" if view.answered else "stale",
            "last_seen_ago": round(max(0.0, now - view.last_seen), 1) if view.last_seen else None,
            "epoch": view.epoch, "version": view.version, "control": view.control,
            "uri": facts.get("uri", ""), "hostname": facts.get("hostname", ""),
            "cpus": facts.get("cpus"), "memory_kib": facts.get("memory_kib"),
            "domains": stats.get("domains"), "domains_active": stats.get("domains_active"),
            "queue": view.queue,
        })
    return rows


def hosts_table(rows: list[dict[str, Any]]) -> str:
    def seen(row: Mapping[str, Any]) -> str:
        ago = row["last_seen_ago"]
        return "-" if ago is None else f"{ago:g}s ago"

    def blank(value: Any) -> Any:
        return "-" if value is None else value

    return table(["Host", "Status", "Last seen", "Epoch", "Control", "URI", "Domains",
                  "Active"],
                 [[r["host"], r["status"], seen(r), r["epoch"],
                   "yes" if r["control"] else "no", r["uri"] or "-", blank(r["domains"]),
                   blank(r["domains_active"])] for r in rows])


def domains_table(rows: list[dict[str, Any]]) -> str:
    """``Host  Id  Name  State`` (virsh list with a host column)."""
    return table(["Host", "Id", "Name", "State"],
                 [[r["host"], "-" if r["id"] < 0 else r["id"], r["name"], r["state_label"]]
                  for r in rows])


def object_fields(obj: Mapping[str, Any]) -> str:
    """``Key:  value`` lines, statistics after the properties."""
    pairs: list[tuple[str, object]] = [(f"{k}:", _text(v)) for k, v in obj.items()
                                       if k != "statistics"]
    stats = obj.get("statistics")
    if isinstance(stats, Mapping):
        pairs += [(f"{k}:", _text(v)) for k, v in stats.items()]
    width = max((len(k) for k, _ in pairs), default=15)
    return fields(pairs, width=max(width, 15))


def result_text(result: Any) -> str:
    """A method's result for people: XML as it is, objects as fields, lists as tables."""
    if isinstance(result, Mapping) and set(result) == {"xml"}:
        text = str(result["xml"])
        return text if text.endswith("\n") else text + "\n"
    if isinstance(result, Mapping):
        return object_fields(result)
    if isinstance(result, list) and result and all(isinstance(r, Mapping) for r in result):
        keys = [k for k in result[0] if k != "statistics"
                and not isinstance(result[0][k], dict | list)][:8]
        return table(keys, [[_text(r.get(k)) for k in keys] for r in result])
    if isinstance(result, list):
        return "".join(f"{_text(r)}\n" for r in result)
    return f"{_text(result)}\n"


def event_line(body: Mapping[str, Any]) -> str:
    """``2026-11-29 09:00:00 hv1 domain 'web1' started (booted) [info]``."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(body.get("time", 0))))
    obj = body.get("object") or {}
    return (f"{stamp} {body.get('host')} {body.get('class')} '{obj.get('name')}' "
            f"{body.get('event')} ({body.get('detail')}) [{body.get('severity')}]\n")


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)
