"""Challenge parsing, credentials and platform selection (pure logic)."""

from __future__ import annotations

import json

import pytest

from freight.distribution.auth import Credentials, parse_challenges, repository_scope
from freight.distribution.platforms import parse_platform, select
from freight.errors import InvalidArgument, NotFound
from freight.oci.image import Index


def test_bearer_challenge_with_quoted_params() -> None:
    [ch] = parse_challenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull"'
    )
    assert ch.scheme == "bearer"
    assert ch.realm == "https://auth.docker.io/token"
    assert ch.params["service"] == "registry.docker.io"
    assert ch.params["scope"] == "repository:library/busybox:pull"


def test_basic_and_several_challenges() -> None:
    chs = parse_challenges('Basic realm="test-realm", Bearer realm="http://h/t",service=s')
    assert [c.scheme for c in chs] == ["basic", "bearer"]
    assert chs[0].realm == "test-realm"
    assert chs[1].params == {"realm": "http://h/t", "service": "s"}


def test_escaped_quote_and_empty_header() -> None:
    [ch] = parse_challenges(r'Bearer realm="a\"b"')
    assert ch.realm == 'a"b'
    assert parse_challenges("") == []


def test_credentials_hide_secrets_and_basic_header() -> None:
    c = Credentials("alice", "s3cret")
    assert "s3cret" not in repr(c)
    assert c.basic_header() == "Basic YWxpY2U6czNjcmV0"
    assert Credentials().empty and not c.empty
    assert repository_scope("a/b", ("pull", "push")) == "repository:a/b:pull,push"


def _index(*platforms: tuple[str, str, str]) -> Index:
    manifests = []
    for i, (os_, arch, variant) in enumerate(platforms):
        plat = {"os": os_, "architecture": arch} | ({"variant": variant} if variant else {})
        manifests.append({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + f"{i:x}" * 64,
            "size": 10,
            "platform": plat,
        })  # fmt: skip
    return Index.from_json(json.dumps({"schemaVersion": 2, "manifests": manifests}).encode())


def test_select_exact_then_variantless() -> None:
    idx = _index(("linux", "arm", "v6"), ("linux", "arm", "v7"), ("linux", "amd64", ""))
    assert select(idx, ("linux", "arm", "v7")).digest == "sha256:" + "1" * 64
    assert select(idx, ("linux", "amd64", "")).digest == "sha256:" + "2" * 64
    arm64 = _index(("linux", "arm64", ""))
    assert select(arm64, ("linux", "arm64", "v8")).digest == "sha256:" + "0" * 64
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x"):
        select(idx, ("linux", "s390x", ""))


def test_parse_platform() -> None:
    assert parse_platform("linux/arm64/v8") == ("linux", "arm64", "v8")
    assert parse_platform("linux/x86_64") == ("linux", "amd64", "")
    assert parse_platform("")[0] == "linux"
    with pytest.raises(InvalidArgument, match="linux//"):
        parse_platform("linux//")
