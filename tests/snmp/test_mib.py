"""HVMON-MIB and the LIBVIRT-MIB view against the real libsmi tools (smilint, smidump).

The MIB text and ``oids.py`` must agree on every OID; every cell the view
serves must have its object's SMI type; the MIB must pass ``smilint -l 3``
(in fact level 6) with no error or warning. Imports resolve from
``../shared/compat/mibs`` through ``SMIPATH``, never from a copy. smilint and
smidump come from Debian's ``smitools``: a missing tool skips locally and
fails when ``CI=true``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from toolcheck import need_tool

import hvmon
from hvmon.core.xml.parser import parse_xml
from hvmon.plugins.snmp import libvirt_mib, oids, tablebuild
from hvmon.plugins.snmp.mibview import HvmonView
from hvmon.plugins.snmp.types import Tag, format_oid, parse_oid

SMITOOLS = "Debian package smitools"

MIB_DIR = oids.MIB_DIR
HVMON_MIB = MIB_DIR / "HVMON-MIB.txt"

#: SMI type (as smidump names it) -> the BER tag of its values
TYPE_TAGS = {
    "OctetString": Tag.OCTET_STRING, "SnmpAdminString": Tag.OCTET_STRING,
    "MacAddress": Tag.OCTET_STRING, "DisplayString": Tag.OCTET_STRING,
    "Enumeration": Tag.INTEGER, "Integer32": Tag.INTEGER, "TruthValue": Tag.INTEGER,
    "RowStatus": Tag.INTEGER,
    "Unsigned32": Tag.GAUGE32, "Gauge32": Tag.GAUGE32,
    "Counter32": Tag.COUNTER32, "Counter64": Tag.COUNTER64, "TimeTicks": Tag.TIMETICKS,
}


@pytest.fixture
def smi_env(compat_dir: Path) -> dict[str, str]:
    """The environment with SMIPATH = the shared IETF MIBs + the package's MIB dir."""
    return {**os.environ, "SMIPATH": f"{compat_dir / 'mibs'}:{MIB_DIR}"}


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60,
                          check=False)


@dataclass(frozen=True)
class SmiObject:
    name: str
    oid: tuple[int, ...]
    kind: str  # scalar, column, ...
    access: str  # readonly, readwrite, noaccess, notifyonly
    tag: Tag | None


def smidump_xml(module: str, env: dict[str, str]) -> Any:
    """``smidump -f xml`` of ``module``, parsed (its DOCTYPE line dropped: the safe
    parser refuses DTDs, and nothing here needs it)."""
    result = run([need_tool("smidump", SMITOOLS), "-f", "xml", module], env)
    assert result.returncode == 0, result.stderr
    text = "\n".join(line for line in result.stdout.splitlines()
                     if not line.startswith("<!DOCTYPE"))
    return parse_xml(text, "smidump output")


def smi_objects(module: str, env: dict[str, str]) -> dict[str, SmiObject]:
    """Scalars and columns of ``module`` with access and value tag, from ``smidump -f xml``."""
    root = smidump_xml(module, env)
    typedefs: dict[str, str] = {}
    for typedef in root.iter("{*}typedef"):
        name = typedef.get("name")
        if name:
            parent = typedef.find("{*}parent")
            typedefs[name] = parent.get("name") if parent is not None else typedef.get("basetype")
    found: dict[str, SmiObject] = {}
    for kind in ("scalar", "column"):
        for node in root.iter(f"{{*}}{kind}"):
            access = node.findtext("{*}access", "").strip()
            syntax = node.find("{*}syntax")
            assert syntax is not None
            ref = syntax.find("{*}type")
            if ref is not None:
                type_name = ref.get("name", "")
            else:
                typedef = syntax.find("{*}typedef")
                assert typedef is not None
                parent = typedef.find("{*}parent")
                type_name = parent.get("name") if parent is not None else typedef.get("basetype")
            type_name = typedefs.get(type_name, type_name)
            name = node.get("name", "")
            found[name] = SmiObject(name, parse_oid(node.get("oid", "")), kind, access,
                                    TYPE_TAGS.get(type_name))
    return found


def identifiers(module: str, env: dict[str, str]) -> dict[str, tuple[int, ...]]:
    """descriptor -> OID of every definition of ``module`` that has an OID."""
    result = run([need_tool("smidump", SMITOOLS), "-f", "identifiers", module], env)
    assert result.returncode == 0, result.stderr
    names = {}
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[0] == module:
            names[fields[1]] = parse_oid(fields[3])
    return names


@pytest.fixture
def view_table() -> Iterator[tuple[hvmon.Connection, HvmonView]]:
    with hvmon.open("test:///default") as conn:
        yield conn, HvmonView(conn.get_snapshot, libvirt_compat=True)


# --- smilint ------------------------------------------------------------------

@pytest.mark.parametrize("level", [3, 6])
def test_smilint_reports_nothing(smi_env: dict[str, str], level: int) -> None:
    """No error at level 3 (the issue's bar) and no warning up to level 6."""
    smilint = need_tool("smilint", SMITOOLS)
    result = run([smilint, "-l", str(level), "-s", "-m", str(HVMON_MIB)], smi_env)
    assert result.returncode == 0, result.stderr
    report = (result.stdout + result.stderr).strip()
    assert report == "", f"smilint -l {level}:\n{report}"


def test_smilint_preloading_each_import(compat_dir: Path) -> None:
    """``smilint -p`` with each shared MIB file preloaded, no SMIPATH: nothing about HVMON-MIB.

    Preloaded by path, libsmi parses SNMPv2-SMI as an ordinary module and
    complains about that file itself (its ASN.1 macros); those lines are not
    ours, so only diagnostics naming HVMON-MIB count here.
    """
    smilint = need_tool("smilint", SMITOOLS)
    mibs = compat_dir / "mibs"
    argv = [smilint, "-l", "3", "-s"]
    for name in ("SNMPv2-SMI", "SNMPv2-TC", "SNMPv2-CONF", "SNMP-FRAMEWORK-MIB"):
        argv += ["-p", str(mibs / f"{name}.txt")]
    env = {k: v for k, v in os.environ.items() if k != "SMIPATH"}
    result = run([*argv, str(HVMON_MIB)], env)
    assert result.returncode == 0, result.stderr
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "HVMON" in line]
    assert ours == []


# --- the MIB text and oids.py -------------------------------------------------

def test_every_oid_agrees_with_the_mib_text(smi_env: dict[str, str]) -> None:
    from_mib = identifiers("HVMON-MIB", smi_env)
    assert from_mib == oids.NAMES, {
        name: (format_oid(from_mib[name]) if name in from_mib else None,
               format_oid(oids.NAMES[name]) if name in oids.NAMES else None)
        for name in set(from_mib) ^ set(oids.NAMES) | {
            n for n in set(from_mib) & set(oids.NAMES) if from_mib[n] != oids.NAMES[n]}
    }


def test_the_pen_is_one_constant() -> None:
    assert oids.PEN == 32473
    assert all(oid[:7] == (*oids.ENTERPRISES, oids.PEN) for oid in oids.NAMES.values())
    text = HVMON_MIB.read_text()
    assert text.count(f"enterprises {oids.PEN}") == 1
    assert text.count("enterprises") == 2  # the import and the module identity


def test_libvirt_oids_agree_with_libvirt_mib(smi_env: dict[str, str]) -> None:
    from_mib = identifiers("LIBVIRT-MIB", smi_env)
    for name, oid in oids.LIBVIRT_NAMES.items():
        assert from_mib[name] == oid, name


# --- the view serves what the MIBs define --------------------------------------

def test_view_objects_are_the_readable_objects(smi_env: dict[str, str]) -> None:
    for module, objects in (("HVMON-MIB", tablebuild.HVMON_OBJECTS),
                            ("LIBVIRT-MIB", tablebuild.LIBVIRT_OBJECTS)):
        readable = {o.oid for o in smi_objects(module, smi_env).values()
                    if o.access in ("readonly", "readwrite")}
        assert readable == set(objects), module


def test_every_cell_has_its_objects_type(smi_env: dict[str, str],
                                         view_table: tuple[hvmon.Connection, HvmonView]) -> None:
    by_oid = {o.oid: o for module in ("HVMON-MIB", "LIBVIRT-MIB")
              for o in smi_objects(module, smi_env).values()}
    table = view_table[1].table()
    seen = set()
    for oid, value in zip(table.oids, table.values, strict=True):
        obj = next((by_oid[oid[:n]] for n in range(len(oid) - 1, 6, -1) if oid[:n] in by_oid),
                   None)
        assert obj is not None, f"{format_oid(oid)} is no object of the MIBs"
        assert obj.tag is not None, obj
        assert value.tag == obj.tag, f"{obj.name}: served {value.tag.name}, MIB {obj.tag.name}"
        if obj.kind == "scalar":
            assert oid == (*obj.oid, 0), obj.name
        seen.add(obj.name)
    # test:///default has a disk, a NIC, a pool and a network: most columns are there
    assert {"hvmonGuestCpuTime", "hvmonGuestDiskReadBytes", "hvmonGuestIfTxDrops",
            "hvmonPoolCapacity", "hvmonNetworkDhcpLeases", "libvirtGuestCpuTime",
            "libvirtGuestRowStatus"} <= seen


def test_libvirt_columns_and_types_match_libvirt_mib(smi_env: dict[str, str]) -> None:
    """Columns 2-7 and 9 with LIBVIRT-MIB's types; column 1 is notify-only."""
    objects = smi_objects("LIBVIRT-MIB", smi_env)
    served = {oid: tag for oid, tag in libvirt_mib.COLUMNS}
    for obj in objects.values():
        if obj.access == "notifyonly":
            assert obj.oid not in served and obj.name == "libvirtGuestUUID"
        else:
            assert served[obj.oid] == obj.tag, obj.name
    assert sorted(oid[-1] for oid in served) == [2, 3, 4, 5, 6, 7, 9]
    writable = {o.oid for o in objects.values() if o.access == "readwrite"}
    assert writable == {oids.LIBVIRT_GUEST_STATE, oids.LIBVIRT_GUEST_ROW_STATUS}


def test_libvirt_index_is_the_fixed_size_uuid(smi_env: dict[str, str]) -> None:
    """INDEX { libvirtGuestUUID }, UUID ::= OCTET STRING (SIZE (16)): 16 sub-ids, no length."""
    root = smidump_xml("LIBVIRT-MIB", smi_env)
    index = [i.get("name") for i in root.iter("{*}index")]
    assert index == ["libvirtGuestUUID"]
    assert all(i.get("implied") is None for i in root.iter("{*}index"))
    ranges = [(r.get("min"), r.get("max")) for t in root.iter("{*}typedef")
              if t.get("name") == "UUID" for r in t.iter("{*}range")]
    assert ranges == [("16", "16")]
    with hvmon.open("test:///default") as conn:
        table = HvmonView(conn.get_snapshot, libvirt_compat=True).table()
    start, stop = table.within(oids.LIBVIRT_GUEST_NAME)
    assert stop - start == 1
    assert table.oids[start] == (*oids.LIBVIRT_GUEST_NAME,
                                 *bytes.fromhex("6695eb01f6a4830479aa97f2502e193f"))


def test_mib_units_are_documented() -> None:
    """Memory says KiB, storage says bytes, CPU time says nanoseconds (UNITS clauses)."""
    text = HVMON_MIB.read_text()

    def units(name: str) -> str:
        block = text.split(f"\n{name} OBJECT-TYPE", 1)[1].split("::=", 1)[0]
        return block.split('UNITS', 1)[1].split('"')[1] if "UNITS" in block else ""

    for name in ("hvmonHostMemoryTotal", "hvmonHostMemoryFree", "hvmonGuestMemoryCurrent",
                 "hvmonGuestMemoryLimit"):
        assert units(name) == "KiB", name
    for name in ("hvmonGuestDiskCapacity", "hvmonPoolCapacity", "hvmonVolumeAllocation",
                 "hvmonGuestIfRxBytes"):
        assert units(name) == "bytes", name
    assert units("hvmonGuestCpuTime") == "nanoseconds"


def test_docs_list_every_object() -> None:
    """docs/snmp.md's MIB section names every object, group and notification of HVMON-MIB."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "snmp.md").read_text()
    section = docs.split("## MIB", 1)[1].split("\n## ", 1)[0]
    leaves = [name for name, oid in oids.NAMES.items()
              if not any(other[:len(oid)] == oid and other != oid
                         for other in oids.NAMES.values())]
    assert [name for name in leaves if name not in section] == []


def test_net_snmp_reads_the_mib_with_the_same_oids(compat_dir: Path) -> None:
    """net-snmp's own MIB parser (snmptranslate, package ``snmp``) agrees with oids.py."""
    snmptranslate = need_tool("snmptranslate", "Debian package snmp")
    env = {k: v for k, v in os.environ.items() if k not in ("MIBS", "MIBDIRS")}
    result = run([snmptranslate, "-M", f"{compat_dir / 'mibs'}:{MIB_DIR}", "-m", "HVMON-MIB",
                  "-Tz"], env)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    found = {}
    for line in result.stdout.splitlines():
        name, _, oid = line.replace('"', "").partition("\t")
        if name.startswith("hvmon"):
            found[name] = parse_oid(oid.strip())
    # net-snmp lists OID nodes, not compliance statements and groups' children alike
    assert {n: o for n, o in oids.NAMES.items() if n in found} == found
    assert set(oids.NAMES) - set(found) <= {n for n in oids.NAMES if "Group" in n
                                            or n == "hvmonCompliance"}
