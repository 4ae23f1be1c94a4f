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

With --docker-host unix:///path the same runs go to a dockerd that is already
running (the freight CLI speaks to it as the docker CLI would), and the figures
are dockerd's plus containerd's. The image is made there by `docker import` of
the host's static busybox. Start that dockerd on its own data root, with
`--bridge=none --iptables=false` so nothing of the host's network changes:

    dockerd --data-root /tmp/d/root --exec-root /tmp/d/run -H unix:///tmp/d/docker.sock \
        --pidfile /tmp/d/docker.pid --bridge=none --iptables=false --ip6tables=false &
    python bench/lifecycle.py --docker-host unix:///tmp/d/docker.sock

Everything made is removed at the end.

Measured on the 2-core VM (2026-12-03, 30 s windows; dockerd 20.10.24 with its
containerd, --bridge=none; freightd with its default bridge network):

                                   freightd                 dockerd+containerd
    idle, no containers            PSS  48 MiB              PSS 109 MiB
    50 running, idle               0.00 s CPU, PSS  50 MiB  0.05 s, PSS 130 MiB
    50 running, 50 stats streams   0.97 s (3.2%), PSS 50    3.78 s (12.5%), PSS 145
    100 running, 1 s healthchecks  7.68 s (25.4%), PSS 55   8.88 s (28.7%), PSS 226
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
from dataclasses import dataclass, field
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


@dataclass
class Dockerd:
    """A dockerd already running, reached on `host`; measured with its containerd."""

    host: str
    pids: list[int] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def docker(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "-H", self.host, *args], capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)  # fmt: skip


def pids_of(name: str) -> list[int]:
    found = subprocess.run(["pidof", name], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def import_busybox(d: Dockerd) -> None:
    """busybox:latest in dockerd, from the host's static busybox (no registry here)."""
    import io
    import tarfile

    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        tar.add("/bin/busybox", "bin/busybox")
        for applet in ("sh", "sleep", "true"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    done = subprocess.run(["docker", "-H", d.host, "import", "-", "busybox:latest"],
                          input=data.getvalue(), capture_output=True)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"docker import failed: {done.stderr.decode()}")


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
    """The engine's CPU and peak memory (summed over its processes: freightd, or
    dockerd + containerd), and the machine's busy share, over a stretch of time."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids

    def cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self.pids)

    def memory(self) -> tuple[float, float]:
        both = [memory_of(p) for p in self.pids]
        return sum(r for r, _ in both), sum(p for _, p in both)

    def measure(self, seconds: float) -> dict[str, float]:
        cpu0, (busy0, total0) = self.cpu(), machine_busy()
        peak_rss = peak_pss = 0.0
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            rss, pss = self.memory()
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(1.0)
        elapsed = time.monotonic() - start
        cpu = self.cpu() - cpu0
        busy1, total1 = machine_busy()
        return {
            "seconds": elapsed,
            "cpu_s": cpu,
            "cpu_pct": cpu / elapsed * 100,
            "rss_mib": peak_rss,
            "pss_mib": peak_pss,
            "machine_busy_pct": (busy1 - busy0) / max(total1 - total0, 1) * 100,
        }


ENGINE = "freightd"  # or "dockerd+containerd" with --docker-host


def report(label: str, m: dict[str, float]) -> None:
    print(
        f"{label:<44} {ENGINE} CPU {m['cpu_s']:6.2f} s ({m['cpu_pct']:5.1f}% of a core)   "
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
            s.sendall(f"GET /containers/{self.cid}/stats HTTP/1.1\r\nHost: x\r\n\r\n".encode())
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
    parser.add_argument("--docker-host", help="measure this running dockerd instead")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (namespaces, cgroups, overlayfs)")
    if args.docker_host:
        return measure_dockerd(args)
    tag = secrets.token_hex(3)
    root, cgroup_parent = Path(f"/tmp/freight-bench-life-{tag}"), f"freight-bench-life-{tag}"
    root.mkdir()
    d = start_daemon(root, cgroup_parent)
    try:
        cli(d, "image", "bootstrap", "busybox", timeout=300)
        phases(d, args, Window([d.proc.pid]))
    finally:
        try:
            remove_all_containers(d)
        finally:
            stop_daemon(d)
            cleanup_leftovers(root, cgroup_parent)
    return 0


def phases(d, args: argparse.Namespace, window: Window) -> None:
    rss, pss = window.memory()
    print(f"{ENGINE + ' idle, no containers':<44} RSS {rss:6.1f} MiB   PSS {pss:6.1f} MiB")
    stats_phase(d, args, window)
    if not args.skip_health:
        health_phase(d, args, window)


def measure_dockerd(args: argparse.Namespace) -> int:
    global ENGINE
    ENGINE = "dockerd+containerd"
    d = Dockerd(args.docker_host, pids_of("dockerd") + pids_of("containerd"))
    if len(d.pids) < 2:
        raise SystemExit(f"needs one running dockerd and its containerd (pidof found: {d.pids})")
    import_busybox(d)
    try:
        phases(d, args, Window(d.pids))
    finally:
        remove_all_containers(d)
        d.docker("rmi", "busybox:latest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
