"""Network filters (shipped and defined) and their port bindings.

Filters: the shipped ones (``filters/*.xml``: ``clean-traffic`` and the filters it
references) plus those defined under ``etc/qemu/nwfilter``; a defined filter of
the same name replaces a shipped one. Bindings (libvirt's ``<filterbinding>``)
are kept in ``run/qemu/nwfilter-bindings/PORT.xml`` while their nftables table
exists; see :mod:`.nftfilter` for the rules.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

from hvmon.core.drivers.qemu.networks.nftfilter import Translator, load_filter, table_name
from hvmon.core.drivers.qemu.networks.runner import Runner
from hvmon.core.errors import (
    HvmonError,
    InvalidArgument,
    NoSuchNWFilter,
    OperationFailed,
    OperationInvalid,
)
from hvmon.core.types import DhcpLease
from hvmon.core.xml import schema
from hvmon.core.xml.nwfilter import Filter, FilterBinding

log = logging.getLogger("hvmon.qemu.nwfilter")

SHIPPED = Path(__file__).with_name("filters")
_IFNAME = re.compile(r"[A-Za-z0-9_.:-]{1,15}")
_MAC = re.compile(r"([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}")
_MAX_FILTER_BYTES = 256 * 1024


class BindingStore:
    """Filters by name and bindings by port, under one lock."""

    def __init__(self, etc: Path, run: Path, runner: Runner) -> None:
        self.etc, self.run, self.runner = etc, run, runner
        self.lock = threading.RLock()
        self.shipped: dict[str, Filter] = {}
        self.defined: dict[str, Filter] = {}
        self.bindings: dict[str, FilterBinding] = {}
        self.etc.mkdir(parents=True, exist_ok=True)
        self.run.mkdir(parents=True, exist_ok=True, mode=0o700)

    def load(self) -> None:
        with self.lock:
            for source, target in ((SHIPPED, self.shipped), (self.etc, self.defined)):
                for path in sorted(source.glob("*.xml")):
                    try:
                        filt = self._parse(path.read_text())
                    except (OSError, HvmonError) as exc:
                        log.error("ignoring network filter %s: %s", path, exc)
                        continue
                    target[filt.name or path.stem] = filt
            for path in sorted(self.run.glob("*.xml")):
                try:
                    binding = FilterBinding.from_xml(path.read_text())
                except (OSError, HvmonError) as exc:
                    log.error("ignoring filter binding %s: %s", path, exc)
                    continue
                if self.runner.ok("nft", "list", "table", "bridge",
                                  table_name(binding.portdev or "")):
                    self.bindings[binding.portdev or ""] = binding
                else:
                    path.unlink(missing_ok=True)

    # --- filters ------------------------------------------------------------------
    @staticmethod
    def _parse(xml: str) -> Filter:
        if len(xml.encode()) > _MAX_FILTER_BYTES:
            raise InvalidArgument(f"network filter XML is larger than {_MAX_FILTER_BYTES} "
                                  "bytes")
        filt = load_filter(xml)
        schema.validate(filt.element, "nwfilter")
        return filt

    def get(self, name: str) -> Filter:
        filt = self.defined.get(name) or self.shipped.get(name)
        if filt is None:
            raise NoSuchNWFilter(f"network filter not found: no filter named '{name}'")
        return filt

    def names(self) -> list[str]:
        with self.lock:
            return sorted({*self.shipped, *self.defined})

    def filter_xml(self, name: str) -> str:
        with self.lock:
            return self.get(name).to_xml()

    def define(self, xml: str) -> str:
        """Define (or replace) a filter; bindings using it are rebuilt. Its name."""
        with self.lock:
            filt = self._parse(xml)
            name = filt.name or ""
            old = self.defined.get(name)
            self.defined[name] = filt
            try:
                for port in self._users(name):
                    self._apply(self.bindings[port])
            except HvmonError:
                if old is None:
                    self.defined.pop(name)
                else:
                    self.defined[name] = old
                raise
            (self.etc / f"{name}.xml").write_text(filt.to_xml())
            return name

    def undefine(self, name: str) -> None:
        with self.lock:
            if name not in self.defined:
                if name in self.shipped:
                    raise OperationInvalid(f"network filter '{name}' is shipped with hvmon "
                                           "and cannot be undefined")
                raise NoSuchNWFilter(f"network filter not found: no filter named '{name}'")
            users = self._users(name)
            if users and name not in self.shipped:
                raise OperationInvalid(f"network filter '{name}' is in use by port(s) "
                                       f"{', '.join(users)}")
            self.defined.pop(name)
            (self.etc / f"{name}.xml").unlink(missing_ok=True)

    def _users(self, name: str) -> list[str]:
        """Ports whose binding uses filter ``name``, directly or through references."""
        users = []
        for port, binding in self.bindings.items():
            seen: set[str] = set()
            todo = [binding.filterref or ""]
            while todo:
                current = todo.pop()
                if current in seen:
                    continue
                seen.add(current)
                try:
                    todo += [ref.filter or "" for ref in self.get(current).filterrefs]
                except NoSuchNWFilter:
                    continue
            if name in seen:
                users.append(port)
        return users

    # --- bindings -----------------------------------------------------------------
    def bind_xml(self, xml: str) -> str:
        """Create a binding from ``<filterbinding>`` XML; its port."""
        binding = FilterBinding.from_xml(xml)
        return self.bind(binding)

    def bind(self, binding: FilterBinding) -> str:
        port = binding.portdev or ""
        if not _IFNAME.fullmatch(port):
            raise InvalidArgument(f"invalid filter binding port '{port}'")
        mac = binding.mac or ""
        if not _MAC.fullmatch(mac):
            raise InvalidArgument(f"filter binding for port '{port}' needs a valid "
                                  f"<mac address>, not '{mac}'")
        if binding.ref() is None or not binding.filterref:
            raise InvalidArgument(f"filter binding for port '{port}' needs a <filterref>")
        with self.lock:
            if port in self.bindings:
                raise OperationInvalid(f"port '{port}' already has a filter binding")
            self._apply(binding)
            self.bindings[port] = binding
            (self.run / f"{port}.xml").write_text(binding.to_xml())
            return port

    def rebind(self, port: str, variables: dict[str, list[str]]) -> None:
        """Set parameters of an existing binding (a learned IP) and reload its rules."""
        with self.lock:
            binding = self._binding(port)
            ref = binding.find("filterref")
            assert ref is not None
            for name, values in variables.items():
                for old in ref.findall(f"parameter[@name='{name}']"):
                    ref.remove(old)
                for value in values:
                    param = ref.makeelement("parameter", {"name": name, "value": value})
                    ref.append(param)
            self._apply(binding)
            (self.run / f"{port}.xml").write_text(binding.to_xml())

    def waiting(self) -> list[str]:
        """Ports whose filter still waits for the guest's IP (libvirt's ``CTRL_IP_LEARNING``:
        no ``IP`` parameter and learning not ``none``)."""
        with self.lock:
            out = []
            for port, binding in self.bindings.items():
                ref = binding.ref()
                params = ref.variables() if ref is not None else {}
                if "IP" not in params and params.get("CTRL_IP_LEARNING", ["any"])[0] != "none":
                    out.append(port)
            return out

    def learn(self, leases: list[DhcpLease]) -> list[str]:
        """Give waiting bindings the IPv4 address their MAC leased; the ports rebound."""
        learned = []
        with self.lock:
            for port in self.waiting():
                mac = (self.bindings[port].mac or "").lower()
                found = next((lease.ipaddr for lease in leases
                              if lease.mac == mac and lease.type == "ipv4"), None)
                if found is None:
                    continue
                try:
                    self.rebind(port, {"IP": [found]})
                except HvmonError as exc:
                    log.warning("port '%s': applying the learned IP %s failed: %s", port,
                                found, exc)
                    continue
                log.info("port '%s': learned IP %s from its DHCP lease", port, found)
                learned.append(port)
        return learned

    def _binding(self, port: str) -> FilterBinding:
        binding = self.bindings.get(port)
        if binding is None:
            raise NoSuchNWFilter(f"no filter binding for port '{port}'")
        return binding

    def script(self, binding: FilterBinding) -> str:
        ref = binding.ref()
        assert ref is not None
        variables = {"MAC": [(binding.mac or "").lower()]}
        return Translator(self.get).script(binding.portdev or "", ref, variables)

    def _apply(self, binding: FilterBinding) -> None:
        script = self.script(binding)
        table = table_name(binding.portdev or "")
        prefix = ""
        if self.runner.ok("nft", "list", "table", "bridge", table):
            prefix = f"delete table bridge {table}\n"
        try:
            self.runner.run("nft", "-f", "-", stdin=prefix + script)
        except OperationFailed as exc:
            raise OperationFailed(f"cannot load the filter rules of port "
                                  f"'{binding.portdev}': {exc}") from None

    def unbind(self, port: str) -> None:
        with self.lock:
            self._binding(port)
            self.runner.run("nft", "delete", "table", "bridge", table_name(port), check=False)
            self.bindings.pop(port, None)
            (self.run / f"{port}.xml").unlink(missing_ok=True)

    def ports(self) -> list[str]:
        with self.lock:
            return sorted(self.bindings)

    def binding_xml(self, port: str) -> str:
        with self.lock:
            return self._binding(port).to_xml()
