"""`update`'s pure parts: dockerd's checks and merge, the cgroup writes on temp
directories (v1 and v2) with their roll-back, port and mount planning, the API
body and the CLI flags."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from freight.apiserver.routes_update import parse_update
from freight.cli.commands.update import UPDATE, parse_restart_policy, update_body
from freight.cli.session import CliError
from freight.errors import Conflict, InvalidArgument, NotFound
from freight.linux import cgrouplimits as cl
from freight.services import update as up
from freight.services.model import Container, ContainerConfig, HostSettings, MountPoint

MB = 1024 * 1024
CID = "c" * 64


def container(**host: object) -> Container:
    return Container(
        id=CID,
        name="box",
        created="2026-01-01T00:00:00Z",
        image_id="img",
        config=ContainerConfig(image="busybox"),
        host=HostSettings(**host),  # type: ignore[arg-type]
    )


def verify(**fields: object) -> list[str]:
    return up.verify(up.ResourceUpdate(**fields), 2, "0-1", "0")  # type: ignore[arg-type]


# dockerd's checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"memory": 1 * MB}, "Minimum memory limit allowed is 6MB"),
        (
            {"memory": 64 * MB, "memory_swap": 32 * MB},
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
        ({"memory_reservation": MB}, "Minimum memory reservation allowed is 6MB"),
        (
            {"memory": 16 * MB, "memory_reservation": 32 * MB},
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ),
        (
            {"nano_cpus": 3_000_000_000},
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
        ),
        (
            {"nano_cpus": 10**9, "cpu_quota": 50000},
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ),
        ({"cpu_period": 10}, "CPU cfs period can not be less than 1ms"),
        ({"cpu_quota": 10}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
        ({"blkio_weight": 5}, "Range of blkio weight is from 10 to 1000"),
        (
            {"cpuset_cpus": "0-5"},
            "Requested CPUs are not available - requested 0-5, available: 0-1",
        ),
        ({"cpuset_cpus": "a"}, "Invalid value a for cpuset cpus"),
        (
            {"cpuset_mems": "1"},
            "Requested memory nodes are not available - requested 1, available: 0",
        ),
        (
            {"restart_policy": {"Name": "sometimes"}},
            "invalid restart policy: unknown policy 'sometimes'",
        ),
        (
            {"restart_policy": {"Name": "always", "MaximumRetryCount": 2}},
            "maximum retry count can only be used with 'on-failure'",
        ),
    ],
)
def test_verify_refuses_with_dockerds_words(fields: dict, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        verify(**fields)
    assert message in str(info.value)


def test_verify_accepts_good_values() -> None:
    assert verify(memory=64 * MB, memory_swap=-1, nano_cpus=1_500_000_000, cpuset_cpus="0,1") == []
    assert verify(restart_policy={"Name": "on-failure", "MaximumRetryCount": 3}) == []


def test_parse_cpuset() -> None:
    assert up.parse_cpuset("0-2,4") == {0, 1, 2, 4}
    with pytest.raises(ValueError):
        up.parse_cpuset("3-1")


# merging with the stored settings ---------------------------------------------------------------


def test_memory_above_the_stored_swap_needs_swap_too() -> None:
    c = container(memory=64 * MB)  # docker stores swap as 2x: 128m
    with pytest.raises(Conflict) as info:
        up.merge(c, up.ResourceUpdate(memory=256 * MB))
    assert str(info.value) == (
        f"Cannot update container {CID}: Memory limit should be smaller than already set "
        "memoryswap limit, update the memoryswap at the same time"
    )
    new = up.merge(c, up.ResourceUpdate(memory=96 * MB))
    assert (new.memory, new.memory_swap) == (96 * MB, 128 * MB)  # the stored swap is kept
    new = up.merge(c, up.ResourceUpdate(memory=256 * MB, memory_swap=-1))
    assert (new.memory, new.memory_swap) == (256 * MB, -1)
    # Beyond dockerd (which refuses): a container created without a limit gets one, with
    # swap as `run -m` gives it (as much as the memory).
    new = up.merge(container(), up.ResourceUpdate(memory=64 * MB))
    assert (new.memory, new.memory_swap) == (64 * MB, 128 * MB)


def test_nano_cpus_and_period_conflict_with_what_is_set() -> None:
    with pytest.raises(
        Conflict, match="Nano CPUs cannot be updated as CPU Period has already been set"
    ):
        up.merge(container(cpu_period=50000), up.ResourceUpdate(nano_cpus=10**9))
    with pytest.raises(
        Conflict, match="CPU Quota cannot be updated as NanoCPUs has already been set"
    ):
        up.merge(container(nano_cpus=10**9), up.ResourceUpdate(cpu_quota=20000))


def test_merge_keeps_unset_fields_and_echoes_inspect_keys() -> None:
    c = container(cpu_shares=512, pids_limit=50, extra={"PidsLimit": 50, "Memory": 0})
    new = up.merge(c, up.ResourceUpdate(pids_limit=100, cpuset_cpus="1", blkio_weight=300))
    assert new.cpu_shares == 512 and new.pids_limit == 100
    assert new.extra["PidsLimit"] == 100 and new.extra["CpusetCpus"] == "1"
    assert new.extra["BlkioWeight"] == 300
    assert c.host.pids_limit == 50 and c.host.extra["PidsLimit"] == 50  # the old one untouched
    assert up.merge(c, up.ResourceUpdate(pids_limit=-1)).pids_limit == -1


def test_restart_policy_is_stored_unless_auto_remove() -> None:
    policy = {"Name": "on-failure", "MaximumRetryCount": 2}
    new = up.merge(container(), up.ResourceUpdate(restart_policy=policy))
    assert new.restart_policy == policy and new.extra["RestartPolicy"] == policy
    new = up.merge(container(), up.ResourceUpdate(restart_policy={"Name": "always"}))
    assert new.restart_policy == {"Name": "always", "MaximumRetryCount": 0}
    unchanged = container(restart_policy={"Name": "always", "MaximumRetryCount": 0})
    assert up.merge(unchanged, up.ResourceUpdate(restart_policy={"Name": ""})).restart_policy == {
        "Name": "always",
        "MaximumRetryCount": 0,
    }
    with pytest.raises(Conflict, match="AutoRemove is enabled"):
        up.merge(container(auto_remove=True), up.ResourceUpdate(restart_policy={"Name": "always"}))


def test_limits_of_maps_the_new_settings() -> None:
    c = container()
    host = up.merge(c, up.ResourceUpdate(memory=64 * MB, memory_swap=128 * MB, cpuset_cpus="0"))
    res = up.limits_of(c, host)
    assert res.memory is not None and (res.memory.limit, res.memory.swap) == (64 * MB, 128 * MB)
    assert res.cpu is not None and res.cpu.cpus == "0"


# cgroup writes on temp directories --------------------------------------------------------------


def _v1_tree(root: Path, rel: str) -> None:
    for name in ("memory", "cpu,cpuacct", "cpuset", "pids", "blkio"):
        (root / name / rel).mkdir(parents=True)
    os.symlink("cpu,cpuacct", root / "cpu")
    mem = root / "memory" / rel
    (mem / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (mem / "memory.memsw.limit_in_bytes").write_text("9223372036854771712\n")
    (root / "blkio" / rel / "blkio.bfq.weight").write_text("100\n")


def test_v1_plan_and_apply(tmp_path: Path) -> None:
    _v1_tree(tmp_path, "freight/x")
    dir_of = cl.dirs_of("/freight/x", tmp_path)
    assert not cl.is_unified(tmp_path)
    c = container()
    host = up.merge(
        c,
        up.ResourceUpdate(
            memory=64 * MB, memory_swap=96 * MB, nano_cpus=500_000_000, pids_limit=20,
            cpuset_cpus="0", blkio_weight=300, cpu_shares=256,
        ),
    )  # fmt: skip
    writes = cl.plan(up.limits_of(c, host), False, dir_of)
    cl.apply(writes, dir_of)
    mem, cpu = tmp_path / "memory/freight/x", tmp_path / "cpu,cpuacct/freight/x"
    assert (mem / "memory.limit_in_bytes").read_text() == str(64 * MB)
    assert (mem / "memory.memsw.limit_in_bytes").read_text() == str(96 * MB)
    assert (cpu / "cpu.cfs_period_us").read_text() == "100000"
    assert (cpu / "cpu.cfs_quota_us").read_text() == "50000"
    assert (cpu / "cpu.shares").read_text() == "256"
    assert (tmp_path / "pids/freight/x/pids.max").read_text() == "20"
    assert (tmp_path / "cpuset/freight/x/cpuset.cpus").read_text() == "0"
    assert (tmp_path / "blkio/freight/x/blkio.bfq.weight").read_text() == "300"


def test_v1_memory_order_follows_the_current_swap_limit(tmp_path: Path) -> None:
    _v1_tree(tmp_path, "g")
    dir_of = cl.dirs_of("/g", tmp_path)
    (tmp_path / "memory/g/memory.memsw.limit_in_bytes").write_text(str(128 * MB))
    res = up.limits_of(container(), HostSettings(memory=256 * MB, memory_swap=512 * MB))
    files = [w.file for w in cl.plan(res, False, dir_of) if w.controller == "memory"]
    assert files[:2] == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]  # grow: swap first
    res = up.limits_of(container(), HostSettings(memory=32 * MB, memory_swap=64 * MB))
    files = [w.file for w in cl.plan(res, False, dir_of) if w.controller == "memory"]
    assert files[:2] == [
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
    ]  # shrink: limit first


def test_a_failed_write_restores_the_earlier_ones(tmp_path: Path) -> None:
    _v1_tree(tmp_path, "g")
    dir_of = cl.dirs_of("/g", tmp_path)
    (tmp_path / "cpu,cpuacct/g/cpu.shares").write_text("1024")
    (tmp_path / "pids/g/pids.max").mkdir()  # writing a directory fails (EISDIR)
    writes = [
        cl.Write("cpu", "cpu.shares", "2"),
        cl.Write("memory", "memory.limit_in_bytes", str(64 * MB)),
        cl.Write("pids", "pids.max", "10"),
    ]
    with pytest.raises(cl.LimitError, match="pids.max"):
        cl.apply(writes, dir_of)
    assert (tmp_path / "cpu,cpuacct/g/cpu.shares").read_text() == "1024"
    assert (tmp_path / "memory/g/memory.limit_in_bytes").read_text() == "9223372036854771712"


def test_ebusy_on_the_memory_limit_is_runcs_message(tmp_path: Path, monkeypatch) -> None:
    _v1_tree(tmp_path, "g")
    mem = tmp_path / "memory/g"
    (mem / "memory.usage_in_bytes").write_text("50000000\n")
    (mem / "memory.max_usage_in_bytes").write_text("60000000\n")
    (tmp_path / "cpu,cpuacct/g/cpu.shares").write_text("1024\n")
    real = cl._write

    def busy(path: Path, value: str) -> None:
        if path.name == "memory.limit_in_bytes" and value != "9223372036854771712":
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        real(path, value)

    monkeypatch.setattr(cl, "_write", busy)
    dir_of = cl.dirs_of("/g", tmp_path)
    writes = [
        cl.Write("cpu", "cpu.shares", "2"),
        cl.Write("memory", "memory.limit_in_bytes", "8388608"),
    ]
    with pytest.raises(Conflict) as info:
        cl.apply(writes, dir_of)
    assert str(info.value) == (
        "unable to set memory limit to 8388608 (current usage: 50000000, peak usage: 60000000)"
    )
    assert (tmp_path / "cpu,cpuacct/g/cpu.shares").read_text() == "1024"


def test_v2_plan_and_apply(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu cpuset memory pids io\n")
    d = tmp_path / "freight" / "y"
    d.mkdir(parents=True)
    (d / "io.weight").write_text("default 100\n")
    (d / "cpu.max").write_text("max 100000\n")
    dir_of = cl.dirs_of("/freight/y", tmp_path)
    assert cl.is_unified(tmp_path)
    c = container()
    host = up.merge(
        c,
        up.ResourceUpdate(
            memory=64 * MB, memory_swap=96 * MB, cpu_quota=20000, cpu_period=50000,
            cpu_shares=1024, cpuset_cpus="1", cpuset_mems="0", pids_limit=-1, blkio_weight=1000,
            memory_reservation=32 * MB,
        ),
    )  # fmt: skip
    cl.apply(cl.plan(up.limits_of(c, host), True, dir_of), dir_of)
    assert (d / "memory.max").read_text() == str(64 * MB)
    assert (d / "memory.swap.max").read_text() == str(32 * MB)  # v2: swap alone
    assert (d / "memory.low").read_text() == str(32 * MB)
    assert (d / "cpu.max").read_text() == "20000 50000"
    assert (d / "cpu.weight").read_text() == str(cl.shares_to_weight(1024))
    assert (d / "cpuset.cpus").read_text() == "1" and (d / "cpuset.mems").read_text() == "0"
    assert (d / "pids.max").read_text() == "max"
    assert (d / "io.weight").read_text() == "10000"


def test_v2_failure_rolls_back(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    d = tmp_path / "z"
    d.mkdir()
    (d / "memory.max").write_text("max\n")
    (d / "pids.max").mkdir()
    dir_of = cl.dirs_of("/z", tmp_path)
    res = up.limits_of(container(), HostSettings(memory=64 * MB, pids_limit=5))
    with pytest.raises(cl.LimitError):
        cl.apply(cl.plan(res, True, dir_of), dir_of)
    assert (d / "memory.max").read_text() == "max"


# ports and mounts --------------------------------------------------------------------------------


def test_new_port_bindings_replace_and_remove() -> None:
    current = {"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": [{"HostPort": "53"}]}
    out = up.new_port_bindings(current, {"80": [{"HostIp": "", "HostPort": "9090"}]}, ["53/udp"])
    assert out == {"80/tcp": [{"HostIp": "", "HostPort": "9090"}]}
    assert current["80/tcp"][0]["HostPort"] == "8080"
    with pytest.raises(InvalidArgument, match="port 81/tcp is not published"):
        up.new_port_bindings(current, {}, ["81"])
    with pytest.raises(InvalidArgument, match="Invalid hostPort"):
        up.new_port_bindings({}, {"80/tcp": [{"HostPort": "99999"}]}, [])


def test_plan_mounts_removes_adds_and_rewrites_host_config(tmp_path: Path) -> None:
    c = container(extra={"Binds": ["/a:/data", "/b:/logs:ro"], "Mounts": None})
    c.mounts = [MountPoint("bind", "/data", source="/a"), MountPoint("bind", "/logs", source="/b")]
    req = up.UpdateRequest(binds=[f"{tmp_path}:/new"], remove_mounts=["/data/"])

    def settle(extra: dict) -> list[MountPoint]:
        return [MountPoint("bind", "/new", source=str(tmp_path))]

    plan = up.plan_mounts(c, req, settle)
    assert [m.destination for m in plan.removed] == ["/data"]
    assert [m.destination for m in plan.keep] == ["/logs"]
    assert [m.destination for m in plan.added] == ["/new"]
    assert plan.extra["Binds"] == ["/b:/logs:ro", f"{tmp_path}:/new"]
    with pytest.raises(NotFound, match="no mount at /nothing"):
        up.plan_mounts(c, up.UpdateRequest(remove_mounts=["/nothing"]), settle)
    clash = up.UpdateRequest(binds=["/x:/logs"])
    with pytest.raises(InvalidArgument, match="Duplicate mount point: /logs"):
        up.plan_mounts(c, clash, lambda extra: [MountPoint("bind", "/logs", source="/x")])


# the API body and the CLI ---------------------------------------------------------------------------


def test_parse_update_body() -> None:
    req = parse_update(
        {
            "Memory": 64 * MB, "MemorySwap": -1, "NanoCpus": 10**9, "PidsLimit": 0,
            "CpusetCpus": "0", "RestartPolicy": {"Name": "always"}, "CgroupParent": "",
            "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}, "RemovePorts": ["53/udp"],
            "Binds": ["/a:/b"], "Mounts": [{"Type": "tmpfs", "Target": "/t"}],
            "RemoveMounts": ["/c"],
        }
    )  # fmt: skip
    r = req.resources
    assert (r.memory, r.memory_swap, r.nano_cpus, r.pids_limit) == (64 * MB, -1, 10**9, 0)
    assert r.cpuset_cpus == "0" and r.restart_policy == {"Name": "always"}
    assert req.changes_ports and req.changes_mounts
    assert req.remove_ports == ["53/udp"] and req.remove_mounts == ["/c"]
    assert parse_update({}).resources == up.ResourceUpdate()
    with pytest.raises(InvalidArgument):
        parse_update({"Memory": "lots"})
    with pytest.raises(InvalidArgument):
        parse_update({"RemoveMounts": "/c"})


def test_cli_flags_become_the_body(tmp_path: Path) -> None:
    opts, names = UPDATE.parse(
        [
            "-m", "64m", "--memory-swap", "-1", "--cpus", "1.5", "--pids-limit", "10",
            "--restart", "on-failure:3", "-p", "127.0.0.1:9090:80", "--publish-add", "53/udp",
            "--publish-rm", "443", "-v", f"{tmp_path}:/data:ro",
            "--mount", "type=bind,src=/src,dst=/dst", "--mount-rm", "/old", "web", "db",
        ]
    )  # fmt: skip
    body = update_body(opts)
    assert names == ["web", "db"]
    assert body["Memory"] == 64 * MB and body["MemorySwap"] == -1
    assert body["NanoCpus"] == 1_500_000_000 and body["PidsLimit"] == 10
    assert body["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert body["PortBindings"] == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "9090"}],
        "53/udp": [{"HostIp": "", "HostPort": ""}],
    }
    assert body["RemovePorts"] == ["443"]
    assert body["Binds"] == [f"{tmp_path}:/data:ro"]
    assert body["Mounts"] == [{"Type": "bind", "Source": "/src", "Target": "/dst"}]
    assert body["RemoveMounts"] == ["/old"]
    assert "CpuShares" not in body


def test_cli_restart_policy_and_volume_errors() -> None:
    assert parse_restart_policy("always") == {"Name": "always"}
    with pytest.raises(CliError, match="no policy provided before colon"):
        parse_restart_policy(":3")
    with pytest.raises(CliError, match="maximum retry count must be an integer"):
        parse_restart_policy("on-failure:x")
    opts, _ = UPDATE.parse(["-v", "/only-a-path", "c"])
    with pytest.raises(CliError, match="update needs SRC:DST"):
        update_body(opts)
