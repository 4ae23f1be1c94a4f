"""The generated OCI spec: Docker's defaults, resource mapping, schema-valid."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from freight.services import specgen
from freight.services.model import Container, ContainerConfig, HostSettings
from freight.services.usergroup import ExecUser

SPECS = Path(__file__).resolve().parents[4] / "shared" / "specs" / "oci-runtime"


def container(**host) -> Container:
    config = ContainerConfig(image="busybox", cmd=["echo", "hi"], env=["A=1"])
    return Container(
        id="ab" * 32, name="x", created="", image_id="sha256:" + "0" * 64,
        config=config, host=HostSettings(**host), path="echo", args=["hi"],
    )  # fmt: skip


def generate(c: Container, user: ExecUser | None = None) -> dict:
    inputs = specgen.SpecInputs(c, Path("/r/rootfs"), user or ExecUser(home="/root"), Path("/f"))
    return specgen.generate(inputs)


def schema_validator() -> jsonschema.Validator:
    resources = []
    for path in SPECS.glob("*.json"):
        doc = json.loads(path.read_text())
        resources.append((path.name, Resource.from_contents(doc, default_specification=DRAFT4)))
    registry = Registry().with_resources(resources)
    schema = json.loads((SPECS / "config-schema.json").read_text())
    return jsonschema.Draft4Validator(schema, registry=registry)


@pytest.mark.skipif(not SPECS.exists(), reason="shared/specs not beside the checkout")
def test_spec_is_valid_against_the_oci_schema():
    spec = generate(container(memory=64 << 20, nano_cpus=500_000_000, pids_limit=10))
    errors = sorted(schema_validator().iter_errors(spec), key=str)
    assert not errors, [e.message for e in errors]


def test_default_capabilities_are_dockers_fourteen():
    caps = generate(container())["process"]["capabilities"]
    assert len(caps["bounding"]) == 14
    assert caps["effective"] == caps["bounding"]


def test_non_root_user_has_only_the_bounding_set():
    spec = generate(container(), ExecUser(uid=1000, gid=1000))
    assert spec["process"]["capabilities"]["effective"] == []
    assert spec["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": []}


def test_cap_add_and_drop():
    caps = specgen.capabilities(["sys_admin"], ["CHOWN", "net_raw"])
    assert "CAP_SYS_ADMIN" in caps and "CAP_CHOWN" not in caps and "CAP_NET_RAW" not in caps
    assert specgen.capabilities([], ["ALL"]) == []


def test_memory_swap_defaults_to_twice_memory():
    res = generate(container(memory=64 << 20))["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    res = generate(container(memory=64 << 20, memory_swap=-1))["linux"]["resources"]
    assert res["memory"]["swap"] == -1


def test_nano_cpus_become_quota_over_period():
    res = generate(container(nano_cpus=1_500_000_000))["linux"]["resources"]
    assert res["cpu"] == {"period": 100_000, "quota": 150_000}


def test_env_gets_hostname_path_and_home():
    env = generate(container())["process"]["env"]
    assert env[0] == "HOSTNAME=" + "ab" * 6
    assert any(e.startswith("PATH=") for e in env)
    assert "HOME=/root" in env and "A=1" in env


def test_masked_and_readonly_paths_and_namespaces():
    linux = generate(container())["linux"]
    assert "/proc/kcore" in linux["maskedPaths"]
    assert "/proc/sys" in linux["readonlyPaths"]
    assert {n["type"] for n in linux["namespaces"]} == {"pid", "mount", "uts", "ipc", "network"}
