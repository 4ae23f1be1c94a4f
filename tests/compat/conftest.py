"""Compat fixtures: the same session daemon fixture as tests/integration.

The integration conftest is loaded by path under its own module name (pytest
does not share conftests between sibling directories) and its fixtures are
re-exported here, so a compat run gets a real freightd on its own temp root
with busybox bootstrapped, cleaned up at the end.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).parent.parent / "integration" / "conftest.py"
_spec = importlib.util.spec_from_file_location("freight_integration_conftest", _PATH)
assert _spec is not None and _spec.loader is not None
integration = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = integration
_spec.loader.exec_module(integration)

Freightd = integration.Freightd
freightd = integration.freightd
run_id = integration.run_id
daemon_tools = integration.daemon_tools
