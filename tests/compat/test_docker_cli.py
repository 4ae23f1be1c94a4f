"""The real docker CLI (28.x) driving freightd through a whole session:
run, ps, logs, inspect, stop, rm, images, history, tag, rmi, version, info.

tests/integration runs most single commands with both CLIs; this file walks
the workflow a user would, in order, and checks the output docker prints.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from collections.abc import Iterator

import pytest


def out(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.returncode, result.stderr.decode())
    return result.stdout.decode()


@pytest.fixture
def name(freightd) -> Iterator[str]:
    n = f"fx-compat-{secrets.token_hex(4)}"
    yield n
    freightd.docker("rm", "-f", n)


def test_container_workflow(freightd, name: str) -> None:
    docker = freightd.docker
    script = 'trap "echo stopping; exit 0" TERM; echo up; while true; do sleep 0.05; done'
    cid = out(
        docker("run", "-d", "--name", name, "-l", "suite=compat", "busybox", "sh", "-c", script)
    )
    cid = cid.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)

    rows = out(
        docker(
            "ps",
            "--filter",
            f"name={name}",
            "--format",
            "{{.ID}}|{{.Image}}|{{.Names}}|{{.Labels}}",
        )
    )
    assert rows == f"{cid[:12]}|busybox|{name}|suite=compat\n"

    deadline = time.monotonic() + 10
    while "up" not in docker("logs", name).stdout.decode():
        assert time.monotonic() < deadline
        time.sleep(0.05)

    [doc] = json.loads(out(docker("inspect", name)))
    assert doc["Id"] == cid and doc["Name"] == f"/{name}"
    assert doc["State"]["Running"] is True and doc["State"]["Pid"] > 0
    assert doc["Config"]["Labels"] == {"suite": "compat"}
    assert doc["HostConfig"]["NetworkMode"] in ("default", "none", "bridge", "host", "")

    assert out(docker("stop", name)) == f"{name}\n"
    assert out(docker("logs", name)) == "up\nstopping\n"
    assert (
        out(docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name)) == "exited 0\n"
    )
    status = out(docker("ps", "-a", "--filter", f"name={name}", "--format", "{{.Status}}"))
    assert re.fullmatch(r"Exited \(0\) .* ago\n", status), status

    assert out(docker("rm", name)) == f"{name}\n"
    assert out(docker("ps", "-a", "--filter", f"name={name}", "-q")) == ""


def test_run_attached_streams_and_exit_code(freightd) -> None:
    r = freightd.docker(
        "run", "--rm", "busybox", "sh", "-c", "echo to-out; echo to-err >&2; exit 9"
    )
    assert (r.returncode, r.stdout, r.stderr) == (9, b"to-out\n", b"to-err\n")


def test_image_workflow(freightd) -> None:
    docker = freightd.docker
    repo = f"fx-compat-{secrets.token_hex(4)}"
    busybox_id = out(docker("image", "inspect", "-f", "{{.Id}}", "busybox")).strip()
    out(docker("tag", "busybox", f"{repo}:v1"))
    try:
        listed = out(
            docker("images", "--no-trunc", "--format", "{{.Repository}} {{.Tag}} {{.ID}}", repo)
        )
        assert listed == f"{repo} v1 {busybox_id}\n"
        history = out(docker("history", "--format", "{{.ID}} {{.Size}}", f"{repo}:v1")).splitlines()
        assert history[0].startswith(busybox_id[7:19]) and history[1].startswith("<missing>")
        assert out(docker("image", "inspect", "-f", "{{.RepoTags}}", busybox_id)).strip() in (
            f"[busybox:latest {repo}:v1]",
            f"[{repo}:v1 busybox:latest]",
        )
    finally:
        assert out(docker("rmi", f"{repo}:v1")) == f"Untagged: {repo}:v1\n"
    assert out(docker("images", "-q", repo)) == ""


def test_version_and_info(freightd) -> None:
    version = json.loads(out(freightd.docker("version", "--format", "{{json .Server}}")))
    assert version["ApiVersion"] == "1.45"
    assert version["Os"] == "linux"
    info = json.loads(out(freightd.docker("info", "--format", "{{json .}}")))
    assert info["OSType"] == "linux"
    assert info["DockerRootDir"] == str(freightd.data_root)
    assert info["Images"] >= 1
    assert info["Swarm"]["LocalNodeState"] == "inactive"


def test_errors_as_docker_prints_them(freightd) -> None:
    r = freightd.docker("logs", "fx-no-such-container")
    assert r.returncode == 1
    assert (
        r.stderr.decode() == "Error response from daemon: No such container: fx-no-such-container\n"
    )
    r = freightd.docker("rmi", "fx-no-such-image:1")
    assert r.returncode == 1
    assert r.stderr.decode() == "Error response from daemon: No such image: fx-no-such-image:1\n"
