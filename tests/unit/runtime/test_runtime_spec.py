"""freight.oci.runtime_spec: round trip with exact keys, and the OCI JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from freight.oci.runtime_spec import (
    Capabilities,
    ConsoleSize,
    Cpu,
    DeviceRule,
    Linux,
    Memory,
    Mount,
    Namespace,
    Process,
    Resources,
    Rlimit,
    Root,
    Spec,
    User,
)
from freight.runtime.state import RuntimeState

SCHEMAS = Path(__file__).resolve().parents[4] / "shared" / "specs" / "oci-runtime"


def full_spec() -> Spec:
    caps = ["CAP_CHOWN", "CAP_KILL"]
    return Spec(
        process=Process(
            args=["sh", "-c", "true"],
            env=["PATH=/bin"],
            cwd="/work",
            user=User(1000, 1000, 0o022, [10, 20]),
            capabilities=Capabilities(caps, caps, caps, [], []),
            rlimits=[Rlimit("RLIMIT_NOFILE", 1024, 1024)],
            no_new_privileges=True,
            oom_score_adj=100,
        ),
        root=Root("rootfs", readonly=True),
        hostname="box",
        mounts=[Mount("/proc", "proc", "proc", ["nosuid"])],
        linux=Linux(
            namespaces=[Namespace("pid"), Namespace("network", "/proc/1/ns/net")],
            resources=Resources(
                memory=Memory(limit=1 << 26, swap=1 << 27, reservation=1 << 25),
                cpu=Cpu(shares=512, quota=50000, period=100000, cpus="0"),
                pids_limit=100,
                devices=[DeviceRule(False, access="rwm"), DeviceRule(True, "c", 1, 3, "rwm")],
            ),
            cgroups_path="/freight/x",
            masked_paths=["/proc/kcore"],
            readonly_paths=["/proc/sys"],
            sysctl={"net.ipv4.ip_forward": "1"},
            rootfs_propagation="private",
        ),
        annotations={"org.example": "yes"},
    )


def validator(schema_file: str) -> jsonschema.Draft4Validator:
    resources = []
    for path in SCHEMAS.glob("*.json"):  # $refs name sibling files: "defs.json#/..."
        contents = json.loads(path.read_text())
        resources.append((path.name, Resource(contents, specification=DRAFT4)))
    registry = Registry().with_resources(resources)
    schema = json.loads((SCHEMAS / schema_file).read_text())
    return jsonschema.Draft4Validator(schema, registry=registry)


@pytest.mark.skipif(not SCHEMAS.exists(), reason="OCI schemas not available")
def test_generated_spec_validates_against_oci_schema() -> None:
    validator("config-schema.json").validate(json.loads(full_spec().to_json()))


@pytest.mark.skipif(not SCHEMAS.exists(), reason="OCI schemas not available")
def test_schema_check_is_not_vacuous() -> None:
    raw = json.loads(full_spec().to_json())
    raw["linux"]["namespaces"][0]["type"] = "bogus"
    with pytest.raises(jsonschema.ValidationError):
        validator("config-schema.json").validate(raw)


@pytest.mark.skipif(not SCHEMAS.exists(), reason="OCI schemas not available")
def test_runtime_state_validates_against_state_schema() -> None:
    state = RuntimeState("c1", "running", 42, "/bundle", {"a": "b"})
    validator("state-schema.json").validate(state.to_dict())


def test_round_trip_keeps_exact_keys() -> None:
    raw = json.loads(full_spec().to_json())
    assert raw["process"]["user"]["additionalGids"] == [10, 20]
    assert raw["process"]["noNewPrivileges"] is True
    assert raw["linux"]["resources"]["pids"] == {"limit": 100}
    assert raw["linux"]["cgroupsPath"] == "/freight/x"
    assert Spec.from_json(full_spec().to_json()) == full_spec()


def test_unknown_keys_survive_round_trip() -> None:
    raw = json.loads(full_spec().to_json())
    raw["hooks"] = {"prestart": [{"path": "/bin/true"}]}
    raw["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW"}
    raw["process"]["apparmorProfile"] = "docker-default"
    again = json.loads(Spec.from_json(json.dumps(raw).encode()).to_json())
    assert again == raw


def test_minimal_spec_defaults() -> None:
    spec = Spec.from_json(b'{"ociVersion": "1.0.2", "root": {"path": "rootfs"}}')
    assert spec.process is None and spec.mounts == [] and spec.root == Root("rootfs")


def test_process_console_size_round_trip() -> None:
    raw = b'{"terminal": true, "consoleSize": {"height": 24, "width": 80}, "args": ["sh"], "cwd": "/"}'
    p = Process.from_json(raw)
    assert p.terminal and p.console_size == ConsoleSize(24, 80)
    assert Process.from_json(p.to_json()) == p
