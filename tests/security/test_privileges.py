"""Privilege options from inside containers: no-new-privileges, --privileged, devices and the
device cgroup, groups, sysctls, ulimits, OOM score, /dev/shm and the namespace modes.

Each test states the attack (or the misuse) and the safe outcome it checks.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile

import pytest


def _run(freightd, *args: str) -> tuple[int, str]:
    result = freightd.cli("run", "--rm", *args)
    return result.returncode, (result.stdout + result.stderr).decode()


def _ids(freightd) -> bytes:
    return freightd.cli("ps", "-aq").stdout


# A 136-byte static x86_64 program: exit(geteuid() & 0xff). busybox is no probe here: it
# drops setuid privileges itself for applets that do not need them.
_EUID_CODE = bytes.fromhex("b86b0000000f0589c7b83c0000000f05")


def _euid_elf() -> bytes:
    base, entry = 0x400000, 0x400000 + 120
    ehdr = (
        b"\x7fELF\x02\x01\x01"
        + b"\0" * 9
        + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, entry, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    )
    size = 120 + len(_EUID_CODE)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return ehdr + phdr + _EUID_CODE


@pytest.fixture
def setuid_probe():
    """A directory holding `euid`, setuid root, to bind into containers."""
    if os.uname().machine != "x86_64":
        pytest.skip("the probe program is x86_64 code")
    d = tempfile.mkdtemp(prefix="freight-suid-", dir="/tmp")
    os.chmod(d, 0o755)
    path = os.path.join(d, "euid")
    with open(path, "wb") as f:
        f.write(_euid_elf())
    os.chmod(path, 0o4755)
    yield d
    shutil.rmtree(d)


def test_no_new_privileges_stops_setuid(freightd, setuid_probe):
    """Attack: an unprivileged process runs a setuid-root binary to become root.
    Safe outcome: with no-new-privileges the setuid bit is ignored (the probe's effective
    uid stays nobody's, 65534 & 0xff = 254; NoNewPrivs: 1); without it (the control) the
    same binary runs with euid 0."""
    script = (
        "su -s /bin/sh nobody -c '/probe/euid; echo euid=$?'; grep NoNewPrivs /proc/self/status"
    )
    volume = f"{setuid_probe}:/probe"
    code, out = _run(freightd, "-v", volume, "busybox", "sh", "-c", script)
    assert code == 0, out
    assert "euid=0" in out and "NoNewPrivs:\t0" in out, out
    code, out = _run(
        freightd, "--security-opt", "no-new-privileges", "-v", volume, "busybox", "sh", "-c", script
    )
    assert code == 0, out
    assert "euid=254" in out and "NoNewPrivs:\t1" in out, out


def _host_bounding() -> str:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return line.split()[1]
    raise AssertionError("no CapBnd")


def test_privileged_gets_what_the_host_allows(freightd):
    """Misuse: --privileged on a host whose bounding set lacks CAP_SYS_RESOURCE (dockerd
    20.10 fails to start such containers). Safe outcome: the container starts with exactly
    the host's bounding set, no seccomp, /proc unmasked and writable, /sys writable and
    the host's device nodes."""
    script = (
        "grep -E '^(CapEff|Seccomp):' /proc/self/status; grep -c ' /proc/' /proc/mounts; "
        "grep ' /sys sysfs ' /proc/mounts; ls /dev | wc -l"
    )
    code, out = _run(freightd, "--privileged", "busybox", "sh", "-c", script)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == f"CapEff:\t{_host_bounding()}"
    assert lines[1] == "Seccomp:\t0"
    assert lines[2] == "0"  # no masked or read-only /proc paths mounted over
    assert " rw," in lines[3]
    assert int(lines[4]) > 20  # the host's devices, not just the default six


def test_default_device_cgroup_denies_made_nodes(freightd):
    """Attack: a root process with CAP_MKNOD makes /dev/mem's node (c 1:1) or a disk's and
    reads host memory or disks through it. Safe outcome: mknod succeeds (allowed as in
    Docker) but opening the node fails with EPERM from the device cgroup."""
    code, out = _run(
        freightd, "busybox", "sh", "-c", "mknod /tmp/mem c 1 1 && head -c1 /tmp/mem; echo rc=$?"
    )
    assert "Operation not permitted" in out and "rc=1" in out, out


def test_device_with_permissions(freightd):
    """Attack: write to a device mapped read-only. Safe outcome: --device
    /dev/loop-control:/dev/myloop:r gives a node at the new path that opens for reading,
    while opening it for writing fails with EPERM (the devices controller holds 'r')."""
    script = "exec 3</dev/myloop && echo read-ok; exec 4>/dev/myloop && echo write-ok"
    code, out = _run(
        freightd, "--device", "/dev/loop-control:/dev/myloop:r", "busybox", "sh", "-c", script
    )
    assert "read-ok" in out, out
    assert "write-ok" not in out and "Operation not permitted" in out, out


def test_bad_devices_are_rejected(freightd):
    """Misuse: a device path that is missing or not a device. Safe outcome: create fails
    naming the device; nothing is created."""
    before = _ids(freightd)
    code, out = _run(freightd, "--device", "/dev/nonexistent", "busybox", "true")
    assert code != 0 and "/dev/nonexistent" in out and "no such file" in out.lower(), out
    code, out = _run(freightd, "--device", "/etc/hostname", "busybox", "true")
    assert code != 0 and "not a device node" in out, out
    code, out = _run(freightd, "--device", "relative", "busybox", "true")
    assert code != 0 and "bad format for path: relative" in out, out
    assert _ids(freightd) == before


def test_group_add(freightd):
    """Misuse: none; --group-add gives the process extra groups. Safe outcome: the
    numeric groups are the process's supplementary groups, an unknown name is refused."""
    code, out = _run(freightd, "--group-add", "1234", "--group-add", "99", "busybox", "id", "-G")
    assert code == 0, out
    assert {"1234", "99"} <= set(out.split())
    code, out = _run(freightd, "--group-add", "nosuchgroup", "busybox", "true")
    assert code != 0 and "nosuchgroup" in out, out


def test_namespaced_sysctls_only(freightd):
    """Attack: set a host-wide sysctl (kernel.hostname, vm.*) from a container.
    Safe outcome: only namespaced ones are accepted (net.*, kernel.shm*, …) and applied
    inside; others are refused with docker's message, by the CLI and by the API."""
    code, out = _run(
        freightd, "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmax=123456",
        "busybox", "cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/shmmax",
    )  # fmt: skip
    assert code == 0, out
    assert out.split() == ["1", "123456"]
    code, out = _run(freightd, "--sysctl", "kernel.hostname=evil", "busybox", "true")
    assert code != 0
    assert "sysctl 'kernel.hostname=evil' is not allowed" in out
    body = {"Image": "busybox", "HostConfig": {"Sysctls": {"vm.swappiness": "1"}}}
    answer = _api(freightd, "POST", "/containers/create", body)
    assert "sysctl 'vm.swappiness=1' is not allowed" in answer, answer


def _api(freightd, method: str, path: str, body: dict) -> str:
    sock = freightd.host.removeprefix("unix://")
    result = subprocess.run(
        ["curl", "-s", "--unix-socket", sock, "-X", method, "-H", "Content-Type: application/json",
         "-d", json.dumps(body), f"http://localhost/v1.45{path}"],
        capture_output=True, timeout=30,
    )  # fmt: skip
    return result.stdout.decode()


def test_ulimits(freightd):
    """Misuse: none; --ulimit sets the process's rlimits. Safe outcome: soft and hard
    limits as given; a soft limit above the hard one or an unknown name is refused."""
    code, out = _run(
        freightd, "--ulimit", "nofile=100:200", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn"
    )
    assert code == 0, out
    assert out.split() == ["100", "200"]
    code, out = _run(freightd, "--ulimit", "nofile=300:200", "busybox", "true")
    assert code != 0 and "soft limit must be less than or equal to hard limit" in out
    code, out = _run(freightd, "--ulimit", "bogus=1", "busybox", "true")
    assert code != 0 and "invalid ulimit type: bogus" in out


def test_oom_score_adj(freightd):
    """Misuse: an out-of-range score. Safe outcome: 500 is applied inside; -2000 is refused
    with docker's message."""
    code, out = _run(
        freightd, "--oom-score-adj", "500", "busybox", "cat", "/proc/self/oom_score_adj"
    )
    assert code == 0 and out.strip() == "500", out
    code, out = _run(freightd, "--oom-score-adj", "-2000", "busybox", "true")
    assert code != 0 and "range for oom score adj is [-1000, 1000]" in out, out


def test_shm_size(freightd):
    """Misuse: none; --shm-size sizes the container's /dev/shm. Safe outcome: a 2 MiB
    tmpfs (df shows 2048 1K-blocks)."""
    code, out = _run(freightd, "--shm-size", "2m", "busybox", "df", "-k", "/dev/shm")
    assert code == 0, out
    assert out.splitlines()[1].split()[1] == "2048", out


def _ns(kind: str) -> str:
    return os.readlink(f"/proc/self/ns/{kind}")


def test_host_namespaces(freightd):
    """Misuse: none; --ipc/--pid/--uts host share the host's. Safe outcome: the process
    sees the host's ipc, pid and uts namespaces and hostname; private ones differ."""
    script = "for n in ipc pid uts; do readlink /proc/self/ns/$n; done; hostname"
    code, out = _run(
        freightd, "--ipc", "host", "--pid", "host", "--uts", "host", "busybox", "sh", "-c", script
    )
    assert code == 0, out
    assert out.split() == [_ns("ipc"), _ns("pid"), _ns("uts"), os.uname().nodename]
    code, out = _run(freightd, "busybox", "sh", "-c", script)
    assert code == 0, out
    assert not set(out.split()[:3]) & {_ns("ipc"), _ns("pid"), _ns("uts")}


def test_uts_host_conflicts_with_hostname(freightd):
    """Misuse: --uts host with -h would rename the host. Safe outcome: refused."""
    code, out = _run(freightd, "--uts", "host", "-h", "renamed", "busybox", "true")
    assert code != 0 and "Conflicting options: hostname and the UTS mode" in out, out


def test_cgroupns(freightd):
    """Misuse: none; --cgroupns private gives a cgroup namespace of its own.
    Safe outcome: private differs from the host's, host equals it."""
    code, out = _run(
        freightd, "--cgroupns", "private", "busybox", "readlink", "/proc/self/ns/cgroup"
    )
    assert code == 0 and out.strip() != _ns("cgroup"), out
    code, out = _run(freightd, "--cgroupns", "host", "busybox", "readlink", "/proc/self/ns/cgroup")
    assert code == 0 and out.strip() == _ns("cgroup"), out


@pytest.fixture
def donor(freightd):
    name = f"donor-{os.urandom(3).hex()}"
    started = freightd.cli(
        "run", "-d", "--name", name, "--ipc", "shareable", "busybox", "sleep", "60"
    )
    assert started.returncode == 0, started.stderr.decode()
    yield name
    freightd.cli("rm", "-f", name)


def test_join_another_containers_ipc_and_pid(freightd, donor):
    """Misuse: none; --ipc/--pid container:X join X's namespaces. Safe outcome: the same
    ipc and pid namespaces as the donor (its sleep is visible), and joining the IPC of
    a non-shareable container is refused with docker's hint."""
    inspect = freightd.cli(
        "exec", donor, "sh", "-c", "readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid"
    )
    want = inspect.stdout.decode().split()
    script = "readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid; ps -o comm | grep -c sleep"
    code, out = _run(
        freightd, "--ipc", f"container:{donor}", "--pid", f"container:{donor}",
        "busybox", "sh", "-c", script,
    )  # fmt: skip
    assert code == 0, out
    assert out.split() == [*want, "1"]
    other = f"plain-{os.urandom(3).hex()}"
    assert freightd.cli("run", "-d", "--name", other, "busybox", "sleep", "60").returncode == 0
    try:
        code, out = _run(freightd, "--ipc", f"container:{other}", "busybox", "true")
        assert code != 0 and "non-shareable IPC" in out, out
    finally:
        freightd.cli("rm", "-f", other)


def test_invalid_modes_are_rejected(freightd):
    """Misuse: typos in namespace modes. Safe outcome: docker's messages, nothing created."""
    before = _ids(freightd)
    for flag, message in (
        ("--ipc", "--ipc: invalid IPC mode"),
        ("--pid", "--pid: invalid PID mode"),
        ("--uts", "--uts: invalid UTS mode"),
        ("--cgroupns", "--cgroupns: invalid CGROUP mode"),
    ):
        code, out = _run(freightd, flag, "bogus", "busybox", "true")
        assert code != 0 and message in out, out
    answer = _api(
        freightd,
        "POST",
        "/containers/create",
        {"Image": "busybox", "HostConfig": {"IpcMode": "bogus"}},
    )
    assert "invalid IPC mode: bogus" in answer, answer
    code, out = _run(freightd, "--security-opt", "bogus=1", "busybox", "true")
    assert code != 0 and 'invalid --security-opt 2: "bogus=1"' in out, out
    assert _ids(freightd) == before
