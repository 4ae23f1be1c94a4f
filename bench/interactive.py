"""Interactive-path benchmarks: exec latency and attach throughput.

    python bench/interactive.py [--runs 20] [--size-mb 200] [--docker unix:///var/run/docker.sock]

Starts its own freightd on a temp data root (like the tests) and prints:

- `freight exec CID true`, end to end (target ≤ 50 ms), and the same through
  the real docker CLI against freightd;
- the throughput of `run --rm -v DIR:/data busybox cat /data/big > /dev/null`
  through attach, without a TTY (target ≥ 300 MB/s), with the default
  json-file log and with `--log-driver none` (the attach path alone), through
  the freight CLI and the docker CLI.

With --docker HOST the same figures for that (real) dockerd, which needs a
busybox image.

Why two log figures: every byte a container prints is also written to its
json-file log, about twice its size once JSON-escaped. On this VM the kernel
takes new page-cache pages at ~330 MB/s (`dd of=/tmp/x bs=64k` shows it), so
the log write, not the attach path, sets the json-file ceiling.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from conftest import cleanup_leftovers, remove_all_containers, start_daemon, stop_daemon  # noqa: E402

FREIGHT = shutil.which("freight") or str(Path(sys.executable).with_name("freight"))
LINE = b"hello world, this is one line of text for the attach throughput benchmark\n"


def timed(cmd: list[str], env: dict[str, str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True)
        samples.append((time.perf_counter() - start) * 1000)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.decode()}")
    return samples


def summary(name: str, samples: list[float]) -> str:
    samples = sorted(samples)
    p10 = samples[len(samples) // 10]
    p90 = samples[min(len(samples) - 1, (len(samples) * 9) // 10)]
    median = statistics.median(samples)
    return (
        f"{name:<56} median {median:7.1f} ms   p10 {p10:7.1f}   p90 {p90:7.1f}   (n={len(samples)})"
    )


def exec_latency(cli: list[str], env: dict[str, str], runs: int, label: str) -> None:
    name = f"bench-exec-{secrets.token_hex(3)}"
    subprocess.run(
        [*cli, "run", "-d", "--name", name, "busybox", "sleep", "600"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    try:
        timed([*cli, "exec", name, "true"], env, 3)  # warm up
        print(summary(f"{label}: exec CID true", timed([*cli, "exec", name, "true"], env, runs)))
    finally:
        subprocess.run([*cli, "rm", "-f", name], env=env, capture_output=True)


def throughput(cli: list[str], env: dict[str, str], data_dir: Path, size: int, label: str) -> None:
    for driver in ("json-file", "none"):
        cmd = [
            *cli, "run", "--rm", "--log-driver", driver, "-v", f"{data_dir}:/data:ro",
            "busybox", "cat", "/data/big",
        ]  # fmt: skip
        rates = []
        for _ in range(3):
            start = time.perf_counter()
            with open(os.devnull, "wb") as sink:
                subprocess.run(cmd, env=env, stdout=sink, stdin=subprocess.DEVNULL, check=True)
            rates.append(size / (time.perf_counter() - start) / 1e6)
        name = f"{label}: cat {size >> 20} MiB through attach, {driver}"
        print(f"{name:<56} median {statistics.median(rates):7.0f} MB/s  (best {max(rates):.0f})")


def make_big_file(data_dir: Path, size: int) -> None:
    chunk = LINE * ((1 << 20) // len(LINE))
    with open(data_dir / "big", "wb") as f:
        written = 0
        while written < size:
            f.write(chunk)
            written += len(chunk)
        f.truncate(size)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--docker", help="a real dockerd to compare with")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("benchmarks need root")
    run_id = secrets.token_hex(4)
    root = Path(f"/tmp/freight-bench-{run_id}")
    root.mkdir()
    size = args.size_mb << 20
    d = start_daemon(root, f"freight-bench-{run_id}")
    try:
        if d.cli("image", "bootstrap", "busybox").returncode != 0:
            raise SystemExit("bootstrap failed: " + d.log_tail())
        with tempfile.TemporaryDirectory(prefix="freight-bench-data-") as tmp:
            make_big_file(Path(tmp), size)
            report(d, args, Path(tmp), size)
    finally:
        remove_all_containers(d)
        stop_daemon(d)
        cleanup_leftovers(root, f"freight-bench-{run_id}")
    return 0


def report(d, args: argparse.Namespace, data_dir: Path, size: int) -> None:
    freight, docker = [FREIGHT, "-H", d.host], ["docker", "-H", d.host]
    exec_latency(freight, d.env, args.runs, "freight CLI -> freightd")
    exec_latency(docker, d.env, args.runs, "docker CLI -> freightd")
    throughput(freight, d.env, data_dir, size, "freight CLI -> freightd")
    throughput(docker, d.env, data_dir, size, "docker CLI -> freightd")
    if args.docker:
        real = ["docker", "-H", args.docker]
        exec_latency(real, dict(os.environ), args.runs, "docker CLI -> dockerd")
        throughput(real, dict(os.environ), data_dir, size, "docker CLI -> dockerd")


if __name__ == "__main__":
    sys.exit(main())
