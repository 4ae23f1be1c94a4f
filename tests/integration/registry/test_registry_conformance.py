"""Conformance walk of the OCI Distribution Spec v1.1 against `freight registry serve`.

Every endpoint, in the spec's order (pull, push, content discovery, content management),
with its success shape (status, Location, Docker-Content-Digest, Range, Link) and its
error cases (code and status), plus inputs that must never produce a 500.
"""

from __future__ import annotations

import json
import socket

from registryserver import OCI_MANIFEST, blob, make_image, push_blob, push_image

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ZERO = "sha256:" + "0" * 64


def test_base_endpoint(registry):
    r = registry.request("GET", "/v2/")
    assert r.status == 200
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"
    assert r.json() == {}


def test_monolithic_upload_then_pull_with_ranges(registry):
    data = b"0123456789" * 1000
    r = push_blob(registry, "conf/mono", data)
    assert r.status == 201
    assert r.headers["location"] == f"/v2/conf/mono/blobs/{blob(data)}"
    assert r.headers["docker-content-digest"] == blob(data)
    head = registry.request("HEAD", f"/v2/conf/mono/blobs/{blob(data)}")
    assert (head.status, head.headers["content-length"], head.body) == (200, str(len(data)), b"")
    assert head.headers["docker-content-digest"] == blob(data)
    get = registry.request("GET", f"/v2/conf/mono/blobs/{blob(data)}")
    assert get.status == 200 and get.body == data
    part = registry.request(
        "GET", f"/v2/conf/mono/blobs/{blob(data)}", headers={"Range": "bytes=10-19"}
    )
    assert part.status == 206 and part.body == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = registry.request(
        "GET", f"/v2/conf/mono/blobs/{blob(data)}", headers={"Range": "bytes=-5"}
    )
    assert tail.status == 206 and tail.body == data[-5:]
    bad = registry.request(
        "GET", f"/v2/conf/mono/blobs/{blob(data)}", headers={"Range": f"bytes={len(data)}-"}
    )
    assert bad.status == 416


def test_post_then_put_upload(registry):
    data = b"post-put" * 100
    start = registry.request("POST", "/v2/conf/postput/blobs/uploads/")
    assert start.status == 202
    location = start.headers["location"]
    assert location.startswith("/v2/conf/postput/blobs/uploads/")
    assert start.headers["docker-upload-uuid"] in location
    done = registry.request(
        "PUT", f"{location}?digest={blob(data)}", data, {"Content-Type": "application/octet-stream"}
    )
    assert done.status == 201
    assert done.headers["docker-content-digest"] == blob(data)
    assert registry.request("GET", f"/v2/conf/postput/blobs/{blob(data)}").body == data


def test_chunked_upload_and_out_of_order_chunk(registry):
    a, b = b"a" * 5000, b"b" * 3000
    location = registry.request("POST", "/v2/conf/chunked/blobs/uploads/").headers["location"]
    first = registry.request(
        "PATCH",
        location,
        a,
        {"Content-Range": f"0-{len(a) - 1}", "Content-Type": "application/octet-stream"},
    )
    assert first.status == 202
    assert first.headers["range"] == f"0-{len(a) - 1}"
    location = first.headers["location"]
    wrong = registry.request(
        "PATCH", location, b, {"Content-Range": f"{len(a) + 10}-{len(a) + len(b) + 9}"}
    )
    assert wrong.status == 416
    assert wrong.headers["range"] == f"0-{len(a) - 1}"
    status = registry.request("GET", location)
    assert status.status == 204 and status.headers["range"] == f"0-{len(a) - 1}"
    second = registry.request(
        "PATCH", location, b, {"Content-Range": f"{len(a)}-{len(a) + len(b) - 1}"}
    )
    assert second.status == 202
    assert second.headers["range"] == f"0-{len(a) + len(b) - 1}"
    done = registry.request("PUT", f"{second.headers['location']}?digest={blob(a + b)}")
    assert done.status == 201
    assert registry.request("GET", f"/v2/conf/chunked/blobs/{blob(a + b)}").body == a + b


def test_streamed_patch_without_content_range(registry):
    data = b"stream" * 10000
    location = registry.request("POST", "/v2/conf/stream/blobs/uploads/").headers["location"]
    patched = registry.request("PATCH", location, data)
    assert patched.status == 202
    assert (
        registry.request("PUT", f"{patched.headers['location']}?digest={blob(data)}").status == 201
    )


def test_digest_mismatch_stores_nothing(registry):
    data = b"real content"
    r = registry.request("POST", f"/v2/conf/mismatch/blobs/uploads/?digest={blob(b'other')}", data)
    assert (r.status, r.code()) == (400, "DIGEST_INVALID")
    for digest in (blob(data), blob(b"other")):
        assert registry.request("HEAD", f"/v2/conf/mismatch/blobs/{digest}").status == 404
    location = registry.request("POST", "/v2/conf/mismatch/blobs/uploads/").headers["location"]
    r = registry.request("PUT", f"{location}?digest={blob(b'other')}", data)
    assert (r.status, r.code()) == (400, "DIGEST_INVALID")
    assert registry.request("GET", location).code() == "BLOB_UPLOAD_UNKNOWN"


def test_malformed_digests_are_400(registry):
    for path, method in [
        ("/v2/conf/bad/blobs/sha256:xyz", "GET"),
        ("/v2/conf/bad/blobs/md5:abc", "HEAD"),
        ("/v2/conf/bad/blobs/uploads/?digest=nope", "POST"),
        ("/v2/conf/bad/manifests/sha256:123", "GET"),
        ("/v2/conf/bad/referrers/sha256:zz", "GET"),
    ]:
        r = registry.request(method, path, b"x" if method == "POST" else None)
        assert r.status == 400, (method, path, r.status)
        if method != "HEAD":
            assert r.code() == "DIGEST_INVALID"


def test_unknown_blob_upload_and_cancel(registry):
    r = registry.request("GET", f"/v2/conf/unknown/blobs/{ZERO}")
    assert (r.status, r.code()) == (404, "BLOB_UNKNOWN")
    r = registry.request("GET", "/v2/conf/unknown/blobs/uploads/" + "f" * 32)
    assert (r.status, r.code()) == (404, "BLOB_UPLOAD_UNKNOWN")
    r = registry.request("PATCH", "/v2/conf/unknown/blobs/uploads/../../etc", b"x")
    assert r.status in (400, 404)
    location = registry.request("POST", "/v2/conf/unknown/blobs/uploads/").headers["location"]
    assert registry.request("DELETE", location).status == 204
    assert registry.request("GET", location).code() == "BLOB_UPLOAD_UNKNOWN"
    # An upload id belongs to its repository.
    location = registry.request("POST", "/v2/conf/owner/blobs/uploads/").headers["location"]
    other = location.replace("/conf/owner/", "/conf/thief/")
    assert registry.request("GET", other).code() == "BLOB_UPLOAD_UNKNOWN"


def test_cross_repository_mount(registry):
    data = b"shared layer"
    assert push_blob(registry, "conf/mount-src", data).status == 201
    r = registry.request(
        "POST", f"/v2/conf/mount-dst/blobs/uploads/?mount={blob(data)}&from=conf/mount-src"
    )
    assert r.status == 201
    assert r.headers["location"] == f"/v2/conf/mount-dst/blobs/{blob(data)}"
    assert registry.request("GET", f"/v2/conf/mount-dst/blobs/{blob(data)}").body == data
    # Unknown blob or source: an ordinary upload session instead.
    r = registry.request(
        "POST", f"/v2/conf/mount-dst/blobs/uploads/?mount={ZERO}&from=conf/mount-src"
    )
    assert r.status == 202 and "/blobs/uploads/" in r.headers["location"]
    # Blobs are per repository: stored once, visible only where linked.
    assert registry.request("HEAD", f"/v2/conf/elsewhere/blobs/{blob(data)}").status == 404


def test_manifest_put_get_head_by_tag_and_digest(registry):
    image = make_image()
    r = push_image(registry, "conf/img", "v1", image)
    assert r.status == 201
    assert r.headers["docker-content-digest"] == image.digest
    assert r.headers["location"] == f"/v2/conf/img/manifests/{image.digest}"
    for ref in ("v1", image.digest):
        got = registry.request(
            "GET", f"/v2/conf/img/manifests/{ref}", headers={"Accept": OCI_MANIFEST}
        )
        assert got.status == 200 and got.body == image.manifest
        assert got.headers["content-type"] == OCI_MANIFEST
        assert got.headers["docker-content-digest"] == image.digest
        head = registry.request("HEAD", f"/v2/conf/img/manifests/{ref}")
        assert head.status == 200 and head.headers["content-length"] == str(len(image.manifest))
    # Content negotiation: a client that accepts only Docker manifests gets no OCI one.
    r = registry.request("GET", "/v2/conf/img/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert (r.status, r.code()) == (404, "MANIFEST_UNKNOWN")
    r = registry.request("GET", "/v2/conf/img/manifests/v1", headers={"Accept": f"{DOCKER_MANIFEST}, {OCI_MANIFEST}"})  # fmt: skip
    assert r.status == 200
    # Put by digest: the digest must be the body's.
    assert registry.request("PUT", f"/v2/conf/img/manifests/{image.digest}", image.manifest, {"Content-Type": OCI_MANIFEST}).status == 201  # fmt: skip
    r = registry.request(
        "PUT", f"/v2/conf/img/manifests/{ZERO}", image.manifest, {"Content-Type": OCI_MANIFEST}
    )
    assert (r.status, r.code()) == (400, "DIGEST_INVALID")


def test_manifest_errors(registry):
    image = make_image(seed=b"missing")
    put = lambda ref, body, ct=OCI_MANIFEST: registry.request(  # noqa: E731
        "PUT", f"/v2/conf/bad-manifest/manifests/{ref}", body, {"Content-Type": ct}
    )
    r = put("v1", image.manifest)
    assert (r.status, r.code()) == (400, "MANIFEST_BLOB_UNKNOWN")
    r = put("v1", b"{not json")
    assert (r.status, r.code()) == (400, "MANIFEST_INVALID")
    r = put("v1", b"[]")
    assert (r.status, r.code()) == (400, "MANIFEST_INVALID")
    r = put("v1", json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"digest": "sha256:zz", "size": 1}, "layers": []}).encode())  # fmt: skip
    assert (r.status, r.code()) == (400, "MANIFEST_INVALID")
    r = put("v1", json.dumps({"schemaVersion": 1}).encode(), "application/vnd.docker.distribution.manifest.v1+prettyjws")  # fmt: skip
    assert (r.status, r.code()) == (400, "MANIFEST_INVALID")
    r = put("bad:tag!", image.manifest)
    assert r.status == 400
    r = put("v1", b" " * (4 * 1024 * 1024 + 1))
    assert r.status == 413
    assert registry.request("GET", "/v2/conf/bad-manifest/manifests/v1").status == 404
    r = registry.request("GET", "/v2/conf/never-pushed/manifests/latest")
    assert (r.status, r.code()) == (404, "NAME_UNKNOWN")
    push_image(registry, "conf/known", "v1", make_image(seed=b"known"))
    r = registry.request("GET", "/v2/conf/known/manifests/nope")
    assert (r.status, r.code()) == (404, "MANIFEST_UNKNOWN")
    r = registry.request("GET", f"/v2/conf/known/manifests/{ZERO}")
    assert (r.status, r.code()) == (404, "MANIFEST_UNKNOWN")


def test_index_references_must_exist(registry):
    image = make_image(seed=b"index-child")
    push_image(registry, "conf/multi", "child", image)

    def index(children):
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": d,
                        "size": 1,
                        "platform": {"os": "linux", "architecture": "amd64"},
                    }
                    for d in children
                ],
            }  # fmt: skip
        ).encode()

    r = registry.request(
        "PUT", "/v2/conf/multi/manifests/all", index([ZERO]), {"Content-Type": OCI_INDEX}
    )
    assert (r.status, r.code()) == (400, "MANIFEST_BLOB_UNKNOWN")
    r = registry.request(
        "PUT", "/v2/conf/multi/manifests/all", index([image.digest]), {"Content-Type": OCI_INDEX}
    )
    assert r.status == 201
    assert (
        registry.request("GET", "/v2/conf/multi/manifests/all").headers["content-type"] == OCI_INDEX
    )


def test_tags_list_pagination(registry):
    image = make_image(seed=b"tags")
    for tag in ("a", "b", "c", "d", "e"):
        assert push_image(registry, "conf/tags", tag, image).status == 201
    assert registry.request("GET", "/v2/conf/tags/tags/list").json() == {"name": "conf/tags", "tags": ["a", "b", "c", "d", "e"]}  # fmt: skip
    page = registry.request("GET", "/v2/conf/tags/tags/list?n=2")
    assert page.json()["tags"] == ["a", "b"]
    assert page.headers["link"] == '</v2/conf/tags/tags/list?n=2&last=b>; rel="next"'
    assert registry.request("GET", "/v2/conf/tags/tags/list?n=2&last=b").json()["tags"] == [
        "c",
        "d",
    ]
    last = registry.request("GET", "/v2/conf/tags/tags/list?n=2&last=d")
    assert last.json()["tags"] == ["e"] and "link" not in last.headers
    assert registry.request("GET", "/v2/conf/tags/tags/list?n=0").json()["tags"] == []
    assert len(registry.request("GET", "/v2/conf/tags/tags/list?n=999999999").json()["tags"]) == 5
    for bad in ("-1", "abc"):
        r = registry.request("GET", f"/v2/conf/tags/tags/list?n={bad}")
        assert (r.status, r.code()) == (400, "PAGINATION_NUMBER_INVALID")
    r = registry.request("GET", "/v2/conf/no-such-repo/tags/list")
    assert (r.status, r.code()) == (404, "NAME_UNKNOWN")


def test_catalog_pagination(registry):
    push_image(registry, "conf/zz-catalog", "v1", make_image(seed=b"catalog"))
    repos = registry.request("GET", "/v2/_catalog").json()["repositories"]
    assert repos == sorted(repos) and "conf/zz-catalog" in repos
    first = registry.request("GET", "/v2/_catalog?n=1")
    assert first.json()["repositories"] == repos[:1]
    assert first.headers["link"] == f'</v2/_catalog?n=1&last={repos[0]}>; rel="next"'
    rest = registry.request("GET", f"/v2/_catalog?last={repos[0]}").json()["repositories"]
    assert rest == repos[1:]


def test_referrers_api(registry):
    image = make_image(seed=b"subject")
    push_image(registry, "conf/refs", "v1", image)
    empty = b"{}"
    push_blob(registry, "conf/refs", empty)
    artifact = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sbom",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": blob(empty),
                "size": 2,
            },
            "layers": [
                {"mediaType": "application/vnd.oci.empty.v1+json", "digest": blob(empty), "size": 2}
            ],
            "subject": {
                "mediaType": OCI_MANIFEST,
                "digest": image.digest,
                "size": len(image.manifest),
            },
            "annotations": {"org.example": "yes"},
        }
    ).encode()
    r = registry.request(
        "PUT", f"/v2/conf/refs/manifests/{blob(artifact)}", artifact, {"Content-Type": OCI_MANIFEST}
    )
    assert r.status == 201 and r.headers["oci-subject"] == image.digest
    got = registry.request("GET", f"/v2/conf/refs/referrers/{image.digest}")
    assert got.status == 200 and got.headers["content-type"] == OCI_INDEX
    index = got.json()
    assert index["mediaType"] == OCI_INDEX
    assert index["manifests"] == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": blob(artifact),
            "size": len(artifact),
            "artifactType": "application/vnd.example.sbom",
            "annotations": {"org.example": "yes"},
        }  # fmt: skip
    ]
    filtered = registry.request(
        "GET", f"/v2/conf/refs/referrers/{image.digest}?artifactType=other/type"
    )
    assert (
        filtered.json()["manifests"] == []
        and filtered.headers["oci-filters-applied"] == "artifactType"
    )
    assert registry.request("GET", f"/v2/conf/refs/referrers/{ZERO}").json()["manifests"] == []


def test_content_management_deletes(registry):
    image = make_image(seed=b"delete")
    push_image(registry, "conf/del", "v1", image)
    push_image(registry, "conf/del", "v2", image)
    assert registry.request("DELETE", "/v2/conf/del/manifests/v2").status == 202
    assert registry.request("GET", "/v2/conf/del/manifests/v2").status == 404
    assert registry.request("GET", "/v2/conf/del/manifests/v1").status == 200
    assert registry.request("DELETE", f"/v2/conf/del/manifests/{image.digest}").status == 202
    r = registry.request("GET", "/v2/conf/del/manifests/v1")
    assert (r.status, r.code()) == (404, "MANIFEST_UNKNOWN")
    assert (
        registry.request("DELETE", f"/v2/conf/del/manifests/{image.digest}").code()
        == "MANIFEST_UNKNOWN"
    )
    layer = blob(image.layers[0])
    assert registry.request("DELETE", f"/v2/conf/del/blobs/{layer}").status == 202
    assert registry.request("GET", f"/v2/conf/del/blobs/{layer}").code() == "BLOB_UNKNOWN"
    assert registry.request("DELETE", f"/v2/conf/del/blobs/{layer}").status == 404


def test_bad_names_methods_and_paths_are_never_500(registry):
    r = registry.request("GET", "/v2/UPPER/tags/list")
    assert (r.status, r.code()) == (400, "NAME_INVALID")
    r = registry.request("GET", "/v2/a//b/tags/list")
    assert r.status == 400
    r = registry.request("POST", "/v2/conf/x/manifests/latest")
    assert (r.status, r.code()) == (405, "UNSUPPORTED")
    weird = ["/v2/%2e%2e/%2e%2e/tags/list", "/v2/x/blobs/uploads/%00", "/v2/_catalog?n=1e9", "/nope",
             "/v2/" + "a/" * 200 + "tags/list", "/v2/x/manifests/" + "t" * 200, "/v2/x/referrers/"]  # fmt: skip
    for path in weird:
        for method in ("GET", "PUT", "PATCH", "DELETE"):
            r = registry.request(method, path, b"{}" if method in ("PUT", "PATCH") else None)
            assert 400 <= r.status < 500, (method, path, r.status)
    r = registry.request(
        "PATCH", "/v2/conf/x/blobs/uploads/" + "a" * 32, b"x", {"Content-Range": "garbage"}
    )
    assert r.status in (404, 416)


def test_client_disconnect_mid_upload_leaves_no_blob(registry):
    data = b"z" * (1 << 20)
    with socket.create_connection(("127.0.0.1", registry.port)) as s:
        s.sendall(
            f"POST /v2/conf/gone/blobs/uploads/?digest={blob(data)} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data[: len(data) // 2]
        )
    assert registry.request("HEAD", f"/v2/conf/gone/blobs/{blob(data)}").status == 404
    assert registry.request("GET", "/v2/").status == 200
    assert not list((registry.root / "blobs" / "sha256").glob(blob(data).split(":")[1]))


def test_keep_alive_serves_many_requests_on_one_connection(registry):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", registry.port)
    for _ in range(50):
        conn.request("GET", "/v2/")
        assert conn.getresponse().read() == b"{}"
    conn.close()


def test_health_metrics_and_search(registry):
    assert registry.request("GET", "/healthz").json()["status"] == "ok"
    metrics = registry.request("GET", "/metrics").body.decode()
    assert "freight_registry_requests_total{" in metrics
    push_image(registry, "conf/searchable-app", "v1", make_image(seed=b"search"))
    found = registry.request("GET", "/v1/search?q=searchable&n=5").json()
    assert found["num_results"] == 1 and found["query"] == "searchable"
    assert found["results"][0]["name"] == "conf/searchable-app"
    assert set(found["results"][0]) == {
        "name",
        "description",
        "star_count",
        "is_official",
        "is_automated",
    }
