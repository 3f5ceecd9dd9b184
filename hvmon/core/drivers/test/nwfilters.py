"""Network filters in the test driver: the same filters and bindings, no firewall.

The shipped filters (``clean-traffic`` and the ones it references) are the QEMU
driver's; defined filters and port bindings live in memory, so agents and the
CLI see the same objects as on a real host, without nftables.
"""

from __future__ import annotations

import re

from hvmon.core.drivers.test.base import TestPart
from hvmon.core.errors import InvalidArgument, NoSuchNWFilter, OperationInvalid
from hvmon.core.xml import schema
from hvmon.core.xml.nwfilter import Filter, FilterBinding

_PORT = re.compile(r"[A-Za-z0-9_.:-]{1,15}")


class NWFilterOps(TestPart):
    """nwfilter_* and nwfilter_binding_* driver methods on simulated state."""

    _shipped: dict[str, Filter] | None = None

    def _filters(self) -> tuple[dict[str, Filter], dict[str, Filter], dict[str, FilterBinding]]:
        """(shipped, defined, bindings), the shipped ones loaded on first use."""
        st = self.state
        if self._shipped is None:
            from hvmon.core.drivers.qemu.networks.bindings import SHIPPED

            self._shipped = {}
            for path in sorted(SHIPPED.glob("*.xml")):
                filt = Filter.from_xml(path.read_bytes())
                self._shipped[filt.name or path.stem] = filt
        defined = st.__dict__.setdefault("nwfilters", {})
        bindings = st.__dict__.setdefault("nwfilter_bindings", {})
        return self._shipped, defined, bindings

    def nwfilter_list(self) -> list[str]:
        with self._locked():
            shipped, defined, _ = self._filters()
            return sorted({*shipped, *defined})

    def _filter(self, name: str) -> Filter:
        shipped, defined, _ = self._filters()
        found = defined.get(name) or shipped.get(name)
        if found is None:
            raise NoSuchNWFilter(f"network filter not found: no filter named '{name}'")
        return found

    def nwfilter_xml(self, name: str) -> str:
        with self._locked():
            return self._filter(name).to_xml()

    def nwfilter_define(self, xml: str) -> str:
        with self._locked():
            filt = Filter.from_xml(xml)
            schema.validate(filt.element, "nwfilter")
            if not filt.name:
                raise InvalidArgument("network filter has no name")
            self._filters()[1][filt.name] = filt
            return filt.name

    def nwfilter_undefine(self, name: str) -> None:
        with self._locked():
            shipped, defined, bindings = self._filters()
            if name not in defined:
                if name in shipped:
                    raise OperationInvalid(f"network filter '{name}' is shipped with hvmon "
                                           "and cannot be undefined")
                raise NoSuchNWFilter(f"network filter not found: no filter named '{name}'")
            users = [p for p, b in bindings.items() if b.filterref == name]
            if users:
                raise OperationInvalid(f"network filter '{name}' is in use by port "
                                       f"{users[0]}")
            del defined[name]

    def nwfilter_binding_list(self) -> list[str]:
        with self._locked():
            return sorted(self._filters()[2])

    def _binding(self, port: str) -> FilterBinding:
        binding = self._filters()[2].get(port)
        if binding is None:
            raise NoSuchNWFilter(f"no network filter binding for port '{port}'")
        return binding

    def nwfilter_binding_xml(self, portdev: str) -> str:
        with self._locked():
            return self._binding(portdev).to_xml()

    def nwfilter_binding_create(self, xml: str) -> str:
        with self._locked():
            binding = FilterBinding.from_xml(xml)
            port = binding.portdev or ""
            if not _PORT.fullmatch(port):
                raise InvalidArgument(f"filter binding: invalid port device {port!r:.40}")
            if not binding.filterref:
                raise InvalidArgument("filter binding names no filter (<filterref filter=...>)")
            self._filter(binding.filterref)
            bindings = self._filters()[2]
            if port in bindings:
                raise OperationInvalid(f"port '{port}' already has a filter binding")
            bindings[port] = binding
            return port

    def nwfilter_binding_delete(self, portdev: str) -> None:
        with self._locked():
            self._binding(portdev)
            del self._filters()[2][portdev]
