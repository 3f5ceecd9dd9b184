"""``[agents.snmp]`` options: defaults, validation (one line per problem) and parsing.

Passwords are checked for presence and length only; no message quotes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hvmon.daemon.addresses import parse_address
from hvmon.plugins.snmp.notify import TrapTarget
from hvmon.plugins.snmp.types import OID, parse_oid
from hvmon.plugins.snmp.usm import AUTH_PROTOCOLS, PRIV_PROTOCOLS, UsmUser
from hvmon.plugins.snmp.vacm import EVERYTHING, Access, MibView, read_only, read_write

MODES = ("standalone", "agentx")
ACCESS = ("ro", "rw")
DEFAULT_LISTEN = ("127.0.0.1:1161", "[::1]:1161")
DEFAULT_AGENTX_SOCKET = "/var/agentx/master"
MIN_PASSWORD = 8  # RFC 3414 11.2 / net-snmp
USER_KEYS = ("name", "auth", "auth_password", "priv", "priv_password", "access", "view")
TARGET_KEYS = ("address", "version", "community", "user", "inform", "timeout", "retries")

#: the agent's own keys in ``[agents.snmp]`` and their defaults
OPTIONS: Mapping[str, Any] = {
    "mode": "standalone",
    "agentx_socket": DEFAULT_AGENTX_SOCKET,
    "agentx_timeout": 5.0,
    "community": "public",
    "rw_community": "",
    "users": [],
    "trap_targets": [],
    "libvirt_compat": False,
    "snapshot_max_age": None,  # None: the daemon's [daemon] snapshot_max_age
    "max_message_size": 65507,
}


def _user_problems(i: int, user: Any) -> list[str]:
    where = f"users[{i}]"
    if not isinstance(user, Mapping):
        return [f"{where}: must be a table with name, auth, auth_password ..."]
    problems = [f"{where}.{key}: unknown key (known: {', '.join(USER_KEYS)})"
                for key in user if key not in USER_KEYS]
    name = user.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        problems.append(f"{where}.name: must be a string of 1 to 32 characters")
    auth = user.get("auth")
    if auth not in AUTH_PROTOCOLS:
        problems.append(f"{where}.auth: must be one of {', '.join(AUTH_PROTOCOLS)}, "
                        f"got {auth!r:.40}")
    password = user.get("auth_password")
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        problems.append(f"{where}.auth_password: must be a string of at least "
                        f"{MIN_PASSWORD} characters")
    priv = user.get("priv", "")
    if priv not in ("", "none", *PRIV_PROTOCOLS):
        problems.append(f"{where}.priv: must be one of {', '.join(PRIV_PROTOCOLS)} or 'none', "
                        f"got {priv!r:.40}")
    elif priv not in ("", "none"):
        password = user.get("priv_password")
        if not isinstance(password, str) or len(password) < MIN_PASSWORD:
            problems.append(f"{where}.priv_password: must be a string of at least "
                            f"{MIN_PASSWORD} characters")
    if user.get("access", "ro") not in ACCESS:
        problems.append(f"{where}.access: must be 'ro' or 'rw', got {user.get('access')!r:.40}")
    view = user.get("view", ["1"])
    if not isinstance(view, list | tuple) or not view:
        problems.append(f"{where}.view: must be a non-empty list of OID subtrees")
    else:
        for text in view:
            try:
                _subtree(text)
            except ValueError as exc:
                problems.append(f"{where}.view: {exc}")
    return problems


def _target_problems(i: int, target: Any, users: set[str]) -> list[str]:
    where = f"trap_targets[{i}]"
    if not isinstance(target, Mapping):
        return [f"{where}: must be a table with address, version ..."]
    problems = [f"{where}.{key}: unknown key (known: {', '.join(TARGET_KEYS)})"
                for key in target if key not in TARGET_KEYS]
    try:
        parse_address(target.get("address"))
    except ValueError as exc:
        problems.append(f"{where}.address: {exc}")
    version = target.get("version", "v2c")
    if version not in ("v2c", "v3"):
        problems.append(f"{where}.version: must be 'v2c' or 'v3', got {version!r:.40}")
    elif version == "v3" and target.get("user") not in users:
        problems.append(f"{where}.user: must name one of the users, got "
                        f"{target.get('user')!r:.40}")
    elif version == "v2c" and not isinstance(target.get("community", "public"), str):
        problems.append(f"{where}.community: must be a string")
    if not isinstance(target.get("inform", version == "v3"), bool):
        problems.append(f"{where}.inform: must be true or false")
    timeout = target.get("timeout", 2.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        problems.append(f"{where}.timeout: must be a number of seconds > 0")
    retries = target.get("retries", 3)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 20:
        problems.append(f"{where}.retries: must be an integer from 0 to 20")
    return problems


def validate_options(options: Mapping[str, Any]) -> Sequence[str]:
    """One problem per bad option of ``[agents.snmp]`` (passwords never quoted)."""
    problems: list[str] = []
    if options["mode"] not in MODES:
        problems.append(f"mode: must be one of {', '.join(MODES)}, got {options['mode']!r:.40}")
    if options["mode"] == "agentx":
        try:
            from hvmon.plugins.snmp.agentx.session import parse_address as agentx_address

            agentx_address(options["agentx_socket"])
        except ValueError as exc:
            problems.append(f"agentx_socket: {exc}")
    if options["agentx_timeout"] <= 0:
        problems.append("agentx_timeout: must be > 0 seconds")
    community, rw = options["community"], options["rw_community"]
    if not community and not rw and not options["users"]:
        problems.append("community: empty, and no rw_community or users: nobody could query")
    if rw and rw == community:
        problems.append("rw_community: must differ from community")
    names: set[str] = set()
    for i, user in enumerate(options["users"]):
        problems.extend(_user_problems(i, user))
        if isinstance(user, Mapping) and isinstance(user.get("name"), str):
            if user["name"] in names:
                problems.append(f"users[{i}].name: duplicate user {user['name']!r:.40}")
            names.add(user["name"])
    for i, target in enumerate(options["trap_targets"]):
        problems.extend(_target_problems(i, target, names))
    max_age = options["snapshot_max_age"]
    if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int | float)
                                or max_age < 0):
        problems.append(f"snapshot_max_age: must be a number of seconds >= 0, got {max_age!r:.40}")
    if not 484 <= options["max_message_size"] <= 65507:
        problems.append("max_message_size: must be from 484 to 65507 bytes")
    return problems


def _subtree(text: Any) -> OID:
    if text in ("1", ".1", ""):
        return ()
    if not isinstance(text, str):
        raise ValueError(f"not an OID string: {text!r:.40}")
    return parse_oid(text)


@dataclass
class Settings:
    """Parsed, validated options."""

    communities: dict[str, Access] = field(default_factory=dict)
    users: list[tuple[UsmUser, Access]] = field(default_factory=list)
    targets: list[TrapTarget] = field(default_factory=list)


def parse_settings(options: Mapping[str, Any]) -> Settings:
    """Build communities, users and targets (call after :func:`validate_options`)."""
    settings = Settings()
    if options["community"]:
        settings.communities[options["community"]] = read_only("community")
    if options["rw_community"]:
        settings.communities[options["rw_community"]] = read_write("rw_community")
    by_name: dict[str, UsmUser] = {}
    for entry in options["users"]:
        priv = entry.get("priv", "") or ""
        priv = "" if priv == "none" else priv
        user = UsmUser.create(entry["name"], entry["auth"], entry["auth_password"],
                              priv or None, entry.get("priv_password", ""))
        view = MibView([_subtree(t) for t in entry.get("view", ["1"])]) if "view" in entry \
            else EVERYTHING
        level = user.level
        make = read_write if entry.get("access", "ro") == "rw" else read_only
        settings.users.append((user, make(f"user {entry['name']}", view, level)))
        by_name[entry["name"]] = user
    for entry in options["trap_targets"]:
        host, port = parse_address(entry["address"])
        version = entry.get("version", "v2c")
        settings.targets.append(TrapTarget(
            host, port, version, entry.get("community", "public"),
            by_name.get(entry.get("user", "")) if version == "v3" else None,
            bool(entry.get("inform", version == "v3")), float(entry.get("timeout", 2.0)),
            int(entry.get("retries", 3))))
    return settings
