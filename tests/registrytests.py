"""tests/core/test_readonly_registry.py as a module other suites reuse (its call
recipes and host fingerprint): tests/core is not a package, so it is loaded by path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_NAME = "hvmon_tests_core_readonly_registry"


def readonly_registry() -> ModuleType:
    """The module, loaded once per test session."""
    if _NAME not in sys.modules:
        path = Path(__file__).resolve().parent / "core" / "test_readonly_registry.py"
        spec = importlib.util.spec_from_file_location(_NAME, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[_NAME]
