"""The real docker CLI and docker-py pulling, pushing and logging in through
freightd, against Debian's docker-registry on 127.0.0.1."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import docker
import docker.errors
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "integration"))
from imagefactory import DOCKER, Factory, busybox_bytes  # noqa: E402
from registry_fixtures import start_registry  # noqa: E402


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    reg = start_registry(tmp_path_factory.mktemp("compat-registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory):
    reg = start_registry(tmp_path_factory.mktemp("compat-authreg"), users={"bob": "pa55"})
    yield reg
    reg.stop()


@pytest.fixture(autouse=True)
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    return tmp_path / "docker-config"


def repo() -> str:
    return f"c{secrets.token_hex(4)}/img"


def ok(result) -> str:
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    return result.stdout.decode()


def test_docker_cli_push_pull_run(freightd, registry) -> None:
    ref = f"{registry.host}/{repo()}:v1"
    ok(freightd.docker("tag", "busybox", ref))
    pushed = ok(freightd.docker("push", ref))
    assert "v1: digest: sha256:" in pushed
    ok(freightd.docker("rmi", ref))
    pulled = ok(freightd.docker("pull", ref))
    assert f"Status: Downloaded newer image for {ref}" in pulled or "up to date" in pulled
    assert ok(freightd.docker("run", "--rm", ref, "echo", "via docker")) == "via docker\n"
    missing = freightd.docker("pull", f"{registry.host}/{repo()}:nope")
    assert missing.returncode == 1
    assert "manifest unknown" in missing.stderr.decode()
    ok(freightd.docker("rmi", ref))


def test_docker_cli_run_pulls_missing_image(freightd, registry) -> None:
    fac = Factory(registry.host)
    name = repo()
    fac.image(name, "auto", [({"bin/busybox": busybox_bytes()}, "gzip"),
                              ({"etc/msg": b"auto-pulled\n"}, "gzip")], DOCKER)  # fmt: skip
    ref = f"{registry.host}/{name}:auto"
    run = freightd.docker("run", "--rm", ref, "/bin/busybox", "cat", "/etc/msg")
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout == b"auto-pulled\n"
    assert "Unable to find image" in run.stderr.decode()
    ok(freightd.docker("rmi", ref))


def test_docker_cli_login_and_push_with_auth(freightd, auth_registry, docker_config) -> None:
    host = auth_registry.host
    wrong = freightd.docker("login", "-u", "bob", "--password-stdin", host, input=b"bad\n")
    assert wrong.returncode == 1
    assert "unauthorized" in wrong.stderr.decode().lower()
    good = freightd.docker("login", "-u", "bob", "--password-stdin", host, input=b"pa55\n")
    assert good.returncode == 0, good.stderr.decode()
    ref = f"{host}/{repo()}:v1"
    ok(freightd.docker("tag", "busybox", ref))
    ok(freightd.docker("push", ref))
    ok(freightd.docker("rmi", ref))
    ok(freightd.docker("pull", ref))
    ok(freightd.docker("logout", host))
    ok(freightd.docker("rmi", ref))


def test_docker_py_pull_push(freightd, registry) -> None:
    client = docker.DockerClient(base_url=freightd.host, timeout=60)
    try:
        name = f"{registry.host}/{repo()}"
        client.images.get("busybox").tag(name, "py")
        lines = list(client.images.push(name, tag="py", stream=True, decode=True))
        assert any("digest" in (line.get("status") or "") for line in lines), lines
        client.images.remove(f"{name}:py")
        image = client.images.pull(name, tag="py")
        assert f"{name}:py" in image.tags
        assert image.attrs["RepoDigests"]
        with pytest.raises(docker.errors.NotFound):
            client.images.pull(name, tag="missing")
        client.images.remove(f"{name}:py")
    finally:
        client.close()
