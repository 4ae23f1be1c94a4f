"""Accounts and token auth of `freight registry serve`: challenge, scopes, denials.

Users are made with the real `freight registry user` commands; tokens come from the
server's `/token` endpoint exactly as Docker/OCI clients fetch them.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from registryserver import OCI_MANIFEST, blob, make_image, push_blob, push_image

PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret", "root": "root-secret"}


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    from registryserver import start_registry

    root = tmp_path_factory.mktemp("secured") / "root"
    r = start_registry(root, "--public", "library/*")
    for name, password in PASSWORDS.items():
        extra = ["--admin"] if name == "root" else []
        done = r.cli(
            "user", "add", name, "--password-stdin", *extra, stdin=password.encode() + b"\n"
        )
        assert done.returncode == 0, done.stderr
    yield r
    r.stop()


def token(r, scope: str | None, user: str | None = None) -> str:
    query = urllib.parse.urlencode(
        {"service": "freight-registry", **({"scope": scope} if scope else {})}
    )
    auth = (user, PASSWORDS[user]) if user else None
    reply = r.request("GET", f"/token?{query}", auth=auth)
    assert reply.status == 200, reply.body
    return reply.json()["token"]


def claims(tok: str) -> dict:
    return jwt.decode(tok, options={"verify_signature": False})


def test_challenge_points_at_the_token_service(secured):
    r = secured.request("GET", "/v2/")
    assert (r.status, r.code()) == (401, "UNAUTHORIZED")
    assert (
        r.headers["www-authenticate"]
        == f'Bearer realm="http://{secured.host}/token",service="freight-registry"'
    )
    r = secured.request("GET", "/v2/alice/app/manifests/latest")
    assert r.status == 401
    assert 'scope="repository:alice/app:pull"' in r.headers["www-authenticate"]
    tok = token(secured, None, "alice")
    assert secured.request("GET", "/v2/", auth=tok).status == 200


def test_users_file_holds_bcrypt_hashes_only(secured):
    path = secured.root / "auth" / "users.json"
    assert path.stat().st_mode & 0o777 == 0o600
    users = json.loads(path.read_text())["users"]
    assert set(users) == set(PASSWORDS)
    assert all(u["hash"].startswith("$2b$") for u in users.values())
    assert "alice-secret" not in path.read_text()
    listed = secured.cli("user", "ls")
    assert (
        listed.returncode == 0
        and b"root\ttrue" in listed.stdout
        and b"alice\tfalse" in listed.stdout
    )


def test_user_pushes_to_own_namespace_with_scoped_token(secured):
    tok = token(secured, "repository:alice/app:pull,push", "alice")
    access = claims(tok)["access"]
    assert access == [{"type": "repository", "name": "alice/app", "actions": ["pull", "push"]}]
    assert claims(tok)["sub"] == "alice" and claims(tok)["exp"] > time.time()
    assert push_image(secured, "alice/app", "v1", make_image(seed=b"alice"), auth=tok).status == 201
    r = secured.request("GET", "/v2/alice/app/manifests/v1", auth=tok)
    assert r.status == 200
    # The same token on another repository grants nothing.
    r = secured.request("GET", "/v2/alice/other/tags/list", auth=tok)
    assert (r.status, r.code()) == (401, "UNAUTHORIZED")
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


def test_other_namespaces_are_denied(secured):
    tok = token(secured, "repository:bob/app:pull,push", "alice")
    assert claims(tok)["access"] == [{"type": "repository", "name": "bob/app", "actions": []}]
    assert push_blob(secured, "bob/app", b"alice was here", auth=tok).status == 401
    r = secured.request("GET", "/v2/alice/app/tags/list", auth=("bob", PASSWORDS["bob"]))
    assert (r.status, r.code()) == (403, "DENIED")
    r = secured.request("GET", "/v2/alice/app/tags/list", auth=("alice", "wrong"))
    assert r.status == 401
    assert (
        secured.request(
            "GET", "/token?scope=repository:alice/app:pull", auth=("alice", "wrong")
        ).status
        == 401
    )
    # Non-namespaced repositories are for admins.
    assert (
        claims(token(secured, "repository:library/base:push", "alice"))["access"][0]["actions"]
        == []
    )
    assert claims(token(secured, "repository:library/base:push,pull", "root"))["access"][0]["actions"] == ["push", "pull"]  # fmt: skip


def test_public_repositories_are_pulled_anonymously(secured):
    admin = token(secured, "repository:library/base:pull,push", "root")
    image = make_image(seed=b"public")
    assert push_image(secured, "library/base", "latest", image, auth=admin).status == 201
    anon = token(secured, "repository:library/base:pull,push")
    assert claims(anon)["access"][0]["actions"] == ["pull"]
    got = secured.request("GET", "/v2/library/base/manifests/latest", auth=anon)
    assert got.status == 200 and got.body == image.manifest
    assert push_blob(secured, "library/base", b"anon push", auth=anon).status == 401
    private = token(secured, "repository:alice/app:pull")
    assert claims(private)["access"][0]["actions"] == []
    assert secured.request("GET", "/v2/alice/app/tags/list").status == 401


def test_cross_repository_mount_needs_read_access_to_the_source(secured):
    bob = token(secured, "repository:bob/secret:pull,push", "bob")
    secret = b"bob's secret layer"
    assert push_blob(secured, "bob/secret", secret, auth=bob).status == 201
    alice = token(secured, "repository:alice/steal:pull,push repository:bob/secret:pull", "alice")
    r = secured.request(
        "POST", f"/v2/alice/steal/blobs/uploads/?mount={blob(secret)}&from=bob/secret", auth=alice
    )
    assert r.status == 202  # no mount: an ordinary upload session
    assert (
        secured.request("HEAD", f"/v2/alice/steal/blobs/{blob(secret)}", auth=alice).status == 404
    )


def _signed(key, claims_: dict, alg: str = "ES256") -> str:
    return jwt.encode(claims_, key, algorithm=alg)


def _claims_for(repo: str, **over) -> dict:
    now = int(time.time())
    base = {"iss": "freight-registry", "sub": "alice", "aud": "freight-registry", "iat": now, "nbf": now - 1,
            "exp": now + 300, "access": [{"type": "repository", "name": repo, "actions": ["pull", "push"]}]}  # fmt: skip
    return {**base, **over}


def test_forged_expired_and_unsigned_tokens_are_denied(secured):
    path = "/v2/alice/app/tags/list"
    forged = _signed(ec.generate_private_key(ec.SECP256R1()), _claims_for("alice/app"))
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    payload = (
        base64.urlsafe_b64encode(json.dumps(_claims_for("alice/app")).encode())
        .rstrip(b"=")
        .decode()
    )
    unsigned = f"{header}.{payload}."
    real_key = serialization.load_pem_private_key(
        (secured.root / "auth" / "token-key.pem").read_bytes(), None
    )
    expired = _signed(real_key, _claims_for("alice/app", exp=int(time.time()) - 10))
    wrong_audience = _signed(real_key, _claims_for("alice/app", aud="someone-else"))
    hs256 = jwt.api_jws.PyJWS().encode(
        json.dumps(_claims_for("alice/app")).encode(), key=b"k" * 32, algorithm="HS256"
    )
    valid = _signed(real_key, _claims_for("alice/app"))
    assert secured.request("GET", path, auth=valid).status == 200
    for bad in (forged, unsigned, expired, wrong_audience, hs256, valid[:-4] + "AAAA", "garbage"):
        r = secured.request("GET", path, auth=bad)
        assert (r.status, r.code()) == (401, "UNAUTHORIZED"), bad
        assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_catalog_and_search_follow_access(secured):
    alice = secured.request("GET", "/v2/_catalog", auth=("alice", PASSWORDS["alice"])).json()[
        "repositories"
    ]
    assert "alice/app" in alice and "library/base" in alice and "bob/secret" not in alice
    root = secured.request("GET", "/v2/_catalog", auth=("root", PASSWORDS["root"])).json()[
        "repositories"
    ]
    assert "bob/secret" in root
    anon = secured.request("GET", "/v1/search?q=").json()
    assert [r["name"] for r in anon["results"]] == ["library/base"]


def test_passwd_and_rm_take_effect_on_the_running_server(secured):
    done = secured.cli("user", "add", "carol", "--password-stdin", stdin=b"one\n")
    assert done.returncode == 0
    assert secured.cli("user", "add", "carol", "--password-stdin", stdin=b"x\n").returncode == 1
    assert (
        secured.request("GET", "/token?scope=repository:carol/x:pull", auth=("carol", "one")).status
        == 200
    )
    assert (
        secured.cli("user", "passwd", "carol", "--password-stdin", stdin=b"two\n").returncode == 0
    )
    assert secured.request("GET", "/token", auth=("carol", "one")).status == 401
    assert secured.request("GET", "/token", auth=("carol", "two")).status == 200
    assert secured.cli("user", "rm", "carol").returncode == 0
    assert secured.request("GET", "/token", auth=("carol", "two")).status == 401
    bad = secured.cli("user", "add", "Not Valid", "--password-stdin", stdin=b"x\n")
    assert bad.returncode == 1 and b"invalid user name" in bad.stderr


def test_read_only_mode_refuses_writes(registry_factory):
    r = registry_factory("--read-only")
    reply = r.request("POST", "/v2/ro/app/blobs/uploads/")
    assert (reply.status, reply.code()) == (405, "UNSUPPORTED")
    assert r.request("GET", "/v2/").status == 200
    assert r.request("GET", "/healthz").json()["read_only"] is True


def test_manifest_put_needs_push(secured):
    tok = token(secured, "repository:alice/app:pull", "alice")
    image = make_image(seed=b"pull-only")
    r = secured.request(
        "PUT", "/v2/alice/app/manifests/x", image.manifest, {"Content-Type": OCI_MANIFEST}, auth=tok
    )
    assert r.status == 401
