"""services.stats and services.top: cgroup v1 and v2 files (on temp dirs) to docker's
stats JSON, and the container's processes (cgroup.procs) picked out of ps output."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from freight.errors import Internal, InvalidArgument
from freight.services import stats, top
from freight.services.model import Container, ContainerConfig, ContainerState, HostSettings

CG = "/freight/abc123"
GIB = 1024**3

V2_FILES = {
    "cgroup.controllers": "cpu io memory pids\n",
    "freight/abc123/cpu.stat": (
        "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"
        "nr_periods 10\nnr_throttled 3\nthrottled_usec 7000\n"
    ),
    "freight/abc123/memory.current": "10485760\n",
    "freight/abc123/memory.max": "max\n",
    "freight/abc123/memory.stat": "anon 4194304\nfile 6291456\ninactive_file 2097152\npgfault 12\n",
    "freight/abc123/pids.current": "3\n",
    "freight/abc123/pids.max": "max\n",
    "freight/abc123/io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
}
V1_FILES = {
    "cpuacct/freight/abc123/cpuacct.usage": "3000000000\n",
    "cpuacct/freight/abc123/cpuacct.usage_percpu": "1000000000 2000000000 \n",
    "cpuacct/freight/abc123/cpuacct.stat": "user 150\nsystem 50\n",
    "cpu/freight/abc123/cpu.stat": "nr_periods 4\nnr_throttled 1\nthrottled_time 5000\n",
    "memory/freight/abc123/memory.usage_in_bytes": "20971520\n",
    "memory/freight/abc123/memory.max_usage_in_bytes": "31457280\n",
    "memory/freight/abc123/memory.limit_in_bytes": "9223372036854771712\n",
    "memory/freight/abc123/memory.failcnt": "0\n",
    "memory/freight/abc123/memory.stat": "cache 100\nrss 200\ntotal_inactive_file 1048576\n",
    "pids/freight/abc123/pids.current": "2\n",
    "pids/freight/abc123/pids.max": "50\n",
    "blkio/freight/abc123/blkio.throttle.io_service_bytes_recursive": (
        "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n8:0 Async 4608\n8:0 Total 4608\nTotal 4608\n"
    ),
    "blkio/freight/abc123/blkio.throttle.io_serviced_recursive": "8:0 Read 1\n8:0 Write 1\nTotal 2\n",
}


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def container(running: bool = True, network_mode: str = "bridge") -> Container:
    return Container(
        id="abc123",
        name="web",
        created="",
        image_id="",
        config=ContainerConfig(),
        host=HostSettings(network_mode=network_mode),
        state=ContainerState(status="running" if running else "exited", pid=0),
    )


def test_v2_cpu_memory_pids_io(tmp_path: Path) -> None:
    cg = stats.read_cgroup(CG, make_tree(tmp_path, V2_FILES), machine_memory=8 * GIB)
    assert cg.cpu == {
        "cpu_usage": {
            "total_usage": 2_500_000_000,
            "usage_in_kernelmode": 500_000_000,
            "usage_in_usermode": 2_000_000_000,
        },
        "throttling_data": {"periods": 10, "throttled_periods": 3, "throttled_time": 7_000_000},
    }
    # "max" is no limit: docker shows the host's memory; v2 has no max_usage/failcnt.
    assert cg.memory == {
        "usage": 10485760,
        "stats": {"anon": 4194304, "file": 6291456, "inactive_file": 2097152, "pgfault": 12},
        "limit": 8 * GIB,
    }
    assert cg.pids == {"current": 3}
    assert cg.blkio["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "read", "value": 4096},
        {"major": 8, "minor": 0, "op": "write", "value": 8192},
    ]
    assert cg.blkio["io_serviced_recursive"] is None
    assert set(cg.blkio) == set(stats.BLKIO_KEYS)


def test_v2_limit_below_host_memory_is_kept(tmp_path: Path) -> None:
    files = {**V2_FILES, "freight/abc123/memory.max": "67108864\n"}
    cg = stats.read_cgroup(CG, make_tree(tmp_path, files), machine_memory=8 * GIB)
    assert cg.memory["limit"] == 64 * 1024 * 1024


def test_v2_cgroup_gone_reads_as_zeros(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    cg = stats.read_cgroup(CG, tmp_path, machine_memory=GIB)
    assert cg.cpu["cpu_usage"]["total_usage"] == 0
    assert cg.memory == {"limit": GIB}
    assert cg.pids == {}


def test_v1_all_controllers(tmp_path: Path) -> None:
    cg = stats.read_cgroup(CG, make_tree(tmp_path, V1_FILES), machine_memory=4 * GIB)
    tick = 1_000_000_000 // stats.USER_HZ
    assert cg.cpu["cpu_usage"] == {
        "total_usage": 3_000_000_000,
        "percpu_usage": [1_000_000_000, 2_000_000_000],
        "usage_in_kernelmode": 50 * tick,
        "usage_in_usermode": 150 * tick,
    }
    assert cg.cpu["throttling_data"] == {
        "periods": 4,
        "throttled_periods": 1,
        "throttled_time": 5000,
    }
    assert cg.memory == {
        "usage": 20971520,
        "max_usage": 31457280,
        "stats": {"cache": 100, "rss": 200, "total_inactive_file": 1048576},
        "limit": 4 * GIB,
    }
    assert cg.pids == {"current": 2, "limit": 50}
    assert cg.blkio["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": op, "value": v}
        for op, v in (("Read", 4096), ("Write", 512), ("Sync", 0), ("Async", 4608), ("Total", 4608))
    ]
    assert [e["op"] for e in cg.blkio["io_serviced_recursive"]] == ["Read", "Write"]
    assert cg.blkio["sectors_recursive"] is None


def test_v1_cfq_statistics_win_over_throttle(tmp_path: Path) -> None:
    files = {
        **V1_FILES,
        "blkio/freight/abc123/blkio.io_serviced_recursive": "8:0 Read 7\nTotal 7\n",
        "blkio/freight/abc123/blkio.io_service_bytes_recursive": "8:0 Read 70\nTotal 70\n",
        "blkio/freight/abc123/blkio.sectors_recursive": "8:0 3\n",
    }
    cg = stats.read_cgroup(CG, make_tree(tmp_path, files))
    assert cg.blkio["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 70}
    ]
    assert cg.blkio["sectors_recursive"] == [{"major": 8, "minor": 0, "op": "", "value": 3}]


def test_proc_stat_and_net_dev() -> None:
    text = (
        "cpu  100 5 50 1000 10 1 2 7 0 0\ncpu0 50 2 25 500 5 0 1 3 0 0\n"
        "cpu1 50 3 25 500 5 1 1 4 0 0\nintr 1 2 3\n"
    )
    system, cpus = stats.parse_proc_stat(text)
    assert system == 1168 * 1_000_000_000 // stats.USER_HZ  # steal (7) left out, as dockerd
    assert cpus == 2
    dev = (
        "Inter-|   Receive |  Transmit\n face |bytes packets errs drop ...\n"
        "    lo:  900 9 0 0 0 0 0 0  900 9 0 0 0 0 0 0\n"
        "  eth0: 1234 10 1 2 0 0 0 0  5678 20 3 4 0 0 0 0\n"
    )
    assert stats.parse_net_dev(dev) == {
        "eth0": {
            "rx_bytes": 1234, "rx_packets": 10, "rx_errors": 1, "rx_dropped": 2,
            "tx_bytes": 5678, "tx_packets": 20, "tx_errors": 3, "tx_dropped": 4,
        }
    }  # fmt: skip


def test_sample_json_shape_and_precpu(tmp_path: Path) -> None:
    cg = stats.read_cgroup(CG, make_tree(tmp_path, V2_FILES), machine_memory=GIB)
    c = container()
    first = stats.Sample(1_000_000_000, cg, 5_000, 2, {"eth0": {"rx_bytes": 1}})
    second = stats.Sample(2_000_000_000, cg, 9_000, 2, None)
    doc = second.to_json(c, first)
    assert doc["read"] == "1970-01-01T00:00:02.000000000Z"
    assert doc["preread"] == "1970-01-01T00:00:01.000000000Z"
    assert doc["precpu_stats"]["system_cpu_usage"] == 5_000
    assert doc["cpu_stats"]["system_cpu_usage"] == 9_000
    assert doc["cpu_stats"]["online_cpus"] == 2
    assert doc["name"] == "/web" and doc["id"] == "abc123" and doc["num_procs"] == 0
    assert "networks" not in doc
    alone = first.to_json(c, None)
    assert alone["preread"] == "0001-01-01T00:00:00Z"
    assert alone["precpu_stats"] == stats.zero_cpu()
    assert alone["networks"] == {"eth0": {"rx_bytes": 1}}


def test_zero_sample_for_a_stopped_container() -> None:
    doc = stats.zero_sample(container(running=False))
    assert doc["read"] == doc["preread"] == "0001-01-01T00:00:00Z"
    assert doc["memory_stats"] == {} and doc["pids_stats"] == {}
    assert all(v is None for v in doc["blkio_stats"].values())
    assert doc["cpu_stats"]["cpu_usage"]["total_usage"] == 0


def test_host_network_has_no_networks() -> None:
    c = container(network_mode="host")
    c.state.pid = 1
    assert stats.read_networks(c) is None


@pytest.mark.parametrize("stream_count", [1, 3])
def test_collector_streams_with_precpu_and_ends_when_stopped(
    tmp_path: Path, stream_count: int
) -> None:
    root = make_tree(tmp_path, V2_FILES)
    c = container()
    collector = stats.StatsCollector(lambda _c: CG, root, interval=0.02)

    async def run() -> list[dict]:
        got = []
        async for doc in collector.stream(c, count=None):
            got.append(doc)
            if len(got) == stream_count:
                c.state.status = "exited"
        return got

    docs = asyncio.run(asyncio.wait_for(run(), 5))
    assert len(docs) == stream_count + 1
    assert docs[0]["precpu_stats"] == stats.zero_cpu()
    if stream_count > 1:
        assert docs[1]["preread"] == docs[0]["read"]
        assert docs[1]["precpu_stats"]["cpu_usage"] == docs[0]["cpu_stats"]["cpu_usage"]
    assert docs[-1]["read"] == "0001-01-01T00:00:00Z"  # the stop: one zero sample, then the end
    assert collector._watches == []


def test_collector_shares_one_reading_between_streams(tmp_path: Path) -> None:
    root = make_tree(tmp_path, V2_FILES)
    c = container()
    collector = stats.StatsCollector(lambda _c: CG, root, interval=0.02)
    reads = []
    real = collector.sample
    collector.sample = lambda c, system=None: reads.append(c.id) or real(c, system)  # type: ignore[method-assign]

    async def two_streams() -> None:
        async def take() -> list[dict]:
            return [d async for d in collector.stream(c, count=2)]

        a, b = await asyncio.gather(take(), take())
        assert len(a) == len(b) == 2

    asyncio.run(asyncio.wait_for(two_streams(), 5))
    assert 2 <= len(reads) <= 3  # one reading per tick, not one per stream


def test_one_shot_stopped_is_zero(tmp_path: Path) -> None:
    collector = stats.StatsCollector(lambda _c: CG, tmp_path)
    doc = asyncio.run(collector.one_shot(container(running=False)))
    assert doc == stats.zero_sample(container(running=False))


# --- top: the container's processes from cgroup.procs, host ps filtered --------------

PS_EF = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 12:00 ?        00:00:01 /sbin/init
root         100       1  0 12:01 ?        00:00:00 sh -c sleep 1000
root         101     100  0 12:01 ?        00:00:00 sleep 1000
root         200       1  0 12:02 ?        00:00:00 other
"""


def test_container_pids_v1_and_v2_with_sub_cgroups(tmp_path: Path) -> None:
    v1 = make_tree(
        tmp_path / "v1",
        {
            "pids/freight/abc123/cgroup.procs": "100\n101\n",
            "pids/freight/abc123/inner/cgroup.procs": "102\n",
            "memory/freight/abc123/cgroup.procs": "100\n101\n102\n",
        },
    )
    assert top.container_pids(CG, v1) == {100, 101, 102}
    v2 = make_tree(
        tmp_path / "v2",
        {"cgroup.controllers": "cpu\n", "freight/abc123/cgroup.procs": "7\n"},
    )
    assert top.container_pids(CG, v2) == {7}
    assert top.container_pids("/freight/gone", v2) == set()
    assert top.container_pids("/freight/gone", v1) == set()


def test_parse_ps_keeps_the_containers_lines() -> None:
    found = top.parse_ps(PS_EF, {100, 101})
    assert found.titles == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert found.processes == [
        ["root", "100", "1", "0", "12:01", "?", "00:00:00", "sh -c sleep 1000"],
        ["root", "101", "100", "0", "12:01", "?", "00:00:00", "sleep 1000"],
    ]


def test_parse_ps_thread_lines_follow_their_process() -> None:
    out = "PID TID CMD\n100 - sh\n- 100 -\n- 105 -\n200 - other\n- 200 -\n"
    found = top.parse_ps(out, {100})
    assert found.processes == [["100", "-", "sh"], ["-", "100", "-"], ["-", "105", "-"]]


def test_parse_ps_errors_and_refused_args() -> None:
    with pytest.raises(Internal, match="Couldn't find PID field in ps output"):
        top.parse_ps("USER CMD\nroot x\n", {1})
    with pytest.raises(Internal, match="Unexpected pid 'x'"):
        top.parse_ps("PID CMD\nx y\n", {1})
    with pytest.raises(InvalidArgument, match='specifying "uid=PID" is not allowed'):
        top.check_ps_args("-o uid=PID")
    top.check_ps_args("-o pid=PID,comm")  # relabelling pid itself is fine (dockerd)
