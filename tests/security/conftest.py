"""Security-suite fixtures: the integration suite's daemon fixtures, re-exported.

As tests/compat does, the integration conftest is loaded by path (pytest does
not share conftests between sibling directories), once per run whichever
suite loads it first. Every test here needs root and a real kernel.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_NAME = "freight_integration_conftest"
if _NAME in sys.modules:
    integration = sys.modules[_NAME]
else:
    _PATH = Path(__file__).parent.parent / "integration" / "conftest.py"
    _spec = importlib.util.spec_from_file_location(_NAME, _PATH)
    assert _spec is not None and _spec.loader is not None
    integration = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = integration
    _spec.loader.exec_module(integration)

Freightd = integration.Freightd
freightd = integration.freightd
run_id = integration.run_id
daemon_tools = integration.daemon_tools


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/security" in str(item.fspath):
            item.add_marker(pytest.mark.root)
