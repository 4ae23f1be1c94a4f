"""Fixtures for runtime and shim integration tests: busybox bundles and cleanup.

`make_bundle(tmp_path, args, ...)` writes a bundle whose config.json looks
like the one `docker run` produces (Docker's default mounts, masked and
read-only paths, the 14 default capabilities) around a rootfs holding a
static busybox, its applet symlinks and minimal /etc files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from freight.linux.capabilities import DOCKER_DEFAULT_CAPS
from freight.oci.runtime_spec import (
    Capabilities,
    Linux,
    Memory,
    Mount,
    Namespace,
    Process,
    Resources,
    Root,
    Spec,
    User,
)
from freight.runtime.api import Runtime

BUSYBOX = Path("/bin/busybox")

MASKED = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def skip_unless_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: namespaces, mounts and cgroups")
    if not BUSYBOX.exists():
        pytest.skip("needs a static /bin/busybox (apt install busybox-static)")


def make_rootfs(root: Path) -> None:
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True).stdout
    for name in applets.split():
        link = root / "bin" / name
        if not link.exists():
            link.symlink_to("busybox")
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    )
    (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (root / "etc/notexec").write_text("#!/bin/sh\n")


def default_mounts() -> list[Mount]:
    return [
        Mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        Mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        Mount(
            "/dev/pts",
            "devpts",
            "devpts",
            ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        Mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
        Mount(
            "/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime", "ro"]
        ),
        Mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        Mount(
            "/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
        ),
        Mount("/etc/hostname", "bind", "hostname", ["rbind", "rprivate"]),
    ]


def make_spec(args: list[str], container_id: str, **kw: object) -> Spec:
    caps = list(DOCKER_DEFAULT_CAPS)
    return Spec(
        process=Process(
            args=args,
            env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
            cwd=str(kw.get("cwd", "/")),
            user=User(uid=int(kw.get("uid", 0)), gid=int(kw.get("gid", 0))),  # type: ignore[arg-type]
            capabilities=Capabilities(caps, caps, caps, [], []),
            no_new_privileges=True,
        ),
        root=Root("rootfs", readonly=bool(kw.get("readonly", False))),
        hostname=str(kw.get("hostname", "box")),
        mounts=default_mounts(),
        linux=Linux(
            namespaces=[Namespace(t) for t in ("pid", "network", "ipc", "uts", "mount")],
            resources=Resources(
                memory=Memory(limit=kw.get("memory")) if kw.get("memory") else None,  # type: ignore[arg-type]
                pids_limit=kw.get("pids"),  # type: ignore[arg-type]
            ),
            cgroups_path=f"/freight-test/{container_id}",
            masked_paths=MASKED,
            readonly_paths=READONLY,
        ),
    )


def make_bundle(tmp: Path, args: list[str], **kw: object) -> tuple[Path, str]:
    """A fresh bundle dir and a unique container id for it."""
    container_id = "t" + uuid.uuid4().hex[:12]
    bundle = tmp / container_id
    make_rootfs(bundle / "rootfs")
    (bundle / "hostname").write_text(f"{kw.get('hostname', 'box')}\n")
    (bundle / "config.json").write_bytes(make_spec(args, container_id, **kw).to_json())
    return bundle, container_id


def cleanup_cgroups(container_id: str) -> None:
    """Remove leftovers of a failed test under every hierarchy (v1 and v2)."""
    root = Path("/sys/fs/cgroup")
    for path in [
        root / "freight-test" / container_id,
        *root.glob(f"*/freight-test/{container_id}"),
    ]:
        if path.is_dir():
            try:
                pids = (path / "cgroup.procs").read_text().split()
            except OSError:  # ENODEV/ENOENT: the runtime removed it meanwhile
                continue
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), 9)
            with contextlib.suppress(OSError):
                path.rmdir()


def exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def become_subreaper() -> None:
    """Orphaned container inits reparent to us, so tests can waitpid them like the shim does."""
    from freight.linux import syscalls

    syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)


class Harness:
    """Runs busybox containers through a Runtime and cleans up whatever a test left."""

    def __init__(self, rt: Runtime, tmp: Path) -> None:
        self.rt = rt
        self.tmp = tmp
        self.ids: list[str] = []

    def create(self, args: list[str], **kw: object) -> tuple[str, int, int]:
        """(id, init pid, read end of its stdout+stderr pipe), created but not started."""
        bundle, cid = make_bundle(self.tmp, args, **kw)
        self.ids.append(cid)
        r, w = os.pipe()
        devnull = os.open("/dev/null", os.O_RDONLY)
        try:
            pid, _ = self.rt.create(cid, bundle, devnull, w, w)
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
            os.close(devnull)
        return cid, pid, r

    def run(self, args: list[str], **kw: object) -> tuple[str, int]:
        """Run to completion: (combined output, Docker-style exit code)."""
        cid, pid, r = self.create(args, **kw)
        self.rt.start(cid)
        with os.fdopen(r, "rb") as f:
            out = f.read().decode()
        _, status = os.waitpid(pid, 0)
        self.rt.delete(cid)
        return out, exit_code(status)

    def cleanup(self) -> None:
        for cid in self.ids:
            with contextlib.suppress(Exception):  # already gone is fine
                self.rt.delete(cid, force=True)
            cleanup_cgroups(cid)
        while True:  # reap whatever reparented to us
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
