"""The cgroup v2 device filter: OCI device rules compiled to eBPF and attached to a cgroup.

cgroup v2 has no devices controller; the kernel instead runs every program of
type BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup (and its ancestors)
on each open/mknod of a device node, and refuses with EPERM when one returns
0. The context it passes is `struct bpf_cgroup_dev_ctx`::

    offset 0  u32 access_type   (access << 16) | type
                                access: MKNOD 1, READ 2, WRITE 4; type: BLOCK 1, CHAR 2
    offset 4  u32 major
    offset 8  u32 minor

The rules keep the v1 devices controller's meaning: applied in order, the
last matching rule decides, nothing matching is denied. So the program
tests them last to first and returns at the first match::

    r2 = ctx->access_type & 0xffff     (device type)
    r3 = ctx->access_type >> 16        (requested access)
    r4 = ctx->major, r5 = ctx->minor
    for each rule, last first:
        if r2 != TYPE goto next        (omitted for type "a")
        allow rule: if r3 & ~ACCESS goto next    (the request must be within it)
        deny rule:  if r3 & ACCESS == 0 goto next (any overlap denies)
        if r4 != MAJOR goto next       (omitted for a wildcard)
        if r5 != MINOR goto next       (omitted for a wildcard)
        return ALLOW
    next: ...
    return 0

Loading (BPF_PROG_LOAD) and attaching (BPF_PROG_ATTACH with
BPF_F_ALLOW_MULTI, so programs of parent cgroups keep running too) go
through the raw bpf(2) system call. An attached program stays attached
after its fd is closed, until the cgroup directory is removed.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, replace

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # attach type
BPF_F_ALLOW_MULTI = 2

DEV_BLOCK = 1
DEV_CHAR = 2
ACC_MKNOD = 1
ACC_READ = 2
ACC_WRITE = 4
_ACCESS_BITS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}
_TYPES = {"b": DEV_BLOCK, "c": DEV_CHAR}

# Instruction classes and operations (include/uapi/linux/bpf_common.h, bpf.h).
_LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
_ALU64_AND_K = 0x57
_ALU64_RSH_K = 0x77
_ALU64_MOV_K = 0xB7
_ALU64_MOV_X = 0xBF
_JMP_JEQ_K = 0x15
_JMP_JNE_K = 0x55
_JMP_JSET_K = 0x45
_JMP_EXIT = 0x95


@dataclass(frozen=True)
class Insn:
    """One eBPF instruction (struct bpf_insn)."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def encode(self) -> bytes:
        return struct.pack("<BBhi", self.code, (self.src << 4) | self.dst, self.off, self.imm)


@dataclass(frozen=True)
class Rule:
    """One device rule: `kind` is 'a', 'b' or 'c'; None major/minor are wildcards."""

    allow: bool
    kind: str = "a"
    major: int | None = None
    minor: int | None = None
    access: str = "rwm"


def rule_of(allow: bool, kind: str | None, major: int | None, minor: int | None,
            access: str | None) -> Rule:  # fmt: skip
    """A Rule from OCI's fields (a negative major/minor is a wildcard as well)."""
    kind = kind or "a"
    if kind not in ("a", "b", "c"):
        raise ValueError(f"device rule type {kind!r} is not one of a, b, c")
    access = access or "rwm"
    if set(access) - set(_ACCESS_BITS):
        raise ValueError(f"device rule access {access!r} is not made of r, w, m")
    wild = lambda n: None if n is None or n < 0 else n  # noqa: E731
    return Rule(allow, kind, wild(major), wild(minor), access)


def _access_mask(access: str) -> int:
    mask = 0
    for ch in access:
        mask |= _ACCESS_BITS[ch]
    return mask


def _rule_block(rule: Rule) -> list[Insn]:
    """The tests of one rule, each jumping past the block's end when it fails."""
    access = _access_mask(rule.access)
    # Each check ends with the jump taken when it fails; offsets are set below.
    checks: list[list[Insn]] = []
    if rule.kind != "a":
        checks.append([Insn(_JMP_JNE_K, 2, imm=_TYPES[rule.kind])])
    if rule.allow and access != 7:
        checks.append([Insn(_JMP_JSET_K, 3, imm=~access & 7)])
    elif not rule.allow and access != 7:
        # "no bit in common": r1 = r3 & access, jump when it is 0
        checks.append(
            [Insn(_ALU64_MOV_X, 1, 3), Insn(_ALU64_AND_K, 1, imm=access), Insn(_JMP_JEQ_K, 1)]
        )
    if rule.major is not None:
        checks.append([Insn(_JMP_JNE_K, 4, imm=rule.major)])
    if rule.minor is not None:
        checks.append([Insn(_JMP_JNE_K, 5, imm=rule.minor)])
    tail = [Insn(_ALU64_MOV_K, 0, imm=1 if rule.allow else 0), Insn(_JMP_EXIT)]
    length = sum(len(c) for c in checks) + len(tail)
    out: list[Insn] = []
    for check in checks:
        out += check[:-1]
        out.append(replace(check[-1], off=length - len(out) - 1))
    return out + tail


def _matches_all(rule: Rule) -> bool:
    return (
        rule.kind == "a"
        and rule.major is None
        and rule.minor is None
        and (_access_mask(rule.access) == 7)
    )


_PROLOGUE = (
    Insn(_LDX_MEM_W, 2, 1, 0),  # r2 = access_type
    Insn(_ALU64_AND_K, 2, imm=0xFFFF),
    Insn(_LDX_MEM_W, 3, 1, 0),  # r3 = access_type
    Insn(_ALU64_RSH_K, 3, imm=16),
    Insn(_LDX_MEM_W, 4, 1, 4),  # r4 = major
    Insn(_LDX_MEM_W, 5, 1, 8),  # r5 = minor
)
_DENY_ALL = (Insn(_ALU64_MOV_K, 0, imm=0), Insn(_JMP_EXIT))


def compile_rules(rules: Iterable[Rule]) -> list[Insn]:
    """The program for `rules` (in OCI order: the last match wins)."""
    out = list(_PROLOGUE)
    for rule in reversed(list(rules)):
        out += _rule_block(rule)
        if _matches_all(rule):
            return out  # the rules before it can never decide
    return out + list(_DENY_ALL)


def encode(program: list[Insn]) -> bytes:
    return b"".join(i.encode() for i in program)


def evaluate(program: list[Insn], kind: int, access: int, major: int, minor: int) -> int:
    """Run `program` on one request in a tiny interpreter of the opcodes we emit (tests)."""
    ctx = [(access << 16) | kind, major, minor]
    regs = [0] * 11
    pc = 0
    while True:
        i = program[pc]
        pc += 1
        if i.code == _LDX_MEM_W:
            regs[i.dst] = ctx[i.off // 4]
        elif i.code == _ALU64_AND_K:
            regs[i.dst] &= i.imm & 0xFFFFFFFFFFFFFFFF
        elif i.code == _ALU64_RSH_K:
            regs[i.dst] >>= i.imm
        elif i.code == _ALU64_MOV_K:
            regs[i.dst] = i.imm
        elif i.code == _ALU64_MOV_X:
            regs[i.dst] = regs[i.src]
        elif i.code == _JMP_JNE_K:
            pc += i.off if regs[i.dst] != i.imm else 0
        elif i.code == _JMP_JEQ_K:
            pc += i.off if regs[i.dst] == i.imm else 0
        elif i.code == _JMP_JSET_K:
            pc += i.off if regs[i.dst] & i.imm else 0
        elif i.code == _JMP_EXIT:
            return regs[0]
        else:
            raise ValueError(f"opcode {i.code:#x} is not one the compiler emits")


# bpf(2) ------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _ProgLoadAttr(ctypes.Structure):
    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * 16),
        ("prog_ifindex", ctypes.c_uint32),
        ("expected_attach_type", ctypes.c_uint32),
    ]


class _AttachAttr(ctypes.Structure):
    _fields_ = [
        ("target_fd", ctypes.c_uint32),
        ("attach_bpf_fd", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32),
        ("attach_flags", ctypes.c_uint32),
        ("replace_bpf_fd", ctypes.c_uint32),
    ]


class _QueryAttr(ctypes.Structure):
    _fields_ = [
        ("target_fd", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32),
        ("query_flags", ctypes.c_uint32),
        ("attach_flags", ctypes.c_uint32),
        ("prog_ids", ctypes.c_uint64),
        ("prog_cnt", ctypes.c_uint32),
        ("_pad", ctypes.c_uint32),
    ]


def _bpf(cmd: int, attr: ctypes.Structure) -> int:
    nr = _SYS_BPF[os.uname().machine]
    ret = _libc.syscall(
        ctypes.c_long(nr), ctypes.c_int(cmd), ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr))
    )
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({cmd}): {os.strerror(err)}")
    return int(ret)


def load(program: list[Insn]) -> int:
    """BPF_PROG_LOAD: an fd on the verified program; the verifier's log in the error."""
    code = encode(program)
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"Apache-2.0")
    log = ctypes.create_string_buffer(65536)
    attr = _ProgLoadAttr(
        prog_type=BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt=len(program),
        insns=ctypes.addressof(insns),
        license=ctypes.addressof(license_),
        log_level=1,
        log_size=len(log),
        log_buf=ctypes.addressof(log),
        prog_name=b"freight_dev",
        expected_attach_type=BPF_CGROUP_DEVICE,
    )
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except OSError as e:
        verifier = log.value.decode(errors="replace").strip()
        raise OSError(e.errno, f"loading the device filter: {e.strerror}: {verifier}") from None


def attach(cgroup_dir: str, prog_fd: int) -> None:
    """BPF_PROG_ATTACH the program to a cgroup v2 directory, alongside others (ALLOW_MULTI)."""
    dfd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        attr = _AttachAttr(dfd, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, 0)
        _bpf(BPF_PROG_ATTACH, attr)
    finally:
        os.close(dfd)


def attached(cgroup_dir: str) -> list[int]:
    """Ids of the device programs attached directly to `cgroup_dir` (BPF_PROG_QUERY)."""
    dfd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        ids = (ctypes.c_uint32 * 64)()
        attr = _QueryAttr(dfd, BPF_CGROUP_DEVICE, 0, 0, ctypes.addressof(ids), 64, 0)
        _bpf(BPF_PROG_QUERY, attr)
        return list(ids[: attr.prog_cnt])
    finally:
        os.close(dfd)


def apply(cgroup_dir: str, rules: Iterable[Rule]) -> None:
    """Compile, load and attach the filter for `rules` to `cgroup_dir`."""
    fd = load(compile_rules(rules))
    try:
        attach(cgroup_dir, fd)
    finally:
        os.close(fd)  # the attachment holds its own reference
