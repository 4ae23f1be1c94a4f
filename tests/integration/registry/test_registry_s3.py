"""`freight registry serve` on the S3 driver: a moto S3 server on 127.0.0.1 holds the
bucket; pushes and pulls over HTTP and with skopeo, two registry processes sharing one
bucket (an upload started on one and finished on the other), gc, bad settings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from registryserver import blob, freight_cli, make_image, push_blob, push_image, write_oci_layout

PART = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(moto_endpoint: str) -> tuple[object, str]:
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = f"reg-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return client, name


@pytest.fixture
def s3_config(tmp_path: Path, moto_endpoint: str, bucket) -> Path:
    path = tmp_path / "registry.toml"
    path.write_text(
        "[storage.s3]\n"
        f'bucket = "{bucket[1]}"\n'
        'region = "us-east-1"\n'
        f'endpoint_url = "{moto_endpoint}"\n'
        'access_key = "testing"\n'
        'secret_key = "testing"\n'
        'prefix = "freight"\n'
    )
    return path


def keys(bucket, prefix: str = "freight/") -> list[str]:
    client, name = bucket
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=name, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def test_push_and_pull_through_s3(registry_factory, s3_config, bucket):
    r = registry_factory("--config", str(s3_config))
    image = make_image((100_000, 3_000))
    assert push_image(r, "team/app", "v1", image).status == 201
    got = r.request("GET", "/v2/team/app/manifests/v1", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})  # fmt: skip
    assert got.status == 200 and got.body == image.manifest
    layer = image.layers[0]
    assert r.request("GET", f"/v2/team/app/blobs/{blob(layer)}").body == layer
    part = r.request("GET", f"/v2/team/app/blobs/{blob(layer)}", headers={"Range": "bytes=10-19"})
    assert part.status == 206 and part.body == layer[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(layer)}"
    head = r.request("HEAD", f"/v2/team/app/blobs/{blob(layer)}")
    assert head.status == 200 and int(head.headers["content-length"]) == len(layer)
    assert r.request("GET", "/v2/_catalog").json() == {"repositories": ["team/app"]}
    hexd = blob(layer).split(":")[1]
    assert f"freight/blobs/sha256/{hexd[:2]}/{hexd}" in keys(bucket)
    assert not (r.root / "blobs" / "sha256" / hexd).exists()  # nothing on local disk


def test_two_registries_share_one_bucket(registry_factory, s3_config, bucket):
    a = registry_factory("--config", str(s3_config))
    b = registry_factory("--config", str(s3_config))
    data = os.urandom(PART + 300_000)  # one full part, then a short last one
    first, second = data[: PART + 1000], data[PART + 1000 :]
    started = a.request("POST", "/v2/shared/app/blobs/uploads/")
    assert started.status == 202
    location = started.headers["location"]
    patch = a.request("PATCH", location, first, {"Content-Range": f"0-{len(first) - 1}", "Content-Type": "application/octet-stream"})  # fmt: skip
    assert patch.status == 202, patch.body
    status = b.request("GET", location)
    assert status.status == 204 and status.headers["range"] == f"0-{len(first) - 1}"
    stale = b.request("PATCH", location, b"x", {"Content-Range": "0-0"})
    assert stale.status == 416
    patch = b.request("PATCH", location, second, {"Content-Range": f"{len(first)}-{len(data) - 1}"})  # fmt: skip
    assert patch.status == 202, patch.body
    done = a.request("PUT", f"{location}{'&' if '?' in location else '?'}digest={blob(data)}")
    assert done.status == 201, done.body
    assert b.request("GET", f"/v2/shared/app/blobs/{blob(data)}").body == data
    assert keys(bucket, "freight/uploads/") == []
    assert bucket[0].list_multipart_uploads(Bucket=bucket[1]).get("Uploads") is None


def test_digest_mismatch_leaves_nothing(registry_factory, s3_config, bucket):
    r = registry_factory("--config", str(s3_config))
    wrong = blob(b"not this")
    reply = r.request("POST", f"/v2/app/blobs/uploads/?digest={wrong}", b"these bytes")
    assert reply.status == 400 and reply.code() == "DIGEST_INVALID"
    assert keys(bucket, "freight/blobs/") == [] and keys(bucket, "freight/uploads/") == []


def test_gc_on_s3(registry_factory, s3_config, bucket):
    r = registry_factory("--config", str(s3_config))
    keep, drop = make_image((2_000,), seed=b"keep"), make_image((3_000,), seed=b"drop")
    assert push_image(r, "gc/app", "keep", keep).status == 201
    assert push_image(r, "gc/app", "drop", drop).status == 201
    upload = r.request("POST", "/v2/gc/app/blobs/uploads/").headers["location"]
    assert r.request("PATCH", upload, b"in progress").status == 202
    assert r.request("DELETE", "/v2/gc/app/manifests/drop").status == 202
    done = r.cli("gc", "--config", str(s3_config), "--grace", "0")
    assert done.returncode == 0, done.stderr
    freed = {blob(drop.manifest), blob(drop.layers[0]), blob(drop.config)}
    for digest in freed:
        assert f"blob {digest}" in done.stdout.decode()
    for data in (keep.manifest, keep.config, *keep.layers):
        assert r.request("GET", f"/v2/gc/app/blobs/{blob(data)}").body == data
    assert r.request("GET", upload).status == 204  # the upload in progress survived


def test_missing_bucket_and_bad_settings(tmp_path, moto_endpoint):
    config = tmp_path / "bad.toml"
    for table, message in (
        (
            f'bucket = "absent"\nendpoint_url = "{moto_endpoint}"\naccess_key = "t"\nsecret_key = "t"\nregion = "us-east-1"\n',
            "not found",
        ),  # fmt: skip
        ('bucket = "x"\ncolour = "red"\n', "unknown keys"),
        ('region = "us-east-1"\n', "bucket is required"),
    ):
        config.write_text(f"[storage.s3]\n{table}")
        run = subprocess.run(
            [
                *freight_cli(),
                "registry",
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--root",
                str(tmp_path / "root"),
                "--config",
                str(config),
            ],  # fmt: skip
            capture_output=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        assert run.returncode != 0 and message in run.stderr.decode(), run.stderr


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_skopeo_through_s3(registry_factory, s3_config, tmp_path):
    r = registry_factory("--config", str(s3_config))
    image = make_image((300_000, 1_000))
    src = write_oci_layout(tmp_path / "src", image, "v1")
    dest = f"docker://{r.host}/s3/app:v1"
    skopeo = ["skopeo", "--insecure-policy"]
    run = subprocess.run([*skopeo, "copy", "--dest-tls-verify=false", f"oci:{src}:v1", dest], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = tmp_path / "out"
    run = subprocess.run([*skopeo, "copy", "--src-tls-verify=false", dest, f"oci:{out}:v1"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    index = json.loads((out / "index.json").read_text())
    manifest = (out / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]).read_bytes()  # fmt: skip
    for layer in json.loads(manifest)["layers"]:
        assert layer["digest"] in {blob(x) for x in image.layers}
    for data in image.layers:
        assert (out / "blobs" / "sha256" / blob(data).split(":")[1]).read_bytes() == data


def test_monolithic_push_of_a_large_blob(registry_factory, s3_config):
    r = registry_factory("--config", str(s3_config))
    data = os.urandom(2 * PART + 5)
    assert push_blob(r, "big/app", data).status == 201
    assert r.request("GET", f"/v2/big/app/blobs/{blob(data)}").body == data
