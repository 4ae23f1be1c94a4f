"""The runtime's reading of an OCI `linux.seccomp`: JSON → a validated `seccomp.Filter`.

Part of the spec conversion (`freight.runtime.config`): every name, operator
and errno is checked here, before any fork, so a bad profile fails `create`
with a message naming the field, and the container init only loads.
Conditional rules (capabilities, arches, kernel versions) are already
resolved by whoever wrote the spec (freight's daemon: services.seccompprofile).

Compiling with libseccomp costs ~7 ms for Docker's profile on x86_64 (three
architectures), more than the rest of a start; the BPF program is therefore
cached by a hash of the filter, libseccomp's version and the machine, and a
start with a known filter costs one prctl in the container init.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
from pathlib import Path
from typing import Any

from freight.errors import InvalidArgument
from freight.linux import seccomp

# Actions we cannot honour: NOTIFY needs a listener (listenerPath), which freight lacks.
_UNSUPPORTED = {"SCMP_ACT_NOTIFY": "needs a seccomp notify listener, which is not supported"}


def _action(raw: Any, errno_ret: Any, where: str) -> int:
    if not isinstance(raw, str):
        raise InvalidArgument(f"seccomp: {where}.action must be a string")
    if raw in _UNSUPPORTED:
        raise InvalidArgument(f"seccomp: {where}: {raw} {_UNSUPPORTED[raw]}")
    if errno_ret is not None and not isinstance(errno_ret, int):
        raise InvalidArgument(f"seccomp: {where}.errnoRet must be an integer")
    try:
        return seccomp.action(raw, errno_ret)
    except InvalidArgument as e:
        raise InvalidArgument(f"{e} in {where}") from None


def _arg(raw: Any, where: str) -> seccomp.ArgCmp:
    if not isinstance(raw, dict):
        raise InvalidArgument(f"seccomp: {where} must be an object")
    op = seccomp.OPERATORS.get(raw.get("op"))
    if op is None:
        raise InvalidArgument(f"seccomp: {where}.op {raw.get('op')!r} is not a valid operator")
    index = raw.get("index")
    if not isinstance(index, int) or not 0 <= index <= 5:
        raise InvalidArgument(f"seccomp: {where}.index must be 0 to 5")
    value, two = raw.get("value", 0), raw.get("valueTwo", 0)
    for name, number in (("value", value), ("valueTwo", two)):
        if not isinstance(number, int) or not 0 <= number < 1 << 64:
            raise InvalidArgument(f"seccomp: {where}.{name} must be an unsigned 64-bit integer")
    return seccomp.ArgCmp(index, op, value, two)


def _rule(raw: Any, i: int) -> seccomp.Rule:
    where = f"syscalls[{i}]"
    if not isinstance(raw, dict):
        raise InvalidArgument(f"seccomp: {where} must be an object")
    names = raw.get("names") or ([raw["name"]] if raw.get("name") else [])
    if not names or not all(isinstance(n, str) and n for n in names):
        raise InvalidArgument(f"seccomp: {where}.names must be a non-empty list of names")
    args = tuple(_arg(a, f"{where}.args[{j}]") for j, a in enumerate(raw.get("args") or []))
    return seccomp.Rule(tuple(names), _action(raw.get("action"), raw.get("errnoRet"), where), args)


def to_filter(raw: dict[str, Any] | None) -> seccomp.Filter | None:
    """The filter of a spec's `linux.seccomp`, or None when there is none."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidArgument("seccomp: linux.seccomp must be an object")
    if raw.get("listenerPath"):
        raise InvalidArgument("seccomp: listenerPath is not supported")
    default = _action(raw.get("defaultAction"), raw.get("defaultErrnoRet"), "defaultAction")
    arches = raw.get("architectures") or []
    if not all(isinstance(a, str) and a.startswith("SCMP_ARCH_") for a in arches):
        raise InvalidArgument("seccomp: architectures must be SCMP_ARCH_* names")
    rules = tuple(_rule(r, i) for i, r in enumerate(raw.get("syscalls") or []))
    return seccomp.Filter(default, tuple(arches), rules)


def program(f: seccomp.Filter, cache_dir: Path) -> bytes:
    """`f` compiled, from `cache_dir` when it was compiled before (root-only directory)."""
    key = repr((f, seccomp.library_version(), platform.machine()))
    path = cache_dir / (hashlib.sha256(key.encode()).hexdigest() + ".bpf")
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes()
    compiled = seccomp.compile_bpf(f)
    cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(compiled)
    os.replace(tmp, path)  # whole programs only, even with concurrent starts
    return compiled
