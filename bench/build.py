"""freight benchmark of builds: cold, cached, and after a one-file change.

    python bench/build.py [--files 5000] [--size 50] [--repeat N] [--freight-only]
                          [--docker HOST [--buildkit-cli /usr/bin/docker]]

Starts its own freightd on a temp data root (like the tests), bootstraps
busybox, makes a project of a Dockerfile with 10 RUN steps and a COPY of a
--size MB context in --files small files, then times three builds with the
freight CLI (and, when `docker` is on PATH, the real docker CLI through the
legacy builder API against freightd):

- cold: nothing cached (after `builder prune -a`)
- cached: the same project again
- one change: one source file edited (the COPY and the steps after it rerun)

The issue's reference figures on this machine for the same project:
BuildKit 8.0 s / 0.41 s / 3.0 s, docker's legacy builder 16.3 / 3.2 / 8.9 s.
With --docker HOST (a running dockerd) the docker CLI is timed there too.

Measured here (freight CLI, 2 cores shared with other work, so best of runs):
before step layers were committed in place 4.2-5.4 / 0.3-0.4 / 4.2-4.5 s;
after (best of 3) 2.22 / 0.19 / 1.85 s (medians 2.61 / 0.21 / 1.97), though
with the disk busy (others' tests) 5.7 / 0.20 / 4.25 s: the one-change build
is the COPY of the 50 MB (file creation, bound by the disk's journal) plus
five RUNs. The docker CLI through the legacy API against freightd: 6.8 / 5.0 /
10.0 s (it sends the 50 MB context as a tar every time; freightd unpacks it).

Side by side on this machine (2026-12-03, one window, best of 3 / median), with
Debian's docker.io 20.10 as the comparison (dockerd --bridge=none; BuildKit
through its /usr/bin/docker, RUN with --network none):
    freight        4.51 / 4.81   0.23 / 0.25   3.29 / 4.56 s
    BuildKit       2.99 / 3.02   0.17 / 0.22   1.99 / 2.03 s
    legacy         3.87 / 4.41   3.59 / 4.10   9.39 / 9.41 s
freight's COPY creates each file through the step's overlay (~1 ms a file here);
BuildKit writes a fresh snapshot directory. That is the gap left.
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

# Ten RUN steps with the general requirements first, the project's files after:
# the workflow the cache is made for.
DOCKERFILE = """FROM busybox
RUN mkdir -p /opt/tools && echo tools > /opt/tools/version
RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd
RUN mkdir -p /var/cache/app && chown app /var/cache/app
RUN echo 'export PATH=/opt/tools:$PATH' > /etc/profile.d/tools.sh || true
RUN seq 1 1000 > /opt/tools/numbers
WORKDIR /src
COPY . /src
RUN find /src -type f | wc -l > /opt/count
RUN du -s /src > /opt/size
RUN ls /src | head -5 > /opt/head
RUN md5sum /src/d0/f0 > /opt/sum
RUN cat /opt/count /opt/size
"""


def make_project(root: Path, files: int, size_mb: int) -> None:
    (root / "Dockerfile").write_text(DOCKERFILE)
    per_file = size_mb * 1_000_000 // files
    for i in range(files):
        d = root / f"d{i % 50}"
        d.mkdir(exist_ok=True)
        (d / f"f{i // 50}").write_bytes(os.urandom(per_file))


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {(proc.stdout + proc.stderr).decode()[-3000:]}")
    return elapsed


def three_builds(
    build: list[str], prune: list[str], project: Path, env: dict[str, str]
) -> list[float]:
    subprocess.run(prune, env=env, capture_output=True, check=True)
    cold = timed(build, env)
    cached = timed(build, env)
    (project / "d0" / "f0").write_bytes(os.urandom(1000))
    changed = timed(build, env)
    return [cold, cached, changed]


def repeated(runs: int, *args: object) -> list[list[float]]:
    """`three_builds` `runs` times (each from a pruned cache): a list per figure."""
    rounds = [three_builds(*args) for _ in range(runs)]  # type: ignore[arg-type]
    return [sorted(r[i] for r in rounds) for i in range(3)]


def report(name: str, figures: list[list[float]]) -> None:
    """Best of the runs (the machine is shared: the rest is other people's load),
    and the median when there were several."""
    best = "   ".join(f"{k} {v[0]:6.2f} s" for k, v in zip(FIGURES, figures, strict=True))
    print(f"{name:<40} {best}")
    if len(figures[0]) > 1:
        mid = "   ".join(
            f"{k} {v[len(v) // 2]:6.2f} s" for k, v in zip(FIGURES, figures, strict=True)
        )
        print(f"{'  (median of ' + str(len(figures[0])) + ')':<40} {mid}")


FIGURES = ("cold", "cached", "one change")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--size", type=int, default=50, help="context size in MB")
    parser.add_argument("--docker", help="a real dockerd to compare with (its -H)")
    parser.add_argument(
        "--buildkit-cli",
        help="with --docker: a docker CLI with BuildKit built in (Debian's docker.io 20.10 "
        "/usr/bin/docker) to time DOCKER_BUILDKIT=1 builds on that dockerd too",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs; the best is reported")
    parser.add_argument(
        "--freight-only", action="store_true", help="skip the docker CLI builds against freightd"
    )
    args = parser.parse_args()

    run_id = secrets.token_hex(4)
    root = Path(f"/tmp/freight-bench-build-{run_id}")
    root.mkdir()
    cgroup = f"freight-bench-build-{run_id}"
    d = start_daemon(root, cgroup)
    try:
        subprocess.run(
            [*FREIGHT, "image", "bootstrap", "busybox"], env=d.env, check=True, capture_output=True
        )
        with tempfile.TemporaryDirectory(prefix="freight-bench-project-") as tmp:
            project = Path(tmp)
            make_project(project, args.files, args.size)
            print(f"project: 10 RUN steps, COPY of {args.size} MB in {args.files} files")
            tag = f"bench-build-{run_id}"
            freight = repeated(
                args.repeat,
                [*FREIGHT, "build", "-q", "-t", tag, str(project)],
                [*FREIGHT, "builder", "prune", "-a", "-f"],
                project,
                d.env,
            )
            report("freight build (freightd)", freight)
            if args.freight_only:
                return
            docker_env = {**d.env, "DOCKER_BUILDKIT": "0"}
            docker = repeated(
                args.repeat,
                ["docker", "-H", d.host, "build", "-q", "-t", tag, str(project)],
                ["docker", "-H", d.host, "builder", "prune", "-a", "-f"],
                project,
                docker_env,
            )
            report("docker build, legacy API (freightd)", docker)
            if args.docker:
                real = {**os.environ, "DOCKER_HOST": args.docker}
                report(
                    "docker build (dockerd)",
                    repeated(
                        args.repeat,
                        ["docker", "build", "-q", "-t", tag, str(project)],
                        ["docker", "builder", "prune", "-a", "-f"],
                        project,
                        real,
                    ),
                )
            if args.docker and args.buildkit_cli:
                kit = {**os.environ, "DOCKER_HOST": args.docker, "DOCKER_BUILDKIT": "1"}
                cli = args.buildkit_cli
                report(
                    "BuildKit (dockerd)",
                    repeated(
                        args.repeat,
                        # --network none: BuildKit's RUN needs dockerd's bridge otherwise,
                        # and the comparison dockerd runs with --bridge=none.
                        [cli, "build", "-q", "--network", "none", "-t", tag, str(project)],
                        [cli, "builder", "prune", "-a", "-f"],
                        project,
                        kit,
                    ),
                )
            print(
                "reference (issue 6): BuildKit 8.0 / 0.41 / 3.0 s, legacy builder 16.3 / 3.2 / 8.9 s"
            )
    finally:
        remove_all_containers(d)
        stop_daemon(d)
        cleanup_leftovers(root, cgroup)


if __name__ == "__main__":
    main()
