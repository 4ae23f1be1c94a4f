"""docker-py's `images.build` against freightd's POST /build: a Dockerfile as a file
object, a context directory with build args and labels, the stream and the
image it returns, and a failing step raised as docker.errors.BuildError.
"""

from __future__ import annotations

import contextlib
import io
import secrets
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest


@pytest.fixture(scope="module")
def client(freightd) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=freightd.host, timeout=120)
    yield c
    c.close()


@pytest.fixture
def tag(client: docker.DockerClient) -> Iterator[str]:
    name = f"pybuild-{secrets.token_hex(4)}:latest"
    yield name
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.remove(name, force=True)


def test_build_from_a_file_object(client: docker.DockerClient, tag: str) -> None:
    dockerfile = io.BytesIO(b'FROM busybox\nRUN echo built > /b\nCMD ["cat", "/b"]\n')
    image, logs = client.images.build(fileobj=dockerfile, tag=tag, rm=True)
    lines = [entry.get("stream", "") for entry in logs]
    assert any("Successfully built" in line for line in lines)
    assert tag in image.tags
    assert client.containers.run(tag, remove=True) == b"built\n"


def test_build_a_directory_with_args_and_labels(
    client: docker.DockerClient, tag: str, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nARG V\nCOPY f /f\nRUN echo $V >> /f\n")
    (tmp_path / "f").write_text("file\n")
    image, _ = client.images.build(
        path=str(tmp_path), tag=tag, buildargs={"V": "arg"}, labels={"team": "py"}
    )
    assert image.labels == {"team": "py"}
    assert client.containers.run(tag, ["cat", "/f"], remove=True) == b"file\narg\n"


def test_failing_step_raises_build_error(client: docker.DockerClient) -> None:
    dockerfile = io.BytesIO(b"FROM busybox\nRUN echo failing; exit 5\n")
    with pytest.raises(docker.errors.BuildError) as e:
        client.images.build(fileobj=dockerfile)
    assert "returned a non-zero code: 5" in str(e.value)
    assert any("failing" in entry.get("stream", "") for entry in e.value.build_log)
