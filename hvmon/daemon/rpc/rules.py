"""Per-user access rules: who (uid/gid, certificate DN) may use which ACL permissions.

A small TOML file of ``[[rule]]`` tables. A rule matches a caller when every
match key it names fits (``uid``, ``gid``, ``user``, ``group``, ``dn`` with
shell wildcards, ``transport``); a caller gets the union of the ``allow``
lists of every rule that matches, and nothing when none does. ``allow`` names
permissions of the core's ACL registry (``domain:start``), patterns over them
(``domain:*``), ``@read`` (every permission that only reads, never a secure
one) or ``*`` (everything). Unknown keys and permissions are errors, so a typo
cannot silently grant or deny.

The result is an :class:`~hvmon.core.access.AccessPolicy` the daemon puts in
the connection's :class:`~hvmon.core.access.AccessGate`: the same gate that
enforces read-only mode checks it before anything runs.
"""

from __future__ import annotations

import fnmatch
import grp
import pwd
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hvmon.core.access import ApiSpec, Identity
from hvmon.core.errors import InvalidArgument

MATCH_KEYS = ("uid", "gid", "user", "group", "dn", "transport")
TRANSPORTS = ("unix", "tls")


class RulesError(InvalidArgument):
    """A rule file with problems (every one named in the message)."""


@dataclass(frozen=True)
class Permissions:
    """A fixed set of granted permissions (an AccessPolicy)."""

    granted: frozenset[str]

    def allows(self, permission: str) -> bool:
        return permission in self.granted


@dataclass(frozen=True)
class Rule:
    """One ``[[rule]]``: its match keys and the permissions it grants."""

    match: Mapping[str, Any]
    granted: frozenset[str]

    def matches(self, who: Identity) -> bool:
        for key, wanted in self.match.items():
            if key == "dn":
                if who.dn is None or not fnmatch.fnmatchcase(who.dn, wanted):
                    return False
            elif key == "transport":
                if who.transport != wanted:
                    return False
            elif getattr(who, key) != wanted:  # uid, gid (user/group resolved at load)
                return False
        return True


@dataclass(frozen=True)
class RuleSet:
    """Every rule of one file."""

    rules: tuple[Rule, ...]
    path: Path | None = None

    def policy_for(self, who: Identity) -> Permissions:
        granted: set[str] = set()
        for rule in self.rules:
            if rule.matches(who):
                granted |= rule.granted
        return Permissions(frozenset(granted))


def permission_groups(registry: Mapping[str, ApiSpec]) -> tuple[frozenset[str], frozenset[str]]:
    """(every known permission, the read-only ones) of an API registry."""
    known: set[str] = set()
    writing: set[str] = set()
    for spec in registry.values():
        known.add(spec.permission)
        if spec.secure_permission:
            known.add(spec.secure_permission)
            writing.add(spec.secure_permission)
        if spec.mutates or spec.secure:
            writing.add(spec.permission)
    return frozenset(known), frozenset(known - writing)


def expand(items: Iterable[Any], registry: Mapping[str, ApiSpec], where: str,
           problems: list[str]) -> frozenset[str]:
    """The permissions an ``allow`` list names (problems appended, never raised)."""
    known, readonly = permission_groups(registry)
    granted: set[str] = set()
    for item in items:
        if not isinstance(item, str) or not item:
            problems.append(f"{where}: permissions must be strings, got {item!r:.40}")
        elif item == "@read":
            granted |= readonly
        elif item == "*":
            granted |= known
        else:
            found = {p for p in known if fnmatch.fnmatchcase(p, item)}
            if not found:
                problems.append(f"{where}: unknown permission {item!r:.60} (see api.json)")
            granted |= found
    return frozenset(granted)


def parse_rules(data: Mapping[str, Any], registry: Mapping[str, ApiSpec],
                path: Path | None = None) -> RuleSet:
    """Validate a parsed rule file; :class:`RulesError` names every problem."""
    problems: list[str] = []
    for key in data:
        if key != "rule":
            problems.append(f"{key}: unknown key (a rule file holds [[rule]] tables)")
    tables = data.get("rule", [])
    if not isinstance(tables, list):
        problems.append("rule: must be an array of tables ([[rule]])")
        tables = []
    rules = []
    for index, table in enumerate(tables):
        where = f"rule[{index}]"
        if not isinstance(table, Mapping):
            problems.append(f"{where}: must be a table")
            continue
        match = _match(table, where, problems)
        if not match:
            problems.append(f"{where}: names no identity (one of {', '.join(MATCH_KEYS)})")
        allow = table.get("allow")
        if not isinstance(allow, list):
            problems.append(f"{where}.allow: must be a list of permissions")
            allow = []
        for key in table:
            if key not in (*MATCH_KEYS, "allow"):
                problems.append(f"{where}.{key}: unknown key "
                                f"(known: {', '.join((*MATCH_KEYS, 'allow'))})")
        rules.append(Rule(match, expand(allow, registry, f"{where}.allow", problems)))
    if problems:
        source = f"access rules {path}" if path else "access rules"
        raise RulesError(f"invalid {source}: {'; '.join(problems)}")
    return RuleSet(tuple(rules), path)


def _match(table: Mapping[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    match: dict[str, Any] = {}
    for key in ("uid", "gid"):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                problems.append(f"{where}.{key}: must be a number >= 0, got {value!r:.20}")
            else:
                match[key] = value
    for key, lookup in (("user", _uid_of), ("group", _gid_of)):
        if key in table:
            target = "uid" if key == "user" else "gid"
            try:
                match[target] = lookup(table[key])
            except (KeyError, TypeError):
                problems.append(f"{where}.{key}: no such {key} {table[key]!r:.40}")
    if "dn" in table:
        if not isinstance(table["dn"], str) or not table["dn"]:
            problems.append(f"{where}.dn: must be a DN pattern string")
        else:
            match["dn"] = table["dn"]
    if "transport" in table:
        if table["transport"] not in TRANSPORTS:
            problems.append(f"{where}.transport: must be one of {', '.join(TRANSPORTS)}")
        else:
            match["transport"] = table["transport"]
    return match


def _uid_of(name: Any) -> int:
    if not isinstance(name, str):
        raise TypeError(name)
    return pwd.getpwnam(name).pw_uid


def _gid_of(name: Any) -> int:
    if not isinstance(name, str):
        raise TypeError(name)
    return grp.getgrnam(name).gr_gid


def load_rules(path: Path, registry: Mapping[str, ApiSpec]) -> RuleSet:
    """Read and validate one rule file."""
    try:
        with open(path, "rb") as stream:
            data = tomllib.load(stream)
    except OSError as exc:
        raise RulesError(f"invalid access rules {path}: cannot read it: "
                         f"{exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"invalid access rules {path}: not valid TOML: {exc}") from None
    return parse_rules(data, registry, path)
