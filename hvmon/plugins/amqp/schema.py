"""Message bodies on the bus: indications (heartbeat, data, event), requests and replies.

Every body is a JSON object with ``"schema": "hvmon.amqp/1"`` and a ``kind``;
docs/amqp.md holds the JSON schema of each one (a test validates real
messages against it). Objects keep the snapshot's names and units
(docs/snapshot.md): properties at the top, counters and gauges under
``statistics``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hvmon.core.errors import HvmonError, InvalidArgument

if TYPE_CHECKING:
    from hvmon.core.api import DomainEvent
    from hvmon.core.snapshot.model import (
        DomainSnapshot,
        HostFacts,
        NetworkSnapshot,
        PoolSnapshot,
        Snapshot,
        VolumeSnapshot,
    )

SCHEMA = "hvmon.amqp/1"
CONTENT_TYPE = "application/json"
#: the classes of objects, in publishing order
CLASSES = ("node", "domain", "pool", "volume", "network")
SEVERITIES = ("debug", "info", "notice", "warning", "error", "critical")
#: longest request id accepted
MAX_ID = 128


def encode(body: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def header(kind: str, host: str) -> dict[str, Any]:
    """The keys every body starts with; ``host`` is the host id with its dots."""
    return {"schema": SCHEMA, "kind": kind, "host": host, "timestamp": time.time()}


# --- objects -------------------------------------------------------------------------
def node_object(facts: HostFacts, snap: Snapshot | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "hostname": facts.hostname, "uri": facts.uri, "driver": facts.driver,
        "cpu_model": facts.cpu_model, "memory_kib": facts.memory_kib, "cpus": facts.cpus,
        "mhz": facts.mhz, "numa_nodes": facts.numa_nodes, "sockets": facts.sockets,
        "cores": facts.cores, "threads": facts.threads, "host_uuid": facts.host_uuid,
        "arch": facts.arch, "guest_os_types": list(facts.guest_os_types),
        "guest_arches": list(facts.guest_arches),
        "hypervisor_version": getattr(facts, "hypervisor_version", ""),
    }
    stats: dict[str, Any] = {"free_memory_kib": facts.free_memory_kib}
    if snap is not None:
        stats.update(domains=len(snap.domains),
                     domains_active=sum(1 for d in snap.domains if d.active),
                     pools=len(snap.pools), networks=len(snap.networks),
                     events=dict(snap.events))
    obj["statistics"] = stats
    return obj


def domain_object(dom: DomainSnapshot, statistics: bool = True) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "uuid": dom.uuid, "name": dom.name, "id": dom.id, "state": dom.state,
        "state_label": dom.state_label, "reason": dom.reason, "active": dom.active,
        "persistent": dom.persistent, "autostart": dom.autostart, "os_type": dom.os_type,
        "arch": dom.arch, "vcpus": dom.vcpus, "max_vcpus": dom.max_vcpus,
        "memory_kib": dom.memory_kib, "max_memory_kib": dom.max_memory_kib,
        "stale": dom.stale, "age": dom.age, "error": dom.error, "error_code": dom.error_code,
        "nics": [{"mac": n.mac, "source_type": n.source_type, "source": n.source,
                  "target": n.target, "model": n.model} for n in getattr(dom, "nics", ())],
    }
    if statistics:
        obj["statistics"] = dict(dom.stats)
    return obj


def pool_object(pool: PoolSnapshot, statistics: bool = True) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "uuid": pool.uuid, "name": pool.name, "state": pool.state,
        "state_label": pool.state_label, "active": pool.active,
        "persistent": pool.persistent, "autostart": pool.autostart,
    }
    if statistics:
        obj["statistics"] = {"capacity": pool.capacity, "allocation": pool.allocation,
                             "available": pool.available, "volume_count": pool.volume_count}
    return obj


def volume_object(vol: VolumeSnapshot, statistics: bool = True) -> dict[str, Any]:
    obj: dict[str, Any] = {"pool": vol.pool, "name": vol.name, "key": vol.key,
                           "path": vol.path, "type": vol.type, "type_label": vol.type_label}
    if statistics:
        obj["statistics"] = {"capacity": vol.capacity, "allocation": vol.allocation}
    return obj


def network_object(net: NetworkSnapshot, statistics: bool = True) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "uuid": net.uuid, "name": net.name, "active": net.active,
        "persistent": net.persistent, "autostart": net.autostart, "bridge": net.bridge,
        "forward_mode": net.forward_mode,
    }
    if statistics:
        obj["statistics"] = {"dhcp_leases": net.dhcp_leases,
                             "dhcp_range_size": net.dhcp_range_size}
    return obj


def class_objects(snap: Snapshot, cls: str, statistics: bool = True) -> list[dict[str, Any]]:
    """Every object of ``cls`` in ``snap``."""
    if cls == "node":
        return [node_object(snap.host, snap)]
    if cls == "domain":
        return [domain_object(d, statistics) for d in snap.domains]
    if cls == "pool":
        return [pool_object(p, statistics) for p in snap.pools]
    if cls == "volume":
        return [volume_object(v, statistics) for v in snap.volumes]
    if cls == "network":
        return [network_object(n, statistics) for n in snap.networks]
    raise ValueError(f"unknown class {cls!r}")


#: keys that change without the object changing
_VOLATILE = frozenset(("statistics", "age"))
_FINGERPRINT = json.JSONEncoder(check_circular=False, separators=(",", ":"))


def fingerprint(objects: list[dict[str, Any]]) -> int:
    """A hash of the objects' properties (not statistics, not ages): what "changed" means.

    The builders above always emit keys in the same order, so no sorting is needed.
    """
    return hash(_FINGERPRINT.encode([{k: v for k, v in o.items() if k not in _VOLATILE}
                                     for o in objects]))


# --- indications ---------------------------------------------------------------------
def heartbeat_body(host: str, *, agent: str, version: str, epoch: int,
                   interval: float, queue: str, control: bool,
                   snap: Snapshot | None, migration_uri: str = "") -> dict[str, Any]:
    body = header("heartbeat", host)
    body.update(agent=agent, version=version, epoch=epoch, interval=interval, queue=queue,
                control=control)
    if migration_uri:
        body["migration_uri"] = migration_uri
    if snap is not None:
        body["facts"] = node_object(snap.host, snap)
    return body


def data_body(snap: Snapshot, cls: str, host: str, epoch: int,
              objects: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body = header("data", host)
    body.update({"class": cls, "epoch": epoch, "generation": snap.generation,
                 "collected_at": snap.timestamp,
                 "objects": class_objects(snap, cls) if objects is None else objects})
    return body


def event_severity(event: str, detail: str) -> str:
    """A syslog-like severity for a lifecycle event and its detail."""
    if event == "crashed" or (event == "stopped" and detail in ("crashed", "failed")):
        return "error"
    if event == "suspended" and detail in ("ioerror", "watchdog", "api_error",
                                          "postcopy_failed"):
        return "warning"
    if event in ("undefined", "stopped", "shutdown"):
        return "notice"
    return "info"


def event_body(event: DomainEvent, host: str, epoch: int) -> dict[str, Any]:
    from hvmon.core.events import detail_label

    name = event.event.name.lower()
    detail = detail_label(event.event, event.detail).lower().replace(" ", "_")
    body = header("event", host)
    body.update({"class": "domain", "epoch": epoch, "event": name, "detail": detail,
                 "severity": event_severity(name, detail),
                 "object": {"name": event.domain.name, "uuid": event.domain.uuid},
                 "time": event.timestamp or time.time()})
    return body


# --- requests and replies ------------------------------------------------------------
class RequestError(HvmonError):
    """A malformed request: answered with its code, or dead-lettered without reply_to."""

    def __init__(self, error: HvmonError, request_id: str | None = None) -> None:
        super().__init__(error.message)
        self.code, self.name = error.code, error.name
        self.request_id = request_id


@dataclass(frozen=True)
class Request:
    """A decoded method request."""

    id: str
    method: str
    args: Mapping[str, Any]


def decode_request(body: bytes, max_bytes: int) -> Request:
    """Parse and check one request body; :class:`RequestError` says what is wrong."""
    if len(body) > max_bytes:
        raise RequestError(InvalidArgument(
            f"request too large: {len(body)} bytes (limit {max_bytes})"))
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError(InvalidArgument(f"request is not JSON: {exc}")) from None
    if not isinstance(data, dict):
        raise RequestError(InvalidArgument("request must be a JSON object"))
    rid = data.get("id")
    if not isinstance(rid, str) or not 0 < len(rid) <= MAX_ID:
        raise RequestError(InvalidArgument(
            f"request 'id' must be a string of 1 to {MAX_ID} characters"))
    method, args = data.get("method"), data.get("args", {})
    if not isinstance(method, str) or not method:
        raise RequestError(InvalidArgument("request 'method' must be a string"), rid)
    if not isinstance(args, dict):
        raise RequestError(InvalidArgument("request 'args' must be an object"), rid)
    unknown = sorted(set(data) - {"schema", "kind", "id", "method", "args"})
    if unknown:
        raise RequestError(InvalidArgument(
            f"unknown request key(s): {', '.join(k[:40] for k in unknown[:5])}"), rid)
    return Request(rid, method, args)


def request_body(request_id: str, method: str, args: Mapping[str, Any]) -> dict[str, Any]:
    return {"schema": SCHEMA, "kind": "request", "id": request_id, "method": method,
            "args": dict(args)}


def reply_body(host: str, request_id: str | None, method: str | None, *,
               result: Any = None, error: HvmonError | None = None) -> dict[str, Any]:
    body = header("reply", host)
    body.update(id=request_id, method=method, ok=error is None)
    if error is None:
        body["result"] = result
    else:
        body["error"] = {"code": error.code, "name": error.name, "text": error.message}
    return body
