"""freight benchmarks of the image as version control: commit, save, load.

    python bench/images.py [--size 1024] [--files 10000] [--image-size 500] [--docker HOST]

Starts its own freightd on a temp data root (like the tests), bootstraps
busybox, then times:

- `freight commit` of a stopped container that wrote --size MB in --files files
- `freight save -o` of an image of --image-size MB (one layer of random data)
- `freight load -i` of that archive, after the image was removed

and prints seconds and MB/s (of the data written or read: the layer, the
archive). With --docker HOST (a real dockerd that is already running) the same
three steps are timed there too, for a side-by-side figure; busybox is loaded
there from freight's own save.
"""

from __future__ import annotations

import argparse
import os
import secrets
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


def run(cmd: list[str], env: dict[str, str], timeout: float = 3600) -> float:
    """Seconds the command took; exits with its error if it failed."""
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.decode()[-2000:]}")
    return elapsed


def fill_script(total_mb: int, files: int) -> str:
    """A shell loop writing `files` files of random-ish data, `total_mb` MB in all."""
    per_file_kb = max(1, total_mb * 1000 // files)
    return (
        "head -c 1000000 /dev/urandom > /seed; "
        f"i=0; while [ $i -lt {files} ]; do d=/data/$((i / 500)); mkdir -p $d; "
        f"head -c {per_file_kb}000 /seed > $d/f$i; i=$((i+1)); done; rm /seed"
    )


def bench_engine(label: str, cli: list[str], env: dict[str, str], args, tmp: Path) -> None:
    tag = secrets.token_hex(4)
    name = f"bench-commit-{tag}"
    # Files of --size/--files KB each, cut from a 1 MB random seed (at most 1 MB a file).
    run(
        cli + ["run", "--name", name, "busybox", "sh", "-c", fill_script(args.size, args.files)],
        env,
    )
    seconds = run(cli + ["commit", name, f"bench-commit:{tag}"], env)
    print(
        f"{label:<8} commit  {args.size:6d} MB in {args.files} files   "
        f"{seconds:7.2f} s   {args.size / seconds:8.1f} MB/s"
    )
    run(cli + ["rm", name], env)
    run(cli + ["rmi", f"bench-commit:{tag}"], env)

    image = f"bench-save:{tag}"
    maker = f"bench-save-{tag}"
    blocks = args.image_size
    run(cli + ["run", "--name", maker, "busybox", "sh", "-c",
               f"head -c 1000000 /dev/urandom > /seed; i=0; while [ $i -lt {blocks} ]; do "
               "cat /seed; i=$((i+1)); done > /payload; rm /seed"], env)  # fmt: skip
    run(cli + ["commit", maker, image], env)
    run(cli + ["rm", maker], env)
    archive = tmp / f"{label}-{tag}.tar"
    seconds = run(cli + ["save", "-o", str(archive), image], env)
    size_mb = archive.stat().st_size / MB
    print(
        f"{label:<8} save    {size_mb:9.1f} MB archive     {seconds:7.2f} s   "
        f"{size_mb / seconds:8.1f} MB/s"
    )
    run(cli + ["rmi", image], env)
    seconds = run(cli + ["load", "-i", str(archive)], env)
    print(
        f"{label:<8} load    {size_mb:9.1f} MB archive     {seconds:7.2f} s   "
        f"{size_mb / seconds:8.1f} MB/s"
    )
    run(cli + ["rmi", image], env)
    archive.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="MB changed before the commit")
    parser.add_argument("--files", type=int, default=10_000, help="in this many files")
    parser.add_argument("--image-size", type=int, default=500, help="MB of the saved image")
    parser.add_argument("--docker", help="a running dockerd to compare with (unix://…)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: freightd needs namespaces, overlayfs and cgroups")
    run_id = secrets.token_hex(4)
    root = Path(f"/tmp/freight-bench-images-{run_id}")
    root.mkdir(parents=True)
    cgroup = f"freight-bench-{run_id}"
    d = start_daemon(root, cgroup)
    try:
        run(FREIGHT + ["image", "bootstrap", "busybox"], d.env)
        with tempfile.TemporaryDirectory(prefix="freight-bench-", dir="/var/tmp") as tmp:
            bench_engine("freight", FREIGHT, d.env, args, Path(tmp))
            if args.docker:
                docker = ["docker", "-H", args.docker]
                busybox = Path(tmp) / "busybox.tar"
                run(FREIGHT + ["save", "-o", str(busybox), "busybox"], d.env)
                run(docker + ["load", "-i", str(busybox)], os.environ.copy())
                bench_engine("dockerd", docker, os.environ.copy(), args, Path(tmp))
    finally:
        remove_all_containers(d)
        stop_daemon(d)
        cleanup_leftovers(root, cgroup)


if __name__ == "__main__":
    main()
