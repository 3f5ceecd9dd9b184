"""CPU baselines: the most capable named CPU model every given host can run.

Each host is described by its ``<domainCapabilities>`` (``domain_capabilities()``),
whose ``<mode name='custom'>`` lists the CPU models QEMU knows with
``usable='yes|no'`` (a model is unusable under KVM when the host CPU lacks one of
its features). The baseline is the newest x86 generation usable everywhere, in
QEMU's own naming; a guest defined with it can migrate between those hosts.
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from hvmon.core.errors import InvalidArgument, OperationInvalid
from hvmon.core.xml.parser import parse_xml

#: QEMU's x86 models, oldest first (Intel, then AMD); variants follow their base model
GENERATIONS: tuple[str, ...] = (
    "486", "pentium", "pentium2", "pentium3", "qemu32", "kvm32", "athlon", "n270", "coreduo",
    "core2duo", "qemu64", "kvm64", "phenom", "Conroe", "Penryn", "Nehalem", "Westmere",
    "SandyBridge", "IvyBridge",
    "Haswell", "Broadwell", "Skylake-Client", "Skylake-Server", "Cascadelake-Server",
    "Cooperlake", "Icelake-Server", "SapphireRapids",
    "Opteron_G1", "Opteron_G2", "Opteron_G3", "Opteron_G4", "Opteron_G5", "EPYC", "EPYC-Rome",
    "EPYC-Milan",
)


def usable_models(domcaps_xml: str) -> set[str]:
    """The CPU models a ``<domainCapabilities>`` document says are usable."""
    root = parse_xml(domcaps_xml, what="domain capabilities XML")
    if root.tag != "domainCapabilities":
        raise InvalidArgument(f"expected <domainCapabilities>, found <{root.tag}>")
    return {(m.text or "").strip()
            for m in root.iterfind("cpu/mode[@name='custom']/model")
            if m.get("usable", "unknown") != "no" and (m.text or "").strip()}


def _rank(model: str) -> tuple[int, int, str]:
    """Generation index of a model (a variant ranks with its base, after it)."""
    for index in range(len(GENERATIONS) - 1, -1, -1):
        base = GENERATIONS[index]
        if model == base:
            return index, 0, model
        if model.startswith(base + "-"):
            return index, 1, model
    return -1, 0, model


def baseline(hosts: Sequence[str]) -> str:
    """``<cpu mode='custom' match='exact'><model fallback='forbid'>M</model></cpu>``."""
    if not hosts:
        raise InvalidArgument("a CPU baseline needs the capabilities of at least one host")
    common = set.intersection(*(usable_models(xml) for xml in hosts))
    known = [m for m in common if _rank(m)[0] >= 0]
    if not known:
        raise OperationInvalid("no named CPU model is usable on every host given")
    model = max(known, key=lambda m: (_rank(m)[0], -_rank(m)[1], m))
    cpu = etree.Element("cpu", mode="custom", match="exact")
    etree.SubElement(cpu, "model", fallback="forbid").text = model
    return etree.tostring(cpu, encoding="unicode") + "\n"
