"""skopeo (containers/image, a real registry client) pushing to and pulling from
`freight registry serve`, anonymously and through the token service."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from registryserver import make_image, write_oci_layout

pytestmark = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")


def skopeo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["skopeo", "--insecure-policy", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        text=True,
    )


def layout_blobs(path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (path / "blobs" / "sha256").iterdir()}


@pytest.mark.parametrize("fmt", ["oci", "v2s2"])
def test_skopeo_copy_in_and_out(registry_factory, tmp_path, fmt):
    r = registry_factory()
    image = make_image((300_000, 50_000, 1_000))
    src = write_oci_layout(tmp_path / "src", image, "v1")
    dest = f"docker://{r.host}/team/app:{fmt}"
    pushed = skopeo("copy", "--dest-tls-verify=false", "--format", fmt, f"oci:{src}:v1", dest)
    assert pushed.returncode == 0, pushed.stderr
    inspected = skopeo("inspect", "--tls-verify=false", dest)
    assert inspected.returncode == 0, inspected.stderr
    info = json.loads(inspected.stdout)
    assert info["RepoTags"] == [fmt] and len(info["Layers"]) == 3
    raw = skopeo("inspect", "--raw", "--tls-verify=false", dest)
    expected_type = {"oci": "application/vnd.oci.image.manifest.v1+json", "v2s2": "application/vnd.docker.distribution.manifest.v2+json"}[fmt]  # fmt: skip
    assert json.loads(raw.stdout)["mediaType"] == expected_type
    out = tmp_path / "out"
    pulled = skopeo("copy", "--src-tls-verify=false", dest, f"oci:{out}:back")
    assert pulled.returncode == 0, pulled.stderr
    # Layers (and the config, unless skopeo converted the format) come back byte for byte.
    got = layout_blobs(out)
    for data in (image.config, *image.layers) if fmt == "oci" else image.layers:
        assert data in got.values()
    # A second push finds every blob already there (HEAD) and still succeeds.
    again = skopeo("copy", "--dest-tls-verify=false", "--format", fmt, f"oci:{src}:v1", dest)
    assert again.returncode == 0 and "Copying blob" in again.stdout


def test_skopeo_with_accounts_and_tokens(registry_factory, tmp_path):
    r = registry_factory()
    assert r.cli("user", "add", "alice", "--password-stdin", stdin=b"pw-alice\n").returncode == 0
    assert r.cli("user", "add", "bob", "--password-stdin", stdin=b"pw-bob\n").returncode == 0
    src = write_oci_layout(tmp_path / "src", make_image(seed=b"skopeo-auth"), "v1")
    dest = f"docker://{r.host}/alice/app:v1"
    anon = skopeo("copy", "--dest-tls-verify=false", f"oci:{src}:v1", dest)
    assert anon.returncode != 0
    assert "unauthorized" in anon.stderr.lower() or "authentication required" in anon.stderr.lower()
    wrong = skopeo(
        "copy", "--dest-tls-verify=false", "--dest-creds", "bob:pw-bob", f"oci:{src}:v1", dest
    )
    assert wrong.returncode != 0
    ok = skopeo(
        "copy", "--dest-tls-verify=false", "--dest-creds", "alice:pw-alice", f"oci:{src}:v1", dest
    )
    assert ok.returncode == 0, ok.stderr
    pulled = skopeo(
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        "alice:pw-alice",
        dest,
        f"oci:{tmp_path / 'out'}:v1",
    )
    assert pulled.returncode == 0, pulled.stderr
    denied = skopeo("inspect", "--tls-verify=false", "--creds", "bob:pw-bob", dest)
    assert denied.returncode != 0
    bad_password = skopeo("inspect", "--tls-verify=false", "--creds", "alice:nope", dest)
    assert bad_password.returncode != 0
