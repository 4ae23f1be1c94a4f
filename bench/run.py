"""freight benchmarks: start latency, CLI start, daemon and per-container memory.

    python bench/run.py [--runs 20] [--containers 10] [--docker unix:///var/run/docker.sock]

Starts its own freightd on a temp data root (like the tests), bootstraps
busybox, and prints median and spread of:

- `freight run --rm busybox true`, end to end
- the same through the real docker CLI against freightd
- `freight --version`
- freightd's idle RSS/PSS
- memory per running container: the processes freight keeps per container
  (its shim), RSS and PSS, averaged over --containers sleeping containers

With --docker HOST it also times `docker run --rm busybox true` against that
(real) dockerd, for a side-by-side figure; the busybox image is imported there
from the same rootfs.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from conftest import cleanup_leftovers, remove_all_containers, start_daemon, stop_daemon  # noqa: E402

FREIGHT = [sys.executable, "-m", "freight.cli.main"]
FREIGHT_SCRIPT = shutil.which("freight") or str(Path(sys.executable).with_name("freight"))


def timed(cmd: list[str], env: dict[str, str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True)
        samples.append((time.perf_counter() - start) * 1000)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.decode()}")
    return samples


def summary(name: str, samples: list[float], unit: str = "ms") -> str:
    samples = sorted(samples)
    p10 = samples[len(samples) // 10]
    p90 = samples[min(len(samples) - 1, (len(samples) * 9) // 10)]
    return (
        f"{name:<48} median {statistics.median(samples):7.1f} {unit}   "
        f"p10 {p10:7.1f}   p90 {p90:7.1f}   (n={len(samples)})"
    )


def memory_of(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MiB from smaps_rollup."""
    rss = pss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1])
        elif line.startswith("Pss:"):
            pss = int(line.split()[1])
    return rss / 1024, pss / 1024


def shim_pids(exec_root: Path) -> list[int]:
    pids = []
    for pid_file in (exec_root / "containers").glob("*/shim.pid"):
        try:
            pids.append(int(pid_file.read_text()))
        except (OSError, ValueError):
            continue
    return pids


def per_container_memory(d, count: int) -> tuple[float, float]:
    for i in range(count):
        proc = d.cli("run", "-d", "--name", f"bench-{i}", "busybox", "sleep", "600")
        if proc.returncode != 0:
            raise SystemExit(proc.stderr.decode())
    time.sleep(1.0)  # let the shims settle (page faults after start)
    samples = [memory_of(pid) for pid in shim_pids(d.exec_root)]
    remove_all_containers(d)
    rss = statistics.mean(s[0] for s in samples)
    pss = statistics.mean(s[1] for s in samples)
    return rss, pss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--containers", type=int, default=10)
    ap.add_argument(
        "--docker", help="a real dockerd to compare with, e.g. unix:///var/run/docker.sock"
    )
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("benchmarks need root")
    run_id = secrets.token_hex(4)
    root = Path(f"/tmp/freight-bench-{run_id}")
    root.mkdir()
    d = start_daemon(root, f"freight-bench-{run_id}")
    try:
        if d.cli("image", "bootstrap", "busybox").returncode != 0:
            raise SystemExit("bootstrap failed: " + d.log_tail())
        report(d, args)
    finally:
        remove_all_containers(d)
        stop_daemon(d)
        cleanup_leftovers(root, f"freight-bench-{run_id}")
    return 0


def report(d, args: argparse.Namespace) -> None:
    env = d.env
    # Warm up page cache and the daemon's lazy paths.
    timed([FREIGHT_SCRIPT, "run", "--rm", "busybox", "true"], env, 3)
    print(
        summary(
            "freight run --rm busybox true",
            timed([FREIGHT_SCRIPT, "run", "--rm", "busybox", "true"], env, args.runs),
        )
    )
    print(
        summary(
            "docker CLI -> freightd: run --rm busybox true",
            timed(["docker", "-H", d.host, "run", "--rm", "busybox", "true"], env, args.runs),
        )
    )
    print(summary("freight --version", timed([FREIGHT_SCRIPT, "--version"], env, args.runs)))
    rss, pss = memory_of(d.proc.pid)
    print(f"{'freightd idle memory':<48} RSS {rss:6.1f} MiB   PSS {pss:6.1f} MiB")
    rss, pss = per_container_memory(d, args.containers)
    print(
        f"{'memory per running container (shim)':<48} RSS {rss:6.2f} MiB   PSS {pss:6.2f} MiB   (n={args.containers})"
    )
    if args.docker:
        compare_with_docker(args)


def compare_with_docker(args: argparse.Namespace) -> None:
    """The same figures for a real dockerd (which must have a busybox image)."""
    env = {**os.environ, "DOCKER_HOST": args.docker}
    run = ["docker", "run", "--rm", "busybox", "true"]
    timed(run, env, 3)
    print(summary("docker CLI -> dockerd: run --rm busybox true", timed(run, env, args.runs)))
    daemons = [pid for name in ("dockerd", "containerd") for pid in pids_named(name)]
    rss = sum(memory_of(p)[0] for p in daemons)
    pss = sum(memory_of(p)[1] for p in daemons)
    print(f"{'dockerd+containerd idle memory':<48} RSS {rss:6.1f} MiB   PSS {pss:6.1f} MiB")
    names = [f"bench-{secrets.token_hex(3)}" for _ in range(args.containers)]
    for name in names:
        cmd = ["docker", "run", "-d", "--name", name, "busybox", "sleep", "600"]
        subprocess.run(cmd, env=env, capture_output=True, check=True)
    time.sleep(1.0)
    shims = [memory_of(p) for p in pids_named("containerd-shim-runc-v2")]
    subprocess.run(["docker", "rm", "-f", *names], env=env, capture_output=True)
    if shims:
        rss = statistics.mean(s[0] for s in shims)
        pss = statistics.mean(s[1] for s in shims)
        label = "dockerd: memory per running container (shim)"
        print(f"{label:<48} RSS {rss:6.2f} MiB   PSS {pss:6.2f} MiB   (n={len(shims)})")


def pids_named(name: str) -> list[int]:
    """Processes by name (the kernel keeps only 15 characters of it)."""
    out = subprocess.run(["pgrep", "-x", name[:15]], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


if __name__ == "__main__":
    sys.exit(main())
