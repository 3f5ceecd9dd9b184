"""``find-storage-pool-sources``: what an iSCSI portal or an NFS server offers.

iSCSI targets are listed by libiscsi's ``iscsi-ls`` (a SendTargets
discovery from user space, so it works without the kernel initiator);
NFS exports by ``showmount -e``. The answer is libvirt's ``<sources>`` XML.
"""

from __future__ import annotations

import re

from lxml import etree

from hvmon.core.drivers.qemu.storage.backends.base import Tools
from hvmon.core.errors import InvalidArgument, Unsupported
from hvmon.core.xml.parser import parse_xml

DISCOVERY_INITIATOR = "iqn.2013-01.org.hvmon:discovery"
_TARGET = re.compile(r"^Target:(\S+)\s+Portal:(\S+)")


def _spec_host(spec: str | None, kind: str) -> tuple[str, int, etree._Element | None]:
    if not spec:
        raise InvalidArgument(f"finding {kind} pool sources needs a source spec naming the "
                              "host (<source><host name='...'/></source>)")
    root = parse_xml(spec, "source spec XML")
    host = root.find("host") if root.tag == "source" else root.find("source/host")
    if host is None or not host.get("name"):
        raise InvalidArgument(f"the {kind} source spec names no <host name='...'/>")
    try:
        port = int(host.get("port", "0"))
    except ValueError:
        raise InvalidArgument(f"invalid port '{host.get('port')}' in the source spec") from None
    return host.get("name", ""), port, root


def _out(sources: list[etree._Element]) -> str:
    root = etree.Element("sources")
    root.extend(sources)
    etree.indent(root, space="  ")
    return etree.tostring(root, encoding="unicode") + "\n"


def iscsi_sources(spec: str | None, tools: Tools) -> str:
    host, port, root = _spec_host(spec, "iscsi")
    initiator = DISCOVERY_INITIATOR
    iqn = root.find(".//initiator/iqn") if root is not None else None
    if iqn is not None and iqn.get("name"):
        initiator = iqn.get("name", initiator)
    port = port or 3260
    result = tools.runner.run(["iscsi-ls", "-i", initiator, f"iscsi://{host}:{port}"],
                              timeout=30)
    sources = []
    for line in result.stdout.splitlines():
        match = _TARGET.match(line.strip())
        if match is None:
            continue
        source = etree.Element("source")
        etree.SubElement(source, "host", name=host, port=str(port))
        etree.SubElement(source, "device", path=match.group(1))
        sources.append(source)
    return _out(sources)


def netfs_sources(spec: str | None, tools: Tools) -> str:
    host, _, _ = _spec_host(spec, "netfs")
    result = tools.runner.run(["showmount", "--no-headers", "-e", host], timeout=30)
    sources = []
    for line in result.stdout.splitlines():
        fields = line.split()
        if not fields or not fields[0].startswith("/"):
            continue
        source = etree.Element("source")
        etree.SubElement(source, "host", name=host)
        etree.SubElement(source, "dir", path=fields[0])
        etree.SubElement(source, "format", type="nfs")
        sources.append(source)
    return _out(sources)


def find_sources(kind: str, spec: str | None, tools: Tools) -> str:
    if kind in ("iscsi", "iscsi-direct"):
        return iscsi_sources(spec, tools)
    if kind == "netfs":
        return netfs_sources(spec, tools)
    raise Unsupported(f"finding sources of '{kind}' pools is not supported (iscsi, "
                      "iscsi-direct, netfs)")
