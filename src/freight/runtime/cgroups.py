"""Control groups for one container, on cgroup v1 or v2, behind one interface.

Layouts (root is normally /sys/fs/cgroup; tests pass a temp dir)::

    v1 (one hierarchy per controller)          v2 (one unified tree)
    root/                                      root/
      memory/<cgroupsPath>/memory.limit_in_bytes   cgroup.controllers
      cpu,cpuacct/<cgroupsPath>/cpu.cfs_quota_us   <parents>/cgroup.subtree_control
      cpu -> cpu,cpuacct   (symlink)               <cgroupsPath>/memory.max, cpu.max, pids.max
      pids/<cgroupsPath>/pids.max
      unified/   (hybrid hosts: ignored)

Device rules are the v1 devices controller's files, and on v2 an eBPF
program attached to the container's directory (`freight.linux.devicebpf`).
The OCI `resources` are written before the container's first process joins,
so limits hold from its first instruction; which file takes which value is
`linux.cgrouplimits` (the daemon's live `update` writes through it too). The
container gets its own cgroup directory mounted read-only at /sys/fs/cgroup
(see rootfs), described by `mount_binds()`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from pathlib import Path
from typing import Protocol

from freight.errors import InvalidArgument
from freight.linux import cgrouplimits, devicebpf
from freight.oci.runtime_spec import DeviceRule, Resources

DEFAULT_ROOT = Path("/sys/fs/cgroup")
_V2_CONTROLLERS = ("cpu", "cpuset", "memory", "pids")


class Cgroup(Protocol):
    def create(self) -> None: ...
    def set(self, resources: Resources | None) -> None: ...
    def join(self, pid: int) -> None: ...
    def procs(self) -> list[int]: ...
    def oom_killed(self) -> bool: ...
    def destroy(self) -> None: ...
    def mount_binds(self) -> list[tuple[str, str]]: ...
    def mount_links(self) -> list[tuple[str, str]]: ...


def open_cgroup(path: str, root: Path = DEFAULT_ROOT) -> Cgroup:
    """The cgroup at `path` (absolute, like OCI cgroupsPath) under `root`, v2 when unified."""
    if (root / "cgroup.controllers").exists():
        return V2Cgroup(root, path)
    return V1Cgroup(root, path)


def _write(path: Path, value: str | int) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def _read_procs(path: Path) -> list[int]:
    try:
        return [int(line) for line in path.read_text().split()]
    except FileNotFoundError:
        return []


def _oom_kill_count(path: Path) -> int:
    """The `oom_kill N` line of memory.events (v2) or memory.oom_control (v1; kernel >= 4.13)."""
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (FileNotFoundError, ValueError):
        pass
    return 0


def _rmdir_retry(path: Path) -> None:
    """rmdir, retrying EBUSY: the kernel frees a cgroup a moment after its last task exits."""
    for _ in range(100):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise
            time.sleep(0.01)
    path.rmdir()


def _device_line(rule: DeviceRule) -> str:
    kind = rule.type or "a"
    if kind == "a":
        return "a"
    major = "*" if rule.major is None or rule.major < 0 else str(rule.major)
    minor = "*" if rule.minor is None or rule.minor < 0 else str(rule.minor)
    return f"{kind} {major}:{minor} {rule.access or 'rwm'}"


def _bpf_rule(rule: DeviceRule) -> devicebpf.Rule:
    try:
        return devicebpf.rule_of(rule.allow, rule.type, rule.major, rule.minor, rule.access)
    except ValueError as e:
        raise InvalidArgument(f"linux.resources.devices: {e}") from None


class V1Cgroup:
    """One directory per hierarchy; `cpu` and `cpuacct` usually share one through a symlink."""

    def __init__(self, root: Path, path: str) -> None:
        self.root = root
        self.rel = path.strip("/")
        self.hierarchies = self._hierarchies()

    def _hierarchies(self) -> list[str]:
        if not self.root.is_dir():
            return []
        names = []
        for entry in sorted(os.listdir(self.root)):
            full = self.root / entry
            # "unified" is the cgroup2 tree of a hybrid host; symlinks alias real ones.
            if entry != "unified" and full.is_dir() and not full.is_symlink():
                names.append(entry)
        return names

    def dir(self, hierarchy: str) -> Path:
        return self.root / hierarchy / self.rel

    def create(self) -> None:
        for name in self.hierarchies:
            self.dir(name).mkdir(parents=True, exist_ok=True)
            if "cpuset" in name.split(","):
                self._inherit_cpuset(name)

    def _inherit_cpuset(self, name: str) -> None:
        # A new v1 cpuset starts with empty cpus/mems and refuses tasks (ENOSPC):
        # copy the parent's values down every level we may have created.
        path = self.root / name
        for part in Path(self.rel).parts:
            parent, path = path, path / part
            for key in ("cpuset.cpus", "cpuset.mems"):
                mine, theirs = path / key, parent / key
                if mine.exists() and not mine.read_text().strip() and theirs.exists():
                    _write(mine, theirs.read_text().strip())

    def _controller(self, controller: str) -> Path | None:
        for name in self.hierarchies:
            if controller in name.split(","):
                return self.dir(name)
        return None

    def set(self, resources: Resources | None) -> None:
        if resources is None:
            return
        cgrouplimits.apply(cgrouplimits.plan(resources, False, self._controller), self._controller)
        if resources.devices and (d := self._controller("devices")):
            for rule in resources.devices:
                _write(d / ("devices.allow" if rule.allow else "devices.deny"), _device_line(rule))

    def join(self, pid: int) -> None:
        for name in self.hierarchies:
            _write(self.dir(name) / "cgroup.procs", pid)

    def procs(self) -> list[int]:
        d = self._controller("pids") or self._controller("memory")
        return _read_procs(d / "cgroup.procs") if d else []

    def oom_killed(self) -> bool:
        d = self._controller("memory")
        return bool(d and _oom_kill_count(d / "memory.oom_control") > 0)

    def destroy(self) -> None:
        for name in self.hierarchies:
            _rmdir_retry(self.dir(name))

    def mount_binds(self) -> list[tuple[str, str]]:
        return [(str(self.dir(n)), n) for n in self.hierarchies if self.dir(n).is_dir()]

    def mount_links(self) -> list[tuple[str, str]]:
        """(target, link name) for aliases such as cpu -> cpu,cpuacct."""
        links = []
        for entry in sorted(os.listdir(self.root)) if self.root.is_dir() else []:
            full = self.root / entry
            if full.is_symlink() and os.readlink(full) in self.hierarchies:
                links.append((os.readlink(full), entry))
        return links


class V2Cgroup:
    """One directory in the unified hierarchy; controllers enabled in every ancestor."""

    def __init__(self, root: Path, path: str) -> None:
        self.root = root
        self.path = root / path.strip("/")

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        available = set((self.root / "cgroup.controllers").read_text().split())
        wanted = [c for c in _V2_CONTROLLERS if c in available]
        parent = self.root
        for part in self.path.relative_to(self.root).parts:
            for controller in wanted:
                # A controller the parent lacks fails with ENOENT: run without it.
                with contextlib.suppress(OSError):
                    _write(parent / "cgroup.subtree_control", f"+{controller}")
            parent = parent / part

    def set(self, resources: Resources | None) -> None:
        if resources is None:
            return
        dir_of = lambda controller: self.path  # noqa: E731 - one directory on v2
        cgrouplimits.apply(cgrouplimits.plan(resources, True, dir_of), dir_of)
        if resources.devices:
            # v2 has no devices controller: the rules become an eBPF program on the cgroup.
            devicebpf.apply(str(self.path), [_bpf_rule(r) for r in resources.devices])

    def join(self, pid: int) -> None:
        _write(self.path / "cgroup.procs", pid)

    def procs(self) -> list[int]:
        return _read_procs(self.path / "cgroup.procs")

    def oom_killed(self) -> bool:
        return _oom_kill_count(self.path / "memory.events") > 0

    def destroy(self) -> None:
        _rmdir_retry(self.path)

    def mount_binds(self) -> list[tuple[str, str]]:
        return [(str(self.path), "")]

    def mount_links(self) -> list[tuple[str, str]]:
        return []
