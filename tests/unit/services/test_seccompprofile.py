"""Profile resolution: Docker's conditional rules against caps, arch and kernel; OCI-valid output."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from freight.errors import InvalidArgument
from freight.services import seccompprofile, specgen
from freight.services.model import Container, ContainerConfig, HostSettings
from freight.services.usergroup import ExecUser

SPECS = Path("/work/shared/specs/oci-runtime")
AMD64 = ("amd64", "SCMP_ARCH_X86_64")


def _names(oci: dict) -> set[str]:
    return {n for rule in oci["syscalls"] for n in rule["names"]}


def _rules_for(oci: dict, name: str) -> list[dict]:
    return [r for r in oci["syscalls"] if name in r["names"]]


def test_default_caps_leave_out_the_admin_rules():
    oci = seccompprofile.resolve(
        seccompprofile.default_profile(), specgen.DEFAULT_CAPS, AMD64, (6, 1)
    )
    names = _names(oci)
    assert "read" in names and "arch_prctl" in names
    assert not {"mount", "unshare", "setns", "bpf", "reboot", "init_module"} & names
    assert oci["defaultAction"] == "SCMP_ACT_ERRNO" and oci["defaultErrnoRet"] == 1
    assert oci["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    # clone only with the namespace flags masked off, clone3 answered ENOSYS.
    (clone,) = _rules_for(oci, "clone")
    assert clone["args"][0]["op"] == "SCMP_CMP_MASKED_EQ" and clone["args"][0]["index"] == 0
    (clone3,) = _rules_for(oci, "clone3")
    assert clone3 == {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}


def test_sys_admin_opens_mount_and_lifts_the_clone_mask():
    caps = [*specgen.DEFAULT_CAPS, "CAP_SYS_ADMIN"]
    oci = seccompprofile.resolve(seccompprofile.default_profile(), caps, AMD64, (6, 1))
    assert {"mount", "unshare", "setns", "clone3"} <= _names(oci)
    assert all(not r.get("args") for r in _rules_for(oci, "clone"))
    assert not any(r["action"] == "SCMP_ACT_ERRNO" for r in _rules_for(oci, "clone3"))


def test_arch_and_kernel_conditions():
    profile = seccompprofile.default_profile()
    arm = seccompprofile.resolve(profile, [], ("arm64", "SCMP_ARCH_AARCH64"), (6, 1))
    assert "arch_prctl" not in _names(arm) and "breakpoint" in _names(arm)
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    old = seccompprofile.resolve(profile, [], AMD64, (4, 4))
    assert "ptrace" not in _names(old)  # minKernel 4.8
    assert "ptrace" in _names(seccompprofile.resolve(profile, [], AMD64, (4, 8)))


def test_choices():
    assert seccompprofile.profile_for("unconfined", False) is None
    assert seccompprofile.profile_for(None, True) is None
    assert seccompprofile.profile_for("builtin", False) == seccompprofile.default_profile()
    custom = '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}'
    assert seccompprofile.profile_for(custom, False)["defaultAction"] == "SCMP_ACT_ALLOW"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "Decoding seccomp profile failed"),
        ("[]", "not a JSON object"),
        ('{"architectures": ["x"], "archMap": [{}]}', "use either 'architectures' or 'archMap'"),
    ],
)
def test_bad_profiles(text, message):
    with pytest.raises(InvalidArgument, match=message):
        seccompprofile.load_profile(text)


def test_kernel_version_parsing():
    assert seccompprofile.kernel_version("6.18.44-fc-v1098") == (6, 18)
    assert seccompprofile.kernel_version("4.8") == (4, 8)


def _validator() -> jsonschema.Validator:
    resources = [
        (name, Resource.from_contents(json.loads((SPECS / name).read_text()), DRAFT4))
        for name in ("defs.json", "defs-linux.json", "config-linux.json")
    ]
    registry = Registry().with_resources(resources)
    schema = json.loads((SPECS / "config-schema.json").read_text())
    return jsonschema.Draft4Validator(schema, registry=registry)


def _spec(**host) -> dict:
    c = Container(
        id="c" * 64, name="x", created="", image_id="", config=ContainerConfig(),
        host=HostSettings(**host), path="true",
    )  # fmt: skip
    return specgen.generate(specgen.SpecInputs(c, Path("/r"), ExecUser(0, 0, [], "/"), Path("/f")))


def test_generated_spec_with_seccomp_is_schema_valid():
    if not SPECS.is_dir():
        pytest.skip("OCI runtime schema not available")
    spec = _spec()
    assert spec["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    errors = sorted(_validator().iter_errors(spec), key=str)
    assert not errors, errors[:3]


def test_privileged_and_unconfined_specs_have_no_filter():
    assert "seccomp" not in _spec(privileged=True)["linux"]
    assert "seccomp" not in _spec(security_opt=["seccomp=unconfined"])["linux"]
    assert "maskedPaths" not in _spec(privileged=True)["linux"]
