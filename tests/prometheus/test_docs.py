"""docs/prometheus.md documents every family, config key and contrib file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from hvmon.plugins.prometheus import compat, families
from hvmon.plugins.prometheus.collector import BUILDERS
from hvmon.plugins.prometheus.exposition import FamilySpec

from .conftest import REPO_ROOT, need_tool, run_tool

DOC = REPO_ROOT / "docs" / "prometheus.md"


def table_rows() -> dict[str, list[str]]:
    """First-column name (backticks stripped) -> the cells of its table row."""
    rows = {}
    for line in DOC.read_text().splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0].strip("`")] = cells
    return rows


def spec_ids(spec: FamilySpec) -> str:
    return spec.exposed_name


@pytest.mark.parametrize("spec", families.all_specs() + compat.all_specs(), ids=spec_ids)
def test_every_family_has_a_row(spec: FamilySpec) -> None:
    row = table_rows().get(spec.exposed_name)
    assert row is not None, f"{spec.exposed_name} is not documented in {DOC.name}"
    assert row[1] == spec.type
    documented = re.findall(r"`([a-z_]+)`", row[2])
    assert documented == list(spec.labels), spec.exposed_name
    if spec.name.startswith("hvmon_"):
        assert row[4] == spec.help  # meaning: the same words as # HELP
        for suffix, unit in (("_bytes", "bytes"), ("_seconds", "seconds"),
                             ("_hertz", "hertz")):
            if spec.name.endswith(suffix):
                assert row[3] == unit, spec.exposed_name
    else:
        assert row[3], f"{spec.exposed_name}: no hvmon equivalent column"


def test_compat_mapping_names_real_families() -> None:
    hvmon_names = {spec.exposed_name for spec in families.all_specs()}
    for spec in compat.all_specs():
        mapped = re.findall(r"hvmon_[a-z_]+", table_rows()[spec.exposed_name][3])
        assert set(mapped) <= hvmon_names, spec.exposed_name


def test_config_keys_and_groups_are_documented() -> None:
    text = DOC.read_text()
    for key in ("listen", "compat", "collectors", "web_config_file", "snapshot_max_age"):
        assert f"| `{key}` |" in text, key
    for group in BUILDERS:
        assert f"### `{group}`" in text, group
    for mode in ("hvmon", "libvirt", "both"):
        assert f"`{mode}`" in text


def test_contrib_and_scrape_config_are_referenced() -> None:
    text = DOC.read_text()
    for path in ("contrib/grafana/hvmon.json", "contrib/prometheus/alerts.yml",
                 "contrib/prometheus/tests/"):
        assert path in text
        assert (REPO_ROOT / path).exists(), path
    assert "scrape_configs:" in text and "job_name: hvmon" in text
    assert "collect[]" in text and "/healthz" in text


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)


def test_example_scrape_config_is_valid(tmp_path: Path) -> None:
    promtool = need_tool("promtool")
    config = next(block for block in code_blocks("yaml") if "scrape_configs:" in block)
    path = tmp_path / "prometheus.yml"
    path.write_text(config)
    result = run_tool([promtool, "check", "config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_agent_config_parses() -> None:
    (block,) = code_blocks("toml")
    table = tomllib.loads(block)["agents"]["prometheus"]
    assert set(table) == {"enabled", "listen", "compat", "collectors", "web_config_file",
                          "snapshot_max_age"}
    assert set(table["collectors"]) == set(BUILDERS)
