"""`freight update` end to end, as root: limits changed live and seen from inside,
refusals that change nothing, published ports moved and mounts added/removed on
running and stopped containers (the same container: id and writable layer kept)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

MB = 1024 * 1024


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")
    return result.stdout.decode()


def fails(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout.decode(errors="replace")
    return result.stderr.decode(errors="replace")


def inspect(d, ref: str) -> dict:
    return json.loads(ok(d.cli("container", "inspect", ref)))[0]


def http_get(url: str, timeout: float = 8) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                return ""
            time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def inside_memory_limit(d, name: str) -> int:
    """The memory limit the container sees in its own cgroup (v1 or v2)."""
    script = (
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null"
        " || cat /sys/fs/cgroup/memory.max"
    )
    return int(ok(d.cli("exec", name, "sh", "-c", script)).split()[0])


@pytest.fixture
def names(freightd):
    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}-{os.urandom(3).hex()}"
        made.append(name)
        return name

    yield make
    if made:
        freightd.cli("rm", "-f", *made)


def test_memory_raised_live_is_seen_inside_and_survives_a_restart(freightd, names) -> None:
    d, name = freightd, names("mem")
    ok(d.cli("run", "-d", "--name", name, "-m", "64m", "busybox", "sleep", "300"))
    assert inside_memory_limit(d, name) == 64 * MB
    out = ok(d.cli("update", "-m", "96m", "--pids-limit", "50", "--cpu-shares", "512", name))
    assert out == f"{name}\n"
    assert inside_memory_limit(d, name) == 96 * MB
    host = inspect(d, name)["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["PidsLimit"]) == (96 * MB, 128 * MB, 50)
    assert host["CpuShares"] == 512
    ok(d.cli("restart", "-t", "0", name))
    assert inside_memory_limit(d, name) == 96 * MB


def test_a_first_memory_limit_on_an_unlimited_container(freightd, names) -> None:
    """dockerd refuses `update -m` on a container started without a limit (it compares with
    a swap limit of 0); freight gives it the limit, and swap as `run -m` would."""
    d, name = freightd, names("first")
    ok(d.cli("run", "-d", "--name", name, "busybox", "sleep", "300"))
    ok(d.cli("update", "-m", "48m", name))
    assert inside_memory_limit(d, name) == 48 * MB
    host = inspect(d, name)["HostConfig"]
    assert (host["Memory"], host["MemorySwap"]) == (48 * MB, 96 * MB)


def test_refusals_use_dockers_words_and_change_nothing(freightd, names) -> None:
    d, name = freightd, names("refuse")
    cid = ok(d.cli("run", "-d", "--name", name, "-m", "64m", "busybox", "sleep", "300")).strip()
    err = fails(d.cli("update", "-m", "200m", name))
    assert (
        f"Error response from daemon: Cannot update container {cid}: Memory limit should be "
        "smaller than already set memoryswap limit, update the memoryswap at the same time"
    ) in err
    err = fails(d.cli("update", "--cpus", "3", name))
    assert "Range of CPUs is from 0.01 to" in err and "CPUs available" in err
    err = fails(d.cli("update", "--cpuset-cpus", "0-63", name))
    assert "Requested CPUs are not available - requested 0-63" in err
    err = fails(d.cli("update", "-m", "32m", "nope-" + os.urandom(2).hex()))
    assert "No such container: nope-" in err
    assert "you must provide one or more flags" in fails(d.cli("update", name))
    assert inspect(d, name)["HostConfig"]["Memory"] == 64 * MB
    assert inside_memory_limit(d, name) == 64 * MB


def test_a_limit_below_usage_is_refused_and_rolled_back(freightd, names) -> None:
    d, name = freightd, names("busy")
    # 40 MiB in the container's tmpfs: charged to its memory cgroup, and no swap to go to.
    script = "dd if=/dev/zero of=/dev/shm/fill bs=1M count=40 2>/dev/null; sleep 300"
    cid = ok(d.cli("run", "-d", "--name", name, "-m", "96m", "--shm-size", "64m",
                   "busybox", "sh", "-c", script)).strip()  # fmt: skip
    ok(d.cli("update", "--cpu-shares", "700", name))
    deadline = time.monotonic() + 10
    while "fill" not in d.cli("exec", name, "ls", "/dev/shm").stdout.decode():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.5)
    err = fails(d.cli("update", "--cpu-shares", "300", "-m", "16m", "--memory-swap", "16m", name))
    assert f"Cannot update container {cid}: unable to set memory limit to" in err
    assert "current usage:" in err
    assert inside_memory_limit(d, name) == 96 * MB
    host = inspect(d, name)["HostConfig"]
    assert (host["Memory"], host["CpuShares"]) == (96 * MB, 700)
    shares = ok(d.cli("exec", name, "sh", "-c",
                      "cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu.weight"))  # fmt: skip
    assert shares.strip() in ("700", str(1 + (700 - 2) * 9999 // 262142))


def test_restart_policy_and_stopped_container_limits(freightd, names) -> None:
    d, name = freightd, names("stopped")
    ok(d.cli("create", "--name", name, "busybox", "sleep", "300"))
    ok(d.cli("update", "--restart", "on-failure:3", "-m", "48m", "--memory-swap", "96m", name))
    host = inspect(d, name)["HostConfig"]
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["Memory"] == 48 * MB
    ok(d.cli("start", name))
    assert inside_memory_limit(d, name) == 48 * MB
    err = fails(d.cli("update", "--restart", "sometimes", name))
    assert "invalid restart policy: unknown policy 'sometimes'" in err


def test_update_publish_moves_a_port_of_a_running_container(freightd, names) -> None:
    d, name = freightd, names("web")
    script = "echo moved > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"
    first = free_port()
    cid = ok(d.cli("run", "-d", "--name", name, "-p", f"127.0.0.1:{first}:8080",
                   "busybox", "sh", "-c", script)).strip()  # fmt: skip
    assert http_get(f"http://127.0.0.1:{first}/index.html").strip() == "moved"
    second = free_port()
    assert ok(d.cli("update", "--publish", f"127.0.0.1:{second}:8080", name)) == f"{name}\n"
    assert http_get(f"http://127.0.0.1:{second}/index.html").strip() == "moved"
    assert http_get(f"http://127.0.0.1:{first}/index.html", timeout=1) == ""
    c = inspect(d, name)
    assert c["Id"] == cid
    assert c["HostConfig"]["PortBindings"]["8080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(second)}]  # fmt: skip
    assert c["NetworkSettings"]["Ports"]["8080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(second)}]  # fmt: skip
    assert ok(d.cli("port", name, "8080")).strip() == f"127.0.0.1:{second}"
    row = ok(d.cli("ps", "--filter", f"name={name}", "--format", "{{.Ports}}"))
    assert f"127.0.0.1:{second}->8080/tcp" in row
    assert ok(d.cli("ps", "-q", "--filter", f"publish={second}")).strip() == cid[:12]

    # A host port someone else holds: a clear error, and the old mapping still serves.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        err = fails(d.cli("update", "--publish", f"127.0.0.1:{busy}:8080", name))
        assert f"127.0.0.1:{busy}" in err and "address already in use" in err
    assert http_get(f"http://127.0.0.1:{second}/index.html").strip() == "moved"
    assert inspect(d, name)["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostPort"] == str(second)

    ok(d.cli("update", "--publish-rm", "8080", name))
    assert http_get(f"http://127.0.0.1:{second}/index.html", timeout=1) == ""
    assert ok(d.cli("port", name)).strip() == ""


def test_update_publish_on_a_stopped_container_applies_at_start(freightd, names) -> None:
    d, name = freightd, names("later")
    script = "echo later > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"
    ok(d.cli("create", "--name", name, "busybox", "sh", "-c", script))
    port = free_port()
    ok(d.cli("update", "-p", f"127.0.0.1:{port}:8080", name))
    ok(d.cli("start", name))
    assert http_get(f"http://127.0.0.1:{port}/index.html").strip() == "later"


def test_mounts_added_and_removed_live_and_at_the_next_start(freightd, names, tmp_path) -> None:
    d, name = freightd, names("mnt")
    src = tmp_path / "shared"
    src.mkdir()
    (src / "hello.txt").write_text("from the host\n")
    ok(d.cli("run", "-d", "--name", name, "busybox", "sh", "-c",
             "echo kept > /layer.txt; exec sleep 300"))  # fmt: skip
    ok(d.cli("update", "-v", f"{src}:/data:ro", name))
    assert ok(d.cli("exec", name, "cat", "/data/hello.txt")) == "from the host\n"
    assert "Read-only file system" in fails(d.cli("exec", name, "touch", "/data/x"))
    mounts = inspect(d, name)["Mounts"]
    assert [(m["Source"], m["Destination"], m["RW"]) for m in mounts] == [
        (str(src), "/data", False)
    ]
    assert inspect(d, name)["HostConfig"]["Binds"] == [f"{src}:/data:ro"]

    ok(d.cli("update", "--mount-rm", "/data",
             "--mount", f"type=bind,src={src},dst=/other", name))  # fmt: skip
    assert fails(d.cli("exec", name, "cat", "/data/hello.txt"))
    ok(d.cli("exec", name, "sh", "-c", "echo written > /other/back.txt"))
    assert (src / "back.txt").read_text() == "written\n"
    assert ok(d.cli("exec", name, "cat", "/layer.txt")) == "kept\n"  # same writable layer

    err = fails(d.cli("update", "--mount", "type=tmpfs,dst=/scratch", name))
    assert "stop the container first" in err
    assert [m["Destination"] for m in inspect(d, name)["Mounts"]] == ["/other"]
    assert "no mount at /nothing" in fails(d.cli("update", "--mount-rm", "/nothing", name))

    ok(d.cli("stop", "-t", "0", name))
    ok(d.cli("update", "--mount-rm", "/other", "--mount", "type=tmpfs,dst=/scratch", name))
    ok(d.cli("start", name))
    assert "tmpfs" in ok(d.cli("exec", name, "sh", "-c", "grep ' /scratch ' /proc/mounts"))
    assert fails(d.cli("exec", name, "ls", "/other/back.txt"))
    assert ok(d.cli("exec", name, "cat", "/layer.txt")) == "kept\n"


def test_update_event_and_api(freightd, names) -> None:
    d, name = freightd, names("evt")
    ok(d.cli("run", "-d", "--name", name, "busybox", "sleep", "300"))
    since = str(time.time() - 1)
    ok(d.cli("update", "--cpu-shares", "256", name))
    until = str(time.time() + 1)
    events = ok(d.cli("events", "--since", since, "--until", until, "--filter", "event=update",
                      "--filter", f"container={name}", "--format", "{{.Action}} {{.Actor.Attributes.name}}"))  # fmt: skip
    assert events.strip().splitlines() == [f"update {name}"]
    path = Path(d.host.removeprefix("unix://"))
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
        body = json.dumps({"PidsLimit": 77}).encode()
        s.sendall(
            f"POST /v1.45/containers/{name}/update HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.split(b"\r\n\r\n", 1)[1].strip().endswith(b'{"Warnings":[]}')
    assert inspect(d, name)["HostConfig"]["PidsLimit"] == 77


def test_cpuset_cpu_quota_and_blkio_weight_live_and_after_restart(freightd, names) -> None:
    d, name = freightd, names("cpu")
    ok(d.cli("run", "-d", "--name", name, "busybox", "sleep", "300"))
    ok(d.cli("update", "--cpuset-cpus", "0", "--cpus", "0.5", "--blkio-weight", "300", name))

    def seen() -> tuple[str, str, str]:
        script = (
            "cat /sys/fs/cgroup/cpuset/cpuset.cpus 2>/dev/null || cat /sys/fs/cgroup/cpuset.cpus;"
            "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max;"
            "cat /sys/fs/cgroup/blkio/blkio.bfq.weight 2>/dev/null"
            " || cat /sys/fs/cgroup/blkio/blkio.weight 2>/dev/null || cat /sys/fs/cgroup/io.weight"
        )
        lines = ok(d.cli("exec", name, "sh", "-c", script)).splitlines()
        return lines[0].strip(), lines[1].split()[0], lines[-1].split()[-1]

    assert seen() == ("0", "50000", "300")
    host = inspect(d, name)["HostConfig"]
    assert (host["CpusetCpus"], host["NanoCpus"], host["BlkioWeight"]) == ("0", 500_000_000, 300)
    ok(d.cli("restart", "-t", "0", name))  # the spec carries them at the next start
    assert seen() == ("0", "50000", "300")
