"""The network part of the QEMU driver (a mixin of :class:`QemuDriver`).

Networks, network filters and their port bindings live in stores created on
first use. Host commands run in the driver's network namespace: the one named
by the URI option ``netns=NAME`` or set with :meth:`use_network_namespace`
before any network call, else the namespace of the driver's own process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from hvmon.core.drivers.base import Listing, NetworkRef
from hvmon.core.drivers.qemu.networks.bindings import BindingStore
from hvmon.core.drivers.qemu.networks.guests import NetworkHook
from hvmon.core.drivers.qemu.networks.runner import Runner
from hvmon.core.drivers.qemu.networks.store import NetworkStore
from hvmon.core.drivers.qemu.paths import QemuPaths
from hvmon.core.drivers.qemu.state import QemuDomain
from hvmon.core.errors import InvalidArgument, OperationInvalid
from hvmon.core.types import DhcpLease
from hvmon.core.uri import ConnectURI
from hvmon.core.xml.domain import Domain as DomainXML

_INIT_LOCK = threading.Lock()


class NetworkPart:
    """Virtual networks, traffic filters and filter bindings of the QEMU driver."""

    paths: QemuPaths
    _uri: ConnectURI
    _net_runner: Runner | None = None
    _net_store: NetworkStore | None = None
    _filter_store: BindingStore | None = None
    #: ``(dom, live) -> (uid, gid)`` a guest's taps must belong to (the isolation part)
    tap_owner: Callable[[QemuDomain, DomainXML], tuple[int, int] | None] | None = None

    # --- set-up -------------------------------------------------------------------
    def use_network_namespace(self, netns: str | None) -> None:
        """Run every network command in ``netns`` (``ip netns exec``); before first use."""
        with _INIT_LOCK:
            if self._net_store is not None or self._filter_store is not None:
                raise OperationInvalid("the network namespace must be set before the first "
                                       "network call")
            try:
                self._net_runner = Runner(netns)
            except ValueError as exc:
                raise InvalidArgument(str(exc)) from None

    def network_runner(self) -> Runner:
        if self._net_runner is None:
            try:
                self._net_runner = Runner(self._uri.query.get("netns") or None)
            except ValueError as exc:
                raise InvalidArgument(str(exc)) from None
        return self._net_runner

    def networks(self) -> NetworkStore:
        """The network store (loaded, active networks reattached, on first use)."""
        if self._net_store is None:
            with _INIT_LOCK:
                if self._net_store is None:
                    store = NetworkStore(self.paths.config / "networks",
                                         self.paths.run / "networks", self.network_runner())
                    store.load()
                    self._net_store = store
        return self._net_store

    def nwfilters(self) -> BindingStore:
        """Filters (shipped and defined) and their port bindings."""
        if self._filter_store is None:
            with _INIT_LOCK:
                if self._filter_store is None:
                    self._filter_store = BindingStore(
                        self.paths.config / "nwfilter", self.paths.run / "nwfilter-bindings",
                        self.network_runner())
                    self._filter_store.load()
        return self._filter_store

    def network_hook(self) -> NetworkHook:
        """The start hook giving guest NICs their taps and filters; autostarts networks.

        Networks are started at driver open only when the root has autostart
        networks (a fresh root never runs a network command on open).
        """
        if any((self.paths.config / "networks" / "autostart").glob("*")):
            self.networks().autostart_all()
        return NetworkHook(self)

    # --- the Driver interface ---------------------------------------------------------
    def list_networks(self) -> list[Listing]:
        return self.networks().listings()

    def lookup_network(self, by: str, value: str) -> NetworkRef:
        return self.networks().lookup(by, value)

    def network_flags(self, uuid: str) -> Listing:
        with self.networks().lock:
            return self.networks().get(uuid).listing()

    def define_network(self, xml: str) -> NetworkRef:
        return self.networks().define(xml)

    def create_network(self, xml: str) -> NetworkRef:
        return self.networks().create(xml)

    def network_action(self, uuid: str, action: str) -> None:
        self.networks().action(uuid, action)

    def network_xml(self, uuid: str, inactive: bool = False) -> str:
        return self.networks().xml(uuid, inactive)

    def network_set_autostart(self, uuid: str, autostart: bool) -> None:
        self.networks().set_autostart(uuid, autostart)

    def network_dhcp_leases(self, uuid: str, mac: str | None = None) -> list[DhcpLease]:
        leases = self.networks().leases(uuid)
        if self._filter_store is not None and leases and self._filter_store.waiting():
            self._filter_store.learn(leases)  # filters waiting for a guest's IP
        if mac:
            leases = [lease for lease in leases if lease.mac == mac.lower()]
        return leases

    def ensure_default_network(self) -> str | None:
        """``[daemon] default_network``: define ``default`` unless present; its subnet."""
        return self.networks().ensure_default()

    # --- network filters (driver methods; no public API yet) ---------------------------
    def nwfilter_define(self, xml: str) -> str:
        return self.nwfilters().define(xml)

    def nwfilter_undefine(self, name: str) -> None:
        self.nwfilters().undefine(name)

    def nwfilter_list(self) -> list[str]:
        return self.nwfilters().names()

    def nwfilter_xml(self, name: str) -> str:
        return self.nwfilters().filter_xml(name)

    def nwfilter_binding_create(self, xml: str) -> str:
        return self.nwfilters().bind_xml(xml)

    def nwfilter_binding_delete(self, portdev: str) -> None:
        self.nwfilters().unbind(portdev)

    def nwfilter_binding_list(self) -> list[str]:
        return self.nwfilters().ports()

    def nwfilter_binding_xml(self, portdev: str) -> str:
        return self.nwfilters().binding_xml(portdev)

    def nwfilter_bindings_waiting(self) -> list[str]:
        """Ports whose filter still waits to learn the guest's IP from a DHCP lease."""
        return self.nwfilters().waiting()
