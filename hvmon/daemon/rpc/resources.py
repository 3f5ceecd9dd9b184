"""What an audited call touches: its object and the host resources it ties a guest to.

Works on driver-level calls (procedure name and bound arguments, as the
remote protocol and :class:`AuditedDriver` see them). Domain XML — the
domain's own for a lifecycle action, the document of a create, the device
of a hot-plug — yields disks (source file, block device, volume, network),
NICs (MAC, network/bridge/direct source), host devices and the secrets they
use. Anything unreadable yields fewer resources, never an error: the audit
record is still written and the call still runs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from hvmon.core.drivers.base import Driver
from hvmon.core.errors import HvmonError
from hvmon.core.xml.parser import parse_xml

log = logging.getLogger(__name__)

MAX_XML = 1 << 20

#: procedures whose ``xml`` argument is a whole domain / one device
_DOMAIN_DOCS = frozenset({"create_domain", "define_domain", "migrate_prepare"})
_DEVICE_DOCS = frozenset({"domain_attach_device", "domain_detach_device"})
_KIND = {"domain": "domain", "migrate": "domain", "pool": "pool", "volume": "volume",
         "network": "network", "secret": "secret", "create": None, "define": None}


def describe(driver: Driver, procedure: str,
             arguments: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(object, resources) of one call; never raises."""
    try:
        return _describe(driver, procedure, arguments)
    except Exception as exc:  # the record matters more than its detail
        log.debug("audit: cannot describe %s: %s", procedure, exc)
        return {"type": _object_type(procedure)}, []


def _object_type(procedure: str) -> str:
    head = procedure.split("_")[0]
    if head in ("create", "define"):
        return procedure.split("_")[1]
    return _KIND.get(head) or head


def _describe(driver: Driver, procedure: str,
              arguments: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    obj: dict[str, Any] = {"type": _object_type(procedure)}
    for key in ("uuid", "name"):
        value = arguments.get(key)
        if isinstance(value, str):
            obj[key] = value
    ref = arguments.get("ref")
    if ref is not None:
        for key in ("pool", "name", "path"):
            value = getattr(ref, key, None)
            if isinstance(value, str) and value:
                obj[key] = value
    for key in ("action", "uri"):
        value = arguments.get(key)
        if isinstance(value, str):
            obj[key] = value
    xml = arguments.get("xml")
    resources: list[dict[str, Any]] = []
    if procedure in _DOMAIN_DOCS and isinstance(xml, str):
        root = _parse(xml)
        if root is not None:
            obj.setdefault("name", root.findtext("name") or "")
            resources = domain_resources(root)
    elif procedure in _DEVICE_DOCS and isinstance(xml, str):
        root = _parse(xml)
        if root is not None:
            resources = device_resources(root)
    elif obj["type"] == "domain" and "uuid" in obj:
        resources = _current(driver, obj)
    elif isinstance(xml, str) and obj["type"] in ("pool", "volume"):
        root = _parse(xml)
        if root is not None:
            resources = [_storage(root)]
    return obj, resources


def _current(driver: Driver, obj: dict[str, Any]) -> list[dict[str, Any]]:
    uuid = obj.get("uuid")
    if not isinstance(uuid, str):
        return []
    try:
        root = _parse(driver.domain_xml(uuid))
    except HvmonError:
        return []
    if root is None:
        return []
    obj.setdefault("name", root.findtext("name") or "")
    return domain_resources(root)


def _parse(xml: str) -> Any:
    if len(xml) > MAX_XML:
        return None
    try:
        return parse_xml(xml, "audited XML")
    except HvmonError:
        return None


def domain_resources(root: Any) -> list[dict[str, Any]]:
    """Disks, NICs, host devices and secrets of a ``<domain>``."""
    devices = root.find("devices")
    if devices is None:
        return []
    found: list[dict[str, Any]] = []
    for child in devices:
        found.extend(device_resources(child))
    return found


def device_resources(dev: Any) -> list[dict[str, Any]]:
    """The resources of one ``<disk>``, ``<interface>``, ``<hostdev>`` ... element."""
    tag = dev.tag if isinstance(dev.tag, str) else ""
    if tag == "disk":
        entry: dict[str, Any] = {"type": "disk", "device": dev.get("device", "disk")}
        source = dev.find("source")
        if source is not None:
            for key in ("file", "dev", "dir", "pool", "volume", "name", "protocol"):
                if source.get(key):
                    entry[key] = source.get(key)
        target = dev.find("target")
        if target is not None and target.get("dev"):
            entry["target"] = target.get("dev")
        if dev.find("readonly") is not None:
            entry["readonly"] = True
        found = [entry]
        for secret in dev.iter("secret"):
            if secret.get("uuid") or secret.get("usage"):
                found.append({"type": "secret", "uuid": secret.get("uuid", ""),
                              "usage": secret.get("usage", ""), "for": entry.get("target", "")})
        return found
    if tag == "interface":
        entry = {"type": "nic", "kind": dev.get("type", "")}
        mac = dev.find("mac")
        if mac is not None and mac.get("address"):
            entry["mac"] = mac.get("address")
        source = dev.find("source")
        if source is not None:
            for key in ("network", "bridge", "dev", "mode", "path"):
                if source.get(key):
                    entry[key] = source.get(key)
        target = dev.find("target")
        if target is not None and target.get("dev"):
            entry["target"] = target.get("dev")
        return [entry]
    if tag == "hostdev":
        entry = {"type": "hostdev", "kind": dev.get("type", "")}
        address = dev.find("source/address")
        if address is not None:
            entry["address"] = dict(sorted(address.attrib.items()))
        return [entry]
    if tag in ("filesystem", "serial", "console", "channel", "graphics", "rng", "tpm"):
        entry = {"type": tag}
        source = dev.find("source")
        if source is not None:
            entry.update({k: v for k, v in sorted(source.attrib.items())
                          if k in ("dir", "file", "path", "dev", "socket")})
        return [entry] if len(entry) > 1 else []
    return []


def _storage(root: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": root.tag if isinstance(root.tag, str) else "storage",
                             "name": root.findtext("name") or ""}
    path = root.findtext("target/path")
    if path:
        entry["path"] = path
    return entry
