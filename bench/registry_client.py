"""freight benchmark of the registry client: pull and push of a --size MB
image in --layers layers against a registry on 127.0.0.1: Debian's
docker-registry (CNCF distribution 2.8, the default) or freight's own
`freight registry serve` (--server freight).

    python bench/registry_client.py [--size 200] [--layers 5] [--server distribution|freight]

Starts its own registries and freightd on temp roots (like the tests),
writes the image straight into the registry over its HTTP API (random data,
gzip level 1, so the bytes on the wire are about --size MB), then times:

- `freight pull` of the absent image (download, verify, unpack)
- `freight pull` again, with the image present (target: under 100 ms)
- `freight push` of it to a fresh repository (every blob uploaded)
- `skopeo copy` of the same image to a dir (no unpacking), when installed

and prints seconds and MB/s (compressed bytes over wall time).
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

from imagefactory import Factory  # noqa: E402
from registry_fixtures import start_registry as start_distribution  # noqa: E402

from conftest import cleanup_leftovers, start_daemon, stop_daemon  # noqa: E402

sys.path.insert(0, str(REPO / "tests" / "integration" / "registry"))
from registryserver import start_registry as start_freight_registry  # noqa: E402

FREIGHT = [sys.executable, "-m", "freight.cli.main"]
MB = 1_000_000


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, stdin=subprocess.DEVNULL)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr.decode()}{proc.stdout.decode()}")
    return took


def layer_files(size: int, i: int) -> dict[str, bytes]:
    # Several files a layer, random (incompressible) data: wire bytes ~ size.
    per = size // 4
    return {f"data/l{i}/f{j}": secrets.token_bytes(per) for j in range(4)}


def wire_bytes(registry_root: Path, layer_digests: list[str]) -> int:
    """Compressed layer bytes: the size of each layer's blob file, whatever the layout."""
    wanted = {d.split(":", 1)[1] for d in layer_digests}
    sizes = {}
    for f in registry_root.rglob("*"):
        if f.is_file() and (f.name in wanted or f.parent.name in wanted):
            sizes[f.parent.name if f.parent.name in wanted else f.name] = f.stat().st_size
    return sum(sizes.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=200, help="image size in MB (default 200)")
    ap.add_argument("--layers", type=int, default=5, help="number of layers (default 5)")
    ap.add_argument(
        "--server",
        choices=("distribution", "freight"),
        default="distribution",
        help="registry server: Debian's docker-registry (default) or freight registry serve",
    )
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: freightd needs namespaces, overlayfs and cgroups")
    run_id = secrets.token_hex(4)
    root = Path(tempfile.mkdtemp(prefix=f"freight-bench-reg-{run_id}-"))
    cgroup_parent = f"freight-bench-{run_id}"
    start_registry = start_freight_registry if args.server == "freight" else start_distribution
    registry = start_registry(root / "registry")
    other = start_registry(root / "registry-push")
    third = start_registry(root / "registry-skopeo")
    (root / "freightd").mkdir()
    try:
        daemon = start_daemon(root / "freightd", cgroup_parent)
    except BaseException:
        for r in (registry, other, third):
            r.stop()
        raise
    env = {**daemon.env, "DOCKER_CONFIG": str(root / "docker-config")}
    try:
        fac = Factory(registry.host)
        repo = f"bench/{run_id}"
        layer_size = args.size * MB // args.layers
        layers = [(layer_files(layer_size, i), "gzip") for i in range(args.layers)]
        _, _, _, layer_digests = fac.image(repo, "v1", layers)
        fac.close()
        del layers
        wire = wire_bytes(root / "registry", layer_digests)
        ref = f"{registry.host}/{repo}:v1"
        rows = []
        t = timed([*FREIGHT, "pull", ref], env)
        rows.append(("freight pull (absent)", t, wire / MB / t))
        again = min(timed([*FREIGHT, "pull", ref], env) for _ in range(5))
        rows.append(("freight pull (present)", again, 0.0))
        # Push to a second, empty registry: every blob is uploaded (no mount).
        target = f"{other.host}/bench/push-{run_id}:v1"
        timed([*FREIGHT, "tag", ref, target], env)
        t = timed([*FREIGHT, "push", target], env)
        rows.append(("freight push (all blobs)", t, wire / MB / t))
        t = timed([*FREIGHT, "push", target], env)
        rows.append(("freight push (registry has all)", t, 0.0))
        if shutil.which("skopeo"):
            out = root / "skopeo-dir"
            t = timed(
                ["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"dir:{out}"], env
            )
            rows.append(("skopeo copy to dir (no unpack)", t, wire / MB / t))
            dest = f"docker://{third.host}/bench/skopeo-{run_id}:v1"
            t = timed(["skopeo", "copy", "--dest-tls-verify=false", f"dir:{out}", dest], env)
            rows.append(("skopeo copy from dir (push)", t, wire / MB / t))
        print(
            f"image: {args.layers} layers, {wire / MB:.0f} MB on the wire;"
            f" {args.server} registry at {registry.host}"
        )
        for name, seconds, rate in rows:
            speed = f"{rate:7.1f} MB/s" if rate else ""
            print(f"{name:34} {seconds * 1000:9.0f} ms  {speed}")
    finally:
        stop_daemon(daemon)
        cleanup_leftovers(root / "freightd", cgroup_parent)
        for r in (registry, other, third):
            r.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
