"""The real docker CLI and docker-py against freightd: commit, diff, save, load,
history, image prune and system df; docker-py's container.commit, image.save
and images.load.
"""

from __future__ import annotations

import io
import json
import secrets
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.returncode, result.stderr.decode())
    return result.stdout.decode()


@pytest.fixture
def name(freightd) -> Iterator[str]:
    """A unique name for a container and a repository, both removed afterwards."""
    value = f"fx-dvcs-{secrets.token_hex(4)}"
    yield value
    freightd.docker("rm", "-f", value)
    tags = freightd.docker("images", "--format", "{{.Repository}}:{{.Tag}}", value)
    for tag in tags.stdout.decode().split():
        freightd.docker("rmi", "-f", tag)


def test_docker_diff_commit_history(freightd, name: str) -> None:
    ok(freightd.docker("run", "--name", name, "busybox", "sh", "-c", "echo d > /d; rm /etc/group"))
    lines = ok(freightd.docker("diff", name)).splitlines()
    assert {"A /d", "D /etc/group", "C /etc"} <= set(lines)
    image_id = ok(freightd.docker("commit", "-m", "docker step", "-c", "CMD cat /d", name,
                                  f"{name}:1")).strip()  # fmt: skip
    assert image_id.startswith("sha256:")
    assert ok(freightd.docker("run", "--rm", f"{name}:1")) == "d\n"
    history = ok(freightd.docker("history", "--format", "{{.Comment}}|{{.CreatedBy}}", f"{name}:1"))
    comment, created_by = history.splitlines()[0].split("|", 1)
    assert comment == "docker step" and "echo d" in created_by
    inspect = json.loads(ok(freightd.docker("image", "inspect", f"{name}:1")))[0]
    assert len(inspect["RootFS"]["Layers"]) == 2 and inspect["Comment"] == "docker step"
    exported = subprocess.run(["docker", "-H", freightd.host, "export", name],
                              capture_output=True, stdin=subprocess.DEVNULL, timeout=60)  # fmt: skip
    assert exported.returncode == 0, exported.stderr.decode()
    with tarfile.open(fileobj=io.BytesIO(exported.stdout)) as tar:
        names = set(tar.getnames())
    assert "d" in names and "bin/busybox" in names and "etc/group" not in names


def test_docker_save_load(freightd, name: str, tmp_path: Path) -> None:
    ok(freightd.docker("run", "--name", name, "busybox", "sh", "-c", "echo s > /s"))
    ok(freightd.docker("commit", name, f"{name}:1"))
    before = ok(freightd.docker("image", "inspect", "-f", "{{.Id}}", f"{name}:1")).strip()
    archive = tmp_path / "a.tar"
    ok(freightd.docker("save", "-o", str(archive), f"{name}:1"))
    ok(freightd.docker("rmi", f"{name}:1"))
    assert f"Loaded image: {name}:1" in ok(freightd.docker("load", "-i", str(archive)))
    assert ok(freightd.docker("image", "inspect", "-f", "{{.Id}}", f"{name}:1")).strip() == before
    # piped: save to stdout, load from stdin
    data = subprocess.run(["docker", "-H", freightd.host, "save", f"{name}:1"],
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=60)  # fmt: skip
    assert data.returncode == 0 and data.stdout[:0] == b""
    ok(freightd.docker("rmi", f"{name}:1"))
    assert f"Loaded image: {name}:1" in ok(freightd.docker("load", input=data.stdout))
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar at all" * 100)
    result = freightd.docker("load", "-i", str(bad))
    assert result.returncode != 0 and "invalid archive" in result.stderr.decode()


def test_docker_image_prune_and_system_df(freightd, name: str) -> None:
    label = f"fx.dvcs={secrets.token_hex(4)}"
    ok(freightd.docker("run", "--name", name, "--label", label, "busybox", "true"))
    dangling = ok(freightd.docker("commit", name)).strip()
    ok(freightd.docker("rm", name))
    out = ok(freightd.docker("image", "prune", "-f", "--filter", f"label={label}"))
    assert f"deleted: {dangling}" in out and "Total reclaimed space:" in out
    df = ok(freightd.docker("system", "df"))
    assert df.splitlines()[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert "Images space usage:" in ok(freightd.docker("system", "df", "-v"))


@pytest.fixture(scope="module")
def client(freightd) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=freightd.host, timeout=60)
    yield c
    c.close()


def test_docker_py_commit_save_load(client: docker.DockerClient, name: str) -> None:
    container = client.containers.run("busybox", ["sh", "-c", "echo py > /py"], name=name,
                                      detach=True)  # fmt: skip
    assert container.wait()["StatusCode"] == 0
    assert {"Path": "/py", "Kind": 1} in container.diff()
    image = container.commit(repository=name, tag="1", message="py step", changes=["CMD cat /py"])
    assert image.tags == [f"{name}:1"]
    assert image.history()[0]["Comment"] == "py step"
    assert client.containers.run(f"{name}:1", remove=True) == b"py\n"
    with_conf = container.commit(repository=name, tag="conf", conf={"Labels": {"fx.conf": "1"},
                                                                    "Env": ["FROM_CONF=1"]})  # fmt: skip
    assert with_conf.labels == {"fx.conf": "1"}
    assert "FROM_CONF=1" in with_conf.attrs["Config"]["Env"]
    data = b"".join(image.save(named=True))
    client.images.remove(f"{name}:1")
    [loaded] = client.images.load(data)
    assert loaded.id == image.id and loaded.tags == [f"{name}:1"]
    with pytest.raises(docker.errors.ImageLoadError):
        client.images.load(b"garbage" * 1000)
