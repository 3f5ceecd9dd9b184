"""docs/nagios.md documents every mode, option, state verdict and perfdata label."""

from __future__ import annotations

import re

import pytest

from hvmon.plugins.nagios.options import DEFAULT_STATES, MODES, build_parser

from .conftest import REPO_ROOT, Check

DOC = (REPO_ROOT / "docs" / "nagios.md").read_text()


def test_every_option_is_documented() -> None:
    for action in build_parser()._actions:
        for flag in action.option_strings:
            assert f"`{flag}" in DOC or f", `{flag}" in DOC, flag


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_has_a_section(mode: str) -> None:
    assert re.search(rf"^### `{mode}[ `]", DOC, re.M), mode


def test_every_state_is_documented() -> None:
    for state in DEFAULT_STATES:
        assert state in DOC, state


@pytest.mark.parametrize(("argv", "name", "placeholder"), [
    (["host"], None, None),
    (["domain", "test"], "test", "NAME"),
    (["pool", "--all"], "default-pool", "POOL"),
    (["network", "--all"], "default", "NETWORK"),
])
def test_every_perfdata_label_is_documented(check: Check, argv: list[str], name: str | None,
                                            placeholder: str | None) -> None:
    check("-U", "test:///default", *argv)
    for label in check("-U", "test:///default", *argv).perfdata:
        if name and label.startswith(name + "_"):
            label = placeholder + label[len(name):]
        assert f"`{label}`" in DOC, label


def test_daemon_and_domains_labels_are_documented() -> None:
    for label in ("snapshot_age", "uptime", "clients", "agents_failed", "NAME_running",
                  "autostart", "autostart_not_running", "time"):
        assert f"`{label}`" in DOC, label
