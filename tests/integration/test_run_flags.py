"""Security-related run flags that map straight onto the OCI spec."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("client", ["cli", "docker"])
def test_caps_no_new_privileges_and_read_only_root(freightd, client):
    run = getattr(freightd, client)
    script = 'grep -E "NoNewPrivs|CapEff" /proc/self/status; touch /x || echo read-only'
    result = run(
        "run", "--rm", "--security-opt", "no-new-privileges", "--cap-drop", "ALL",
        "--cap-add", "chown", "--read-only", "busybox", "sh", "-c", script,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert "CapEff:\t0000000000000001" in out  # CAP_CHOWN only
    assert "NoNewPrivs:\t1" in out
    assert out.strip().endswith("read-only")


def test_runc_runs_the_same_bundle(freightd):
    import shutil

    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    result = freightd.cli(
        "run", "--rm", "--runtime", "runc", "-h", "viarunc", "busybox", "hostname"
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "viarunc"


@pytest.mark.parametrize("client", ["cli", "docker"])
def test_cpu_and_io_weights_reach_the_containers_cgroup(freightd, client):
    """run's --cpu-shares/-c, --cpuset-cpus, --cpu-quota/--cpu-period, --memory-reservation and
    --blkio-weight land in HostConfig and in the container's cgroup files (v1 or v2)."""
    import json
    import os
    from pathlib import Path

    run = getattr(freightd, client)
    name = f"res-{client}-{os.urandom(3).hex()}"
    result = run(
        "run", "-d", "--name", name, "-c", "512", "--cpuset-cpus", "0", "--cpu-period", "50000",
        "--cpu-quota", "25000", "--memory-reservation", "24m", "--blkio-weight", "300",
        "busybox", "sleep", "60",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    try:
        info = json.loads(freightd.cli("inspect", name).stdout)[0]
        host = info["HostConfig"]
        assert (host["CpuShares"], host["CpusetCpus"], host["CpuPeriod"], host["CpuQuota"]) == (
            512, "0", 50000, 25000,
        )  # fmt: skip
        assert host["MemoryReservation"] == 24 * 1024 * 1024 and host["BlkioWeight"] == 300
        cg = Path("/sys/fs/cgroup")
        path = f"{freightd.cgroup_parent}/{info['Id']}"
        if (cg / "cgroup.controllers").exists():  # pure v2
            assert (cg / path / "cpuset.cpus").read_text().strip() == "0"
            assert (cg / path / "cpu.max").read_text().split() == ["25000", "50000"]
        else:
            assert (cg / "cpu" / path / "cpu.shares").read_text().strip() == "512"
            assert (cg / "cpuset" / path / "cpuset.cpus").read_text().strip() == "0"
            assert (cg / "cpu" / path / "cpu.cfs_quota_us").read_text().strip() == "25000"
            soft = (cg / "memory" / path / "memory.soft_limit_in_bytes").read_text().strip()
            assert int(soft) == 24 * 1024 * 1024
    finally:
        freightd.cli("rm", "-f", name)
