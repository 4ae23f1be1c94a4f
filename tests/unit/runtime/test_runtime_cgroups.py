"""freight.runtime.cgroups on temp dirs laid out like v1 and v2 hosts."""

from __future__ import annotations

from pathlib import Path

import pytest

from freight.oci.runtime_spec import Cpu, DeviceRule, Memory, Resources
from freight.runtime.cgroups import V1Cgroup, V2Cgroup, open_cgroup

RES = Resources(
    memory=Memory(limit=64 << 20, swap=128 << 20, reservation=32 << 20),
    cpu=Cpu(shares=1024, quota=50000, period=100000),
    pids_limit=42,
)


@pytest.fixture
def v1_root(tmp_path: Path) -> Path:
    for name in ("memory", "cpu,cpuacct", "pids", "devices", "unified"):
        (tmp_path / name).mkdir()
    (tmp_path / "cpu").symlink_to("cpu,cpuacct")
    (tmp_path / "cpuacct").symlink_to("cpu,cpuacct")
    return tmp_path


@pytest.fixture
def v2_root(tmp_path: Path) -> Path:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    return tmp_path


def test_v1_is_detected_and_skips_unified_and_aliases(v1_root: Path) -> None:
    cg = open_cgroup("/freight/c1", v1_root)
    assert isinstance(cg, V1Cgroup)
    assert cg.hierarchies == ["cpu,cpuacct", "devices", "memory", "pids"]


def test_v1_limits_are_written(v1_root: Path) -> None:
    cg = V1Cgroup(v1_root, "/freight/c1")
    cg.create()
    (v1_root / "memory/freight/c1/memory.memsw.limit_in_bytes").write_text("")  # swapaccount=1
    cg.set(RES)
    mem = v1_root / "memory/freight/c1"
    assert (mem / "memory.limit_in_bytes").read_text() == str(64 << 20)
    assert (mem / "memory.memsw.limit_in_bytes").read_text() == str(128 << 20)
    assert (mem / "memory.soft_limit_in_bytes").read_text() == str(32 << 20)
    cpu = v1_root / "cpu,cpuacct/freight/c1"
    assert (cpu / "cpu.cfs_quota_us").read_text() == "50000"
    assert (cpu / "cpu.cfs_period_us").read_text() == "100000"
    assert (cpu / "cpu.shares").read_text() == "1024"
    assert (v1_root / "pids/freight/c1/pids.max").read_text() == "42"


def test_v1_without_swap_accounting_skips_memsw(v1_root: Path) -> None:
    cg = V1Cgroup(v1_root, "/freight/c1")
    cg.create()
    cg.set(RES)
    assert not (v1_root / "memory/freight/c1/memory.memsw.limit_in_bytes").exists()


def test_v1_device_rules(v1_root: Path) -> None:
    cg = V1Cgroup(v1_root, "/c")
    cg.create()
    cg.set(Resources(devices=[DeviceRule(False, access="rwm"), DeviceRule(True, "c", 1, 3, "rwm")]))
    assert (v1_root / "devices/c/devices.deny").read_text() == "a"
    assert (v1_root / "devices/c/devices.allow").read_text() == "c 1:3 rwm"


def test_v1_mount_binds_and_links(v1_root: Path) -> None:
    cg = V1Cgroup(v1_root, "/c")
    cg.create()
    assert ("cpu,cpuacct", "cpu") in cg.mount_links()
    assert (str(v1_root / "memory/c"), "memory") in cg.mount_binds()


def test_v1_oom_and_destroy(v1_root: Path) -> None:
    cg = V1Cgroup(v1_root, "/c")
    cg.create()
    assert not cg.oom_killed()
    (v1_root / "memory/c/memory.oom_control").write_text("oom_kill_disable 0\noom_kill 1\n")
    assert cg.oom_killed()
    (v1_root / "memory/c/memory.oom_control").unlink()
    cg.destroy()
    assert not (v1_root / "pids/c").exists()


def test_v2_is_detected_and_enables_controllers(v2_root: Path) -> None:
    cg = open_cgroup("/freight/c1", v2_root)
    assert isinstance(cg, V2Cgroup)
    cg.create()
    # Each write replaces the temp file, so the last controller is what remains.
    assert (v2_root / "cgroup.subtree_control").read_text() == "+pids"
    assert (v2_root / "freight/cgroup.subtree_control").exists()
    assert not (v2_root / "freight/c1/cgroup.subtree_control").exists()


def test_v2_limits_are_written(v2_root: Path) -> None:
    cg = V2Cgroup(v2_root, "/freight/c1")
    cg.create()
    cg.set(RES)
    d = v2_root / "freight/c1"
    assert (d / "memory.max").read_text() == str(64 << 20)
    assert (d / "memory.swap.max").read_text() == str(64 << 20)  # swap - limit
    assert (d / "memory.low").read_text() == str(32 << 20)
    assert (d / "cpu.max").read_text() == "50000 100000"
    assert (d / "cpu.weight").read_text() == "39"
    assert (d / "pids.max").read_text() == "42"


def test_v2_unlimited_values(v2_root: Path) -> None:
    cg = V2Cgroup(v2_root, "/c")
    cg.create()
    cg.set(Resources(memory=Memory(limit=-1, swap=-1), cpu=Cpu(period=100000), pids_limit=0))
    assert (v2_root / "c/memory.max").read_text() == "max"
    assert (v2_root / "c/memory.swap.max").read_text() == "max"
    assert (v2_root / "c/cpu.max").read_text() == "max 100000"
    assert (v2_root / "c/pids.max").read_text() == "max"


def test_v2_join_procs_oom(v2_root: Path) -> None:
    cg = V2Cgroup(v2_root, "/c")
    cg.create()
    cg.join(1234)
    assert cg.procs() == [1234]
    (v2_root / "c/memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n")
    assert cg.oom_killed()
    assert cg.mount_binds() == [(str(v2_root / "c"), "")]
