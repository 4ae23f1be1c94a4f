"""The real docker CLI (28.x) and docker-py against freightd: stats, top, pause/unpause, rename.

Checks the output docker prints from our answers (its own table code runs on
our JSON), so the shapes are what docker expects.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from collections.abc import Iterator

import docker
import pytest


def out(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.returncode, result.stderr.decode())
    return result.stdout.decode()


@pytest.fixture
def name(freightd) -> Iterator[str]:
    n = f"fx-obs-{secrets.token_hex(4)}"
    yield n
    freightd.docker("rm", "-f", n)
    freightd.docker("rm", "-f", n + "-renamed")


def test_docker_stats_no_stream(freightd, name: str) -> None:
    docker_cli = freightd.docker
    cid = out(docker_cli("run", "-d", "--name", name, "-m", "32m", "busybox", "sleep", "1000"))
    table = out(docker_cli("stats", "--no-stream", name))
    header, row = table.splitlines()
    assert header.split() == [
        "CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT",
        "MEM", "%", "NET", "I/O", "BLOCK", "I/O", "PIDS",
    ]  # fmt: skip
    assert re.fullmatch(
        rf"{cid[:12]} +{name} +\d+\.\d\d% +[\d.]+[KM]iB / 32MiB +\d+\.\d\d% +\S+ / \S+ +\S+ / \S+ +1",
        row,
    ), row
    fields = json.loads(out(docker_cli("stats", "--no-stream", "--format", "json", name)))
    assert fields["Name"] == name and fields["PIDs"] == "1"
    assert fields["MemUsage"].endswith(" / 32MiB")
    # Without names: the running containers.
    listed = out(docker_cli("stats", "--no-stream", "--format", "{{.Name}}"))
    assert name in listed.split()


def test_docker_top_pause_unpause_rename(freightd, name: str) -> None:
    docker_cli = freightd.docker
    cid = out(docker_cli("run", "-d", "--name", name, "busybox", "sleep", "1000")).strip()
    top = out(docker_cli("top", name))
    assert top.split("\n")[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert "sleep 1000" in top
    assert out(docker_cli("top", name, "-o", "pid,args")).splitlines()[1].split()[1:] == [
        "sleep",
        "1000",
    ]
    assert out(docker_cli("pause", name)) == f"{name}\n"
    assert "(Paused)" in out(docker_cli("ps", "--filter", f"name={name}"))
    assert out(docker_cli("inspect", "-f", "{{.State.Status}}", name)).strip() == "paused"
    refused = docker_cli("exec", name, "true")
    assert refused.returncode != 0
    assert f"Container {cid} is paused, unpause the container before exec" in (
        refused.stderr.decode()
    )
    assert out(docker_cli("unpause", name)) == f"{name}\n"
    out(docker_cli("rename", name, name + "-renamed"))
    assert out(docker_cli("inspect", "-f", "{{.Name}}", cid)).strip() == f"/{name}-renamed"
    same = docker_cli("rename", name + "-renamed", name + "-renamed")
    assert same.returncode == 1
    assert "Renaming a container with the same name as its current name" in same.stderr.decode()
    out(docker_cli("stop", "-t", "0", name + "-renamed"))
    stopped = docker_cli("top", name + "-renamed")
    assert f"Error response from daemon: Container {cid} is not running" in stopped.stderr.decode()


def test_docker_py_stats_top_pause(freightd, name: str) -> None:
    client = docker.DockerClient(base_url=freightd.host, timeout=60)
    try:
        c = client.containers.run("busybox", ["sleep", "1000"], name=name, detach=True)
        one = c.stats(stream=False)
        assert one["id"] == c.id and one["name"] == f"/{name}"
        assert one["precpu_stats"]["system_cpu_usage"] > 0  # two readings: precpu is filled
        assert one["memory_stats"]["usage"] > 0 and one["pids_stats"]["current"] == 1
        stream = c.stats(stream=True, decode=True)
        first, second = next(stream), next(stream)
        assert second["preread"] == first["read"]
        stream.close()
        top = c.top()
        assert top["Titles"][1] == "PID" and top["Processes"][0][-1] == "sleep 1000"
        c.pause()
        c.reload()
        assert c.status == "paused" and c.attrs["State"]["Paused"] is True
        c.unpause()
        c.rename(name + "-renamed")
        c.reload()
        assert c.name == name + "-renamed"
        c.kill()
        c.wait()
        with pytest.raises(docker.errors.APIError) as err:
            c.top()
        assert err.value.status_code == 409
    finally:
        client.close()
