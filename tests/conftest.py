"""Fixtures shared by every test: an embedded connection, the compat corpus and a loop
thread (``loop_thread``, from :mod:`loopthread`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from loopthread import loop_thread  # noqa: F401 - the fixture, for every suite

import hvmon

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def conn() -> Iterator[hvmon.Connection]:
    """A fresh read-write connection to ``test:///default``, closed afterwards."""
    connection = hvmon.open("test:///default")
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def compat_dir() -> Path:
    """``<repo>/../shared/compat``: real libvirt documents to stay compatible with."""
    path = (REPO_ROOT.parent / "shared" / "compat").resolve()
    if not path.is_dir():
        pytest.fail(f"compat corpus not found at {path} (expected shared/ beside the repo)")
    return path
