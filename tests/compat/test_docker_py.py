"""docker-py (the `docker` package) against freightd: containers.run with and
without detach, logs, wait, stop, remove, list with filters, images, the
shapes of `.attrs`, the low-level API, and errors mapped to docker.errors.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import docker
import docker.errors
import pytest


@pytest.fixture(scope="module")
def client(freightd) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=freightd.host, timeout=60)
    yield c
    c.close()


@pytest.fixture
def label(client: docker.DockerClient) -> Iterator[str]:
    """A label unique to the test; its containers are removed afterwards."""
    value = secrets.token_hex(4)
    yield value
    for c in client.containers.list(all=True, filters={"label": f"fx.test={value}"}):
        c.remove(force=True)


def test_run_attached_returns_output(client: docker.DockerClient, label: str) -> None:
    output = client.containers.run(
        "busybox", ["sh", "-c", "echo out; echo err >&2"], labels={"fx.test": label}, remove=True,
        stderr=True,
    )  # fmt: skip
    assert output == b"out\nerr\n"


def test_run_nonzero_exit_raises_container_error(client: docker.DockerClient, label: str) -> None:
    with pytest.raises(docker.errors.ContainerError) as info:
        client.containers.run("busybox", "sh -c 'echo bad >&2; exit 3'", labels={"fx.test": label})
    assert info.value.exit_status == 3
    assert b"bad" in info.value.stderr


def test_run_detached_wait_logs_remove(client: docker.DockerClient, label: str) -> None:
    c = client.containers.run(
        "busybox", "sh -c 'echo hi; exit 4'", detach=True, labels={"fx.test": label},
        environment={"K": "v"},
    )  # fmt: skip
    assert len(c.id) == 64
    assert c.wait(timeout=30) == {"StatusCode": 4, "Error": None}
    assert c.logs() == b"hi\n"
    assert c.logs(timestamps=True).split(b" ", 1)[1] == b"hi\n"
    c.reload()
    assert c.status == "exited"
    assert c.attrs["State"]["ExitCode"] == 4
    assert "K=v" in c.attrs["Config"]["Env"]
    assert c.image.tags == ["busybox:latest"]
    c.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(c.id)


def test_stop_running_container(client: docker.DockerClient, label: str) -> None:
    c = client.containers.run("busybox", "sleep 30", detach=True, labels={"fx.test": label})
    assert client.containers.get(c.id).status == "running"
    c.stop(timeout=1)
    c.reload()
    assert (c.status, c.attrs["State"]["ExitCode"]) == ("exited", 137)


def test_list_with_filters(client: docker.DockerClient, label: str) -> None:
    names = [f"fx-py-{secrets.token_hex(3)}" for _ in range(2)]
    done = client.containers.run(
        "busybox", "true", name=names[0], labels={"fx.test": label}, detach=True
    )
    done.wait(timeout=30)
    client.containers.run(
        "busybox", "sleep 30", name=names[1], labels={"fx.test": label}, detach=True
    )
    mine = {"label": f"fx.test={label}"}
    assert {c.name for c in client.containers.list(all=True, filters=mine)} == set(names)
    assert [c.name for c in client.containers.list(filters=mine)] == [names[1]]
    exited = client.containers.list(all=True, filters={**mine, "status": "exited"})
    assert [c.name for c in exited] == [names[0]]
    by_name = client.containers.list(all=True, filters={"name": names[0]})
    assert [c.name for c in by_name] == [names[0]]


def test_low_level_inspect_shape(client: docker.DockerClient, label: str) -> None:
    c = client.containers.create("busybox", "true", labels={"fx.test": label}, mem_limit="32m")
    doc = client.api.inspect_container(c.id)
    for key in ("Id", "Created", "Path", "Args", "State", "Image", "Name", "HostConfig", "Config",
                "NetworkSettings", "Mounts", "GraphDriver", "RestartCount", "LogPath"):  # fmt: skip
        assert key in doc, key
    assert doc["State"]["Status"] == "created"
    assert doc["HostConfig"]["Memory"] == 32 << 20
    assert doc["Config"]["Labels"] == {"fx.test": label}
    assert doc["Config"]["Cmd"] == ["true"]


def test_images_list_and_get(client: docker.DockerClient) -> None:
    tags = [t for image in client.images.list() for t in image.tags]
    assert "busybox:latest" in tags
    image = client.images.get("busybox")
    assert image.id.startswith("sha256:") and image.short_id == image.id[:19]
    assert image.tags == ["busybox:latest"]
    assert image.attrs["Config"]["Cmd"] == ["sh"]
    assert image.attrs["Os"] == "linux"
    assert len(image.attrs["RootFS"]["Layers"]) == 1
    assert len(image.history()) == 2
    assert [i.id for i in client.images.list(name="busybox")] == [image.id]


def test_errors_map_to_docker_errors(client: docker.DockerClient, label: str) -> None:
    with pytest.raises(docker.errors.NotFound) as nf:
        client.containers.get("fx-no-such-container")
    assert nf.value.status_code == 404
    assert "No such container: fx-no-such-container" in str(nf.value)

    with pytest.raises(docker.errors.ImageNotFound) as inf:
        client.images.get("fx-no-such-image:1")
    assert inf.value.status_code == 404

    name = f"fx-py-{secrets.token_hex(3)}"
    client.containers.create("busybox", "true", name=name, labels={"fx.test": label})
    with pytest.raises(docker.errors.APIError) as conflict:
        client.containers.create("busybox", "true", name=name, labels={"fx.test": label})
    assert conflict.value.status_code == 409
    assert f'The container name "/{name}" is already in use' in str(conflict.value)

    running = client.containers.run("busybox", "sleep 30", detach=True, labels={"fx.test": label})
    with pytest.raises(docker.errors.APIError) as busy:
        running.remove()
    assert busy.value.status_code == 409

    with pytest.raises(docker.errors.APIError) as not_found:
        client.containers.run("busybox", "fx-nosuchcmd", labels={"fx.test": label})
    assert not_found.value.status_code == 400
    assert 'exec: "fx-nosuchcmd": executable file not found in $PATH' in str(not_found.value)


def test_ping_and_version(client: docker.DockerClient) -> None:
    assert client.ping() is True
    assert client.version()["ApiVersion"] == "1.45"
    assert client.info()["Swarm"]["LocalNodeState"] == "inactive"
