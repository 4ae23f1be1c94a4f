"""Real Docker clients against the demo app: docker-py and the docker CLI."""

import os
import shutil
import subprocess

import docker
import pytest

from conftest import SWARM_MESSAGE, Demo


def test_docker_py_ping_and_version(demo: Demo) -> None:
    client = docker.DockerClient(base_url=f"unix://{demo.sock}", version="1.45")
    try:
        assert client.ping() is True
        assert client.api.version()["ApiVersion"] == "1.45"
    finally:
        client.close()


def test_docker_py_auto_version_negotiation(demo: Demo) -> None:
    client = docker.APIClient(base_url=f"unix://{demo.sock}", version="auto")
    try:
        assert client.api_version == "1.45"
    finally:
        client.close()


DOCKER = shutil.which("docker") or "docker"  # the first on PATH, as a user would get
# No DOCKER_HOST/DOCKER_CONFIG from the caller; a HOME without a docker config.
CLEAN_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}
needs_cli = pytest.mark.skipif(shutil.which("docker") is None, reason="docker CLI not on PATH")


def docker_cli(demo: Demo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOCKER, "-H", f"unix://{demo.sock}", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=CLEAN_ENV,
    )


@needs_cli
def test_docker_cli_version(demo: Demo) -> None:
    result = docker_cli(demo, "version")
    assert result.returncode == 0, result.stderr
    assert "Server: freight" in result.stdout
    assert "1.45 (downgraded from" in result.stdout


@needs_cli
def test_docker_cli_service_ls_shows_swarm_error(demo: Demo) -> None:
    result = docker_cli(demo, "service", "ls")
    assert result.returncode == 1
    assert SWARM_MESSAGE in result.stderr


@needs_cli
def test_docker_cli_exec_hijack_with_stdin_half_close(demo: Demo) -> None:
    result = subprocess.run(
        [DOCKER, "-H", f"unix://{demo.sock}", "exec", "-i", "c1", "cat"],
        input="hello\n",
        capture_output=True,
        text=True,
        timeout=30,
        env=CLEAN_ENV,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "HELLO\n"
    assert result.stderr == "bye\n"
