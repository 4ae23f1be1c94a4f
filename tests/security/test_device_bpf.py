"""The cgroup v2 device filter, for real, on the host's empty cgroup2 tree.

This host is hybrid: its v1 devices controller guards the daemon's
containers, and /sys/fs/cgroup/unified is an empty cgroup2 hierarchy. The
tests make cgroups there, so the eBPF path the runtime takes on a pure v2
host runs against the real kernel: a program is loaded, attached, and a
process inside the cgroup opens device nodes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from freight.linux import devicebpf
from freight.oci.runtime_spec import Device, DeviceRule, Spec
from freight.runtime.native import FreightRuntime

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from runtime_fixtures import Harness, become_subreaper, make_bundle, skip_unless_root  # noqa: E402

UNIFIED = Path("/sys/fs/cgroup/unified")

DEFAULT_RULES = [
    DeviceRule(False, access="rwm"),
    DeviceRule(True, "c", None, None, "m"),
    DeviceRule(True, "b", None, None, "m"),
    *(DeviceRule(True, "c", ma, mi, "rwm") for ma, mi in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9))),
]


@pytest.fixture
def unified() -> Path:
    skip_unless_root()
    if not (UNIFIED / "cgroup.procs").exists():
        pytest.skip("needs a cgroup2 hierarchy at /sys/fs/cgroup/unified")
    return UNIFIED


@pytest.fixture
def cgroup(unified: Path) -> Iterator[Path]:
    path = unified / f"freight-devtest-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    yield path
    for pid in (path / "cgroup.procs").read_text().split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), 9)
    path.rmdir()


def _open_in(cgroup: Path, attempts: list[tuple[str, int]]) -> list[int]:
    """errno (0 for success) of each open, made by a child moved into `cgroup`."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))
            codes = []
            for path, flags in attempts:
                try:
                    os.close(os.open(path, flags))
                    codes.append(0)
                except OSError as e:
                    codes.append(e.errno or -1)
            os.write(w, " ".join(map(str, codes)).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return [int(x) for x in out.split()]


def test_filter_denies_nodes_outside_the_rules(cgroup: Path, tmp_path: Path) -> None:
    """Attack: a container with CAP_MKNOD makes a node for a device it was not given
    (kmsg, 1:11) and opens it. Safe outcome: the filter refuses the open with EPERM,
    while the allowed nodes and a read-only mapped one work as their rules say."""
    nodes = {"null": (1, 3), "zero": (1, 5), "kmsg": (1, 11)}
    for name, (major, minor) in nodes.items():
        os.mknod(tmp_path / name, 0o600 | 0o020000, os.makedev(major, minor))
    rules = [devicebpf.rule_of(r.allow, r.type, r.major, r.minor, r.access) for r in DEFAULT_RULES]
    rules.append(devicebpf.rule_of(False, "c", 1, 5, "w"))  # zero: read-only from here on
    devicebpf.apply(str(cgroup), rules)
    assert len(devicebpf.attached(str(cgroup))) == 1
    codes = _open_in(
        cgroup,
        [
            (str(tmp_path / "null"), os.O_RDWR),
            (str(tmp_path / "zero"), os.O_RDONLY),
            (str(tmp_path / "zero"), os.O_WRONLY),
            (str(tmp_path / "kmsg"), os.O_RDONLY),
        ],
    )
    assert codes == [0, 0, errno.EPERM, errno.EPERM]
    # Outside the cgroup nothing changed.
    os.close(os.open(tmp_path / "kmsg", os.O_RDONLY))


def test_mknod_follows_the_m_rule(cgroup: Path, tmp_path: Path) -> None:
    """Attack: mknod a block device for the host's disk. Safe outcome: without an 'm'
    rule for block devices, mknod fails with EPERM inside the cgroup."""
    rules = [devicebpf.rule_of(False, None, None, None, "rwm")]
    rules.append(devicebpf.rule_of(True, "c", None, None, "m"))
    devicebpf.apply(str(cgroup), rules)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        try:
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))
            os.mknod(tmp_path / "c", 0o600 | 0o020000, os.makedev(1, 3))
            try:
                os.mknod(tmp_path / "b", 0o600 | 0o060000, os.makedev(8, 0))
            except OSError as e:
                code = e.errno or -1
            os.write(w, str(code).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        assert int(f.read()) == errno.EPERM
    os.waitpid(pid, 0)
    assert (tmp_path / "c").exists() and not (tmp_path / "b").exists()


@pytest.fixture
def v2_runtime(unified: Path, tmp_path: Path) -> Iterator[Harness]:
    become_subreaper()
    harness = Harness(FreightRuntime(tmp_path / "state", cgroup_root=unified), tmp_path)
    yield harness
    harness.cleanup()
    with contextlib.suppress(OSError):
        (unified / "freight-test").rmdir()


def _with_devices(bundle: Path) -> None:
    """Docker's default rules, and a /dev/kmsg node in the container with no rule for it."""
    spec = Spec.from_json((bundle / "config.json").read_bytes())
    assert spec.linux is not None and spec.linux.resources is not None
    spec.linux.resources.devices = list(DEFAULT_RULES)
    spec.linux.devices = [Device("/dev/kmsg", "c", 1, 11, 0o644, 0, 0)]
    (bundle / "config.json").write_bytes(spec.to_json())


def test_runtime_attaches_the_filter_on_cgroup2(v2_runtime: Harness) -> None:
    """Attack: read the kernel log through a node present in the container's /dev.
    Safe outcome: the runtime, on a cgroup2 root, attached the device program to the
    container's cgroup, so the read fails with EPERM while /dev/zero works."""
    script = "head -c 3 /dev/zero | wc -c; cat /dev/kmsg 2>&1 | head -1"
    bundle, cid = make_bundle(v2_runtime.tmp, ["sh", "-c", script])
    _with_devices(bundle)
    v2_runtime.ids.append(cid)
    r, w = os.pipe()
    with open(os.devnull) as devnull:
        pid, _ = v2_runtime.rt.create(cid, bundle, devnull.fileno(), w, w)
    os.close(w)
    cgroup_dir = UNIFIED / "freight-test" / cid
    assert len(devicebpf.attached(str(cgroup_dir))) == 1
    v2_runtime.rt.start(cid)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    v2_runtime.rt.delete(cid)
    lines = out.splitlines()
    assert lines[0].strip() == "3", out
    assert "Operation not permitted" in lines[1], out
    assert not cgroup_dir.exists()
