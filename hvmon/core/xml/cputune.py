"""``<cputune>`` pins in a domain definition: read and set ``<vcpupin>``."""

from __future__ import annotations

from lxml import etree

from hvmon.core.xml.domain import Domain as DomainXML


def vcpu_pins(dom: DomainXML) -> dict[int, str]:
    """vCPU index -> the cpuset its ``<vcpupin>`` names (unpinned vCPUs are absent)."""
    out = {}
    for pin in dom.element.iterfind("cputune/vcpupin"):
        try:
            out[int(pin.get("vcpu", ""))] = pin.get("cpuset", "")
        except ValueError:
            continue
    return out


def set_vcpu_pin(dom: DomainXML, vcpu: int, cpuset: str) -> None:
    """Pin ``vcpu`` to ``cpuset`` in ``dom`` (replacing its ``<vcpupin>``), in vCPU order."""
    tune = dom.element.find("cputune")
    if tune is None:  # libvirt's place: after <vcpu> (and <iothreads>)
        tune = etree.Element("cputune")
        anchor = dom.element.find("iothreads")
        anchor = anchor if anchor is not None else dom.element.find("vcpu")
        if anchor is not None:
            anchor.addnext(tune)
        else:
            dom.element.append(tune)
    for pin in tune.findall("vcpupin"):
        if pin.get("vcpu") == str(vcpu):
            tune.remove(pin)
    pin = etree.Element("vcpupin", vcpu=str(vcpu), cpuset=cpuset)
    later = [p for p in tune.findall("vcpupin") if int(p.get("vcpu", "0")) > vcpu]
    if later:
        later[0].addprevious(pin)
    else:
        existing = tune.findall("vcpupin")
        if existing:
            existing[-1].addnext(pin)
        else:
            tune.insert(0, pin)
    etree.indent(dom.element, space="  ")  # as libvirt prints it
