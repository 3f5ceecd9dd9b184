"""Migration in the test driver: the same five phases, the guest simulated.

Prepare registers the incoming guest paused (reason ``migration``), Perform
moves nothing (there is no memory), Finish runs it (Started/Migrated) and
Confirm shuts the source off (Stopped/Migrated), so agents and the console
can be tested against two test daemons exactly as against QEMU hosts.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

from hvmon.core.drivers.base import DomainRef
from hvmon.core.drivers.test.base import TestPart
from hvmon.core.drivers.test.state import DomainObj
from hvmon.core.errors import OperationFailed, OperationInvalid
from hvmon.core.events import (
    DefinedDetail,
    LifecycleEvent,
    StartedDetail,
    StoppedDetail,
    UndefinedDetail,
)
from hvmon.core.types import DomainState, PausedReason, RunningReason, ShutoffReason
from hvmon.core.xml.domain import Domain as DomainXML


class MigrationOps(TestPart):
    """Begin/Prepare/Perform/Finish/Confirm on simulated guests."""

    def migrate_begin(self, uuid: str, flags: dict[str, Any]) -> dict[str, Any]:
        with self._locked():
            obj = self._dom(uuid)
            if not flags.get("offline") and not obj.active:
                raise OperationInvalid(f"domain '{obj.name}' is not running (use offline "
                                       "migration for a definition)")
            if flags.get("offline") and obj.config is None:
                raise OperationInvalid(f"domain '{obj.name}' is transient: offline migration "
                                       "moves only a definition")
            source = obj.config if flags.get("offline") else obj.current()
            assert source is not None
            persistent = obj.config.to_xml() if obj.config is not None else ""
            return {"xml": source.to_xml(), "cookie": {"persistent_xml": persistent}}

    def migrate_prepare(self, xml: str, cookie: dict[str, Any],
                        flags: dict[str, Any]) -> dict[str, Any]:
        with self._locked() as st:
            dom = self._parse_domain(xml)
            if flags.get("dest_name"):
                dom.name = str(flags["dest_name"])
            obj = self._check_identity(dom)
            if obj is not None and obj.active:
                raise OperationInvalid(f"domain '{obj.name}' is already running on the "
                                       "destination")
            if flags.get("offline"):
                return {"uri": "", "cookie": {}}
            if obj is None:
                obj = DomainObj(dom.uuid, dom.name, None, live=dom)
                self._add(obj)
            else:
                obj.live = dom
            obj.id = st.next_id
            st.next_id += 1
            st.domains_by_id[obj.id] = obj
            obj.state, obj.reason = DomainState.PAUSED, PausedReason.MIGRATION
            return {"uri": f"test:incoming/{obj.uuid}", "cookie": {}}

    def migrate_perform(self, uuid: str, uri: str, cookie: dict[str, Any],
                        flags: dict[str, Any]) -> dict[str, Any]:
        with self._locked():
            obj = self._dom(uuid)
            if not flags.get("offline") and not obj.active:
                raise OperationInvalid(f"domain '{obj.name}' is not running")
        if uri.startswith("unix:"):  # tunnelled: a simulated stream through the relay
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(uri[len("unix:"):])
                sock.sendall(f"hvmon test-driver guest {uuid}\n".encode())
        return {"cookie": {}}

    def migrate_tunnel_in(self, name: str, chunks: Iterable[bytes]) -> int:
        """Swallow the simulated stream for the incoming guest ``name``."""
        with self._locked() as st:
            obj = st.domains_by_name.get(name)
            if obj is None or obj.reason != PausedReason.MIGRATION:
                raise OperationInvalid(f"no incoming migration of '{name}' here")
        return sum(len(chunk) for chunk in chunks)

    def migrate_finish(self, name: str, cookie: dict[str, Any], flags: dict[str, Any],
                       success: bool) -> DomainRef | None:
        with self._locked() as st:
            obj = st.domains_by_name.get(name)
            if flags.get("offline"):
                if not success:
                    return None
                definition = DomainXML.from_xml(cookie.get("persistent_xml") or "")
                definition.name = name
                return self.define_domain(definition.to_xml())
            incoming = obj is not None and obj.state == DomainState.PAUSED and \
                obj.reason == PausedReason.MIGRATION
            if not success:
                if incoming:
                    assert obj is not None
                    self._stop(obj, ShutoffReason.FAILED, StoppedDetail.FAILED)
                return None
            if not incoming:
                raise OperationFailed(f"no incoming migration of '{name}' here")
            assert obj is not None
            paused = bool(flags.get("suspend"))
            obj.state = DomainState.PAUSED if paused else DomainState.RUNNING
            obj.reason = PausedReason.USER if paused else RunningReason.MIGRATED
            obj.run_base, obj.run_started = 0.0, None if paused else st.clock.now()
            self._queue_event(obj, LifecycleEvent.STARTED, StartedDetail.MIGRATED)
            if flags.get("persistent"):
                text = cookie.get("persistent_xml") or obj.current().to_xml()
                config = DomainXML.from_xml(text)
                config.name = obj.name
                detail = DefinedDetail.UPDATED if obj.config is not None else DefinedDetail.ADDED
                obj.config = config
                self._queue_event(obj, LifecycleEvent.DEFINED, detail)
            return DomainRef(obj.uuid, obj.name, obj.id)

    def migrate_confirm(self, uuid: str, cookie: dict[str, Any], flags: dict[str, Any],
                        success: bool) -> None:
        with self._locked():
            obj = self._dom(uuid)
            if not success:
                return
            if not flags.get("offline") and obj.active:
                self._stop(obj, ShutoffReason.MIGRATED, StoppedDetail.MIGRATED)
            if flags.get("undefine_source") and obj.config is not None:
                self._queue_event(obj, LifecycleEvent.UNDEFINED, UndefinedDetail.REMOVED)
                obj.config = None
                if not obj.active:
                    self._remove(obj)
