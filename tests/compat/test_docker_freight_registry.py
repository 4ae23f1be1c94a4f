"""The real docker CLI, through freightd, pushing to and pulling from freight's own
registry server (`freight registry serve`), anonymously and with accounts (docker login
through the token service)."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "integration" / "registry"))
from registryserver import start_registry  # noqa: E402


@pytest.fixture(scope="module")
def freight_registry(tmp_path_factory: pytest.TempPathFactory):
    reg = start_registry(tmp_path_factory.mktemp("freight-registry") / "root")
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def freight_auth_registry(tmp_path_factory: pytest.TempPathFactory):
    reg = start_registry(
        tmp_path_factory.mktemp("freight-authreg") / "root", "--public", "library/*"
    )
    assert reg.cli("user", "add", "dana", "--password-stdin", stdin=b"dana-pw\n").returncode == 0
    yield reg
    reg.stop()


@pytest.fixture(autouse=True)
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    return tmp_path / "docker-config"


def ok(result) -> str:
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    return result.stdout.decode()


def test_docker_push_pull_run_via_freight_registry(freightd, freight_registry) -> None:
    ref = f"{freight_registry.host}/f{secrets.token_hex(4)}/busybox:v1"
    ok(freightd.docker("tag", "busybox", ref))
    pushed = ok(freightd.docker("push", ref))
    assert "v1: digest: sha256:" in pushed
    digest = pushed.split("digest: ")[1].split()[0]
    head = freight_registry.request(
        "HEAD", f"/v2/{ref.split('/', 1)[1].split(':')[0]}/manifests/v1"
    )
    assert head.headers["docker-content-digest"] == digest
    ok(freightd.docker("rmi", ref))
    ok(freightd.docker("pull", ref))
    assert (
        ok(freightd.docker("run", "--rm", ref, "echo", "from freight registry"))
        == "from freight registry\n"
    )
    missing = freightd.docker("pull", f"{freight_registry.host}/nobody/nothing:x")
    assert missing.returncode == 1
    ok(freightd.docker("rmi", ref))


def test_docker_login_push_pull_with_accounts(freightd, freight_auth_registry) -> None:
    host = freight_auth_registry.host
    ref = f"{host}/dana/busybox:v1"
    ok(freightd.docker("tag", "busybox", ref))
    anon = freightd.docker("push", ref)
    assert anon.returncode != 0
    wrong = freightd.docker("login", "-u", "dana", "--password-stdin", host, input=b"nope\n")
    assert wrong.returncode == 1
    ok(freightd.docker("login", "-u", "dana", "--password-stdin", host, input=b"dana-pw\n"))
    ok(freightd.docker("push", ref))
    ok(freightd.docker("rmi", ref))
    ok(freightd.docker("pull", ref))
    other = f"{host}/erin/busybox:v1"
    ok(freightd.docker("tag", "busybox", other))
    assert freightd.docker("push", other).returncode != 0  # not dana's namespace
    ok(freightd.docker("logout", host))
    assert freightd.docker("pull", ref).returncode != 0  # private without credentials
    ok(freightd.docker("rmi", ref))
    ok(freightd.docker("rmi", other))


def test_docker_search_finds_repositories_with_stars(freightd, freight_registry) -> None:
    import json

    name = f"searchme{secrets.token_hex(3)}/tool"
    ref = f"{freight_registry.host}/{name}:v1"
    ok(freightd.docker("tag", "busybox", ref))
    ok(freightd.docker("push", ref))
    out = ok(
        freightd.docker(
            "search", "--format", "{{json .}}", f"{freight_registry.host}/{name.split('/')[0]}"
        )
    )
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["Name"] for r in rows] == [name]
    assert rows[0]["StarCount"] == "0"
    ok(freightd.docker("rmi", ref))
