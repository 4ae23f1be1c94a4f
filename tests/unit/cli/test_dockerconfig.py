"""docker's client config: auths, credential helpers, X-Registry-Auth; progress lines."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
from pathlib import Path

import pytest

from freight.apiserver.routes_distribution import decode_registry_auth
from freight.cli import dockerconfig
from freight.cli.progressbars import bar, show_progress
from freight.cli.session import CliError


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "cfg"))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    return tmp_path / "cfg"


def test_store_get_erase_in_auths(config_dir: Path) -> None:
    where = dockerconfig.store("127.0.0.1:5000", "alice", "pw:with:colons")
    assert where == str(config_dir / "config.json")
    assert stat.S_IMODE((config_dir / "config.json").stat().st_mode) == 0o600
    doc = json.loads((config_dir / "config.json").read_text())
    assert base64.b64decode(doc["auths"]["127.0.0.1:5000"]["auth"]) == b"alice:pw:with:colons"
    assert dockerconfig.get("127.0.0.1:5000") == {
        "serveraddress": "127.0.0.1:5000", "username": "alice", "password": "pw:with:colons",
    }  # fmt: skip
    assert dockerconfig.get("other:5000") == {}
    assert dockerconfig.erase("127.0.0.1:5000") is True
    assert dockerconfig.erase("127.0.0.1:5000") is False
    assert dockerconfig.get("127.0.0.1:5000") == {}


def test_docker_hub_key_and_other_keys_kept(config_dir: Path) -> None:
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps({"psFormat": "x", "auths": {}}))
    dockerconfig.store("docker.io", "u", "p")
    doc = json.loads((config_dir / "config.json").read_text())
    assert list(doc["auths"]) == ["https://index.docker.io/v1/"]
    assert doc["psFormat"] == "x"
    assert dockerconfig.server_key("index.docker.io") == dockerconfig.INDEX_SERVER


def test_credential_helper(tmp_path: Path, config_dir: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    store = tmp_path / "helper-store"
    helper = bin_dir / "docker-credential-fake"
    helper.write_text(
        "#!/bin/sh\n"
        f'case "$1" in\n'
        f"  store) cat > {store} ;;\n"
        f'  get) read s; [ -f {store} ] && echo \'{{"Username":"hu","Secret":"zz-secret-9"}}\' '
        "|| { echo 'credentials not found in native keychain'; exit 1; } ;;\n"
        f"  erase) rm -f {store} ;;\n"
        "esac\n"
    )
    helper.chmod(0o755)
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps({"credHelpers": {"reg:1": "fake"}}))
    assert dockerconfig.get("reg:1") == {}
    assert dockerconfig.store("reg:1", "hu", "zz-secret-9") == "docker-credential-fake"
    assert json.loads(store.read_text())["Secret"] == "zz-secret-9"
    assert "zz-secret-9" not in (config_dir / "config.json").read_text()
    assert dockerconfig.get("reg:1")["password"] == "zz-secret-9"
    assert dockerconfig.erase("reg:1")
    assert not store.exists()


def test_registry_auth_header_round_trip() -> None:
    header = dockerconfig.registry_auth_header({"username": "a", "password": "b"})
    creds = decode_registry_auth(header)
    assert (creds.username, creds.password) == ("a", "b")
    assert decode_registry_auth("e30=").empty
    assert decode_registry_auth(None).empty


def test_progress_non_tty_prints_each_status_once() -> None:
    out = io.StringIO()
    messages = [
        {"status": "Pulling from x", "id": "v1"},
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "abc"},
        {"status": "Downloading", "progressDetail": {"current": 1, "total": 4}, "id": "abc"},
        {"status": "Downloading", "progressDetail": {"current": 4, "total": 4}, "id": "abc"},
        {"status": "Pull complete", "progressDetail": {}, "id": "abc"},
        {"status": "Digest: sha256:1"},
    ]
    show_progress(iter(messages), out)
    assert out.getvalue().splitlines() == [
        "v1: Pulling from x", "abc: Pulling fs layer", "abc: Downloading",
        "abc: Pull complete", "Digest: sha256:1",
    ]  # fmt: skip
    with pytest.raises(CliError, match="boom"):
        show_progress(iter([{"errorDetail": {"message": "boom"}, "error": "boom"}]), out)
    assert bar(5, 10).startswith("[" + "=" * 24 + ">")
