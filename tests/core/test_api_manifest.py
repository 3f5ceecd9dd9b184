"""The committed API manifest (hvmon/core/api.json) is append-only."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from hvmon.core import manifest
from hvmon.core.manifest import Entry, check, current_manifest, load_committed


@pytest.fixture
def committed() -> list[Entry]:
    return load_committed()


@pytest.fixture
def current() -> list[Entry]:
    return current_manifest()


def test_committed_manifest_is_not_broken_by_the_code(committed: list[Entry],
                                                      current: list[Entry]) -> None:
    problems = check(committed, current)
    assert not problems, "API broken (docs/api-stability.md):\n" + "\n".join(problems)


def test_committed_manifest_lists_every_current_entry(committed: list[Entry],
                                                     current: list[Entry]) -> None:
    missing = manifest.additions(committed, current)
    assert missing == [], (
        f"API entries not in api.json: {missing}; run 'python -m hvmon.core.manifest --write'"
    )


def test_committed_manifest_is_canonical(committed: list[Entry]) -> None:
    assert manifest.dumps(committed) == (
        Path(manifest.__file__).with_name("api.json").read_text(encoding="utf-8")
    )


def test_current_manifest_is_sorted_and_complete(current: list[Entry]) -> None:
    names = [entry["name"] for entry in current]
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for entry in current:
        assert set(entry) == {"name", "signature", "permission", "kind", "since"}
        assert entry["signature"].startswith("(self")


# --- the checker can fail ---------------------------------------------------

def _named(entries: list[Entry], name: str) -> Entry:
    return next(entry for entry in entries if entry["name"] == name)


def test_removed_entry_is_reported(current: list[Entry]) -> None:
    victim = current[0]["name"]
    problems = check(current, [e for e in current if e["name"] != victim])
    assert problems == [f"{victim}: removed (the API is append-only)"]


@pytest.mark.parametrize("field", ["signature", "permission", "kind", "since"])
def test_changed_field_is_reported(current: list[Entry], field: str) -> None:
    changed = copy.deepcopy(current)
    entry = _named(changed, "Domain.xml_desc")
    entry[field] = "9.9.9" if field == "since" else entry[field] + "-changed"
    problems = check(current, changed)
    assert len(problems) == 1
    assert problems[0].startswith(f"Domain.xml_desc: {field} changed from ")


def test_new_entry_without_since_is_reported(current: list[Entry]) -> None:
    added = [*current, {"name": "Domain.frobnicate", "signature": "(self) -> None",
                        "permission": "domain:write", "kind": "mutating", "since": ""}]
    assert check(current, added) == ["Domain.frobnicate: new entry has no 'since' version"]
    added[-1].pop("since")
    assert check(current, added) == ["Domain.frobnicate: new entry has no 'since' version"]


def test_new_entry_older_than_the_newest_release_is_reported(current: list[Entry]) -> None:
    committed = copy.deepcopy(current)
    committed[0]["since"] = "0.3.0"
    grown = [*copy.deepcopy(committed),
             {"name": "Zzz.new", "signature": "(self) -> None", "permission": "connect:read",
              "kind": "read", "since": "0.2.9"}]
    assert check(committed, grown) == [
        "Zzz.new: new entry claims since 0.2.9, older than the newest committed version 0.3.0"
    ]
    grown[-1]["since"] = "0.3.0"
    assert check(committed, grown) == []
    grown[-1]["since"] = "latest"
    assert check(committed, grown) == ["Zzz.new: new entry has a malformed 'since' 'latest'"]


def test_additions_with_since_are_allowed(current: list[Entry]) -> None:
    grown = [*current, {"name": "Domain.frobnicate", "signature": "(self) -> None",
                        "permission": "domain:write", "kind": "mutating", "since": "0.2.0"}]
    assert check(current, grown) == []
    assert manifest.additions(current, grown) == ["Domain.frobnicate"]


def test_all_problems_are_reported_at_once(current: list[Entry]) -> None:
    manipulated = [e for e in copy.deepcopy(current) if e["name"] != "Connection.close"]
    _named(manipulated, "Domain.start")["signature"] = "(self, force: bool) -> None"
    manipulated.append({"name": "Domain.frobnicate", "signature": "(self) -> None",
                        "permission": "domain:write", "kind": "mutating"})
    problems = check(current, manipulated)
    assert len(problems) == 3
    assert "Connection.close: removed (the API is append-only)" in problems
    assert any(p.startswith("Domain.start: signature changed") for p in problems)
    assert "Domain.frobnicate: new entry has no 'since' version" in problems


# --- the command line -------------------------------------------------------

def test_cli_check_passes_on_current(tmp_path: Path, current: list[Entry],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "api.json"
    path.write_text(manifest.dumps(current), encoding="utf-8")
    assert manifest.main(["--check", "--file", str(path)]) == 0


def test_cli_check_fails_on_manipulated_manifest(tmp_path: Path, current: list[Entry],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "api.json"
    stale = copy.deepcopy(current)
    _named(stale, "Domain.start")["permission"] = "domain:read"
    stale.append({"name": "Domain.gone", "signature": "(self) -> None",
                  "permission": "domain:write", "kind": "mutating", "since": "0.1.0"})
    path.write_text(json.dumps(stale), encoding="utf-8")
    assert manifest.main(["--check", "--file", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Domain.gone: removed" in err
    assert "Domain.start: permission changed" in err


def test_cli_write_adds_but_refuses_to_drop(tmp_path: Path, current: list[Entry],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "api.json"
    path.write_text(manifest.dumps(current[1:]), encoding="utf-8")
    assert manifest.main(["--write", "--file", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == manifest.dumps(current)

    gone = {"name": "Domain.gone", "signature": "(self) -> None",
            "permission": "domain:write", "kind": "mutating", "since": "0.1.0"}
    path.write_text(manifest.dumps([*current, gone]), encoding="utf-8")
    assert manifest.main(["--write", "--file", str(path)]) == 1
    assert "Domain.gone" in path.read_text(encoding="utf-8")
    assert manifest.main(["--write", "--force", "--file", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == manifest.dumps(current)
