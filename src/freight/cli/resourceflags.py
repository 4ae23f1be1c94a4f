"""The resource-limit flags that `run`/`create` and `update` share, and their
HostConfig keys: one table, so both commands spell and convert them alike."""

from __future__ import annotations

from freight.cli.flags import Flag
from freight.cli.units import memory_swap_bytes, nano_cpus, ram_in_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# option dest -> HostConfig key
HOST_KEYS = {
    "blkio_weight": "BlkioWeight",
    "cpu_period": "CpuPeriod",
    "cpu_quota": "CpuQuota",
    "cpu_shares": "CpuShares",
    "cpus": "NanoCpus",
    "cpuset_cpus": "CpusetCpus",
    "cpuset_mems": "CpusetMems",
    "memory": "Memory",
    "memory_reservation": "MemoryReservation",
    "memory_swap": "MemorySwap",
    "pids_limit": "PidsLimit",
}


def resource_flags() -> list[Flag]:
    return [
        Flag(
            "blkio-weight",
            "",
            "int",
            "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)",
            type_name="uint16",
        ),  # fmt: skip
        Flag("cpu-period", "", "int", "Limit CPU CFS (Completely Fair Scheduler) period"),
        Flag("cpu-quota", "", "int", "Limit CPU CFS (Completely Fair Scheduler) quota"),
        Flag("cpu-shares", "c", "int", "CPU shares (relative weight)"),
        Flag("cpus", "", "string", "Number of CPUs", type_name="decimal", convert=nano_cpus),
        Flag("cpuset-cpus", "", "string", "CPUs in which to allow execution (0-3, 0,1)"),
        Flag("cpuset-mems", "", "string", "MEMs in which to allow execution (0-3, 0,1)"),
        Flag("memory", "m", "string", "Memory limit", type_name="bytes", convert=ram_in_bytes),
        Flag(
            "memory-reservation",
            "",
            "string",
            "Memory soft limit",
            type_name="bytes",
            convert=ram_in_bytes,
        ),  # fmt: skip
        Flag(
            "memory-swap",
            "",
            "string",
            "Swap limit equal to memory plus swap: '-1' to enable unlimited swap",
            type_name="bytes",
            convert=memory_swap_bytes,
        ),
        Flag("pids-limit", "", "int", "Tune container pids limit (set -1 for unlimited)"),
    ]


def resources_given(opts: dict[str, Any]) -> dict[str, Any]:
    """HostConfig entries for the resource flags on the command line."""
    return {key: opts[dest] for dest, key in HOST_KEYS.items() if opts.get(dest) is not None}
