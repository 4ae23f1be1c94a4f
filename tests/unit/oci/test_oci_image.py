"""Image JSON models: exact keys, unknown keys kept, output valid per the OCI schemas."""

import json
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from freight import errors
from freight.oci import mediatypes
from freight.oci.digest import Digest
from freight.oci.image import (
    ContainerConfig,
    Descriptor,
    HistoryEntry,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    chain_ids,
)

SPECS = Path(__file__).resolve().parents[4] / "shared" / "specs" / "oci-image"
D1 = Digest.of(b"layer1")
D2 = Digest.of(b"layer2")
CFG = Digest.of(b"config")

DOCKER_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": mediatypes.DOCKER_MANIFEST,
    "config": {"mediaType": mediatypes.DOCKER_CONFIG, "size": 1469, "digest": CFG},
    "layers": [{"mediaType": mediatypes.DOCKER_LAYER_GZIP, "size": 2220094, "digest": D1}],
}

OCI_INDEX = {
    "schemaVersion": 2,
    "mediaType": mediatypes.OCI_INDEX,
    "manifests": [
        {
            "mediaType": mediatypes.OCI_MANIFEST,
            "digest": D1,
            "size": 528,
            "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
            "annotations": {"org.opencontainers.image.ref.name": "1.36"},
        },
        {"mediaType": mediatypes.OCI_MANIFEST, "digest": D2, "size": 528, "x-unknown": [1]},
    ],
    "annotations": {"com.example": "yes"},
}

DOCKER_CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "created": "2024-05-01T00:00:00Z",
    "docker_version": "20.10.23",
    "container_config": {"Hostname": "abc", "Cmd": ["/bin/sh"]},
    "config": {
        "Hostname": "",
        "User": "nobody",
        "Env": ["PATH=/usr/bin"],
        "Entrypoint": ["/init"],
        "Cmd": ["sh"],
        "WorkingDir": "/srv",
        "Labels": {"a": "b"},
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Volumes": {"/data": {}},
        "StopSignal": "SIGQUIT",
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30000000000, "Retries": 3},
        "OnBuild": ["RUN true"],
        "Shell": ["/bin/bash", "-c"],
        "ArgsEscaped": True,
    },
    "rootfs": {"type": "layers", "diff_ids": [D1, D2]},
    "history": [
        {"created": "2024-05-01T00:00:00Z", "created_by": "ADD file:x in /"},
        {"created_by": 'CMD ["sh"]', "empty_layer": True, "comment": "c"},
    ],
}


def _registry() -> Registry:
    """The spec files use draft-04 `id`s that nest; resolve refs by file name instead."""

    def strip_ids(node):
        if isinstance(node, dict):
            return {
                k: strip_ids(v) for k, v in node.items() if not (k == "id" and isinstance(v, str))
            }
        if isinstance(node, list):
            return [strip_ids(v) for v in node]
        return node

    resources = []
    for path in SPECS.glob("*.json"):
        schema = strip_ids(json.loads(path.read_text()))
        resources.append((f"file:///oci/{path.name}", Resource.from_contents(schema, DRAFT4)))
    return Registry().with_resources(resources)


def _validate(doc_bytes: bytes, schema_file: str) -> None:
    registry = _registry()
    schema = registry.contents(f"file:///oci/{schema_file}")
    validator = jsonschema.Draft4Validator(
        {"$ref": f"file:///oci/{schema_file}"}, registry=registry, format_checker=None
    )
    assert schema
    validator.validate(json.loads(doc_bytes))


def _bytes(doc) -> bytes:
    return json.dumps(doc).encode()


def test_docker_manifest_parses_typed():
    m = Manifest.from_json(_bytes(DOCKER_MANIFEST))
    assert m.is_docker
    assert m.config == Descriptor(mediatypes.DOCKER_CONFIG, CFG, 1469)
    assert [layer.digest for layer in m.layers] == [D1]
    assert json.loads(m.to_json()) == DOCKER_MANIFEST


def test_oci_manifest_is_valid_per_spec():
    m = Manifest(
        config=Descriptor(mediatypes.OCI_CONFIG, CFG, 10),
        layers=[Descriptor(mediatypes.OCI_LAYER_GZIP, D1, 5, annotations={"k": "v"})],
        annotations={"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
        subject=Descriptor(mediatypes.OCI_MANIFEST, D2, 3),
    )
    _validate(m.to_json(), "image-manifest-schema.json")
    assert Manifest.from_json(m.to_json()) == m


def test_index_keeps_unknown_keys_and_platforms():
    index = Index.from_json(_bytes(OCI_INDEX))
    first, second = index.manifests
    assert first.platform == Platform("arm64", "linux", variant="v8")
    assert second.extra == {"x-unknown": [1]}
    assert json.loads(index.to_json()) == OCI_INDEX
    _validate(index.to_json(), "image-index-schema.json")


def test_docker_manifest_list_is_an_index():
    doc = dict(OCI_INDEX, mediaType=mediatypes.DOCKER_MANIFEST_LIST)
    assert Index.from_json(_bytes(doc)).media_type == mediatypes.DOCKER_MANIFEST_LIST


def test_image_config_maps_every_field():
    cfg = ImageConfig.from_json(_bytes(DOCKER_CONFIG))
    c = cfg.config
    assert (c.user, c.env, c.entrypoint, c.cmd, c.working_dir) == (
        "nobody",
        ["PATH=/usr/bin"],
        ["/init"],
        ["sh"],
        "/srv",
    )
    assert c.exposed_ports == ["53/udp", "80/tcp"] and c.volumes == ["/data"]
    assert (c.stop_signal, c.on_build, c.shell, c.args_escaped) == (
        "SIGQUIT",
        ["RUN true"],
        ["/bin/bash", "-c"],
        True,
    )
    assert c.healthcheck.test == ["CMD", "true"] and c.healthcheck.interval == 30_000_000_000
    assert c.labels == {"a": "b"} and c.extra == {"Hostname": ""}
    assert cfg.rootfs_diff_ids == [D1, D2]
    assert cfg.history[1] == HistoryEntry(created_by='CMD ["sh"]', empty_layer=True, comment="c")
    assert cfg.extra["docker_version"] == "20.10.23"


def test_image_config_round_trips_and_is_valid_per_spec():
    out = ImageConfig.from_json(_bytes(DOCKER_CONFIG)).to_json()
    assert json.loads(out) == DOCKER_CONFIG
    _validate(out, "config-schema.json")


def test_minimal_image_config_is_valid_per_spec():
    cfg = ImageConfig(
        architecture="amd64", os="linux", config=ContainerConfig(cmd=["sh"]), rootfs_diff_ids=[D1]
    )
    _validate(cfg.to_json(), "config-schema.json")


def test_to_json_is_deterministic_and_compact():
    a = ImageConfig.from_json(_bytes(DOCKER_CONFIG)).to_json()
    shuffled = dict(reversed(list(DOCKER_CONFIG.items())))
    assert ImageConfig.from_json(_bytes(shuffled)).to_json() == a
    assert b", " not in a and b": " not in a


@pytest.mark.parametrize(
    "doc",
    [
        b"not json",
        b"[]",
        _bytes({"schemaVersion": 1, "config": DOCKER_MANIFEST["config"], "layers": []}),
        _bytes({"schemaVersion": 2, "layers": []}),
        _bytes(
            dict(DOCKER_MANIFEST, layers=[{"mediaType": "x", "size": 1, "digest": "sha256:bad"}])
        ),
        _bytes(dict(DOCKER_MANIFEST, layers=[{"mediaType": "x", "size": "1", "digest": D1}])),
    ],
)
def test_malformed_manifests_are_invalid_argument(doc):
    with pytest.raises(errors.InvalidArgument):
        Manifest.from_json(doc)


def test_chain_ids_follow_the_oci_definition():
    import hashlib

    d3 = Digest.of(b"layer3")
    c2 = "sha256:" + hashlib.sha256(f"{D1} {D2}".encode()).hexdigest()
    c3 = "sha256:" + hashlib.sha256(f"{c2} {d3}".encode()).hexdigest()
    assert chain_ids([D1, D2, d3]) == [D1, c2, c3]
    assert chain_ids([]) == []
