"""docs/cim.md documents every option, every class hvmon adds and every status it answers."""

from __future__ import annotations

import re

from hvmon.plugins.cim.config import OPTIONS
from hvmon.plugins.cim.schema import VIRT, load_schemas

from .conftest import REPO_ROOT

DOC = (REPO_ROOT / "docs" / "cim.md").read_text()


def test_every_option_has_a_row() -> None:
    rows = set(re.findall(r"^\| `(\w+)` \|", DOC, re.M))
    assert set(OPTIONS) | {"listen"} <= rows


def test_every_hvmon_class_is_documented() -> None:
    for cls in load_schemas()[VIRT].resolved.values():
        if cls.name.startswith("KVM_") and not cls.name.endswith("Indication"):
            assert f"`P_{cls.name[4:]}`" in DOC or f"`P_{cls.name[4:]}` " in DOC, cls.name


def test_every_status_code_used_is_documented() -> None:
    used = set()
    for path in (REPO_ROOT / "hvmon" / "plugins" / "cim").glob("*.py"):
        used |= set(re.findall(r"Status\.([A-Z_]+)", path.read_text()))
    for name in used:
        assert f"CIM_ERR_{name}" in DOC, name
