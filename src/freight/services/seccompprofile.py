"""Which seccomp filter a container gets: Docker's profile format → OCI `linux.seccomp`.

Docker's profiles (the default one ships as seccomp-default.json, Docker's
own file verbatim) carry rules that apply only under conditions: some
capabilities present in the container's bounding set (`includes.caps`) or
absent (`excludes.caps`), some architectures, a minimum kernel. They are
resolved here, in the daemon, against the container's capabilities, the
host's architecture and kernel, so the OCI spec holds a plain list the
runtime compiles as is (as moby's profiles/seccomp does).

    --privileged                          → no filter
    --security-opt seccomp=unconfined     → no filter
    --security-opt seccomp=builtin / none → Docker's default profile
    --security-opt seccomp=<JSON>         → that profile (the CLI sends the file's content)
"""

from __future__ import annotations

import json
import os
import platform
import re
from functools import cache
from pathlib import Path
from typing import Any

from freight.errors import InvalidArgument

DEFAULT_PROFILE = Path(__file__).with_name("seccomp-default.json")
UNCONFINED = "unconfined"
BUILTIN = "builtin"

# uname machine → (Go's GOARCH, the one the profiles' `arches` name; libseccomp's arch).
_ARCHES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "i686": ("386", "SCMP_ARCH_X86"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
}


def host_arch() -> tuple[str, str]:
    machine = platform.machine()
    if machine not in _ARCHES:
        raise InvalidArgument(f"seccomp: architecture {machine} is not supported")
    return _ARCHES[machine]


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """(major, minor) of a kernel release such as "6.18.44-fc-v1098"."""
    m = re.match(r"(\d+)\.(\d+)", release or os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def load_profile(text: str) -> dict[str, Any]:
    """A Docker profile from its JSON text, with moby's error wording."""
    try:
        profile = json.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"Decoding seccomp profile failed: {e}") from None
    if not isinstance(profile, dict):
        raise InvalidArgument("Decoding seccomp profile failed: the profile is not a JSON object")
    if profile.get("architectures") and profile.get("archMap"):
        raise InvalidArgument("use either 'architectures' or 'archMap'")
    if not isinstance(profile.get("syscalls") or [], list):
        raise InvalidArgument("Decoding seccomp profile failed: syscalls must be a list")
    return profile


@cache
def default_profile() -> dict[str, Any]:
    """Docker's profile, parsed once (callers only read it)."""
    return load_profile(DEFAULT_PROFILE.read_text())


def profile_for(choice: str | None, privileged: bool) -> dict[str, Any] | None:
    """The Docker profile of a container: `choice` is the value of seccomp= (or None)."""
    if privileged or choice == UNCONFINED:
        return None
    if choice in (None, "", BUILTIN):
        return default_profile()
    return load_profile(choice)


def _matches(
    cond: dict[str, Any], caps: set[str], goarch: str, kernel: tuple[int, int], include: bool
) -> bool:
    """Whether a rule's `includes` (all must hold) or `excludes` (any excludes) apply."""
    if not isinstance(cond, dict):
        raise InvalidArgument("Decoding seccomp profile failed: includes/excludes must be objects")
    arches, wanted = cond.get("arches") or [], cond.get("caps") or []
    if include:
        if arches and goarch not in arches:
            return False
        if any(c not in caps for c in wanted):
            return False
        minimum = cond.get("minKernel")
        return not (minimum and kernel < kernel_version(str(minimum)))
    return goarch in arches or any(c in caps for c in wanted)


def _architectures(profile: dict[str, Any], native: str) -> list[str]:
    if profile.get("architectures"):
        return list(profile["architectures"])
    arches: list[str] = []
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == native:
            arches += [native, *(entry.get("subArchitectures") or [])]
    return arches


def _oci_syscall(rule: dict[str, Any]) -> dict[str, Any]:
    names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
    if not names:
        raise InvalidArgument("Decoding seccomp profile failed: a syscall rule has no names")
    out: dict[str, Any] = {"names": list(names), "action": rule.get("action")}
    if rule.get("errnoRet") is not None:
        out["errnoRet"] = rule["errnoRet"]
    if rule.get("args"):
        out["args"] = [
            {k: a[k] for k in ("index", "value", "valueTwo", "op") if a.get(k) is not None}
            for a in rule["args"]
        ]
    return out


def resolve(
    profile: dict[str, Any],
    bounding_caps: list[str],
    arch: tuple[str, str] | None = None,
    kernel: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The OCI `linux.seccomp` of `profile` for a container with these capabilities."""
    goarch, native = arch or host_arch()
    kernel = kernel or kernel_version()
    caps = set(bounding_caps)
    if not profile.get("defaultAction"):
        raise InvalidArgument("Decoding seccomp profile failed: defaultAction is required")
    out: dict[str, Any] = {"defaultAction": profile["defaultAction"]}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    out["architectures"] = _architectures(profile, native)
    if profile.get("flags"):
        out["flags"] = list(profile["flags"])
    syscalls = []
    for rule in profile.get("syscalls") or []:
        if "includes" in rule and not _matches(rule["includes"], caps, goarch, kernel, True):
            continue
        if "excludes" in rule and _matches(rule["excludes"], caps, goarch, kernel, False):
            continue
        syscalls.append(_oci_syscall(rule))
    out["syscalls"] = syscalls
    return out


def container_seccomp(
    choice: str | None, privileged: bool, bounding_caps: list[str]
) -> dict[str, Any] | None:
    """The spec's `linux.seccomp` for a container, or None for none."""
    profile = profile_for(choice, privileged)
    return None if profile is None else resolve(profile, bounding_caps)
