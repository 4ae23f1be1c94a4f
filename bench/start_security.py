"""The start-latency cost of seccomp and user namespaces: `freight run --rm busybox true`.

    python bench/start_security.py [--runs 30]

Starts its own freightd on a temp data root (like the tests), bootstraps
busybox, then times alternately, so drift hits every variant alike:

- default (Docker's seccomp profile, compiled BPF from the runtime's cache)
- `--security-opt seccomp=unconfined` (no filter)
- `--security-opt no-new-privileges` (the filter loaded late, just before execve)
- a user namespace (`--uidmap 0:100000:65536`: idmapped rootfs, mapper-written maps),
  without and with the seccomp profile (the issue's target: both at most +10 ms)

and, outside the daemon, the runtime's own steps for the default profile:
resolve (daemon, caps/arch/kernel), convert (runtime, JSON → Filter), compile
with libseccomp (a cache miss), cache hit, and the prctl that installs it;
and the user namespace's steps: the idmap's namespace fd, an idmapped bind,
and unshare plus the uid_map/gid_map writes; and the runtime alone (no CLI,
no daemon) running `true` with neither, seccomp, userns, or both: on a busy
machine the CLI's interpreter start makes the end-to-end medians noisy.
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
sys.path.insert(0, str(REPO / "src"))

from conftest import cleanup_leftovers, remove_all_containers, start_daemon, stop_daemon  # noqa: E402

FREIGHT = [sys.executable, "-m", "freight.cli.main"]
USERNS = ["--uidmap", "0:100000:65536"]  # a user namespace without touching /etc/subuid
UNCONFINED = ["--security-opt", "seccomp=unconfined"]
VARIANTS = {
    "default seccomp profile": [],
    "seccomp=unconfined": UNCONFINED,
    "default profile + no-new-privileges": ["--security-opt", "no-new-privileges"],
    "userns, seccomp=unconfined": [*UNCONFINED, *USERNS],
    "seccomp + userns": USERNS,
}


def _ms(samples: list[float]) -> str:
    samples = sorted(samples)
    p10, p90 = samples[len(samples) // 10], samples[(len(samples) * 9) // 10]
    return f"median {statistics.median(samples):7.2f} ms   p10 {p10:7.2f}   p90 {p90:7.2f}"


def time_runs(env: dict[str, str], runs: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(runs):
        for name, flags in VARIANTS.items():
            start = time.perf_counter()
            proc = subprocess.run([*FREIGHT, "run", "--rm", *flags, "busybox", "true"],
                                  env=env, capture_output=True)  # fmt: skip
            samples[name].append((time.perf_counter() - start) * 1000)
            if proc.returncode != 0:
                raise SystemExit(f"{name} failed: {proc.stderr.decode()}")
    return samples


def _timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _load_in_child(program: bytes) -> float:
    from freight.linux import seccomp

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        start = time.perf_counter()
        seccomp.load_bpf(program)
        os.write(write, str((time.perf_counter() - start) * 1000).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    value = float(os.read(read, 64))
    os.close(read)
    return value


def steps(runs: int) -> None:
    from freight.runtime import seccompspec
    from freight.services import seccompprofile, specgen

    profile = seccompprofile.default_profile()
    oci = seccompprofile.resolve(profile, specgen.DEFAULT_CAPS)
    f = seccompspec.to_filter(oci)
    assert f is not None
    print(
        f"  resolve profile (daemon)        {_ms(_timed(lambda: seccompprofile.resolve(profile, specgen.DEFAULT_CAPS), runs))}"
    )
    print(
        f"  convert to Filter (runtime)     {_ms(_timed(lambda: seccompspec.to_filter(oci), runs))}"
    )
    with tempfile.TemporaryDirectory() as d:
        misses = []
        for i in range(runs):
            start = time.perf_counter()
            seccompspec.program(f, Path(d) / str(i))
            misses.append((time.perf_counter() - start) * 1000)
        print(f"  compile with libseccomp (miss)  {_ms(misses)}")
        program = seccompspec.program(f, Path(d) / "0")
        print(
            f"  cached program (hit)            {_ms(_timed(lambda: seccompspec.program(f, Path(d) / '0'), runs))}"
        )
    print(
        f"  prctl(PR_SET_SECCOMP) in child  {_ms([_load_in_child(program) for _ in range(runs)])}"
    )
    print(f"  program size: {len(program)} bytes ({len(program) // 8} BPF instructions)")


def _unshare_in_child(m: object) -> float:
    """What the runtime's setup child does: unshare(CLONE_NEWUSER), ask, wait while the
    parent writes uid_map/gid_map, become root there (ms, measured in the child)."""
    from freight.linux import userns

    read, write = os.pipe()
    ask_r, ask_w = os.pipe()
    ack_r, ack_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        start = time.perf_counter()
        userns.unshare_user(lambda: (os.write(ask_w, b"?"), os.read(ack_r, 1)))
        os.write(write, str((time.perf_counter() - start) * 1000).encode())
        os._exit(0)
    os.read(ask_r, 1)
    userns.write_maps(pid, m)  # type: ignore[arg-type]
    os.write(ack_w, b"1")
    os.waitpid(pid, 0)
    value = float(os.read(read, 64))
    for fd in (read, write, ask_r, ask_w, ack_r, ack_w):
        os.close(fd)
    return value


def runtime_runs(runs: int) -> None:
    """`true` through the runtime alone (create, start, wait, delete), no CLI or daemon:
    the variants differ only in the spec, so the difference is the runtime's cost."""
    import json

    from runtime_fixtures import become_subreaper, make_bundle

    from freight.linux import idmap, syscalls, userns
    from freight.runtime.native import FreightRuntime
    from freight.services import seccompprofile, specgen

    become_subreaper()
    tmp = Path(tempfile.mkdtemp(prefix="freight-bench-rt-", dir="/tmp"))
    os.chmod(tmp, 0o711)  # the userns root must reach its rootfs
    rt = FreightRuntime(tmp / "state")
    ranges = (userns.IdRange(0, 100000, 65536),)
    m = userns.IdMap(ranges, ranges)
    ns_fd = userns.namespace_fd(m)
    profile = seccompprofile.container_seccomp(None, False, specgen.DEFAULT_CAPS)
    bundles: dict[str, tuple[Path, str]] = {}
    for name, seccomp, user in (
        ("neither", False, False),
        ("seccomp", True, False),
        ("userns", False, True),
        ("seccomp + userns", True, True),
    ):
        bundle, cid = make_bundle(tmp, ["true"])
        spec = json.loads((bundle / "config.json").read_text())
        spec["process"]["noNewPrivileges"] = False  # as docker run's default
        if seccomp:
            spec["linux"]["seccomp"] = profile
        if user:
            spec["linux"]["namespaces"].append({"type": "user"})
            spec["linux"].update(
                uidMappings=[{"containerID": 0, "hostID": 100000, "size": 65536}],
                gidMappings=[{"containerID": 0, "hostID": 100000, "size": 65536}],
            )
            (bundle / "rootfs").rename(bundle / "rootfs-src")
            (bundle / "rootfs").mkdir()
            idmap.idmapped_bind(str(bundle / "rootfs-src"), str(bundle / "rootfs"), ns_fd)
        (bundle / "config.json").write_text(json.dumps(spec))
        bundles[name] = (bundle, cid)
    samples: dict[str, list[float]] = {name: [] for name in bundles}
    try:
        for i in range(runs + 3):
            for name, (bundle, cid) in bundles.items():
                start = time.perf_counter()
                pid, _ = rt.create(cid, bundle, 0, 1, 2)
                rt.start(cid)
                os.waitpid(pid, 0)
                rt.delete(cid)
                if i >= 3:  # the first runs warm the caches
                    samples[name].append((time.perf_counter() - start) * 1000)
    finally:
        for bundle, _ in bundles.values():
            if (bundle / "rootfs-src").exists():
                syscalls.umount(str(bundle / "rootfs"), syscalls.MNT_DETACH)
        os.close(ns_fd)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"runtime alone: create+start+wait+delete of true ({runs} runs each, interleaved)")
    for name, values in samples.items():
        print(f"  {name:<36} {_ms(values)}")
    base = statistics.median(samples["neither"])
    for name in ("seccomp", "userns", "seccomp + userns"):
        print(f"  {name} adds (median): {statistics.median(samples[name]) - base:+.2f} ms")


def userns_steps(runs: int) -> None:
    from freight.linux import idmap, syscalls, userns

    ranges = (userns.IdRange(0, 100000, 65536),)
    m = userns.IdMap(ranges, ranges)

    def ns_fd() -> None:
        os.close(userns.namespace_fd(m))

    print(f"  user ns fd for the idmap (daemon) {_ms(_timed(ns_fd, runs))}")
    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "src", Path(d) / "dst"
        src.mkdir()
        dst.mkdir()
        fd = userns.namespace_fd(m)

        def bind() -> None:
            idmap.idmapped_bind(str(src), str(dst), fd)
            syscalls.umount(str(dst), syscalls.MNT_DETACH)

        print(f"  idmapped bind + detach (daemon)   {_ms(_timed(bind, runs))}")
        os.close(fd)
    print(f"  unshare + maps (setup child)      {_ms([_unshare_in_child(m) for _ in range(runs)])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    root = Path(f"/tmp/freight-bench-sec-{secrets.token_hex(4)}")
    root.mkdir()
    cgroup_parent = root.name
    d = start_daemon(root, cgroup_parent)
    try:
        boot = d.cli("image", "bootstrap", "busybox", timeout=120)
        if boot.returncode != 0:
            raise SystemExit(boot.stderr.decode())
        time_runs(d.env, 3)  # warm: page cache, the BPF cache, the forkserver
        results = time_runs(d.env, args.runs)
        print(f"freight run --rm busybox true ({args.runs} runs each, interleaved)")
        for name, samples in results.items():
            print(f"  {name:<36} {_ms(samples)}")
        base = statistics.median(results["seccomp=unconfined"])
        added = statistics.median(results["default seccomp profile"]) - base
        print(f"  seccomp adds (median difference): {added:+.2f} ms")
        userns_only = statistics.median(results["userns, seccomp=unconfined"]) - base
        print(f"  userns adds (median difference): {userns_only:+.2f} ms")
        both = statistics.median(results["seccomp + userns"]) - base
        print(f"  seccomp + userns add, vs neither: {both:+.2f} ms")
        print("steps of the default profile")
        steps(args.runs)
        print("steps of a user namespace")
        userns_steps(args.runs)
        runtime_runs(args.runs)
    finally:
        remove_all_containers(d)
        stop_daemon(d)
        cleanup_leftovers(root, cgroup_parent)


if __name__ == "__main__":
    main()
