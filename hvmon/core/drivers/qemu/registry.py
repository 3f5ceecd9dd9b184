"""The QEMU driver's domain table: definitions on disk, lookups, identity rules."""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid as uuidlib
from collections.abc import Iterator
from contextlib import contextmanager

from hvmon.core.drivers.identity import check_identity
from hvmon.core.drivers.qemu.paths import QemuPaths
from hvmon.core.drivers.qemu.state import QemuDomain
from hvmon.core.errors import InvalidArgument, NoSuchDomain
from hvmon.core.events import DomainEventRecord, EventBus, LifecycleEvent
from hvmon.core.xml.domain import Domain as DomainXML

log = logging.getLogger("hvmon.qemu")


def canonical_uuid(value: str) -> str:
    try:
        return str(uuidlib.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument(f"invalid UUID '{value}'") from None


class Registry:
    """Domains by UUID, name and id, under one lock; events sent after release."""

    def __init__(self, paths: QemuPaths, events: EventBus) -> None:
        self.paths = paths
        self.events = events
        self.lock = threading.RLock()
        self.domains: dict[str, QemuDomain] = {}
        self.macs: set[str] = set()
        self._next_id = 1
        self._pending: list[DomainEventRecord] = []
        self._depth = 0

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the table lock; events queued meanwhile go out after the outermost release."""
        with self.lock:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                events = []
                if self._depth == 0:
                    events, self._pending = self._pending, []
        for record in events:
            self.events.emit(record)

    def queue_event(self, dom: QemuDomain, event: LifecycleEvent, detail: int) -> None:
        with self.locked():
            self._pending.append(DomainEventRecord(dom.uuid, dom.name, dom.id, event,
                                                   int(detail)))

    # --- lookups -----------------------------------------------------------
    def get(self, uuid: str) -> QemuDomain:
        dom = self.domains.get(uuid)
        if dom is None:
            raise NoSuchDomain(f"domain not found: no domain with matching uuid '{uuid}'")
        return dom

    def find(self, by: str, value: str | int) -> QemuDomain:
        with self.locked():
            found: QemuDomain | None = None
            if by == "uuid":
                found = self.domains.get(canonical_uuid(str(value)))
            elif by in ("name", "id"):
                key = str(value) if by == "name" else int(value)
                found = next((d for d in self.domains.values()
                              if getattr(d, by) == key and (by == "name" or d.active)), None)
            else:
                raise InvalidArgument(f"cannot look up a domain by {by}")
            if found is None:
                raise NoSuchDomain(f"domain not found: no domain with matching {by} '{value}'")
            return found

    def identity(self, xml: DomainXML) -> QemuDomain | None:
        """The domain ``xml`` redefines, or None; AlreadyExists on a name/UUID clash."""
        return check_identity(self.domains.values(), "domain", xml.name, xml.uuid)

    def next_id(self) -> int:
        used = {d.id for d in self.domains.values() if d.active}
        while self._next_id in used:
            self._next_id += 1
        value = self._next_id
        self._next_id += 1
        return value

    def note_id(self, value: int) -> None:
        self._next_id = max(self._next_id, value + 1)

    # --- on disk ------------------------------------------------------------
    def save_config(self, dom: QemuDomain) -> None:
        assert dom.config is not None
        path = self.paths.definition(dom.name)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(dom.config.to_xml())
        tmp.replace(path)

    def remove_config(self, dom: QemuDomain) -> None:
        for path in (self.paths.definition(dom.name), self.paths.autostart_marker(dom.name)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def set_autostart(self, dom: QemuDomain, on: bool) -> None:
        marker = self.paths.autostart_marker(dom.name)
        if on:
            marker.write_text(dom.uuid + "\n")
        else:
            with contextlib.suppress(FileNotFoundError):
                marker.unlink()
        dom.autostart = on

    def load_configs(self) -> list[DomainXML]:
        """Every readable definition in the config directory (bad ones are logged)."""
        found = []
        for path in sorted(self.paths.config.glob("*.xml")):
            try:
                found.append(DomainXML.from_xml(path.read_bytes()))
            except Exception as exc:  # noqa: BLE001 - one bad file must not hide the others
                log.error("ignoring unreadable definition %s: %s", path, exc)
        return found
