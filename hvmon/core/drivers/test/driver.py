"""The embedded test driver: ``test:///default`` and ``test:///abs/node.xml``."""

from __future__ import annotations

import copy
import os
import random
import socket
import uuid as uuidlib

from lxml import etree

from hvmon.core import stats as stats_mod
from hvmon.core.drivers.base import Driver
from hvmon.core.drivers.test import nodefile
from hvmon.core.drivers.test.controls import Controls, from_query
from hvmon.core.drivers.test.defaults import (
    DEFAULT_DOMAIN_XML,
    DEFAULT_NETWORK_XML,
    DEFAULT_NODE,
    DEFAULT_POOL_XML,
)
from hvmon.core.drivers.test.domains import DomainOps, metadata_controls
from hvmon.core.drivers.test.migration import MigrationOps
from hvmon.core.drivers.test.networks import NetworkOps
from hvmon.core.drivers.test.nwfilters import NWFilterOps
from hvmon.core.drivers.test.secrets import SecretOps
from hvmon.core.drivers.test.state import DomainObj, SecretObj, TestState
from hvmon.core.drivers.test.storage import StorageOps, check_pool_source
from hvmon.core.errors import InvalidArgument, NoConnect
from hvmon.core.types import DomainState, NodeInfo, PausedReason, RunningReason
from hvmon.core.uri import ConnectURI
from hvmon.core.xml import defaults
from hvmon.core.xml.capabilities import GuestArch, HostFacts, build_capabilities
from hvmon.core.xml.domain import Domain as DomainXML
from hvmon.core.xml.network import Network as NetworkXML
from hvmon.core.xml.parser import parse_xml
from hvmon.core.xml.pool import Pool as PoolXML
from hvmon.core.xml.secret import Secret as SecretXML


def simulated_uptime(seed: int, uuid: str) -> float:
    """How long a domain found running at open has been up: 1 hour to 30 days."""
    return random.Random(f"uptime:{seed}:{uuid}").uniform(3600.0, 30 * 86400.0)  # noqa: S311


class TestDriver(DomainOps, MigrationOps, StorageOps, NetworkOps, NWFilterOps, SecretOps,
                 Driver):
    """An in-process driver whose host and guests are simulated."""

    __test__ = False  # not a pytest test class
    name = "test"
    stats_workers = 1  # pure Python: more threads only fight over the GIL

    def __init__(self, uri: ConnectURI) -> None:
        Driver.__init__(self)
        controls = from_query(uri.query)
        if uri.path in ("/default", "/"):
            root, node = None, DEFAULT_NODE
        else:
            root = nodefile.read_node_file(uri.path)
            node = nodefile.node_info(root)
            nodefile.apply_node_controls(root, controls)
        self._base_controls = copy.deepcopy(controls)
        self.state = TestState(uri.raw, node, controls)
        self.events = self.state.events
        with self.state.lock:
            if root is None:
                self._load_defaults()
            else:
                nodefile.load_objects(self, root, os.path.dirname(uri.path))
            self.state.pending_events.clear()

    # --- loading ------------------------------------------------------------
    def _load_defaults(self) -> None:
        self.load_network(NetworkXML.from_xml(DEFAULT_NETWORK_XML))
        self.load_pool(PoolXML.from_xml(DEFAULT_POOL_XML), [])
        self.load_domain(DomainXML.from_xml(DEFAULT_DOMAIN_XML), DomainState.RUNNING, False)

    def load_domain(self, dom: DomainXML, state: DomainState, transient: bool) -> None:
        """Register a domain from a node file in ``state``."""
        st = self.state
        defaults.fill_domain(dom, rng=st.rng, used_macs=st.macs)
        dom.element.attrib.pop("id", None)
        if self._check_identity(dom) is not None:
            raise NoConnect(f"node file defines domain '{dom.name}' twice")
        obj = DomainObj(dom.uuid, dom.name, None if transient else dom,
                        live=dom if transient else None)
        obj.metadata_controls = metadata_controls(dom)
        self._add(obj)
        if state in (DomainState.RUNNING, DomainState.PAUSED, DomainState.BLOCKED):
            self._start(obj, RunningReason.BOOTED)
            obj.run_base = simulated_uptime(st.controls.seed, obj.uuid)
            if state == DomainState.PAUSED:
                obj.run_started = None
                obj.state, obj.reason = DomainState.PAUSED, PausedReason.USER

    def load_network(self, net: NetworkXML) -> None:
        used = {n.live.bridge for n in self.state.networks.values() if n.live.bridge}
        defaults.fill_network(net, rng=self.state.rng, used_bridges=used)
        if self._claim(net) is not None:  # type: ignore[arg-type]
            raise NoConnect(f"node file defines network '{net.name}' twice")
        self.add_network(net, persistent=True, active=True)

    def load_pool(self, pool: PoolXML, volumes: list[str]) -> None:
        check_pool_source(pool)
        defaults.fill_pool(pool, rng=self.state.rng)
        obj = self.add_pool(pool, persistent=True)
        self.start_pool(obj)
        for xml in volumes:
            self._store(obj, self._new_volume(obj, xml))

    def load_secret(self, secret: SecretXML) -> None:
        defaults.fill_secret(secret, rng=self.state.rng)
        self.state.secrets[secret.uuid] = SecretObj(secret.uuid, secret)

    # --- controls -----------------------------------------------------------
    def _poll_controls(self) -> None:
        st = self.state
        if st.control_file is None:
            return
        data = st.control_file.poll()
        if data is None:
            return
        fresh: Controls = copy.deepcopy(self._base_controls)
        for name, job in st.controls.jobs.items():  # keep running jobs' start times
            fresh.jobs.setdefault(name, job)
        fresh.merge(data)
        for name, job in fresh.jobs.items():
            old = st.controls.jobs.get(name)
            if old is not None and job.started is None:
                job.started = old.started
        st.controls = fresh
        if fresh.manual_clock and fresh.clock is not None:
            st.clock.set(fresh.clock)
        for name in fresh.crash:
            obj = st.domains_by_name.get(name)
            if obj is not None:
                self._crash(obj)
        fresh.crash = []

    @property
    def controls(self) -> Controls:
        """The controls in force (in-process tests may change them directly)."""
        return self.state.controls

    def all_domain_stats(self, refs, groups, deadline):  # type: ignore[no-untyped-def]
        """Inline when no test control can stall a domain (nothing can block then)."""
        with self._locked() as st:  # also polls the control file once for the call
            may_stall = bool(st.controls.stall) or any(
                obj.metadata_controls.get("stall") for obj in st.domains.values())
        if may_stall:
            return super().all_domain_stats(refs, groups, deadline)
        return [stats_mod.fetch_one(ref, lambda r: self.domain_stats(r.uuid, groups),
                                    lambda r: f"domain '{r.name}'") for ref in refs]

    # --- host ---------------------------------------------------------------
    def uri(self) -> str:
        return self.state.uri

    def hostname(self) -> str:
        return socket.gethostname()

    def node_info(self) -> NodeInfo:
        return self.state.node

    def hypervisor_version(self) -> int:
        """0.0.2, what libvirt's test driver reports."""
        return 2

    def node_free_memory(self) -> int:
        """Host memory not given to running domains (their current memory), in bytes."""
        with self._locked() as st:
            # a stats profile, when built, holds the current memory (dropped on any change)
            used = sum(obj.profile.facts.current_kib if obj.profile is not None
                       else obj.current().current_memory_kib
                       for obj in st.domains.values() if obj.active)
            return max(st.node.memory - used, 0) * 1024

    #: the CPU models the simulated host runs (its own model, i686, is 'pentium3'-class)
    CPU_MODELS = ("qemu32", "qemu64", "pentium", "pentium2", "pentium3", "kvm32", "kvm64")

    def compare_cpu(self, xml: str) -> int:
        """``host-passthrough``: identical; a model of :attr:`CPU_MODELS`: superset."""
        root = parse_xml(xml, what="CPU XML")
        cpu = root if root.tag == "cpu" else root.find("cpu")
        if cpu is None:
            raise InvalidArgument("no <cpu> element in the XML given")
        if cpu.get("mode") in ("host-passthrough", "host-model"):
            return 1
        model = (cpu.findtext("model") or "").strip()
        return 2 if not model or model in self.CPU_MODELS else 0

    def domain_capabilities_xml(self, machine: str | None, virt_type: str | None) -> str:
        """What libvirt's test driver answers: the emulator, type, machine, arch, vCPUs."""
        if virt_type not in (None, "test"):
            raise InvalidArgument(f"virt type '{virt_type}' is not served by the test driver "
                                  "(test)")
        if machine not in (None, "pc"):
            raise InvalidArgument(f"machine type '{machine}' is not supported (pc)")
        root = etree.Element("domainCapabilities")
        for tag, text in (("path", "/usr/bin/test-hv"), ("domain", "test"), ("machine", "pc"),
                          ("arch", "i686")):
            etree.SubElement(root, tag).text = text
        etree.SubElement(root, "vcpu", max=str(self.state.node.cpus))
        return etree.tostring(root, pretty_print=True, encoding="unicode")

    def capabilities_xml(self) -> str:
        node = self.state.node
        host = HostFacts(
            uuid=str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, self.state.uri)),
            arch=node.model if node.model in ("i686", "x86_64") else "i686",
            model=node.model, vendor="hvmon-test",
            sockets=node.sockets, cores=node.cores, threads=node.threads,
            cells=node.nodes, memory_kib=node.memory, cpus=node.cpus,
        )
        guests = [
            GuestArch("hvm", "i686", 32, "/usr/bin/test-hv", ["pc"], ["test"]),
            GuestArch("hvm", "x86_64", 64, "/usr/bin/test-hv", ["pc"], ["test"]),
        ]
        return build_capabilities(host, guests)
