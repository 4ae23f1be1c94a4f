"""Container statistics in docker's JSON shape (`GET /containers/{id}/stats`).

Three parts, kept apart so the parsing is tested on plain text and temp dirs:

- parsers: the kernel's text (memory.stat, cpu.stat, io.stat, blkio.*,
  /proc/stat, /proc/<pid>/net/dev) to numbers, no I/O;
- readers: one container's cgroup files, v1 (a directory per controller,
  `<root>/<controller>/<path>/`) or v2 (`<root>/<path>/` when
  `<root>/cgroup.controllers` exists), turned into docker's cpu_stats,
  memory_stats, pids_stats and blkio_stats;
- `StatsCollector`: one loop for every stream, as dockerd's collector. Each
  second it reads /proc/stat once and every watched container once (in one
  worker thread), and hands the sample to each of that container's streams,
  which keep their own previous sample for `precpu_stats`/`preread`.

Docker's shapes: fields dockerd tags `omitempty` are left out when zero
(memory usage/limit, pids, system_cpu_usage, online_cpus), struct fields are
always there, blkio lists are null when there is nothing; v1 gives
percpu_usage, max_usage, failcnt and all eight blkio lists, v2 gives only
io_service_bytes_recursive with ops "read"/"write" (as dockerd). A stopped
container's sample is all zeros with its name and id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freight.services.clock import ZERO_TIME, format_ns
from freight.services.model import Container

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("/sys/fs/cgroup")
INTERVAL_S = 1.0
USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
BLKIO_KEYS = (
    "io_service_bytes_recursive",
    "io_serviced_recursive",
    "io_queue_recursive",
    "io_service_time_recursive",
    "io_wait_time_recursive",
    "io_merged_recursive",
    "io_time_recursive",
    "sectors_recursive",
)
# blkio file of each list (CFQ/BFQ names; the throttle files cover the first two only).
_BLKIO_FILES = (
    "io_service_bytes_recursive",
    "io_serviced_recursive",
    "io_queued_recursive",
    "io_service_time_recursive",
    "io_wait_time_recursive",
    "io_merged_recursive",
    "time_recursive",
    "sectors_recursive",
)
_NET_FIELDS = (
    "rx_bytes", "rx_packets", "rx_errors", "rx_dropped",
    "tx_bytes", "tx_packets", "tx_errors", "tx_dropped",
)  # fmt: skip

Json = dict[str, Any]
ReadFile = Callable[[str], str | None]  # a cgroup file's text, None when missing


# --- parsers (pure) -----------------------------------------------------------------


def parse_keyed(text: str | None) -> dict[str, int]:
    """'key value' lines (memory.stat, cpu.stat, cpuacct.stat) to a dict; junk is skipped."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def parse_value(text: str | None) -> int | None:
    """A one-number file; "max" (no limit) and a missing file are None."""
    value = (text or "").strip()
    return int(value) if value.isdigit() else None


def parse_ints(text: str | None) -> list[int]:
    """Space-separated numbers (cpuacct.usage_percpu)."""
    return [int(x) for x in (text or "").split() if x.isdigit()]


def parse_blkio_v1(text: str | None) -> list[Json] | None:
    """blkio.* lines "8:0 Read 4096" (or "8:0 4096") to entries; the "Total" line is dropped."""
    entries = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) < 2 or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        op, value = (parts[1], parts[2]) if len(parts) >= 3 else ("", parts[1])
        if major.isdigit() and minor.isdigit() and value.isdigit():
            entries.append(_blkio_entry(int(major), int(minor), op, int(value)))
    return entries or None


def parse_io_stat(text: str | None) -> list[Json] | None:
    """v2 io.stat "8:0 rbytes=1 wbytes=2 rios=..." to docker's read/write byte entries."""
    entries = []
    for line in (text or "").splitlines():
        dev, *pairs = line.split()
        major, _, minor = dev.partition(":")
        if not (major.isdigit() and minor.isdigit()):
            continue
        fields = dict(p.split("=", 1) for p in pairs if "=" in p)
        for op, key in (("read", "rbytes"), ("write", "wbytes")):
            value = fields.get(key, "0")
            number = int(value) if value.isdigit() else 0
            entries.append(_blkio_entry(int(major), int(minor), op, number))
    return entries or None


def _blkio_entry(major: int, minor: int, op: str, value: int) -> Json:
    return {"major": major, "minor": minor, "op": op, "value": value}


def parse_proc_stat(text: str) -> tuple[int, int]:
    """(host CPU time in ns, online CPUs) from /proc/stat, as dockerd: the first seven
    fields of the "cpu" line (user..softirq), in clock ticks, and the count of "cpuN" lines."""
    system, cpus = 0, 0
    for line in text.splitlines():
        if line.startswith("cpu "):
            ticks = [int(x) for x in line.split()[1:8]]
            system = sum(ticks) * 1_000_000_000 // USER_HZ
        elif line.startswith("cpu") and line[3:4].isdigit():
            cpus += 1
    return system, cpus


def parse_net_dev(text: str | None) -> dict[str, Json]:
    """/proc/<pid>/net/dev to docker's `networks` (loopback left out)."""
    nets: dict[str, Json] = {}
    for line in (text or "").splitlines()[2:]:
        name, sep, rest = line.partition(":")
        nums = rest.split()
        if not sep or len(nums) < 16 or name.strip() == "lo":
            continue
        rx, tx = nums[0:4], nums[8:12]  # bytes packets errs drop, for each direction
        nets[name.strip()] = dict(zip(_NET_FIELDS, (int(x) for x in (*rx, *tx)), strict=True))
    return nets


def parse_meminfo_total(text: str) -> int:
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


# --- readers: one container's cgroup ------------------------------------------------


@dataclass(frozen=True)
class CgroupStats:
    """The cgroup part of a sample (docker's keys), before name/id/networks/system CPU."""

    cpu: Json
    memory: Json
    pids: Json
    blkio: Json


def v1_stats(read: Callable[[str, str], str | None], machine_memory: int) -> CgroupStats:
    """From v1 files; `read(controller, file)` gives the text of <controller>/<path>/<file>."""
    acct = parse_keyed(read("cpuacct", "cpuacct.stat"))
    usage: Json = {
        "total_usage": parse_value(read("cpuacct", "cpuacct.usage")) or 0,
        "percpu_usage": parse_ints(read("cpuacct", "cpuacct.usage_percpu")),
        "usage_in_kernelmode": acct.get("system", 0) * 1_000_000_000 // USER_HZ,
        "usage_in_usermode": acct.get("user", 0) * 1_000_000_000 // USER_HZ,
    }
    if not usage["percpu_usage"]:
        del usage["percpu_usage"]  # omitempty
    throttle = parse_keyed(read("cpu", "cpu.stat"))
    cpu = {"cpu_usage": usage, "throttling_data": _throttling(throttle, 1)}
    limit = parse_value(read("memory", "memory.limit_in_bytes")) or 0
    memory = _omit_zero(
        {
            "usage": parse_value(read("memory", "memory.usage_in_bytes")) or 0,
            "max_usage": parse_value(read("memory", "memory.max_usage_in_bytes")) or 0,
            "stats": parse_keyed(read("memory", "memory.stat")),
            "failcnt": parse_value(read("memory", "memory.failcnt")) or 0,
            "limit": _cap(limit, machine_memory),
        }
    )
    pids = _pids(read("pids", "pids.current"), read("pids", "pids.max"))
    return CgroupStats(cpu, memory, pids, _blkio_v1(read))


def _blkio_v1(read: Callable[[str, str], str | None]) -> Json:
    """CFQ (or BFQ) statistics when the scheduler keeps them, else the throttle counters."""
    for prefix in ("blkio.", "blkio.bfq."):
        if parse_blkio_v1(read("blkio", prefix + "io_serviced_recursive")):
            return {
                key: parse_blkio_v1(read("blkio", prefix + name))
                for key, name in zip(BLKIO_KEYS, _BLKIO_FILES, strict=True)
            }
    stats: Json = dict.fromkeys(BLKIO_KEYS)
    stats["io_service_bytes_recursive"] = parse_blkio_v1(
        read("blkio", "blkio.throttle.io_service_bytes_recursive")
    )
    stats["io_serviced_recursive"] = parse_blkio_v1(
        read("blkio", "blkio.throttle.io_serviced_recursive")
    )
    return stats


def v2_stats(read: ReadFile, machine_memory: int) -> CgroupStats:
    """From the unified hierarchy; `read(file)` gives the text of <root>/<path>/<file>."""
    stat = parse_keyed(read("cpu.stat"))
    cpu = {
        "cpu_usage": {
            "total_usage": stat.get("usage_usec", 0) * 1000,
            "usage_in_kernelmode": stat.get("system_usec", 0) * 1000,
            "usage_in_usermode": stat.get("user_usec", 0) * 1000,
        },
        "throttling_data": {
            "periods": stat.get("nr_periods", 0),
            "throttled_periods": stat.get("nr_throttled", 0),
            "throttled_time": stat.get("throttled_usec", 0) * 1000,
        },
    }
    limit = parse_value(read("memory.max"))
    memory = _omit_zero(
        {
            "usage": parse_value(read("memory.current")) or 0,
            "stats": parse_keyed(read("memory.stat")),
            "limit": _cap(limit if limit is not None else machine_memory, machine_memory),
        }
    )
    blkio: Json = dict.fromkeys(BLKIO_KEYS)
    blkio["io_service_bytes_recursive"] = parse_io_stat(read("io.stat"))
    return CgroupStats(cpu, memory, _pids(read("pids.current"), read("pids.max")), blkio)


def _throttling(stat: dict[str, int], time_scale: int) -> Json:
    return {
        "periods": stat.get("nr_periods", 0),
        "throttled_periods": stat.get("nr_throttled", 0),
        "throttled_time": stat.get("throttled_time", 0) * time_scale,
    }


def _pids(current: str | None, limit: str | None) -> Json:
    return _omit_zero({"current": parse_value(current) or 0, "limit": parse_value(limit) or 0})


def _cap(limit: int, machine_memory: int) -> int:
    # No limit reads as a huge number (v1) or "max" (v2): docker shows the host's memory.
    return machine_memory if machine_memory and (limit == 0 or limit > machine_memory) else limit


def _omit_zero(d: Json) -> Json:
    return {k: v for k, v in d.items() if v}


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:  # missing file, or the cgroup went away with the container
        return None


def read_cgroup(
    cgroup_path: str, root: Path = DEFAULT_ROOT, machine_memory: int = 0
) -> CgroupStats:
    """The cgroup statistics of `cgroup_path` ("/<parent>/<id>") on this host's version."""
    rel = cgroup_path.strip("/")
    if (root / "cgroup.controllers").exists():
        return v2_stats(lambda name: _read_text(root / rel / name), machine_memory)
    return v1_stats(lambda ctrl, name: _read_text(root / ctrl / rel / name), machine_memory)


def machine_memory() -> int:
    return parse_meminfo_total(_read_text(Path("/proc/meminfo")) or "")


# --- samples ----------------------------------------------------------------------


def zero_cpu() -> Json:
    return {
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    }


def zero_sample(c: Container) -> Json:
    """What dockerd answers for a container that is not running: zeros, name and id."""
    return {
        "read": ZERO_TIME,
        "preread": ZERO_TIME,
        "pids_stats": {},
        "blkio_stats": dict.fromkeys(BLKIO_KEYS),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": zero_cpu(),
        "precpu_stats": zero_cpu(),
        "memory_stats": {},
        "name": "/" + c.name,
        "id": c.id,
    }


@dataclass(frozen=True)
class Sample:
    """One reading of one container (precpu/preread are filled per stream)."""

    read_ns: int
    cgroup: CgroupStats
    system_cpu: int
    online_cpus: int
    networks: dict[str, Json] | None

    def to_json(self, c: Container, previous: Sample | None) -> Json:
        doc: Json = {
            "read": format_ns(self.read_ns),
            "preread": format_ns(previous.read_ns) if previous else ZERO_TIME,
            "pids_stats": self.cgroup.pids,
            "blkio_stats": self.cgroup.blkio,
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": self.cpu_json(),
            "precpu_stats": previous.cpu_json() if previous else zero_cpu(),
            "memory_stats": self.cgroup.memory,
            "name": "/" + c.name,
            "id": c.id,
        }
        if self.networks:
            doc["networks"] = self.networks
        return doc

    def cpu_json(self) -> Json:
        cpu = dict(self.cgroup.cpu)
        if self.system_cpu:
            cpu["system_cpu_usage"] = self.system_cpu
        if self.online_cpus:
            cpu["online_cpus"] = self.online_cpus
        return cpu


def host_cpu() -> tuple[int, int]:
    return parse_proc_stat(_read_text(Path("/proc/stat")) or "")


def read_networks(c: Container) -> dict[str, Json] | None:
    """The container's interfaces, from its init process's view of /proc/net/dev (no setns)."""
    if c.host.network_mode == "host" or not c.state.pid:
        return None
    return parse_net_dev(_read_text(Path(f"/proc/{c.state.pid}/net/dev"))) or None


# --- the collector -----------------------------------------------------------------


@dataclass
class _Watch:
    """One stream's mailbox: the newest sample, or None once the container stopped."""

    container: Container
    queue: asyncio.Queue[Sample | None] = field(default_factory=lambda: asyncio.Queue(maxsize=2))


class StatsCollector:
    """Samples every watched container once per interval, for all of its streams."""

    def __init__(
        self,
        cgroup_path: Callable[[Container], str],
        root: Path = DEFAULT_ROOT,
        interval: float = INTERVAL_S,
    ) -> None:
        self.cgroup_path = cgroup_path
        self.root = root
        self.interval = interval
        self.machine_memory = machine_memory()
        self._watches: list[_Watch] = []
        self._task: asyncio.Task[None] | None = None

    def sample(self, c: Container, system: tuple[int, int] | None = None) -> Sample:
        """Read one container now (blocking file reads: call it off the event loop)."""
        system_cpu, cpus = system or host_cpu()
        cg = read_cgroup(self.cgroup_path(c), self.root, self.machine_memory)
        return Sample(time.time_ns(), cg, system_cpu, cpus, read_networks(c))

    async def one_shot(self, c: Container) -> Json:
        """`one-shot=true`: one reading at once, without precpu."""
        if not c.state.running:
            return zero_sample(c)
        sample = await asyncio.to_thread(self.sample, c)
        return sample.to_json(c, None)

    async def stream(self, c: Container, count: int | None) -> AsyncIterator[Json]:
        """Docker's stats stream: one sample per interval (`count` of them; None is forever).

        Each carries the previous one's CPU numbers as precpu_stats. A container
        that is not running (or stops) gives one zero sample and ends the stream.
        """
        if not c.state.running:
            yield zero_sample(c)
            return
        watch = _Watch(c)
        self._watches.append(watch)
        self._ensure_running()
        previous: Sample | None = None
        try:
            sent = 0
            while count is None or sent < count:
                sample = await watch.queue.get()
                if sample is None:
                    yield zero_sample(c)
                    return
                yield sample.to_json(c, previous)
                previous, sent = sample, sent + 1
        finally:
            self._watches.remove(watch)

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._watches:
            started = time.monotonic()
            watches = list(self._watches)
            try:
                samples = await asyncio.to_thread(self._sample_all, watches)
            except Exception:
                log.exception("stats collection failed")
                samples = {}
            for w in watches:
                _offer(w.queue, samples.get(w.container.id))
            await asyncio.sleep(max(self.interval - (time.monotonic() - started), 0.05))

    def _sample_all(self, watches: list[_Watch]) -> dict[str, Sample | None]:
        system = host_cpu()
        out: dict[str, Sample | None] = {}
        for w in watches:
            c = w.container
            if c.id in out:
                continue  # several streams of one container share a reading
            out[c.id] = self.sample(c, system) if c.state.running else None
        return out


def _offer(queue: asyncio.Queue[Sample | None], item: Sample | None) -> None:
    """Put without blocking; a slow reader loses its oldest sample, not the newest."""
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(item)
