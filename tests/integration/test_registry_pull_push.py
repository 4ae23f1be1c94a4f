"""Pull and push through freightd against a real registry (Debian's
docker-registry on 127.0.0.1), and against small in-test registries that lie
or drop the connection. Driven by the freight CLI.
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from imagefactory import DOCKER, OCI, Factory, busybox_bytes, compress, layer_tar, sha
from registry_fixtures import Registry, start_registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    reg = start_registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory):
    reg = start_registry(tmp_path_factory.mktemp("authreg"), users={"alice": "s3cret"})
    yield reg
    reg.stop()


@pytest.fixture(autouse=True)
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config dir of the test's own: the real ~/.docker is never touched."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    return tmp_path / "docker-config"


def repo_name() -> str:
    return f"t{secrets.token_hex(4)}/img"


def ok(result) -> str:
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    return result.stdout.decode()


def inspect(freightd, name: str) -> dict:
    return json.loads(ok(freightd.cli("image", "inspect", name)))[0]


def three_layer_image(fac: Factory, repo: str, tag: str, kind=DOCKER):
    return fac.image(
        repo,
        tag,
        [
            ({"bin/busybox": busybox_bytes()}, "gzip"),
            ({"etc/hello": b"hello from zstd\n"}, "zstd"),
            ({"etc/plain": b"plain layer\n"}, "plain"),
        ],
        kind,
        label=kind["manifest"],
    )


@pytest.mark.parametrize("kind", [DOCKER, OCI], ids=["schema2", "oci"])
def test_pull_layers_gzip_zstd_plain_and_run(freightd, registry: Registry, kind) -> None:
    fac = Factory(registry.host)
    repo = repo_name()
    manifest_digest, config_digest, _, layers = three_layer_image(fac, repo, "v1", kind)
    ref = f"{registry.host}/{repo}:v1"
    out = ok(freightd.cli("pull", ref))
    assert "v1: Pulling from " + repo in out
    for d in layers:
        assert f"{d[7:19]}: Pull complete" in out
    assert f"Digest: {manifest_digest}" in out
    assert f"Status: Downloaded newer image for {ref}" in out
    image = inspect(freightd, ref)
    assert image["Id"] == config_digest
    assert image["RepoDigests"] == [f"{registry.host}/{repo}@{manifest_digest}"]
    run = ok(freightd.cli("run", "--rm", ref, "/bin/busybox", "cat", "/etc/hello", "/etc/plain"))
    assert run == "hello from zstd\nplain layer\n"
    # Present: nothing downloaded again.
    again = ok(freightd.cli("pull", ref))
    assert f"Status: Image is up to date for {ref}" in again
    assert "Pull complete" not in again
    ok(freightd.cli("rmi", ref))


def test_pull_by_digest_and_shared_layers_skipped(freightd, registry: Registry) -> None:
    fac = Factory(registry.host)
    repo = repo_name()
    base = ({"bin/busybox": busybox_bytes()}, "gzip")
    d1, _, _, layers1 = fac.image(repo, "one", [base, ({"etc/one": b"1"}, "gzip")])
    d2, cfg2, _, layers2 = fac.image(repo, "two", [base, ({"etc/two": b"2"}, "gzip")])
    ok(freightd.cli("pull", f"{registry.host}/{repo}:one"))
    out = ok(freightd.cli("pull", f"{registry.host}/{repo}@{d2}"))
    assert f"{layers2[0][7:19]}: Already exists" in out
    assert f"{layers2[1][7:19]}: Pull complete" in out
    image = inspect(freightd, f"{registry.host}/{repo}@{d2}")
    assert image["Id"] == cfg2
    assert image["RepoTags"] == []  # pulled by digest: no tag
    ok(freightd.cli("rmi", f"{registry.host}/{repo}:one", cfg2))


def test_index_picks_host_platform_or_platform_flag(freightd, registry: Registry) -> None:
    fac = Factory(registry.host)
    repo = repo_name()
    amd, amd_cfg, amd_size, _ = fac.image(
        repo, "", [({"etc/a": b"amd64"}, "gzip")], OCI, arch="amd64"
    )
    arm, arm_cfg, arm_size, _ = fac.image(
        repo, "", [({"etc/a": b"arm64"}, "gzip")], OCI, arch="arm64"
    )
    index = fac.index(
        repo, "multi", [(arm, arm_size, "linux", "arm64"), (amd, amd_size, "linux", "amd64")]
    )
    ref = f"{registry.host}/{repo}:multi"
    out = ok(freightd.cli("pull", ref))
    assert f"Digest: {index}" in out
    image = inspect(freightd, ref)
    assert image["Id"] == amd_cfg
    assert image["RepoDigests"] == [f"{registry.host}/{repo}@{index}"]
    ok(freightd.cli("pull", "--platform", "linux/arm64", ref))
    assert inspect(freightd, ref)["Id"] == arm_cfg
    bad = freightd.cli("pull", "--platform", "linux/s390x", ref)
    assert bad.returncode == 1
    assert "no matching manifest for linux/s390x" in bad.stderr.decode()
    ok(freightd.cli("rmi", ref, amd_cfg))


def test_push_then_pull_back(freightd, registry: Registry) -> None:
    repo = repo_name()
    ref = f"{registry.host}/{repo}:v1"
    ok(freightd.cli("tag", "busybox", ref))
    out = ok(freightd.cli("push", ref))
    assert f"The push refers to repository [{registry.host}/{repo}]" in out
    assert ": Pushed" in out
    assert "v1: digest: sha256:" in out
    digest = out.split("v1: digest: ")[1].split()[0]
    assert f"{registry.host}/{repo}@{digest}" in inspect(freightd, ref)["RepoDigests"]
    # Again: the registry has every blob.
    again = ok(freightd.cli("push", ref))
    assert ": Layer already exists" in again and ": Pushed" not in again
    # Another repository on the same registry: mounted, not uploaded.
    other = f"{registry.host}/{repo_name()}:v2"
    ok(freightd.cli("tag", "busybox", other))
    mounted = ok(freightd.cli("push", other))
    assert f"Mounted from {repo}" in mounted
    # Back: the tag gone, the pull finds the image and runs it.
    ok(freightd.cli("rmi", ref))
    ok(freightd.cli("pull", ref))
    assert ok(freightd.cli("run", "--rm", ref, "echo", "pulled")) == "pulled\n"
    ok(freightd.cli("rmi", ref, other))


def test_push_missing_image_and_pull_unknown(freightd, registry: Registry) -> None:
    missing = freightd.cli("push", f"{registry.host}/nothere/x:v1")
    assert missing.returncode == 1
    assert "No such image" in missing.stderr.decode() or "does not exist" in missing.stderr.decode()
    unknown = freightd.cli("pull", f"{registry.host}/{repo_name()}:nope")
    assert unknown.returncode == 1
    assert "manifest unknown" in unknown.stderr.decode()


def test_run_pulls_a_missing_image(freightd, registry: Registry) -> None:
    fac = Factory(registry.host)
    repo = repo_name()
    three_layer_image(fac, repo, "auto")
    ref = f"{registry.host}/{repo}:auto"
    never = freightd.cli("run", "--rm", "--pull=never", ref, "/bin/busybox", "true")
    assert never.returncode != 0
    run = freightd.cli("run", "--rm", ref, "/bin/busybox", "cat", "/etc/hello")
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout == b"hello from zstd\n"
    assert f"Unable to find image '{ref}' locally" in run.stderr.decode()
    ok(freightd.cli("rmi", ref))


# auth -------------------------------------------------------------------------


def test_login_push_pull_logout_with_basic_auth(
    freightd, auth_registry: Registry, docker_config
) -> None:
    host = auth_registry.host
    ref = f"{host}/{repo_name()}:v1"
    ok(freightd.cli("tag", "busybox", ref))
    denied = freightd.cli("push", ref)
    assert denied.returncode == 1
    assert "unauthorized" in denied.stderr.decode().lower()
    wrong = freightd.cli("login", "-u", "alice", "--password-stdin", host, input=b"nope\n")
    assert wrong.returncode == 1
    assert "unauthorized" in wrong.stderr.decode().lower()
    assert not (docker_config / "config.json").exists()
    good = freightd.cli("login", "-u", "alice", "--password-stdin", host, input=b"s3cret\n")
    assert good.returncode == 0, good.stderr.decode()
    assert "Login Succeeded" in good.stdout.decode()
    saved = json.loads((docker_config / "config.json").read_text())
    assert base64.b64decode(saved["auths"][host]["auth"]) == b"alice:s3cret"
    assert "s3cret" not in freightd.log_tail()
    ok(freightd.cli("push", ref))
    ok(freightd.cli("rmi", ref))
    # run pulls the missing image with the saved login
    assert ok(freightd.cli("run", "--rm", ref, "echo", "authed")) == "authed\n"
    out = ok(freightd.cli("logout", host))
    assert f"Removing login credentials for {host}" in out
    assert host not in json.loads((docker_config / "config.json").read_text()).get("auths", {})
    ok(freightd.cli("rmi", ref))
    anonymous = freightd.cli("pull", ref)
    assert anonymous.returncode == 1
    assert "pull access denied" in anonymous.stderr.decode()


# registries that lie or fail ----------------------------------------------------


class FakeRegistry:
    """A registry of canned answers: path -> (status, headers, body); counts requests."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.drop_once: dict[str, int] = {}  # path -> byte count after which to cut once
        self.drop_always: dict[str, int] = {}  # path -> byte offset it never gets past
        self.ranges: list[str] = []
        self.bearer_user: tuple[str, str] | None = None  # Bearer auth with this login
        self.token_requests: list[str] = []
        self.redirects: dict[str, str] = {}  # path -> Location of a 307
        self.basic_user: tuple[str, str] | None = None  # Basic auth with this login
        self.seen_auth: list[str | None] = []  # Authorization of each non-/v2/ request
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if fake.bearer_user and path == "/token":
                    fake.token_requests.append(self.path)
                    user, pw = fake.bearer_user
                    basic = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
                    if self.headers.get("Authorization") != basic:
                        return self._send(
                            401, {}, b'{"errors":[{"code":"UNAUTHORIZED","message":"bad login"}]}'
                        )
                    return self._send(200, {}, b'{"token":"tok-123"}')
                if fake.bearer_user and self.headers.get("Authorization") != "Bearer tok-123":
                    realm = f'Bearer realm="http://{fake.host}/token",service="fake",scope="x"'
                    return self._send(401, {"WWW-Authenticate": realm},
                                      b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')  # fmt: skip
                if fake.basic_user:
                    user, pw = fake.basic_user
                    basic = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
                    if self.headers.get("Authorization") != basic:
                        return self._send(401, {"WWW-Authenticate": 'Basic realm="fake"'}, b"{}")
                if path != "/v2/":
                    fake.seen_auth.append(self.headers.get("Authorization"))
                if path in fake.redirects:
                    return self._send(307, {"Location": fake.redirects[path]}, b"")
                if path == "/v2/":
                    return self._send(200, {}, b"{}")
                if path not in fake.routes:
                    return self._send(404, {"Content-Type": "application/json"},
                                      b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')  # fmt: skip
                status, headers, body = fake.routes[path]
                start = 0
                if self.headers.get("Range"):
                    fake.ranges.append(self.headers["Range"])
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    status = 206
                cut = fake.drop_once.pop(path, None)
                if cut is None:
                    cut = fake.drop_always.get(path)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if cut is not None:
                    self.wfile.write(body[start:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body[start:])

            do_HEAD = do_GET

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def image(self, repo: str, tag: str, blobs: list[bytes], diff_ids: list[str], sizes=None,
              digests=None, manifest_pad: int = 0) -> str:  # fmt: skip
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()  # fmt: skip
        self.routes[f"/v2/{repo}/blobs/{sha(config)}"] = (200, {}, config)
        layers = []
        for i, blob in enumerate(blobs):
            digest = (digests or {}).get(i) or sha(blob)
            size = (sizes or {}).get(i, len(blob))
            self.routes[f"/v2/{repo}/blobs/{digest}"] = (200, {}, blob)
            layers.append({"mediaType": DOCKER["gzip"], "digest": digest, "size": size})
        doc = {"schemaVersion": 2, "mediaType": DOCKER["manifest"],
               "config": {"mediaType": DOCKER["config"], "digest": sha(config), "size": len(config)},
               "layers": layers}  # fmt: skip
        if manifest_pad:
            doc["annotations"] = {"pad": "x" * manifest_pad}
        data = json.dumps(doc).encode()
        self.routes[f"/v2/{repo}/manifests/{tag}"] = (
            200,
            {"Content-Type": DOCKER["manifest"]},
            data,
        )
        return sha(data)


@pytest.fixture
def fake():
    f = FakeRegistry()
    yield f
    f.close()


def gz_layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    tar = layer_tar(files)
    return compress(tar, "gzip"), sha(tar)


def assert_not_pulled(freightd, ref: str) -> None:
    assert freightd.cli("image", "inspect", ref).returncode != 0


def test_wrong_layer_digest_fails_and_tags_nothing(freightd, fake: FakeRegistry) -> None:
    blob, diff = gz_layer({"etc/x": b"x"})
    liar = "sha256:" + "ab" * 32
    fake.image("lie/digest", "v1", [blob], [diff], digests={0: liar})
    ref = f"{fake.host}/lie/digest:v1"
    r = freightd.cli("pull", ref)
    assert r.returncode == 1
    assert f"filesystem layer verification failed for digest {liar}" in r.stderr.decode()
    assert_not_pulled(freightd, ref)


def test_longer_blob_than_descriptor_fails(freightd, fake: FakeRegistry) -> None:
    blob, diff = gz_layer({"etc/x": b"x" * 5000})
    fake.image("lie/size", "v1", [blob], [diff], sizes={0: 100})
    ref = f"{fake.host}/lie/size:v1"
    r = freightd.cli("pull", ref)
    assert r.returncode == 1
    assert "longer than the 100 bytes" in r.stderr.decode()
    assert_not_pulled(freightd, ref)


def test_oversized_manifest_refused(freightd, fake: FakeRegistry) -> None:
    blob, diff = gz_layer({"etc/x": b"x"})
    fake.image("lie/big", "v1", [blob], [diff], manifest_pad=5 << 20)
    r = freightd.cli("pull", f"{fake.host}/lie/big:v1")
    assert r.returncode == 1
    assert "too big" in r.stderr.decode()


def test_wrong_diff_id_fails_at_unpack(freightd, fake: FakeRegistry) -> None:
    blob, _ = gz_layer({"etc/x": b"x"})
    fake.image("lie/diffid", "v1", [blob], ["sha256:" + "cd" * 32])
    ref = f"{fake.host}/lie/diffid:v1"
    r = freightd.cli("pull", ref)
    assert r.returncode == 1
    assert_not_pulled(freightd, ref)


def test_dropped_connection_resumes_with_range(freightd, fake: FakeRegistry) -> None:
    data = secrets.token_bytes(3 << 20)  # incompressible: the blob stays big
    blob, diff = gz_layer({"etc/big": data})
    fake.image("drop/resume", "v1", [blob], [diff])
    fake.drop_once[f"/v2/drop/resume/blobs/{sha(blob)}"] = len(blob) // 2
    ref = f"{fake.host}/drop/resume:v1"
    ok(freightd.cli("pull", ref))
    assert fake.ranges and fake.ranges[0].startswith("bytes=") and fake.ranges[0] != "bytes=0-"
    ok(freightd.cli("rmi", ref))


def test_bearer_token_service(freightd, fake: FakeRegistry, docker_config) -> None:
    fake.bearer_user = ("carol", "pw")
    blob, diff = gz_layer({"etc/x": b"bearer"})
    fake.image("tok/img", "v1", [blob], [diff])
    ref = f"{fake.host}/tok/img:v1"
    anonymous = freightd.cli("pull", ref)
    assert anonymous.returncode == 1
    assert "bad login" in anonymous.stderr.decode() or "denied" in anonymous.stderr.decode()
    login = freightd.cli("login", "-u", "carol", "--password-stdin", fake.host, input=b"pw\n")
    assert login.returncode == 0, login.stderr.decode()
    ok(freightd.cli("pull", ref))
    assert any("scope=repository%3Atok%2Fimg%3Apull" in t for t in fake.token_requests)
    ok(freightd.cli("rmi", ref))


def test_pull_all_tags(freightd, registry: Registry) -> None:
    fac = Factory(registry.host)
    repo = repo_name()
    for tag in ("a", "b"):
        fac.image(repo, tag, [({"etc/t": tag.encode()}, "gzip")], label=tag)
    out = ok(freightd.cli("pull", "-a", f"{registry.host}/{repo}"))
    assert "a: Pulling from" in out and "b: Pulling from" in out
    assert f"Status: Downloaded newer images for {registry.host}/{repo}" in out
    ok(freightd.cli("rmi", f"{registry.host}/{repo}:a", f"{registry.host}/{repo}:b"))


def test_search_and_distribution_inspect(freightd, registry: Registry) -> None:
    fac = Factory(registry.host)
    repo = f"searchme{secrets.token_hex(3)}/img"
    digest, _, size, _ = fac.image(repo, "v1", [({"etc/s": b"s"}, "gzip")])
    out = ok(freightd.cli("search", "--format", "{{.Name}}", f"{registry.host}/searchme"))
    assert repo in out.split()
    table = ok(freightd.cli("search", f"{registry.host}/{repo}"))
    assert table.splitlines()[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
    bad = freightd.cli("search", "--limit", "500", f"{registry.host}/x")
    assert bad.returncode == 1 and "outside the range" in bad.stderr.decode()
    # The Engine API directly: GET /distribution/{name}/json
    sock = freightd.host.removeprefix("unix://")
    curl = subprocess.run(
        ["curl", "-s", "--unix-socket", sock, f"http://x/distribution/{registry.host}/{repo}:v1/json"],
        capture_output=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    doc = json.loads(curl.stdout)
    assert doc["Descriptor"] == {"mediaType": DOCKER["manifest"], "digest": digest, "size": size}
    assert doc["Platforms"][0]["os"] == "linux"


def test_manifest_inspect(freightd, registry: Registry) -> None:
    fac = Factory(registry.host)
    repo = repo_name()
    digest, _, _, layers = fac.image(repo, "v1", [({"etc/m": b"m"}, "gzip")], OCI)
    doc = json.loads(ok(freightd.cli("manifest", "inspect", f"{registry.host}/{repo}:v1")))
    assert doc["mediaType"] == OCI["manifest"]
    assert [d["digest"] for d in doc["layers"]] == layers
    missing = freightd.cli("manifest", "inspect", f"{registry.host}/{repo}:nope")
    assert missing.returncode == 1 and "manifest unknown" in missing.stderr.decode()


def test_pull_cut_short_fails_then_a_later_pull_resumes(freightd, fake: FakeRegistry) -> None:
    data = secrets.token_bytes(2 << 20)
    blob, diff = gz_layer({"etc/big": data})
    fake.image("drop/later", "v1", [blob], [diff])
    path = f"/v2/drop/later/blobs/{sha(blob)}"
    cut = len(blob) // 3
    fake.drop_always[path] = cut
    ref = f"{fake.host}/drop/later:v1"
    first = freightd.cli("pull", ref)
    assert first.returncode == 1
    assert "after 3 retries" in first.stderr.decode()
    assert_not_pulled(freightd, ref)
    del fake.drop_always[path]
    fake.ranges.clear()
    ok(freightd.cli("pull", ref))
    assert fake.ranges[0] == f"bytes={cut}-"  # went on from what the first pull kept
    ok(freightd.cli("rmi", ref))


# the client itself, against the real registry and fakes --------------------------


def test_client_chunked_upload_and_head(auth_registry: Registry, tmp_path: Path) -> None:
    from freight.distribution.auth import Credentials
    from freight.distribution.client import Endpoint, RegistryClient
    from freight.oci.digest import Digest

    data = secrets.token_bytes(300_000)
    blob = tmp_path / "blob"
    blob.write_bytes(data)
    ep = Endpoint(auth_registry.host, f"http://{auth_registry.host}", False)
    with RegistryClient(ep, Credentials("alice", "s3cret")) as c:
        digest = Digest(sha(data))
        assert not c.blob_exists("chunk/x", digest)
        seen: list[int] = []
        c.upload_blob(
            "chunk/x", digest, len(data), functools.partial(open, blob, "rb"), seen.append, 100_000
        )
        assert seen == [100_000, 200_000, 300_000]
        assert c.blob_exists("chunk/x", digest)


def test_credentials_not_sent_after_redirect_to_another_host(freightd, docker_config) -> None:
    storage, front = FakeRegistry(), FakeRegistry()
    try:
        blob, diff = gz_layer({"etc/r": b"redirected"})
        front.image("redir/img", "v1", [blob], [diff])
        storage.routes[f"/blob/{sha(blob)}"] = (200, {}, blob)
        front.redirects[f"/v2/redir/img/blobs/{sha(blob)}"] = (
            f"http://{storage.host}/blob/{sha(blob)}"
        )
        front.basic_user = ("dave", "pw")
        ok(freightd.cli("login", "-u", "dave", "--password-stdin", front.host, input=b"pw\n"))
        ok(freightd.cli("pull", f"{front.host}/redir/img:v1"))
        assert storage.seen_auth == [None]  # the blob came from storage, without the login
        ok(freightd.cli("rmi", f"{front.host}/redir/img:v1"))
    finally:
        storage.close()
        front.close()
