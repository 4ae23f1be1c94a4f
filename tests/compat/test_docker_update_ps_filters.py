"""The real docker CLI (28.x) against freightd: `docker update`, `docker ps --filter`,
`docker container prune --filter`."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

MB = 1024 * 1024


def out(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")
    return result.stdout.decode()


def err(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout.decode(errors="replace")
    return result.stderr.decode(errors="replace")


@pytest.fixture
def tag(freightd):
    """A label value unique to this test; its containers are removed at the end."""
    value = os.urandom(4).hex()
    yield value
    ids = out(freightd.docker("ps", "-aq", "--filter", f"label=compat-run={value}")).split()
    if ids:
        freightd.docker("rm", "-f", *ids)


def test_docker_update_memory_and_restart_policy(freightd, tag) -> None:
    docker = freightd.docker
    name = f"upd-{tag}"
    cid = out(docker("run", "-d", "--name", name, "-l", f"compat-run={tag}", "-m", "64m",
                     "busybox", "sleep", "300")).strip()  # fmt: skip
    assert (
        out(docker("update", "--memory", "96m", "--restart", "unless-stopped", name)) == f"{name}\n"
    )
    [doc] = json.loads(out(docker("inspect", name)))
    assert doc["HostConfig"]["Memory"] == 96 * MB
    assert doc["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    inside = out(docker("exec", name, "sh", "-c",
                        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null"
                        " || cat /sys/fs/cgroup/memory.max"))  # fmt: skip
    assert int(inside) == 96 * MB

    message = err(docker("update", "--memory", "1g", name))
    assert message.strip() == (
        f"Error response from daemon: Cannot update container {cid}: Memory limit should be "
        "smaller than already set memoryswap limit, update the memoryswap at the same time"
    )
    ncpu = os.cpu_count() or 1
    assert (
        f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        in err(docker("update", "--cpus", str(ncpu + 1), name))
    )
    assert "No such container: ghost-" in err(docker("update", "-m", "32m", f"ghost-{tag}"))
    assert json.loads(out(docker("inspect", name)))[0]["HostConfig"]["Memory"] == 96 * MB


def test_docker_ps_filters(freightd, tag) -> None:
    docker = freightd.docker

    def run(name: str, *args: str) -> str:
        return out(docker("run", "-d", "--name", f"{name}-{tag}", "-l", f"compat-run={tag}", *args)).strip()  # fmt: skip

    first = run("one", "-l", "tier=front", "busybox", "sh", "-c", "exit 3")
    out(docker("wait", first))
    second = run("two", "-l", "tier=back", "-v", f"vol-{tag}:/data", "--expose", "7000",
                 "busybox", "sleep", "300")  # fmt: skip
    third = run("three", "-p", "127.0.0.1::8080", "busybox", "sleep", "300")

    def ps(*filters: str) -> list[str]:
        args = [a for f in filters for a in ("--filter", f)]
        return out(docker("ps", "-aq", "--no-trunc", "--filter", f"label=compat-run={tag}", *args)).split()  # fmt: skip

    assert ps() == [third, second, first]
    assert ps("exited=3") == [first]
    assert ps("status=exited") == [first]
    assert ps("status=running", "label=tier") == [second]
    assert ps("label=tier=front") == [first]
    assert ps(f"name=^/t.*-{tag}$") == [third, second]
    assert ps(f"id={second[:10]}") == [second]
    assert ps("ancestor=busybox") == [third, second, first]
    assert ps(f"before={second}") == [first]
    assert ps(f"since=one-{tag}") == [third, second]
    assert ps(f"volume=vol-{tag}") == [second]
    assert ps("volume=/data") == [second]
    assert ps("expose=7000/tcp") == [second]
    assert ps("expose=8080") == [third]
    port = json.loads(out(docker("inspect", third)))[0]["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]  # fmt: skip
    assert ps(f"publish={port}") == [third]
    assert ps("network=bridge") == [third, second, first]
    assert ps("health=none", "status=running") == [third, second]
    assert ps("is-task=false") == [third, second, first]
    assert ps("isolation=default") == [third, second, first]

    message = err(docker("ps", "--filter", "colour=red"))
    assert message.strip() == "Error response from daemon: invalid filter 'colour'"
    assert "invalid filter 'status=sleeping'" in err(docker("ps", "--filter", "status=sleeping"))
    out(docker("rm", "-f", second))
    out(docker("volume", "rm", f"vol-{tag}"))


def test_docker_container_prune_filters(freightd, tag) -> None:
    docker = freightd.docker
    ids = {}
    for name, label in (("keep", "keep=yes"), ("drop", "drop=yes"), ("old", "drop=yes")):
        ids[name] = out(docker("create", "--name", f"{name}-{tag}", "-l", f"compat-run={tag}",
                               "-l", label, "busybox", "true")).strip()  # fmt: skip
        if name == "drop":
            time.sleep(1.1)
    # until=1s: only what was created more than a second ago ("drop", "keep").
    found = out(docker("container", "prune", "-f", "--filter", f"label=compat-run={tag}",
                       "--filter", "label!=keep", "--filter", "until=1s"))  # fmt: skip
    assert ids["drop"] in found and ids["old"] not in found and ids["keep"] not in found
    left = out(docker("ps", "-aq", "--no-trunc", "--filter", f"label=compat-run={tag}")).split()
    assert sorted(left) == sorted([ids["keep"], ids["old"]])
    message = err(docker("container", "prune", "-f", "--filter", "status=exited"))
    assert "invalid filter 'status'" in message
    assert "failed to parse value as time or duration" in err(
        docker("container", "prune", "-f", "--filter", "until=soon")
    )
