"""seccomp filters through libseccomp (ctypes): the only place freight builds or loads one.

A `Filter` is plain data (actions, syscall names, argument comparisons), made
by the runtime from an OCI `linux.seccomp`; `load()` compiles it with
libseccomp and installs it on the calling thread. Why libseccomp rather than
our own BPF: it knows every architecture's syscall numbers and the x32/x86
multiplexing, and compiles ~400 rules into a binary-searched program.

Kernel rules the callers must respect:

* Without no_new_privs set, installing a filter needs CAP_SYS_ADMIN.
  libseccomp sets no_new_privs itself by default (SCMP_FLTATR_CTL_NNP); we
  turn that off, because Docker's containers do not run with it unless asked.
* Every syscall between `load()` and execve runs under the filter.

The library is opened once at import, so processes forked from a pre-imported
parent (the shim forkserver) share its pages and skip the dlopen.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno as errnos
import os
from dataclasses import dataclass, field

from freight.errors import InvalidArgument, Unavailable

# Action values (seccomp.h); ERRNO and TRACE carry 16 bits of data.
ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000
ACT_TRACE = 0x7FF00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000

ACTIONS = {
    "SCMP_ACT_KILL": ACT_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": ACT_TRAP,
    "SCMP_ACT_ERRNO": ACT_ERRNO,
    "SCMP_ACT_TRACE": ACT_TRACE,
    "SCMP_ACT_LOG": ACT_LOG,
    "SCMP_ACT_ALLOW": ACT_ALLOW,
}

# enum scmp_compare
OPERATORS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# enum scmp_filter_attr
_ATTR_ACT_BADARCH = 2
_ATTR_CTL_NNP = 3

_NR_SCMP_ERROR = -1


@dataclass(frozen=True)
class ArgCmp:
    """`args[index] <op> value` (MASKED_EQ: `args[index] & value == value_two`)."""

    index: int
    op: int
    value: int
    value_two: int = 0


@dataclass(frozen=True)
class Rule:
    """One action for a group of syscalls, optionally only when every comparison holds."""

    names: tuple[str, ...]
    action: int  # an ACT_* with its data (errno) already or-ed in
    args: tuple[ArgCmp, ...] = ()


@dataclass(frozen=True)
class Filter:
    default_action: int
    architectures: tuple[str, ...] = ()  # "SCMP_ARCH_X86_64"; the native one is always in
    rules: tuple[Rule, ...] = field(default_factory=tuple)


def action(name: str, errno_ret: int | None = None) -> int:
    """The action value for an OCI action name; ERRNO/TRACE default to EPERM, as runc."""
    base = ACTIONS.get(name)
    if base is None:
        raise InvalidArgument(f"seccomp: unknown action {name!r}")
    if base in (ACT_ERRNO, ACT_TRACE):
        data = errnos.EPERM if errno_ret is None else errno_ret
        if not 0 <= data <= 0xFFFF:
            raise InvalidArgument(f"seccomp: errnoRet {data} is out of range")
        return base | data
    return base


class _ArgCmpStruct(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def _open_library() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmpStruct),
    ]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


_LIB = _open_library()


def available() -> bool:
    return _LIB is not None


def _lib() -> ctypes.CDLL:
    if _LIB is None:
        raise Unavailable("seccomp: libseccomp.so.2 is not installed (apt-get install libseccomp2)")
    return _LIB


def _check(rc: int, what: str) -> None:
    if rc < 0:
        raise OSError(-rc, f"seccomp: {what}: {errnos.errorcode.get(-rc, -rc)}")


class _Context:
    """A libseccomp filter context, released on exit."""

    def __init__(self, f: Filter) -> None:
        self.lib = _lib()
        self.ctx = self.lib.seccomp_init(f.default_action)
        if not self.ctx:
            raise InvalidArgument(f"seccomp: default action {f.default_action:#x} is not valid")
        self.default = f.default_action

    def __enter__(self) -> _Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.lib.seccomp_release(self.ctx)

    def configure(self, f: Filter) -> None:
        _check(self.lib.seccomp_attr_set(self.ctx, _ATTR_CTL_NNP, 0), "disable no_new_privs")
        for name in f.architectures:
            token = self.lib.seccomp_arch_resolve_name(
                name.removeprefix("SCMP_ARCH_").lower().encode()
            )
            if token == 0:
                raise InvalidArgument(f"seccomp: unknown architecture {name!r}")
            rc = self.lib.seccomp_arch_add(self.ctx, token)
            if rc != -errnos.EEXIST:  # the native arch is in already
                _check(rc, f"add architecture {name}")
        for rule in f.rules:
            self.add(rule)

    def add(self, rule: Rule) -> None:
        # A rule repeating the default action is redundant, and libseccomp refuses it.
        if rule.action == self.default:
            return
        for args in _split_same_index(rule.args):
            array = (_ArgCmpStruct * len(args))(
                *(_ArgCmpStruct(a.index, a.op, a.value, a.value_two) for a in args)
            )
            for name in rule.names:
                nr = self.lib.seccomp_syscall_resolve_name(name.encode())
                if nr == _NR_SCMP_ERROR:
                    continue  # a syscall this libseccomp (or arch) does not know: as runc
                rc = self.lib.seccomp_rule_add_array(self.ctx, rule.action, nr, len(args), array)
                _check(rc, f"add rule for {name}")


def _split_same_index(args: tuple[ArgCmp, ...]) -> list[tuple[ArgCmp, ...]]:
    """libseccomp rejects two comparisons of one argument in a rule; like runc, such a
    rule becomes one rule per comparison (any of them matches)."""
    if len(args) > 1 and len({a.index for a in args}) == 1:
        return [(a,) for a in args]
    return [args]


def compile_bpf(f: Filter) -> bytes:
    """`f` compiled to a classic BPF program (struct sock_filter[]), nothing loaded."""
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    try:
        with _Context(f) as ctx:
            ctx.configure(f)
            _check(ctx.lib.seccomp_export_bpf(ctx.ctx, fd), "export BPF")
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_libc = ctypes.CDLL(None, use_errno=True)


def load_bpf(program: bytes) -> None:
    """Install a compiled program (see `compile_bpf`) on the calling thread.

    prctl(PR_SET_SECCOMP) rather than seccomp(2): the same effect without an
    architecture-specific syscall number. No libseccomp call happens here, so
    a cached program costs one syscall.
    """
    if not program or len(program) % 8 or len(program) // 8 > 0xFFFF:
        raise InvalidArgument(f"seccomp: a BPF program of {len(program)} bytes is not valid")
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp: load filter: {os.strerror(err)}")


def load(f: Filter) -> None:
    """Compile `f` and install it on the calling thread (see the module docstring)."""
    load_bpf(compile_bpf(f))


def library_version() -> str:
    """libseccomp's version ("2.5.4"): part of a compiled program's cache key."""
    lib = _lib()
    lib.seccomp_version.restype = ctypes.POINTER(ctypes.c_uint * 3)
    v = lib.seccomp_version().contents
    return f"{v[0]}.{v[1]}.{v[2]}"
