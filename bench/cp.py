"""freight benchmark of `cp`: a tree of --size MB into a container and back out.

    python bench/cp.py [--size 500] [--files 1000] [--docker HOST]

Starts its own freightd on a temp data root (like the tests), bootstraps
busybox, makes a host tree of --size MB in --files files (random data), then
times, for a running container:

- `freight cp TREE ctr:/data` (PUT /containers/{id}/archive)
- `freight cp ctr:/data/TREE OUT` (GET /containers/{id}/archive)
- the same two with the real docker CLI against freightd, when `docker` is on PATH

and prints seconds and MB/s. With --docker HOST (a real dockerd that is
already running; none is installed here) the docker CLI steps are timed
there too, for a side-by-side figure.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from conftest import cleanup_leftovers, remove_all_containers, start_daemon, stop_daemon  # noqa: E402

FREIGHT = [sys.executable, "-m", "freight.cli.main"]
MB = 1_000_000


def run(cmd: list[str], env: dict[str, str], timeout: float = 3600) -> tuple[float, str]:
    """(seconds, stdout); exits with the command's error if it failed."""
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.decode()[-2000:]}")
    return elapsed, proc.stdout.decode()


def make_tree(root: Path, size_mb: int, files: int) -> None:
    per_file = size_mb * MB // files
    seed = os.urandom(per_file)
    for i in range(files):
        d = root / f"d{i // 100}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}").write_bytes(seed)


def bench_engine(label: str, cli: list[str], env: dict[str, str], tree: Path, size_mb: int) -> None:
    _, cid = run(cli + ["run", "-d", "--network", "none", "busybox", "sleep", "3600"], env)
    cid = cid.strip()
    out = tree.parent / f"out-{secrets.token_hex(3)}"
    try:
        run(cli + ["exec", cid, "mkdir", "-p", "/data"], env)
        seconds, _ = run(cli + ["cp", str(tree), f"{cid}:/data/"], env)
        print(
            f"{label:<18} cp in   {size_mb:6d} MB   {seconds:7.2f} s   {size_mb / seconds:8.1f} MB/s"
        )
        seconds, _ = run(cli + ["cp", f"{cid}:/data/{tree.name}", str(out)], env)
        print(
            f"{label:<18} cp out  {size_mb:6d} MB   {seconds:7.2f} s   {size_mb / seconds:8.1f} MB/s"
        )
    finally:
        subprocess.run(
            cli + ["rm", "-f", cid], env=env, capture_output=True, stdin=subprocess.DEVNULL
        )
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=500, help="MB in the tree")
    parser.add_argument("--files", type=int, default=1000, help="in this many files")
    parser.add_argument("--docker", help="a running dockerd to compare with (unix://…)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: freightd needs namespaces, overlayfs and cgroups")
    run_id = secrets.token_hex(4)
    root = Path(f"/tmp/freight-bench-cp-{run_id}")
    root.mkdir(parents=True)
    cgroup = f"freight-bench-{run_id}"
    d = start_daemon(root, cgroup)
    try:
        run(FREIGHT + ["image", "bootstrap", "busybox"], d.env)
        with tempfile.TemporaryDirectory(prefix="freight-bench-cp-", dir="/var/tmp") as tmp:
            tree = Path(tmp) / "tree"
            make_tree(tree, args.size, args.files)
            bench_engine("freight CLI", FREIGHT, d.env, tree, args.size)
            if shutil.which("docker"):
                bench_engine(
                    "docker CLI→freightd", ["docker", "-H", d.host], d.env, tree, args.size
                )
            if args.docker:
                docker = ["docker", "-H", args.docker]
                bench_engine("docker CLI→dockerd", docker, os.environ.copy(), tree, args.size)
    finally:
        remove_all_containers(d)
        stop_daemon(d)
        cleanup_leftovers(root, cgroup)


if __name__ == "__main__":
    main()
