"""freightd's cost while watching containers: stats streams and 1 s healthchecks.

    python bench/lifecycle.py [--stats-containers 50] [--health-containers 100] [--seconds 30]

Starts its own freightd (data root, socket, cgroup parent, bridge and subnet
of its own, as the tests do), bootstraps busybox, and reports:

1. stats: --stats-containers running `sleep` containers, first idle for
   --seconds (the baseline), then with one streaming `GET /containers/{id}/stats`
   per container, all at once, for --seconds: freightd's CPU seconds (user +
   system), its CPU % of one core, its RSS/PSS (peak of 1 s samples), the
   samples received, and the whole machine's busy CPU % over the window.
2. healthchecks: --health-containers containers with `--health-cmd true
   --health-interval 1s`, once all are healthy, for --seconds: freightd's CPU
   and memory as above, plus the machine's busy CPU %, which also holds the
   probes' own processes (exec shims, runtime), outside freightd.

dockerd is not installed on the machine this was written on, so there is no
side-by-side figure; the output says so. Everything made is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from conftest import cleanup_leftovers, remove_all_containers, start_daemon, stop_daemon  # noqa: E402

FREIGHT = [sys.executable, "-m", "freight.cli.main"]
TICKS = os.sysconf("SC_CLK_TCK")


def cli(d, *args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [*FREIGHT, *args], env=d.env, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        raise SystemExit(f"freight {' '.join(args)} failed: {done.stderr.decode()}")
    return done.stdout.decode()


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values[:8]) - idle, sum(values[:8])


def memory_of(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MiB from smaps_rollup."""
    rss = pss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1])
        elif line.startswith("Pss:"):
            pss = int(line.split()[1])
    return rss / 1024, pss / 1024


class Window:
    """freightd's CPU and peak memory, and the machine's busy share, over a stretch of time."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def measure(self, seconds: float) -> dict[str, float]:
        cpu0, (busy0, total0) = cpu_seconds(self.pid), machine_busy()
        peak_rss = peak_pss = 0.0
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            rss, pss = memory_of(self.pid)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(1.0)
        elapsed = time.monotonic() - start
        cpu = cpu_seconds(self.pid) - cpu0
        busy1, total1 = machine_busy()
        return {
            "seconds": elapsed,
            "cpu_s": cpu,
            "cpu_pct": cpu / elapsed * 100,
            "rss_mib": peak_rss,
            "pss_mib": peak_pss,
            "machine_busy_pct": (busy1 - busy0) / max(total1 - total0, 1) * 100,
        }


def report(label: str, m: dict[str, float]) -> None:
    print(
        f"{label:<44} freightd CPU {m['cpu_s']:6.2f} s ({m['cpu_pct']:5.1f}% of a core)   "
        f"RSS {m['rss_mib']:6.1f} MiB   PSS {m['pss_mib']:6.1f} MiB   "
        f"machine busy {m['machine_busy_pct']:5.1f}%"
    )


def run_many(d, count: int, prefix: str, *flags: str) -> list[str]:
    def one(i: int) -> str:
        return cli(d, "run", "-d", "--name", f"{prefix}{i}", *flags, "busybox", "sleep", "100000")

    with ThreadPoolExecutor(4) as pool:
        return [cid.strip() for cid in pool.map(one, range(count))]


class StatsStream(threading.Thread):
    """One `GET /containers/{id}/stats` stream read to the end; counts the samples."""

    def __init__(self, sock_path: str, cid: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.sock_path, self.cid, self.stop = sock_path, cid, stop
        self.samples = 0

    def run(self) -> None:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.sock_path)
            s.sendall(
                f"GET /v1.45/containers/{self.cid}/stats HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            )
            s.settimeout(1.0)
            buf = b""
            while not self.stop.is_set():
                try:
                    data = s.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    return
                buf += data
                # Chunked JSON lines: count the complete sample documents so far.
                end = buf.rfind(b"\n") + 1
                self.samples += buf[:end].count(b'"read":')
                buf = buf[end:]


def stats_phase(d, args: argparse.Namespace, window: Window) -> None:
    print(f"starting {args.stats_containers} containers ...", flush=True)
    cids = run_many(d, args.stats_containers, "st")
    time.sleep(2)
    report(f"{len(cids)} running, idle ({args.seconds:.0f} s)", window.measure(args.seconds))
    stop = threading.Event()
    streams = [StatsStream(d.host.removeprefix("unix://"), cid, stop) for cid in cids]
    for s in streams:
        s.start()
    time.sleep(2)  # every stream has had its first sample
    before = sum(s.samples for s in streams)
    m = window.measure(args.seconds)
    got = sum(s.samples for s in streams) - before
    stop.set()
    for s in streams:
        s.join(5)
    report(f"{len(cids)} running, {len(streams)} stats streams ({args.seconds:.0f} s)", m)
    expected = len(streams) * m["seconds"]
    print(f"{'':<44} samples received {got} (one per stream per second: ~{expected:.0f})")
    remove_all_containers(d)


def health_phase(d, args: argparse.Namespace, window: Window) -> None:
    n = args.health_containers
    print(f"starting {n} containers with a 1 s healthcheck ...", flush=True)
    flags = ("--health-cmd", "true", "--health-interval", "1s")
    cids = run_many(d, n, "hc", *flags)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = cli(d, "ps", "--format", "{{.Status}}").splitlines()
        if sum("(healthy)" in s for s in states) == n:
            break
        time.sleep(1)
    else:
        print(f"not all healthy after 120 s: {cli(d, 'ps', '--format', '{{.Status}}')}")
    m = window.measure(args.seconds)
    report(f"{len(cids)} running, 1 s healthchecks ({args.seconds:.0f} s)", m)
    probes = 0
    for cid in cids[:5]:
        health = json.loads(cli(d, "inspect", "-f", "{{json .State.Health}}", cid))
        probes += health.get("FailingStreak", 0) == 0
    print(f"{'':<44} sampled containers still healthy: {probes}/5")
    remove_all_containers(d)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stats-containers", type=int, default=50)
    parser.add_argument("--health-containers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--skip-health", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (namespaces, cgroups, overlayfs)")
    tag = secrets.token_hex(3)
    root, cgroup_parent = Path(f"/tmp/freight-bench-life-{tag}"), f"freight-bench-life-{tag}"
    root.mkdir()
    d = start_daemon(root, cgroup_parent)
    try:
        cli(d, "image", "bootstrap", "busybox", timeout=300)
        window = Window(d.proc.pid)
        rss, pss = memory_of(d.proc.pid)
        print(f"{'freightd idle, no containers':<44} RSS {rss:6.1f} MiB   PSS {pss:6.1f} MiB")
        stats_phase(d, args, window)
        if not args.skip_health:
            health_phase(d, args, window)
        print("dockerd: not installed on this machine, no side-by-side figures")
    finally:
        try:
            remove_all_containers(d)
        finally:
            stop_daemon(d)
            cleanup_leftovers(root, cgroup_parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
