"""`freight registry gc`: after deleting a tag, exactly the unreferenced blobs go."""

from __future__ import annotations

from registryserver import blob, make_image, push_blob, push_image


def blob_files(r) -> set[str]:
    return {"sha256:" + p.name for p in (r.root / "blobs" / "sha256").iterdir()}


def test_gc_after_deleting_a_tag_frees_exactly_the_unreferenced_blobs(registry_factory):
    r = registry_factory()
    keep = make_image((5000, 6000), seed=b"keep")
    drop = make_image((7000,), seed=b"drop")
    shared = keep.layers[0]
    drop.layers.insert(0, shared)  # shares a layer with the image that stays
    import json

    m = json.loads(drop.manifest)
    m["layers"].insert(0, {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob(shared), "size": len(shared)})  # fmt: skip
    drop.manifest = json.dumps(m).encode()
    assert push_image(r, "gc/app", "keep", keep).status == 201
    assert push_image(r, "gc/app", "drop", drop).status == 201
    # An upload in progress is never touched.
    upload = r.request("POST", "/v2/gc/app/blobs/uploads/").headers["location"]
    assert r.request("PATCH", upload, b"half of a layer").status == 202
    assert r.request("DELETE", "/v2/gc/app/manifests/drop").status == 202
    before = blob_files(r)
    unreferenced = {drop.digest, blob(drop.config), blob(drop.layers[1])}
    assert unreferenced <= before

    dry = r.cli("gc", "--dry-run", "--grace", "0")
    assert dry.returncode == 0, dry.stderr
    assert blob_files(r) == before
    for digest in unreferenced:
        assert digest.encode() in dry.stdout

    done = r.cli("gc", "--grace", "0")
    assert done.returncode == 0, done.stderr
    assert blob_files(r) == before - unreferenced
    assert r.request("GET", "/v2/gc/app/manifests/keep").status == 200
    for data in (keep.config, *keep.layers):
        assert r.request("GET", f"/v2/gc/app/blobs/{blob(data)}").body == data
    assert r.request("GET", f"/v2/gc/app/manifests/{drop.digest}").status == 404
    assert r.request("GET", upload).status == 204
    assert r.request("PUT", f"{upload}?digest={blob(b'half of a layer')}").status == 201


def test_gc_grace_keeps_fresh_blobs_of_a_push_in_progress(registry_factory):
    r = registry_factory()
    assert push_blob(r, "gc/pushing", b"layer uploaded, manifest not yet").status == 201
    done = r.cli("gc")
    assert done.returncode == 0
    assert (
        r.request(
            "HEAD", f"/v2/gc/pushing/blobs/{blob(b'layer uploaded, manifest not yet')}"
        ).status
        == 200
    )
