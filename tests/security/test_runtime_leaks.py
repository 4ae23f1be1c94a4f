"""What the runtime and the daemon leak into (or take from) a container: file
descriptors, /proc paths, the runtime's own /proc/<pid>/exe, and binaries of
the image run by the daemon. Each test states the attack and the safe outcome.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import time
from pathlib import Path

import pytest
from sec_images import Entry, import_image, output


@pytest.fixture
def names(freightd):
    made: list[str] = []
    yield made
    if made:
        freightd.cli("rm", "-f", *made)


def _fds(out: str) -> list[int]:
    return sorted(int(w) for w in out.split() if w.isdigit())


# Two commands: with one, busybox sh execs it and $$ would be ls itself (whose fd 3 is
# the directory it reads).
LIST_FDS = "ls /proc/$$/fd; true"


def test_run_sees_only_stdio_fds(freightd):
    """Attack: inherit a descriptor the daemon, shim or runtime held (a log file, the
    state dir, a cgroup dir, a socket) and reach the host through it (/proc/self/fd/N).
    Safe outcome: a container's first process has exactly fds 0, 1 and 2, with and
    without a terminal and with stdin attached."""
    for flags in ([], ["-t"], ["-i"]):
        result = freightd.cli("run", "--rm", *flags, "busybox", "sh", "-c", LIST_FDS)
        assert result.returncode == 0, output(result)
        assert _fds(result.stdout.decode()) == [0, 1, 2], (flags, output(result))


def test_exec_sees_only_stdio_fds(freightd, names):
    """Attack: as above, through `exec` (the exec path forks from the shim, which holds
    the container's log file and sockets). Safe outcome: fds 0-2 only."""
    name = f"secfd-{secrets.token_hex(3)}"
    names.append(name)
    assert freightd.cli("run", "-d", "--name", name, "busybox", "sleep", "300").returncode == 0
    for flags in ([], ["-t"], ["-i"]):
        result = freightd.cli("exec", *flags, name, "sh", "-c", LIST_FDS)
        assert result.returncode == 0, output(result)
        assert _fds(result.stdout.decode()) == [0, 1, 2], (flags, output(result))
    # Detached: the shell notes its pid (the redirect is undone after echo), and waits.
    result = freightd.cli("exec", "-d", name, "sh", "-c", "echo $$ > /tmp/pid; sleep 5; true")
    assert result.returncode == 0, output(result)
    script = "sleep 0.5; ls /proc/$(cat /tmp/pid)/fd"
    result = freightd.cli("exec", name, "sh", "-c", script)
    assert _fds(result.stdout.decode()) == [0, 1, 2], output(result)


def test_proc_paths_are_masked_and_read_only(freightd):
    """Attack: read host secrets and kernel state from /proc (kcore, keys, timer_list,
    sched_debug, /sys/firmware) and change the host through it (sysrq-trigger,
    /proc/sys); then undo the masking by unmounting or mounting a fresh proc. Safe
    outcome: masked files read empty, masked dirs list nothing, read-only paths refuse
    writes, unmount and mount fail. (Only paths this kernel has are tried.)"""
    masked = [p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug")
              if os.path.isfile(p)]  # fmt: skip
    writable = [p for p in ("/proc/sysrq-trigger", "/proc/sys/vm/drop_caches")
                if os.path.exists(p)]  # fmt: skip
    script = "; ".join(
        [f"echo {p}=$(cat {p} | wc -c)" for p in masked]
        + ["echo firmware=$(ls /sys/firmware | wc -l)"]
        # "h" only prints sysrq's help, "1" only drops clean caches: harmless if it got through
        + [
            f"echo {'h' if 'sysrq' in p else '1'} > {p} 2>/dev/null && echo WROTE-{p}"
            for p in writable
        ]
        + [
            "umount /proc/keys 2>/dev/null && echo UNMOUNTED",
            "mkdir -p /mnt/p && mount -t proc proc /mnt/p 2>/dev/null && echo MOUNTED",
            "grep -E ' /proc/(sys|sysrq-trigger|irq|bus) ' /proc/mounts",
        ]
    )
    result = freightd.cli("run", "--rm", "busybox", "sh", "-c", script)
    out = output(result)
    for p in masked:
        assert f"{p}=0" in out, out
    assert "firmware=0" in out, out
    for bad in ("WROTE-", "UNMOUNTED", "MOUNTED"):
        assert bad not in out, out
    ro_lines = [line for line in out.splitlines() if line.startswith("proc /proc/")]
    assert len(ro_lines) >= 2 and all(" ro," in line for line in ro_lines), out


def _nspid(host_pid: int) -> int:
    with open(f"/proc/{host_pid}/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    raise AssertionError("no NSpid")


@pytest.fixture
def harness(tmp_path):
    """The freight runtime on bundles (tests/integration/runtime_fixtures)."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "integration"))
    import runtime_fixtures

    from freight.runtime.api import open_runtime

    runtime_fixtures.become_subreaper()
    h = runtime_fixtures.Harness(open_runtime("freight", tmp_path / "state"), tmp_path)
    yield h, runtime_fixtures
    h.cleanup()


def test_runtime_exe_is_not_reachable_from_the_container(harness):
    """Attack (CVE-2019-5736 class): a container process opens /proc/<pid>/exe of a
    runtime process that entered its pid namespace but has not exec'd yet (it still runs
    the host's python) to overwrite the host's interpreter, or reads its fds and root.
    Here container B's init is created (blocked before its exec) in container A's pid
    namespace, and a process of A with Docker's default capabilities looks at it. Safe
    outcome: exe, root and fd of the waiting runtime are refused (it is non-dumpable);
    A's own pid 1 (after its exec) stays inspectable, so the probe can see."""
    from freight.linux.capabilities import DOCKER_DEFAULT_CAPS
    from freight.oci.runtime_spec import Capabilities, Namespace, Process, Spec

    h, fx = harness
    a, a_pid, r = h.create(["sleep", "100"])
    os.close(r)
    h.rt.start(a)
    bundle, b = fx.make_bundle(h.tmp, ["true"])
    spec = Spec.from_json((bundle / "config.json").read_bytes())
    assert spec.linux is not None
    spec.linux.namespaces = [
        Namespace("pid", f"/proc/{a_pid}/ns/pid") if ns.type == "pid" else ns
        for ns in spec.linux.namespaces
    ]
    (bundle / "config.json").write_bytes(spec.to_json())
    h.ids.append(b)
    null = os.open(os.devnull, os.O_RDWR)
    try:
        b_pid, _ = h.rt.create(b, bundle, null, null, null)
    finally:
        os.close(null)
    assert "python" in os.readlink(f"/proc/{b_pid}/exe")  # still the runtime, waiting
    pid = _nspid(b_pid)
    script = (
        f"readlink /proc/{pid}/exe && echo EXE-LINK; "
        f"cat /proc/{pid}/exe > /dev/null && echo EXE-READ; "
        f"ls /proc/{pid}/root/ > /dev/null && echo ROOT-LISTED; "
        f"for f in /proc/{pid}/fd/*; do readlink $f && echo FD-LINK; done; "
        "readlink /proc/1/exe"
    )
    caps = list(DOCKER_DEFAULT_CAPS)
    probe = Process(
        args=["sh", "-c", script],
        env=["PATH=/bin"],
        capabilities=Capabilities(caps, caps, caps, [], []),
    )
    rd, wr = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        probe_pid, _ = h.rt.exec(a, probe, null, wr, wr)
    finally:
        os.close(wr)
        os.close(null)
    with os.fdopen(rd, "rb") as f:
        out = f.read().decode()
    os.waitpid(probe_pid, 0)
    for leak in ("EXE-LINK", "EXE-READ", "ROOT-LISTED", "FD-LINK"):
        assert leak not in out, out
    assert "busybox" in out, out  # the control: A's pid 1 after exec is visible


def test_exec_runtime_exe_during_exec(freightd, names):
    """Attack: the same through `exec`: a watcher in the container scans /proc for a
    process whose exe is the host's python (the exec'ing runtime before its execve) while
    the host runs execs. Safe outcome: the watcher never resolves such an exe link."""
    name = f"secexe-{secrets.token_hex(3)}"
    names.append(name)
    assert freightd.cli("run", "-d", "--name", name, "busybox", "sleep", "300").returncode == 0
    watcher = (
        "end=$(($(date +%s) + 3)); while [ $(date +%s) -lt $end ]; do "
        "for p in /proc/[0-9]*; do l=$(readlink $p/exe 2>/dev/null); "
        'case "$l" in *python*) echo "LEAK $p $l" >> /tmp/leaks;; esac; done; done; '
        "touch /tmp/watch-done"
    )
    assert freightd.cli("exec", "-d", name, "sh", "-c", watcher).returncode == 0
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        freightd.cli("exec", name, "true")
    script = "while [ ! -e /tmp/watch-done ]; do sleep 0.2; done; cat /tmp/leaks 2>/dev/null"
    result = freightd.cli("exec", name, "sh", "-c", script)
    assert "LEAK" not in output(result), output(result)


def _trap(hostdir: str) -> bytes:
    # Run by anyone, anywhere (host, chroot, container), it leaves a file in hostdir,
    # which the container also sees (bind-mounted at the same path).
    return (
        f"#!/bin/busybox sh\n/bin/busybox touch {hostdir}/$(/bin/busybox basename $0)\n"
    ).encode()


TRAPPED = [
    "bin/sh", "bin/tar", "usr/bin/tar", "bin/ps", "usr/bin/getent", "usr/bin/id",
    "bin/cp", "usr/bin/xz", "bin/gzip", "usr/bin/gzip", "bin/ls", "usr/bin/find",
    "bin/su", "usr/bin/du", "bin/mount", "usr/bin/stat", "sbin/ldconfig", "usr/bin/zstd",
]  # fmt: skip


def test_daemon_never_runs_image_binaries(freightd, names, tmp_path):
    """Attack: an image whose tar, sh, ps, getent, id, cp, gzip, xz... are booby-trapped
    scripts, hoping the daemon runs one of them (as root, on the host) for cp, commit,
    export, diff, top, user lookup or a build. Safe outcome: after all of those, no trap
    ever ran (no marker in the host-visible directory)."""
    hostdir = f"/tmp/freight-trap-{secrets.token_hex(4)}"
    os.mkdir(hostdir)
    os.chmod(hostdir, 0o777)  # alice's traps must be able to leave their marker
    image = ""
    try:
        entries = [Entry("usr", "dir", mode=0o755), Entry("usr/bin", "dir", mode=0o755),
                   Entry("sbin", "dir", mode=0o755),
                   Entry("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"),
                   Entry("etc/group", data=b"root:x:0:\nalice:x:1000:\n")]  # fmt: skip
        entries += [Entry(p, data=_trap(hostdir), mode=0o755) for p in TRAPPED]
        image, out = import_image(freightd, entries)
        assert image, out
        name = f"sectrap-{secrets.token_hex(3)}"
        names.append(name)
        run = ["run", "-d", "--name", name, "-u", "alice", "-v", f"{hostdir}:{hostdir}"]
        result = freightd.cli(*run, image, "/bin/busybox", "sleep", "300")
        assert result.returncode == 0, output(result)
        (tmp_path / "f").write_text("x")
        steps = [
            ("cp", str(tmp_path / "f"), f"{name}:/tmp/"),
            ("cp", f"{name}:/etc/passwd", str(tmp_path / "out")),
            ("top", name),
            ("diff", name),
            ("exec", "-u", "alice", name, "/bin/busybox", "true"),
            ("export", "-o", str(tmp_path / "export.tar"), name),
            ("commit", name, f"{image}-committed"),
            ("logs", name),
        ]
        for step in steps:
            result = freightd.cli(*step)
            assert result.returncode == 0, (step, output(result))
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(f"FROM {image}\nUSER alice\nWORKDIR /w\nCOPY . /w/\n")
        result = freightd.cli("build", "-q", "-t", f"{image}-built", str(ctx), timeout=60)
        assert result.returncode == 0, output(result)
        assert os.listdir(hostdir) == [], f"the daemon ran image binaries: {os.listdir(hostdir)}"
        # The control: the same traps do fire when the container itself runs them.
        freightd.cli("exec", name, "/bin/tar")
        assert os.listdir(hostdir) == ["tar"]
    finally:
        if image:
            freightd.cli("rmi", "-f", f"{image}-committed", f"{image}-built")
        shutil.rmtree(hostdir, ignore_errors=True)
