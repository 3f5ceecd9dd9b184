"""The committed API manifest and the append-only check.

hvmon's public API is append-only, like libvirt's: an entry point, once
released, is never removed and never changes its signature, permission or
kind. :func:`current_manifest` exports the registry (one entry per declared
method: name, signature, permission, kind, since); ``hvmon/core/api.json`` is
the committed copy; :func:`check` compares the two. The rules
(``docs/api-stability.md``):

1. every committed entry is still present (nothing removed);
2. its ``signature``, ``permission``, ``kind`` and ``since`` are unchanged;
3. a new entry carries a ``since`` version (``X.Y.Z``);
4. a new entry's ``since`` is not older than the newest ``since`` already
   committed (a method added now cannot claim to be from an older release).

Command line::

    python -m hvmon.core.manifest --check   # exit 1 and list the problems
    python -m hvmon.core.manifest --write   # add new entries to api.json
    python -m hvmon.core.manifest --write --force   # also drop/changed entries
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

Entry = dict[str, Any]

#: Fields whose change breaks callers; compared for every committed entry.
STABLE_FIELDS: tuple[str, ...] = ("signature", "permission", "kind", "since")

MANIFEST_NAME = "api.json"

_VERSION = re.compile(r"^\d+(\.\d+){0,2}$")


def current_manifest() -> list[Entry]:
    """The manifest of the API as the code declares it now, sorted by name."""
    from hvmon.core.api import api_registry

    return sorted((spec.manifest_entry() for spec in api_registry().values()),
                  key=lambda entry: entry["name"])


def load_committed() -> list[Entry]:
    """The manifest committed with the package (``hvmon/core/api.json``)."""
    text = resources.files("hvmon.core").joinpath(MANIFEST_NAME).read_text(encoding="utf-8")
    return _parse(text)


def default_path() -> Path:
    """Where ``--write`` puts the manifest: next to this module in the source tree."""
    return Path(__file__).with_name(MANIFEST_NAME)


def _parse(text: str) -> list[Entry]:
    data = json.loads(text)
    if not isinstance(data, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) for e in data
    ):
        raise ValueError("API manifest must be a JSON list of objects with a 'name'")
    return data


def version_key(version: str) -> tuple[int, ...]:
    """``"0.10.1"`` -> ``(0, 10, 1)``, padded to three parts for comparison."""
    parts = tuple(int(p) for p in version.split("."))
    return parts + (0,) * (3 - len(parts))


def check(committed: Sequence[Entry], current: Sequence[Entry]) -> list[str]:
    """Every way ``current`` breaks the append-only promise of ``committed``.

    An empty list means ``current`` is ``committed`` plus well-formed additions.
    """
    problems: list[str] = []
    now = {entry["name"]: entry for entry in current}
    before = {entry["name"]: entry for entry in committed}
    for name, old in sorted(before.items()):
        new = now.get(name)
        if new is None:
            problems.append(f"{name}: removed (the API is append-only)")
            continue
        for key in STABLE_FIELDS:
            if old.get(key) != new.get(key):
                problems.append(
                    f"{name}: {key} changed from {old.get(key)!r} to {new.get(key)!r}"
                )
    released = [e["since"] for e in committed if _VERSION.match(str(e.get("since", "")))]
    newest = max(released, key=version_key, default=None)
    for name, new in sorted(now.items()):
        if name in before:
            continue
        since = new.get("since")
        if not since:
            problems.append(f"{name}: new entry has no 'since' version")
        elif not _VERSION.match(str(since)):
            problems.append(f"{name}: new entry has a malformed 'since' {since!r}")
        elif newest is not None and version_key(since) < version_key(newest):
            problems.append(
                f"{name}: new entry claims since {since}, older than the newest "
                f"committed version {newest}"
            )
    return problems


def additions(committed: Sequence[Entry], current: Sequence[Entry]) -> list[str]:
    """Names present in ``current`` but not yet in ``committed``."""
    known = {entry["name"] for entry in committed}
    return sorted(entry["name"] for entry in current if entry["name"] not in known)


def dumps(entries: Sequence[Entry]) -> str:
    """The canonical text of a manifest: sorted by name, one key order, newline at end."""
    ordered = [
        {key: entry.get(key, "") for key in ("name", *STABLE_FIELDS)}
        for entry in sorted(entries, key=lambda e: e["name"])
    ]
    return json.dumps(ordered, indent=2) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``--check`` or ``--write`` the committed manifest; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m hvmon.core.manifest",
        description="Check or regenerate the append-only API manifest (api.json).",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="report problems, exit 1 if any")
    mode.add_argument("--write", action="store_true", help="add new entries to the manifest")
    parser.add_argument("--force", action="store_true",
                        help="with --write: also drop removed and rewrite changed entries")
    parser.add_argument("--file", type=Path, default=None,
                        help="manifest to use (default: hvmon/core/api.json)")
    args = parser.parse_args(argv)

    path: Path = args.file or default_path()
    committed = _parse(path.read_text(encoding="utf-8")) if path.exists() else []
    current = current_manifest()
    problems = check(committed, current)

    if args.check:
        new = additions(committed, current)
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if new:
            print(f"error: {len(new)} entries missing from {path.name}: {', '.join(new)}; "
                  "run 'python -m hvmon.core.manifest --write'", file=sys.stderr)
        if problems or new:
            return 1
        print(f"{path.name}: {len(current)} entries, append-only check passed")
        return 0

    if problems and not args.force:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print("error: refusing to write; fix the code or pass --force to break the API",
              file=sys.stderr)
        return 1
    text = dumps(current)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        print(f"{path}: up to date ({len(current)} entries)")
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"{path}: wrote {len(current)} entries "
          f"({len(additions(committed, current))} new)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
