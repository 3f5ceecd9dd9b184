"""Loading a ``<node>`` document: ``test:///abs/path.xml``.

The format is libvirt's test-driver node file: ``<cpu>`` and ``<memory>``
facts, then ``<domain>``, ``<network>``, ``<pool>`` (holding ``<volume>``) and
``<secret>`` elements, each inline or as ``<domain file='dom.xml'/>`` relative
to the node file. Domains start running unless libvirt's test metadata
(``<test:runstate>``, ``<test:transient/>``) says otherwise. hvmon's own test
controls live in namespace :data:`~hvmon.core.drivers.test.controls.NS`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from lxml import etree

from hvmon.core.drivers.test.controls import NS, Controls
from hvmon.core.drivers.test.defaults import DEFAULT_NODE
from hvmon.core.errors import InvalidArgument, InvalidXML, NoConnect
from hvmon.core.types import DomainState, NodeInfo
from hvmon.core.xml import schema
from hvmon.core.xml.parser import parse_xml

if TYPE_CHECKING:
    from hvmon.core.drivers.test.driver import TestDriver

LIBVIRT_TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
MAX_NODE_FILE = 512 * 1024 * 1024


def read_node_file(path: str) -> etree._Element:
    """Parse the node file at ``path`` (absolute) or raise a one-line error."""
    if not os.path.isabs(path):
        raise NoConnect(f"test driver node file path must be absolute: '{path}'")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_NODE_FILE + 1)
    except OSError as exc:
        raise NoConnect(f"cannot read test driver node file '{path}': {exc.strerror}") from None
    root = _parse_big(data, path)
    if root.tag != "node":
        raise InvalidXML(f"XML error in '{path}': expected <node> root element, found <{root.tag}>")
    return root


def _parse_big(data: bytes, path: str) -> etree._Element:
    if len(data) > MAX_NODE_FILE:
        raise InvalidXML(f"XML error in '{path}': node file larger than {MAX_NODE_FILE} bytes")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise InvalidXML(f"XML error in '{path}': DOCTYPE and entity declarations are not allowed")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=True, collect_ids=False, remove_blank_text=True)
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise InvalidXML(f"XML error in '{path}' at line {exc.lineno}: {exc.msg}") from None


def node_info(root: etree._Element) -> NodeInfo:
    """Host facts from ``<cpu>`` and ``<memory>``, defaulting to libvirt's."""
    cpu = root.find("cpu")

    def num(tag: str, default: int) -> int:
        node = cpu.find(tag) if cpu is not None else None
        if node is None or not (node.text or "").strip():
            return default
        try:
            return int(node.text.strip())
        except ValueError:
            raise InvalidXML(f"invalid <cpu><{tag}> value '{node.text.strip()}'") from None

    d = DEFAULT_NODE
    nodes, sockets = num("nodes", d.nodes), num("sockets", d.sockets)
    cores, threads = num("cores", d.cores), num("threads", d.threads)
    model = d.model
    if cpu is not None and cpu.find("model") is not None:
        model = (cpu.find("model").text or model).strip()
    memory = d.memory
    mem = root.find("memory")
    if mem is not None and (mem.text or "").strip():
        try:
            memory = int(mem.text.strip())
        except ValueError:
            raise InvalidXML(f"invalid <memory> value '{mem.text.strip()}'") from None
    cpus = num("active", nodes * sockets * cores * threads)
    return NodeInfo(model, memory, cpus, num("mhz", d.mhz), nodes, sockets, cores, threads)


def node_controls(root: etree._Element) -> dict[str, Any]:
    """``<hvmon:controls>`` as a control-file mapping."""
    el = root.find(f"{{{NS}}}controls")
    if el is None:
        return {}
    out: dict[str, Any] = {"stall": {}, "fail": {}, "jobs": {}, "leases": {}}
    try:
        if el.get("seed"):
            out["seed"] = int(el.get("seed"))
        clock = el.get("clock")
        if clock:
            out["clock"] = 0.0 if clock == "manual" else float(clock)
        for child in el.findall(f"{{{NS}}}stall"):
            out["stall"][child.get("domain")] = float(child.get("seconds", "3600"))
        for child in el.findall(f"{{{NS}}}fail"):
            out["fail"][child.get("domain")] = child.get("message", "simulated failure")
        for child in el.findall(f"{{{NS}}}job"):
            out["jobs"][child.get("domain")] = {
                k: (child.get(k) if k == "operation" else float(child.get(k)))
                for k in ("operation", "total", "rate") if child.get(k)
            }
        for child in el.findall(f"{{{NS}}}lease"):
            out["leases"].setdefault(child.get("network"), []).append(
                {k: child.get(k) for k in ("mac", "ip", "hostname", "clientid") if child.get(k)}
            )
    except (TypeError, ValueError) as exc:
        raise InvalidXML(f"invalid hvmon test controls in node file: {exc}") from None
    if el.get("control-file"):
        out["control_file"] = el.get("control-file")
    return out


def apply_node_controls(root: etree._Element, controls: Controls) -> None:
    data = node_controls(root)
    control_file = data.pop("control_file", None)
    for job in data.get("jobs", {}).values():
        if "total" in job:
            job["total"] = int(job["total"])
    controls.merge(data)
    if control_file and not controls.control_file:
        controls.control_file = control_file


def _resolve(element: etree._Element, base_dir: str) -> etree._Element:
    """An inline element, or the document its ``file=`` attribute names.

    Inline elements were checked with the whole node document; a document
    loaded from a file gets its own structural check here.
    """
    ref = element.get("file")
    if ref is None:
        return element
    path = ref if os.path.isabs(ref) else os.path.join(base_dir, ref)
    try:
        with open(path, "rb") as fh:
            loaded = parse_xml(fh.read(), what=f"'{path}'")
    except OSError as exc:
        raise NoConnect(f"cannot read '{path}' named by the node file: {exc.strerror}") from None
    if loaded.tag != element.tag:
        raise InvalidXML(f"XML error in '{path}': expected <{element.tag}>, found <{loaded.tag}>")
    if loaded.tag != "pool":  # a pool is checked once its volumes are detached
        schema.quick_check(loaded, loaded.tag)
    for child in element:  # e.g. <pool file=...><volume .../></pool>
        loaded.append(child)
    return loaded


def load_objects(driver: TestDriver, root: etree._Element, base_dir: str) -> None:
    """Register every object of the node file with ``driver``."""
    from hvmon.core.xml.domain import Domain as DomainXML
    from hvmon.core.xml.network import Network as NetworkXML
    from hvmon.core.xml.pool import Pool as PoolXML
    from hvmon.core.xml.secret import Secret as SecretXML

    schema.quick_check(root, "node")  # one pass over every inline object
    for element in root.findall("network"):
        net = NetworkXML(_detach(_resolve(element, base_dir)))
        driver.load_network(net)
    for element in root.findall("pool"):
        pool = PoolXML(_detach(_resolve(element, base_dir)))
        volumes = [_resolve(v, base_dir) for v in pool.element.findall("volume")]
        for vol in pool.element.findall("volume"):
            pool.element.remove(vol)
        schema.quick_check(pool.element, "pool")
        driver.load_pool(pool, [etree.tostring(v, encoding="unicode") for v in volumes])
    for element in root.findall("secret"):
        secret = SecretXML(_detach(_resolve(element, base_dir)))
        driver.load_secret(secret)
    for element in root.findall("domain"):
        dom = DomainXML(_detach(_resolve(element, base_dir)))
        state, transient = _libvirt_test_metadata(dom.element)
        driver.load_domain(dom, state, transient)


def _detach(element: etree._Element) -> etree._Element:
    parent = element.getparent()
    if parent is not None:
        parent.remove(element)
    element.tail = None
    return element


def _libvirt_test_metadata(element: etree._Element) -> tuple[DomainState, bool]:
    """libvirt's ``<test:runstate>`` and ``<test:transient/>`` metadata."""
    metadata = element.find("metadata")
    state, transient = DomainState.RUNNING, False
    if metadata is None:
        return state, transient
    runstate = metadata.find(f"{{{LIBVIRT_TEST_NS}}}runstate")
    if runstate is not None:
        try:
            state = DomainState(int((runstate.text or "").strip()))
        except ValueError:
            raise InvalidArgument(f"invalid test:runstate '{runstate.text}'") from None
    transient = metadata.find(f"{{{LIBVIRT_TEST_NS}}}transient") is not None
    return state, transient
