"""Indication subscriptions (DSP1054) and the delivery of lifecycle indications.

Clients create CIM_IndicationFilter, CIM_ListenerDestinationCIMXML and
CIM_IndicationSubscription instances (CreateInstance/DeleteInstance) in
root/interop or root/virt; they live as long as the agent runs. Each
lifecycle event becomes a ``<prefix>ComputerSystem{Created,Deleted,Modified}Indication``
exported to the listener of every subscription whose filter selects it.
Filters: ``SELECT * FROM <class> [WHERE SourceInstance ISA <class>]``
(WQL or DMTF:CQL).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import re
import threading
import time
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hvmon.core.events import DefinedDetail, LifecycleEvent
from hvmon.plugins.cim import xmlbuild as xb
from hvmon.plugins.cim.errors import CIMError, Status
from hvmon.plugins.cim.exporter import Destination, export, parse_destination
from hvmon.plugins.cim.objects import ClassDecl, Instance, InstancePath
from hvmon.plugins.cim.providers import Provider, computer_system
from hvmon.plugins.cim.schema import VIRT
from hvmon.plugins.cim.values import cim_datetime

if TYPE_CHECKING:
    from hvmon.core.api import DomainEvent
    from hvmon.plugins.cim.model import Model
    from hvmon.plugins.cim.schema import Schema

FILTER, DESTINATION, SUBSCRIPTION = (
    "CIM_IndicationFilter", "CIM_ListenerDestination", "CIM_IndicationSubscription")
_QUERY_RE = re.compile(r"^\s*SELECT\s+\*\s+FROM\s+(\w+)"
                       r"(?:\s+WHERE\s+SourceInstance\s+ISA\s+(\w+))?\s*;?\s*$", re.I)
LANGUAGES = ("wql", "dmtf:cql", "cql")
QUERY_FORM = "SELECT * FROM <class> [WHERE SourceInstance ISA <class>]"
#: lifecycle event -> EnabledState of the domain after it
EVENT_STATE = {LifecycleEvent.STARTED: 2, LifecycleEvent.SUSPENDED: 9,
               LifecycleEvent.RESUMED: 2, LifecycleEvent.STOPPED: 3,
               LifecycleEvent.SHUTDOWN: 4, LifecycleEvent.PMSUSPENDED: 6,
               LifecycleEvent.CRASHED: 3}


@dataclass(frozen=True)
class Query:
    from_class: str
    isa: str


def parse_query(query: Any, language: Any) -> Query:
    if not isinstance(language, str) or language.lower() not in LANGUAGES:
        raise CIMError(Status.QUERY_LANGUAGE_NOT_SUPPORTED,
                       f"QueryLanguage {language!r:.30} is not supported (WQL, DMTF:CQL)")
    match = _QUERY_RE.match(query) if isinstance(query, str) else None
    if match is None:
        raise CIMError(Status.INVALID_QUERY, f"query {query!r:.80} is not supported: use "
                                             + QUERY_FORM)
    return Query(match.group(1), match.group(2) or "")


class Subscriptions:
    """The filters, destinations and subscriptions of each namespace (thread-safe)."""

    def __init__(self, schemas: dict[str, Schema], model: Model, *, limit: int = 100,
                 timeout: float = 5.0, store: Path | None = None,
                 logger: logging.Logger | None = None) -> None:
        self.schemas = schemas
        self.model = model
        self.limit = limit
        self.timeout = timeout
        self.log = logger or logging.getLogger(__name__)
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, Any], Instance] = {}
        self._ids = itertools.count(1)
        self._last: dict[str, dict[str, Any]] = {}
        self.delivered = 0
        self.failed = 0
        self.store = store
        if store is not None:
            self._load(store)

    # --- persistence (a restarted agent keeps its subscriptions) -------------------
    def _load(self, store: Path) -> None:
        try:
            data = json.loads(store.read_text("utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            self.log.warning("ignoring subscriptions file %s: %s", store, exc)
            return
        for item in data if isinstance(data, list) else []:
            try:
                namespace, classname = item["namespace"], item["classname"]
                if namespace not in self.schemas or not self.schemas[namespace].has(classname):
                    raise ValueError(f"unknown class {classname!r:.60} in {namespace!r:.30}")
                path = _decode(item["path"])
                if not isinstance(path, InstancePath):
                    raise ValueError("a stored object has no instance path")
                values = {k: _decode(v) for k, v in item["values"].items()}
            except (KeyError, TypeError, ValueError) as exc:
                self.log.warning("ignoring a stored subscription object: %s", exc)
                continue
            self._objects[(namespace, path.identity())] = Instance(classname, path, values)

    def _save(self) -> None:
        """Write every object to the store (atomically); called with the lock held."""
        if self.store is None:
            return
        data = [{"namespace": ns, "classname": obj.classname, "path": _encode(obj.path),
                 "values": {k: _encode(v) for k, v in obj.values.items()}}
                for (ns, _), obj in self._objects.items()]
        tmp = self.store.with_name(self.store.name + ".tmp")
        try:
            self.store.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, indent=1), "utf-8")
            os.replace(tmp, self.store)
        except OSError as exc:
            self.log.warning("cannot save subscriptions to %s: %s", self.store, exc)

    # --- CreateInstance / DeleteInstance -------------------------------------------
    def _kind(self, schema: Schema, classname: str) -> str:
        for kind in (FILTER, DESTINATION, SUBSCRIPTION):
            if schema.has(kind) and schema.is_a(classname, kind):
                return kind
        raise CIMError(Status.NOT_SUPPORTED, f"instances of {classname} cannot be created or "
                                             "deleted")

    def create(self, namespace: str, cls: ClassDecl, values: dict[str, Any]) -> InstancePath:
        schema = self.schemas[namespace]
        kind = self._kind(schema, cls.name)
        if schema.local[cls.name.lower()].qualifier("Abstract"):
            raise CIMError(Status.INVALID_CLASS, f"{cls.name} is abstract")
        vals = {k.lower(): v for k, v in values.items()}
        if kind == SUBSCRIPTION:
            filt, handler = vals.get("filter"), vals.get("handler")
            for name, ref, want in (("Filter", filt, FILTER), ("Handler", handler, DESTINATION)):
                if not isinstance(ref, InstancePath):
                    raise CIMError(Status.INVALID_PARAMETER, f"{name} is required")
                if self._find(namespace, ref, want) is None:
                    raise CIMError(Status.INVALID_PARAMETER, f"{name} {ref} does not exist")
            assert isinstance(filt, InstancePath) and isinstance(handler, InstancePath)
            keys: tuple[tuple[str, Any], ...] = (("Filter", filt.in_namespace(namespace)),
                                                 ("Handler", handler.in_namespace(namespace)))
            values.setdefault("SubscriptionState", 2)
            values.setdefault("OnFatalErrorPolicy", 2)
            values["SubscriptionStartTime"] = cim_datetime(time.time())
        else:
            if kind == FILTER:
                query = parse_query(vals.get("query"), vals.get("querylanguage"))
                source = self.schemas[VIRT]  # indications come from root/virt
                for name in (query.from_class, query.isa):
                    if name and not source.has(name):
                        raise CIMError(Status.INVALID_QUERY, f"query names unknown class {name}")
                if not source.is_a(query.from_class, "CIM_Indication"):
                    raise CIMError(Status.INVALID_QUERY,
                                   f"{query.from_class} is not an indication class")
            else:
                dest = vals.get("destination")
                try:
                    parse_destination(dest if isinstance(dest, str) else "")
                except ValueError as exc:
                    raise CIMError(Status.INVALID_PARAMETER, f"Destination: {exc}") from None
                values.setdefault("PersistenceType", 2)
                values.setdefault("Protocol", 2)
            snap = self.model.snapshot()
            name = vals.get("name") or f"hvmon-{uuidlib.uuid4()}"
            keys = (("SystemCreationClassName", self.model.cls("HostSystem")),
                    ("SystemName", snap.host.hostname), ("CreationClassName", cls.name),
                    ("Name", name))
        path = InstancePath(cls.name, keys, namespace)
        values.update(keys)
        with self._lock:
            ident = (namespace, path.identity())
            if ident in self._objects:
                raise CIMError(Status.ALREADY_EXISTS, f"{path} exists already")
            if sum(1 for o in self._objects.values() if self._kind(schema, o.classname) == kind
                   ) >= self.limit:
                raise CIMError(Status.FAILED, f"too many {kind} instances (limit {self.limit})")
            self._objects[ident] = Instance(cls.name, path, dict(values))
            self._save()
        self.log.info("created %s", path)
        return path

    def delete(self, namespace: str, path: InstancePath) -> None:
        schema = self.schemas[namespace]
        kind = self._kind(schema, path.classname)
        with self._lock:
            ident = (namespace, path.identity())
            if ident not in self._objects:
                raise CIMError(Status.NOT_FOUND, f"no instance {path}")
            if kind != SUBSCRIPTION:
                for obj in self._objects.values():
                    refs = [v for _k, v in obj.path.keys if isinstance(v, InstancePath)]
                    if any(r.identity() == path.identity() for r in refs):
                        raise CIMError(Status.FAILED, f"{path} is used by subscription "
                                                      f"{obj.path}")
            del self._objects[ident]
            self._save()
        self.log.info("deleted %s", path)

    def _find(self, namespace: str, path: InstancePath, kind: str) -> Instance | None:
        schema = self.schemas[namespace]
        with self._lock:
            found = self._objects.get((namespace, path.identity()))
        if found is None or not schema.is_a(found.classname, kind):
            return None
        return found

    # --- providers ------------------------------------------------------------------
    def providers(self) -> list[Provider]:
        out = []
        for ns, schema in self.schemas.items():
            for name in (FILTER, "CIM_ListenerDestinationCIMXML", SUBSCRIPTION):
                if schema.has(name):
                    out.append(Provider(name, self._lister(ns, name), namespaces=(ns,)))
        return out

    def _lister(self, namespace: str, classname: str) -> Any:
        def build(_view: Any) -> Iterator[Instance]:
            with self._lock:
                found = [o for (ns, _), o in self._objects.items()
                         if ns == namespace and o.classname.lower() == classname.lower()]
            return iter(found)
        return build

    # --- delivery ----------------------------------------------------------------------
    def _targets(self, indication_class: str, source_class: str) -> list[Destination]:
        with self._lock:
            objects = list(self._objects.items())
        out: dict[str, Destination] = {}
        source = self.schemas[VIRT]
        for (ns, _), obj in objects:
            schema = self.schemas[ns]
            if not schema.is_a(obj.classname, SUBSCRIPTION) or obj.get("SubscriptionState") \
                    not in (2, 3):
                continue
            filt = self._find(ns, obj.path.key("Filter"), FILTER)
            dest = self._find(ns, obj.path.key("Handler"), DESTINATION)
            if filt is None or dest is None:
                continue
            query = parse_query(filt.get("Query"), filt.get("QueryLanguage"))
            if not source.is_a(indication_class, query.from_class):
                continue
            if query.isa and not source.is_a(source_class, query.isa):
                continue
            sources = [s.lower().strip("/") for s in
                       (filt.get("SourceNamespaces") or []) + [filt.get("SourceNamespace") or ""]
                       if s]
            if sources and "root/virt" not in sources:
                continue
            target = parse_destination(dest.get("Destination") or "")
            out[target.url] = target
        return list(out.values())

    def indication(self, event: DomainEvent) -> tuple[str, str]:
        """(indication class, ExportIndication body) for a lifecycle event."""
        model = self.model
        snap = model.snapshot()
        view = model.view(snap)
        name, uuid = event.domain.name, event.domain.uuid
        dom = snap.domain(uuid)
        previous = self._last.get(uuid)
        if previous is None and dom is not None:
            previous = next(iter(_cs_values(view, dom)))
        if event.event == LifecycleEvent.DEFINED and event.detail == DefinedDetail.ADDED:
            suffix = "ComputerSystemCreatedIndication"
        elif event.event == LifecycleEvent.UNDEFINED:
            suffix = "ComputerSystemDeletedIndication"
        else:
            suffix = "ComputerSystemModifiedIndication"
        current = dict(previous) if previous else {}
        path = view.cs_path(name)
        current.update(path.keys)
        current.update({"ElementName": name, "UUID": uuid})
        state = EVENT_STATE.get(event.event)
        if state is None:
            state = current.get("EnabledState", 3 if event.event == LifecycleEvent.DEFINED else 0)
        current["EnabledState"] = state
        if event.event == LifecycleEvent.UNDEFINED:
            self._last.pop(uuid, None)
        else:
            self._last[uuid] = current
        schema = self.schemas[VIRT]
        writer = xb.InstanceWriter(schema.get(path.classname), xb.Flags(), {})
        source = writer.write(Instance(path.classname, path, current), view.hostname)
        cls = model.cls(suffix)
        values: dict[str, Any] = {
            "IndicationIdentifier": str(next(self._ids)),
            "IndicationTime": cim_datetime(event.timestamp or time.time()),
            "PerceivedSeverity": 2, "SourceInstance": source,
            "SourceInstanceModelPath": f"//{view.hostname}/{path}",
            "SourceInstanceHost": view.hostname,
            "Description": f"domain {name}: {event.event.name.lower()}"}
        if suffix.endswith("ModifiedIndication") and previous:
            old = Instance(path.classname, path, previous)
            values["PreviousInstance"] = writer.write(old, view.hostname)
        ind_path = InstancePath(cls, ())
        body = xb.InstanceWriter(schema.get(cls), xb.Flags(), {}).write(
            Instance(cls, ind_path, values), view.hostname)
        return cls, xb.export_indication(values["IndicationIdentifier"], body)

    async def deliver(self, event: DomainEvent) -> int:
        """Export the event's indication to every matching listener; how many took it."""
        cls, body = await asyncio.to_thread(self.indication, event)
        targets = self._targets(cls, self.model.cls("ComputerSystem"))
        if not targets:
            return 0
        data = body.encode("utf-8")
        results = await asyncio.gather(*(export(t, data, timeout=self.timeout) for t in targets),
                                       return_exceptions=True)
        ok = 0
        for target, result in zip(targets, results, strict=True):
            if result == 200:
                ok += 1
            else:
                self.failed += 1
                self.log.warning("indication %s to %s failed: %s", cls, target.url,
                                 result if isinstance(result, BaseException) else
                                 f"HTTP {result}")
        self.delivered += ok
        return ok


def _encode(value: Any) -> Any:
    if isinstance(value, InstancePath):
        return {"$path": [value.classname, [[k, _encode(v)] for k, v in value.keys],
                          value.namespace]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        classname, keys, namespace = value["$path"]
        return InstancePath(str(classname), tuple((str(k), _decode(v)) for k, v in keys),
                            str(namespace))
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError(f"unexpected stored value {value!r:.40}")


def _cs_values(view: Any, dom: Any) -> Iterator[dict[str, Any]]:
    for inst in computer_system(view, dom):
        yield dict(inst.values)
