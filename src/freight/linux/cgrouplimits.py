"""A container's resource limits as cgroup file writes, v1 and v2, in one place.

The runtime writes them before a container's first process joins its cgroup;
the daemon writes them again when `update` changes a running container. Both
go through `plan()` (OCI resources → the files and values to write) and
`apply()` (write them in order; on a failure write back what was there, so a
refused update leaves the cgroup as it was).

Files per controller (v1 hierarchy ↔ v2 file)::

    memory  memory.limit_in_bytes        ↔ memory.max
            memory.memsw.limit_in_bytes  ↔ memory.swap.max  (v1: memory+swap; v2: swap alone)
            memory.soft_limit_in_bytes   ↔ memory.low
    cpu     cpu.shares                   ↔ cpu.weight       (runc's mapping)
            cpu.cfs_period_us + quota_us ↔ cpu.max "quota period"
    cpuset  cpuset.cpus, cpuset.mems     ↔ the same names
    pids    pids.max                     ↔ pids.max
    blkio   blkio.weight|blkio.bfq.weight ↔ io.weight|io.bfq.weight

A v1 memory limit above the current memory+swap limit is refused (EINVAL), so
when both change the larger one goes first. A v1 memory limit below what the
cgroup uses fails with EBUSY once the kernel gave up reclaiming: that becomes
runc's "unable to set memory limit to N (current usage: U, peak usage: P)".
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from freight.errors import Conflict, FreightError
from freight.oci.runtime_spec import Resources

DEFAULT_ROOT = Path("/sys/fs/cgroup")
UNLIMITED_V1 = "-1"


@dataclass(frozen=True)
class Write:
    """One file to write: `controller` names the v1 hierarchy ("" on v2)."""

    controller: str
    file: str
    value: str


# A controller name -> its directory for this container (None: not mounted).
DirOf = Callable[[str], Path | None]


class LimitError(FreightError):
    """A write the kernel refused; the cgroup was restored before this is raised."""


def is_unified(root: Path = DEFAULT_ROOT) -> bool:
    return (root / "cgroup.controllers").exists()


def v1_hierarchies(root: Path) -> list[str]:
    """Mounted v1 hierarchies ("cpu,cpuacct", "memory", …); aliases and `unified` left out."""
    if not root.is_dir():
        return []
    out = []
    for entry in sorted(os.listdir(root)):
        full = root / entry
        if entry != "unified" and full.is_dir() and not full.is_symlink():
            out.append(entry)
    return out


def dirs_of(path: str, root: Path = DEFAULT_ROOT) -> DirOf:
    """The container's directory per controller, for a cgroupsPath like "/freight/<id>"."""
    rel = path.strip("/")
    if is_unified(root):
        return lambda controller: root / rel
    hierarchies = v1_hierarchies(root)

    def dir_of(controller: str) -> Path | None:
        for name in hierarchies:
            if controller in name.split(","):
                return root / name / rel
        return None

    return dir_of


# planning ----------------------------------------------------------------------------


def plan(res: Resources, unified: bool, dir_of: DirOf) -> list[Write]:
    """The writes for `res` (devices are the runtime's business), in a safe order."""
    return _plan_v2(res, dir_of) if unified else _plan_v1(res, dir_of)


def _plan_v1(res: Resources, dir_of: DirOf) -> list[Write]:
    out: list[Write] = []
    mem = res.memory
    if mem is not None:
        memory_dir = dir_of("memory")
        limit = [Write("memory", "memory.limit_in_bytes", str(mem.limit))] if mem.limit else []
        swap: list[Write] = []
        # v1's memory+swap file exists only with swapaccount=1.
        memsw = memory_dir / "memory.memsw.limit_in_bytes" if memory_dir else None
        if mem.swap is not None and memsw is not None and memsw.exists():
            swap = [Write("memory", "memory.memsw.limit_in_bytes", str(mem.swap))]
        out += swap + limit if swap and _swap_first(memory_dir, mem.limit) else limit + swap
        if mem.reservation is not None:
            out.append(Write("memory", "memory.soft_limit_in_bytes", str(mem.reservation)))
    cpu = res.cpu
    if cpu is not None:
        if cpu.shares:
            out.append(Write("cpu", "cpu.shares", str(cpu.shares)))
        if cpu.period:  # the period goes first: the kernel checks quota against it
            out.append(Write("cpu", "cpu.cfs_period_us", str(cpu.period)))
        if cpu.quota:
            out.append(Write("cpu", "cpu.cfs_quota_us", str(cpu.quota)))
        if cpu.cpus:
            out.append(Write("cpuset", "cpuset.cpus", cpu.cpus))
        if cpu.mems:
            out.append(Write("cpuset", "cpuset.mems", cpu.mems))
    if res.pids_limit is not None:
        limit_text = str(res.pids_limit) if res.pids_limit > 0 else "max"
        out.append(Write("pids", "pids.max", limit_text))
    if res.blkio_weight:
        name = _first_present(dir_of("blkio"), ("blkio.weight", "blkio.bfq.weight"))
        out.append(Write("blkio", name, str(res.blkio_weight)))
    return out


def _swap_first(memory_dir: Path | None, new_limit: int | None) -> bool:
    """Raising the limit past the current memory+swap limit needs memsw raised first."""
    if memory_dir is None or not new_limit:
        return True
    try:
        current = int((memory_dir / "memory.memsw.limit_in_bytes").read_text())
    except (OSError, ValueError):
        return True
    return new_limit > current


def _first_present(d: Path | None, names: tuple[str, ...]) -> str:
    for name in names:
        if d is not None and (d / name).exists():
            return name
    return names[0]


def _plan_v2(res: Resources, dir_of: DirOf) -> list[Write]:
    out: list[Write] = []
    mem = res.memory
    if mem is not None:
        if mem.limit is not None:
            out.append(Write("", "memory.max", str(mem.limit) if mem.limit > 0 else "max"))
        if mem.swap is not None:
            # OCI swap is memory+swap (v1 semantics); v2 limits swap alone.
            if mem.swap < 0 or mem.limit is None or mem.limit < 0:
                swap = "max"
            else:
                swap = str(max(mem.swap - mem.limit, 0))
            out.append(Write("", "memory.swap.max", swap))
        if mem.reservation is not None:
            out.append(Write("", "memory.low", str(mem.reservation)))
    cpu = res.cpu
    if cpu is not None:
        if cpu.shares:
            out.append(Write("", "cpu.weight", str(shares_to_weight(cpu.shares))))
        if cpu.quota or cpu.period:
            quota = str(cpu.quota) if cpu.quota and cpu.quota > 0 else "max"
            out.append(Write("", "cpu.max", f"{quota} {cpu.period or 100000}"))
        if cpu.cpus:
            out.append(Write("", "cpuset.cpus", cpu.cpus))
        if cpu.mems:
            out.append(Write("", "cpuset.mems", cpu.mems))
    if res.pids_limit is not None:
        out.append(Write("", "pids.max", str(res.pids_limit) if res.pids_limit > 0 else "max"))
    if res.blkio_weight:
        weight = res.blkio_weight
        name = _first_present(dir_of(""), ("io.bfq.weight", "io.weight"))
        value = weight if name == "io.bfq.weight" else blkio_to_io_weight(weight)
        out.append(Write("", name, str(value)))
    return out


def shares_to_weight(shares: int) -> int:
    """runc's mapping of cpu.shares [2, 262144] onto cpu.weight [1, 10000]."""
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """runc's mapping of blkio.weight [10, 1000] onto io.weight [1, 10000]."""
    return 1 + (weight - 10) * 9999 // 990


# applying ----------------------------------------------------------------------------


def apply(writes: list[Write], dir_of: DirOf) -> None:
    """Write each file in order; if one fails, restore the earlier ones (newest first)
    and raise `LimitError` with the kernel's reason. A controller that is not
    mounted is skipped, as the runtime always did."""
    done: list[tuple[Path, str | None]] = []
    for w in writes:
        d = dir_of(w.controller)
        if d is None:
            continue
        path = d / w.file
        try:
            old = _read(path)
            _write(path, w.value)
        except OSError as e:
            _restore(done)
            raise _limit_error(path, w, e) from None
        done.append((path, old))


def _restore(done: list[tuple[Path, str | None]]) -> None:
    for path, old in reversed(done):
        if old is None:
            continue
        try:
            _write(path, old)
        except OSError:
            continue  # best effort: the earlier value may no longer fit (usage moved on)


def _read(path: Path) -> str | None:
    """The value to restore; None for a file that is not there (a plain directory in tests)."""
    # What a file reads back is what it takes on write ("max 100000", "default 100").
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _limit_error(path: Path, w: Write, e: OSError) -> LimitError | Conflict:
    if e.errno == errno.EBUSY and w.file in (
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
    ):
        usage = _read_int(path.parent / "memory.usage_in_bytes")
        peak = _read_int(path.parent / "memory.max_usage_in_bytes")
        return Conflict(
            f"unable to set memory limit to {w.value} (current usage: {usage}, peak usage: {peak})"
        )
    reason = os.strerror(e.errno) if e.errno else str(e)
    return LimitError(f'failed to write "{w.value}" to "{path}": {reason.lower()}')


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return 0
