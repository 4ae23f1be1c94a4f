"""freight network benchmarks: network setup per start, TCP throughput published vs direct.

    python bench/network.py [--runs 20] [--mib 512] [--docker unix:///var/run/docker.sock]

Starts its own freightd on a temp data root, bridge, subnet and firewall table
(like the tests), bootstraps busybox, and prints:

- network setup per container start: freightd's own measurement of each
  start's network work (namespace, veth, address, routes, files, DNS/ports),
  and end to end `run --rm busybox true` on the default bridge vs `--network none`
- TCP throughput from the host into a container (busybox `nc -l` discarding):
  directly to the container's address, through a published port on the
  bridge's gateway address (kernel DNAT), and through the published port on
  127.0.0.1 (DNAT with route_localnet); the published paths as % of direct

With --docker HOST it repeats the throughput figures against that dockerd
(it must have a busybox image). Traffic goes only to 127.0.0.1, our bridges'
addresses and containers.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from conftest import cleanup_leftovers, remove_all_containers, start_daemon, stop_daemon  # noqa: E402

SINK = "while true; do nc -l -p 5001 > /dev/null; done"
CHUNK = b"\0" * (1 << 20)


def ok(result: subprocess.CompletedProcess) -> str:
    if result.returncode != 0:
        raise SystemExit((result.stdout + result.stderr).decode(errors="replace"))
    return result.stdout.decode()


def timed_runs(run, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        ok(run())
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(name: str, samples: list[float], unit: str = "ms") -> str:
    samples = sorted(samples)
    p90 = samples[min(len(samples) - 1, (len(samples) * 9) // 10)]
    return f"{name:<56} median {statistics.median(samples):8.1f} {unit}   p90 {p90:8.1f}   (n={len(samples)})"


def send(host: str, port: int, mib: int) -> float:
    """MiB/s of `mib` MiB written to host:port until the receiver has read it all."""
    deadline = time.monotonic() + 10
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=10)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    with sock:
        start = time.perf_counter()
        for _ in range(mib):
            sock.sendall(CHUNK)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass  # the sink closes once it has read everything
        elapsed = time.perf_counter() - start
    time.sleep(0.2)  # the sink's loop starts the next nc
    return mib / elapsed


def throughput(label: str, targets: dict[str, tuple[str, int]], mib: int, rounds: int) -> None:
    results = {name: [send(h, p, mib) for _ in range(rounds)] for name, (h, p) in targets.items()}
    direct = statistics.median(results["direct"])
    for name, samples in results.items():
        median = statistics.median(samples)
        share = f"{100 * median / direct:5.1f} % of direct" if name != "direct" else ""
        print(f"{label + ' ' + name:<56} {median:8.0f} MiB/s   {share}")


def sink(cli, name: str) -> tuple[str, int, str]:
    """A discarding server; (container ip, published port, gateway)."""
    ok(cli("run", "-d", "--name", name, "-p", "5001", "busybox", "sh", "-c", SINK))
    info = json.loads(ok(cli("inspect", name)))[0]["NetworkSettings"]
    port = int(info["Ports"]["5001/tcp"][0]["HostPort"])
    return info["IPAddress"], port, info["Gateway"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--mib", type=int, default=512, help="MiB sent per throughput sample")
    ap.add_argument("--rounds", type=int, default=3, help="throughput samples per path")
    ap.add_argument("--docker", help="a dockerd to compare throughput with (e.g. unix:///var/run/docker.sock)")  # fmt: skip
    args = ap.parse_args()
    run_id = secrets.token_hex(4)
    root = Path(f"/tmp/freight-bench-net-{run_id}")
    root.mkdir(parents=True)
    cgroup_parent = f"freight-bench-net-{run_id}"
    d = start_daemon(root, cgroup_parent)
    try:
        ok(d.cli("image", "bootstrap", "busybox", timeout=120))
        ok(d.cli("run", "--rm", "busybox", "true"))  # warm caches
        mark = d.log.stat().st_size
        bridge = timed_runs(lambda: d.cli("run", "--rm", "busybox", "true"), args.runs)
        none = timed_runs(
            lambda: d.cli("run", "--rm", "--network", "none", "busybox", "true"), args.runs
        )
        logged = [
            float(m)
            for m in re.findall(r"network setup of \w+ took ([\d.]+) ms", d.log.read_text()[mark:])
        ]
        print(summary("network setup per start (freightd's measure)", logged))
        print(summary("freight run --rm busybox true (default bridge)", bridge))
        print(summary("freight run --rm --network none busybox true", none))
        ip, port, gw = sink(d.cli, "bench-sink")
        targets = {"direct": (ip, 5001), "published via gateway": (gw, port)}
        targets["published via 127.0.0.1"] = ("127.0.0.1", port)
        throughput("freight", targets, args.mib, args.rounds)
        if args.docker:
            compare_with_docker(args)
    finally:
        remove_all_containers(d)
        stop_daemon(d)
        cleanup_leftovers(root, cgroup_parent)
    return 0


def compare_with_docker(args: argparse.Namespace) -> None:
    def cli(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["docker", "-H", args.docker, *argv], capture_output=True, stdin=subprocess.DEVNULL
        )

    name = f"bench-sink-{secrets.token_hex(3)}"
    try:
        ip, port, gw = sink(cli, name)
        targets = {"direct": (ip, 5001), "published via gateway": (gw, port)}
        targets["published via 127.0.0.1"] = ("127.0.0.1", port)
        throughput("dockerd", targets, args.mib, args.rounds)
    finally:
        cli("rm", "-f", name)


if __name__ == "__main__":
    sys.exit(main())
