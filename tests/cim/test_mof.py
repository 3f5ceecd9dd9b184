"""The shipped MOF: compiled by pywbem's MOF compiler, and equal to what the server serves."""

from __future__ import annotations

from pathlib import Path

import pytest
from pywbem_mock import FakedWBEMConnection

from hvmon.plugins.cim.mof import MofError, parse_mof
from hvmon.plugins.cim.schema import NAMESPACE_FILES, VIRT, load_schemas, mof_text

MOF_DIR = Path(__file__).resolve().parents[2] / "hvmon" / "plugins" / "cim" / "mof"


@pytest.fixture(scope="module")
def compiled() -> FakedWBEMConnection:
    conn = FakedWBEMConnection(default_namespace=VIRT)
    for name in NAMESPACE_FILES[VIRT]:
        conn.compile_mof_file(str(MOF_DIR / name), namespace=VIRT)
    return conn


def test_pywbem_compiles_every_class(compiled: FakedWBEMConnection) -> None:
    names = set(compiled.EnumerateClassNames(DeepInheritance=True))
    ours = {c.name for c in load_schemas()[VIRT].resolved.values()}
    assert names == ours and len(names) > 60


def test_served_classes_match_the_compiled_ones(compiled: FakedWBEMConnection) -> None:
    schema = load_schemas()[VIRT]
    for cls in schema.resolved.values():
        theirs = compiled.GetClass(cls.name, LocalOnly=False, IncludeQualifiers=True)
        assert (theirs.superclass or "") == cls.superclass, cls.name
        assert {p.lower() for p in theirs.properties} == set(cls.properties), cls.name
        for prop in cls.properties.values():
            other = theirs.properties[prop.name]
            assert other.type == prop.type and bool(other.is_array) == prop.is_array, \
                f"{cls.name}.{prop.name}"
            assert bool(other.qualifiers.get("Key") and other.qualifiers["Key"].value) == \
                prop.is_key, f"{cls.name}.{prop.name}"
        assert {m.lower() for m in theirs.methods} == set(cls.methods), cls.name
        for method in cls.methods.values():
            params = theirs.methods[method.name].parameters
            assert [p.lower() for p in params] == [p.name.lower() for p in method.params]
            assert theirs.methods[method.name].return_type == method.type


@pytest.mark.parametrize(("text", "where"), [
    ("class A { string x }", "line 1"),
    ("class A { strang x; };", "unknown type"),
    ('[Nope] class A { };', "not declared"),
    ("class A { string x; ", "end of input"),
    ("instance of A { x = ; };", "expected a value"),
    ("\x00", "unexpected character"),
])
def test_parser_errors_are_one_line(text: str, where: str) -> None:
    qualifiers = parse_mof(mof_text("qualifiers.mof")).qualifiers
    with pytest.raises(MofError) as excinfo:
        parse_mof(text, qualifiers)
    assert where in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_instance_declarations() -> None:
    doc = parse_mof('instance of X { A = "a" "b"; B = {1, 0x10}; C = true; D = null; '
                    "E = -2.5; };")
    (inst,) = doc.instances
    assert inst.values == {"A": "ab", "B": [1, 16], "C": True, "D": None, "E": -2.5}
