"""Registry storage, accounts policy and tokens, without a server."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from freight import errors
from freight.oci.digest import Digest
from freight.registry import storage as st
from freight.registry.accounts import Accounts, Policy
from freight.registry.config import load
from freight.registry.tokens import Scope, TokenService, parse_scope


def d(data: bytes) -> Digest:
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


def test_layout_paths_are_built_in_one_place(tmp_path):
    layout = st.Layout(tmp_path)
    digest = d(b"x")
    assert layout.blob(digest) == tmp_path / "blobs" / "sha256" / digest.hex
    assert layout.tag("a/b", "v1") == tmp_path / "repositories" / "a/b" / "_meta" / "tags" / "v1"
    assert layout.blob_link("a", digest).parent.name == "sha256"


@pytest.mark.parametrize("name", ["a", "a/b", "a.b_c__d-e/f---g", "x" * 255])
def test_valid_names(name):
    assert st.check_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "a/", "/a", "a//b", "a/../b", "_meta", "a/_meta", "-a", "x" * 256, "a:b"])  # fmt: skip
def test_invalid_names(name):
    with pytest.raises(st.NameInvalid):
        st.check_name(name)


def test_chunked_upload_is_verified_and_linked(tmp_path):
    s = st.Storage(tmp_path)
    state = s.start_upload("r")
    w = s.open_upload(state, 0)
    w.write(b"hello ")
    w.close()
    state = s.upload_state("r", state.uuid)
    with pytest.raises(st.RangeInvalid):
        s.open_upload(state, 0)
    w = s.open_upload(state, 6)
    w.write(b"world")
    w.close()
    blob = s.finish_upload(s.upload_state("r", state.uuid), d(b"hello world"))
    assert blob.path.read_bytes() == b"hello world"
    assert s.repo_blob("r", d(b"hello world")) is not None
    assert s.repo_blob("other", d(b"hello world")) is None
    assert s.uploads_in_progress() == []


def test_digest_mismatch_leaves_nothing(tmp_path):
    s = st.Storage(tmp_path)
    state = s.start_upload("r")
    w = s.open_upload(state, None)
    w.write(b"abc")
    w.close()
    with pytest.raises(errors.InvalidArgument):
        s.finish_upload(s.upload_state("r", state.uuid), d(b"xyz"))
    assert list(s.iter_blobs()) == [] and s.uploads_in_progress() == []


def test_restarted_server_rehashes_the_upload(tmp_path):
    s = st.Storage(tmp_path)
    state = s.start_upload("r")
    w = s.open_upload(state, 0)
    w.write(b"part one")
    w.close()
    fresh = st.Storage(tmp_path)  # a new process: no running hash in memory
    blob = fresh.finish_upload(fresh.upload_state("r", state.uuid), d(b"part one"))
    assert blob.size == 8


def test_uploads_expire(tmp_path):
    s = st.Storage(tmp_path)
    old = s.start_upload("r")
    new = s.start_upload("r")
    past = time.time() - 7200
    os.utime(s.layout.upload_data(old.uuid), (past, past))
    assert s.expire_uploads(3600) == [old.uuid]
    assert s.uploads_in_progress() == [new.uuid]
    with pytest.raises(st.UploadUnknown):
        s.upload_state("r", old.uuid)


def test_tags_manifests_and_repositories(tmp_path):
    s = st.Storage(tmp_path)
    m = s.put_manifest("a/b", b"{}", "application/vnd.oci.image.manifest.v1+json", None)
    s.set_tag("a/b", "v1", m)
    s.set_tag("a/b", "v2", m)
    assert s.tags("a/b") == ["v1", "v2"] and s.resolve_tag("a/b", "v1") == m
    assert s.repositories() == ["a/b"]
    assert s.delete_manifest("a/b", m)
    assert s.tags("a/b") == [] and s.manifest_type("a/b", m) is None
    with pytest.raises(errors.InvalidArgument):
        s.put_manifest("a/b", b"{}", "x", d(b"other"))


def test_policy(tmp_path):
    accounts = Accounts(tmp_path)
    policy = Policy(accounts, ["library/*"])
    assert policy.allowed(None, "anything", ["pull", "push"]) == ["pull", "push"]  # no accounts yet
    accounts.add("alice", "pw")
    accounts.add("root", "pw", admin=True)
    alice, root = accounts.get("alice"), accounts.get("root")
    assert policy.allowed(alice, "alice/x", ["pull", "push", "delete"]) == [
        "pull",
        "push",
        "delete",
    ]
    assert policy.allowed(alice, "alicex/y", ["pull"]) == []
    assert policy.allowed(alice, "library/base", ["pull", "push"]) == ["pull"]
    assert policy.allowed(None, "library/base", ["push", "pull"]) == ["pull"]
    assert policy.allowed(root, "bob/x", ["delete"]) == ["delete"]
    assert accounts.verify("alice", "pw") == alice and accounts.verify("alice", "nope") is None
    with pytest.raises(errors.AlreadyExists):
        accounts.add("alice", "x")


def test_tokens_round_trip_and_scope_parsing(tmp_path):
    service = TokenService(tmp_path, "svc")
    tok = service.issue("alice", [Scope("repository", "a/b", ["pull"])])["token"]
    assert service.verify(tok) == ("alice", [Scope("repository", "a/b", ["pull"])])
    assert TokenService(tmp_path, "other-service").verify(tok) is None  # audience
    assert TokenService(tmp_path / "other-key", "svc").verify(tok) is None  # signature
    assert parse_scope("repository:a/b:pull,push") == Scope("repository", "a/b", ["pull", "push"])
    assert parse_scope("garbage") is None


def test_config_file_and_overrides(tmp_path):
    cfg = tmp_path / "r.toml"
    cfg.write_text('addr = "127.0.0.1:6000"\npublic = ["library/*"]\nread_only = true\n')
    c = load(str(cfg), addr=None, root=str(tmp_path))
    assert c.host_port() == ("127.0.0.1", 6000) and c.public == ["library/*"] and c.read_only
    cfg.write_text("bogus = 1\n")
    with pytest.raises(errors.InvalidArgument, match="bogus"):
        load(str(cfg))
    with pytest.raises(errors.InvalidArgument, match="HOST:PORT"):
        load(None, addr="nope").host_port()


def test_hub_pull_counts_stars_and_access_tokens(tmp_path):
    from freight.registry.hub import AccessTokens, Hub

    s = st.Storage(tmp_path)
    s.put_manifest("a/b", b"{}", "application/vnd.oci.image.manifest.v1+json", None)
    hub = Hub(s)
    hub.count_pull("a/b")
    hub.count_pull("a/b")
    assert hub.info("a/b").pulls == 2
    hub.flush()
    assert Hub(s).info("a/b").pulls == 2  # written to hub.json
    assert hub.toggle_star("a/b", "alice") and hub.info("a/b").stars == ["alice"]
    assert not hub.toggle_star("a/b", "alice") and hub.info("a/b").stars == []
    tokens = AccessTokens(tmp_path / "auth")
    token, secret = tokens.create("alice", "ci")
    assert secret not in (tmp_path / "auth" / "access-tokens.json").read_text()
    assert tokens.matches("alice", secret) and not tokens.matches("bob", secret)
    assert not tokens.revoke("bob", token.id) and tokens.revoke("alice", token.id)
    assert not tokens.matches("alice", secret)
