"""The cgroup freezer: stop every process of a cgroup in place, and let them go on.

One place for pause/unpause and for commit's freeze. Both cgroup versions::

    v1 (freezer hierarchy)                      v2 (unified)
    <root>/freezer/<path>/freezer.state         <root>/<path>/cgroup.freeze   "1" / "0"
        write FROZEN / THAWED                   <root>/<path>/cgroup.events   "frozen 1" once done
        reads FREEZING until every task stops

`root` is normally /sys/fs/cgroup (a temp dir in tests); `path` is the
container's cgroupsPath ("/<cgroup-parent>/<id>"). A unified host is one
whose root has cgroup.controllers.

Freezing is not instant: a task in an uninterruptible sleep holds v1 in
FREEZING (re-writing FROZEN nudges the kernel to retry, as runc does), and
v2 reports completion through cgroup.events. `freeze` waits for the end
state and, if it does not come, thaws again rather than leave a cgroup
half frozen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from freight.errors import Unavailable

DEFAULT_ROOT = Path("/sys/fs/cgroup")
FROZEN, FREEZING, THAWED = "FROZEN", "FREEZING", "THAWED"
FREEZE_TIMEOUT_S = 10.0
_POLL_S = 0.002
_REWRITE_EVERY_S = 0.1  # v1: write FROZEN again while the kernel says FREEZING


@dataclass(frozen=True)
class Freezer:
    """The freezer control of one cgroup (`freezer.state` on v1, `cgroup.freeze` on v2)."""

    control: Path

    @classmethod
    def of(cls, cgroup_path: str, root: Path = DEFAULT_ROOT) -> Freezer | None:
        """The freezer of the cgroup at `cgroup_path`; None when the host has none for it."""
        rel = cgroup_path.strip("/")
        if (root / "cgroup.controllers").exists():
            control = root / rel / "cgroup.freeze"
        else:
            control = root / "freezer" / rel / "freezer.state"
        return cls(control) if control.exists() else None

    @classmethod
    def of_process(cls, pid: int, root: Path = DEFAULT_ROOT) -> Freezer | None:
        """The freezer of the cgroup process `pid` is in, from /proc/<pid>/cgroup."""
        path = cgroup_of_process(pid, v2=(root / "cgroup.controllers").exists())
        return cls.of(path, root) if path is not None else None

    @property
    def v2(self) -> bool:
        return self.control.name == "cgroup.freeze"

    def state(self) -> str:
        """FROZEN, FREEZING or THAWED (v2's "asked to freeze, not done yet" is FREEZING)."""
        raw = self.control.read_text().strip()
        if not self.v2:
            return raw
        if raw == "0":
            return THAWED
        return FROZEN if _events_frozen(self.control.parent / "cgroup.events") else FREEZING

    def frozen(self) -> bool:
        """Asked to freeze (FROZEN or on the way there)."""
        return self.state() in (FROZEN, FREEZING)

    def freeze(self, timeout: float = FREEZE_TIMEOUT_S) -> None:
        """Freeze and wait until every task has stopped; thaw and raise Unavailable on timeout."""
        self._request_freeze()
        deadline = time.monotonic() + timeout
        rewrite = time.monotonic() + _REWRITE_EVERY_S
        while True:
            if self.state() == FROZEN:
                return
            now = time.monotonic()
            if now >= deadline:
                self.thaw()
                raise Unavailable("the container's processes could not all be frozen in time")
            if not self.v2 and now >= rewrite:
                self._request_freeze()
                rewrite = now + _REWRITE_EVERY_S
            time.sleep(_POLL_S)

    def thaw(self) -> None:
        _write(self.control, "0" if self.v2 else THAWED)

    def _request_freeze(self) -> None:
        _write(self.control, "1" if self.v2 else FROZEN)


def cgroup_of_process(pid: int, v2: bool, proc: Path = Path("/proc")) -> str | None:
    """The cgroup path of `pid` in the freezer hierarchy (v1) or the unified one (v2)."""
    try:
        lines = (proc / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if v2 and not controllers and line.startswith("0:"):
            return path
        if not v2 and "freezer" in controllers.split(","):
            return path
    return None


def _events_frozen(events: Path) -> bool:
    try:
        lines = events.read_text().splitlines()
    except FileNotFoundError:
        return False
    return any(line.split() == ["frozen", "1"] for line in lines)


def _write(path: Path, value: str) -> None:
    # One write(2) per value: cgroup files act on each write, not on close.
    with open(path, "w") as f:
        f.write(value)
