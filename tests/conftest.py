"""Suite-wide hooks: what every test directory shares."""

from __future__ import annotations

import contextlib
from pathlib import Path

# The runtime and shim tests (tests/integration/runtime_fixtures.py) put their
# containers under this cgroup parent in every hierarchy; each test removes its
# own container's cgroup, the parent goes once the whole run is over. On a busy
# machine a few container cgroups stay behind empty (the runtime's rmdir came
# while the last task was still leaving): those go here too; a busy one stays.
RUNTIME_TEST_CGROUP = "freight-test"


def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ARG001 (pytest's hook signature)
    root = Path("/sys/fs/cgroup")
    for parent in [root / RUNTIME_TEST_CGROUP, *root.glob(f"*/{RUNTIME_TEST_CGROUP}")]:
        for child in parent.glob("t*"):
            with contextlib.suppress(OSError):  # still has tasks: another run's
                child.rmdir()
        with contextlib.suppress(OSError):  # not empty (another run is using it) or absent
            parent.rmdir()
