"""Build libvirt-style ``<capabilities>`` documents from plain host facts."""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from hvmon.core.xml.parser import to_string

Machine = str | tuple[str, str]


@dataclass
class HostFacts:
    """What the host offers. ``sockets`` is per NUMA cell, as in libvirt's node info."""

    uuid: str
    arch: str
    model: str
    vendor: str
    sockets: int
    cores: int
    threads: int
    cells: int
    memory_kib: int
    cpus: int
    migration_transports: tuple[str, ...] = ("tcp",)


@dataclass
class GuestArch:
    """One ``<guest>``: an OS type and architecture with its emulator and machines.

    ``machines`` holds names (the first is the canonical default) or
    ``(alias, canonical)`` pairs, written ``<machine canonical='pc-i440fx-7.2'>pc</machine>``.
    """

    os_type: str
    arch: str
    wordsize: int
    emulator: str
    machines: list[Machine] = field(default_factory=list)
    domain_types: list[str] = field(default_factory=lambda: ["qemu"])


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, tag, attrs)
    element.text = text
    return element


def _split(total: int, parts: int) -> list[int]:
    """``total`` spread over ``parts`` as evenly as possible (earlier parts get more)."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _host(root: etree._Element, host: HostFacts) -> None:
    el = _sub(root, "host")
    _sub(el, "uuid", host.uuid)
    cpu = _sub(el, "cpu")
    _sub(cpu, "arch", host.arch)
    _sub(cpu, "model", host.model)
    _sub(cpu, "vendor", host.vendor)
    _sub(cpu, "topology", sockets=str(host.sockets), dies="1", cores=str(host.cores),
         threads=str(host.threads))
    migration = _sub(el, "migration_features")
    _sub(migration, "live")
    transports = _sub(migration, "uri_transports")
    for name in host.migration_transports:
        _sub(transports, "uri_transport", name)
    _topology(el, host)


def _topology(parent: etree._Element, host: HostFacts) -> None:
    cells = max(host.cells, 1)
    threads = max(host.threads, 1)
    per_socket = max(host.cores, 1) * threads
    cells_el = _sub(_sub(parent, "topology"), "cells", num=str(cells))
    next_id = 0
    for cell_id, (count, memory) in enumerate(
        zip(_split(host.cpus, cells), _split(host.memory_kib, cells), strict=True)
    ):
        cell = _sub(cells_el, "cell", id=str(cell_id))
        _sub(cell, "memory", str(memory), unit="KiB")
        cpus = _sub(cell, "cpus", num=str(count))
        first = next_id
        for index in range(count):
            core_first = first + index - index % threads
            core_last = min(core_first + threads, first + count) - 1
            siblings = str(core_first) if core_first == core_last else f"{core_first}-{core_last}"
            _sub(cpus, "cpu", id=str(next_id),
                 socket_id=str(cell_id * max(host.sockets, 1) + index // per_socket),
                 die_id="0", core_id=str((index // threads) % max(host.cores, 1)),
                 siblings=siblings)
            next_id += 1


def _guest(root: etree._Element, guest: GuestArch) -> None:
    el = _sub(root, "guest")
    _sub(el, "os_type", guest.os_type)
    arch = _sub(el, "arch", name=guest.arch)
    _sub(arch, "wordsize", str(guest.wordsize))
    _sub(arch, "emulator", guest.emulator)
    for machine in guest.machines:
        if isinstance(machine, tuple):
            alias, canonical = machine
            _sub(arch, "machine", alias, canonical=canonical)
        else:
            _sub(arch, "machine", machine)
    for domain_type in guest.domain_types:
        _sub(arch, "domain", type=domain_type)


def build_capabilities(host: HostFacts, guests: list[GuestArch]) -> str:
    """The ``<capabilities>`` document for ``host`` and ``guests`` (validates against
    ``capabilities.rng``)."""
    root = etree.Element("capabilities")
    _host(root, host)
    for guest in guests:
        _guest(root, guest)
    etree.indent(root, space="  ")
    return to_string(root)
