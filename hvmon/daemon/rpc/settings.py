"""The ``[tls]``, ``[access]`` and ``[audit]`` tables, and the objects built from them.

The in-tree ``builtin`` plugin declares the tables (``hvmon_config_schema``);
the daemon turns a validated config into :class:`~.security.Security` and
:class:`~.tls.TlsSettings` with :func:`security_from_config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hvmon.daemon.rpc.tls import TLS_DEFAULTS, TlsSettings, tls_settings, validate_tls

if TYPE_CHECKING:
    from hvmon.core.access import ApiSpec
    from hvmon.daemon.config import ConfigSection
    from hvmon.daemon.rpc.security import Security

ACCESS_DEFAULTS: Mapping[str, Any] = {"rules": ""}
AUDIT_DEFAULTS: Mapping[str, Any] = {"path": "", "chain": True}

ACCESS_KEYS = {"rules": "TOML rule file mapping identities to permissions (empty: none)"}
AUDIT_KEYS = {
    "path": "JSON-lines audit log of every mutating or secure call (empty: off)",
    "chain": "chain the records with a running SHA-256 (hvmon audit verify)",
}


def _absolute_or_empty(key: str) -> Any:
    def validate(table: Mapping[str, Any]) -> list[str]:
        value = table.get(key, "")
        if value and not Path(value).is_absolute():
            return [f"{key}: must be an absolute path, got {value!r:.60}"]
        return []
    return validate


def config_sections() -> list[ConfigSection]:
    """The tables the daemon's security features read."""
    from hvmon.daemon.config import ConfigSection

    return [
        ConfigSection("tls", TLS_DEFAULTS, validate_tls,
                      "remote protocol over TLS with client certificates"),
        ConfigSection("access", ACCESS_DEFAULTS, _absolute_or_empty("rules"),
                      "per-user access rules"),
        ConfigSection("audit", AUDIT_DEFAULTS, _absolute_or_empty("path"),
                      "audit trail of operations"),
    ]


def security_from_config(tables: Mapping[str, Mapping[str, Any]],
                         registry: Mapping[str, ApiSpec]) -> tuple[Security, TlsSettings | None]:
    """(rules + audit log, TLS settings or None) of a validated config.

    Raises :class:`~.rules.RulesError` for a bad rule file. The audit log is
    returned unopened.
    """
    from hvmon.daemon.rpc.audit import AuditLog
    from hvmon.daemon.rpc.rules import load_rules
    from hvmon.daemon.rpc.security import Security

    access = tables.get("access", ACCESS_DEFAULTS)
    audit = tables.get("audit", AUDIT_DEFAULTS)
    rules = load_rules(Path(access["rules"]), registry) if access.get("rules") else None
    log = AuditLog(Path(audit["path"]), chain=bool(audit.get("chain", True))) \
        if audit.get("path") else None
    tls_table = tables.get("tls")
    return Security(rules, log), tls_settings(tls_table) if tls_table else None
