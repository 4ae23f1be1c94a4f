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


def test_search_filters_and_limit_with_both_clients(freightd, freight_registry) -> None:
    """`search --filter stars=N|is-official=` and `--limit`, freight's CLI and docker's,
    against the hub search of freight's registry (stars given through its own hub store)."""
    import json

    from freight.registry.hub import Hub
    from freight.registry.storage import Storage

    prefix = f"filt{secrets.token_hex(3)}"
    names = [f"{prefix}/starred", f"{prefix}/plain"]
    for name in names:
        ok(freightd.docker("tag", "busybox", f"{freight_registry.host}/{name}:v1"))
        ok(freightd.docker("push", f"{freight_registry.host}/{name}:v1"))
    hub = Hub(Storage(freight_registry.root))
    hub.toggle_star(names[0], "alice")
    hub.toggle_star(names[0], "bob")
    term = f"{freight_registry.host}/{prefix}"
    json_rows = []
    for client in (freightd.cli, freightd.docker):
        starred = ok(client("search", "--filter", "stars=2", "--format", "{{.Name}}", term))
        assert starred.split() == [names[0]]
        both = ok(client("search", "--filter", "is-official=false", "--format", "{{json .}}", term))
        rows = {json.loads(line)["Name"]: json.loads(line) for line in both.splitlines()}
        assert set(rows) == set(names) and rows[names[0]]["StarCount"] == "2"
        json_rows.append(rows)
        assert len(ok(client("search", "--limit", "1", "--format", "{{.Name}}", term)).split()) == 1
    assert json_rows[0] == json_rows[1]  # freight prints what docker prints
    tables = [ok(client("search", term)) for client in (freightd.cli, freightd.docker)]
    assert tables[0] == tables[1] and tables[0].startswith("NAME ")
    bad = freightd.cli("search", "--filter", "stars=many", term)
    assert bad.returncode == 1 and "stars=many" in bad.stderr.decode()
    for name in names:
        ok(freightd.docker("rmi", f"{freight_registry.host}/{name}:v1"))
