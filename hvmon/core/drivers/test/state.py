"""The test driver's in-memory state: objects, clock, controls, locks."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

from hvmon.core.drivers.test.clock import Clock
from hvmon.core.drivers.test.controls import ControlFile, Controls
from hvmon.core.drivers.test.simstats import Profile
from hvmon.core.events import DomainEventRecord, EventBus
from hvmon.core.types import DomainState, NodeInfo
from hvmon.core.xml.domain import Domain as DomainXML
from hvmon.core.xml.network import Network as NetworkXML
from hvmon.core.xml.pool import Pool as PoolXML
from hvmon.core.xml.secret import Secret as SecretXML
from hvmon.core.xml.volume import Volume as VolumeXML


@dataclass(eq=False)
class DomainObj:
    """One domain. ``live`` is None while it equals ``config`` (copy on write)."""

    uuid: str
    name: str
    config: DomainXML | None  # persistent definition; None when transient
    live: DomainXML | None = None
    state: DomainState = DomainState.SHUTOFF
    reason: int = 0
    id: int = -1
    autostart: bool = False
    run_base: float = 0.0
    run_started: float | None = None
    profile: Profile | None = None
    metadata_controls: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.state not in (DomainState.SHUTOFF, DomainState.NOSTATE)

    @property
    def persistent(self) -> bool:
        return self.config is not None

    def current(self) -> DomainXML:
        """The definition in force: live when active, else the config."""
        if self.active and self.live is not None:
            return self.live
        assert self.config is not None or self.live is not None
        return self.config if self.config is not None else self.live  # type: ignore[return-value]

    def own_live(self) -> DomainXML:
        """The live definition, copied from the config before its first change."""
        if self.live is None:
            assert self.config is not None
            self.live = self.config.copy()
            self.profile = None
        return self.live

    def running_seconds(self, now: float) -> float:
        if self.run_started is None:
            return self.run_base
        return self.run_base + max(0.0, now - self.run_started)


@dataclass(eq=False)
class VolumeObj:
    xml: VolumeXML
    name: str
    key: str
    path: str
    capacity: int
    allocation: int
    type: int = 0
    #: what was uploaded; bytes past its end read as zeros
    data: bytearray = field(default_factory=bytearray)


@dataclass(eq=False)
class PoolObj:
    uuid: str
    name: str
    config: PoolXML | None
    live: PoolXML
    active: bool = False
    autostart: bool = False
    built: bool = False
    capacity: int = 0
    volumes: dict[str, VolumeObj] = field(default_factory=dict)

    @property
    def persistent(self) -> bool:
        return self.config is not None

    @property
    def allocation(self) -> int:
        return sum(v.allocation for v in self.volumes.values())


@dataclass(eq=False)
class NetworkObj:
    uuid: str
    name: str
    config: NetworkXML | None
    live: NetworkXML
    active: bool = False
    autostart: bool = False

    @property
    def persistent(self) -> bool:
        return self.config is not None


@dataclass(eq=False)
class SecretObj:
    uuid: str
    xml: SecretXML
    value: bytes | None = None


class TestState:
    """Everything one test-driver connection holds, behind one lock."""

    def __init__(self, uri: str, node: NodeInfo, controls: Controls) -> None:
        self.uri = uri
        self.node = node
        self.controls = controls
        self.control_file = ControlFile(controls.control_file) if controls.control_file else None
        self.clock = Clock(manual=controls.manual_clock, start=controls.clock or 0.0)
        self.lock = threading.RLock()
        self.events = EventBus()
        self.rng = random.Random(controls.seed)  # noqa: S311 - repeatable defaults
        self.domains: dict[str, DomainObj] = {}
        self.domains_by_name: dict[str, DomainObj] = {}
        self.domains_by_id: dict[int, DomainObj] = {}
        self.pools: dict[str, PoolObj] = {}
        self.networks: dict[str, NetworkObj] = {}
        self.secrets: dict[str, SecretObj] = {}
        self.volume_paths: dict[str, VolumeObj] = {}
        self.next_id = 1
        self.nic_targets: set[str] = set()
        self.macs: set[str] = set()  # lower-case MACs in use or handed out
        self.next_vnet = 0
        self.pending_events: list[DomainEventRecord] = []
