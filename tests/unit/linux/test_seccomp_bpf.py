"""The libseccomp binding: actions, compiling, and a filter's effect in a forked child."""

from __future__ import annotations

import errno
import os

import pytest

from freight.errors import InvalidArgument
from freight.linux import seccomp
from freight.runtime import seccompspec

pytestmark = pytest.mark.skipif(not seccomp.available(), reason="libseccomp.so.2 missing")


def test_action_values():
    assert seccomp.action("SCMP_ACT_ALLOW") == 0x7FFF0000
    assert seccomp.action("SCMP_ACT_ERRNO") == 0x00050000 | errno.EPERM
    assert seccomp.action("SCMP_ACT_ERRNO", 38) == 0x00050000 | 38
    with pytest.raises(InvalidArgument, match="unknown action"):
        seccomp.action("SCMP_ACT_NOPE")
    with pytest.raises(InvalidArgument, match="out of range"):
        seccomp.action("SCMP_ACT_ERRNO", 70000)


def test_compile_gives_a_bpf_program():
    f = seccomp.Filter(
        seccomp.action("SCMP_ACT_ALLOW"),
        ("SCMP_ARCH_X86_64",),
        (seccomp.Rule(("mkdir", "no_such_syscall"), seccomp.action("SCMP_ACT_ERRNO")),),
    )
    program = seccomp.compile_bpf(f)
    assert program and len(program) % 8 == 0  # struct sock_filter is 8 bytes


def test_spec_conversion_rejects_bad_fields():
    with pytest.raises(InvalidArgument, match=r"syscalls\[0\].args\[0\].op"):
        seccompspec.to_filter(
            {"defaultAction": "SCMP_ACT_ALLOW",
             "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                           "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BOGUS"}]}]}
        )  # fmt: skip
    with pytest.raises(InvalidArgument, match="NOTIFY"):
        seccompspec.to_filter({"defaultAction": "SCMP_ACT_NOTIFY"})
    assert seccompspec.to_filter(None) is None


def _in_child(f: seccomp.Filter, probe) -> int:
    """Load `f` in a forked child (no_new_privs set: needs no root), return probe()'s errno."""
    import ctypes

    pid = os.fork()
    if pid == 0:
        code = 100
        try:
            ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
            seccomp.load(f)
            try:
                probe()
                code = 0
            except OSError as e:
                code = e.errno
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_errno_rules_and_argument_comparisons(tmp_path):
    allow = seccomp.action("SCMP_ACT_ALLOW")
    f = seccomp.Filter(
        allow,
        rules=(
            seccomp.Rule(("mkdir", "mkdirat"), seccomp.action("SCMP_ACT_ERRNO", errno.EACCES)),
            # umask(0o77) refused, any other umask allowed: one argument compared.
            seccomp.Rule(
                ("umask",),
                seccomp.action("SCMP_ACT_ERRNO", errno.EINVAL),
                (seccomp.ArgCmp(0, seccomp.OPERATORS["SCMP_CMP_EQ"], 0o77),),
            ),
        ),
    )
    assert _in_child(f, lambda: os.mkdir(tmp_path / "d")) == errno.EACCES
    assert _in_child(f, lambda: os.umask(0o22)) == 0

    def umask77() -> None:
        import ctypes

        # umask(2) cannot fail, so glibc hands the raw -errno back as the result.
        result = ctypes.CDLL(None).umask(0o77)
        if result < 0:
            raise OSError(-result, "umask")

    assert _in_child(f, umask77) == errno.EINVAL
    assert not (tmp_path / "d").exists()


def test_default_errno(tmp_path):
    # An allow list (Docker's names minus mkdir): anything unlisted gets defaultErrnoRet.
    f = seccomp.Filter(
        seccomp.action("SCMP_ACT_ERRNO", errno.ENOSYS),
        rules=(seccomp.Rule(tuple(_everything_but("mkdir", "mkdirat")), seccomp.ACT_ALLOW),),
    )
    assert _in_child(f, lambda: os.mkdir(tmp_path / "d")) == errno.ENOSYS


def _everything_but(*names: str) -> list[str]:
    import json
    from pathlib import Path

    profile = Path(__file__).parents[3] / "src/freight/services/seccomp-default.json"
    rules = json.loads(profile.read_text())["syscalls"]
    return [n for r in rules if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]
            if n not in names]  # fmt: skip
